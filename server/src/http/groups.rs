//! `/api/v1/groups`: patient groups as their members use them — open, read, record consent, invite,
//! remove, leave, hand over, archive. For a group the caller is not an active member of, every operation
//! answers `not_found`, so not even its existence leaks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use renkei_protocol::{
    ConsentChange, ConsentHistory, ConsentKind, ErrorBody, Group, GroupList, GroupSummary, MemberList, MembershipState,
    OpenGroupRequest, PatientIdentifiers, RecordConsentRequest, ScopeEntry, UserRef, WithdrawConsentRequest,
};
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, resolve_user};
use crate::audit::{Actor, Audit, action};
use crate::auth::Member as Caller;
use crate::domain::{self, FieldError, GroupRecord, Membership, parse_label, parse_notes, parse_optional_label};
use crate::error::ApiError;
use crate::policy::Denied;
use crate::policy::groups::{self as rules, GroupAction};
use crate::state::AppState;
use crate::store::{NewConsent, NewInvitation};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_group, list_groups))
        .routes(routes!(show_group))
        .routes(routes!(list_members))
        .routes(routes!(record_consent, consent_history))
        .routes(routes!(withdraw_consent))
        .routes(routes!(invite))
        .routes(routes!(remove_member))
        .routes(routes!(leave))
        .routes(routes!(handover))
        .routes(routes!(accept_handover))
        .routes(routes!(decline_handover))
        .routes(routes!(archive))
}

/// The group and the caller's membership, after `policy` allowed `action`.
pub(super) async fn authorized(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
    action: GroupAction,
) -> Result<(GroupRecord, Membership), ApiError> {
    let id = Uuid::parse_str(group_id).map_err(|_| ApiError::NotFound)?;
    let group = state.store.group(id).await?.ok_or(ApiError::NotFound)?;
    let membership = state.store.current_membership(id, caller.0.account.id()).await?;
    rules::authorize(&group, membership.as_ref(), action)?;
    // authorize() only allows active members, so the membership is there.
    Ok((group, membership.ok_or(ApiError::NotFound)?))
}

/// The group as this member sees it.
pub(super) async fn group_view(state: &AppState, group: GroupRecord, mine: &Membership) -> Result<Group, ApiError> {
    let person_of = |id: Option<Uuid>| async move {
        match id {
            Some(id) => Ok::<_, ApiError>(state.store.account_by_id(id).await?.map(|a| a.person())),
            None => Ok(None),
        }
    };
    Ok(Group {
        attending_physician: person_of(group.attending_physician_id).await?,
        handover_to: person_of(group.handover_to_id).await?,
        consent_version: state.store.latest_consent(group.id).await?.map(|c| c.version),
        id: group.id,
        kind: group.kind,
        label: group.label,
        status: group.status,
        patient: group.patient,
        notes: group.notes,
        my_role: mine.role,
        created_at: group.created_at,
        archived_at: group.archived_at,
        purged_at: group.purged_at,
    })
}

fn validation(results: impl IntoIterator<Item = Option<FieldError>>) -> Result<(), ApiError> {
    let problems: Vec<FieldError> = results.into_iter().flatten().collect();
    if problems.is_empty() { Ok(()) } else { Err(ApiError::Validation(problems)) }
}

/// Opens a patient group. Only a physician may (rule 2); they become its attending physician.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])),
    request_body = OpenGroupRequest,
    responses((status = 201, body = Group), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_group(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<OpenGroupRequest>,
) -> Result<(StatusCode, axum::Json<Group>), ApiError> {
    if !rules::may_open_patient_group(&caller.0.account) {
        return Err(ApiError::Forbidden(Denied::NotAPhysician));
    }
    let label = parse_label("label", &req.label, 100);
    let full_name = parse_label("patient.full_name", &req.patient.full_name, 100);
    let kana = parse_optional_label("patient.kana", req.patient.kana.as_deref(), 100);
    let number = parse_optional_label("patient.patient_number", req.patient.patient_number.as_deref(), 50);
    let notes = parse_notes("notes", req.notes.as_deref(), 2000);
    validation([
        label.as_ref().err().cloned(),
        full_name.as_ref().err().cloned(),
        kana.as_ref().err().cloned(),
        number.as_ref().err().cloned(),
        notes.as_ref().err().cloned(),
    ])?;
    let (Ok(label), Ok(full_name), Ok(kana), Ok(patient_number), Ok(notes)) = (label, full_name, kana, number, notes)
    else {
        return Err(ApiError::internal(anyhow::anyhow!("validation passed but a field failed")));
    };
    let patient = PatientIdentifiers { full_name, kana, patient_number };
    let me = caller.0.account.id();
    let audit = Audit::entry(action::GROUP_OPENED, &Actor::from(&caller.0), None, None, serde_json::json!({}));
    let group = state.store.open_patient_group(&label, &patient, notes.as_deref(), me, audit, domain::now()).await?;
    tracing::info!(user = %me, group = %group.id, "patient group opened");
    let mine = state.store.current_membership(group.id, me).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, axum::Json(group_view(&state, group, &mine).await?)))
}

