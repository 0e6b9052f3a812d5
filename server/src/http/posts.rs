//! Posts over HTTP — the same operations the WebSocket offers, for clients without a socket: post, page
//! through history, edit, delete, 「見ました」, read positions and unread counts. The use case itself is
//! `crate::posting`, which the WebSocket connection calls too.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{
    AddressedList, CarePolicy, EditPost, ErrorBody, GroupKind, NewPost, Post, PostHistory, PostKind, PostPage,
    PostReceipt, ReadMark, SeenList, SeenMark, UnreadList,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::groups::authorized;
use super::{ApiJson, ApiQuery};
use crate::audit::{Actor, Audit, action};
use crate::auth::Member as Caller;
use crate::domain::{self, GroupRecord};
use crate::error::ApiError;
use crate::policy::groups::GroupAction;
use crate::posting::{check_content, mark_read, mark_seen, submit_post, validate_body, validate_care_policy};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_post, list_posts))
        .routes(routes!(show_post, edit_post, delete_post))
        .routes(routes!(post_history))
        .routes(routes!(mark_seen_http, list_seen))
        .routes(routes!(mark_read_http))
        .routes(routes!(unread))
        .routes(routes!(addressed))
}

/// Largest page of history one request returns.
pub(super) const MAX_PAGE: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// Posts after this sequence number, going forward.
    after: Option<i64>,
    /// Posts before this sequence number, going backward (the newest page: `before` = last sequence + 1).
    before: Option<i64>,
    /// At most this many (default 100, at most 500).
    limit: Option<i64>,
}

fn parse_seq(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|s| *s > 0).ok_or(ApiError::NotFound)
}

/// Posts a message. Answers once it is durably committed; retrying with the same `client_msg_id` returns
/// the original post (200) instead of creating a second one (201).
#[utoipa::path(post, path = "/api/v1/groups/{id}/posts", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = NewPost,
    responses((status = 201, body = PostReceipt), (status = 200, description = "the original post, for a retried client_msg_id", body = PostReceipt),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(post): ApiJson<NewPost>,
) -> Result<(StatusCode, axum::Json<PostReceipt>), ApiError> {
    let group = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let (receipt, created) = submit_post(&state, &caller.0.account, group, post).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(receipt)))
}

/// A page of history, in sequence order.
#[utoipa::path(get, path = "/api/v1/groups/{id}/posts", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), PageQuery), responses((status = 200, body = PostPage), (status = 404, body = ErrorBody)))]
async fn list_posts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<axum::Json<PostPage>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::View).await?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range"));
    }
    if page.after.is_some_and(|a| a < 0) || page.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("after", "out_of_range"));
    }
    let posts = state.store.posts_page(group.id, page.after, page.before, limit).await?;
    record_read(&state, &caller, &group, posts.first().map(|p| p.seq), posts.last().map(|p| p.seq)).await?;
    Ok(axum::Json(PostPage { posts, last_seq: state.store.last_seq(group.id).await? }))
}

