//! Post rules: who may post what where (PRODUCT.md rules 2 and 3), and authors edit and delete their own
//! posts only (clinical records keep every version).

use std::collections::HashMap;

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

/// What a batch of the group commit is decided on about one of its groups: the group, its sequence, its
/// consent version, the active memberships in it (of the batch's authors, or all of them where
/// PostgreSQL's committer keeps it), its care managers (counted where needed), and on PostgreSQL its
/// `state_version` (every change a decision reads moves it; migration 0008).
#[derive(Debug)]
pub struct GroupState {
    pub record: GroupRecord,
    pub last_seq: i64,
    pub consent_version: Option<i32>,
    pub care_managers: Option<i64>,
    pub state_version: Option<i64>,
    pub members: HashMap<Uuid, Membership>,
}

/// One request of a batch, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub group: Uuid,
    pub author: Uuid,
    pub client_msg_id: &'a str,
    pub kind: PostKind,
    pub reply_to: Option<i64>,
}

/// What became of one request of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A retry of a post already stored: its original is the answer.
    Stored,
    Refused(PostRefused),
    /// New row `row` of the batch is its post; `created` is false for a retry of an earlier request of the
    /// same batch, which gets the same post.
    Row {
        row: usize,
        created: bool,
    },
}

/// A post the batch writes: request `request`'s, numbered its group's base plus `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRow {
    pub request: usize,
    pub offset: i64,
    pub consent_version: Option<i32>,
}

/// A group with new posts in the batch: its last sequence number and `state_version` as decided on, and
/// how many new posts it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub id: Uuid,
    pub base: i64,
    pub count: i64,
    pub state_version: Option<i64>,
}

/// A batch decided: a verdict per request, in order, the rows to write, and the groups they advance (in
/// the order of their first new row).
#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdicts: Vec<Verdict>,
    pub new_rows: Vec<NewRow>,
    pub advances: Vec<Advance>,
}

