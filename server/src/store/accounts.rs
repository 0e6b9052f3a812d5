//! Accounts: users, setup tokens, status, passwords and TOTP.

use crate::store::BeginWrite;
use renkei_protocol::{AccountStatus, Profession, Role};
use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::Steps;
use super::rows::{UserRow, user_columns};
use super::{Conflict, NewAuditEntry, Store, StoreError, is_unique_violation, with_pool};
use crate::domain::{Account, DisplayName, Login, Organisation, Phone, to_micros};

/// A user to create. `password_hash` is set when an administrator gave an initial password.
#[derive(Debug)]
pub struct NewUser {
    pub login: Login,
    pub display_name: DisplayName,
    /// The name's reading (フリガナ), already validated.
    pub kana: Option<String>,
    pub profession: Profession,
    pub organisation: Organisation,
    pub phone: Option<Phone>,
    pub role: Role,
    pub password_hash: Option<String>,
    /// True when the password (if any) was chosen by someone else and must be changed at first login.
    pub must_change_password: bool,
    /// Hash and expiry of a one-time setup token, created in the same transaction as the user.
    pub setup_token: Option<(String, OffsetDateTime)>,
}

impl Store {
    /// Creates a user (and its setup token, if any). A taken login is `Conflict::LoginTaken`.
    pub async fn create_user(
        &self,
        new: NewUser,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Account, StoreError> {
        let id = Uuid::now_v7();
        let now = to_micros(now);
        audit.target_user_id = Some(id);
        let row: UserRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let out = {
                let inserted = sqlx::query_as::<_, UserRow>(concat!(
                    "INSERT INTO users (id, login, display_name, profession, organisation, phone, role, status, \
                 password_hash, must_change_password, created_at, updated_at, kana) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $10, $11) RETURNING ",
                    user_columns!()
                ))
                .bind(id)
                .bind(new.login.as_str())
                .bind(new.display_name.as_str())
                .bind(new.profession.as_str())
                .bind(new.organisation.as_str())
                .bind(new.phone.as_ref().map(Phone::as_str))
                .bind(new.role.as_str())
                .bind(new.password_hash.as_deref())
                .bind(new.must_change_password)
                .bind(now)
                .bind(new.kana.as_deref())
                .fetch_one(&mut *tx)
                .await;
                let row = match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict(Conflict::LoginTaken));
                    }
                    other => other?,
                };
                if let Some((hash, expires_at)) = &new.setup_token {
                    sqlx::query(
                    "INSERT INTO setup_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(hash)
                .bind(id)
                .bind(now)
                .bind(to_micros(*expires_at))
                .execute(&mut *tx)
                .await?;
                }
                row
            };
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
            out
        });
        row.try_into()
    }

    /// Issues a new setup token for a user, invalidating any earlier unused one.
    pub async fn replace_setup_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: OffsetDateTime,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE setup_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // A reset is for a forgotten password or a lost phone: whoever holds a session now is cut off.
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO setup_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(to_micros(expires_at))
            .execute(&mut *tx)
            .await?;
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Consumes a setup token and sets the password of its user, atomically: a token works once, and
    /// only before it expires and while the account is active. Returns the user, or `None`.
    pub async fn use_setup_token(
        &self,
        token_hash: &str,
        password_hash: &str,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Option<Account>, StoreError> {
        let now = to_micros(now);
        let row: Option<UserRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let appender = self.audit_appender();
            let user_id: Option<Uuid> = sqlx::query_scalar(
                "UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 AND user_id IN (SELECT id FROM users WHERE status = 'active') RETURNING user_id",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            let row = sqlx::query_as::<_, UserRow>(concat!(
                "UPDATE users SET password_hash = $2, must_change_password = FALSE, updated_at = $3 \
                 WHERE id = $1 RETURNING ",
                user_columns!()
            ))
            .bind(user_id)
            .bind(password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            audit.actor_id = Some(user_id);
            audit.target_user_id = Some(user_id);
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            Some(row)
        });
        row.map(Account::try_from).transpose()
    }

    pub async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE login = $1");
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(sql).bind(login).fetch_optional(pool).await)?;
        row.map(Account::try_from).transpose()
    }

    pub async fn account_by_id(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.map(Account::try_from).transpose()
    }

    /// Every account, ordered by login.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users ORDER BY login");
        let rows: Vec<UserRow> = with_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter().map(Account::try_from).collect()
    }

    /// Whether any active administrator exists (the server says how to create the first one otherwise).
    pub async fn has_active_admin(&self) -> Result<bool, StoreError> {
        let found: Option<i32> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT 1 FROM users WHERE role = 'admin' AND status = 'active' LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        Ok(found.is_some())
    }

    /// Sets an account's status. Disabling revokes every session of the account in the same transaction,
    /// so a disabled user is locked out at once. Returns the updated account, or `None` if unknown.
    pub async fn set_account_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Option<Account>, StoreError> {
        let now = to_micros(now);
        let row: Option<UserRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let out = {
                let row = sqlx::query_as::<_, UserRow>(concat!(
                    "UPDATE users SET status = $2, updated_at = $3 WHERE id = $1 RETURNING ",
                    user_columns!()
                ))
                .bind(id)
                .bind(status.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if row.is_none() {
                    return Ok(None);
                }
                if status == AccountStatus::Disabled {
                    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                row
            };
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
            out
        });
        row.map(Account::try_from).transpose()
    }

    /// Replaces the password hash. `keep_session` survives; every other session of the user is revoked,
    /// so a password change locks out whoever else might hold a session.
    pub async fn set_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep_session: Option<Uuid>,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE users SET password_hash = $2, must_change_password = FALSE, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($2 IS NULL OR id <> $2)",
            )
            .bind(id)
            .bind(keep_session)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a TOTP secret awaiting confirmation, replacing any earlier pending one.
    pub async fn set_totp_pending(&self, id: Uuid, secret: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE users SET totp_pending_secret = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(secret)
                .bind(to_micros(now))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Makes the pending secret the active one, recording `step` as used, and replaces the user's recovery
    /// codes with these (hashes), all unused — in one transaction with its audit entry. Fails (returns
    /// false) when the pending secret changed in between or the step was already used.
    pub async fn confirm_totp(
        &self,
        id: Uuid,
        secret: &str,
        step: i64,
        recovery_code_hashes: &[String],
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, \
             totp_last_step = $3, updated_at = $4 WHERE id = $1 AND totp_pending_secret = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $3)",
            )
            .bind(id)
            .bind(secret)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            for hash in recovery_code_hashes {
                sqlx::query("INSERT INTO totp_recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)")
                    .bind(hash)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Spends one of the user's recovery codes: true only for the first use of an unused code of theirs.
    pub async fn use_recovery_code(
        &self,
        user: Uuid,
        hash: &str,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE totp_recovery_codes SET used_at = $3 WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL",
            )
            .bind(hash)
            .bind(user)
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

    /// An administrator's reset of a lost authenticator: TOTP off, recovery codes gone and every session
    /// ended, in one transaction; the user enrols again after logging in. False for an unknown user.
    pub async fn reset_totp(&self, user: Uuid, audit: NewAuditEntry, now: OffsetDateTime) -> Result<bool, StoreError> {
        let now = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL, \
             updated_at = $2 WHERE id = $1",
            )
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = $1").bind(user).execute(&mut *tx).await?;
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(&self.audit_appender(), &audit, now).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records a TOTP time step as used, atomically across nodes: true only for the first use of a step
    /// not older than the last accepted one (RFC 6238 §5.2: a code is accepted once).
    pub async fn accept_totp_step(&self, id: Uuid, step: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_secret IS NOT NULL \
                 AND (totp_last_step IS NULL OR totp_last_step < $2)",
            )
            .bind(id)
            .bind(step)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }
}
