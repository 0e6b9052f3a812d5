//! Posts: the group commit of new posts, history pages, edits and deletions with every version kept,
//! seen marks and read positions.
//!
//! Sequence numbers come from `groups.last_seq`, advanced inside the very transaction that inserts the
//! posts, so they are gap-free per group on any number of nodes: a rolled-back transaction rolls back its
//! numbers too, and the group row's lock orders concurrent writers.

use crate::store::BeginWrite;
use std::collections::HashMap;

use renkei_protocol::{
    Attachment, Author, CarePolicy, NewPost, Person, Post, PostKind, PostVersion, Profession, SeenMark, Unread,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::group_rows::{GroupRow, MembershipRow, group_columns, membership_columns};
use super::{NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{GroupRecord, Membership, from_micros, to_micros};
use crate::policy::groups::GroupDenied;
pub use crate::policy::posts::PostRefused;
use crate::policy::posts::{PostingTo, check_new_post};

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
    fn attachments_json(&self) -> Option<String> {
        (!self.attachments.is_empty()).then(|| serde_json::to_string(&self.attachments).unwrap_or_default())
    }

    /// A care policy's record as stored in `posts.care_policy` (NULL for other kinds).
    fn care_policy_json(&self) -> Option<String> {
        self.post.care_policy.as_ref().map(care_policy_json)
    }
}

fn care_policy_json(policy: &CarePolicy) -> String {
    serde_json::to_string(policy).unwrap_or_default()
}

/// A change to a post: its new text and what comes with it (`None`: deleted, leaving a tombstone).
#[derive(Debug, Clone, Copy)]
pub struct Revision<'a> {
    pub body: &'a str,
    /// The files from now on (`None`: unchanged).
    pub attachments: Option<&'a [Attachment]>,
    /// A care policy's record from now on (`None`: unchanged).
    pub care_policy: Option<&'a CarePolicy>,
}

/// The outcome for one request of a batch: the post, and whether this batch created it (false when the
/// client message id had been used before, so the original is returned), or why it was refused (the
/// others in the batch are unaffected).
pub type PostOutcome = Result<(Post, bool), PostRefused>;

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
struct PostRow {
    id: Uuid,
    group_id: Uuid,
    seq: i64,
    author_id: Uuid,
    author_name: String,
    author_profession: String,
    author_organisation: String,
    kind: String,
    body: Option<String>,
    reply_to: Option<i64>,
    client_msg_id: String,
    consent_version: Option<i32>,
    created_at: i64,
    version: i32,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    attachments: Option<String>,
    care_policy: Option<String>,
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

/// What a batch is decided on about one of its groups: the group, its sequence, its consent version, the
/// active memberships in it (of the batch's authors, or all of them where PostgreSQL's committer keeps it),
/// its care managers (counted where needed), and on PostgreSQL its `state_version`.
#[derive(Debug)]
struct GroupState {
    record: GroupRecord,
    last_seq: i64,
    consent_version: Option<i32>,
    care_managers: Option<i64>,
    state_version: Option<i64>,
    members: HashMap<Uuid, Membership>,
}

/// A group row read (and locked, but where PostgreSQL's committer reads the groups it keeps) in one statement.
#[derive(sqlx::FromRow)]
struct GroupStateRow {
    #[sqlx(flatten)]
    group: GroupRow,
    last_seq: i64,
    consent_version: Option<i32>,
    care_managers: Option<i64>,
    state_version: Option<i64>,
}

/// A group row with active memberships in it, as a JSON array (PostgreSQL).
#[derive(sqlx::FromRow)]
struct GroupStateWithMembers {
    #[sqlx(flatten)]
    state: GroupStateRow,
    members: Option<String>,
}

/// A new post of a batch: its sequence number is its group's last one as written on, plus `offset`.
#[derive(Clone, Copy)]
struct NewRow<'a> {
    id: Uuid,
    req: &'a PostRequest,
    offset: i64,
    consent_version: Option<i32>,
}

/// A group with new posts in the batch: its last sequence number and `state_version` as decided on
/// (`None` on SQLite, whose write lock is taken before the read), and how many new posts it gets.
#[derive(Debug, Clone, Copy)]
struct Advance {
    id: Uuid,
    base: i64,
    count: i64,
    state_version: Option<i64>,
}

/// `?, ?, …`: `count` anonymous SQLite placeholders. SQLite binds a numbered parameter (`$N`, `?N`) only
/// after looking its name up in a list, so numbered ones cost the square of a multi-row insert's
/// parameters: renkei-bench's profile found 23 % of the server's CPU there.
fn marks(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// The statements of one group commit, per database. SQLite binds every value (`?` placeholders, a
/// statement per chunk of the batch). PostgreSQL binds arrays, so each statement's text never changes
/// and is parsed and planned once per connection instead of once per batch.
trait CommitStatements {
    /// Locks and reads the groups in id order, each with its consent version in force (and its care
    /// managers counted, for the `care_plan` groups), and the active memberships of these users in them.
    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error>;
    /// The posts that already have one of the batch's (author, client message id) pairs.
    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error>;
    /// Inserts the new posts (their first versions are written at their first edit, by `revise_post`) and
    /// advances each group's last sequence number, only if every group's `state_version` is still the one
    /// the batch was decided on (PostgreSQL): each group's last sequence number before the batch, as
    /// written on, or `None` if nothing was written.
    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance],
    ) -> Result<Option<HashMap<Uuid, i64>>, sqlx::Error>;
    /// Appends an audit entry (chained to the last) in the batch's transaction.
    async fn append_audit(
        &mut self,
        appender: &super::audit::AuditAppender,
        entry: &NewAuditEntry,
        at: i64,
    ) -> Result<(), sqlx::Error>;
}

/// A batch's groups and authors, each once and in order, and the groups it asks a care-plan question in.
struct BatchKeys {
    groups: Vec<Uuid>,
    authors: Vec<Uuid>,
    care_plan: Vec<Uuid>,
}

