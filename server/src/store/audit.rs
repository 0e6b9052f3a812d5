//! The audit log's storage: appending with the hash chain, querying, and reading it back for verification.

use crate::store::BeginWrite;
use renkei_protocol::AuditEntry;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, Store, StoreError, with_pool};
use crate::domain::audit::AuditFields;
use crate::domain::{from_micros, to_micros};

/// An act to record. `details` is JSON text of ids and parameters — never content.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub action: &'static str,
    pub actor_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
    pub details: String,
}

/// What administrators filter the log by.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub after_seq: Option<i64>,
    pub limit: i64,
}

macro_rules! audit_columns {
    () => {
        "seq, at, actor_id, action, group_id, target_user_id, client_addr, session_id, details, prev_hash, hash"
    };
}
pub(super) use audit_columns;

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    seq: i64,
    at: i64,
    actor_id: Option<Uuid>,
    action: String,
    group_id: Option<Uuid>,
    target_user_id: Option<Uuid>,
    client_addr: Option<String>,
    session_id: Option<Uuid>,
    details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    pub fn fields(&self) -> AuditFields {
        AuditFields {
            seq: self.seq,
            at: self.at,
            actor_id: self.actor_id,
            action: self.action.clone(),
            group_id: self.group_id,
            target_user_id: self.target_user_id,
            client_addr: self.client_addr.clone(),
            session_id: self.session_id,
            details: self.details.clone(),
        }
    }

    pub fn entry(&self) -> AuditEntry {
        let f = self.fields();
        AuditEntry {
            seq: f.seq,
            at: from_micros(f.at),
            actor_id: f.actor_id,
            action: f.action,
            group_id: f.group_id,
            target_user_id: f.target_user_id,
            client_addr: f.client_addr,
            session_id: f.session_id,
            details: f.details,
            hash: self.hash.clone(),
        }
    }
}

/// Serialises appenders across nodes (PostgreSQL); within a node the caller holds a lock.
pub(crate) const AUDIT_LOCK: i64 = 0x7265_6e6b_6569;

/// Appends one audit entry inside the open transaction `$tx` (of either backend): the act and its entry
/// commit together or not at all. On PostgreSQL an advisory lock held to the end of the transaction
/// serialises appenders across nodes; on SQLite the write transaction itself does.
macro_rules! append_audit_in {
    ($tx:ident, $postgres:expr, $new:expr, $at:expr) => {{
        let tx = &mut $tx;
        let new: &$crate::store::NewAuditEntry = $new;
        if $postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind($crate::store::audit::AUDIT_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
        let (last_seq, prev_hash) = last.unwrap_or((0, $crate::domain::audit::GENESIS.to_owned()));
        let fields = $crate::domain::audit::AuditFields {
            seq: last_seq + 1,
            at: $at,
            actor_id: new.actor_id,
            action: new.action.to_owned(),
            group_id: new.group_id,
            target_user_id: new.target_user_id,
            client_addr: new.client_addr.clone(),
            session_id: new.session_id,
            details: new.details.clone(),
        };
        let hash = fields.hash(&prev_hash);
        sqlx::query(concat!(
            "INSERT INTO audit_log (",
            $crate::store::audit::audit_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .execute(&mut **tx)
        .await?;
        fields.seq
    }};
}
pub(crate) use append_audit_in;

impl Store {
    /// Appends one entry, chained to the last, in a transaction of its own.
    pub async fn append_audit(&self, new: &NewAuditEntry, now: OffsetDateTime) -> Result<i64, StoreError> {
        let at = to_micros(now);
        let postgres = matches!(self.db, Db::Postgres(_));
        let seq = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let seq = append_audit_in!(tx, postgres, new, at);
            tx.commit().await?;
            seq
        });
        Ok(seq)
    }

    /// Entries matching the filter, in sequence order.
    pub async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > $1 AND ($2 IS NULL OR actor_id = $2 OR target_user_id = $2) \
             AND ($3 IS NULL OR group_id = $3) AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR at >= $5) \
             AND ($6 IS NULL OR at < $6) ORDER BY seq LIMIT $7"
        );
        let rows: Vec<AuditRow> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(f.after_seq.unwrap_or(0))
            .bind(f.actor_id)
            .bind(f.group_id)
            .bind(f.action.as_deref())
            .bind(f.from.map(to_micros))
            .bind(f.to.map(to_micros))
            .bind(f.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.iter().map(AuditRow::entry).collect())
    }

    /// Raw rows from `after_seq` on, for verification.
    pub async fn audit_rows(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = concat!("SELECT ", audit_columns!(), " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        Ok(with_pool!(self, |pool| sqlx::query_as(sql).bind(after_seq).bind(limit).fetch_all(pool).await)?)
    }

    /// The newest entry, if any.
    pub async fn audit_last(&self) -> Result<Option<AuditEntry>, StoreError> {
        let sql = concat!("SELECT ", audit_columns!(), " FROM audit_log ORDER BY seq DESC LIMIT 1");
        let row: Option<AuditRow> = with_pool!(self, |pool| sqlx::query_as(sql).fetch_optional(pool).await)?;
        Ok(row.as_ref().map(AuditRow::entry))
    }
}
