//! Posts: the group commit of new posts, history pages, edits and deletions with every version kept,
//! seen marks and read positions.
//!
//! Sequence numbers come from `groups.last_seq`, advanced inside the very transaction that inserts the
//! posts, so they are gap-free per group on any number of nodes: a rolled-back transaction rolls back its
//! numbers too, and the group row's lock orders concurrent writers.

use crate::store::BeginWrite;
use std::collections::HashMap;

use renkei_protocol::{Author, NewPost, Person, Post, PostKind, PostVersion, Profession, SeenMark, Unread};
use time::OffsetDateTime;
use uuid::Uuid;

use super::group_rows::{GroupRow, MembershipRow, group_columns, membership_columns};
use super::{Store, StoreError, with_pool};
use crate::domain::{GroupRecord, Membership, from_micros, to_micros};
use crate::policy::groups::{self as rules, GroupAction, GroupDenied};

/// A post waiting for the next group commit.
#[derive(Debug, Clone)]
pub struct PostRequest {
    pub group_id: Uuid,
    pub author: Author,
    pub post: NewPost,
}

/// Why one post of a batch was refused; the others in the batch are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRefused {
    Denied(GroupDenied),
    /// `reply_to` names no earlier post of the group.
    UnknownReplyTo,
    /// Rule 3: a care-plan question in a group without a care manager.
    NoCareManager,
    /// Questions are addressed within a patient's care team, not in community groups.
    QuestionOutsidePatientGroup,
}

/// The outcome for one request of a batch: the post, and whether this batch created it (false when the
/// client message id had been used before, so the original is returned).
pub type PostOutcome = Result<(Post, bool), PostRefused>;

macro_rules! post_columns {
    () => {
        "id, group_id, seq, author_id, author_name, author_profession, author_organisation, kind, body, reply_to, \
         client_msg_id, consent_version, created_at, version, edited_at, deleted_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
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
}

impl TryFrom<PostRow> for Post {
    type Error = StoreError;

    fn try_from(r: PostRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("post {}: unknown {what}", r.id));
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
        })
    }
}

/// What a batch is decided on about one of its groups: the group, its sequence, its consent version, the
/// active memberships of the batch's authors in it, its care managers (counted only where the batch asks a
/// care-plan question), and on PostgreSQL the version of its row (`xmin`), each read once per batch.
struct Locked {
    record: GroupRecord,
    last_seq: i64,
    consent_version: Option<i32>,
    care_managers: Option<i64>,
    row_version: Option<String>,
    members: HashMap<Uuid, Membership>,
}

/// A group row read (and locked, but for PostgreSQL's first try) in one statement.
#[derive(sqlx::FromRow)]
struct LockedGroupRow {
    #[sqlx(flatten)]
    group: GroupRow,
    last_seq: i64,
    consent_version: Option<i32>,
    care_managers: Option<i64>,
    row_version: Option<String>,
}

/// A group row with the batch's authors' active memberships in it, as a JSON array (PostgreSQL).
#[derive(sqlx::FromRow)]
struct LockedWithMembers {
    #[sqlx(flatten)]
    locked: LockedGroupRow,
    members: Option<String>,
}

/// A new post of a batch.
#[derive(Clone, Copy)]
struct NewRow<'a> {
    id: Uuid,
    req: &'a PostRequest,
    seq: i64,
    consent_version: Option<i32>,
}

