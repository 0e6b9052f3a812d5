//! `/api/v1/auth`: log in (password, then TOTP when enabled), log out, set the first password with a
//! setup token.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use renkei_protocol::{
    ErrorBody, LoginRequest, LoginResponse, ReauthenticateRequest, SessionTransport, SetupPasswordRequest,
};
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use crate::audit::{Actor, Audit, action};
use crate::auth::{AnySession, ClientInfo, Member, cookie, password, token, totp};
use crate::domain::{self, Login};
use crate::error::ApiError;
use crate::messaging::hub::SessionsEnded;
use crate::metrics::LoginOutcome;
use crate::policy;
use crate::state::AppState;
use crate::store::NewSession;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(setup_password))
        .routes(routes!(reauthenticate))
}

/// The window over which failed logins are counted.
const FAILURE_WINDOW: Duration = Duration::hours(1);

/// Logs in with login and password, and the TOTP code when the account has TOTP enabled.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "invalid_credentials (also for a disabled account, whatever the password), totp_required or totp_invalid", body = ErrorBody),
        (status = 403, description = "forbidden when a cookie session is asked for from an origin not allowed", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let typed_login: String = req.login.trim().to_lowercase().chars().take(64).collect();
    let transport = req.session;
    // A cookie session is for a page of this server (or an allowed origin) only: another site must not be
    // able to log a browser into an account of its choosing.
    if transport == SessionTransport::Cookie && !cookie::origin_is_own_or_allowed(&headers, &state.config) {
        return Err(ApiError::Forbidden(policy::Denied::OriginNotAllowed));
    }
    let outcome = try_login(&state, &client, req).await;
    if let Err(e) = &outcome
        && !matches!(e, ApiError::TotpRequired)
    {
        let reason = e.body().code;
        let details = serde_json::json!({ "login": typed_login, "reason": reason });
        let act = if matches!(e, ApiError::TotpInvalid) { action::TOTP_FAILED } else { action::LOGIN_FAILED };
        // An operator watching the log sees an attack; what was typed stays in the audit log only.
        tracing::warn!(reason = %reason, client = %client.addr, "login refused");
        // A refusal that cannot be recorded is not answered as one: nothing happens without its entry.
        state.audit.record(act, &Actor::from(&client), None, None, details).await?;
    }
    state.metrics.login(match &outcome {
        Ok(_) => LoginOutcome::Success,
        Err(ApiError::TooManyAttempts(_)) => LoginOutcome::Throttled,
        Err(ApiError::TotpRequired) => LoginOutcome::TotpRequired,
        Err(_) => LoginOutcome::Failure,
    });
    let mut response = outcome?;
    if transport == SessionTransport::Cookie {
        let token = response.token.take().ok_or_else(|| ApiError::internal(anyhow::anyhow!("no token")))?;
        let max_age = (response.expires_at - domain::now()).whole_seconds().max(0);
        let set = cookie::set_session(token.expose(), max_age)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("token is not a cookie value")))?;
        let mut reply = axum::Json(response).into_response();
        reply.headers_mut().insert(SET_COOKIE, set);
        return Ok(reply);
    }
    Ok(axum::Json(response).into_response())
}

/// Counts a password attempt for `login` from the client's address before the password is checked (see
/// `Store::reserve_login_attempt`), or refuses it while the throttle says wait. Login and re-authentication
/// share it, so a stolen session is no way around the throttle.
async fn reserve_attempt(
    state: &AppState,
    login: &str,
    client: &ClientInfo,
    now: time::OffsetDateTime,
) -> Result<i64, ApiError> {
    state
        .store
        .reserve_login_attempt(login, &client.addr, now, now - FAILURE_WINDOW, |stats| {
            policy::login_throttle(stats, now, &state.config)
        })
        .await?
        .map_err(|t| ApiError::TooManyAttempts(t.retry_after))
}

async fn try_login(state: &AppState, client: &ClientInfo, req: LoginRequest) -> Result<LoginResponse, ApiError> {
    let now = domain::now();
    // Failures are counted against what was typed, whether or not such an account exists, so throttling
    // behaves the same for real and unknown logins.
    let typed: String = req.login.trim().to_lowercase().chars().take(64).collect();
    // The attempt is counted as a failure before the password is checked (and taken back if it turns
    // out not to fail), so a burst of concurrent attempts cannot all slip in under the back-off.
    let attempt = reserve_attempt(state, &typed, client, now).await?;

    let account = match Login::parse(&typed) {
        Ok(login) => state.store.account_by_login(login.as_str()).await?,
        Err(_) => None,
    };
    let stored_hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let password_ok = password::verify(&req.password, stored_hash).await.map_err(ApiError::internal)?;
    // A disabled account answers exactly as a wrong password does: otherwise the difference tells whoever
    // holds a leaked password that it is right.
    let Some(account) = account.filter(|a| password_ok && a.is_active()) else {
        state.store.settle_login_failure(attempt).await?;
        return Err(ApiError::InvalidCredentials);
    };
    if account.totp_secret.is_some() {
        let Some(code) = req.totp_code.as_deref() else {
            state.store.release_login_attempt(attempt).await?;
            return Err(ApiError::TotpRequired);
        };
        let accepted = second_factor_accepted(state, &account, code, client, now).await?;
        if !accepted {
            state.store.settle_login_failure(attempt).await?;
            return Err(ApiError::TotpInvalid);
        }
    }

    state.store.clear_login_failures(&typed, &client.addr).await?;
    let (token, token_hash) = token::generate(token::SESSION_PREFIX).map_err(ApiError::internal)?;
    let expires_at = now + Duration::hours(i64::from(state.config.session_absolute_hours));
    // The session's id is filled in by the store, which opens it and records the login together.
    let actor = Actor { id: Some(account.id()), client_addr: Some(client.addr.clone()), session_id: None };
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
            Audit::entry(action::LOGIN, &actor, None, Some(account.id()), serde_json::json!({})),
            now,
        )
        .await?;
    tracing::info!(user = %account.id(), session = %session.id, "login");
    Ok(LoginResponse {
        token: Some(token),
        session_id: session.id,
        expires_at: session.expires_at,
        pending: policy::pending_step(&account, state.config.require_totp),
        user: account.user,
    })
}

