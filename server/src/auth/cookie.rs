//! The browser's session: the token in an `HttpOnly; Secure; SameSite=Strict` cookie that no script can
//! read, and the `Origin` check every state-changing request carried by that cookie must pass (a page of
//! another site cannot make the browser act for its user).

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method};

use crate::config::Config;

/// The cookie's name. Scoped to `/api/`: the web client's own files never carry it.
pub const SESSION_COOKIE: &str = "renkei_session";

/// `Set-Cookie` for a new session living `max_age_seconds` at most (the session's absolute lifetime).
///
/// `Secure` is always set: browsers keep such cookies over plain HTTP only for `localhost` and
/// `127.0.0.1`, which is exactly where a server without TLS may listen (`Config::validate`).
pub fn set_session(token: &str, max_age_seconds: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/api/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Strict"
    ))
    .ok()
}

/// `Set-Cookie` that removes the session cookie (logout).
pub fn clear_session() -> HeaderValue {
    HeaderValue::from_static("renkei_session=; Path=/api/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The session token from the `Cookie` header, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

/// Whether a request carried by the session cookie may change anything: safe methods always may;
/// others need an `Origin` that is this server's own (its authority equals the `Host` header) or one
/// of the configured `ws_allowed_origins`.
pub fn origin_allows(method: &Method, headers: &HeaderMap, config: &Config) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    origin_is_own_or_allowed(headers, config)
}

/// The request's `Origin` is present and is this server's own origin or an allowed one.
pub fn origin_is_own_or_allowed(headers: &HeaderMap, config: &Config) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    if config.ws_allowed_origins.iter().any(|a| a == origin) {
        return true;
    }
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if !a.is_empty() && a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let h = headers(&[("cookie", "a=1; renkei_session=rks_abc; b=2")]);
        assert_eq!(session_token(&h), Some("rks_abc"));
        assert_eq!(session_token(&headers(&[("cookie", "renkei_sessionx=1")])), None);
        assert_eq!(session_token(&headers(&[("cookie", "renkei_session=")])), None);
    }

    #[test]
    fn only_the_own_or_an_allowed_origin_may_change_anything() {
        let config = Config { ws_allowed_origins: vec!["https://renkei.example.jp".into()], ..Config::default() };
        let own = headers(&[("host", "127.0.0.1:8443"), ("origin", "http://127.0.0.1:8443")]);
        let allowed = headers(&[("host", "10.0.0.5:8443"), ("origin", "https://renkei.example.jp")]);
        let foreign = headers(&[("host", "127.0.0.1:8443"), ("origin", "https://evil.example")]);
        let none = headers(&[("host", "127.0.0.1:8443")]);
        let null = headers(&[("host", "127.0.0.1:8443"), ("origin", "null")]);
        for (h, ok) in [(&own, true), (&allowed, true), (&foreign, false), (&none, false), (&null, false)] {
            assert_eq!(origin_allows(&Method::POST, h, &config), ok, "{h:?}");
            assert!(origin_allows(&Method::GET, h, &config));
        }
    }
}
