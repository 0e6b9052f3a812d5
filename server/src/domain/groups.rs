//! Groups and membership episodes as the server holds them. Consents use the protocol's
//! [`renkei_protocol::Consent`] directly: the wire shape is the record.

use renkei_protocol::{GroupKind, GroupStatus, MemberRole, MembershipState, PatientIdentifiers};
use time::OffsetDateTime;
use uuid::Uuid;

/// A group with everything the server knows about it. `patient` and `notes` never reach administrators.
#[derive(Clone)]
pub struct GroupRecord {
    pub id: Uuid,
    pub kind: GroupKind,
    pub label: String,
    pub status: GroupStatus,
    pub attending_physician_id: Option<Uuid>,
    pub patient: Option<PatientIdentifiers>,
    pub notes: Option<String>,
    pub handover_to_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub archived_at: Option<OffsetDateTime>,
    /// When its content was purged (rule 7): the group is a tombstone since.
    pub purged_at: Option<OffsetDateTime>,
}

impl GroupRecord {
    /// A bare group of `kind` and `status`, for the policy layer's unit tests.
    #[cfg(test)]
    pub fn bare(kind: GroupKind, status: GroupStatus) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            label: "g".into(),
            status,
            attending_physician_id: None,
            patient: None,
            notes: None,
            handover_to_id: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            archived_at: None,
            purged_at: None,
        }
    }

    /// A neutral reference to speak of the group by, naming no patient: `P-` (patient) or `C-` (community)
    /// and the id's first eight hex digits.
    pub fn reference(&self) -> String {
        let prefix = if self.kind == GroupKind::Patient { "P" } else { "C" };
        format!("{prefix}-{}", &self.id.simple().to_string()[..8])
    }
}

impl std::fmt::Debug for GroupRecord {
    // Patient identifiers and notes are kept out of any debug output, and so out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// One membership episode of one user in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: Uuid,
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub role: MemberRole,
    pub state: MembershipState,
    pub invited_by: Option<Uuid>,
    pub invited_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub joined_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.state == MembershipState::Active
    }
}
