//! What the server owes a browser, over raw HTTP and WebSocket: the web client at `/` with its cache
//! headers, a Content-Security-Policy and `nosniff` everywhere, `no-store` on the API; the session as an
//! HttpOnly cookie that script never sees, refused without an allowed `Origin` on anything that changes
//! state; the live stream over the cookie; and the OpenAPI document the web client's types come from.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use renkei_protocol::{ErrorBody, ErrorCode};
use renkei_tests::{PASSWORD, both_backends};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn header(r: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> &str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Logs in with a cookie session from `origin`; returns the `name=value` pair to send back.
async fn cookie_login(base: &str, login: &str, origin: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header(ORIGIN, origin)
        .json(&serde_json::json!({ "login": login, "password": PASSWORD, "session": "cookie" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = header(&r, SET_COOKIE).to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("token").is_none(), "a cookie session's token must not reach script: {body}");
    set.split(';').next().unwrap().to_owned()
}

both_backends!(
    async fn the_web_client_is_served_with_cache_and_security_headers(app: TestApp) {
        let http = reqwest::Client::new();
        let index = http.get(format!("{}/", app.base_url)).send().await.unwrap();
        assert_eq!(index.status(), StatusCode::OK);
        assert!(header(&index, CONTENT_TYPE).starts_with("text/html"));
        assert_eq!(header(&index, CACHE_CONTROL), "no-cache");
        let csp = header(&index, CONTENT_SECURITY_POLICY).to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header(&index, "x-content-type-options"), "nosniff");
        assert_eq!(header(&index, "referrer-policy"), "no-referrer");
        // The page's script is a hashed asset, cached for good.
        let html = index.text().await.unwrap();
        let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
        assert!(script.starts_with("/assets/"), "{script}");
        let asset = http.get(format!("{}{script}", app.base_url)).send().await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK);
        assert!(header(&asset, CONTENT_TYPE).contains("javascript"));
        assert!(header(&asset, CACHE_CONTROL).contains("immutable"));
        // No inline script anywhere in the page: the policy would block it.
        assert!(!html.contains("<script>"), "inline script in index.html");

        // API answers are never stored; unknown API paths stay typed JSON errors.
        let api = http.get(format!("{}/api/v1/me", app.base_url)).send().await.unwrap();
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&api, CACHE_CONTROL), "no-store");
        assert_eq!(header(&api, "x-content-type-options"), "nosniff");
        let missing = http.get(format!("{}/api/v1/nothing-here", app.base_url)).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.json::<ErrorBody>().await.unwrap().code, ErrorCode::NotFound);
        assert_eq!(
            http.get(format!("{}/nothing.js", app.base_url)).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        // Plain HTTP on loopback: no HSTS (a TLS server sends it, see tls.rs).
        assert!(index_hsts(&app.base_url).await.is_none());
    }
);

async fn index_hsts(base: &str) -> Option<String> {
    let r = reqwest::Client::new().get(format!("{base}/")).send().await.unwrap();
    r.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned())
}

