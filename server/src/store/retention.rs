//! Retention (rule 7): purging an archived patient group's content, leaving a tombstone.

use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::Steps;
use super::group_rows::GroupRow;
use super::{NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{GroupRecord, to_micros};
use crate::policy::retention::{PurgeRefused, may_purge};
use crate::store::BeginWrite;

/// What a purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub posts: u64,
    pub attachments: u64,
}

impl Store {
    /// Archived patient groups whose content has not been purged, oldest archive first, each with its
    /// attending physician's organisation (whose rules may set its retention).
    pub async fn archived_patient_groups(&self) -> Result<Vec<(GroupRecord, Option<String>)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            group: GroupRow,
            physician_organisation: Option<String>,
        }
        let sql = "SELECT g.*, u.organisation AS physician_organisation FROM groups g \
                   LEFT JOIN users u ON u.id = g.attending_physician_id \
                   WHERE g.kind = 'patient' AND g.status = 'archived' AND g.purged_at IS NULL \
                   ORDER BY g.archived_at, g.id";
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter().map(|r| Ok((GroupRecord::try_from(r.group)?, r.physician_organisation))).collect()
    }

    /// Purges an archived patient group's content in one transaction with its `group_purged` entry: posts
    /// with every version and mark, read positions, files, the patient's identifiers and notes, the
    /// consenters' names, and the label (which names the patient; it becomes the neutral reference). The
    /// group stays — id, dates, memberships, consent versions without names — and so do its audit entries.
    /// Refused, changing nothing, unless the group is an archived patient group not yet purged.
    pub async fn purge_group(
        &self,
        group: &GroupRecord,
        now: OffsetDateTime,
    ) -> Result<Result<Purged, PurgeRefused>, StoreError> {
        if let Err(refused) = may_purge(group) {
            return Ok(Err(refused));
        }
        let at = to_micros(now);
        let appender = self.audit_appender();
        let id: Uuid = group.id;
        let reference = group.reference();
        let outcome = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // The tombstone first: it takes the group's row, so a concurrent purge (another node's sweep)
            // waits, then finds nothing left to do.
            let marked = sqlx::query(
                "UPDATE groups SET label = $2, patient_full_name = NULL, patient_kana = NULL, patient_number = NULL, \
                 notes = NULL, purged_at = $3, updated_at = $3 \
                 WHERE id = $1 AND kind = 'patient' AND status = 'archived' AND purged_at IS NULL",
            )
            .bind(id)
            .bind(&reference)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked == 0 {
                Err(PurgeRefused::AlreadyPurged)
            } else {
                for sql in [
                    "DELETE FROM post_seen WHERE post_id IN (SELECT id FROM posts WHERE group_id = $1)",
                    "DELETE FROM post_versions WHERE post_id IN (SELECT id FROM posts WHERE group_id = $1)",
                    "DELETE FROM read_marks WHERE group_id = $1",
                    "UPDATE consents SET consenter_name = '', consenter_relationship = NULL WHERE group_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                let posts = sqlx::query("DELETE FROM posts WHERE group_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // Their bytes go with them (attachment_files cascades).
                let attachments = sqlx::query("DELETE FROM attachments WHERE group_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let entry = NewAuditEntry {
                    action: renkei_protocol::audit_action::GROUP_PURGED,
                    actor_id: None,
                    group_id: Some(id),
                    target_user_id: None,
                    client_addr: None,
                    session_id: None,
                    details: serde_json::json!({ "posts": posts, "attachments": attachments }),
                };
                tx.append_audit(&appender, &entry, at).await?;
                tx.commit().await?;
                Ok(Purged { posts, attachments })
            }
        });
        Ok(outcome)
    }
}