/// Every read of a patient group's posts is audited: who, which group, which range, when — never content.
pub(crate) async fn record_read(
    state: &AppState,
    caller: &Caller,
    group: &GroupRecord,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(), ApiError> {
    if group.kind == GroupKind::Patient {
        let details = serde_json::json!({ "from": from, "to": to });
        state.audit.record(action::POSTS_READ, &Actor::from(&caller.0), Some(group.id), None, details).await?;
    }
    Ok(())
}

async fn find_post(
    state: &AppState,
    caller: &Caller,
    id: &str,
    seq: &str,
    action: GroupAction,
) -> Result<(GroupRecord, Post), ApiError> {
    let (group, _) = authorized(state, caller, id, action).await?;
    let post = state.store.post(group.id, parse_seq(seq)?).await?.ok_or(ApiError::NotFound)?;
    Ok((group, post))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}/posts/{seq}", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)), responses((status = 200, body = Post), (status = 404, body = ErrorBody)))]
async fn show_post(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::Json<Post>, ApiError> {
    let (group, post) = find_post(&state, &caller, &id, &seq, GroupAction::View).await?;
    record_read(&state, &caller, &group, Some(post.seq), Some(post.seq)).await?;
    Ok(axum::Json(post))
}

/// Edits one of my posts; the previous version is kept.
#[utoipa::path(patch, path = "/api/v1/groups/{id}/posts/{seq}", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)), request_body = EditPost,
    responses((status = 200, body = Post), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn edit_post(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
    ApiJson(edit): ApiJson<EditPost>,
) -> Result<axum::Json<Post>, ApiError> {
    let with_files = edit.attachments.as_ref().is_some_and(|a| !a.is_empty());
    let body = match validate_body(&state, &edit.body) {
        // A post that shares files may lose its words.
        Err(ApiError::Validation(p)) if with_files && p.iter().all(|f| f.problem == "empty") => String::new(),
        other => other?,
    };
    let care_policy = match edit.care_policy {
        Some(policy) => Some(validate_care_policy(&state, policy).map_err(ApiError::Validation)?),
        None => None,
    };
    let edit = Edit { body, confirm: edit.confirm_not_emergency, attachments: edit.attachments, care_policy };
    revise(&state, &caller, &id, &seq, Some(edit)).await.map(axum::Json)
}

/// An edit as checked so far: the new text, the override of rule 6, the files and the care policy's record
/// from now on.
struct Edit {
    body: String,
    confirm: bool,
    attachments: Option<Vec<Uuid>>,
    care_policy: Option<CarePolicy>,
}

/// Deletes one of my posts: a tombstone keeps its place; every version stays in the history.
#[utoipa::path(delete, path = "/api/v1/groups/{id}/posts/{seq}", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)),
    responses((status = 200, body = Post), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_post(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::Json<Post>, ApiError> {
    revise(&state, &caller, &id, &seq, None).await.map(axum::Json)
}

async fn revise(state: &AppState, caller: &Caller, id: &str, seq: &str, edit: Option<Edit>) -> Result<Post, ApiError> {
    let (group, post) = find_post(state, caller, id, seq, GroupAction::Post).await?;
    if !crate::policy::posts::may_revise(&post, &caller.0.account) {
        return Err(ApiError::Forbidden(crate::policy::Denied::NotTheAuthor));
    }
    let mut overridden = Vec::new();
    let mut files = None;
    if let Some(edit) = &edit {
        if edit.care_policy.is_some() && post.kind != PostKind::CarePolicy {
            return Err(ApiError::field("care_policy", "only_for_care_policy"));
        }
        overridden = check_content(state, &group, &edit.body, edit.confirm).await?;
        if let Some(ids) = &edit.attachments {
            let author = caller.0.account.id();
            files = Some(crate::posting::attachments_for_post(state, &group, author, &post.client_msg_id, ids).await?);
        }
    }
    let audit = (!overridden.is_empty()).then(|| {
        let me = caller.0.account.id();
        let details = serde_json::json!({ "matched": overridden, "edit": true });
        Audit::entry(action::EMERGENCY_OVERRIDE, &Actor::from(&caller.0), Some(group.id), Some(me), details)
    });
    let revision = edit.as_ref().map(|e| crate::store::Revision {
        body: &e.body,
        attachments: files.as_deref(),
        care_policy: e.care_policy.as_ref(),
    });
    let revised = state.store.revise_post(group.id, post.seq, revision, audit, domain::now()).await?;
    let revised = revised.ok_or(ApiError::Conflict(crate::store::Conflict::StateChanged))?;
    state.messaging.post_updated(&revised).await;
    Ok(revised)
}

/// Every version of a post, oldest first. A deleted post's earlier texts are for its group's attending
/// physician only; other members get the versions without their text.
#[utoipa::path(get, path = "/api/v1/groups/{id}/posts/{seq}/history", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)), responses((status = 200, body = PostHistory), (status = 404, body = ErrorBody)))]
async fn post_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::Json<PostHistory>, ApiError> {
    let (group, post) = find_post(&state, &caller, &id, &seq, GroupAction::View).await?;
    record_read(&state, &caller, &group, Some(post.seq), Some(post.seq)).await?;
    let mut versions = state.store.post_versions(&post).await?;
    if !crate::policy::posts::may_read_deleted_versions(&post, group.attending_physician_id, &caller.0.account) {
        for v in &mut versions {
            v.body = None;
        }
    }
    Ok(axum::Json(PostHistory { versions }))
}

/// 「見ました」: marks a post as seen, for the whole group to see.
#[utoipa::path(post, path = "/api/v1/groups/{id}/posts/{seq}/seen", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)), responses((status = 200, body = SeenMark), (status = 404, body = ErrorBody)))]
async fn mark_seen_http(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::Json<SeenMark>, ApiError> {
    let group = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    mark_seen(&state, &caller.0.account, group, parse_seq(&seq)?).await.map(axum::Json)
}

/// Who has seen a post, and when.
#[utoipa::path(get, path = "/api/v1/groups/{id}/posts/{seq}/seen", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)), responses((status = 200, body = SeenList), (status = 404, body = ErrorBody)))]
async fn list_seen(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, seq)): Path<(String, String)>,
) -> Result<axum::Json<SeenList>, ApiError> {
    let (group, post) = find_post(&state, &caller, &id, &seq, GroupAction::View).await?;
    Ok(axum::Json(SeenList { seen: state.store.seen_marks(group.id, post.seq).await? }))
}

/// Moves my read position forward (never backward).
#[utoipa::path(post, path = "/api/v1/groups/{id}/read", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ReadMark,
    responses((status = 200, body = ReadMark), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn mark_read_http(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(mark): ApiJson<ReadMark>,
) -> Result<axum::Json<ReadMark>, ApiError> {
    let group = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let seq = mark_read(&state, &caller.0.account, group, mark.seq).await?;
    Ok(axum::Json(ReadMark { seq }))
}

/// Questions addressed to me that I have neither answered nor marked seen (rule 3).
#[utoipa::path(get, path = "/api/v1/addressed", tag = "posts", security(("bearer" = [])),
    responses((status = 200, body = AddressedList)))]
async fn addressed(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<AddressedList>, ApiError> {
    let me = &caller.0.account;
    let care_manager = me.user.profession == renkei_protocol::Profession::CareManager;
    Ok(axum::Json(AddressedList { posts: state.store.addressed_to(me.id(), care_manager).await? }))
}

/// Unread counts for each of my groups.
#[utoipa::path(get, path = "/api/v1/unread", tag = "posts", security(("bearer" = [])),
    responses((status = 200, body = UnreadList)))]
async fn unread(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<UnreadList>, ApiError> {
    Ok(axum::Json(UnreadList { groups: state.store.unread(caller.0.account.id()).await? }))
}