impl BatchKeys {
    fn of(batch: &[PostRequest]) -> Self {
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

impl CommitStatements for sqlx::SqliteConnection {
    async fn append_audit(
        &mut self,
        appender: &super::audit::AuditAppender,
        entry: &NewAuditEntry,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let mut conn = self;
        super::audit::append_audit_in!(conn, appender, entry, at);
        Ok(())
    }

    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error> {
        // The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        let sql = format!(
            "SELECT {}, last_seq, (SELECT MAX(c.version) FROM consents c WHERE c.group_id = groups.id) \
             AS consent_version, CASE WHEN id IN ({}) THEN {} END AS care_managers, NULL AS state_version \
             FROM groups WHERE id IN ({}) ORDER BY id",
            group_columns!(),
            marks(keys.care_plan.len()),
            care_managers_of_group!(),
            marks(keys.groups.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in keys.care_plan.iter().chain(&keys.groups) {
            query = query.bind(*id);
        }
        let groups = query.fetch_all(&mut *self).await?;
        let sql = format!(
            "SELECT {} FROM memberships m WHERE m.group_id IN ({}) AND m.user_id IN ({}) AND m.state = 'active'",
            membership_columns!(),
            marks(keys.groups.len()),
            marks(keys.authors.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in keys.groups.iter().chain(&keys.authors) {
            query = query.bind(*id);
        }
        Ok((groups, query.fetch_all(&mut *self).await?))
    }

    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error> {
        let mut rows = Vec::new();
        for chunk in batch.chunks(POST_ROWS_PER_STATEMENT) {
            let terms = vec!["(author_id = ? AND client_msg_id = ?)"; chunk.len()].join(" OR ");
            let sql = format!("SELECT {} FROM posts WHERE {terms}", post_columns!());
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for req in chunk {
                query = query.bind(req.author.id).bind(&req.post.client_msg_id);
            }
            rows.extend(query.fetch_all(&mut *self).await?);
        }
        Ok(rows)
    }

    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance],
    ) -> Result<Option<HashMap<Uuid, i64>>, sqlx::Error> {
        // The write transaction holds the lock since before the read: the bases are as decided.
        let bases: HashMap<Uuid, i64> = groups.iter().map(|g| (g.id, g.base)).collect();
        for chunk in rows.chunks(POST_ROWS_PER_STATEMENT) {
            let values = vec![format!("({}, 1, NULL, NULL, ?, ?)", marks(13)); chunk.len()].join(", ");
            let sql = format!("INSERT INTO posts ({}) VALUES {values}", post_columns!());
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for NewRow { id, req, offset, consent_version } in chunk {
                let seq = bases.get(&req.group_id).map_or(*offset, |base| base + offset);
                insert = insert
                    .bind(*id)
                    .bind(req.group_id)
                    .bind(seq)
                    .bind(req.author.id)
                    .bind(&req.author.display_name)
                    .bind(req.author.profession.as_str())
                    .bind(&req.author.organisation)
                    .bind(req.post.kind.as_str())
                    .bind(&req.post.body)
                    .bind(req.post.reply_to)
                    .bind(&req.post.client_msg_id)
                    .bind(*consent_version)
                    .bind(now)
                    .bind(req.attachments_json())
                    .bind(req.care_policy_json());
            }
            insert.execute(&mut *self).await?;
        }
        // The files the new posts share become theirs: one statement for the batch's files, if any.
        let linked: Vec<(Uuid, i64)> = rows
            .iter()
            .flat_map(|NewRow { req, offset, .. }| {
                let seq = bases.get(&req.group_id).map_or(*offset, |base| base + offset);
                req.attachments.iter().map(move |a| (a.id, seq))
            })
            .collect();
        for chunk in linked.chunks(POST_ROWS_PER_STATEMENT) {
            let cases = " WHEN ? THEN ?".repeat(chunk.len());
            let sql = format!(
                "UPDATE attachments SET post_seq = CASE id{cases} END WHERE id IN ({}) AND post_seq IS NULL",
                marks(chunk.len())
            );
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, seq) in chunk {
                update = update.bind(*id).bind(*seq);
            }
            for (id, _) in chunk {
                update = update.bind(*id);
            }
            update.execute(&mut *self).await?;
        }
        let cases = " WHEN ? THEN ?".repeat(groups.len());
        let sql = format!(
            "UPDATE groups SET last_seq = CASE id{cases} ELSE last_seq END WHERE id IN ({})",
            marks(groups.len())
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
        for group in groups {
            update = update.bind(group.id).bind(group.base + group.count);
        }
        for group in groups {
            update = update.bind(group.id);
        }
        update.execute(&mut *self).await?;
        Ok(Some(bases))
    }
}

/// A batch's groups read on PostgreSQL, in id order: each with its consent version, its care managers
/// (`$3`: the groups with a care-plan question), its `state_version`, and the active memberships in it of
/// the batch's authors (`$2`; all of them where `$2` is NULL) as JSON (one round trip for both).
macro_rules! pg_read_groups {
    () => {
        concat!(
            "SELECT ",
            group_columns!(),
            ", last_seq, (SELECT MAX(c.version) FROM consents c WHERE c.group_id = groups.id) AS consent_version, \
             CASE WHEN groups.id = ANY($3) THEN ",
            care_managers_of_group!(),
            " END AS care_managers, state_version, (SELECT json_agg(m)::text FROM memberships m \
             WHERE m.group_id = groups.id AND ($2::uuid[] IS NULL OR m.user_id = ANY($2)) AND m.state = 'active') \
             AS members \
             FROM groups WHERE id = ANY($1) ORDER BY id"
        )
    };
}

/// Reads a batch's groups on PostgreSQL ([`pg_read_groups`]), and with `lock`, locks them in id order: two
/// nodes committing batches that share groups would otherwise lock them in different orders and deadlock
/// (renkei-bench's multinode scenario found this).
async fn read_pg_groups(
    conn: &mut sqlx::PgConnection,
    groups: &[Uuid],
    authors: Option<&[Uuid]>,
    care_plan: &[Uuid],
    lock: bool,
) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error> {
    let sql = if lock { concat!(pg_read_groups!(), " FOR UPDATE") } else { pg_read_groups!() };
    let rows: Vec<GroupStateWithMembers> =
        sqlx::query_as(sql).bind(groups).bind(authors).bind(care_plan).fetch_all(&mut *conn).await?;
    let mut groups = Vec::with_capacity(rows.len());
    let mut members = Vec::new();
    for row in rows {
        if let Some(json) = row.members {
            let parsed: Vec<MembershipRow> = serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
            members.extend(parsed);
        }
        groups.push(row.state);
    }
    Ok((groups, members))
}

impl CommitStatements for sqlx::PgConnection {
    async fn append_audit(
        &mut self,
        appender: &super::audit::AuditAppender,
        entry: &NewAuditEntry,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let mut conn = self;
        super::audit::append_audit_in!(conn, appender, entry, at);
        Ok(())
    }

    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error> {
        read_pg_groups(self, &keys.groups, Some(&keys.authors), &keys.care_plan, true).await
    }

    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error> {
        let sql = concat!(
            "SELECT ",
            post_columns!(),
            " FROM posts WHERE (author_id, client_msg_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::text[]))"
        );
        sqlx::query_as(sql)
            .bind(batch.iter().map(|r| r.author.id).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| r.post.client_msg_id.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *self)
            .await
    }

    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance],
    ) -> Result<Option<HashMap<Uuid, i64>>, sqlx::Error> {
        // One statement, one round trip, and a transaction of its own when none is open. It locks the
        // groups in id order and writes only if each one's `state_version` is the one the batch was decided
        // on: every change a post's decision reads bumps it (migration 0008), a new post does not. So the
        // sequence numbers come from the rows as locked (`base`: another node may have posted since the
        // batch was decided), and a changed group makes `ok` false and nothing is written.
        let sql = concat!(
            "WITH locked AS MATERIALIZED (SELECT id, last_seq, state_version FROM groups WHERE id = ANY($13) \
             ORDER BY id FOR UPDATE), \
             g AS MATERIALIZED (SELECT e.id, e.count, l.last_seq AS base, l.state_version = e.state_version AS same \
             FROM UNNEST($13::uuid[], $14::bigint[], $15::bigint[]) AS e(id, count, state_version) \
             JOIN locked l ON l.id = e.id), \
             ok AS (SELECT COUNT(*) FILTER (WHERE same) = cardinality($13::uuid[]) AS ok FROM g), \
             inserted AS (INSERT INTO posts (",
            post_columns!(),
            ") SELECT u.id, u.group_id, g.base + u.off, u.author_id, u.author_name, u.author_profession, \
             u.author_organisation, u.kind, u.body, u.reply_to, u.client_msg_id, u.consent_version, $12::bigint, 1, \
             NULL::bigint, NULL::bigint, u.attachments, u.care_policy FROM UNNEST($1::uuid[], $2::uuid[], \
             $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], \
             $11::text[], $16::int[], $17::text[], $21::text[]) AS u(id, group_id, off, author_id, author_name, \
             author_profession, author_organisation, kind, body, reply_to, client_msg_id, consent_version, \
             attachments, care_policy) JOIN g ON g.id = u.group_id \
             WHERE (SELECT ok FROM ok)), \
             linked AS (UPDATE attachments a SET post_seq = g.base + x.off \
             FROM UNNEST($18::uuid[], $19::uuid[], $20::bigint[]) AS x(att, grp, off) JOIN g ON g.id = x.grp \
             WHERE a.id = x.att AND a.group_id = x.grp AND a.post_seq IS NULL AND (SELECT ok FROM ok)), \
             advanced AS (UPDATE groups SET last_seq = g.base + g.count FROM g \
             WHERE groups.id = g.id AND (SELECT ok FROM ok)) \
             SELECT (SELECT ok FROM ok), COALESCE(array_agg(g.id), '{}'), COALESCE(array_agg(g.base), '{}') FROM g"
        );
        // The files the new posts share: (file, group, the post's offset in its group).
        let linked: Vec<(Uuid, Uuid, i64)> =
            rows.iter().flat_map(|r| r.req.attachments.iter().map(move |a| (a.id, r.req.group_id, r.offset))).collect();
        let (ok, ids, bases): (bool, Vec<Uuid>, Vec<i64>) = sqlx::query_as(sql)
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.group_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.offset).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.display_name.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.profession.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.organisation.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.body.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.reply_to).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.client_msg_id.as_str()).collect::<Vec<_>>())
            .bind(now)
            .bind(groups.iter().map(|g| g.id).collect::<Vec<_>>())
            .bind(groups.iter().map(|g| g.count).collect::<Vec<_>>())
            .bind(groups.iter().map(|g| g.state_version.unwrap_or(-1)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.consent_version).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.attachments_json()).collect::<Vec<_>>())
            .bind(linked.iter().map(|l| l.0).collect::<Vec<_>>())
            .bind(linked.iter().map(|l| l.1).collect::<Vec<_>>())
            .bind(linked.iter().map(|l| l.2).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.care_policy_json()).collect::<Vec<_>>())
            .fetch_one(&mut *self)
            .await?;
        Ok(ok.then(|| ids.into_iter().zip(bases).collect()))
    }
}

