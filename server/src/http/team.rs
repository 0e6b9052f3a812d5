//! What the attending physician needs to build the care team without surprises: the directory as seen
//! from one group (who is invitable, and why not), a group's pending invitations, and what a new consent
//! would remove before it is recorded.

use std::collections::HashMap;

use axum::extract::{Path, State};
use renkei_protocol::{
    Candidate, CandidateList, ConsentPreview, ErrorBody, InvitationList, MembershipState, RecordConsentRequest,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::groups::{authorized, validate_consent};
use super::invitations::view;
use super::{ApiJson, ApiQuery};
use crate::auth::Member as Caller;
use crate::domain;
use crate::error::ApiError;
use crate::policy::groups::{self as rules, GroupAction};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(candidates)).routes(routes!(group_invitations)).routes(routes!(preview_consent))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CandidateQuery {
    /// Words to find in the name, its kana reading, the organisation or the login (all must match).
    q: Option<String>,
    /// Only this profession (its identifier, e.g. `nurse`).
    profession: Option<String>,
    /// At most this many (default 50, at most 200).
    limit: Option<usize>,
}

/// The directory as the attending physician sees it from this group: active professionals matching the
/// search, each marked invitable or why not (already a member, invited, outside the consent in force, no
/// consent yet), so an invitation is never refused by surprise.
#[utoipa::path(get, path = "/api/v1/groups/{id}/candidates", tag = "groups", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), CandidateQuery),
    responses((status = 200, body = CandidateList),
        (status = 403, description = "forbidden: not the attending physician", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn candidates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CandidateQuery>,
) -> Result<axum::Json<CandidateList>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::ChangeConsent).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range"));
    }
    let profession = match q.profession.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(renkei_protocol::Profession::parse(p).ok_or_else(|| ApiError::field("profession", "unknown"))?),
        None => None,
    };
    let words: Vec<String> = q.q.as_deref().unwrap_or("").split_whitespace().map(str::to_lowercase).collect();
    if words.iter().map(String::len).sum::<usize>() > 200 {
        return Err(ApiError::field("q", "too_long"));
    }
    let consent = state.store.latest_consent(group.id).await?;
    let mut states: HashMap<Uuid, MembershipState> = state
        .store
        .active_members(group.id)
        .await?
        .into_iter()
        .map(|m| (m.person.id, MembershipState::Active))
        .collect();
    for invitation in state.store.group_invitations(group.id, domain::now()).await? {
        states.insert(invitation.user_id, MembershipState::Invited);
    }
    let me = caller.0.account.id();
    let mut found: Vec<Candidate> = state
        .store
        .list_accounts()
        .await?
        .into_iter()
        .filter(|a| a.is_active() && !a.is_admin() && a.id() != me)
        .filter(|a| profession.is_none_or(|p| p == a.user.profession))
        .filter(|a| {
            let haystack = format!(
                "{} {} {} {}",
                a.user.display_name,
                a.user.kana.as_deref().unwrap_or(""),
                a.user.organisation,
                a.user.login
            )
            .to_lowercase();
            words.iter().all(|w| haystack.contains(w.as_str()))
        })
        .map(|a| Candidate {
            status: rules::candidate_status(consent.as_ref(), &a, states.get(&a.id()).copied()),
            person: a.person(),
            kana: a.user.kana,
            login: a.user.login,
        })
        .collect();
    found.sort_by(|a, b| {
        let key = |c: &Candidate| c.kana.clone().unwrap_or_else(|| c.person.display_name.clone());
        key(a).cmp(&key(b))
    });
    found.truncate(limit);
    Ok(axum::Json(CandidateList { candidates: found }))
}

/// The group's pending invitations with their expiry (attending physician).
#[utoipa::path(get, path = "/api/v1/groups/{id}/invitations", tag = "groups", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = InvitationList),
        (status = 403, description = "forbidden: not the attending physician", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn group_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<InvitationList>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::ChangeConsent).await?;
    let mut invitations = Vec::new();
    for m in state.store.group_invitations(group.id, domain::now()).await? {
        invitations.push(view(&state, m).await?);
    }
    Ok(axum::Json(InvitationList { invitations }))
}

/// What recording this consent would do, without recording it: the active members the new scope no
/// longer covers and the pending invitations it would cancel — decided by the same rule the recording
/// applies in its transaction, so a physician confirms exactly what will happen.
#[utoipa::path(post, path = "/api/v1/groups/{id}/consents/preview", tag = "groups", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)), request_body = RecordConsentRequest,
    responses((status = 200, body = ConsentPreview),
        (status = 403, description = "forbidden: not the attending physician", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "group_not_active", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn preview_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RecordConsentRequest>,
) -> Result<axum::Json<ConsentPreview>, ApiError> {
    let (group, mine) = authorized(&state, &caller, &id, GroupAction::ChangeConsent).await?;
    validate_consent(&state, &req.consenter, req.obtained_on, Some(&req.scope)).await?;
    let scope: Vec<_> = req
        .scope
        .into_iter()
        .map(|e| renkei_protocol::ScopeEntry { organisation: e.organisation.map(|o| o.trim().to_owned()), ..e })
        .collect();
    let mut removed_members = Vec::new();
    for member in state.store.active_members(group.id).await? {
        if member.person.id == mine.user_id || member.role == renkei_protocol::MemberRole::AttendingPhysician {
            continue;
        }
        let account = state.store.account_by_id(member.person.id).await?.ok_or(ApiError::NotFound)?;
        if !rules::in_scope(&scope, &account.user) {
            removed_members.push(member.person);
        }
    }
    let mut cancelled_invitations = Vec::new();
    for invitation in state.store.group_invitations(group.id, domain::now()).await? {
        let account = state.store.account_by_id(invitation.user_id).await?.ok_or(ApiError::NotFound)?;
        if !rules::in_scope(&scope, &account.user) {
            cancelled_invitations.push(account.person());
        }
    }
    Ok(axum::Json(ConsentPreview { removed_members, cancelled_invitations }))
}
