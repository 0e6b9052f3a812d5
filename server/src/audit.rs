//! Recording security-relevant acts in the audit log (MHLW guideline 6.0, ch. 17). Every act is one entry:
//! who, what, which group, which user, from where, in which session, when — never post bodies, passwords,
//! tokens or patient identifiers. `renkei-server audit verify` recomputes the hash chain.

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::auth::{AnySession, ClientInfo};
use crate::domain::{self, audit};
use crate::store::{NewAuditEntry, Store, StoreError};

/// The node's audit recorder. The mutex serialises this node's appends (the chain needs one writer at a
/// time); PostgreSQL nodes also take an advisory lock inside the transaction.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    lock: Mutex<()>,
}

/// The acts recorded, as stable action names.
pub mod action {
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
    pub const AUDIT_QUERIED: &str = "audit_queried";
    pub const AUDIT_EXPORTED: &str = "audit_exported";
    pub const AUDIT_VERIFIED: &str = "audit_verified";
    pub const TIMELINE_EXPORTED: &str = "timeline_exported";
    pub const ACCESS_REPORT_EXPORTED: &str = "access_report_exported";
    pub const BACKUP_CREATED: &str = "backup_created";
    pub const DATABASE_RESTORED: &str = "database_restored";
}

/// Who did it and from where, taken from the caller's session.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
}

impl From<&AnySession> for Actor {
    fn from(s: &AnySession) -> Self {
        Self { id: Some(s.account.id()), client_addr: s.session.client_addr.clone(), session_id: Some(s.session.id) }
    }
}

impl Actor {
    pub fn anonymous(client: &ClientInfo) -> Self {
        Self { id: None, client_addr: Some(client.addr.clone()), session_id: None }
    }
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store, lock: Mutex::new(()) }
    }

    /// Records one act. A failure to record is logged loudly; the act itself already happened.
    pub async fn record(
        &self,
        action: &'static str,
        actor: &Actor,
        group: Option<Uuid>,
        target: Option<Uuid>,
        details: serde_json::Value,
    ) {
        let entry = NewAuditEntry {
            action,
            actor_id: actor.id,
            group_id: group,
            target_user_id: target,
            client_addr: actor.client_addr.clone(),
            session_id: actor.session_id,
            details: details.to_string(),
        };
        let _guard = self.lock.lock().await;
        // Boxed: callers queue on the lock above, and each waiting caller's future would otherwise carry
        // room for the whole database write (~9 KiB).
        if let Err(e) = Box::pin(self.store.append_audit(&entry, domain::now())).await {
            tracing::error!(error = ?e, action, "AUDIT ENTRY NOT RECORDED");
        }
    }
}

/// Verifies the whole chain (and the anchor, if given); returns the last sequence number.
pub async fn verify(
    store: &Store,
    anchor: Option<(i64, String)>,
) -> Result<Result<i64, audit::ChainBreak>, StoreError> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_rows(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.fields().seq;
        rows.extend(page);
    }
    let fields: Vec<_> = rows.iter().map(|r| (r.fields(), r.prev_hash.as_str(), r.hash.as_str())).collect();
    Ok(audit::verify(fields.iter().map(|(f, p, h)| (f, *p, *h)), anchor.as_ref().map(|(s, h)| (*s, h.as_str()))))
}

/// The latest entry as an anchor line: `SEQ HASH`.
pub async fn anchor(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    let mut after = 0;
    let mut last = None;
    loop {
        let page = store.audit_rows(after, 10_000).await?;
        let Some(row) = page.last() else { break };
        after = row.fields().seq;
        last = Some((after, row.hash.clone()));
    }
    Ok(last)
}
