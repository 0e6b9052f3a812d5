//! Post rules: who may post what where (PRODUCT.md rules 2 and 3), and authors edit and delete their own
//! posts only (clinical records keep every version).

use renkei_protocol::{GroupKind, Post, PostKind};
use uuid::Uuid;

use super::groups::{GroupAction, GroupDenied, authorize};
use crate::domain::{Account, GroupRecord, Membership};

/// Why a new post is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRefused {
    Denied(GroupDenied),
    /// `reply_to` names no earlier post of the group.
    UnknownReplyTo,
    /// Rule 3: a care-plan question in a group without a care manager.
    NoCareManager,
    /// Questions and care policies belong to a patient's care team, not to community groups.
    QuestionOutsidePatientGroup,
    /// A care policy (診療方針) is the attending physician's alone.
    NotAttendingPhysician,
}

/// What a new post is decided on: its group as it stands when the post is written.
#[derive(Debug, Clone, Copy)]
pub struct PostingTo<'a> {
    pub group: &'a GroupRecord,
    /// The author's membership, if any.
    pub membership: Option<&'a Membership>,
    /// The group's last sequence number.
    pub last_seq: i64,
    /// The group's active care managers (only needed for a care-plan question).
    pub care_managers: Option<i64>,
}

/// Whether a new post of this kind, replying to `reply_to`, may go into the group: the author an active
/// member of an active group, the reply to an earlier post, questions and care policies only in patient
/// groups, a care-plan question only where a care manager will read it, and a care policy only from the
/// group's attending physician.
pub fn check_new_post(to: PostingTo<'_>, kind: PostKind, reply_to: Option<i64>) -> Result<(), PostRefused> {
    authorize(to.group, to.membership, GroupAction::Post).map_err(PostRefused::Denied)?;
    if reply_to.is_some_and(|r| r < 1 || r > to.last_seq) {
        return Err(PostRefused::UnknownReplyTo);
    }
    if kind != PostKind::Update && to.group.kind != GroupKind::Patient {
        return Err(PostRefused::QuestionOutsidePatientGroup);
    }
    if kind == PostKind::CarePlanQuestion && to.care_managers.is_none_or(|n| n <= 0) {
        return Err(PostRefused::NoCareManager);
    }
    let author = to.membership.map(|m| m.user_id);
    if kind == PostKind::CarePolicy && (author.is_none() || to.group.attending_physician_id != author) {
        return Err(PostRefused::NotAttendingPhysician);
    }
    Ok(())
}

/// Whether `caller` may read the earlier texts of `post`: always while it stands; once it is deleted,
/// only the group's attending physician (who exports the clinical record; PRODUCT.md), and the audit
/// trail. Other members still see that there were versions, and when, without their text.
pub fn may_read_deleted_versions(post: &Post, attending_physician: Option<Uuid>, caller: &Account) -> bool {
    post.deleted_at.is_none() || attending_physician == Some(caller.id())
}

/// Only the author revises a post, and only while it is not deleted.
pub fn may_revise(post: &Post, caller: &Account) -> bool {
    post.author.id == caller.id() && post.deleted_at.is_none()
}

#[cfg(test)]
mod tests {
    use renkei_protocol::{GroupStatus, MemberRole, MembershipState};
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn group(kind: GroupKind, status: GroupStatus) -> GroupRecord {
        GroupRecord::bare(kind, status)
    }

    fn member(state: MembershipState) -> Membership {
        Membership {
            id: Uuid::new_v4(),
            group_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            role: MemberRole::Member,
            state,
            invited_by: None,
            invited_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            joined_at: Some(OffsetDateTime::UNIX_EPOCH),
            ended_at: None,
        }
    }

    #[test]
    fn a_new_post_needs_an_active_member_an_earlier_post_and_a_patient_group_for_questions() {
        let patient = group(GroupKind::Patient, GroupStatus::Active);
        let active = member(MembershipState::Active);
        let to = PostingTo { group: &patient, membership: Some(&active), last_seq: 3, care_managers: Some(1) };
        assert_eq!(check_new_post(to, PostKind::Update, None), Ok(()));
        assert_eq!(check_new_post(to, PostKind::Update, Some(3)), Ok(()));
        assert_eq!(check_new_post(to, PostKind::CarePlanQuestion, Some(1)), Ok(()));
        // Replies only to earlier posts of the group.
        for reply_to in [0, 4, -1] {
            assert_eq!(check_new_post(to, PostKind::Update, Some(reply_to)), Err(PostRefused::UnknownReplyTo));
        }
        // An outsider, or a removed member, learns nothing.
        let removed = member(MembershipState::Removed);
        for membership in [None, Some(&removed)] {
            let outsider = PostingTo { membership, ..to };
            assert_eq!(
                check_new_post(outsider, PostKind::Update, None),
                Err(PostRefused::Denied(GroupDenied::NotFound))
            );
        }
        // A read-only group takes no posts.
        let read_only = group(GroupKind::Patient, GroupStatus::ReadOnly);
        let closed = PostingTo { group: &read_only, ..to };
        assert_eq!(check_new_post(closed, PostKind::Update, None), Err(PostRefused::Denied(GroupDenied::NotActive)));
        // Rule 3: a care-plan question needs a care manager in the group; not counted is not one.
        for care_managers in [Some(0), None] {
            let without = PostingTo { care_managers, ..to };
            assert_eq!(check_new_post(without, PostKind::CarePlanQuestion, None), Err(PostRefused::NoCareManager));
            assert_eq!(check_new_post(without, PostKind::TreatmentQuestion, None), Ok(()));
        }
        // A care policy is the attending physician's: not another member's.
        assert_eq!(check_new_post(to, PostKind::CarePolicy, None), Err(PostRefused::NotAttendingPhysician));
        let attending = GroupRecord { attending_physician_id: Some(active.user_id), ..patient.clone() };
        let physician = PostingTo { group: &attending, ..to };
        assert_eq!(check_new_post(physician, PostKind::CarePolicy, None), Ok(()));
        // Questions and care policies belong to a patient's care team, not to a community group.
        let community = group(GroupKind::Community, GroupStatus::Active);
        let town = PostingTo { group: &community, ..to };
        assert_eq!(check_new_post(town, PostKind::Update, None), Ok(()));
        for kind in [PostKind::TreatmentQuestion, PostKind::CarePlanQuestion, PostKind::CarePolicy] {
            assert_eq!(check_new_post(town, kind, None), Err(PostRefused::QuestionOutsidePatientGroup));
        }
    }
}