/// A group's last sequence number after the batch, and the version of its row the batch was decided on
/// (PostgreSQL; `None` on SQLite, whose write lock is taken before the read).
struct Advance<'a> {
    id: Uuid,
    last_seq: i64,
    row_version: Option<&'a str>,
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
    async fn lock_groups(&mut self, keys: &BatchKeys)
    -> Result<(Vec<LockedGroupRow>, Vec<MembershipRow>), sqlx::Error>;
    /// The posts that already have one of the batch's (author, client message id) pairs.
    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error>;
    /// Inserts the new posts (their first versions are written at their first edit, by `revise_post`) and
    /// sets each group's last sequence number, only if every group's row is still at the version the batch
    /// was decided on (PostgreSQL): whether it wrote.
    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance<'_>],
    ) -> Result<bool, sqlx::Error>;
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
    async fn lock_groups(
        &mut self,
        keys: &BatchKeys,
    ) -> Result<(Vec<LockedGroupRow>, Vec<MembershipRow>), sqlx::Error> {
        // The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        let sql = format!(
            "SELECT {}, last_seq, (SELECT MAX(c.version) FROM consents c WHERE c.group_id = groups.id) \
             AS consent_version, CASE WHEN id IN ({}) THEN {} END AS care_managers, NULL AS row_version \
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
        groups: &[Advance<'_>],
    ) -> Result<bool, sqlx::Error> {
        for chunk in rows.chunks(POST_ROWS_PER_STATEMENT) {
            let values = vec![format!("({}, 1, NULL, NULL)", marks(13)); chunk.len()].join(", ");
            let sql = format!("INSERT INTO posts ({}) VALUES {values}", post_columns!());
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for NewRow { id, req, seq, consent_version } in chunk {
                insert = insert
                    .bind(*id)
                    .bind(req.group_id)
                    .bind(*seq)
                    .bind(req.author.id)
                    .bind(&req.author.display_name)
                    .bind(req.author.profession.as_str())
                    .bind(&req.author.organisation)
                    .bind(req.post.kind.as_str())
                    .bind(&req.post.body)
                    .bind(req.post.reply_to)
                    .bind(&req.post.client_msg_id)
                    .bind(*consent_version)
                    .bind(now);
            }
            insert.execute(&mut *self).await?;
        }
        let cases = " WHEN ? THEN ?".repeat(groups.len());
        let sql = format!(
            "UPDATE groups SET last_seq = CASE id{cases} ELSE last_seq END WHERE id IN ({})",
            marks(groups.len())
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
        for group in groups {
            update = update.bind(group.id).bind(group.last_seq);
        }
        for group in groups {
            update = update.bind(group.id);
        }
        update.execute(&mut *self).await?;
        Ok(true)
    }
}

/// A batch's groups read on PostgreSQL, in id order: each with its consent version, its care managers
/// (`$3`: the groups with a care-plan question), its row's version, and the active memberships of the
/// batch's authors (`$2`) in it as JSON (one round trip for both).
macro_rules! pg_read_groups {
    () => {
        concat!(
            "SELECT ",
            group_columns!(),
            ", last_seq, (SELECT MAX(c.version) FROM consents c WHERE c.group_id = groups.id) AS consent_version, \
             CASE WHEN groups.id = ANY($3) THEN ",
            care_managers_of_group!(),
            " END AS care_managers, xmin::text AS row_version, (SELECT json_agg(m)::text FROM memberships m \
             WHERE m.group_id = groups.id AND m.user_id = ANY($2) AND m.state = 'active') AS members \
             FROM groups WHERE id = ANY($1) ORDER BY id"
        )
    };
}

/// Reads a batch's groups on PostgreSQL ([`pg_read_groups`]), and with `lock`, locks them in id order: two
/// nodes committing batches that share groups would otherwise lock them in different orders and deadlock
/// (renkei-bench's multinode scenario found this).
async fn read_pg_groups(
    conn: &mut sqlx::PgConnection,
    keys: &BatchKeys,
    lock: bool,
) -> Result<(Vec<LockedGroupRow>, Vec<MembershipRow>), sqlx::Error> {
    let sql = if lock { concat!(pg_read_groups!(), " FOR UPDATE") } else { pg_read_groups!() };
    let rows: Vec<LockedWithMembers> =
        sqlx::query_as(sql).bind(&keys.groups).bind(&keys.authors).bind(&keys.care_plan).fetch_all(&mut *conn).await?;
    let mut groups = Vec::with_capacity(rows.len());
    let mut members = Vec::new();
    for row in rows {
        if let Some(json) = row.members {
            let parsed: Vec<MembershipRow> = serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
            members.extend(parsed);
        }
        groups.push(row.locked);
    }
    Ok((groups, members))
}

impl CommitStatements for sqlx::PgConnection {
    async fn lock_groups(
        &mut self,
        keys: &BatchKeys,
    ) -> Result<(Vec<LockedGroupRow>, Vec<MembershipRow>), sqlx::Error> {
        read_pg_groups(self, keys, true).await
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
        groups: &[Advance<'_>],
    ) -> Result<bool, sqlx::Error> {
        // One statement, one round trip, and a transaction of its own when none is open: it locks the groups
        // in id order and writes only if each row is still the version the batch was decided on. Every
        // change a post's authorisation reads (a membership, a consent, the group's status) updates its
        // group's row in the same transaction, and so does every commit (`last_seq`), so an unchanged
        // version means an unchanged decision; a changed row makes `ok` false and nothing is written.
        let sql = concat!(
            "WITH locked AS MATERIALIZED (SELECT id, xmin::text AS row_version FROM groups WHERE id = ANY($14) \
             ORDER BY id FOR UPDATE), \
             ok AS (SELECT COUNT(*) = cardinality($14::uuid[]) AS ok FROM locked \
             JOIN UNNEST($14::uuid[], $16::text[]) AS e(id, row_version) \
             ON locked.id = e.id AND locked.row_version = e.row_version), \
             inserted AS (INSERT INTO posts (",
            post_columns!(),
            ") SELECT u.*, $13::bigint, 1, NULL::bigint, NULL::bigint FROM UNNEST($1::uuid[], $2::uuid[], \
             $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], \
             $11::text[], $12::int[]) AS u WHERE (SELECT ok FROM ok)), \
             advanced AS (UPDATE groups SET last_seq = a.seq FROM UNNEST($14::uuid[], $15::bigint[]) AS a(id, seq) \
             WHERE groups.id = a.id AND (SELECT ok FROM ok)) \
             SELECT ok FROM ok"
        );
        sqlx::query_scalar(sql)
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.group_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.display_name.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.profession.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.author.organisation.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.body.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.reply_to).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.req.post.client_msg_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.consent_version).collect::<Vec<_>>())
            .bind(now)
            .bind(groups.iter().map(|g| g.id).collect::<Vec<_>>())
            .bind(groups.iter().map(|g| g.last_seq).collect::<Vec<_>>())
            .bind(groups.iter().map(|g| g.row_version.unwrap_or_default()).collect::<Vec<_>>())
            .fetch_one(&mut *self)
            .await
    }
}

