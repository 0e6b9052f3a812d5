//! `/api/v1/me/notifications`: my notification settings and the browsers I subscribed for Web Push.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{ErrorBody, NewPushSubscription, NotificationSettings, NotificationsView, PushDevice};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiJson;
use crate::auth::Member;
use crate::domain::{self, FieldError};
use crate::error::ApiError;
use crate::policy::notifications::{check_settings, endpoint_allowed};
use crate::state::AppState;

/// Devices one member may subscribe.
const MAX_DEVICES: usize = 10;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_notifications, put_notifications))
        .routes(routes!(add_device))
        .routes(routes!(remove_device))
}

async fn view(state: &AppState, user: Uuid) -> Result<NotificationsView, ApiError> {
    Ok(NotificationsView {
        settings: state.store.notification_settings(user).await?,
        vapid_public_key: state.notifier.vapid_public_key().to_owned(),
        email_available: state.notifier.email_available(),
        devices: state.store.push_devices(user).await?,
    })
}

/// My notification settings, the server's VAPID key and my subscribed devices.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = NotificationsView), (status = 401, body = ErrorBody)))]
async fn get_notifications(
    State(state): State<AppState>,
    caller: Member,
) -> Result<axum::Json<NotificationsView>, ApiError> {
    Ok(axum::Json(view(&state, caller.0.account.id()).await?))
}

/// Sets my channels (push, e-mail), my address and my digest interval. Notifications say only how many new
/// posts wait, never what they say, and never outside my availability hours.
#[utoipa::path(put, path = "/api/v1/me/notifications", tag = "me", security(("bearer" = [])),
    request_body = NotificationSettings,
    responses((status = 200, body = NotificationsView),
        (status = 422, description = "validation_failed: digest_minutes out_of_range, email_address required/invalid/not_available", body = ErrorBody)))]
async fn put_notifications(
    State(state): State<AppState>,
    caller: Member,
    ApiJson(mut settings): ApiJson<NotificationSettings>,
) -> Result<axum::Json<NotificationsView>, ApiError> {
    settings.email_address = settings.email_address.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let mut problems = check_settings(&settings);
    if settings.email && !state.notifier.email_available() {
        problems.push(FieldError::new("email", "not_available"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let user = caller.0.account.id();
    state.store.set_notification_settings(user, &settings, domain::now()).await?;
    Ok(axum::Json(view(&state, user).await?))
}

/// Keeps this browser's push subscription (what `PushSubscription.toJSON()` gives, with a device name).
#[utoipa::path(post, path = "/api/v1/me/notifications/devices", tag = "me", security(("bearer" = [])),
    request_body = NewPushSubscription,
    responses((status = 201, body = PushDevice),
        (status = 422, description = "validation_failed: endpoint (push_service_not_allowed, https_required, not_a_url), keys, device, devices too_many", body = ErrorBody)))]
async fn add_device(
    State(state): State<AppState>,
    caller: Member,
    ApiJson(req): ApiJson<NewPushSubscription>,
) -> Result<(StatusCode, axum::Json<PushDevice>), ApiError> {
    let mut problems = Vec::new();
    if let Err(p) = endpoint_allowed(&req.endpoint, &state.config.push_services) {
        problems.push(FieldError::new("endpoint", p));
    }
    if let Err(which) = crate::notifications::check_push_keys(&req.keys.p256dh, &req.keys.auth) {
        problems.push(FieldError::new(if which == "auth" { "keys.auth" } else { "keys.p256dh" }, "invalid"));
    }
    let device = req.device.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if device.is_some_and(|d| d.chars().count() > 60 || d.chars().any(char::is_control)) {
        problems.push(FieldError::new("device", "invalid"));
    }
    let user = caller.0.account.id();
    let devices = state.store.push_devices(user).await?;
    if devices.len() >= MAX_DEVICES {
        problems.push(FieldError::new("devices", "too_many"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let device = state
        .store
        .add_push_subscription(user, &req.endpoint, &req.keys.p256dh, &req.keys.auth, device, domain::now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(device)))
}

/// Stops push notifications to one of my devices.
#[utoipa::path(delete, path = "/api/v1/me/notifications/devices/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_device(
    State(state): State<AppState>,
    caller: Member,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    if state.store.remove_push_subscription(caller.0.account.id(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
