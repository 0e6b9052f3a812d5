//! Operational endpoints outside the versioned API: liveness, readiness, Prometheus metrics. `/metrics`
//! answers only whom the configuration allows (`metrics_listen`, `metrics_token_file`, else a loopback
//! client of a node not behind a proxy); anyone else gets `not_found`, as for any unknown path.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(main_metrics))
}

/// The router of `metrics_listen`: `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(own_metrics)).fallback(|| async { ApiError::NotFound }).with_state(state)
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers too.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ping().await.map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok("ready\n")
}

/// The token in `metrics_token_file`, read at each scrape (so it can be rotated without a restart).
fn token(state: &AppState) -> Result<Option<String>, ApiError> {
    let Some(path) = &state.config.metrics_token_file else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading metrics_token_file {}: {e}", path.display())))?;
    Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Compared as digests, so the comparison's time says nothing about the token.
    use sha2::Digest;
    given.is_some_and(|g| sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(token.as_bytes()))
}

async fn main_metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let allowed = match token(&state)? {
        _ if state.config.metrics_listen.is_some() => false,
        Some(token) => bearer_matches(&headers, &token),
        None => peer.ip().is_loopback() && !state.config.behind_tls_proxy,
    };
    if !allowed {
        return Err(ApiError::NotFound);
    }
    render(&state).await
}

async fn own_metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<axum::response::Response, ApiError> {
    if let Some(token) = token(&state)?
        && !bearer_matches(&headers, &token)
    {
        return Err(ApiError::NotFound);
    }
    render(&state).await
}

async fn render(state: &AppState) -> Result<axum::response::Response, ApiError> {
    let (connections, idle) = state.store.pool_stats();
    let audit = state.store.audit_last().await.ok().flatten().map(|e| e.seq);
    state.metrics.scraped(connections, idle, audit);
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response())
}