/// Decides every request of a batch, in order, on its groups as read and on whether its (author, client
/// message id) is already stored (`stored`), by [`check_new_post`]. A group's sequence, as decided on,
/// advances with each new row, so a reply may name a post earlier in the same batch; a refused request
/// takes no number; a request repeating an earlier one of the batch gets that one's row.
pub fn decide(
    batch: &[Asked<'_>],
    stored: impl Fn(&Asked<'_>) -> bool,
    groups: &HashMap<Uuid, GroupState>,
) -> Decision {
    let mut decision =
        Decision { verdicts: Vec::with_capacity(batch.len()), new_rows: Vec::new(), advances: Vec::new() };
    let mut row_of: HashMap<(Uuid, &str), usize> = HashMap::new();
    let mut advance_of: HashMap<Uuid, usize> = HashMap::new();
    for (request, asked) in batch.iter().enumerate() {
        let verdict = if stored(asked) {
            Verdict::Stored
        } else if let Some(&row) = row_of.get(&(asked.author, asked.client_msg_id)) {
            Verdict::Row { row, created: false }
        } else if let Some(group) = groups.get(&asked.group) {
            let index = *advance_of.entry(asked.group).or_insert_with(|| {
                decision.advances.push(Advance {
                    id: asked.group,
                    base: group.last_seq,
                    count: 0,
                    state_version: group.state_version,
                });
                decision.advances.len() - 1
            });
            let advance = &mut decision.advances[index];
            let to = PostingTo {
                group: &group.record,
                membership: group.members.get(&asked.author),
                last_seq: advance.base + advance.count,
                care_managers: group.care_managers,
            };
            match check_new_post(to, asked.kind, asked.reply_to) {
                Err(refused) => Verdict::Refused(refused),
                Ok(()) => {
                    advance.count += 1;
                    let row = decision.new_rows.len();
                    row_of.insert((asked.author, asked.client_msg_id), row);
                    decision.new_rows.push(NewRow {
                        request,
                        offset: advance.count,
                        consent_version: group.consent_version,
                    });
                    Verdict::Row { row, created: true }
                }
            }
        } else {
            Verdict::Refused(PostRefused::Denied(GroupDenied::NotFound))
        };
        decision.verdicts.push(verdict);
    }
    decision.advances.retain(|a| a.count > 0);
    decision
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

    fn state(record: GroupRecord, last_seq: i64, members: &[&Membership]) -> GroupState {
        GroupState {
            record,
            last_seq,
            consent_version: Some(2),
            care_managers: None,
            state_version: Some(7),
            members: members.iter().map(|m| (m.user_id, (*m).clone())).collect(),
        }
    }

    fn ask(group: Uuid, author: Uuid, client_msg_id: &str) -> Asked<'_> {
        Asked { group, author, client_msg_id, kind: PostKind::Update, reply_to: None }
    }

    #[test]
    fn a_batch_numbers_each_groups_new_posts_after_its_last_and_skips_refusals() {
        let (a, b) = (member(MembershipState::Active), member(MembershipState::Active));
        let mut ga = group(GroupKind::Patient, GroupStatus::Active);
        let mut gb = group(GroupKind::Patient, GroupStatus::Active);
        (ga.id, gb.id) = (Uuid::new_v4(), Uuid::new_v4());
        let groups: HashMap<Uuid, GroupState> =
            [(ga.id, state(ga.clone(), 10, &[&a])), (gb.id, state(gb.clone(), 0, &[&a, &b]))].into();
        let nowhere = Uuid::new_v4();
        let batch = [
            ask(gb.id, a.user_id, "1"),
            ask(ga.id, b.user_id, "2"), // not a member of ga
            ask(ga.id, a.user_id, "3"),
            ask(nowhere, a.user_id, "4"),
            // A reply to the post this batch gives ga (its 11th): allowed, it is earlier.
            Asked { reply_to: Some(11), ..ask(ga.id, a.user_id, "5") },
            // A reply to a number this batch has not reached yet.
            Asked { reply_to: Some(3), ..ask(gb.id, b.user_id, "6") },
            ask(gb.id, b.user_id, "7"),
        ];
        let d = decide(&batch, |_| false, &groups);
        use Verdict::*;
        assert_eq!(
            d.verdicts,
            vec![
                Row { row: 0, created: true },
                Refused(PostRefused::Denied(GroupDenied::NotFound)),
                Row { row: 1, created: true },
                Refused(PostRefused::Denied(GroupDenied::NotFound)),
                Row { row: 2, created: true },
                Refused(PostRefused::UnknownReplyTo),
                Row { row: 3, created: true },
            ]
        );
        let rows: Vec<(usize, i64)> = d.new_rows.iter().map(|r| (r.request, r.offset)).collect();
        assert_eq!(rows, vec![(0, 1), (2, 1), (4, 2), (6, 2)]);
        assert!(d.new_rows.iter().all(|r| r.consent_version == Some(2)));
        assert_eq!(
            d.advances,
            vec![
                Advance { id: gb.id, base: 0, count: 2, state_version: Some(7) },
                Advance { id: ga.id, base: 10, count: 2, state_version: Some(7) },
            ]
        );
    }

    #[test]
    fn a_retry_inside_one_batch_gets_the_first_requests_row_and_a_stored_one_its_original() {
        let a = member(MembershipState::Active);
        let mut g = group(GroupKind::Patient, GroupStatus::Active);
        g.id = Uuid::new_v4();
        let groups: HashMap<Uuid, GroupState> = [(g.id, state(g.clone(), 4, &[&a]))].into();
        let batch = [
            ask(g.id, a.user_id, "same"),
            ask(g.id, a.user_id, "old"),
            ask(g.id, a.user_id, "same"),
            ask(g.id, a.user_id, "new"),
            ask(g.id, a.user_id, "same"),
        ];
        let d = decide(&batch, |asked| asked.client_msg_id == "old", &groups);
        use Verdict::*;
        assert_eq!(
            d.verdicts,
            vec![
                Row { row: 0, created: true },
                Stored,
                Row { row: 0, created: false },
                Row { row: 1, created: true },
                Row { row: 0, created: false },
            ]
        );
        assert_eq!(d.new_rows.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(d.advances, vec![Advance { id: g.id, base: 4, count: 2, state_version: Some(7) }]);
        // The same client id from another author is another post.
        let b = member(MembershipState::Active);
        let groups: HashMap<Uuid, GroupState> = [(g.id, state(g.clone(), 4, &[&a, &b]))].into();
        let d = decide(&[ask(g.id, a.user_id, "x"), ask(g.id, b.user_id, "x")], |_| false, &groups);
        assert_eq!(d.verdicts, vec![Row { row: 0, created: true }, Row { row: 1, created: true }]);
    }

    #[test]
    fn a_batch_of_refusals_advances_no_group() {
        let outsider = member(MembershipState::Active);
        let mut g = group(GroupKind::Patient, GroupStatus::Active);
        g.id = Uuid::new_v4();
        let groups: HashMap<Uuid, GroupState> = [(g.id, state(g.clone(), 4, &[]))].into();
        let d = decide(&[ask(g.id, outsider.user_id, "1")], |_| false, &groups);
        assert_eq!(d.verdicts, vec![Verdict::Refused(PostRefused::Denied(GroupDenied::NotFound))]);
        assert!(d.new_rows.is_empty() && d.advances.is_empty());
    }
}
