//! Retention (rule 7): which groups' content may be purged, and when. Only an archived patient group is
//! purged — care has ended and its attending physician closed it — and only once.

use time::OffsetDateTime;

use crate::domain::GroupRecord;
use renkei_protocol::{GroupKind, GroupStatus};

/// Why a group's content may not be purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeRefused {
    /// Community groups hold no patient's record.
    NotAPatientGroup,
    /// Care has not ended: the group is active or read-only.
    NotArchived,
    AlreadyPurged,
}

impl std::fmt::Display for PurgeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotAPatientGroup => "not a patient group",
            Self::NotArchived => "not archived",
            Self::AlreadyPurged => "already purged",
        })
    }
}

pub fn may_purge(group: &GroupRecord) -> Result<(), PurgeRefused> {
    if group.kind != GroupKind::Patient {
        Err(PurgeRefused::NotAPatientGroup)
    } else if group.purged_at.is_some() {
        Err(PurgeRefused::AlreadyPurged)
    } else if group.status != GroupStatus::Archived {
        Err(PurgeRefused::NotArchived)
    } else {
        Ok(())
    }
}

/// Whether the retention policy (`after_days`; `None`: never) purges `group` at `now`.
pub fn purge_due(group: &GroupRecord, now: OffsetDateTime, after_days: Option<u32>) -> bool {
    let Some(days) = after_days else { return false };
    may_purge(group).is_ok() && group.archived_at.is_some_and(|at| at + time::Duration::days(i64::from(days)) <= now)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn group(kind: GroupKind, status: GroupStatus, archived: Option<OffsetDateTime>) -> GroupRecord {
        GroupRecord { archived_at: archived, ..GroupRecord::bare(kind, status) }
    }

    #[test]
    fn only_an_archived_patient_group_is_purged_and_only_after_its_time() {
        let archived = datetime!(2026-01-10 09:00 UTC);
        let g = group(GroupKind::Patient, GroupStatus::Archived, Some(archived));
        assert_eq!(may_purge(&g), Ok(()));
        assert!(!purge_due(&g, datetime!(2031-01-09 09:00 UTC), Some(1826)), "a day early");
        assert!(purge_due(&g, datetime!(2031-01-10 09:00 UTC), Some(1826)));
        assert!(!purge_due(&g, datetime!(2099-01-01 00:00 UTC), None), "no policy: never");
        for status in [GroupStatus::Active, GroupStatus::ReadOnly] {
            let open = group(GroupKind::Patient, status, Some(archived));
            assert_eq!(may_purge(&open), Err(PurgeRefused::NotArchived));
            assert!(!purge_due(&open, datetime!(2099-01-01 00:00 UTC), Some(1)));
        }
        let town = group(GroupKind::Community, GroupStatus::Archived, Some(archived));
        assert_eq!(may_purge(&town), Err(PurgeRefused::NotAPatientGroup));
        let gone = GroupRecord { purged_at: Some(archived), ..g };
        assert_eq!(may_purge(&gone), Err(PurgeRefused::AlreadyPurged));
    }
}