/// The groups I am an active member of.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", security(("bearer" = [])),
    responses((status = 200, body = GroupList)))]
async fn list_groups(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<GroupList>, ApiError> {
    let groups = state
        .store
        .groups_of(caller.0.account.id())
        .await?
        .into_iter()
        .map(|(g, my_role)| GroupSummary { id: g.id, kind: g.kind, label: g.label, status: g.status, my_role })
        .collect();
    Ok(axum::Json(GroupList { groups }))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Group), (status = 404, body = ErrorBody)))]
async fn show_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    let (group, mine) = authorized(&state, &caller, &id, GroupAction::View).await?;
    Ok(axum::Json(group_view(&state, group, &mine).await?))
}

/// Active members: name, profession, organisation, role, since when.
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = MemberList), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<MemberList>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::View).await?;
    Ok(axum::Json(MemberList { members: state.store.active_members(group.id).await? }))
}

/// Validates a consent's consenter and, unless it is a withdrawal, its scope (which must not be empty and
/// may only name existing users).
pub(super) async fn validate_consent(
    state: &AppState,
    consenter: &renkei_protocol::Consenter,
    obtained_on: time::Date,
    scope: Option<&[ScopeEntry]>,
) -> Result<renkei_protocol::Consenter, ApiError> {
    let name = parse_label("consenter.name", &consenter.name, 100);
    let relationship = parse_optional_label("consenter.relationship", consenter.relationship.as_deref(), 50);
    let mut problems = vec![name.as_ref().err().cloned(), relationship.as_ref().err().cloned()];
    if obtained_on > domain::now().date() + Duration::days(1) {
        problems.push(Some(FieldError::new("obtained_on", "in_future")));
    }
    if let Some(scope) = scope {
        if scope.is_empty() {
            problems.push(Some(FieldError::new("scope", "empty")));
        }
        if scope.len() > 200 {
            problems.push(Some(FieldError::new("scope", "too_many_entries")));
        }
        for entry in scope {
            if entry.organisation.is_none() && entry.profession.is_none() && entry.user.is_none() {
                problems.push(Some(FieldError::new("scope", "entry_names_nothing")));
            }
            if let Some(org) = &entry.organisation
                && let Err(e) = parse_label("scope.organisation", org, 200)
            {
                problems.push(Some(e));
            }
            if let Some(user) = entry.user
                && state.store.account_by_id(user).await?.is_none()
            {
                problems.push(Some(FieldError::new("scope.user", "unknown_user")));
            }
        }
    }
    validation(problems)?;
    Ok(renkei_protocol::Consenter {
        kind: consenter.kind,
        name: name.unwrap_or_default(),
        relationship: relationship.unwrap_or_default(),
    })
}

/// Records the consent of the patient or family (first version) or amends it (a new version). Whoever
/// the new scope no longer covers is removed in the same transaction.
#[utoipa::path(post, path = "/api/v1/groups/{id}/consents", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = RecordConsentRequest,
    responses((status = 201, body = ConsentChange), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn record_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RecordConsentRequest>,
) -> Result<(StatusCode, axum::Json<ConsentChange>), ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::ChangeConsent).await?;
    let consenter = validate_consent(&state, &req.consenter, req.obtained_on, Some(&req.scope)).await?;
    let scope = req
        .scope
        .into_iter()
        .map(|e| ScopeEntry { organisation: e.organisation.map(|o| o.trim().to_owned()), ..e })
        .collect();
    let change =
        change_consent(&state, &caller, &group, ConsentKind::Amended, consenter, req.method, req.obtained_on, scope)
            .await?;
    Ok((StatusCode::CREATED, axum::Json(change)))
}

