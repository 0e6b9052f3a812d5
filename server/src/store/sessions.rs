//! Sessions (opened, re-authenticated, touched, revoked, listed) and failed-login records.

use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::{Dialect, Steps};
use super::rows::{AuthRow, SessionRow, auth_session_columns, session_columns};
use super::{BeginWrite, NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{Account, SessionInfo, to_micros};
use crate::policy::accounts::LoginFailureStats;

/// A session to open.
#[derive(Debug)]
pub struct NewSession {
    pub user_id: Uuid,
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct FailureRow {
    n: i64,
    last: Option<i64>,
}

impl Store {
    /// Opens a session, with its audit entry (a login) in the same transaction.
    pub async fn create_session(
        &self,
        new: NewSession,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<SessionInfo, StoreError> {
        let sql = concat!(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, client_addr, \
             user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7) RETURNING ",
            session_columns!()
        );
        let id = Uuid::now_v7();
        let now = to_micros(now);
        audit.session_id = Some(id);
        let row: SessionRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let out = {
                sqlx::query_as(sql)
                    .bind(id)
                    .bind(new.user_id)
                    .bind(&new.token_hash)
                    .bind(now)
                    .bind(to_micros(new.expires_at))
                    .bind(new.client_addr.as_deref())
                    .bind(new.user_agent.as_deref())
                    .fetch_one(&mut *tx)
                    .await?
            };
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
            out
        });
        Ok(row.into())
    }

    /// The live session with this token hash and its active user: not revoked, not past its absolute
    /// expiry, and used since `idle_cutoff`.
    pub async fn authenticate(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        idle_cutoff: OffsetDateTime,
    ) -> Result<Option<(SessionInfo, Account)>, StoreError> {
        let sql = concat!(
            "SELECT u.*, ",
            auth_session_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expired_at IS NULL AND s.expires_at > $2 \
             AND s.last_seen_at > $3 \
             AND u.status = 'active'"
        );
        let row: Option<AuthRow> = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(token_hash)
                .bind(to_micros(now))
                .bind(to_micros(idle_cutoff))
                .fetch_optional(pool)
                .await
        })?;
        row.map(|row| Ok((row.session(), Account::try_from(row.user)?))).transpose()
    }

    /// Records that the session's owner proved who they are again (password, and TOTP when enrolled).
    pub async fn reauthenticated(&self, id: Uuid, audit: NewAuditEntry, now: OffsetDateTime) -> Result<(), StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE sessions SET authenticated_at = $2, last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Moves a session's idle clock forward.
    pub async fn touch_session(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(id)
                .bind(to_micros(now))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Whether a session is neither revoked nor closed by the expiry sweep.
    pub async fn session_is_live(&self, id: Uuid) -> Result<bool, StoreError> {
        let live: Option<i32> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expired_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(live.is_some())
    }

    /// Revokes one session of `user_id`. False when there is no such live session of that user.
    pub async fn revoke_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The user's live sessions, newest first.
    pub async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        idle_cutoff: OffsetDateTime,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND last_seen_at > $3 ORDER BY created_at DESC"
        );
        let rows: Vec<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(sql).bind(user_id).bind(to_micros(now)).bind(to_micros(idle_cutoff)).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(SessionInfo::from).collect())
    }

    /// Every session of a user, newest first, with its revocation time if any:
    /// (session, revoked_at).
    pub async fn session_history(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(SessionInfo, Option<OffsetDateTime>)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            session: SessionRow,
            revoked_at: Option<i64>,
        }
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            ", revoked_at FROM sessions WHERE user_id = $1 ORDER BY created_at DESC"
        );
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(sql).bind(user_id).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|r| (SessionInfo::from(r.session), r.revoked_at.map(crate::domain::from_micros)))
            .collect())
    }

    /// Records a failed login for the login name tried (whether or not it exists) and the client address,
    /// and forgets records older than `forget_before`.
    /// Counts the recent failures of `login` and of `client_addr`, asks `decide` whether this attempt may
    /// be evaluated, and if so records it as a pending failure before the password is checked, all in one
    /// transaction serialised per login name (SQLite's write lock; a PostgreSQL advisory lock): a burst
    /// of concurrent attempts on one login is counted one by one, so no more than the allowed number are
    /// evaluated. Pending failures count for the login, not yet for the address (see migration 0009).
    /// Returns the recorded attempt's id (to [`Store::release_login_attempt`] when it did not fail).
    pub async fn reserve_login_attempt<E>(
        &self,
        login: &str,
        client_addr: &str,
        now: OffsetDateTime,
        since: OffsetDateTime,
        decide: impl FnOnce(&LoginFailureStats) -> Result<(), E>,
    ) -> Result<Result<i64, E>, StoreError> {
        let (now, since) = (to_micros(now), to_micros(since));
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        let outcome = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_login(login).await?;
            sqlx::query("DELETE FROM login_failures WHERE at < $1 AND (login = $2 OR client_addr = $3)")
                .bind(since)
                .bind(login)
                .bind(client_addr)
                .execute(&mut *tx)
                .await?;
            let row = |sql: &'static str| sqlx::query_as::<_, FailureRow>(sql);
            let pair = row(
                "SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE login = $1 AND client_addr = $2 AND at >= $3",
            )
            .bind(login)
            .bind(client_addr)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            let account =
                row("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE login = $1 AND at >= $2")
                    .bind(login)
                    .bind(since)
                    .fetch_one(&mut *tx)
                    .await?;
            let address = row(
                "SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE client_addr = $1 AND at >= $2 AND NOT pending",
            )
                    .bind(client_addr)
                    .bind(since)
                    .fetch_one(&mut *tx)
                    .await?;
            let stats = LoginFailureStats {
                pair_failures: count(pair.n),
                pair_last: pair.last.map(crate::domain::from_micros),
                account_failures: count(account.n),
                address_failures: count(address.n),
                address_last: address.last.map(crate::domain::from_micros),
            };
            match decide(&stats) {
                Err(refused) => {
                    tx.commit().await?;
                    Err(refused)
                }
                Ok(()) => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO login_failures (login, client_addr, at, pending) VALUES ($1, $2, $3, TRUE) RETURNING id",
                    )
                    .bind(login)
                    .bind(client_addr)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(id)
                }
            }
        });
        Ok(outcome)
    }

    /// An attempt recorded by [`Store::reserve_login_attempt`] failed: it now counts for its address too.
    pub async fn settle_login_failure(&self, id: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE login_failures SET pending = FALSE WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Takes back an attempt recorded by [`Store::reserve_login_attempt`] that turned out not to fail (the
    /// password was right and a TOTP code is still to come).
    pub async fn release_login_attempt(&self, id: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Forgets the failures of a login name from one address after it logged in from there, ending that
    /// address's back-off (an attacker's failures from elsewhere stay counted).
    pub async fn clear_login_failures(&self, login: &str, client_addr: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE login = $1 AND client_addr = $2")
                .bind(login)
                .bind(client_addr)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
