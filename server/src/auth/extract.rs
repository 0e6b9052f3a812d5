//! Request extractors for authenticated callers: a bearer token (programs), or the browser's session
//! cookie with an allowed `Origin` on anything that changes state.
//!
//! - [`AnySession`]: any live session, even one that must still change its password or enrol TOTP.
//! - [`Member`]: a session with nothing pending — what almost every endpoint takes.
//! - [`Admin`]: a [`Member`] whose account is an administrator (decided by [`crate::policy`]).
//! - [`RecentAdmin`]: an [`Admin`] whose sign-in is recent enough to change accounts, groups or exports.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use time::Duration;

use super::cookie;
use crate::domain::{self, Account, SessionInfo};
use crate::error::ApiError;
use crate::policy;
use crate::state::AppState;

/// How long a session's idle clock may lag before a request moves it forward. Saves a write per request.
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// Who is calling from where, for sessions and throttling. Never logged with a token.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub addr: String,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string());
        // Behind a TLS-terminating proxy the peer is the proxy; the client is the last hop it appended.
        let forwarded = state
            .config
            .behind_tls_proxy
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next().map(str::trim))
            .flatten()
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .map(str::to_owned);
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect::<String>());
        Ok(Self { addr: forwarded.or(peer).unwrap_or_else(|| "unknown".into()), user_agent })
    }
}

/// An authenticated session, whatever it still has to do.
#[derive(Debug, Clone)]
pub struct AnySession {
    pub account: Account,
    pub session: SessionInfo,
    /// Carried by the browser's session cookie rather than a bearer token.
    pub via_cookie: bool,
}

impl FromRequestParts<AppState> for AnySession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer =
            parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            let session = Self::from_token(state, token).await?;
            session.mark_authenticated(&parts.extensions);
            return Ok(session);
        }
        // A browser's cookie: the browser sends it with any request to this server, including one a page
        // of another site makes it send, so a request that changes anything must name an allowed origin.
        let token = cookie::session_token(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        if !cookie::origin_allows(&parts.method, &parts.headers, &state.config) {
            return Err(ApiError::Forbidden(policy::Denied::OriginNotAllowed));
        }
        let mut session = Self::from_token(state, token).await?;
        session.via_cookie = true;
        session.mark_authenticated(&parts.extensions);
        Ok(session)
    }
}

impl AnySession {
    /// The live session a bearer token belongs to (HTTP header, or a WebSocket subprotocol).
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let token = Some(token.trim()).filter(|t| !t.is_empty() && t.len() <= 256).ok_or(ApiError::Unauthenticated)?;
        let now = domain::now();
        let idle_cutoff = now - Duration::minutes(i64::from(state.config.session_idle_minutes));
        let (session, account) = state
            .store
            .authenticate(&crate::auth::token::hash(token), now, idle_cutoff)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if now - session.last_seen_at > TOUCH_INTERVAL {
            state.store.touch_session(session.id, now).await?;
        }
        Ok(Self { account, session, via_cookie: false })
    }

    /// This request has authenticated: its connection no longer counts against its address's cap on
    /// unauthenticated connections, and the access log line names the session (its id, never its token).
    pub fn mark_authenticated(&self, extensions: &axum::http::Extensions) {
        if let Some(place) = extensions.get::<crate::connections::Unauthenticated>() {
            place.release();
        }
        tracing::Span::current().record("session", tracing::field::display(self.session.id));
    }

    /// What this session must do first, if anything.
    pub fn pending(&self, state: &AppState) -> Option<renkei_protocol::PendingStep> {
        policy::pending_step(&self.account, state.config.require_totp)
    }
}

/// An authenticated session with nothing pending.
#[derive(Debug, Clone)]
pub struct Member(pub AnySession);

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = AnySession::from_request_parts(parts, state).await?;
        match session.pending(state) {
            Some(step) => Err(ApiError::Pending(step)),
            None => Ok(Self(session)),
        }
    }
}

/// An authenticated administrator with nothing pending.
#[derive(Debug, Clone)]
pub struct Admin(pub AnySession);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Member(session) = Member::from_request_parts(parts, state).await?;
        policy::require_admin(&session.account)?;
        Ok(Self(session))
    }
}

/// An administrator whose sign-in (or re-entered password) is within `admin_reauth_seconds`: what every
/// administrator action that changes accounts, groups or exports takes. An older one is refused with
/// `reauthentication_required`, whatever page or program sent it.
#[derive(Debug, Clone)]
pub struct RecentAdmin(pub AnySession);

impl FromRequestParts<AppState> for RecentAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Admin(session) = Admin::from_request_parts(parts, state).await?;
        let window = Duration::seconds(i64::from(state.config.admin_reauth_seconds));
        if !policy::sign_in_recent(session.session.authenticated_at, domain::now(), window) {
            return Err(ApiError::ReauthenticationRequired);
        }
        Ok(Self(session))
    }
}

impl From<&AnySession> for crate::audit::Actor {
    fn from(s: &AnySession) -> Self {
        Self { id: Some(s.account.id()), client_addr: s.session.client_addr.clone(), session_id: Some(s.session.id) }
    }
}

/// Someone not signed in: only where from.
impl From<&ClientInfo> for crate::audit::Actor {
    fn from(client: &ClientInfo) -> Self {
        Self { id: None, client_addr: Some(client.addr.clone()), session_id: None }
    }
}
