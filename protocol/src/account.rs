//! Accounts, sessions and TOTP: request and response bodies of `/api/v1/auth`, `/api/v1/me` and
//! `/api/v1/admin/users`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Sensitive;

wire_enum!(
    /// A professional's profession, as registered by an administrator. Every post will carry it (rule 8).
    Profession {
        Physician = "physician",
        Dentist = "dentist",
        Pharmacist = "pharmacist",
        Nurse = "nurse",
        Therapist = "therapist",
        CareManager = "care_manager",
        CareWorker = "care_worker",
        SupportCentre = "support_centre",
        Msw = "msw",
        Government = "government",
        Other = "other",
    }
);

wire_enum!(
    /// What an account may do: members work in groups, administrators register and audit members.
    Role { Member = "member", Admin = "admin" }
);

wire_enum!(
    AccountStatus { Active = "active", Disabled = "disabled" }
);

/// An account as its owner and administrators see it. Never carries a password hash or TOTP secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    /// The name's reading in kana (フリガナ), for finding and sorting.
    pub kana: Option<String>,
    pub profession: Profession,
    pub organisation: String,
    pub phone: Option<String>,
    pub role: Role,
    pub status: AccountStatus,
    /// True once the owner has confirmed a TOTP enrolment.
    pub totp_enabled: bool,
    /// True while the account still has the initial password an administrator set, or none at all.
    pub must_change_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: Sensitive,
    /// The current TOTP code, when the account has TOTP enabled — or one of its unused recovery codes.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// How the session is carried: a bearer token in the answer (programs, the default), or an
    /// `HttpOnly; Secure; SameSite=Strict` cookie no script can read (browsers).
    #[serde(default)]
    pub session: SessionTransport,
}

/// How a new session is handed to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionTransport {
    /// The token is in the answer's `token`; send it as `Authorization: Bearer`.
    #[default]
    Bearer,
    /// The token is set as the `renkei_session` cookie and is not in the answer. Every state-changing
    /// request carried by the cookie must come with an allowed `Origin`.
    Cookie,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token, shown once (the server keeps only its hash). Absent for a cookie session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Sensitive>,
    pub session_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub user: User,
    /// What this session must do before anything else, if anything.
    pub pending: Option<PendingStep>,
}

/// A step a session must complete before it may use the rest of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PendingStep {
    /// Change the initial password (`POST /api/v1/me/password`).
    ChangePassword,
    /// Enrol a second factor (`POST /api/v1/me/totp/enroll`, then `/confirm`).
    EnrollTotp,
}

/// Sets the first password of an account with the one-time setup token an administrator handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupPasswordRequest {
    pub setup_token: Sensitive,
    pub new_password: Sensitive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: Sensitive,
    pub new_password: Sensitive,
}

/// A new, not yet confirmed TOTP secret. It becomes active when a code from it is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into an authenticator app by hand.
    pub secret: Sensitive,
    /// `otpauth://totp/...` URI, for a QR code.
    pub otpauth_uri: Sensitive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// TOTP is on. The recovery codes are shown this once: each signs in once in place of a 6-digit code
/// (a lost or broken phone), typed into `totp_code` at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotpConfirmed {
    pub user: User,
    pub recovery_codes: Vec<Sensitive>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute expiry; the session also ends after the idle timeout.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// The password (and the TOTP code, when enrolled) entered again, to renew a session's proof of identity
/// before an administrator's action that changes accounts, groups or exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticateRequest {
    pub password: Sensitive,
    #[serde(default)]
    pub totp_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub login: String,
    pub display_name: String,
    /// The name's reading in kana (フリガナ).
    #[serde(default)]
    pub kana: Option<String>,
    pub profession: Profession,
    pub organisation: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default = "default_role")]
    pub role: Role,
    /// An initial password the user must change at first login. Without it the server issues a one-time
    /// setup token instead, which is the better way: the administrator never knows the password.
    #[serde(default)]
    pub initial_password: Option<Sensitive>,
}

fn default_role() -> Role {
    Role::Member
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    pub setup: Option<SetupToken>,
}