/// Records the withdrawal of consent: everyone but the attending physician is removed and the group
/// becomes read-only.
#[utoipa::path(post, path = "/api/v1/groups/{id}/consents/withdraw", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = WithdrawConsentRequest,
    responses((status = 200, body = ConsentChange), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn withdraw_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WithdrawConsentRequest>,
) -> Result<axum::Json<ConsentChange>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::ChangeConsent).await?;
    let consenter = validate_consent(&state, &req.consenter, req.obtained_on, None).await?;
    let change = change_consent(
        &state,
        &caller,
        &group,
        ConsentKind::Withdrawn,
        consenter,
        req.method,
        req.obtained_on,
        Vec::new(),
    )
    .await?;
    Ok(axum::Json(change))
}

#[allow(clippy::too_many_arguments)]
async fn change_consent(
    state: &AppState,
    caller: &Caller,
    group: &GroupRecord,
    kind: ConsentKind,
    consenter: renkei_protocol::Consenter,
    method: renkei_protocol::ConsentMethod,
    obtained_on: time::Date,
    scope: Vec<ScopeEntry>,
) -> Result<ConsentChange, ApiError> {
    let me = caller.0.account.id();
    let new = NewConsent { kind, consenter, method, obtained_on, scope, recorded_by: me };
    let audit =
        Audit::entry(action::CONSENT_RECORDED, &Actor::from(&caller.0), Some(group.id), None, serde_json::json!({}));
    let (consent, removed) = state.store.record_consent(group.id, new, audit, domain::now()).await?;
    state.messaging.memberships_ended(group.id, removed.iter().map(|p| p.id).collect()).await;
    tracing::info!(user = %me, group = %group.id, version = consent.version, kind = consent.kind.as_str(),
        removed = removed.len(), "consent changed");
    Ok(ConsentChange { consent, removed })
}

/// Every consent version, oldest first.
#[utoipa::path(get, path = "/api/v1/groups/{id}/consents", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = ConsentHistory), (status = 404, body = ErrorBody)))]
async fn consent_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ConsentHistory>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::View).await?;
    Ok(axum::Json(ConsentHistory { consents: state.store.consents(group.id).await? }))
}

/// Invites a professional the consent in force covers (rule 3; `outside_consent_scope` otherwise, and
/// `consent_required` before any consent).
#[utoipa::path(post, path = "/api/v1/groups/{id}/invitations", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UserRef,
    responses((status = 201, body = renkei_protocol::Invitation), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UserRef>,
) -> Result<(StatusCode, axum::Json<renkei_protocol::Invitation>), ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::Invite).await?;
    let invitee = resolve_user(&state, &req.user).await?;
    let consent = state.store.latest_consent(group.id).await?;
    rules::check_invitee(consent.as_ref(), &invitee)?;
    let version = consent.map(|c| c.version).unwrap_or_default();
    let now = domain::now();
    let expires_at = now + Duration::days(i64::from(state.config.invitation_days));
    let me = &caller.0.account;
    let details = serde_json::json!({ "consent_version": version });
    let audit =
        Audit::entry(action::INVITATION_SENT, &Actor::from(&caller.0), Some(group.id), Some(invitee.id()), details);
    let invitation = NewInvitation {
        group: group.id,
        invitee: invitee.id(),
        invited_by: me.id(),
        consent_version: version,
        expires_at,
    };
    let membership = state.store.invite(invitation, audit, now).await?;
    tracing::info!(user = %me.id(), group = %group.id, invitee = %invitee.id(), "invitation sent");
    Ok((
        StatusCode::CREATED,
        axum::Json(renkei_protocol::Invitation {
            id: membership.id,
            group_id: group.id,
            group_label: group.label,
            invitee: invitee.person(),
            invited_by: me.person(),
            state: membership.state,
            invited_at: membership.invited_at,
            expires_at: membership.expires_at.unwrap_or(expires_at),
        }),
    ))
}