/// Posts per multi-row statement (13 parameters each: 1,664, far below SQLite's 32,766 and PostgreSQL's 65,535).
const POST_ROWS_PER_STATEMENT: usize = 128;

impl Store {
    /// Commits a batch of posts in one transaction (one fsync for all of them): the group commit. Each post
    /// is authorised on the state its write commits on (`policy::groups::authorize(.., Post)`), so a removal
    /// committed before cannot be raced. A retried client message id returns the original post.
    ///
    /// The committer is the one serial step of posting, so a batch costs a handful of statements whatever
    /// its size ([`CommitStatements`]). On PostgreSQL, two round trips when nothing stands in the way
    /// ([`commit_unlocked`]): one reads all its groups with their consent versions and the authors'
    /// memberships, one locks them (in id order), checks that none changed since and inserts the new posts
    /// and advances every group's sequence. A batch with a refusal or a retried client id, or whose group
    /// changed in between, then runs the locked transaction ([`commit_in`]): one statement finds retried
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
        Committer { store: self.clone(), connection: None }
    }
}

/// The group commit's own connection, held from batch to batch: taken from a pool for each batch, it cost a
/// ping (sqlx tests a connection before handing it out) and a spawned task to give it back, one more round
/// trip and one more wait among the connections' tasks in the one serial step of posting.
#[derive(Debug)]
pub struct Committer {
    store: Store,
    connection: Option<Held>,
}

