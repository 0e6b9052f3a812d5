//! Care teams: patient groups, versioned consent, invitations, membership, community groups, and the
//! administrators' metadata-only view of them.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Profession;

/// Serde for calendar dates as `YYYY-MM-DD`.
pub(crate) mod date_format {
    time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");
}

wire_enum!(
    /// A patient group (one patient, opened by the attending physician) or a community group (city-wide or
    /// per profession, created by an administrator).
    GroupKind { Patient = "patient", Community = "community" }
);

wire_enum!(
    /// `read_only` follows a withdrawal of consent; `archived` follows the end of care.
    GroupStatus { Active = "active", ReadOnly = "read_only", Archived = "archived" }
);

wire_enum!(
    MemberRole { AttendingPhysician = "attending_physician", Member = "member" }
);

wire_enum!(
    /// Who gave (or withdrew) consent.
    ConsenterKind { Patient = "patient", Family = "family", LegalRepresentative = "legal_representative" }
);

wire_enum!(
    ConsentMethod { Written = "written", Verbal = "verbal", Electronic = "electronic" }
);

wire_enum!(
    /// The first version is `recorded`, later ones `amended`; a withdrawal is a version with an empty scope.
    ConsentKind { Recorded = "recorded", Amended = "amended", Withdrawn = "withdrawn" }
);

wire_enum!(
    /// Where a membership stands. `invited` → `active` → `left`/`removed`; or `invited` → `declined`,
    /// `expired`, or `cancelled` (by a consent that no longer covers the invitee).
    MembershipState {
        Invited = "invited",
        Active = "active",
        Declined = "declined",
        Expired = "expired",
        Cancelled = "cancelled",
        Left = "left",
        Removed = "removed",
    }
);

/// What identifies the patient, kept for the community-group rule. Members see it; administrators never do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientIdentifiers {
    pub full_name: String,
    #[serde(default)]
    pub kana: Option<String>,
    #[serde(default)]
    pub patient_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenGroupRequest {
    /// What members see, e.g. 「山田 花子 様」.
    pub label: String,
    pub patient: PatientIdentifiers,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A person as other members see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub display_name: String,
    pub profession: Profession,
    pub organisation: String,
}

/// A group as one of its active members sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: Uuid,
    pub kind: GroupKind,
    pub label: String,
    pub status: GroupStatus,
    pub attending_physician: Option<Person>,
    /// Patient groups only.
    pub patient: Option<PatientIdentifiers>,
    pub notes: Option<String>,
    pub my_role: MemberRole,
    /// The consent version in force, if any.
    pub consent_version: Option<i32>,
    /// A physician the group is being handed over to, awaiting their acceptance.
    pub handover_to: Option<Person>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    /// When the group's content was purged under the retention policy: its posts, files, patient
    /// identifiers and consenters' names are gone; the group remains as a tombstone.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub purged_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupSummary {
    pub id: Uuid,
    pub kind: GroupKind,
    pub label: String,
    pub status: GroupStatus,
    pub my_role: MemberRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub person: Person,
    pub role: MemberRole,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// One entry of a consent's scope: an organisation and/or a profession and/or one person. A user is in
/// scope when every field an entry names matches them, for at least one entry (MHLW's consent models:
/// all participants by profession, by facility list, per facility, per person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<Profession>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consenter {
    pub kind: ConsenterKind,
    pub name: String,
    /// For family: e.g. 「長女」.
    #[serde(default)]
    pub relationship: Option<String>,
}

