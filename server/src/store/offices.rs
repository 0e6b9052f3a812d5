//! Each office's own rules (rule 7), kept by administrators.

use renkei_protocol::{OfficeRules, OfficeRulesUpdate};
use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::Steps;
use super::{NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{from_micros, to_micros};
use crate::store::BeginWrite;

#[derive(Debug, sqlx::FromRow)]
struct OfficeRow {
    organisation: String,
    timeline_export: String,
    attachment_networks: String,
    purge_archived_after_days: Option<i32>,
    updated_at: i64,
}

impl TryFrom<OfficeRow> for OfficeRules {
    type Error = StoreError;

    fn try_from(r: OfficeRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("office rules {:?}: {what}", r.organisation));
        Ok(OfficeRules {
            timeline_export: serde_json::from_str(&r.timeline_export).map_err(|_| corrupt("timeline_export"))?,
            attachment_networks: serde_json::from_str(&r.attachment_networks)
                .map_err(|_| corrupt("attachment_networks"))?,
            purge_archived_after_days: r.purge_archived_after_days.and_then(|d| u32::try_from(d).ok()),
            updated_at: from_micros(r.updated_at),
            organisation: r.organisation,
        })
    }
}

const COLUMNS: &str = "organisation, timeline_export, attachment_networks, purge_archived_after_days, updated_at";

impl Store {
    /// The rules of one office, if an administrator set any.
    pub async fn office_rules(&self, organisation: &str) -> Result<Option<OfficeRules>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM office_rules WHERE organisation = $1");
        let row: Option<OfficeRow> = with_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(organisation)
            .fetch_optional(pool)
            .await)?;
        row.map(OfficeRules::try_from).transpose()
    }

    /// Every office's rules, by organisation.
    pub async fn all_office_rules(&self) -> Result<Vec<OfficeRules>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM office_rules ORDER BY organisation");
        let rows: Vec<OfficeRow> =
            with_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(OfficeRules::try_from).collect()
    }

    /// Replaces an office's rules, with their audit entry in the same transaction.
    pub async fn set_office_rules(
        &self,
        organisation: &str,
        rules: &OfficeRulesUpdate,
        by: Uuid,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<OfficeRules, StoreError> {
        let at = to_micros(now);
        let appender = self.audit_appender();
        let export = serde_json::to_string(&rules.timeline_export).expect("a list of roles serialises");
        let networks = serde_json::to_string(&rules.attachment_networks).expect("a list of networks serialises");
        let days = rules.purge_archived_after_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO office_rules (organisation, timeline_export, attachment_networks, \
                 purge_archived_after_days, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (organisation) DO UPDATE SET timeline_export = excluded.timeline_export, \
                 attachment_networks = excluded.attachment_networks, \
                 purge_archived_after_days = excluded.purge_archived_after_days, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(organisation)
            .bind(&export)
            .bind(&networks)
            .bind(days)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(&appender, &audit, at).await?;
            tx.commit().await?;
        });
        Ok(OfficeRules {
            organisation: organisation.to_owned(),
            timeline_export: rules.timeline_export.clone(),
            attachment_networks: rules.attachment_networks.clone(),
            purge_archived_after_days: rules.purge_archived_after_days,
            updated_at: from_micros(at),
        })
    }
}