/// Removes a member or cancels an invitation (attending physician only).
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user}", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("user" = String, Path, description = "user id or login")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::RemoveMember).await?;
    let target = resolve_user(&state, &user).await?;
    let audit = Audit::entry(
        action::MEMBER_REMOVED,
        &Actor::from(&caller.0),
        Some(group.id),
        Some(target.id()),
        serde_json::json!({}),
    );
    if !state.store.end_membership(group.id, target.id(), MembershipState::Removed, audit, domain::now()).await? {
        return Err(ApiError::NotFound);
    }
    state.messaging.memberships_ended(group.id, vec![target.id()]).await;
    tracing::info!(user = %caller.0.account.id(), group = %group.id, removed = %target.id(), "member removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Leaves a group. The attending physician hands it over or archives it instead.
#[utoipa::path(post, path = "/api/v1/groups/{id}/leave", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn leave(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::Leave).await?;
    let me = caller.0.account.id();
    let audit =
        Audit::entry(action::MEMBER_LEFT, &Actor::from(&caller.0), Some(group.id), Some(me), serde_json::json!({}));
    if !state.store.end_membership(group.id, me, MembershipState::Left, audit, domain::now()).await? {
        return Err(ApiError::NotFound);
    }
    state.messaging.memberships_ended(group.id, vec![me]).await;
    tracing::info!(user = %me, group = %group.id, "member left");
    Ok(StatusCode::NO_CONTENT)
}

/// Hands the group over to another physician: an active member inside the consent's scope, who must accept.
#[utoipa::path(post, path = "/api/v1/groups/{id}/handover", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UserRef,
    responses((status = 200, body = Group), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn handover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UserRef>,
) -> Result<axum::Json<Group>, ApiError> {
    let (group, mine) = authorized(&state, &caller, &id, GroupAction::Handover).await?;
    let target = resolve_user(&state, &req.user).await?;
    let consent = state.store.latest_consent(group.id).await?;
    let target_membership = state.store.current_membership(group.id, target.id()).await?;
    rules::check_handover_target(consent.as_ref(), &target, target_membership.as_ref())?;
    let audit = Audit::entry(
        action::HANDOVER_REQUESTED,
        &Actor::from(&caller.0),
        Some(group.id),
        Some(target.id()),
        serde_json::json!({}),
    );
    state.store.request_handover(group.id, target.id(), audit, domain::now()).await?;
    tracing::info!(user = %mine.user_id, group = %group.id, to = %target.id(), "handover requested");
    let group = state.store.group(group.id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(group_view(&state, group, &mine).await?))
}

/// The physician a group is being handed over to accepts: they become its attending physician.
#[utoipa::path(post, path = "/api/v1/groups/{id}/handover/accept", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Group), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn accept_handover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    answer_handover(&state, &caller, &id, true).await.map(axum::Json)
}

/// The physician a group is being handed over to declines; nothing changes.
#[utoipa::path(post, path = "/api/v1/groups/{id}/handover/decline", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Group), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn decline_handover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    answer_handover(&state, &caller, &id, false).await.map(axum::Json)
}

async fn answer_handover(state: &AppState, caller: &Caller, id: &str, accept: bool) -> Result<Group, ApiError> {
    let (group, _) = authorized(state, caller, id, GroupAction::AnswerHandover).await?;
    let me = caller.0.account.id();
    let details = serde_json::json!({ "accepted": accept });
    let audit = Audit::entry(action::HANDOVER_ANSWERED, &Actor::from(&caller.0), Some(group.id), Some(me), details);
    state.store.answer_handover(group.id, me, accept, audit, domain::now()).await?;
    tracing::info!(user = %me, group = %group.id, accepted = accept, "handover answered");
    let group = state.store.group(group.id).await?.ok_or(ApiError::NotFound)?;
    let mine = state.store.current_membership(group.id, me).await?.ok_or(ApiError::NotFound)?;
    group_view(state, group, &mine).await
}

/// Archives the group when care ends: read-only, kept for the retention period.
#[utoipa::path(post, path = "/api/v1/groups/{id}/archive", tag = "groups", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Group), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Group>, ApiError> {
    let (group, mine) = authorized(&state, &caller, &id, GroupAction::Archive).await?;
    let audit =
        Audit::entry(action::GROUP_ARCHIVED, &Actor::from(&caller.0), Some(group.id), None, serde_json::json!({}));
    state.store.archive_group(group.id, audit, domain::now()).await?;
    tracing::info!(user = %mine.user_id, group = %group.id, "group archived");
    let group = state.store.group(group.id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(group_view(&state, group, &mine).await?))
}
