//! The PostgreSQL backend, for several server nodes sharing one database. Commits are synchronous
//! (PostgreSQL's default), so an acknowledged write is on disk.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use uuid::Uuid;

use super::StoreError;
use super::dialect::Dialect;
use super::group_rows::{MembershipRow, group_columns};
use super::posts::rows::{
    BatchKeys, GroupStateRow, GroupStateWithMembers, NewRow, PostRequest, PostRow, care_managers_of_group, post_columns,
};
use crate::policy::posts::Advance;

/// Serialises audit appenders across nodes (an advisory lock held to the end of the transaction); within
/// a node the caller holds a lock.
const AUDIT_LOCK: i64 = 0x7265_6e6b_6569;

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

pub(super) async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

/// A dedicated connection listening on `channel`, for the cluster link.
pub(super) async fn listener(pool: &PgPool, channel: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
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

/// Reads a batch's groups on PostgreSQL ([`pg_read_groups!`]), and with `lock`, locks them in id order: two
/// nodes committing batches that share groups would otherwise lock them in different orders and deadlock
/// (renkei-bench's multinode scenario found this).
pub(super) async fn read_groups(
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

impl Dialect for sqlx::PgConnection {
    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error> {
        read_groups(self, &keys.groups, Some(&keys.authors), &keys.care_plan, true).await
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

    async fn lock_audit(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK).execute(&mut *self).await.map(drop)
    }

    async fn lock_login(&mut self, login: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('renkei.login.' || $1))")
            .bind(login)
            .execute(&mut *self)
            .await
            .map(drop)
    }

    async fn posts_after(&mut self, group: Uuid, after: i64, limit: i64) -> Result<Vec<PostRow>, StoreError> {
        let sql =
            concat!("SELECT ", post_columns!(), " FROM posts WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        Ok(sqlx::query_as(sql).bind(group).bind(after).bind(limit).fetch_all(&mut *self).await?)
    }

    /// The ranges go as two arrays of keys, one `(group, seq)` pair per wanted post, so the statement text
    /// never changes and the planner sees look-ups on the unique key whatever its statistics say: a young
    /// `posts` table has none until autovacuum first analyzes it, and a join on ranges was then planned as
    /// a scan of the whole table (4.8–10.8 ms a call on average in runs growing it to 125,000 posts, where
    /// the look-ups take ~0.1 ms). Call it on a `Store::dedicated_planning_each_call` store, whose
    /// connections never fall back to a generic plan settled while the table was small.
    async fn posts_in_ranges(&mut self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<PostRow>, StoreError> {
        let (groups, seqs): (Vec<Uuid>, Vec<i64>) =
            ranges.iter().flat_map(|&(group, from, to)| (from..=to).map(move |seq| (group, seq))).unzip();
        let sql = concat!(
            "SELECT ",
            post_columns!(),
            " FROM UNNEST($1::uuid[], $2::bigint[]) AS k(g, s) \
             JOIN posts ON group_id = k.g AND seq = k.s ORDER BY group_id, seq"
        );
        Ok(sqlx::query_as(sql).bind(groups).bind(seqs).fetch_all(&mut *self).await?)
    }

    /// One statement: the notifications are delivered together, in this order.
    async fn notify(&mut self, payloads: &[String]) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify('renkei_events', p) FROM UNNEST($1::text[]) AS p")
            .bind(payloads)
            .execute(&mut *self)
            .await
            .map(drop)
    }

    async fn backup_into(&mut self, _path: &Path) -> Result<(), StoreError> {
        Err(StoreError::UnsupportedUrl)
    }
}
