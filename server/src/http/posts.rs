//! Posts over HTTP — the same operations the WebSocket offers, for clients without a socket: post, page
//! through history, edit, delete, 「見ました」, read positions and unread counts. The functions at the
//! bottom are shared with the WebSocket connection loop.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{
    AddressedList, Availability, CarePolicy, EditPost, ErrorBody, GroupKind, MAX_CLIENT_MSG_ID, NewPost, OffHours,
    Post, PostHistory, PostKind, PostPage, PostReceipt, ReadMark, SeenList, SeenMark, UnreadList,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::groups::authorized;
use super::{ApiJson, ApiQuery};
use crate::app::AppState;
use crate::audit::{Actor, Audit, action};
use crate::auth::Member as Caller;
use crate::domain::{self, Account, FieldError, GroupRecord, parse_notes};
use crate::error::ApiError;
use crate::policy::availability::{self, Addressees};
use crate::policy::content;
use crate::policy::groups::{self as rules, GroupAction};
use crate::store::{PostRefused, PostRequest, in_own_task};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_post, list_posts))
        .routes(routes!(show_post, edit_post, delete_post))
        .routes(routes!(post_history))
        .routes(routes!(mark_seen_http, list_seen))
        .routes(routes!(mark_read_http))
        .routes(routes!(unread))
        .routes(routes!(addressed))
        .routes(routes!(get_availability, put_availability))
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
            files = Some(super::attachments::for_post(state, &group, author, &post.client_msg_id, ids).await?);
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

/// My availability hours and contact preference (rule 5).
#[utoipa::path(get, path = "/api/v1/me/availability", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Availability)))]
async fn get_availability(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Availability>, ApiError> {
    Ok(axum::Json(state.store.availability(caller.0.account.id()).await?))
}

/// Sets my availability hours (weekly windows in the server's time zone) and contact preference.
#[utoipa::path(put, path = "/api/v1/me/availability", tag = "me", security(("bearer" = [])),
    request_body = Availability, responses((status = 200, body = Availability), (status = 422, body = ErrorBody)))]
async fn put_availability(
    State(state): State<AppState>,
    caller: Caller,
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

/// Unread counts for each of my groups.
#[utoipa::path(get, path = "/api/v1/unread", tag = "posts", security(("bearer" = [])),
    responses((status = 200, body = UnreadList)))]
async fn unread(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<UnreadList>, ApiError> {
    Ok(axum::Json(UnreadList { groups: state.store.unread(caller.0.account.id()).await? }))
}

/// A post body: trimmed, not empty, at most `max_post_chars` characters, line breaks and tabs only.
fn validate_body(state: &AppState, body: &str) -> Result<String, ApiError> {
    match parse_notes("body", Some(body), state.config.max_post_chars)? {
        Some(body) => Ok(body),
        None => Err(ApiError::field("body", "empty")),
    }
}

fn validate_post(state: &AppState, mut post: NewPost) -> Result<NewPost, ApiError> {
    let mut problems = Vec::new();
    match validate_body(state, &post.body) {
        Ok(body) => post.body = body,
        // A photo may go without words.
        Err(ApiError::Validation(p)) if !post.attachments.is_empty() && p.iter().all(|f| f.problem == "empty") => {
            post.body = String::new();
        }
        Err(ApiError::Validation(mut p)) => problems.append(&mut p),
        Err(other) => return Err(other),
    }
    let id = post.client_msg_id.trim();
    if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
        problems.push(FieldError::new("client_msg_id", "invalid"));
    }
    if post.reply_to.is_some_and(|r| r < 1) {
        problems.push(FieldError::new("reply_to", "unknown_post"));
    }
    match (post.kind, post.care_policy.take()) {
        (PostKind::CarePolicy, None) => problems.push(FieldError::new("care_policy", "required")),
        (PostKind::CarePolicy, Some(policy)) => match validate_care_policy(state, policy) {
            Ok(policy) => post.care_policy = Some(policy),
            Err(mut p) => problems.append(&mut p),
        },
        (_, Some(_)) => problems.push(FieldError::new("care_policy", "only_for_care_policy")),
        (_, None) => {}
    }
    if problems.is_empty() { Ok(post) } else { Err(ApiError::Validation(problems)) }
}

/// A care policy's record: the summary of a change trimmed, required when the policy changed, at most
/// `max_post_chars` characters; dropped when nothing changed and none was written.
fn validate_care_policy(state: &AppState, mut policy: CarePolicy) -> Result<CarePolicy, Vec<FieldError>> {
    policy.change_summary =
        parse_notes("change_summary", policy.change_summary.as_deref(), state.config.max_post_chars)
            .map_err(|e| vec![e])?;
    if policy.policy_changed && policy.change_summary.is_none() {
        return Err(vec![FieldError::new("change_summary", "required_when_changed")]);
    }
    Ok(policy)
}

/// The content rules every post and edit passes, in every kind of group: rule 6 (no emergencies — unless
/// the author explicitly confirms it is not one, which is recorded) and, in community groups, rule 4 (no
/// patient names). Returns the matched emergency terms that were overridden, if any.
async fn check_content(
    state: &AppState,
    group: &GroupRecord,
    text: &str,
    confirm_not_emergency: bool,
) -> Result<Vec<String>, ApiError> {
    let matched = state.lexicon.emergency_terms(text);
    if !matched.is_empty() && !confirm_not_emergency {
        // Database calls here run in tasks of their own: a WebSocket connection polls this future only
        // between its other work (see `messaging::contexts::read`).
        let phone = match group.attending_physician_id {
            Some(id) => {
                let store = state.store.clone();
                in_own_task(async move { store.account_by_id(id).await }).await?.and_then(|a| a.user.phone)
            }
            None => None,
        };
        return Err(ApiError::Emergency { matched, phone });
    }
    if group.kind == GroupKind::Community {
        let store = state.store.clone();
        let patients = in_own_task(async move { store.active_patient_identifiers().await }).await?;
        if content::mentions_patient(text, &patients) {
            // Says that some patient matched, never which one.
            return Err(ApiError::PatientInfoInCommunityGroup);
        }
    }
    Ok(matched)
}

