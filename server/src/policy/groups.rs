//! Care-team rules (PRODUCT.md rules 2 and 3; Musashino ICT rules §9-2): who may open a patient group,
//! who may see and change it, and who the patient's consent covers.

use renkei_protocol::{
    CandidateStatus, Consent, ConsentKind, GroupKind, GroupStatus, MemberRole, MembershipState, Profession, ScopeEntry,
    User,
};

use crate::domain::{Account, GroupRecord, Membership};

/// What a caller wants to do with a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// Read the group, its members and its consent history.
    View,
    /// Record or amend consent (a new version), or withdraw it.
    ChangeConsent,
    Invite,
    RemoveMember,
    /// Hand the group over to another physician.
    Handover,
    Archive,
    Leave,
    /// Accept or decline a handover addressed to the caller.
    AnswerHandover,
    /// Post, edit one's own post, mark seen.
    Post,
    /// Export the timeline for the medical record, or the access report (attending physician).
    Export,
}

/// Why a group action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDenied {
    /// Not an active member: the caller learns nothing, not even that the group exists.
    NotFound,
    /// A member, but this needs the attending physician (or is not for this kind of group).
    Forbidden,
    /// The group is archived or read-only.
    NotActive,
}

/// Rule 2: only a physician opens a patient group, and becomes its attending physician.
pub fn may_open_patient_group(actor: &Account) -> bool {
    actor.is_active() && actor.user.profession == Profession::Physician
}

/// Rules 2 and 3: every read and write needs an active membership; changes to a patient group need its
/// attending physician; nothing but a new consent or archiving touches a read-only group, and nothing
/// touches an archived one.
pub fn authorize(group: &GroupRecord, membership: Option<&Membership>, action: GroupAction) -> Result<(), GroupDenied> {
    let Some(membership) = membership.filter(|m| m.is_active()) else {
        return Err(GroupDenied::NotFound);
    };
    let attending = membership.role == MemberRole::AttendingPhysician;
    let patient_group = group.kind == GroupKind::Patient;
    use GroupAction as A;
    match action {
        A::View => Ok(()),
        A::Post if group.status == GroupStatus::Active => Ok(()),
        A::Export if patient_group && attending => Ok(()),
        A::Export => Err(GroupDenied::Forbidden),
        A::ChangeConsent | A::Invite | A::RemoveMember | A::Handover | A::Archive if !(patient_group && attending) => {
            Err(GroupDenied::Forbidden)
        }
        A::AnswerHandover if group.handover_to_id != Some(membership.user_id) => Err(GroupDenied::Forbidden),
        A::Leave if attending => Err(GroupDenied::Forbidden),
        _ => match (group.status, action) {
            (GroupStatus::Active, _) => Ok(()),
            (GroupStatus::ReadOnly, A::ChangeConsent | A::Archive | A::Leave) => Ok(()),
            _ => Err(GroupDenied::NotActive),
        },
    }
}

/// Rule 3: a user is covered by a consent when, for at least one scope entry, every field the entry names
/// matches them. An entry naming nothing covers nobody (fail closed); so does a withdrawn consent.
pub fn in_scope(scope: &[ScopeEntry], user: &User) -> bool {
    scope.iter().any(|entry| {
        let named = entry.organisation.is_some() || entry.profession.is_some() || entry.user.is_some();
        named
            && entry.organisation.as_deref().is_none_or(|o| o.trim() == user.organisation.trim())
            && entry.profession.is_none_or(|p| p == user.profession)
            && entry.user.is_none_or(|id| id == user.id)
    })
}

/// Why an invitation (or handover) target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRefused {
    /// No consent recorded yet, or it was withdrawn.
    ConsentRequired,
    /// Outside the consent's scope (fail closed).
    OutsideConsentScope,
    /// A handover must go to a physician.
    NotAPhysician,
    /// The account is disabled.
    AccountDisabled,
    /// A handover goes to another physician who is already an active member.
    NotAnActiveMember,
}

