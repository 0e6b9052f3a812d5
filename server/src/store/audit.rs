//! The audit log's storage: appending with the hash chain, querying, and reading it back for verification.

use crate::store::BeginWrite;
use renkei_protocol::AuditEntry;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::audit_columns;
use super::{Store, StoreError, with_pool};
use crate::domain::audit::AuditFields;
use crate::domain::{from_micros, to_micros};
use crate::store::dialect::Steps;

/// An act to record. `details` holds ids and parameters — never content. A store method that performs
/// an act takes its entry and appends it in the act's own transaction (see `dialect::Steps::append_audit`), filling
/// in what only the act knows (a new group's id, the invitation created).
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub action: &'static str,
    pub actor_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// Adds `key: value` to the details (which become an object if they were not one).
    pub fn detail(&mut self, key: &str, value: impl serde::Serialize) {
        if !self.details.is_object() {
            self.details = serde_json::Value::Object(serde_json::Map::new());
        }
        if let (Some(map), Ok(value)) = (self.details.as_object_mut(), serde_json::to_value(value)) {
            map.insert(key.to_owned(), value);
        }
    }
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
    pub before_seq: Option<i64>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    pub limit: i64,
}

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
    /// HMAC-SHA256 of `hash` under the audit key; none for entries written before the key existed.
    pub mac: Option<String>,
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
            // Stored as text (it is hashed as text); read back as the object it is.
            details: serde_json::from_str(&f.details).unwrap_or(serde_json::Value::String(f.details)),
            hash: self.hash.clone(),
        }
    }
}

impl Store {
    /// Appends one entry, chained to the last, in a transaction of its own.
    pub async fn append_audit(&self, new: &NewAuditEntry, now: OffsetDateTime) -> Result<i64, StoreError> {
        let at = to_micros(now);
        let appender = self.audit_appender();
        let seq = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let seq = tx.append_audit(&appender, new, at).await?;
            tx.commit().await?;
            seq
        });
        Ok(seq)
    }

    /// Entries matching the filter, in sequence order (or the newest first).
    pub async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        macro_rules! select {
            ($order:literal) => {
                concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_log WHERE seq > $1 AND ($2 IS NULL OR actor_id = $2 OR target_user_id = $2) \
                     AND ($3 IS NULL OR group_id = $3) AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR at >= $5) \
                     AND ($6 IS NULL OR at < $6) AND ($8 IS NULL OR seq < $8) ORDER BY seq ",
                    $order,
                    " LIMIT $7"
                )
            };
        }
        let sql = if f.newest_first { select!("DESC") } else { select!("ASC") };
        let rows: Vec<AuditRow> = with_pool!(self, |pool| sqlx::query_as(sql)
            .bind(f.after_seq.unwrap_or(0))
            .bind(f.actor_id)
            .bind(f.group_id)
            .bind(f.action.as_deref())
            .bind(f.from.map(to_micros))
            .bind(f.to.map(to_micros))
            .bind(f.limit)
            .bind(f.before_seq)
            .fetch_all(pool)
            .await)?;
        Ok(rows.iter().map(AuditRow::entry).collect())
    }

    /// Raw rows from `after_seq` on, for verification.
    pub async fn audit_rows(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let sql = concat!("SELECT ", audit_columns!(), " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        Ok(with_pool!(self, |pool| sqlx::query_as(sql).bind(after_seq).bind(limit).fetch_all(pool).await)?)
    }

    /// The fingerprint of the key that seals this log, if one is registered.
    pub async fn registered_audit_key(&self) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT fingerprint FROM audit_key WHERE id = 1").fetch_optional(pool).await
        })?)
    }

    /// Registers `fingerprint` as the key that seals this log unless one is registered already; returns
    /// the registered one (the first server to start wins, also when two start at once).
    pub async fn register_audit_key(&self, fingerprint: &str, now: OffsetDateTime) -> Result<String, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_key (id, fingerprint, registered_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(fingerprint)
            .bind(to_micros(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.registered_audit_key().await?.ok_or_else(|| StoreError::Corrupt("no audit key registered".into()))
    }

    /// The newest entry, if any.
    pub async fn audit_last(&self) -> Result<Option<AuditEntry>, StoreError> {
        let sql = concat!("SELECT ", audit_columns!(), " FROM audit_log ORDER BY seq DESC LIMIT 1");
        let row: Option<AuditRow> = with_pool!(self, |pool| sqlx::query_as(sql).fetch_optional(pool).await)?;
        Ok(row.as_ref().map(AuditRow::entry))
    }
}