/// Posts per multi-row statement (15 parameters each: 1,920, far below SQLite's 32,766 and PostgreSQL's 65,535).
const POST_ROWS_PER_STATEMENT: usize = 128;

impl Store {
    /// Commits a batch of posts in one transaction (one fsync for all of them): the group commit. Each post
    /// is authorised on the state its write commits on (`policy::posts::check_new_post`), so a removal
    /// committed before cannot be raced. A retried client message id returns the original post.
    ///
    /// The committer is the one serial step of posting, so a batch costs a handful of statements whatever
    /// its size ([`CommitStatements`]). On PostgreSQL, one round trip when nothing stands in the way
    /// ([`commit_unlocked`]): the committer keeps the groups it has read, reads those it lacks first, and
    /// one statement locks them (in id order), checks that none changed since (`state_version`), inserts
    /// the new posts and advances every group's sequence. A batch with a refusal or a retried client id, or
    /// whose group changed, then runs the locked transaction ([`commit_in`]): one statement finds retried
    /// client ids, one locks and reads the groups, one writes; with BEGIN and COMMIT, five round trips, the
    /// groups locked for the last three. SQLite runs the locked transaction for every batch (two statements
    /// where PostgreSQL runs one, and a statement per 128 inserted rows). Only placeholders are generated;
    /// every value is bound.
    pub async fn commit_posts(
        &self,
        batch: &[PostRequest],
        now: OffsetDateTime,
    ) -> Result<Vec<PostOutcome>, StoreError> {
        self.committer().commit_posts(batch, now).await
    }

