//! Posting as one use case, whatever the transport: a post is validated, checked against the content
//! rules (6: no emergencies, 4: no patient in a community group), its files checked, and queued for the
//! group commit; the answer comes once it is durable. `http::posts` and `ws::conn` both call
//! [`submit_post`], [`mark_seen`] and [`mark_read`]; neither knows the other.

use renkei_protocol::{
    Attachment, CarePolicy, GroupKind, MAX_CLIENT_MSG_ID, NewPost, OffHours, Post, PostKind, PostReceipt, SeenMark,
};
use uuid::Uuid;

use crate::audit::{Actor, Audit, action};
use crate::domain::{self, Account, FieldError, GroupRecord, parse_notes};
use crate::error::ApiError;
use crate::policy::attachments::{self as attachment_rules, SharedBy};
use crate::policy::availability::{self, Addressees};
use crate::policy::content;
use crate::policy::groups::{self as rules, GroupAction};
use crate::state::AppState;
use crate::store::{AttachmentRecord, PostRefused, PostRequest, in_own_task};

/// A post body: trimmed, not empty, at most `max_post_chars` characters, line breaks and tabs only.
pub(crate) fn validate_body(state: &AppState, body: &str) -> Result<String, ApiError> {
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
pub(crate) fn validate_care_policy(state: &AppState, mut policy: CarePolicy) -> Result<CarePolicy, Vec<FieldError>> {
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
pub(crate) async fn check_content(
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
    let attachments = attachments_for_post(state, group, author.id(), &post.client_msg_id, &post.attachments).await?;
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
    let (post, created) = outcome?;
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

/// The files a new post names, checked: each uploaded to this group by the author, not yet shared by
/// another post (but by this very post, when its sending is retried: the commit then answers with the
/// original), and recent enough that the sweep will not remove it meanwhile.
pub(crate) async fn attachments_for_post(
    state: &AppState,
    group: &crate::domain::GroupRecord,
    author: Uuid,
    client_msg_id: &str,
    ids: &[Uuid],
) -> Result<Vec<Attachment>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if !attachment_rules::may_attach_in(group.kind) {
        return Err(ApiError::AttachmentsNotAllowedInCommunityGroup);
    }
    if ids.len() > renkei_protocol::MAX_ATTACHMENTS_PER_POST {
        return Err(ApiError::field("attachments", "too_many"));
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    if unique.len() != ids.len() {
        return Err(ApiError::field("attachments", "duplicate"));
    }
    let found = state.store.attachments(group.id, ids).await?;
    if found.len() != ids.len() {
        return Err(ApiError::field("attachments", "unknown_attachment"));
    }
    let now = domain::now();
    for record in &found {
        let post = shared_by(state, record).await?;
        let shared = post.as_ref().map(SharedBy::from);
        if !attachment_rules::may_share(record.uploader_id, record.created_at, shared, author, client_msg_id, now) {
            return Err(ApiError::field("attachments", "unknown_attachment"));
        }
    }
    Ok(found.into_iter().map(|r| r.attachment).collect())
}

/// The post that first shared a file, if one has.
pub(crate) async fn shared_by(state: &AppState, record: &AttachmentRecord) -> Result<Option<Post>, ApiError> {
    match record.post_seq {
        Some(seq) => Ok(state.store.post(record.group_id, seq).await?),
        None => Ok(None),
    }
}

impl From<PostRefused> for ApiError {
    fn from(refused: PostRefused) -> Self {
        match refused {
            PostRefused::Denied(denied) => denied.into(),
            PostRefused::UnknownReplyTo => Self::field("reply_to", "unknown_post"),
            PostRefused::NoCareManager => Self::NoCareManager,
            PostRefused::QuestionOutsidePatientGroup => Self::field("kind", "questions_only_in_patient_groups"),
            PostRefused::NotAttendingPhysician => Self::Forbidden(crate::policy::Denied::NotAttendingPhysician),
        }
    }
}
