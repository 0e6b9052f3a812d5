//! `/api/v1/ws`: the live stream. Authenticated at the upgrade — `Authorization: Bearer` for programs; for
//! browsers (which cannot set headers) the session cookie, or the subprotocols `renkei.v1,
//! renkei.token.<token>` — with an Origin check for browsers (this server's own origin or an allowed one). Small buffers keep an idle socket within a few KiB of server memory.

mod conn;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use axum::response::{IntoResponse, Response};

use crate::auth::{AnySession, cookie};
use crate::error::ApiError;
use crate::state::AppState;

/// The subprotocol a browser offers, with its token in a second one: `renkei.token.<token>`.
pub const SUBPROTOCOL: &str = "renkei.v1";
const TOKEN_PROTOCOL_PREFIX: &str = "renkei.token.";
/// What an idle socket keeps for reading. Client frames are small JSON; a larger frame gets room for
/// itself while it is read (in reads of this size), so this bounds memory, not what a client may send.
const READ_BUFFER_BYTES: usize = 1024;
/// Frames queued together (a catch-up page, what waited in the hub inbox) are written this many bytes at
/// a time; a single frame is written at once. The buffer keeps its size after use, so it stays small.
const WRITE_BATCH_BYTES: usize = 8 * 1024;
/// Largest frame or message a client may send; beyond it the connection closes with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route(&format!("{}/ws", renkei_protocol::API_PREFIX), axum::routing::get(upgrade))
}

fn bearer(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(token) =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((token.to_owned(), false));
    }
    let offered = headers.get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let token = offered.split(',').map(str::trim).find_map(|p| p.strip_prefix(TOKEN_PROTOCOL_PREFIX))?;
    Some((token.to_owned(), true))
}

async fn upgrade(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    match accept(state, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn accept(state: AppState, req: axum::extract::Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    // Programs send no Origin; a browser's page must be this server's own or an allowed origin.
    let origin = parts.headers.get(ORIGIN).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !crate::policy::origin_allowed(origin, &state.config.ws_allowed_origins)
        && !cookie::origin_is_own_or_allowed(&parts.headers, &state.config)
    {
        return Err(ApiError::Forbidden(crate::policy::Denied::OriginNotAllowed));
    }
    let (token, via_subprotocol) = bearer(&parts.headers)
        .or_else(|| cookie::session_token(&parts.headers).map(|t| (t.to_owned(), false)))
        .ok_or(ApiError::Unauthenticated)?;
    let session = AnySession::from_token(&state, &token).await?;
    session.mark_authenticated(&parts.extensions);
    if let Some(step) = session.pending(&state) {
        return Err(ApiError::Pending(step));
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::Malformed(format!("not a WebSocket upgrade: {e}")))?;
    let mut upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    if via_subprotocol {
        upgrade = upgrade.protocols([SUBPROTOCOL]);
    }
    tracing::debug!(user = %session.account.id(), "websocket opened");
    Ok(upgrade.on_upgrade(move |socket| conn::run(state, session, socket)))
}