    /// A committer on this store's pool: it takes one connection at its first batch and keeps it.
    pub fn committer(&self) -> Committer {
        Committer { store: self.clone(), connection: None, groups: HashMap::new() }
    }
}

/// The group commit's own connection, held from batch to batch: taken from a pool for each batch, it cost a
/// ping (sqlx tests a connection before handing it out) and a spawned task to give it back, one more round
/// trip and one more wait among the connections' tasks in the one serial step of posting.
///
/// On PostgreSQL it also keeps the groups it has read, with all their active members: a batch whose
/// groups it has is decided without a read and written in one round trip, the write checking that no
/// group's `state_version` moved meanwhile ([`commit_unlocked`]).
#[derive(Debug)]
pub struct Committer {
    store: Store,
    connection: Option<Held>,
    groups: HashMap<Uuid, GroupState>,
}

#[derive(Debug)]
enum Held {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// The most groups PostgreSQL's committer keeps (a few KiB each); past it, it forgets them all and reads
/// again the ones it needs.
const KEPT_GROUPS: usize = 4096;

impl Committer {
    /// Commits a batch of posts in one transaction: see [`Store::commit_posts`]. After a failure the
    /// connection is let go, and the next batch takes a fresh one.
    pub async fn commit_posts(
        &mut self,
        batch: &[PostRequest],
        now: OffsetDateTime,
    ) -> Result<Vec<PostOutcome>, StoreError> {
        let now = to_micros(now);
        let appender = self.store.audit_appender();
        let connection = match &mut self.connection {
            Some(held) => held,
            None => self.connection.insert(match &self.store.db {
                super::Db::Sqlite(pool) => Held::Sqlite(pool.acquire().await?),
                super::Db::Postgres(pool) => Held::Postgres(pool.acquire().await?),
            }),
        };
        let outcome = match connection {
            // The write lock at once, as everywhere on SQLite (see `BeginWrite`).
            Held::Sqlite(conn) => match sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await {
                Ok(tx) => commit_in(tx, batch, now, &appender).await,
                Err(e) => Err(e.into()),
            },
            // A batch with an audited act runs the locked transaction, which appends the entries.
            Held::Postgres(conn) if batch.iter().any(|r| r.audit.is_some()) => {
                match sqlx::Connection::begin(&mut **conn).await {
                    Ok(tx) => commit_in(tx, batch, now, &appender).await,
                    Err(e) => Err(e.into()),
                }
            }
            Held::Postgres(conn) => match commit_unlocked(conn, &mut self.groups, batch, now).await {
                Ok(Some(outcomes)) => Ok(outcomes),
                Ok(None) => match sqlx::Connection::begin(&mut **conn).await {
                    Ok(tx) => commit_in(tx, batch, now, &appender).await,
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            },
        };
        if outcome.is_err() {
            self.connection = None;
            self.groups.clear();
        }
        outcome
    }
}

/// The group commit's locked transaction, on either database: on SQLite every batch, on PostgreSQL a batch
/// its first try ([`commit_unlocked`]) left to it.
async fn commit_in<DB: sqlx::Database>(
    mut tx: sqlx::Transaction<'_, DB>,
    batch: &[PostRequest],
    now: i64,
    appender: &super::audit::AuditAppender,
) -> Result<Vec<PostOutcome>, StoreError>
where
    DB::Connection: CommitStatements,
{
    // Retried client ids: their originals are the answer. Read before the groups are locked: a node's
    // batches commit one after another, so every original this node committed is visible already, and the
    // locks are held a round trip less (two nodes posting to the same groups wait for each other's locks).
    // Keyed by author, then client id, so a lookup borrows the request's id instead of copying it.
    let mut existing: HashMap<Uuid, HashMap<String, Post>> = HashMap::new();
    for row in CommitStatements::originals(&mut *tx, batch).await? {
        let post = Post::try_from(row)?;
        existing.entry(post.author.id).or_default().insert(post.client_msg_id.clone(), post);
    }
    let (rows, members) = CommitStatements::lock_groups(&mut *tx, &BatchKeys::of(batch)).await?;
    let mut groups = HashMap::new();
    read_into(rows, members, &mut groups)?;
    let decision = decide(batch, &existing, &groups);
    // The new posts, and every group's sequence advanced. Not read back (`RETURNING` costs a row per post
    // crossing a thread on SQLite): each post is what was inserted, `created_at` rounded as stored.
    let bases = if decision.new_rows.is_empty() {
        HashMap::new()
    } else {
        CommitStatements::insert_and_advance(&mut *tx, &decision.new_rows, now, &decision.advances)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a group changed under this transaction's lock".into()))?
    };
    let outcomes = decision.into_outcomes(now, &bases)?;
    for (req, outcome) in batch.iter().zip(&outcomes) {
        if let (Some(audit), Ok((post, true))) = (&req.audit, outcome) {
            let mut audit = audit.clone();
            audit.detail("post", post.id);
            audit.detail("seq", post.seq);
            CommitStatements::append_audit(&mut *tx, appender, &audit, now).await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// PostgreSQL's first try at a batch: no transaction of its own, and one round trip when the committer
/// has all the batch's groups, two when it reads the others first (without a lock). The batch is decided
/// on them, and one statement locks the groups, checks that none changed since it was read, and writes
/// ([`CommitStatements::insert_and_advance`]). The locked transaction ([`commit_in`]) takes five. `None`
/// when nothing was written: a group changed, or a request was refused or may be a retry (its client id
/// already used: the unique index refuses the statement); [`commit_in`] decides those, with the retried
/// ids' originals, and the batch's groups are read again next time.
async fn commit_unlocked(
    conn: &mut sqlx::PgConnection,
    kept: &mut HashMap<Uuid, GroupState>,
    batch: &[PostRequest],
    now: i64,
) -> Result<Option<Vec<PostOutcome>>, StoreError> {
    let keys = BatchKeys::of(batch);
    let mut missing: Vec<Uuid> = keys.groups.iter().filter(|id| !kept.contains_key(*id)).copied().collect();
    if kept.len() + missing.len() > KEPT_GROUPS {
        kept.clear();
        missing.clone_from(&keys.groups);
    }
    if !missing.is_empty() {
        // Every active member and the care managers of each: kept for the batches after this one.
        let (rows, members) = read_pg_groups(conn, &missing, None, &missing, false).await?;
        read_into(rows, members, kept)?;
    }
    let forget = |kept: &mut HashMap<Uuid, GroupState>| {
        for id in &keys.groups {
            kept.remove(id);
        }
    };
    let decision = decide(batch, &HashMap::new(), kept);
    if decision.outcomes.iter().any(Option::is_some) {
        forget(kept);
        return Ok(None);
    }
    match CommitStatements::insert_and_advance(conn, &decision.new_rows, now, &decision.advances).await {
        Ok(Some(bases)) => {
            // As written: another node may have posted to these groups since they were read.
            for advance in &decision.advances {
                if let (Some(group), Some(base)) = (kept.get_mut(&advance.id), bases.get(&advance.id)) {
                    group.last_seq = base + advance.count;
                }
            }
            decision.into_outcomes(now, &bases).map(Some)
        }
        Ok(None) => {
            forget(kept);
            Ok(None)
        }
        Err(e) if super::is_unique_violation(&e) => {
            forget(kept);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The groups as read, by id, into `groups` (a group not among them does not exist).
fn read_into(
    rows: Vec<GroupStateRow>,
    membership_rows: Vec<MembershipRow>,
    groups: &mut HashMap<Uuid, GroupState>,
) -> Result<(), StoreError> {
    let mut members: HashMap<Uuid, HashMap<Uuid, Membership>> = HashMap::new();
    for row in membership_rows {
        let m = Membership::try_from(row)?;
        members.entry(m.group_id).or_default().insert(m.user_id, m);
    }
    for row in rows {
        let id = row.group.id;
        let locked = GroupState {
            record: row.group.try_into()?,
            last_seq: row.last_seq,
            consent_version: row.consent_version,
            care_managers: row.care_managers,
            state_version: row.state_version,
            members: members.remove(&id).unwrap_or_default(),
        };
        groups.insert(id, locked);
    }
    Ok(())
}

/// What a batch decided for each request: an outcome now, or a new row whose post the write makes.
struct Decision<'a> {
    /// `None` where a new row fills it.
    outcomes: Vec<Option<PostOutcome>>,
    new_rows: Vec<NewRow<'a>>,
    /// (outcome slot, new row, created): a retry within the batch gets the same row, not created.
    fills: Vec<(usize, usize, bool)>,
    /// The groups with new rows, in the order of their first.
    advances: Vec<Advance>,
}

/// Decides every request of a batch, in order, on the groups as read and the originals of retried client
/// ids, by `policy::posts::check_new_post`. A group's sequence, as decided on, advances with each new row.
fn decide<'a>(
    batch: &'a [PostRequest],
    existing: &HashMap<Uuid, HashMap<String, Post>>,
    groups: &HashMap<Uuid, GroupState>,
) -> Decision<'a> {
    let mut decision = Decision {
        outcomes: Vec::with_capacity(batch.len()),
        new_rows: Vec::new(),
        fills: Vec::new(),
        advances: Vec::new(),
    };
    let mut new_index: HashMap<(Uuid, &str), usize> = HashMap::new();
    let mut advance_of: HashMap<Uuid, usize> = HashMap::new();
    for req in batch {
        let slot = decision.outcomes.len();
        if let Some(post) = existing.get(&req.author.id).and_then(|p| p.get(req.post.client_msg_id.as_str())) {
            decision.outcomes.push(Some(Ok((post.clone(), false))));
            continue;
        }
        if let Some(&row) = new_index.get(&(req.author.id, req.post.client_msg_id.as_str())) {
            decision.fills.push((slot, row, false));
            decision.outcomes.push(None);
            continue;
        }
        let Some(group) = groups.get(&req.group_id) else {
            decision.outcomes.push(Some(Err(PostRefused::Denied(GroupDenied::NotFound))));
            continue;
        };
        let index = *advance_of.entry(req.group_id).or_insert_with(|| {
            decision.advances.push(Advance {
                id: req.group_id,
                base: group.last_seq,
                count: 0,
                state_version: group.state_version,
            });
            decision.advances.len() - 1
        });
        let advance = &mut decision.advances[index];
        let to = PostingTo {
            group: &group.record,
            membership: group.members.get(&req.author.id),
            last_seq: advance.base + advance.count,
            // Counted for every group with a care-plan question in the batch (`BatchKeys::care_plan`), and
            // for every group the committer keeps.
            care_managers: group.care_managers,
        };
        if let Err(refused) = check_new_post(to, req.post.kind, req.post.reply_to) {
            decision.outcomes.push(Some(Err(refused)));
            continue;
        }
        advance.count += 1;
        new_index.insert((req.author.id, req.post.client_msg_id.as_str()), decision.new_rows.len());
        decision.fills.push((slot, decision.new_rows.len(), true));
        decision.outcomes.push(None);
        decision.new_rows.push(NewRow {
            id: Uuid::now_v7(),
            req,
            offset: advance.count,
            consent_version: group.consent_version,
        });
    }
    decision.advances.retain(|a| a.count > 0);
    decision
}

impl Decision<'_> {
    /// Every request's outcome, once the new rows are written on these bases (each group's last sequence
    /// number before them).
    fn into_outcomes(self, now: i64, bases: &HashMap<Uuid, i64>) -> Result<Vec<PostOutcome>, StoreError> {
        let Decision { mut outcomes, new_rows, fills, .. } = self;
        for (slot, row, created) in fills {
            let NewRow { id, req, offset, consent_version } = new_rows[row];
            let base = bases.get(&req.group_id).ok_or_else(|| StoreError::Corrupt("post without its group".into()))?;
            let post = Post {
                id,
                group_id: req.group_id,
                seq: base + offset,
                author: req.author.clone(),
                kind: req.post.kind,
                body: Some(req.post.body.clone()),
                reply_to: req.post.reply_to,
                client_msg_id: req.post.client_msg_id.clone(),
                consent_version,
                created_at: from_micros(now),
                version: 1,
                edited_at: None,
                deleted_at: None,
                attachments: req.attachments.clone(),
                care_policy: req.post.care_policy.clone(),
            };
            outcomes[slot] = Some(Ok((post, created)));
        }
        outcomes.into_iter().map(|o| o.ok_or_else(|| StoreError::Corrupt("post without outcome".into()))).collect()
    }
}

impl Store {
    /// Posts of a group in sequence order: after `after` (exclusive) going forward, or before `before`
    /// (exclusive) going backward; at most `limit`.
    pub async fn posts_page(
        &self,
        group: Uuid,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Post>, StoreError> {
        let rows: Vec<PostRow> = match before {
            Some(before) => {
                let sql = concat!(
                    "SELECT * FROM (SELECT ",
                    post_columns!(),
                    " FROM posts WHERE group_id = $1 AND seq < $2 AND seq > $3 ORDER BY seq DESC LIMIT $4) p ORDER BY seq"
                );
                with_pool!(self, |pool| sqlx::query_as(sql)
                    .bind(group)
                    .bind(before)
                    .bind(after.unwrap_or(0))
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
            // A catch-up reads pages of these. On SQLite the page comes as one JSON value built inside
            // SQLite: sqlx hands each row across from its worker thread, copying every value. Reading 10,000
            // posts in pages of 500 took 140–165 ms that way (82–120 without SQLite's memory statistics), 62
            // ms as JSON pages; the query alone takes 14 ms in `sqlite3`.
            None => match &self.db {
                super::Db::Sqlite(pool) => {
                    let sql = concat!(
                        "SELECT json_group_array(",
                        post_columns_json_array!(),
                        " ORDER BY seq) FROM (SELECT ",
                        post_columns!(),
                        " FROM posts WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)"
                    );
                    let page: String = sqlx::query_scalar(sql)
                        .bind(group)
                        .bind(after.unwrap_or(0))
                        .bind(limit)
                        .fetch_one(pool)
                        .await?;
                    serde_json::from_str(&page).map_err(|e| StoreError::Corrupt(format!("posts page: {e}")))?
                }
                super::Db::Postgres(pool) => {
                    let sql = concat!(
                        "SELECT ",
                        post_columns!(),
                        " FROM posts WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                    );
                    sqlx::query_as(sql).bind(group).bind(after.unwrap_or(0)).bind(limit).fetch_all(pool).await?
                }
            },
        };
        rows.into_iter().map(Post::try_from).collect()
    }

    /// The posts of several groups' ranges (`(group, from, to)`, inclusive), ordered by group and
    /// sequence: how a node replays another node's committed batch. On PostgreSQL (where nodes replay)
    /// the ranges go as two arrays of keys, one `(group, seq)` pair per wanted post, so the statement text
    /// never changes and the planner sees look-ups on the unique key whatever its statistics say: a young
    /// `posts` table has none until autovacuum first analyzes it, and a join on ranges was then planned as
    /// a scan of the whole table (4.8–10.8 ms a call on average in runs growing it to 125,000 posts, where
    /// the look-ups take ~0.1 ms).
    /// Call it on a [`Store::dedicated_planning_each_call`] store, whose connections never fall back to a
    /// generic plan settled while the table was small.
    pub async fn posts_in_ranges(&self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<Post>, StoreError> {
        let rows: Vec<PostRow> = match &self.db {
            super::Db::Postgres(pool) => {
                let (groups, seqs): (Vec<Uuid>, Vec<i64>) =
                    ranges.iter().flat_map(|&(group, from, to)| (from..=to).map(move |seq| (group, seq))).unzip();
                let sql = concat!(
                    "SELECT ",
                    post_columns!(),
                    " FROM UNNEST($1::uuid[], $2::bigint[]) AS k(g, s) \
                     JOIN posts ON group_id = k.g AND seq = k.s ORDER BY group_id, seq"
                );
                sqlx::query_as(sql).bind(groups).bind(seqs).fetch_all(pool).await?
            }
            // A single node never replays; a range at a time is enough here.
            super::Db::Sqlite(_) => {
                let mut posts = Vec::new();
                for &(group, from, to) in ranges {
                    posts.extend(self.posts_page(group, Some(from - 1), None, to - from + 1).await?);
                }
                return Ok(posts);
            }
        };
        rows.into_iter().map(Post::try_from).collect()
    }

    pub async fn last_seq(&self, group: Uuid) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            with_pool!(self, |pool| sqlx::query_scalar("SELECT last_seq FROM groups WHERE id = $1")
                .bind(group)
                .fetch_optional(pool)
                .await)?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn post(&self, group: Uuid, seq: i64) -> Result<Option<Post>, StoreError> {
        let sql = concat!("SELECT ", post_columns!(), " FROM posts WHERE group_id = $1 AND seq = $2");
        let row: Option<PostRow> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(group).bind(seq).fetch_optional(pool).await)?;
        row.map(Post::try_from).transpose()
    }

    /// Revises a post (`Some`) or deletes it (`None`, leaving a tombstone), keeping the old version. Only a
    /// live (not deleted) post changes; returns its new state.
    pub async fn revise_post(
        &self,
        group: Uuid,
        seq: i64,
        revision: Option<Revision<'_>>,
        audit: Option<NewAuditEntry>,
        now: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        let body = revision.map(|r| r.body);
        let attachments = revision.and_then(|r| r.attachments);
        // The files from now on, as stored with the post (NULL for none); `keep` leaves them as they are.
        let keep = attachments.is_none();
        let files = attachments.filter(|a| !a.is_empty()).map(|a| serde_json::to_string(a).unwrap_or_default());
        // Likewise the care policy's record.
        let policy = revision.and_then(|r| r.care_policy).map(care_policy_json);
        let sql = if body.is_some() {
            concat!(
                "UPDATE posts SET body = $3, version = version + 1, edited_at = $4, ",
                "attachments = CASE WHEN $5 THEN attachments ELSE $6 END, ",
                "care_policy = COALESCE($7, care_policy) WHERE group_id = $1 AND seq = $2 ",
                "AND deleted_at IS NULL RETURNING ",
                post_columns!()
            )
        } else {
            concat!(
                "UPDATE posts SET body = $3, version = version + 1, deleted_at = $4, ",
                "attachments = CASE WHEN $5 THEN attachments ELSE $6 END, ",
                "care_policy = COALESCE($7, care_policy) WHERE group_id = $1 AND seq = $2 ",
                "AND deleted_at IS NULL RETURNING ",
                post_columns!()
            )
        };
        let row: Option<PostRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // A post's first version is written here, at its first change, not by the group commit: most
            // posts are never edited, and a second row per post was a third of the commit's cost. A
            // concurrent first edit wrote it already when the insert conflicts.
            sqlx::query(
                "INSERT INTO post_versions (post_id, version, body, at, attachments, care_policy) \
                 SELECT id, 1, body, created_at, attachments, care_policy FROM posts \
                 WHERE group_id = $1 AND seq = $2 AND version = 1 AND deleted_at IS NULL ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            let row: Option<PostRow> = sqlx::query_as(sql)
                .bind(group)
                .bind(seq)
                .bind(body)
                .bind(now)
                .bind(keep)
                .bind(files.as_deref())
                .bind(policy.as_deref())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = &row {
                sqlx::query(
                    "INSERT INTO post_versions (post_id, version, body, at, attachments, care_policy) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(row.id)
                .bind(row.version)
                .bind(body)
                .bind(now)
                .bind(row.attachments.as_deref())
                .bind(row.care_policy.as_deref())
                .execute(&mut *tx)
                .await?;
                // Files added by this edit become the post's.
                for a in attachments.unwrap_or_default() {
                    sqlx::query(
                        "UPDATE attachments SET post_seq = $1 WHERE id = $2 AND group_id = $3 AND post_seq IS NULL",
                    )
                    .bind(seq)
                    .bind(a.id)
                    .bind(group)
                    .execute(&mut *tx)
                    .await?;
                }
                // An edit that overrode the emergency rule is recorded with it.
                if let Some(mut audit) = audit.clone() {
                    audit.detail("post", row.id);
                    audit.detail("seq", seq);
                    super::audit::append_audit_in!(tx, appender, &audit, now);
                }
            }
            tx.commit().await?;
            row
        });
        row.map(Post::try_from).transpose()
    }

    /// Every version of a post, oldest first. A post never changed has no rows of its own
    /// (see [`Store::revise_post`]): its one version is the post as it stands.
    pub async fn post_versions(&self, post: &Post) -> Result<Vec<PostVersion>, StoreError> {
        if post.version == 1 {
            return Ok(vec![PostVersion {
                version: 1,
                body: post.body.clone(),
                at: post.created_at,
                attachments: post.attachments.clone(),
                care_policy: post.care_policy.clone(),
            }]);
        }
        type VersionRow = (i32, Option<String>, i64, Option<String>, Option<String>);
        let rows: Vec<VersionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT version, body, at, attachments, care_policy FROM post_versions WHERE post_id = $1 ORDER BY version"
        )
        .bind(post.id)
        .fetch_all(pool)
        .await
        })?;
        rows.into_iter()
            .map(|(version, body, at, files, policy)| {
                let corrupt = |what: &str| StoreError::Corrupt(format!("post {}: version {version}: {what}", post.id));
                let attachments = match files {
                    Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("attachments"))?,
                    None => Vec::new(),
                };
                let care_policy =
                    policy.map(|json| serde_json::from_str(&json)).transpose().map_err(|_| corrupt("care_policy"))?;
                Ok(PostVersion { version, body, at: from_micros(at), attachments, care_policy })
            })
            .collect()
    }

    /// 「見ました」 by `user` on a post; marking twice keeps the first time. Returns the mark, or `None`
    /// when the post does not exist.
    pub async fn mark_seen(
        &self,
        group: Uuid,
        seq: i64,
        user: &Person,
        now: OffsetDateTime,
    ) -> Result<Option<SeenMark>, StoreError> {
        let Some(post) = self.post(group, seq).await? else { return Ok(None) };
        let at: i64 = with_pool!(self, |pool| {
            sqlx::query("INSERT INTO post_seen (post_id, user_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(post.id)
                .bind(user.id)
                .bind(to_micros(now))
                .execute(pool)
                .await?;
            sqlx::query_scalar("SELECT at FROM post_seen WHERE post_id = $1 AND user_id = $2")
                .bind(post.id)
                .bind(user.id)
                .fetch_one(pool)
                .await
        })?;
        Ok(Some(SeenMark { group_id: group, seq, by: user.clone(), at: from_micros(at) }))
    }

    /// Who has marked a post as seen, first first.
    pub async fn seen_marks(&self, group: Uuid, seq: i64) -> Result<Vec<SeenMark>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            at: i64,
            id: Uuid,
            display_name: String,
            profession: String,
            organisation: String,
        }
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT s.at, u.id, u.display_name, u.profession, u.organisation FROM post_seen s \
             JOIN posts p ON p.id = s.post_id JOIN users u ON u.id = s.user_id \
             WHERE p.group_id = $1 AND p.seq = $2 ORDER BY s.at, u.id"
        )
        .bind(group)
        .bind(seq)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|r| {
                let profession = Profession::parse(&r.profession)
                    .ok_or_else(|| StoreError::Corrupt(format!("profession {:?}", r.profession)))?;
                Ok(SeenMark {
                    group_id: group,
                    seq,
                    by: Person { id: r.id, display_name: r.display_name, profession, organisation: r.organisation },
                    at: from_micros(r.at),
                })
            })
            .collect()
    }

