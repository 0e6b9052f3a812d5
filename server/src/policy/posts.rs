//! Post rules: authors edit and delete their own posts only (clinical records keep every version).

use renkei_protocol::Post;

use crate::domain::Account;

/// Only the author revises a post, and only while it is not deleted.
pub fn may_revise(post: &Post, caller: &Account) -> bool {
    post.author.id == caller.id() && post.deleted_at.is_none()
}
