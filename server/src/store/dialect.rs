//! One way to speak two dialects.
//!
//! - [`Dialect`]: the statements that really differ between SQLite and PostgreSQL, one implementation
//!   each (`sqlite.rs`, `postgres.rs`): the group commit's three statements, the audit and login locks,
//!   the catch-up page, the range replay, the cluster's NOTIFY and the backup.
//! - [`Steps`]: steps several write transactions share (append an audit entry, lock a group, add an
//!   active member, expire invitations), written once as `async fn`s on the open transaction's connection
//!   and implemented for both connections from that one text ([`for_both_connections!`]).
//! - `with_pool!` (in `mod.rs`): a single statement both dialects accept, on whichever pool is in use.

use std::collections::HashMap;
use std::path::Path;

use renkei_protocol::{GroupStatus, MemberRole};
use uuid::Uuid;

use super::group_rows::MembershipRow;
use super::posts::rows::{BatchKeys, GroupStateRow, NewRow, PostRequest, PostRow};
use super::{NewAuditEntry, StoreError};
use crate::policy::posts::Advance;

/// How a store appends an audit entry: with the key of the keyed chain when it has one.
#[derive(Debug, Clone)]
pub struct AuditAppender {
    pub key: Option<std::sync::Arc<crate::domain::audit::AuditKey>>,
}

/// The statements that differ between the two databases, on one connection (inside a transaction where
/// the caller opened one).
pub(crate) trait Dialect {
    /// Group commit: locks and reads the groups in id order, each with its consent version in force (and
    /// its care managers counted, for the `care_plan` groups), and the active memberships of these users
    /// in them.
    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error>;
    /// Group commit: the posts that already have one of the batch's (author, client message id) pairs.
    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error>;
    /// Group commit: inserts the new posts (their first versions are written at their first edit, by
    /// `revise_post`) and advances each group's last sequence number, only if every group's
    /// `state_version` is still the one the batch was decided on (PostgreSQL): each group's last sequence
    /// number before the batch, as written on, or `None` if nothing was written.
    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance],
    ) -> Result<Option<HashMap<Uuid, i64>>, sqlx::Error>;
    /// Serialises audit appenders across nodes to the end of the transaction (PostgreSQL's advisory
    /// lock); SQLite's write transaction already excludes every other writer.
    async fn lock_audit(&mut self) -> Result<(), sqlx::Error>;
    /// Serialises sign-in attempts at one login across nodes to the end of the transaction (PostgreSQL);
    /// SQLite's write transaction already does.
    async fn lock_login(&mut self, login: &str) -> Result<(), sqlx::Error>;
    /// A catch-up page: at most `limit` posts of `group` after `after`, in order.
    async fn posts_after(&mut self, group: Uuid, after: i64, limit: i64) -> Result<Vec<PostRow>, StoreError>;
    /// The posts of several groups' ranges (`(group, from, to)`, inclusive), ordered by group and
    /// sequence: how a node replays another node's committed batch.
    async fn posts_in_ranges(&mut self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<PostRow>, StoreError>;
    /// Tells every node listening on the cluster channel, in order (PostgreSQL); a node on SQLite has no
    /// one to tell.
    async fn notify(&mut self, payloads: &[String]) -> Result<(), sqlx::Error>;
    /// A consistent copy of the live database at `path` (SQLite's `VACUUM INTO`). PostgreSQL is backed up
    /// with its own tools (pg_dump, base backups and WAL archiving): `UnsupportedUrl`.
    async fn backup_into(&mut self, path: &Path) -> Result<(), StoreError>;
}

/// Implements a trait for the SQLite and the PostgreSQL connection from one text: the body is
/// type-checked once per connection, so one SQL text serves both.
macro_rules! for_both_connections {
    (impl $trait:path { $($body:tt)* }) => {
        impl $trait for sqlx::SqliteConnection {
            $($body)*
        }
        impl $trait for sqlx::PgConnection {
            $($body)*
        }
    };
}

