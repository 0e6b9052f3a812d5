//! `/api/v1/admin/users`: administrators register professionals (closed network: no self sign-up),
//! list them, disable and re-enable them, and hand out setup tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{AccountStatus, CreateUserRequest, CreatedUser, ErrorBody, SetupToken, User, UserList};
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, resolve_user};
use crate::audit::{Actor, Audit, action};
use crate::auth::{Admin, AnySession, RecentAdmin, password, token};
use crate::domain::{self, DisplayName, FieldError, Login, Organisation, Phone};
use crate::error::ApiError;
use crate::messaging::hub::SessionsEnded;
use crate::policy;
use crate::state::AppState;
use crate::store::NewUser;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(show_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(new_setup_token))
        .routes(routes!(reset_totp))
        .routes(routes!(user_sessions))
}

/// Registers a professional. Without `initial_password` the answer carries a one-time setup token to hand
/// over; with one, the user must change it at first login.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<CreatedUser>), ApiError> {
    let login = Login::parse(&req.login);
    let display_name = DisplayName::parse(&req.display_name);
    let organisation = Organisation::parse(&req.organisation);
    let phone = req.phone.as_deref().filter(|p| !p.trim().is_empty()).map(Phone::parse).transpose();
    let kana = domain::parse_optional_label("kana", req.kana.as_deref(), 100);
    let password_problem = req
        .initial_password
        .as_ref()
        .and_then(|pw| policy::check_new_password(pw.expose(), false).err())
        .map(|p| FieldError::new("initial_password", p));
    // Report every invalid field at once, so the administrator fixes the form in one go.
    let (Ok(login), Ok(display_name), Ok(organisation), Ok(phone), Ok(kana), None) =
        (&login, &display_name, &organisation, &phone, &kana, &password_problem)
    else {
        let problems = [login.err(), display_name.err(), organisation.err(), phone.err(), kana.err(), password_problem];
        return Err(ApiError::Validation(problems.into_iter().flatten().collect()));
    };
    let (login, display_name, organisation, phone, kana) =
        (login.clone(), display_name.clone(), organisation.clone(), phone.clone(), kana.clone());

    let now = domain::now();
    let password_hash = match &req.initial_password {
        Some(pw) => Some(password::hash(pw).await.map_err(ApiError::internal)?),
        None => None,
    };
    let setup = match password_hash {
        Some(_) => None,
        None => Some(new_setup(&state, now)?),
    };
    let details = serde_json::json!({ "role": req.role.as_str(), "profession": req.profession.as_str() });
    let audit = Audit::entry(action::ACCOUNT_CREATED, &Actor::from(&caller), None, None, details);
    let account = state
        .store
        .create_user(
            NewUser {
                login,
                display_name,
                kana,
                profession: req.profession,
                organisation,
                phone,
                role: req.role,
                password_hash,
                must_change_password: true,
                setup_token: setup.as_ref().map(|(t, hash)| (hash.clone(), t.expires_at)),
            },
            audit,
            now,
        )
        .await?;
    tracing::info!(admin = %caller.account.id(), user = %account.id(), "user created");
    Ok((StatusCode::CREATED, axum::Json(CreatedUser { user: account.user, setup: setup.map(|(t, _)| t) })))
}

fn new_setup(state: &AppState, now: time::OffsetDateTime) -> Result<(SetupToken, String), ApiError> {
    let (token, hash) = token::generate(token::SETUP_PREFIX).map_err(ApiError::internal)?;
    let expires_at = now + Duration::hours(i64::from(state.config.setup_token_hours));
    Ok((SetupToken { token, expires_at }, hash))
}

/// Every account, by login.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, _admin: Admin) -> Result<axum::Json<UserList>, ApiError> {
    let users = state.store.list_accounts().await?.into_iter().map(|a| a.user).collect();
    Ok(axum::Json(UserList { users }))
}

/// One account, by id or login.
#[utoipa::path(get, path = "/api/v1/admin/users/{user}", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn show_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(key): Path<String>,
) -> Result<axum::Json<User>, ApiError> {
    Ok(axum::Json(resolve_user(&state, &key).await?.user))
}

async fn set_status(
    state: &AppState,
    session: &AnySession,
    key: &str,
    status: AccountStatus,
) -> Result<User, ApiError> {
    let caller = &session.account;
    let target = resolve_user(state, key).await?;
    if status == AccountStatus::Disabled && !policy::may_disable(caller, &target) {
        return Err(ApiError::field("user", "cannot_disable_self"));
    }
    let act = if status == AccountStatus::Disabled { action::ACCOUNT_DISABLED } else { action::ACCOUNT_ENABLED };
    let audit = Audit::entry(act, &Actor::from(session), None, Some(target.id()), serde_json::json!({}));
    let account =
        state.store.set_account_status(target.id(), status, audit, domain::now()).await?.ok_or(ApiError::NotFound)?;
    if status == AccountStatus::Disabled {
        state.messaging.user_disabled(account.id()).await;
    }
    tracing::info!(admin = %caller.id(), user = %account.id(), status = status.as_str(), "account status changed");
    Ok(account.user)
}