/// Rule 2 and 3 for invitations: a consent must be in force and cover the invitee.
pub fn check_invitee(consent: Option<&Consent>, invitee: &Account) -> Result<(), TargetRefused> {
    let consent = consent.filter(|c| c.kind != ConsentKind::Withdrawn).ok_or(TargetRefused::ConsentRequired)?;
    if !invitee.is_active() {
        return Err(TargetRefused::AccountDisabled);
    }
    if in_scope(&consent.scope, &invitee.user) { Ok(()) } else { Err(TargetRefused::OutsideConsentScope) }
}

/// Where a professional from the directory stands for a group, so the physician sees before inviting
/// whether the invitation would be refused, and why (the same rules [`check_invitee`] enforces).
pub fn candidate_status(
    consent: Option<&Consent>,
    candidate: &Account,
    membership: Option<MembershipState>,
) -> CandidateStatus {
    match membership {
        Some(MembershipState::Active) => return CandidateStatus::ActiveMember,
        Some(MembershipState::Invited) => return CandidateStatus::Invited,
        _ => {}
    }
    match check_invitee(consent, candidate) {
        Ok(()) => CandidateStatus::Invitable,
        Err(TargetRefused::ConsentRequired) => CandidateStatus::ConsentRequired,
        Err(_) => CandidateStatus::OutsideConsentScope,
    }
}

/// A handover goes to another physician, an active member inside the consent's scope (who must then
/// accept: the 主治医 changes when a patient moves between hospital and home).
pub fn check_handover_target(
    consent: Option<&Consent>,
    target: &Account,
    target_membership: Option<&Membership>,
) -> Result<(), TargetRefused> {
    if target.user.profession != Profession::Physician {
        return Err(TargetRefused::NotAPhysician);
    }
    check_invitee(consent, target)?;
    match target_membership {
        Some(m) if m.is_active() && m.role == MemberRole::Member => Ok(()),
        _ => Err(TargetRefused::NotAnActiveMember),
    }
}

/// Administrators add and remove members of community groups only; a patient group is joined by
/// invitation under consent, never by an administrator's say-so (rule 3).
pub fn admin_may_manage_members(group: &GroupRecord) -> bool {
    group.kind == GroupKind::Community
}

#[cfg(test)]
mod tests {
    use renkei_protocol::{AccountStatus, Role};
    use uuid::Uuid;

    use super::*;

    fn user(profession: Profession, organisation: &str) -> User {
        User {
            id: Uuid::new_v4(),
            login: "u".into(),
            display_name: "u".into(),
            kana: None,
            profession,
            organisation: organisation.into(),
            phone: None,
            role: Role::Member,
            status: AccountStatus::Active,
            totp_enabled: false,
            must_change_password: false,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn entry(organisation: Option<&str>, profession: Option<Profession>, user: Option<Uuid>) -> ScopeEntry {
        ScopeEntry { organisation: organisation.map(Into::into), profession, user }
    }

    #[test]
    fn scope_entries_are_and_within_and_or_across() {
        let nurse = user(Profession::Nurse, "むさしの訪問看護");
        let other_nurse = user(Profession::Nurse, "よその訪問看護");
        let pharmacist = user(Profession::Pharmacist, "むさしの訪問看護");
        let by_org_and_profession = [entry(Some("むさしの訪問看護"), Some(Profession::Nurse), None)];
        assert!(in_scope(&by_org_and_profession, &nurse));
        assert!(!in_scope(&by_org_and_profession, &other_nurse));
        assert!(!in_scope(&by_org_and_profession, &pharmacist));
        let by_profession = [entry(None, Some(Profession::Nurse), None)];
        assert!(in_scope(&by_profession, &other_nurse));
        let per_person = [entry(None, None, Some(pharmacist.id)), entry(Some("よその訪問看護"), None, None)];
        assert!(in_scope(&per_person, &pharmacist) && in_scope(&per_person, &other_nurse));
        assert!(!in_scope(&per_person, &nurse));
        // Fail closed: an empty entry or an empty scope covers nobody.
        assert!(!in_scope(&[entry(None, None, None)], &nurse));
        assert!(!in_scope(&[], &nurse));
    }
}
