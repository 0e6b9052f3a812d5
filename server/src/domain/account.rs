//! An account as the server holds it: the public [`User`] plus the credentials that never leave the server.

use renkei_protocol::{AccountStatus, Person, Role, User};
use time::OffsetDateTime;
use uuid::Uuid;

/// A user with credentials. `Debug` omits the hash and secrets.
#[derive(Clone)]
pub struct Account {
    pub user: User,
    /// PHC string of the argon2id hash; `None` until the user has set a password with a setup token.
    pub password_hash: Option<String>,
    /// Base32 TOTP secret once enrolment is confirmed.
    pub totp_secret: Option<String>,
    /// Base32 secret of an enrolment started but not yet confirmed.
    pub totp_pending_secret: Option<String>,
}

impl Account {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    pub fn is_active(&self) -> bool {
        self.user.status == AccountStatus::Active
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// How other members see this user.
    pub fn person(&self) -> Person {
        Person {
            id: self.user.id,
            display_name: self.user.display_name.clone(),
            profession: self.user.profession,
            organisation: self.user.organisation.clone(),
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("id", &self.user.id).field("role", &self.user.role).finish_non_exhaustive()
    }
}

/// A live session as the authentication layer sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// When the owner last proved who they are: the login, or a re-entered password since.
    pub authenticated_at: OffsetDateTime,
}
