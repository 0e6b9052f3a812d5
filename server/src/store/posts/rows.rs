//! A post as stored (its columns, in one order for SQL and for SQLite's JSON pages, and its row), and a
//! batch of the group commit as its statements (`store::dialect::Dialect`) see it.

use renkei_protocol::{Attachment, Author, CarePolicy, NewPost, Post, PostKind, Profession};
use uuid::Uuid;

use crate::domain::from_micros;
use crate::store::group_rows::GroupRow;
use crate::store::{NewAuditEntry, StoreError};

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

/// A post waiting for the next group commit.
#[derive(Debug, Clone)]
pub struct PostRequest {
    pub group_id: Uuid,
    pub author: Author,
    pub post: NewPost,
    /// An act that comes with this post (an override of the emergency rule): appended to the audit log in
    /// the batch's transaction when the post is created, so the post and its entry commit together.
    pub audit: Option<NewAuditEntry>,
    /// The files `post.attachments` names, as checked before the commit (uploaded to this group by the
    /// author); the commit marks each as referenced and stores their descriptions with the post.
    pub attachments: Vec<Attachment>,
}

impl PostRequest {
    /// The post's attachments as stored in `posts.attachments` (NULL for none).
    pub(in crate::store) fn attachments_json(&self) -> Option<String> {
        (!self.attachments.is_empty()).then(|| attachments_json(&self.attachments))
    }

    /// A care policy's record as stored in `posts.care_policy` (NULL for other kinds).
    pub(in crate::store) fn care_policy_json(&self) -> Option<String> {
        self.post.care_policy.as_ref().map(care_policy_json)
    }
}

pub(super) fn care_policy_json(policy: &CarePolicy) -> String {
    serde_json::to_string(policy).expect("a care policy serialises: plain fields, string keys")
}

pub(super) fn attachments_json(attachments: &[Attachment]) -> String {
    serde_json::to_string(attachments).expect("attachments serialise: plain fields, string keys")
}

/// A group row read (and locked, but where PostgreSQL's committer reads the groups it keeps) in one statement.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct GroupStateRow {
    #[sqlx(flatten)]
    pub(in crate::store) group: GroupRow,
    pub(in crate::store) last_seq: i64,
    pub(in crate::store) consent_version: Option<i32>,
    pub(in crate::store) care_managers: Option<i64>,
    pub(in crate::store) state_version: Option<i64>,
}

/// A group row with active memberships in it, as a JSON array (PostgreSQL).
#[derive(sqlx::FromRow)]
pub(in crate::store) struct GroupStateWithMembers {
    #[sqlx(flatten)]
    pub(in crate::store) state: GroupStateRow,
    pub(in crate::store) members: Option<String>,
}

/// A new post of a batch, as written: its id, its request, and its place in its group (its sequence
/// number is its group's last one as written on, plus `offset`).
#[derive(Clone, Copy)]
pub(in crate::store) struct NewRow<'a> {
    pub(in crate::store) id: Uuid,
    pub(in crate::store) req: &'a PostRequest,
    pub(in crate::store) offset: i64,
    pub(in crate::store) consent_version: Option<i32>,
}

/// A batch's groups and authors, each once and in order, and the groups it asks a care-plan question in.
pub(in crate::store) struct BatchKeys {
    pub(in crate::store) groups: Vec<Uuid>,
    pub(in crate::store) authors: Vec<Uuid>,
    pub(in crate::store) care_plan: Vec<Uuid>,
}

impl BatchKeys {
    pub(in crate::store) fn of(batch: &[PostRequest]) -> Self {
        let sorted = |mut ids: Vec<Uuid>| {
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        BatchKeys {
            groups: sorted(batch.iter().map(|r| r.group_id).collect()),
            authors: sorted(batch.iter().map(|r| r.author.id).collect()),
            care_plan: sorted(
                batch.iter().filter(|r| r.post.kind == PostKind::CarePlanQuestion).map(|r| r.group_id).collect(),
            ),
        }
    }
}

/// Counts a group's active care managers (rule 3: a care-plan question needs one), inside a group row's
/// statement on both databases.
macro_rules! care_managers_of_group {
    () => {
        "(SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = groups.id \
         AND m.state = 'active' AND u.profession = 'care_manager')"
    };
}
pub(in crate::store) use care_managers_of_group;

/// Posts per multi-row statement (15 parameters each: 1,920, far below SQLite's 32,766 and PostgreSQL's 65,535).
pub(in crate::store) const POST_ROWS_PER_STATEMENT: usize = 128;