/// Records the first consent or amends it. The scope must not be empty (that is a withdrawal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConsentRequest {
    pub consenter: Consenter,
    pub method: ConsentMethod,
    #[serde(with = "date_format::iso_date")]
    #[schema(value_type = String, format = Date)]
    pub obtained_on: Date,
    pub scope: Vec<ScopeEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawConsentRequest {
    pub consenter: Consenter,
    pub method: ConsentMethod,
    #[serde(with = "date_format::iso_date")]
    #[schema(value_type = String, format = Date)]
    pub obtained_on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Consent {
    pub version: i32,
    pub kind: ConsentKind,
    pub consenter: Consenter,
    pub method: ConsentMethod,
    #[serde(with = "date_format::iso_date")]
    #[schema(value_type = String, format = Date)]
    pub obtained_on: Date,
    pub scope: Vec<ScopeEntry>,
    pub recorded_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// The answer to recording, amending or withdrawing consent: the new version and who it removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentChange {
    pub consent: Consent,
    /// Members and invitees no longer covered, removed in the same transaction.
    pub removed: Vec<Person>,
}

/// What recording this consent would do, computed as the commit computes it: who would be removed and
/// whose invitation cancelled. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentPreview {
    /// Active members the new scope no longer covers.
    pub removed_members: Vec<Person>,
    /// Pending invitations the new scope no longer covers.
    pub cancelled_invitations: Vec<Person>,
}

wire_enum!(
    /// Where a professional stands for this group: invitable, or why not.
    CandidateStatus {
        Invitable = "invitable",
        ActiveMember = "active_member",
        Invited = "invited",
        OutsideConsentScope = "outside_consent_scope",
        ConsentRequired = "consent_required",
    }
);

/// A professional from the directory, as the attending physician sees them when inviting or naming people
/// in a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub person: Person,
    pub kana: Option<String>,
    pub login: String,
    pub status: CandidateStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CandidateList {
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentHistory {
    pub consents: Vec<Consent>,
}

/// Names a user by id or login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub group_id: Uuid,
    pub group_label: String,
    pub invitee: Person,
    pub invited_by: Person,
    pub state: MembershipState,
    #[serde(with = "time::serde::rfc3339")]
    pub invited_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommunityGroupRequest {
    pub label: String,
}

/// One membership episode, for administrators: who, which role, and when it began and ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MembershipRecord {
    pub person: Person,
    pub role: MemberRole,
    pub state: MembershipState,
    #[serde(with = "time::serde::rfc3339")]
    pub invited_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub joined_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// A consent version as administrators see it: no names of patient or family, nothing clinical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentMetadata {
    pub version: i32,
    pub kind: ConsentKind,
    pub consenter_kind: ConsenterKind,
    pub method: ConsentMethod,
    #[serde(with = "date_format::iso_date")]
    #[schema(value_type = String, format = Date)]
    pub obtained_on: Date,
    pub scope: Vec<ScopeEntry>,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// A group as administrators see it: label, status and membership metadata; never patient identifiers,
/// notes or posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminGroup {
    pub id: Uuid,
    pub kind: GroupKind,
    /// A neutral reference to speak of the group by: `P-` (patient) or `C-` (community) and the id's first
    /// eight hex digits. A patient group's label is written by its physician and names the patient, so it
    /// never reaches an administrator.
    pub reference: String,
    /// Community groups only: the name an administrator gave it.
    pub label: Option<String>,
    pub status: GroupStatus,
    pub attending_physician: Option<Person>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    /// When its content was purged under the retention policy.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub purged_at: Option<OffsetDateTime>,
    /// Every membership episode, current and past, oldest first.
    pub memberships: Vec<MembershipRecord>,
    pub consents: Vec<ConsentMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdminGroupList {
    pub groups: Vec<AdminGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_dates_are_plain_iso_dates() {
        let req: WithdrawConsentRequest = serde_json::from_str(
            r#"{"consenter":{"kind":"family","name":"山田 一郎","relationship":"長男"},"method":"written","obtained_on":"2026-11-20"}"#,
        )
        .unwrap();
        assert_eq!(req.obtained_on.to_string(), "2026-11-20");
        assert!(
            serde_json::from_str::<WithdrawConsentRequest>(
                r#"{"consenter":{"kind":"family","name":"x"},"method":"written","obtained_on":"20/11/2026"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn wire_enums_round_trip() {
        for s in MembershipState::ALL {
            assert_eq!(MembershipState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for s in GroupStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
    }
}