both_backends!(
    async fn a_cookie_session_works_and_needs_an_allowed_origin_to_change_anything(app: TestApp) {
        let team = app.team().await;
        let own = app.base_url.clone();
        let cookie = cookie_login(&app.base_url, "ns-sato", &own).await;
        let http = reqwest::Client::new();
        let me = http.get(format!("{}/api/v1/me", app.base_url)).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(header(&me, CACHE_CONTROL), "no-store");

        let post = |origin: Option<&str>, id: &str| {
            let mut r = http
                .post(format!("{}/api/v1/groups/{}/posts", app.base_url, team.group))
                .header(COOKIE, &cookie)
                .json(&serde_json::json!({ "kind": "update", "body": "訪問しました", "client_msg_id": id }));
            if let Some(o) = origin {
                r = r.header(ORIGIN, o);
            }
            r.send()
        };
        // Another site's page, or no Origin at all: refused, nothing posted.
        for (origin, id) in [(Some("https://evil.example"), "x-1"), (None, "x-2"), (Some("null"), "x-3")] {
            let r = post(origin, id).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?}");
            assert_eq!(r.json::<ErrorBody>().await.unwrap().code, ErrorCode::Forbidden);
        }
        assert_eq!(team.doctor.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 0);
        // The server's own page: accepted.
        assert_eq!(post(Some(&own), "ok-1").await.unwrap().status(), StatusCode::CREATED);

        // A cookie session cannot be opened from another site's page.
        let r = http
            .post(format!("{}/api/v1/auth/login", app.base_url))
            .header(ORIGIN, "https://evil.example")
            .json(&serde_json::json!({ "login": "ns-sato", "password": PASSWORD, "session": "cookie" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get(SET_COOKIE).is_none());

        // Logout ends the session and clears the cookie.
        let out = http
            .post(format!("{}/api/v1/auth/logout", app.base_url))
            .header(COOKIE, &cookie)
            .header(ORIGIN, &own)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        assert!(header(&out, SET_COOKIE).contains("Max-Age=0"));
        let after = http.get(format!("{}/api/v1/me", app.base_url)).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    async fn the_live_stream_opens_with_the_cookie_from_the_servers_own_page_only(app: TestApp) {
        let _team = app.team().await;
        let own = app.base_url.clone();
        let cookie = cookie_login(&app.base_url, "ns-sato", &own).await;
        let url = format!("{}/api/v1/ws", app.base_url.replacen("http", "ws", 1));
        let open = |origin: &str| {
            let mut request = url.clone().into_client_request().unwrap();
            request.headers_mut().insert("cookie", cookie.parse().unwrap());
            request.headers_mut().insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(request)
        };
        assert!(open("https://evil.example").await.is_err(), "another site's page opened the live stream");
        let (mut socket, _) = open(&own).await.expect("the server's own page opens the live stream");
        socket.send(Message::Text(r#"{"type":"ping","id":"p"}"#.into())).await.unwrap();
        let reply =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a pong").unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), r#"{"type":"pong","id":"p"}"#);
    }
);

both_backends!(
    async fn invalid_utf8_in_a_text_frame_is_closed_with_1007(app: TestApp) {
        let team = app.team().await;
        let url = format!("{}/api/v1/ws", app.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let token = team.nurse.token().unwrap().expose().to_owned();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        // tungstenite will not build a Text message from bytes that are not UTF-8; write the frame by hand
        // on the raw stream: FIN + text opcode, masked, payload 0xff 0xfe.
        let mut stream = socket.into_inner();
        let (mask, payload) = ([1u8, 2, 3, 4], [0xffu8, 0xfe]);
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = &mut stream else { panic!("plain TCP expected") };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tcp.write_all(&frame).await.unwrap();
        let mut reply = [0u8; 128];
        let n =
            tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut reply)).await.expect("a close frame").unwrap();
        assert!(n >= 4, "no close frame: {:?}", &reply[..n]);
        assert_eq!(reply[0], 0x88, "not a close frame: {:?}", &reply[..n]);
        let code = u16::from_be_bytes([reply[2], reply[3]]);
        assert_eq!(code, 1007, "close frame {:?}", &reply[..n]);
    }
);

both_backends!(
    async fn the_websocket_emergency_refusal_carries_the_physicians_phone(app: TestApp) {
        use renkei_protocol::{ClientFrame, ServerFrame};
        let team = app.team().await;
        let mut live = team.nurse.connect_live().await.unwrap();
        let post = renkei_tests::care::update("昨夜から急変しています", "n-emergency");
        live.send(&ClientFrame::Post { id: "e".into(), group_id: team.group, post }).await.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
        let ServerFrame::Error { code, fields, .. } = frame else { panic!("expected a refusal, got {frame:?}") };
        assert_eq!(code, ErrorCode::EmergencyUseProhibited);
        assert_eq!(fields.get("attending_physician_phone").map(String::as_str), Some("0422-51-0000"));
        assert!(fields.get("matched").is_some_and(|m| m.contains("急変")), "{fields:?}");
    }
);

/// The web client's types are generated from `web/openapi.json`; it must be the document the server
/// serves, or the client is typed against a contract that no longer exists. Regenerate with
/// `cargo run -p renkei-server -- openapi > web/openapi.json` (then `npm run gen` in web/).
#[test]
fn the_web_clients_copy_of_the_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/openapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("web/openapi.json")).expect("JSON");
    let current = serde_json::to_value(renkei_tests::renkei_server::http::openapi_document()).unwrap();
    assert!(
        committed == current,
        "web/openapi.json differs from the server's document: run `cargo run -p renkei-server -- openapi > web/openapi.json` and `npm run gen` in web/"
    );
}

/// `web/asyncapi.json` is what the web client's unit tests check against the AsyncAPI specification; it
/// must be the document the server serves. Regenerate with
/// `cargo run -p renkei-server -- asyncapi > web/asyncapi.json`.
#[test]
fn the_committed_asyncapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/asyncapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("web/asyncapi.json")).expect("JSON");
    assert!(
        committed == renkei_tests::renkei_server::http::asyncapi_document(),
        "web/asyncapi.json differs from the server's document: run `cargo run -p renkei-server -- asyncapi > web/asyncapi.json`"
    );
}
