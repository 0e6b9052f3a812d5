//! The group commit: a batch of posts in one transaction, decided by `policy::posts::decide` on the
//! groups as locked (or, on PostgreSQL, as kept and checked unchanged by the write).

use std::collections::HashMap;

use renkei_protocol::Post;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PostOutcome;
use super::rows::{BatchKeys, GroupStateRow, NewRow, PostRequest};
use crate::domain::{Membership, from_micros, to_micros};
use crate::policy::posts::{self as policy, Asked, Decision, GroupState, Verdict};
use crate::store::dialect::{Dialect, Steps};
use crate::store::group_rows::MembershipRow;
use crate::store::{Store, StoreError};

impl Store {
    /// Commits a batch of posts in one transaction (one fsync for all of them): the group commit. Each post
    /// is authorised on the state its write commits on (`policy::posts::check_new_post`), so a removal
    /// committed before cannot be raced. A retried client message id returns the original post.
    ///
    /// The committer is the one serial step of posting, so a batch costs a handful of statements whatever
    /// its size ([`Dialect`]). On PostgreSQL, one round trip when nothing stands in the way
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
                crate::store::Db::Sqlite(pool) => Held::Sqlite(pool.acquire().await?),
                crate::store::Db::Postgres(pool) => Held::Postgres(pool.acquire().await?),
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
    appender: &crate::store::dialect::AuditAppender,
) -> Result<Vec<PostOutcome>, StoreError>
where
    DB::Connection: Steps,
{
    // Retried client ids: their originals are the answer. Read before the groups are locked: a node's
    // batches commit one after another, so every original this node committed is visible already, and the
    // locks are held a round trip less (two nodes posting to the same groups wait for each other's locks).
    // Keyed by author, then client id, so a lookup borrows the request's id instead of copying it.
    let mut existing: HashMap<Uuid, HashMap<String, Post>> = HashMap::new();
    for row in Dialect::originals(&mut *tx, batch).await? {
        let post = Post::try_from(row)?;
        existing.entry(post.author.id).or_default().insert(post.client_msg_id.clone(), post);
    }
    let (rows, members) = Dialect::lock_groups(&mut *tx, &BatchKeys::of(batch)).await?;
    let mut groups = HashMap::new();
    read_into(rows, members, &mut groups)?;
    let decided = decide(batch, &existing, &groups);
    // The new posts, and every group's sequence advanced. Not read back (`RETURNING` costs a row per post
    // crossing a thread on SQLite): each post is what was inserted, `created_at` rounded as stored.
    let bases = if decided.rows.is_empty() {
        HashMap::new()
    } else {
        Dialect::insert_and_advance(&mut *tx, &decided.rows, now, &decided.decision.advances)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a group changed under this transaction's lock".into()))?
    };
    let outcomes = decided.into_outcomes(batch, &existing, now, &bases)?;
    for (req, outcome) in batch.iter().zip(&outcomes) {
        if let (Some(audit), Ok((post, true))) = (&req.audit, outcome) {
            let mut audit = audit.clone();
            audit.detail("post", post.id);
            audit.detail("seq", post.seq);
            Steps::append_audit(&mut *tx, appender, &audit, now).await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// PostgreSQL's first try at a batch: no transaction of its own, and one round trip when the committer
/// has all the batch's groups, two when it reads the others first (without a lock). The batch is decided
/// on them, and one statement locks the groups, checks that none changed since it was read, and writes
/// ([`Dialect::insert_and_advance`]). The locked transaction ([`commit_in`]) takes five. `None`
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
        let (rows, members) = crate::store::postgres::read_groups(conn, &missing, None, &missing, false).await?;
        read_into(rows, members, kept)?;
    }
    let forget = |kept: &mut HashMap<Uuid, GroupState>| {
        for id in &keys.groups {
            kept.remove(id);
        }
    };
    let none = HashMap::new();
    let decided = decide(batch, &none, kept);
    if !decided.all_new() {
        forget(kept);
        return Ok(None);
    }
    match Dialect::insert_and_advance(conn, &decided.rows, now, &decided.decision.advances).await {
        Ok(Some(bases)) => {
            // As written: another node may have posted to these groups since they were read.
            for advance in &decided.decision.advances {
                if let (Some(group), Some(base)) = (kept.get_mut(&advance.id), bases.get(&advance.id)) {
                    group.last_seq = base + advance.count;
                }
            }
            decided.into_outcomes(batch, &none, now, &bases).map(Some)
        }
        Ok(None) => {
            forget(kept);
            Ok(None)
        }
        Err(e) if crate::store::is_unique_violation(&e) => {
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

/// A batch decided (`policy::posts::decide`), with an id for each new row.
struct Decided<'a> {
    decision: Decision,
    rows: Vec<NewRow<'a>>,
}

/// Decides every request of a batch, in order, on the groups as read and the originals of retried client
/// ids.
fn decide<'a>(
    batch: &'a [PostRequest],
    existing: &HashMap<Uuid, HashMap<String, Post>>,
    groups: &HashMap<Uuid, GroupState>,
) -> Decided<'a> {
    let asked: Vec<Asked<'_>> = batch
        .iter()
        .map(|r| Asked {
            group: r.group_id,
            author: r.author.id,
            client_msg_id: &r.post.client_msg_id,
            kind: r.post.kind,
            reply_to: r.post.reply_to,
        })
        .collect();
    let stored = |a: &Asked<'_>| existing.get(&a.author).is_some_and(|posts| posts.contains_key(a.client_msg_id));
    let decision = policy::decide(&asked, stored, groups);
    let rows = decision
        .new_rows
        .iter()
        .map(|r| NewRow {
            id: Uuid::now_v7(),
            req: &batch[r.request],
            offset: r.offset,
            consent_version: r.consent_version,
        })
        .collect();
    Decided { decision, rows }
}

impl Decided<'_> {
    /// Whether every request gets a new row (some perhaps shared by a retry within the batch): nothing
    /// was refused and no client id is known to be used already.
    fn all_new(&self) -> bool {
        self.decision.verdicts.iter().all(|v| matches!(v, Verdict::Row { .. }))
    }

    /// Every request's outcome (`batch` is the batch decided), once the new rows are written on these bases
    /// (each group's last sequence number before them).
    fn into_outcomes(
        self,
        batch: &[PostRequest],
        existing: &HashMap<Uuid, HashMap<String, Post>>,
        now: i64,
        bases: &HashMap<Uuid, i64>,
    ) -> Result<Vec<PostOutcome>, StoreError> {
        let Decided { decision, rows } = self;
        let corrupt = |what: &str| StoreError::Corrupt(what.into());
        let mut outcomes = Vec::with_capacity(batch.len());
        for (req, verdict) in batch.iter().zip(decision.verdicts) {
            outcomes.push(match verdict {
                Verdict::Refused(refused) => Err(refused),
                Verdict::Stored => {
                    let original = existing.get(&req.author.id).and_then(|p| p.get(&req.post.client_msg_id));
                    Ok((original.ok_or_else(|| corrupt("a retried post without its original"))?.clone(), false))
                }
                Verdict::Row { row, created } => {
                    let NewRow { id, req, offset, consent_version } =
                        *rows.get(row).ok_or_else(|| corrupt("a post without its row"))?;
                    let base = bases.get(&req.group_id).ok_or_else(|| corrupt("a post without its group"))?;
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
                    Ok((post, created))
                }
            });
        }
        Ok(outcomes)
    }
}