    /// A group's posts written in `[from, until)`, in sequence order (the monthly care record).
    pub async fn posts_written_between(
        &self,
        group: Uuid,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<Post>, StoreError> {
        let sql = concat!(
            "SELECT ",
            post_columns!(),
            " FROM posts WHERE group_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY seq"
        );
        let rows: Vec<PostRow> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(group)
            .bind(to_micros(from))
            .bind(to_micros(until))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Post::try_from).collect()
    }

    /// What `user` has seen of a group: the sequence numbers they marked 「見ました」 with when, and their
    /// read position (0 for none).
    pub async fn seen_by(&self, group: Uuid, user: Uuid) -> Result<(HashMap<i64, OffsetDateTime>, i64), StoreError> {
        let (marks, read): (Vec<(i64, i64)>, Option<i64>) = with_pool!(self, |pool| {
            let marks = sqlx::query_as(
                "SELECT p.seq, s.at FROM post_seen s JOIN posts p ON p.id = s.post_id \
                 WHERE p.group_id = $1 AND s.user_id = $2",
            )
            .bind(group)
            .bind(user)
            .fetch_all(pool)
            .await?;
            let read = sqlx::query_scalar("SELECT last_read_seq FROM read_marks WHERE group_id = $1 AND user_id = $2")
                .bind(group)
                .bind(user)
                .fetch_optional(pool)
                .await?;
            (marks, read)
        });
        Ok((marks.into_iter().map(|(seq, at)| (seq, from_micros(at))).collect(), read.unwrap_or(0)))
    }

