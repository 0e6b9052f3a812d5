//! Posts: the group commit of new posts, history pages, edits and deletions with every version kept,
//! seen marks and read positions.
//!
//! Sequence numbers come from `groups.last_seq`, advanced inside the very transaction that inserts the
//! posts, so they are gap-free per group on any number of nodes: a rolled-back transaction rolls back its
//! numbers too, and the group row's lock orders concurrent writers.

mod commit;
pub(in crate::store) mod rows;

use std::collections::HashMap;

use renkei_protocol::{Attachment, CarePolicy, Person, Post, PostVersion, Profession, SeenMark, Unread};
use time::OffsetDateTime;
use uuid::Uuid;

pub use commit::Committer;
pub use rows::PostRequest;
use rows::{PostRow, attachments_json, care_policy_json, post_columns};

use super::dialect::Dialect;
use super::{BeginWrite, NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{from_micros, to_micros};
pub use crate::policy::posts::PostRefused;
use crate::store::dialect::Steps;

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
            // A catch-up reads pages of these (`Dialect::posts_after`).
            None => with_pool!(self, |pool| pool.acquire().await?.posts_after(group, after.unwrap_or(0), limit).await)?,
        };
        rows.into_iter().map(Post::try_from).collect()
    }

    /// The posts of several groups' ranges (`(group, from, to)`, inclusive), ordered by group and
    /// sequence: how a node replays another node's committed batch ([`Dialect::posts_in_ranges`]).
    pub async fn posts_in_ranges(&self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<Post>, StoreError> {
        let rows = with_pool!(self, |pool| pool.acquire().await?.posts_in_ranges(ranges).await)?;
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
        let files = attachments.filter(|a| !a.is_empty()).map(attachments_json);
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
                    tx.append_audit(&appender, &audit, now).await?;
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