/// A one-time token with which a new user sets their own password (`renkei setup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetupToken {
    pub token: Sensitive,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profession_identifiers_round_trip() {
        for &p in Profession::ALL {
            assert_eq!(Profession::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
        }
        assert_eq!(Profession::parse("surgeon"), None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<LoginRequest>(r#"{"login":"a","password":"b","admin":true}"#);
        assert!(err.is_err());
    }

    #[test]
    fn create_user_defaults_to_member_without_initial_password() {
        let req: CreateUserRequest = serde_json::from_str(
            r#"{"login":"sato","display_name":"佐藤","profession":"nurse","organisation":"訪問看護ステーション"}"#,
        )
        .unwrap();
        assert_eq!(req.role, Role::Member);
        assert!(req.initial_password.is_none());
        assert!(req.phone.is_none());
    }
}

/// One entry of the audit log, as administrators see it: who did what, where and when — never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub group_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
    /// What the act concerned, as a JSON object (ids, versions, matched terms — never bodies or
    /// identifiers).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// SHA-256 over the previous entry's hash and this entry (hex).
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// One session of a user, for administrators: when it began, was last used, and ended, and how long it
/// lasted (MHLW guideline 6.0: who was logged in, when, for how long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionRecord {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Logout, revocation, or expiry (absolute or idle); `None` while the session is live.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// From start to end (or to now, while live), in seconds.
    pub duration_seconds: i64,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionHistory {
    pub sessions: Vec<SessionRecord>,
}

wire_enum!(
    /// How an audit chain is broken: an entry changed, entries deleted, inserted or reordered, a gap in
    /// the numbering, a log that ends before the anchor, or an entry without a valid MAC under the audit
    /// key (written or rewritten by someone without the key).
    AuditBreak { Altered = "altered", Unlinked = "unlinked", Gap = "gap", Truncated = "truncated", Forged = "forged" }
);

/// The audit chain as the server verified it just now (and against the configured anchor, if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    /// True when every entry is unchanged, in order, and the log reaches the anchor.
    pub intact: bool,
    /// Number of entries verified.
    pub entries: i64,
    /// The last entry: its sequence number, time and hash — write them down (or print them) as an anchor.
    pub last_seq: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_at: Option<OffsetDateTime>,
    pub last_hash: Option<String>,
    /// The anchor the chain was checked against (`SEQ HASH`), from the request or the configured file.
    pub anchor: Option<String>,
    /// What is wrong, when not intact, in English for logs (e.g. "entry 12 was altered").
    pub problem: Option<String>,
    /// The kind of break, for a client to say it in its own words.
    pub break_kind: Option<AuditBreak>,
    /// The entry where the chain breaks (for a truncated log, the anchor's entry).
    pub break_seq: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
}

/// The acts the audit log records, as stable action names: what `action` filters by and what each
/// entry's `action` is.
pub mod audit_action {
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const REAUTHENTICATED: &str = "reauthenticated";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const SESSION_EXPIRED: &str = "session_expired";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_SET: &str = "password_set";
    pub const TOTP_ENROLLED: &str = "totp_enrolled";
    pub const TOTP_FAILED: &str = "totp_failed";
    pub const TOTP_RECOVERY_USED: &str = "totp_recovery_used";
    pub const TOTP_RESET: &str = "totp_reset";
    pub const ACCOUNT_CREATED: &str = "account_created";
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    pub const ACCOUNT_ENABLED: &str = "account_enabled";
    pub const SETUP_TOKEN_ISSUED: &str = "setup_token_issued";
    pub const GROUP_OPENED: &str = "group_opened";
    pub const GROUP_ARCHIVED: &str = "group_archived";
    pub const HANDOVER_REQUESTED: &str = "handover_requested";
    pub const HANDOVER_ANSWERED: &str = "handover_answered";
    pub const CONSENT_RECORDED: &str = "consent_recorded";
    pub const INVITATION_SENT: &str = "invitation_sent";
    pub const INVITATION_ANSWERED: &str = "invitation_answered";
    pub const INVITATION_EXPIRED: &str = "invitation_expired";
    pub const MEMBER_REMOVED: &str = "member_removed";
    pub const MEMBER_LEFT: &str = "member_left";
    pub const COMMUNITY_GROUP_CREATED: &str = "community_group_created";
    pub const COMMUNITY_MEMBER_ADDED: &str = "community_member_added";
    pub const EMERGENCY_OVERRIDE: &str = "emergency_override";
    pub const POSTS_READ: &str = "posts_read";
    pub const ATTACHMENT_UPLOADED: &str = "attachment_uploaded";
    pub const ATTACHMENT_READ: &str = "attachment_read";
    pub const ATTACHMENTS_REMOVED: &str = "attachments_removed";
    pub const AUDIT_QUERIED: &str = "audit_queried";
    pub const AUDIT_EXPORTED: &str = "audit_exported";
    pub const AUDIT_VERIFIED: &str = "audit_verified";
    pub const TIMELINE_EXPORTED: &str = "timeline_exported";
    pub const ACCESS_REPORT_EXPORTED: &str = "access_report_exported";
    pub const CARE_RECORD_EXPORTED: &str = "care_record_exported";
    pub const GROUP_PURGED: &str = "group_purged";
    pub const OFFICE_RULES_CHANGED: &str = "office_rules_changed";
    pub const BACKUP_CREATED: &str = "backup_created";
    pub const DATABASE_RESTORED: &str = "database_restored";

    /// Every action name, for validating a filter and listing the choices.
    pub const ALL: &[&str] = &[
        LOGIN,
        LOGIN_FAILED,
        LOGOUT,
        REAUTHENTICATED,
        SESSION_REVOKED,
        SESSION_EXPIRED,
        PASSWORD_CHANGED,
        PASSWORD_SET,
        TOTP_ENROLLED,
        TOTP_FAILED,
        TOTP_RECOVERY_USED,
        TOTP_RESET,
        ACCOUNT_CREATED,
        ACCOUNT_DISABLED,
        ACCOUNT_ENABLED,
        SETUP_TOKEN_ISSUED,
        GROUP_OPENED,
        GROUP_ARCHIVED,
        HANDOVER_REQUESTED,
        HANDOVER_ANSWERED,
        CONSENT_RECORDED,
        INVITATION_SENT,
        INVITATION_ANSWERED,
        INVITATION_EXPIRED,
        MEMBER_REMOVED,
        MEMBER_LEFT,
        COMMUNITY_GROUP_CREATED,
        COMMUNITY_MEMBER_ADDED,
        EMERGENCY_OVERRIDE,
        POSTS_READ,
        ATTACHMENT_UPLOADED,
        ATTACHMENT_READ,
        ATTACHMENTS_REMOVED,
        AUDIT_QUERIED,
        AUDIT_EXPORTED,
        AUDIT_VERIFIED,
        TIMELINE_EXPORTED,
        ACCESS_REPORT_EXPORTED,
        CARE_RECORD_EXPORTED,
        GROUP_PURGED,
        OFFICE_RULES_CHANGED,
        BACKUP_CREATED,
        DATABASE_RESTORED,
    ];
}