    /// Moves a member's read position forward to `seq` (never backward); returns the position now kept.
    pub async fn mark_read(&self, group: Uuid, user: Uuid, seq: i64, now: OffsetDateTime) -> Result<i64, StoreError> {
        let kept: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO read_marks (group_id, user_id, last_read_seq, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, user_id) DO UPDATE SET \
             last_read_seq = CASE WHEN excluded.last_read_seq > read_marks.last_read_seq \
             THEN excluded.last_read_seq ELSE read_marks.last_read_seq END, updated_at = excluded.updated_at \
             RETURNING last_read_seq"
        )
        .bind(group)
        .bind(user)
        .bind(seq)
        .bind(to_micros(now))
        .fetch_one(pool)
        .await)?;
        Ok(kept)
    }

    /// Questions addressed to `user` (rule 3) that they have neither answered nor marked seen: treatment
    /// questions in groups where they are the attending physician, care-plan questions where they are a
    /// care manager.
    pub async fn addressed_to(&self, user: Uuid, is_care_manager: bool) -> Result<Vec<Post>, StoreError> {
        let sql = concat!(
            "SELECT ",
            post_columns!(),
            " FROM posts p WHERE p.deleted_at IS NULL AND p.author_id <> $1 \
             AND EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = p.group_id AND m.user_id = $1 AND m.state = 'active') \
             AND ((p.kind = 'treatment_question' AND EXISTS (SELECT 1 FROM groups g WHERE g.id = p.group_id AND g.attending_physician_id = $1)) \
               OR (p.kind = 'care_plan_question' AND $2)) \
             AND NOT EXISTS (SELECT 1 FROM posts r WHERE r.group_id = p.group_id AND r.reply_to = p.seq AND r.author_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM post_seen s WHERE s.post_id = p.id AND s.user_id = $1) \
             ORDER BY p.created_at, p.id"
        );
        let rows: Vec<PostRow> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(user).bind(is_care_manager).fetch_all(pool).await)?;
        rows.into_iter().map(Post::try_from).collect()
    }

    /// Unread counts for every group the user is an active member of.
    pub async fn unread(&self, user: Uuid) -> Result<Vec<Unread>, StoreError> {
        // One's own posts are never unread: only others' posts after the read mark count.
        let rows: Vec<(Uuid, String, i64, Option<i64>, i64)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT g.id, g.label, g.last_seq, r.last_read_seq, \
             (SELECT COUNT(*) FROM posts p WHERE p.group_id = g.id AND p.seq > COALESCE(r.last_read_seq, 0) \
              AND p.author_id <> $1) AS unread \
             FROM groups g \
             JOIN memberships m ON m.group_id = g.id AND m.user_id = $1 AND m.state = 'active' \
             LEFT JOIN read_marks r ON r.group_id = g.id AND r.user_id = $1 ORDER BY g.label, g.id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(group_id, label, last_seq, read, unread)| {
                let last_read_seq = read.unwrap_or(0).min(last_seq);
                Unread { group_id, label, last_seq, last_read_seq, unread }
            })
            .collect())
    }
}