#[derive(Debug)]
enum Held {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Committer {
    /// Commits a batch of posts in one transaction: see [`Store::commit_posts`]. After a failure the
    /// connection is let go, and the next batch takes a fresh one.
    pub async fn commit_posts(
        &mut self,
        batch: &[PostRequest],
        now: OffsetDateTime,
    ) -> Result<Vec<PostOutcome>, StoreError> {
        let now = to_micros(now);
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
                Ok(tx) => commit_in(tx, batch, now).await,
                Err(e) => Err(e.into()),
            },
            Held::Postgres(conn) => match commit_unlocked(conn, batch, now).await {
                Ok(Some(outcomes)) => Ok(outcomes),
                Ok(None) => match sqlx::Connection::begin(&mut **conn).await {
                    Ok(tx) => commit_in(tx, batch, now).await,
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            },
        };
        if outcome.is_err() {
            self.connection = None;
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
    let mut groups = decided_on(rows, members)?;
    let decision = decide(batch, &existing, &mut groups);
    // The new posts, and every group's sequence advanced. Not read back (`RETURNING` costs a row per post
    // crossing a thread on SQLite): each post is what was inserted, `created_at` rounded as stored.
    if !decision.new_rows.is_empty()
        && !CommitStatements::insert_and_advance(&mut *tx, &decision.new_rows, now, &advances(&groups)).await?
    {
        return Err(StoreError::Corrupt("a group changed under this transaction's lock".into()));
    }
    tx.commit().await?;
    decision.into_outcomes(now)
}

/// PostgreSQL's first try at a batch: two round trips and no transaction of its own. The groups are read
/// without a lock, the batch decided on what was read, and one statement locks them and writes only if no
/// group's row changed in between ([`CommitStatements::insert_and_advance`]). The locked transaction
/// ([`commit_in`]) takes five. `None` when nothing was written: a group changed, or a request was refused
/// or may be a retry (its client id already used: the unique index refuses the statement), and
/// [`commit_in`] decides those, with the retried ids' originals.
async fn commit_unlocked(
    conn: &mut sqlx::PgConnection,
    batch: &[PostRequest],
    now: i64,
) -> Result<Option<Vec<PostOutcome>>, StoreError> {
    let (rows, members) = read_pg_groups(conn, &BatchKeys::of(batch), false).await?;
    let mut groups = decided_on(rows, members)?;
    let decision = decide(batch, &HashMap::new(), &mut groups);
    if decision.outcomes.iter().any(Option::is_some) {
        return Ok(None);
    }
    match CommitStatements::insert_and_advance(conn, &decision.new_rows, now, &advances(&groups)).await {
        Ok(true) => decision.into_outcomes(now).map(Some),
        Ok(false) => Ok(None),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The batch's groups as read, by id (a group not among them does not exist).
fn decided_on(
    rows: Vec<LockedGroupRow>,
    membership_rows: Vec<MembershipRow>,
) -> Result<HashMap<Uuid, Locked>, StoreError> {
    let mut members: HashMap<Uuid, HashMap<Uuid, Membership>> = HashMap::new();
    for row in membership_rows {
        let m = Membership::try_from(row)?;
        members.entry(m.group_id).or_default().insert(m.user_id, m);
    }
    let mut groups = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.group.id;
        let locked = Locked {
            record: row.group.try_into()?,
            last_seq: row.last_seq,
            consent_version: row.consent_version,
            care_managers: row.care_managers,
            row_version: row.row_version,
            members: members.remove(&id).unwrap_or_default(),
        };
        groups.insert(id, locked);
    }
    Ok(groups)
}

/// Every group's sequence after the batch, with the version of its row the batch was decided on.
fn advances(groups: &HashMap<Uuid, Locked>) -> Vec<Advance<'_>> {
    groups
        .iter()
        .map(|(id, g)| Advance { id: *id, last_seq: g.last_seq, row_version: g.row_version.as_deref() })
        .collect()
}

/// What a batch decided for each request: an outcome now, or a new row whose post the write makes.
struct Decision<'a> {
    /// `None` where a new row fills it.
    outcomes: Vec<Option<PostOutcome>>,
    new_rows: Vec<NewRow<'a>>,
    /// (outcome slot, new row, created): a retry within the batch gets the same row, not created.
    fills: Vec<(usize, usize, bool)>,
}

/// Decides every request of a batch, in order, on the groups as read (their sequences advanced for the new
/// rows) and the originals of retried client ids: the rules of posting that need the database's state.
fn decide<'a>(
    batch: &'a [PostRequest],
    existing: &HashMap<Uuid, HashMap<String, Post>>,
    groups: &mut HashMap<Uuid, Locked>,
) -> Decision<'a> {
    let mut decision = Decision { outcomes: Vec::with_capacity(batch.len()), new_rows: Vec::new(), fills: Vec::new() };
    let mut new_index: HashMap<(Uuid, &str), usize> = HashMap::new();
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
        let Some(group) = groups.get_mut(&req.group_id) else {
            decision.outcomes.push(Some(Err(PostRefused::Denied(GroupDenied::NotFound))));
            continue;
        };
        if let Err(refused) = refusal(req, group) {
            decision.outcomes.push(Some(Err(refused)));
            continue;
        }
        group.last_seq += 1;
        new_index.insert((req.author.id, req.post.client_msg_id.as_str()), decision.new_rows.len());
        decision.fills.push((slot, decision.new_rows.len(), true));
        decision.outcomes.push(None);
        decision.new_rows.push(NewRow {
            id: Uuid::now_v7(),
            req,
            seq: group.last_seq,
            consent_version: group.consent_version,
        });
    }
    decision
}

/// Why this request may not be posted in this group as read, if it may not.
fn refusal(req: &PostRequest, group: &Locked) -> Result<(), PostRefused> {
    rules::authorize(&group.record, group.members.get(&req.author.id), GroupAction::Post)
        .map_err(PostRefused::Denied)?;
    if req.post.reply_to.is_some_and(|r| r < 1 || r > group.last_seq) {
        return Err(PostRefused::UnknownReplyTo);
    }
    if req.post.kind != PostKind::Update && group.record.kind != renkei_protocol::GroupKind::Patient {
        return Err(PostRefused::QuestionOutsidePatientGroup);
    }
    // Counted for every group with a care-plan question in the batch (`BatchKeys::care_plan`).
    if req.post.kind == PostKind::CarePlanQuestion && group.care_managers.is_none_or(|n| n <= 0) {
        return Err(PostRefused::NoCareManager);
    }
    Ok(())
}

