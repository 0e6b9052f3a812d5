//! A post as stored: its columns, in one order for SQL and for SQLite's JSON pages, and its row.

use renkei_protocol::{Author, Post, PostKind, Profession};
use uuid::Uuid;

use crate::domain::from_micros;
use crate::store::StoreError;

macro_rules! post_columns {
    () => {
        "id, group_id, seq, author_id, author_name, author_profession, author_organisation, kind, body, reply_to, \
         client_msg_id, consent_version, created_at, version, edited_at, deleted_at, attachments, care_policy"
    };
}

/// [`post_columns!`] as the elements of one JSON array per post, in the same order (SQLite; JSON holds no
/// BLOB, so the ids go as hex), for [`PostRow`] to be read from by position.
macro_rules! post_columns_json_array {
    () => {
        "json_array(hex(id), hex(group_id), seq, hex(author_id), author_name, author_profession, \
         author_organisation, kind, body, reply_to, client_msg_id, consent_version, created_at, version, \
         edited_at, deleted_at, attachments, care_policy)"
    };
}

/// A post as stored. Its fields are in [`post_columns!`]'s order: SQLite pages arrive as JSON arrays of
/// them, read by position.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub(in crate::store) struct PostRow {
    pub(super) id: Uuid,
    pub(super) group_id: Uuid,
    pub(super) seq: i64,
    pub(super) author_id: Uuid,
    pub(super) author_name: String,
    pub(super) author_profession: String,
    pub(super) author_organisation: String,
    pub(super) kind: String,
    pub(super) body: Option<String>,
    pub(super) reply_to: Option<i64>,
    pub(super) client_msg_id: String,
    pub(super) consent_version: Option<i32>,
    pub(super) created_at: i64,
    pub(super) version: i32,
    pub(super) edited_at: Option<i64>,
    pub(super) deleted_at: Option<i64>,
    pub(super) attachments: Option<String>,
    pub(super) care_policy: Option<String>,
}

impl TryFrom<PostRow> for Post {
    type Error = StoreError;

    fn try_from(r: PostRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("post {}: unknown {what}", r.id));
        // A deleted post shares nothing any more.
        let attachments = match (&r.attachments, r.deleted_at) {
            (Some(json), None) => serde_json::from_str(json).map_err(|_| corrupt("attachments"))?,
            _ => Vec::new(),
        };
        let care_policy = match (&r.care_policy, r.deleted_at) {
            (Some(json), None) => Some(serde_json::from_str(json).map_err(|_| corrupt("care_policy"))?),
            _ => None,
        };
        Ok(Post {
            id: r.id,
            group_id: r.group_id,
            seq: r.seq,
            author: Author {
                id: r.author_id,
                display_name: r.author_name.clone(),
                profession: Profession::parse(&r.author_profession).ok_or_else(|| corrupt("profession"))?,
                organisation: r.author_organisation.clone(),
            },
            kind: PostKind::parse(&r.kind).ok_or_else(|| corrupt("kind"))?,
            body: r.body,
            reply_to: r.reply_to,
            client_msg_id: r.client_msg_id,
            consent_version: r.consent_version,
            created_at: from_micros(r.created_at),
            version: r.version,
            edited_at: r.edited_at.map(from_micros),
            deleted_at: r.deleted_at.map(from_micros),
            attachments,
            care_policy,
        })
    }
}

pub(in crate::store) use {post_columns, post_columns_json_array};
