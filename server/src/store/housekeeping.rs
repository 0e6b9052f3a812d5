//! Expiry, recorded: sessions past their absolute expiry or idle timeout, and invitations past theirs,
//! are closed by one statement that returns what it closed, and each gets its audit entry in the same
//! transaction — exactly one, also when several nodes sweep at once (the second finds nothing left).

use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::Steps;
use super::{BeginWrite, NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::to_micros;
use renkei_protocol::audit_action as action;

impl Store {
    /// Closes the sessions past their absolute expiry (`expires_at`) or idle since `idle_cutoff`, each
    /// with a `session_expired` entry saying why and how long it lasted; returns each (user, session).
    pub async fn expire_sessions(
        &self,
        now: OffsetDateTime,
        idle_cutoff: OffsetDateTime,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let (now, idle_cutoff) = (to_micros(now), to_micros(idle_cutoff));
        let appender = self.audit_appender();
        let count = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let expired: Vec<(Uuid, Uuid, i64, i64, i64)> = sqlx::query_as(
                "UPDATE sessions SET expired_at = $1 WHERE revoked_at IS NULL AND expired_at IS NULL \
                 AND (expires_at <= $1 OR last_seen_at <= $2) \
                 RETURNING id, user_id, created_at, last_seen_at, expires_at",
            )
            .bind(now)
            .bind(idle_cutoff)
            .fetch_all(&mut *tx)
            .await?;
            for (id, user, created, last_seen, expires) in &expired {
                let reason = if *expires <= now { "absolute" } else { "idle" };
                let entry = NewAuditEntry {
                    action: action::SESSION_EXPIRED,
                    actor_id: Some(*user),
                    group_id: None,
                    target_user_id: None,
                    client_addr: None,
                    session_id: Some(*id),
                    details: serde_json::json!({
                        "reason": reason,
                        "duration_seconds": (last_seen - created) / 1_000_000,
                    }),
                };
                tx.append_audit(&appender, &entry, now).await?;
            }
            tx.commit().await?;
            expired.iter().map(|(id, user, ..)| (*user, *id)).collect()
        });
        Ok(count)
    }

    /// Marks every pending invitation past its expiry as expired, each with an `invitation_expired` entry.
    pub async fn expire_invitations(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        let count = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let count = tx.expire_invitations(&appender, None, None, now).await?;
            tx.commit().await?;
            count
        });
        Ok(count)
    }
}