impl Decision<'_> {
    /// Every request's outcome, once the new rows are written.
    fn into_outcomes(self, now: i64) -> Result<Vec<PostOutcome>, StoreError> {
        let Decision { mut outcomes, new_rows, fills } = self;
        for (slot, row, created) in fills {
            let NewRow { id, req, seq, consent_version } = new_rows[row];
            let post = Post {
                id,
                group_id: req.group_id,
                seq,
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
            None => {
                let sql = concat!(
                    "SELECT ",
                    post_columns!(),
                    " FROM posts WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                );
                with_pool!(self, |pool| sqlx::query_as(sql)
                    .bind(group)
                    .bind(after.unwrap_or(0))
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
        };
        rows.into_iter().map(Post::try_from).collect()
    }

    /// The posts of several groups' ranges (`(group, from, to)`, inclusive), ordered by group and
    /// sequence: how a node replays another node's committed batch. On PostgreSQL (where nodes replay)
    /// the ranges go as three arrays, so the statement text never changes: prepared and planned once per
    /// connection, where an `OR` of 150 ranges took PostgreSQL 20–30 ms to plan and run under load.
    pub async fn posts_in_ranges(&self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<Post>, StoreError> {
        let rows: Vec<PostRow> = match &self.db {
            super::Db::Postgres(pool) => {
                let sql = concat!(
                    "SELECT ",
                    post_columns!(),
                    " FROM posts JOIN UNNEST($1::uuid[], $2::bigint[], $3::bigint[]) AS r(g, a, b) \
                     ON group_id = r.g AND seq BETWEEN r.a AND r.b ORDER BY group_id, seq"
                );
                sqlx::query_as(sql)
                    .bind(ranges.iter().map(|r| r.0).collect::<Vec<_>>())
                    .bind(ranges.iter().map(|r| r.1).collect::<Vec<_>>())
                    .bind(ranges.iter().map(|r| r.2).collect::<Vec<_>>())
                    .fetch_all(pool)
                    .await?
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

    /// Replaces a post's body (`Some`) or deletes it (`None`, leaving a tombstone), keeping the old version.
    /// Only a live (not deleted) post changes; returns its new state.
    pub async fn revise_post(
        &self,
        group: Uuid,
        seq: i64,
        body: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError> {
        let now = to_micros(now);
        let sql = if body.is_some() {
            concat!(
                "UPDATE posts SET body = $3, version = version + 1, edited_at = $4 WHERE group_id = $1 AND seq = $2 ",
                "AND deleted_at IS NULL RETURNING ",
                post_columns!()
            )
        } else {
            concat!(
                "UPDATE posts SET body = $3, version = version + 1, deleted_at = $4 WHERE group_id = $1 AND seq = $2 ",
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
                "INSERT INTO post_versions (post_id, version, body, at) SELECT id, 1, body, created_at FROM posts \
                 WHERE group_id = $1 AND seq = $2 AND version = 1 AND deleted_at IS NULL ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            let row: Option<PostRow> =
                sqlx::query_as(sql).bind(group).bind(seq).bind(body).bind(now).fetch_optional(&mut *tx).await?;
            if let Some(row) = &row {
                sqlx::query("INSERT INTO post_versions (post_id, version, body, at) VALUES ($1, $2, $3, $4)")
                    .bind(row.id)
                    .bind(row.version)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
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
            return Ok(vec![PostVersion { version: 1, body: post.body.clone(), at: post.created_at }]);
        }
        let rows: Vec<(i32, Option<String>, i64)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT version, body, at FROM post_versions WHERE post_id = $1 ORDER BY version"
        )
        .bind(post.id)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(version, body, at)| PostVersion { version, body, at: from_micros(at) }).collect())
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
        let rows: Vec<(Uuid, String, i64, Option<i64>)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT g.id, g.label, g.last_seq, r.last_read_seq FROM groups g \
             JOIN memberships m ON m.group_id = g.id AND m.user_id = $1 AND m.state = 'active' \
             LEFT JOIN read_marks r ON r.group_id = g.id AND r.user_id = $1 ORDER BY g.label, g.id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(group_id, label, last_seq, read)| {
                let last_read_seq = read.unwrap_or(0).min(last_seq);
                Unread { group_id, label, last_seq, last_read_seq, unread: last_seq - last_read_seq }
            })
            .collect())
    }
}
