//! `/api/v1/invitations`: the invitations addressed to me, and my answer to each.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{ErrorBody, Group, Invitation, InvitationList};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::groups::group_view;
use crate::audit::{Actor, Audit, action};
use crate::auth::Member as Caller;
use crate::domain::{self, Membership};
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(accept)).routes(routes!(decline))
}

pub(super) async fn view(state: &AppState, m: Membership) -> Result<Invitation, ApiError> {
    let group = state.store.group(m.group_id).await?.ok_or(ApiError::NotFound)?;
    let invitee = state.store.account_by_id(m.user_id).await?.ok_or(ApiError::NotFound)?;
    let inviter = match m.invited_by {
        Some(id) => state.store.account_by_id(id).await?,
        None => None,
    }
    .ok_or(ApiError::NotFound)?;
    Ok(Invitation {
        id: m.id,
        group_id: m.group_id,
        // An invitee sees the label (e.g. 「山田 花子 様」) to decide; nothing more until they accept.
        group_label: group.label,
        invitee: invitee.person(),
        invited_by: inviter.person(),
        state: m.state,
        invited_at: m.invited_at,
        expires_at: m.expires_at.unwrap_or(m.invited_at),
    })
}

/// My pending invitations, newest first.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "groups", security(("bearer" = [])),
    responses((status = 200, body = InvitationList)))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<InvitationList>, ApiError> {
    let pending = state.store.pending_invitations(caller.0.account.id(), domain::now()).await?;
    let mut invitations = Vec::with_capacity(pending.len());
    for m in pending {
        invitations.push(view(&state, m).await?);
    }
    Ok(axum::Json(InvitationList { invitations }))
}

/// Accepts an invitation addressed to me; I become an active member.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/accept", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Group), (status = 404, body = ErrorBody), (status = 410, description = "invitation_expired", body = ErrorBody)))]
async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    let membership = answer(&state, &caller, &id, true).await?;
    let group = state.store.group(membership.group_id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(group_view(&state, group, &membership).await?))
}

/// Declines an invitation addressed to me.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/decline", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 410, description = "invitation_expired", body = ErrorBody)))]
async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    answer(&state, &caller, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Someone else's invitation, an unknown one and one already answered are all `not_found`.
async fn answer(state: &AppState, caller: &Caller, id: &str, accept: bool) -> Result<Membership, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound)?;
    let me = caller.0.account.id();
    let details = serde_json::json!({ "accepted": accept });
    let audit = Audit::entry(action::INVITATION_ANSWERED, &Actor::from(&caller.0), None, Some(me), details);
    let membership =
        state.store.answer_invitation(id, me, accept, audit, domain::now()).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(crate::store::Conflict::StateChanged) => ApiError::NotFound,
            other => other.into(),
        })?;
    tracing::info!(user = %me, group = %membership.group_id, accepted = accept, "invitation answered");
    Ok(membership)
}
