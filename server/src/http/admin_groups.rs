//! `/api/v1/admin/groups` and `/api/v1/admin/community-groups`: administrators audit every group's
//! membership and consent versions — metadata only: no patient identifiers beyond the label, no notes,
//! no consenter names, no posts — and manage community groups. An administrator is not a member of any
//! patient group unless invited like anyone else.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{
    AdminGroup, AdminGroupList, ConsentMetadata, CreateCommunityGroupRequest, ErrorBody, GroupKind, MembershipState,
    UserRef,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, resolve_user};
use crate::audit::{Actor, Audit, action};
use crate::auth::{Admin, RecentAdmin};
use crate::domain::{self, GroupRecord, parse_label};
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups))
        .routes(routes!(show_group))
        .routes(routes!(create_community_group))
        .routes(routes!(add_community_member))
        .routes(routes!(remove_community_member))
}

async fn admin_view(state: &AppState, group: GroupRecord) -> Result<AdminGroup, ApiError> {
    let attending_physician = match group.attending_physician_id {
        Some(id) => state.store.account_by_id(id).await?.map(|a| a.person()),
        None => None,
    };
    let consents = state
        .store
        .consents(group.id)
        .await?
        .into_iter()
        .map(|c| ConsentMetadata {
            version: c.version,
            kind: c.kind,
            consenter_kind: c.consenter.kind,
            method: c.method,
            obtained_on: c.obtained_on,
            scope: c.scope,
            recorded_at: c.recorded_at,
        })
        .collect();
    Ok(AdminGroup {
        id: group.id,
        kind: group.kind,
        reference: group.reference(),
        // A patient group's label names the patient (「山田 花子 様」): administrators never see it.
        label: (group.kind == GroupKind::Community).then_some(group.label),
        status: group.status,
        attending_physician,
        created_at: group.created_at,
        archived_at: group.archived_at,
        purged_at: group.purged_at,
        memberships: state.store.membership_history(group.id).await?,
        consents,
    })
}

/// Every group with its membership history and consent versions (metadata only).
#[utoipa::path(get, path = "/api/v1/admin/groups", operation_id = "admin_list_groups", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AdminGroupList), (status = 403, body = ErrorBody)))]
async fn list_groups(State(state): State<AppState>, _admin: Admin) -> Result<axum::Json<AdminGroupList>, ApiError> {
    let mut groups = Vec::new();
    for group in state.store.all_groups().await? {
        groups.push(admin_view(&state, group).await?);
    }
    Ok(axum::Json(AdminGroupList { groups }))
}

async fn find_group(state: &AppState, id: &str) -> Result<GroupRecord, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound)?;
    state.store.group(id).await?.ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/admin/groups/{id}", operation_id = "admin_show_group", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = AdminGroup), (status = 404, body = ErrorBody)))]
async fn show_group(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<axum::Json<AdminGroup>, ApiError> {
    let group = find_group(&state, &id).await?;
    Ok(axum::Json(admin_view(&state, group).await?))
}

/// Creates a community group: the city-wide all-users group, or one per profession.
#[utoipa::path(post, path = "/api/v1/admin/community-groups", tag = "admin", security(("bearer" = [])),
    request_body = CreateCommunityGroupRequest,
    responses((status = 201, body = AdminGroup), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_community_group(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    ApiJson(req): ApiJson<CreateCommunityGroupRequest>,
) -> Result<(StatusCode, axum::Json<AdminGroup>), ApiError> {
    let label = parse_label("label", &req.label, 100)?;
    let audit = Audit::entry(action::COMMUNITY_GROUP_CREATED, &Actor::from(&caller), None, None, serde_json::json!({}));
    let group = state.store.create_community_group(&label, caller.account.id(), audit, domain::now()).await?;
    tracing::info!(admin = %caller.account.id(), group = %group.id, "community group created");
    Ok((StatusCode::CREATED, axum::Json(admin_view(&state, group).await?)))
}

async fn community_group(state: &AppState, id: &str) -> Result<GroupRecord, ApiError> {
    let group = find_group(state, id).await?;
    if !crate::policy::groups::admin_may_manage_members(&group) {
        return Err(ApiError::NotFound);
    }
    Ok(group)
}

#[utoipa::path(post, path = "/api/v1/admin/community-groups/{id}/members", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UserRef,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_community_member(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UserRef>,
) -> Result<StatusCode, ApiError> {
    let group = community_group(&state, &id).await?;
    let user = resolve_user(&state, &req.user).await?;
    let audit = Audit::entry(
        action::COMMUNITY_MEMBER_ADDED,
        &Actor::from(&caller),
        Some(group.id),
        Some(user.id()),
        serde_json::json!({}),
    );
    state.store.add_member(group.id, user.id(), caller.account.id(), audit, domain::now()).await?;
    tracing::info!(admin = %caller.account.id(), group = %group.id, user = %user.id(), "community member added");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/admin/community-groups/{id}/members/{user}", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("user" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_community_member(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let group = community_group(&state, &id).await?;
    let user = resolve_user(&state, &user).await?;
    let audit = Audit::entry(
        action::MEMBER_REMOVED,
        &Actor::from(&caller),
        Some(group.id),
        Some(user.id()),
        serde_json::json!({}),
    );
    if !state.store.end_membership(group.id, user.id(), MembershipState::Removed, audit, domain::now()).await? {
        return Err(ApiError::NotFound);
    }
    state.messaging.memberships_ended(group.id, vec![user.id()]).await;
    tracing::info!(admin = %caller.account.id(), group = %group.id, user = %user.id(), "community member removed");
    Ok(StatusCode::NO_CONTENT)
}