/// Disables an account and ends every one of its sessions at once.
#[utoipa::path(post, path = "/api/v1/admin/users/{user}/disable", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn disable_user(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(key): Path<String>,
) -> Result<axum::Json<User>, ApiError> {
    set_status(&state, &caller, &key, AccountStatus::Disabled).await.map(axum::Json)
}

/// Re-enables a disabled account.
#[utoipa::path(post, path = "/api/v1/admin/users/{user}/enable", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn enable_user(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(key): Path<String>,
) -> Result<axum::Json<User>, ApiError> {
    set_status(&state, &caller, &key, AccountStatus::Active).await.map(axum::Json)
}

/// Issues a new one-time setup token (a lost token, a forgotten password, a lost phone). Earlier unused
/// tokens stop working and every session of the account ends at once, its live connections with it; the
/// current password keeps working until the token is used.
#[utoipa::path(post, path = "/api/v1/admin/users/{user}/setup-token", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = SetupToken), (status = 404, body = ErrorBody)))]
async fn new_setup_token(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(key): Path<String>,
) -> Result<axum::Json<SetupToken>, ApiError> {
    let target = resolve_user(&state, &key).await?;
    let now = domain::now();
    let (setup, hash) = new_setup(&state, now)?;
    let audit =
        Audit::entry(action::SETUP_TOKEN_ISSUED, &Actor::from(&caller), None, Some(target.id()), serde_json::json!({}));
    state.store.replace_setup_token(target.id(), &hash, setup.expires_at, audit, now).await?;
    state.messaging.sessions_ended(&[(target.id(), SessionsEnded::AllBut(None))]).await;
    tracing::info!(admin = %caller.account.id(), user = %target.id(), "setup token issued");
    Ok(axum::Json(setup))
}

/// Resets a lost authenticator: the user's TOTP and recovery codes are removed and every session of the
/// account ends at once (its live connections with it). The user logs in with the password and enrols
/// again. Audited.
#[utoipa::path(post, path = "/api/v1/admin/users/{user}/totp/reset", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn reset_totp(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(key): Path<String>,
) -> Result<axum::Json<User>, ApiError> {
    let target = resolve_user(&state, &key).await?;
    let audit = Audit::entry(action::TOTP_RESET, &Actor::from(&caller), None, Some(target.id()), serde_json::json!({}));
    if !state.store.reset_totp(target.id(), audit, domain::now()).await? {
        return Err(ApiError::NotFound);
    }
    state.messaging.sessions_ended(&[(target.id(), SessionsEnded::AllBut(None))]).await;
    tracing::info!(admin = %caller.account.id(), user = %target.id(), "TOTP reset");
    let account = state.store.account_by_id(target.id()).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(account.user))
}

/// A user's sessions with their durations: when they logged in, for how long, from where.
#[utoipa::path(get, path = "/api/v1/admin/users/{user}/sessions", tag = "admin", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = renkei_protocol::SessionHistory), (status = 404, body = ErrorBody)))]
async fn user_sessions(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(key): Path<String>,
) -> Result<axum::Json<renkei_protocol::SessionHistory>, ApiError> {
    let target = resolve_user(&state, &key).await?;
    let now = domain::now();
    let idle = Duration::minutes(i64::from(state.config.session_idle_minutes));
    let sessions = state
        .store
        .session_history(target.id())
        .await?
        .into_iter()
        .map(|(s, revoked_at)| {
            // A session ends at its revocation, or when it expired: absolute expiry or the idle timeout.
            let expired = (s.last_seen_at + idle).min(s.expires_at);
            let ended_at = revoked_at.map(|r| r.min(expired)).or((expired <= now).then_some(expired));
            let end = ended_at.unwrap_or(now);
            renkei_protocol::SessionRecord {
                id: s.id,
                started_at: s.created_at,
                last_seen_at: s.last_seen_at,
                ended_at,
                duration_seconds: (end - s.created_at).whole_seconds().max(0),
                client_addr: s.client_addr,
                user_agent: s.user_agent,
            }
        })
        .collect();
    let details = serde_json::json!({ "query": "sessions" });
    state.audit.record(action::AUDIT_QUERIED, &Actor::from(&caller), None, Some(target.id()), details).await?;
    Ok(axum::Json(renkei_protocol::SessionHistory { sessions }))
}
