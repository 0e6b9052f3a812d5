//! Who may attach, see and share a file, as pure functions (rule 4 for community groups; the group's
//! active membership is checked before, by `groups::authorize`).

use renkei_protocol::GroupKind;
use time::OffsetDateTime;
use uuid::Uuid;

/// An uploaded file no post shares is offered to posts for this long; the sweep removes it after a day,
/// so a post never names a file being removed.
pub const UNSHARED_FILE_OFFERED: time::Duration = time::Duration::hours(12);

/// Rule 4: a community group takes no files — a picture cannot be checked for a patient's name.
pub fn may_attach_in(kind: GroupKind) -> bool {
    kind != GroupKind::Community
}

/// The post that first shared a file, as far as these rules need it.
#[derive(Debug, Clone, Copy)]
pub struct SharedBy<'a> {
    pub author: Uuid,
    pub client_msg_id: &'a str,
    pub deleted: bool,
}

impl<'a> From<&'a renkei_protocol::Post> for SharedBy<'a> {
    fn from(p: &'a renkei_protocol::Post) -> Self {
        Self { author: p.author.id, client_msg_id: &p.client_msg_id, deleted: p.deleted_at.is_some() }
    }
}

/// Whether a member sees a file: while a post that is not deleted shares it, or, before any post does,
/// when it is their own upload.
pub fn may_see(uploader: Uuid, shared_by: Option<SharedBy<'_>>, caller: Uuid) -> bool {
    match shared_by {
        Some(post) => !post.deleted,
        None => uploader == caller,
    }
}

/// Whether an author's post (new, retried, or edited: `client_msg_id` names it) may share a file: their
/// own upload, not yet shared and recent enough, or one this very post shares already.
pub fn may_share(
    uploader: Uuid,
    uploaded_at: OffsetDateTime,
    shared_by: Option<SharedBy<'_>>,
    author: Uuid,
    client_msg_id: &str,
    now: OffsetDateTime,
) -> bool {
    uploader == author
        && match shared_by {
            None => uploaded_at > now - UNSHARED_FILE_OFFERED,
            Some(post) => post.author == author && post.client_msg_id == client_msg_id,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_the_uploaders_until_a_post_shares_them() {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let post = |deleted| SharedBy { author: me, client_msg_id: "c-1", deleted };
        assert!(may_see(me, None, me) && !may_see(me, None, other));
        assert!(may_see(me, Some(post(false)), other) && !may_see(me, Some(post(true)), me));
        assert!(may_share(me, now, None, me, "c-2", now));
        assert!(!may_share(me, now - time::Duration::hours(13), None, me, "c-2", now));
        assert!(!may_share(other, now, None, me, "c-2", now));
        assert!(may_share(me, now, Some(post(false)), me, "c-1", now));
        assert!(!may_share(me, now, Some(post(false)), me, "c-2", now));
        assert!(!may_attach_in(GroupKind::Community) && may_attach_in(GroupKind::Patient));
    }
}
