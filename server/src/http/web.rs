//! The web client at `/`: the files of `web/dist` (built by Vite, committed, see ARCHITECTURE.md) embedded
//! in the binary, and the headers every response carries (Content-Security-Policy, nosniff, no-store on
//! the API, HSTS under TLS).

use axum::extract::{Path, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
struct Assets;

/// Scripts, styles, images, connections (fetch and the WebSocket), the manifest and the service worker:
/// this origin only, nothing inline, nothing third-party; no framing, no plugins, no `<base>`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub(super) fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/", axum::routing::get(index)).route("/{*path}", axum::routing::get(asset))
}

async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| ApiError::NotFound.into_response())
}

async fn asset(Path(path): Path<String>) -> Response {
    // Unknown API paths stay JSON errors; the client routes with the URL fragment, so any other path
    // without a file is simply not found.
    if path.starts_with("api/") {
        return ApiError::NotFound.into_response();
    }
    serve(&path).unwrap_or_else(|| ApiError::NotFound.into_response())
}

fn serve(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = file.metadata.mimetype();
    // Hashed file names under assets/ never change their content; everything else is checked each time,
    // so a new server version reaches phones on their next visit.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_str(mime).ok()?);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(response)
}

/// Headers every response carries. API answers are never stored by a browser or a proxy: they hold
/// clinical content or tokens.
pub(super) async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/") || req.uri().path() == "/metrics";
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A handler's own (stricter) policy stands: an attachment is served sandboxed and `private, no-store`.
    headers.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    if api {
        headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    if state.config.tls_cert.is_some() || state.config.behind_tls_proxy {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}
