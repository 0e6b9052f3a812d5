//! `/api/v1/me`: the caller's own account, password, second factor and sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{
    Availability, ChangePasswordRequest, ErrorBody, PendingStep, Session, SessionList, TotpCode, TotpConfirmed,
    TotpEnrollment, User,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiJson;
use crate::audit::{Actor, Audit, action};
use crate::auth::{AnySession, Member, password, totp};
use crate::domain::{self, SessionInfo};
use crate::domain::{FieldError, parse_notes};
use crate::error::ApiError;
use crate::messaging::hub::SessionsEnded;
use crate::policy;
use crate::policy::availability;
use crate::state::AppState;
use crate::store::Conflict;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(totp_enroll))
        .routes(routes!(totp_confirm))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(get_availability, put_availability))
}

/// The caller's own account. Works even while a pending step (password change, TOTP enrolment) is due.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(caller: AnySession) -> axum::Json<User> {
    axum::Json(caller.account.user)
}

/// Changes the caller's password. Every other session of the caller ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, description = "invalid_credentials: current password wrong", body = ErrorBody),
        (status = 422, description = "password_too_weak", body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: AnySession,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    policy::check_new_password(req.new_password.expose(), caller.account.user.totp_enabled)
        .map_err(ApiError::PasswordTooWeak)?;
    let current_ok = password::verify(&req.current_password, caller.account.password_hash.clone())
        .await
        .map_err(ApiError::internal)?;
    if !current_ok {
        return Err(ApiError::InvalidCredentials);
    }
    if req.new_password == req.current_password {
        return Err(ApiError::PasswordTooWeak("same_as_current"));
    }
    let hash = password::hash(&req.new_password).await.map_err(ApiError::internal)?;
    let audit = Audit::entry(
        action::PASSWORD_CHANGED,
        &Actor::from(&caller),
        None,
        Some(caller.account.id()),
        serde_json::json!({}),
    );
    state.store.set_password(caller.account.id(), &hash, Some(caller.session.id), audit, domain::now()).await?;
    let ended = SessionsEnded::AllBut(Some(caller.session.id));
    state.messaging.sessions_ended(&[(caller.account.id(), ended)]).await;
    tracing::info!(user = %caller.account.id(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Starts TOTP enrolment: a new secret, active once a code from it is confirmed.
#[utoipa::path(post, path = "/api/v1/me/totp/enroll", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrollment), (status = 409, description = "TOTP already enabled", body = ErrorBody)))]
async fn totp_enroll(
    State(state): State<AppState>,
    caller: AnySession,
) -> Result<axum::Json<TotpEnrollment>, ApiError> {
    if caller.pending(&state) == Some(PendingStep::ChangePassword) {
        return Err(ApiError::Pending(PendingStep::ChangePassword));
    }
    if caller.account.user.totp_enabled {
        return Err(ApiError::Conflict(Conflict::TotpAlreadyEnabled));
    }
    let (secret, otpauth_uri) = totp::enroll(&caller.account.user.login)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("TOTP secret generation failed")))?;
    state.store.set_totp_pending(caller.account.id(), secret.expose(), domain::now()).await?;
    Ok(axum::Json(TotpEnrollment { secret, otpauth_uri }))
}

/// Confirms TOTP enrolment with a current code; from now on login needs a code too. The answer carries
/// the recovery codes, shown this once.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "me", security(("bearer" = [])),
    request_body = TotpCode,
    responses((status = 200, body = TotpConfirmed), (status = 401, description = "totp_invalid", body = ErrorBody),
        (status = 404, description = "not_found: no enrolment was started (POST /api/v1/me/totp/enroll)", body = ErrorBody)))]
async fn totp_confirm(
    State(state): State<AppState>,
    caller: AnySession,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<axum::Json<TotpConfirmed>, ApiError> {
    let pending = caller.account.totp_pending_secret.as_deref().ok_or(ApiError::NotFound)?;
    let step = totp::matching_step(pending, &req.code).ok_or(ApiError::TotpInvalid)?;
    let id = caller.account.id();
    let codes = totp::recovery_codes().map_err(ApiError::internal)?;
    let hashes: Vec<String> = codes.iter().map(|(_, h)| h.clone()).collect();
    let audit = Audit::entry(action::TOTP_ENROLLED, &Actor::from(&caller), None, Some(id), serde_json::json!({}));
    if !state.store.confirm_totp(id, pending, step, &hashes, audit, domain::now()).await? {
        return Err(ApiError::TotpInvalid);
    }
    tracing::info!(user = %id, "TOTP enabled");
    let account = state.store.account_by_id(id).await?.ok_or(ApiError::Unauthenticated)?;
    Ok(axum::Json(TotpConfirmed { user: account.user, recovery_codes: codes.into_iter().map(|(c, _)| c).collect() }))
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    Member(caller): Member,
) -> Result<axum::Json<SessionList>, ApiError> {
    let now = domain::now();
    let idle_cutoff = now - time::Duration::minutes(i64::from(state.config.session_idle_minutes));
    let sessions = state.store.list_sessions(caller.account.id(), now, idle_cutoff).await?;
    let current = caller.session.id;
    let sessions = sessions.into_iter().map(|s| session_view(s, current)).collect();
    Ok(axum::Json(SessionList { sessions }))
}

fn session_view(s: SessionInfo, current: Uuid) -> Session {
    Session {
        current: s.id == current,
        id: s.id,
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        client_addr: s.client_addr,
        user_agent: s.user_agent,
    }
}

/// Ends one of the caller's sessions (a lost phone, a shared PC).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    Member(caller): Member,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let details = serde_json::json!({ "session": id });
    let audit = Audit::entry(action::SESSION_REVOKED, &Actor::from(&caller), None, Some(caller.account.id()), details);
    if state.store.revoke_session(caller.account.id(), id, audit, domain::now()).await? {
        state.messaging.sessions_ended(&[(caller.account.id(), SessionsEnded::One(id))]).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// My availability hours and contact preference (rule 5).
#[utoipa::path(get, path = "/api/v1/me/availability", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Availability)))]
async fn get_availability(State(state): State<AppState>, caller: Member) -> Result<axum::Json<Availability>, ApiError> {
    Ok(axum::Json(state.store.availability(caller.0.account.id()).await?))
}

/// Sets my availability hours (weekly windows in the server's time zone) and contact preference.
#[utoipa::path(put, path = "/api/v1/me/availability", tag = "me", security(("bearer" = [])),
    request_body = Availability, responses((status = 200, body = Availability), (status = 422, body = ErrorBody)))]
async fn put_availability(
    State(state): State<AppState>,
    caller: Member,
    ApiJson(mut availability): ApiJson<Availability>,
) -> Result<axum::Json<Availability>, ApiError> {
    let mut problems = Vec::new();
    if availability.windows.len() > 50 {
        problems.push(FieldError::new("windows", "too_many"));
    }
    for w in &availability.windows {
        if let Err(problem) = availability::check_window(w) {
            problems.push(FieldError::new("windows", problem));
        }
    }
    match parse_notes("contact_preference", availability.contact_preference.as_deref(), 500) {
        Ok(p) => availability.contact_preference = p,
        Err(e) => problems.push(e),
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let user = caller.0.account.id();
    state.store.set_availability(user, &availability).await?;
    // Whoever posts next in one of my groups is told whether I am off hours by these hours, not by the
    // ones cached for a second.
    let groups: Vec<Uuid> = state.store.groups_of(user).await?.into_iter().map(|(g, _)| g.id).collect();
    state.messaging.contexts_changed(&groups).await;
    Ok(axum::Json(availability))
}