/// Validates a post, applies the content rules, and queues it for the group commit; answers once it is
/// durable, with the addressees who are off hours. Membership and routing (rule 3) are checked inside the
/// commit transaction (`policy::groups::authorize(.., Post)`), where no concurrent removal can race them.
/// Shared by HTTP and WebSocket. The flag is false when a retried client id returned the original post.
pub(crate) async fn submit_post(
    state: &AppState,
    author: &Account,
    group_id: Uuid,
    post: NewPost,
) -> Result<(PostReceipt, bool), ApiError> {
    let post = validate_post(state, post)?;
    // One read (or none, within a second of the last): the group, its active members and their hours.
    let context = state.messaging.contexts.get(&state.store, group_id, author.id()).await?.ok_or(ApiError::NotFound)?;
    let group = &context.group;
    // Content rules only for members: an outsider learns nothing from the refusal they get instead.
    rules::authorize(group, context.membership_of(author.id()), GroupAction::Post)?;
    let overridden = check_content(state, group, &post.body, post.confirm_not_emergency).await?;
    let attachments =
        super::attachments::for_post(state, group, author.id(), &post.client_msg_id, &post.attachments).await?;
    let person = author.person();
    let kind = post.kind;
    let author_ref = renkei_protocol::Author {
        id: person.id,
        display_name: person.display_name,
        profession: person.profession,
        organisation: person.organisation,
    };
    // Overriding the emergency rule is recorded in the group commit's transaction, with the post.
    let audit = (!overridden.is_empty()).then(|| {
        let actor = Actor { id: Some(author.id()), ..Actor::default() };
        let details = serde_json::json!({ "matched": overridden });
        Audit::entry(action::EMERGENCY_OVERRIDE, &actor, Some(group_id), None, details)
    });
    let outcome =
        state.messaging.post(PostRequest { group_id, author: author_ref, post, audit, attachments }).await.map_err(
            |e| match &*e {
                crate::store::StoreError::Unavailable(_) => ApiError::Unavailable(anyhow::anyhow!("group commit: {e}")),
                _ => ApiError::internal(anyhow::anyhow!("group commit failed: {e}")),
            },
        )?;
    let (post, created) = match outcome {
        Ok(done) => done,
        Err(PostRefused::Denied(denied)) => return Err(denied.into()),
        Err(PostRefused::UnknownReplyTo) => return Err(ApiError::field("reply_to", "unknown_post")),
        Err(PostRefused::NoCareManager) => return Err(ApiError::NoCareManager),
        Err(PostRefused::QuestionOutsidePatientGroup) => {
            return Err(ApiError::field("kind", "questions_only_in_patient_groups"));
        }
        Err(PostRefused::NotAttendingPhysician) => {
            return Err(ApiError::Forbidden(crate::policy::Denied::NotAttendingPhysician));
        }
    };
    if created && !overridden.is_empty() {
        tracing::info!(user = %author.id(), group = %group_id, matched = %overridden.join(","), "emergency rule overridden");
    }
    let off_hours = off_hours(state, &context, author.id(), kind);
    Ok((PostReceipt { post, off_hours }, created))
}

/// Rule 5: which of a post's addressees are outside their availability hours now (the members as read
/// before the commit).
fn off_hours(state: &AppState, context: &crate::store::PostContext, author: Uuid, kind: PostKind) -> Vec<OffHours> {
    let now = state.config.zone().local(domain::now());
    let addressed = availability::addressees(kind);
    context
        .availability()
        .filter(|m| m.person.id != author)
        .filter(|m| match addressed {
            Addressees::Group => true,
            Addressees::AttendingPhysician => m.role == renkei_protocol::MemberRole::AttendingPhysician,
            Addressees::CareManagers => m.person.profession == renkei_protocol::Profession::CareManager,
        })
        .filter(|m| availability::is_off_hours(&m.availability, now))
        .map(|m| OffHours { person: m.person.clone(), contact_preference: m.availability.contact_preference.clone() })
        .collect()
}

pub(crate) async fn mark_seen(state: &AppState, who: &Account, group_id: Uuid, seq: i64) -> Result<SeenMark, ApiError> {
    let group = state.store.group(group_id).await?.ok_or(ApiError::NotFound)?;
    let membership = state.store.current_membership(group_id, who.id()).await?;
    rules::authorize(&group, membership.as_ref(), GroupAction::Post)?;
    let mark = state.store.mark_seen(group_id, seq, &who.person(), domain::now()).await?.ok_or(ApiError::NotFound)?;
    state.messaging.seen(&mark).await;
    Ok(mark)
}

pub(crate) async fn mark_read(state: &AppState, who: &Account, group_id: Uuid, seq: i64) -> Result<i64, ApiError> {
    let group = state.store.group(group_id).await?.ok_or(ApiError::NotFound)?;
    let membership = state.store.current_membership(group_id, who.id()).await?;
    rules::authorize(&group, membership.as_ref(), GroupAction::View)?;
    if seq < 0 || seq > state.store.last_seq(group_id).await? {
        return Err(ApiError::field("seq", "out_of_range"));
    }
    Ok(state.store.mark_read(group_id, who.id(), seq, domain::now()).await?)
}