/// Steps several write transactions share, on the open transaction's connection.
pub(crate) trait Steps: Dialect {
    /// Appends one audit entry, chained to the last: the act and its entry commit together or not at
    /// all. Returns its sequence number.
    async fn append_audit(
        &mut self,
        appender: &AuditAppender,
        new: &NewAuditEntry,
        at: i64,
    ) -> Result<i64, sqlx::Error>;
    /// Locks the group row for the rest of the transaction and returns its status; `None` if no such group.
    async fn lock_group(&mut self, group: Uuid, now: i64) -> Result<Option<GroupStatus>, sqlx::Error>;
    /// Inserts an active membership (a group's founder, a community member).
    async fn insert_active_member(
        &mut self,
        group: Uuid,
        user: Uuid,
        role: MemberRole,
        invited_by: Option<Uuid>,
        now: i64,
    ) -> Result<(), sqlx::Error>;
    /// Marks pending invitations past their expiry as expired — all of them, or one user's (in one group)
    /// — each with an `invitation_expired` entry; returns how many.
    async fn expire_invitations(
        &mut self,
        appender: &AuditAppender,
        user: Option<Uuid>,
        group: Option<Uuid>,
        now: i64,
    ) -> Result<usize, sqlx::Error>;
}

for_both_connections! {
    impl Steps {
        async fn append_audit(&mut self, appender: &AuditAppender, new: &NewAuditEntry, at: i64) -> Result<i64, sqlx::Error> {
            self.lock_audit().await?;
            let last: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *self).await?;
            let (last_seq, prev_hash) = last.unwrap_or((0, crate::domain::audit::GENESIS.to_owned()));
            let fields = crate::domain::audit::AuditFields {
                seq: last_seq + 1,
                at,
                actor_id: new.actor_id,
                action: new.action.to_owned(),
                group_id: new.group_id,
                target_user_id: new.target_user_id,
                client_addr: new.client_addr.clone(),
                session_id: new.session_id,
                details: if new.details.is_null() { "{}".to_owned() } else { new.details.to_string() },
            };
            let hash = fields.hash(&prev_hash);
            let mac = appender.key.as_ref().map(|key| key.mac(&hash));
            crate::failpoint::before_audit_append(new.action);
            sqlx::query(concat!(
                "INSERT INTO audit_log (",
                super::rows::audit_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(fields.seq)
            .bind(fields.at)
            .bind(fields.actor_id)
            .bind(&fields.action)
            .bind(fields.group_id)
            .bind(fields.target_user_id)
            .bind(&fields.client_addr)
            .bind(fields.session_id)
            .bind(&fields.details)
            .bind(&prev_hash)
            .bind(&hash)
            .bind(&mac)
            .execute(&mut *self)
            .await?;
            Ok(fields.seq)
        }

        async fn lock_group(&mut self, group: Uuid, now: i64) -> Result<Option<GroupStatus>, sqlx::Error> {
            let status: Option<String> =
                sqlx::query_scalar("UPDATE groups SET updated_at = $2 WHERE id = $1 RETURNING status")
                    .bind(group)
                    .bind(now)
                    .fetch_optional(&mut *self)
                    .await?;
            Ok(status.and_then(|s| GroupStatus::parse(&s)))
        }

        async fn insert_active_member(
            &mut self,
            group: Uuid,
            user: Uuid,
            role: MemberRole,
            invited_by: Option<Uuid>,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO memberships (id, group_id, user_id, role, state, invited_by, invited_at, joined_at) \
                 VALUES ($1, $2, $3, $4, 'active', $5, $6, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(group)
            .bind(user)
            .bind(role.as_str())
            .bind(invited_by)
            .bind(now)
            .execute(&mut *self)
            .await
            .map(drop)
        }

        async fn expire_invitations(
            &mut self,
            appender: &AuditAppender,
            user: Option<Uuid>,
            group: Option<Uuid>,
            now: i64,
        ) -> Result<usize, sqlx::Error> {
            let expired: Vec<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
                "UPDATE memberships SET state = 'expired', ended_at = expires_at \
                 WHERE state = 'invited' AND expires_at <= $3 AND ($1 IS NULL OR user_id = $1) \
                 AND ($2 IS NULL OR group_id = $2) RETURNING group_id, user_id, invited_by",
            )
            .bind(user)
            .bind(group)
            .bind(now)
            .fetch_all(&mut *self)
            .await?;
            for (group_id, user_id, invited_by) in &expired {
                let entry = NewAuditEntry {
                    action: renkei_protocol::audit_action::INVITATION_EXPIRED,
                    actor_id: None,
                    group_id: Some(*group_id),
                    target_user_id: Some(*user_id),
                    client_addr: None,
                    session_id: None,
                    details: serde_json::json!({ "invited_by": invited_by }),
                };
                self.append_audit(appender, &entry, now).await?;
            }
            Ok(expired.len())
        }
    }
}
