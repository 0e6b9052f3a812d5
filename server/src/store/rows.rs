//! Row types as the database returns them, and their conversion into domain types. Private to the store:
//! handlers never see a row.

use renkei_protocol::{AccountStatus, Profession, Role, User};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Account, SessionInfo, from_micros};

/// The columns of `users`, in the order of [`USER_COLUMNS`].
#[derive(Debug, sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    login: String,
    display_name: String,
    kana: Option<String>,
    profession: String,
    organisation: String,
    phone: Option<String>,
    role: String,
    status: String,
    password_hash: Option<String>,
    must_change_password: bool,
    totp_secret: Option<String>,
    totp_pending_secret: Option<String>,
    created_at: i64,
}

/// Column list matching [`UserRow`], as a literal so SQL texts stay `&'static str` (`concat!`).
macro_rules! user_columns {
    () => {
        "id, login, display_name, kana, profession, organisation, phone, role, status, password_hash, \
         must_change_password, totp_secret, totp_pending_secret, created_at"
    };
}
pub(super) use user_columns;

impl TryFrom<UserRow> for Account {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: unknown {what}", row.id));
        let profession = Profession::parse(&row.profession).ok_or_else(|| corrupt("profession"))?;
        let role = Role::parse(&row.role).ok_or_else(|| corrupt("role"))?;
        let status = AccountStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?;
        Ok(Account {
            user: User {
                id: row.id,
                login: row.login,
                display_name: row.display_name,
                kana: row.kana,
                profession,
                organisation: row.organisation,
                phone: row.phone,
                role,
                status,
                totp_enabled: row.totp_secret.is_some(),
                must_change_password: row.must_change_password,
                created_at: from_micros(row.created_at),
            },
            password_hash: row.password_hash,
            totp_secret: row.totp_secret,
            totp_pending_secret: row.totp_pending_secret,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    client_addr: Option<String>,
    user_agent: Option<String>,
    authenticated_at: i64,
}

/// Column list matching [`SessionRow`]. A session from before `authenticated_at` existed was proven at
/// its login.
macro_rules! session_columns {
    () => {
        "id, created_at, last_seen_at, expires_at, client_addr, user_agent, \
         COALESCE(authenticated_at, created_at) AS authenticated_at"
    };
}
pub(super) use session_columns;

impl From<SessionRow> for SessionInfo {
    fn from(row: SessionRow) -> Self {
        SessionInfo {
            id: row.id,
            created_at: from_micros(row.created_at),
            last_seen_at: from_micros(row.last_seen_at),
            expires_at: from_micros(row.expires_at),
            client_addr: row.client_addr,
            user_agent: row.user_agent,
            authenticated_at: from_micros(row.authenticated_at),
        }
    }
}

/// A session joined with its user, for authenticating a request in one round trip. The user's columns keep
/// their names; the session's carry an `s_` prefix so the two `id`s do not collide.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AuthRow {
    #[sqlx(flatten)]
    pub(super) user: UserRow,
    s_id: Uuid,
    s_created_at: i64,
    s_last_seen_at: i64,
    s_expires_at: i64,
    s_client_addr: Option<String>,
    s_user_agent: Option<String>,
    s_authenticated_at: i64,
}

/// The session columns of [`AuthRow`], prefixed.
macro_rules! auth_session_columns {
    () => {
        "s.id AS s_id, s.created_at AS s_created_at, s.last_seen_at AS s_last_seen_at, \
         s.expires_at AS s_expires_at, s.client_addr AS s_client_addr, s.user_agent AS s_user_agent, \
         COALESCE(s.authenticated_at, s.created_at) AS s_authenticated_at"
    };
}
pub(super) use auth_session_columns;

impl AuthRow {
    pub(super) fn session(&self) -> SessionInfo {
        SessionInfo {
            id: self.s_id,
            created_at: from_micros(self.s_created_at),
            last_seen_at: from_micros(self.s_last_seen_at),
            expires_at: from_micros(self.s_expires_at),
            client_addr: self.s_client_addr.clone(),
            user_agent: self.s_user_agent.clone(),
            authenticated_at: from_micros(self.s_authenticated_at),
        }
    }
}

macro_rules! audit_columns {
    () => {
        "seq, at, actor_id, action, group_id, target_user_id, client_addr, session_id, details, prev_hash, hash, mac"
    };
}
pub(super) use audit_columns;
