//! `/api/v1/auth`: log in (password, then TOTP when enabled), log out, set the first password with a
//! setup token.

use axum::extract::State;
use axum::http::StatusCode;
use renkei_protocol::{ErrorBody, LoginRequest, LoginResponse, SetupPasswordRequest};
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use crate::app::AppState;
use crate::audit::{Actor, action};
use crate::auth::{AnySession, ClientInfo, password, token, totp};
use crate::domain::{self, Login};
use crate::error::ApiError;
use crate::metrics::LoginOutcome;
use crate::policy;
use crate::store::NewSession;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout)).routes(routes!(setup_password))
}

/// The window over which failed logins are counted.
const FAILURE_WINDOW: Duration = Duration::hours(1);

/// Logs in with login and password, and the TOTP code when the account has TOTP enabled.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "invalid_credentials, totp_required or totp_invalid", body = ErrorBody),
        (status = 403, description = "account_disabled", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<axum::Json<LoginResponse>, ApiError> {
    let typed_login: String = req.login.trim().to_lowercase().chars().take(64).collect();
    let outcome = try_login(&state, &client, req).await;
    if let Err(e) = &outcome
        && !matches!(e, ApiError::TotpRequired)
    {
        let reason = e.body().code;
        let details = serde_json::json!({ "login": typed_login, "reason": reason });
        let act = if matches!(e, ApiError::TotpInvalid) { action::TOTP_FAILED } else { action::LOGIN_FAILED };
        state.audit.record(act, &Actor::anonymous(&client), None, None, details).await;
    }
    state.metrics.login(match &outcome {
        Ok(_) => LoginOutcome::Success,
        Err(ApiError::TooManyAttempts(_)) => LoginOutcome::Throttled,
        Err(ApiError::TotpRequired) => LoginOutcome::TotpRequired,
        Err(_) => LoginOutcome::Failure,
    });
    outcome.map(axum::Json)
}

async fn try_login(state: &AppState, client: &ClientInfo, req: LoginRequest) -> Result<LoginResponse, ApiError> {
    let now = domain::now();
    // Failures are counted against what was typed, whether or not such an account exists, so throttling
    // behaves the same for real and unknown logins.
    let typed: String = req.login.trim().to_lowercase().chars().take(64).collect();
    let stats = state.store.login_failure_stats(&typed, &client.addr, now - FAILURE_WINDOW).await?;
    policy::login_throttle(&stats, now, &state.config).map_err(|t| ApiError::TooManyAttempts(t.retry_after))?;

    let account = match Login::parse(&typed) {
        Ok(login) => state.store.account_by_login(login.as_str()).await?,
        Err(_) => None,
    };
    let stored_hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let password_ok = password::verify(&req.password, stored_hash).await.map_err(ApiError::internal)?;
    let fail = |e: ApiError| async {
        state.store.record_login_failure(&typed, &client.addr, now, now - FAILURE_WINDOW).await?;
        Err::<LoginResponse, ApiError>(e)
    };
    let Some(account) = account.filter(|_| password_ok) else {
        return fail(ApiError::InvalidCredentials).await;
    };
    if !account.is_active() {
        return Err(ApiError::AccountDisabled);
    }
    if let Some(secret) = &account.totp_secret {
        let Some(code) = req.totp_code.as_deref() else {
            return Err(ApiError::TotpRequired);
        };
        let step = totp::matching_step(secret, code);
        let accepted = match step {
            Some(step) => state.store.accept_totp_step(account.id(), step).await?,
            None => false,
        };
        if !accepted {
            return fail(ApiError::TotpInvalid).await;
        }
    }

    state.store.clear_login_failures(&typed).await?;
    let (token, token_hash) = token::generate(token::SESSION_PREFIX).map_err(ApiError::internal)?;
    let expires_at = now + Duration::hours(i64::from(state.config.session_absolute_hours));
    let session = state
        .store
        .create_session(
            NewSession {
                user_id: account.id(),
                token_hash,
                expires_at,
                client_addr: Some(client.addr.clone()),
                user_agent: client.user_agent.clone(),
            },
            now,
        )
        .await?;
    tracing::info!(user = %account.id(), session = %session.id, "login");
    let actor = Actor { id: Some(account.id()), client_addr: Some(client.addr.clone()), session_id: Some(session.id) };
    state.audit.record(action::LOGIN, &actor, None, Some(account.id()), serde_json::json!({})).await;
    Ok(LoginResponse {
        token,
        session_id: session.id,
        expires_at: session.expires_at,
        pending: policy::pending_step(&account, state.config.require_totp),
        user: account.user,
    })
}

/// Ends the calling session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, caller: AnySession) -> Result<StatusCode, ApiError> {
    state.store.revoke_session(caller.account.id(), caller.session.id, domain::now()).await?;
    state
        .audit
        .record(action::LOGOUT, &Actor::from(&caller), None, Some(caller.account.id()), serde_json::json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the first password of a new account with the one-time setup token its administrator handed over.
#[utoipa::path(post, path = "/api/v1/auth/setup", tag = "auth", request_body = SetupPasswordRequest,
    responses((status = 204), (status = 400, description = "setup_token_invalid", body = ErrorBody),
        (status = 422, description = "password_too_weak", body = ErrorBody)))]
async fn setup_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SetupPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    // A new account has no TOTP yet, so the long minimum applies.
    policy::check_new_password(req.new_password.expose(), false).map_err(ApiError::PasswordTooWeak)?;
    if req.setup_token.expose().len() > 256 {
        return Err(ApiError::SetupTokenInvalid);
    }
    let hash = password::hash(&req.new_password).await.map_err(ApiError::internal)?;
    let account = state
        .store
        .use_setup_token(&token::hash(req.setup_token.expose()), &hash, domain::now())
        .await?
        .ok_or(ApiError::SetupTokenInvalid)?;
    tracing::info!(user = %account.id(), "password set with setup token");
    let actor = Actor { id: Some(account.id()), ..Actor::default() };
    state.audit.record(action::PASSWORD_SET, &actor, None, Some(account.id()), serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