/// Six digits from the authenticator, or one of the recovery codes shown at enrolment (each once).
async fn second_factor_accepted(
    state: &AppState,
    account: &crate::domain::Account,
    code: &str,
    client: &ClientInfo,
    now: time::OffsetDateTime,
) -> Result<bool, ApiError> {
    let Some(secret) = &account.totp_secret else { return Ok(true) };
    Ok(match (totp::matching_step(secret, code), totp::recovery_hash(code)) {
        (Some(step), _) => state.store.accept_totp_step(account.id(), step).await?,
        (None, Some(hash)) => {
            let actor = Actor { id: Some(account.id()), client_addr: Some(client.addr.clone()), session_id: None };
            let audit =
                Audit::entry(action::TOTP_RECOVERY_USED, &actor, None, Some(account.id()), serde_json::json!({}));
            state.store.use_recovery_code(account.id(), &hash, audit, now).await?
        }
        (None, None) => false,
    })
}

/// Enters the password (and the TOTP code, when enrolled) again, so that this session's sign-in is recent:
/// an administrator needs it before changing accounts, groups or exports once `admin_reauth_seconds` have
/// passed since signing in. Wrong passwords count against the login throttle as at login.
#[utoipa::path(post, path = "/api/v1/auth/reauthenticate", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    request_body = ReauthenticateRequest,
    responses(
        (status = 204, description = "the session's sign-in is recent again"),
        (status = 401, description = "invalid_credentials (the session stays), totp_required, totp_invalid or unauthenticated", body = ErrorBody),
        (status = 429, description = "too_many_attempts", body = ErrorBody),
    ))]
async fn reauthenticate(
    State(state): State<AppState>,
    caller: Member,
    client: ClientInfo,
    ApiJson(req): ApiJson<ReauthenticateRequest>,
) -> Result<StatusCode, ApiError> {
    let Member(caller) = caller;
    let now = domain::now();
    let account = &caller.account;
    let attempt = reserve_attempt(&state, &account.user.login, &client, now).await?;
    let password_ok =
        password::verify(&req.password, account.password_hash.clone()).await.map_err(ApiError::internal)?;
    let refusal = match (password_ok, account.totp_secret.is_some(), req.totp_code.as_deref()) {
        (false, _, _) => Some(ApiError::InvalidCredentials),
        (true, false, _) => None,
        (true, true, None) => Some(ApiError::TotpRequired),
        (true, true, Some(code)) => {
            (!second_factor_accepted(&state, account, code, &client, now).await?).then_some(ApiError::TotpInvalid)
        }
    };
    let actor = Actor::from(&caller);
    match refusal {
        None => {
            state.store.release_login_attempt(attempt).await?;
            let audit = Audit::entry(action::REAUTHENTICATED, &actor, None, Some(account.id()), serde_json::json!({}));
            state.store.reauthenticated(caller.session.id, audit, now).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        // Asking for the second factor is no failure; a wrong password or code counts and is audited.
        Some(ApiError::TotpRequired) => {
            state.store.release_login_attempt(attempt).await?;
            Err(ApiError::TotpRequired)
        }
        Some(error) => {
            state.store.settle_login_failure(attempt).await?;
            let act = if matches!(error, ApiError::TotpInvalid) { action::TOTP_FAILED } else { action::LOGIN_FAILED };
            let details = serde_json::json!({
                "login": account.user.login, "reason": error.body().code, "reauthentication": true,
            });
            state.audit.record(act, &actor, None, Some(account.id()), details).await?;
            Err(error)
        }
    }
}

/// Ends the calling session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, caller: AnySession) -> Result<Response, ApiError> {
    let audit =
        Audit::entry(action::LOGOUT, &Actor::from(&caller), None, Some(caller.account.id()), serde_json::json!({}));
    state.store.revoke_session(caller.account.id(), caller.session.id, audit, domain::now()).await?;
    state.messaging.sessions_ended(&[(caller.account.id(), SessionsEnded::One(caller.session.id))]).await;
    let mut reply = StatusCode::NO_CONTENT.into_response();
    if caller.via_cookie {
        reply.headers_mut().insert(SET_COOKIE, cookie::clear_session());
    }
    Ok(reply)
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
    // The account (actor and target) is filled in by the store, which finds it from the token.
    let audit = Audit::entry(action::PASSWORD_SET, &Actor::default(), None, None, serde_json::json!({}));
    let account = state
        .store
        .use_setup_token(&token::hash(req.setup_token.expose()), &hash, audit, domain::now())
        .await?
        .ok_or(ApiError::SetupTokenInvalid)?;
    tracing::info!(user = %account.id(), "password set with setup token");
    Ok(StatusCode::NO_CONTENT)
}
