//! Recording security-relevant acts in the audit log (MHLW guideline 6.0, ch. 17). Every act is one entry:
//! who, what, which group, which user, from where, in which session, when — never post bodies, passwords,
//! tokens or patient identifiers. `renkei-server audit verify` recomputes the hash chain.

use std::os::unix::fs::OpenOptionsExt;

use anyhow::Context;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::{self, audit};
use crate::store::{NewAuditEntry, Store, StoreError};

/// The node's audit recorder. The mutex serialises this node's appends (the chain needs one writer at a
/// time); PostgreSQL nodes also take an advisory lock inside the transaction.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    lock: Mutex<()>,
}

/// The acts recorded, as stable action names (shared with clients through the protocol crate).
pub use renkei_protocol::audit_action as action;

/// Who did it and from where, taken from the caller's session (`From<&AnySession>`), or only where from
/// for someone not signed in (`From<&ClientInfo>`; both in `auth::extract`).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store, lock: Mutex::new(()) }
    }

    /// The entry for an act that changes the database: the store method performing the act appends it in
    /// the act's own transaction, so the act and its entry are committed together or not at all.
    pub fn entry(
        action: &'static str,
        actor: &Actor,
        group: Option<Uuid>,
        target: Option<Uuid>,
        details: serde_json::Value,
    ) -> NewAuditEntry {
        NewAuditEntry {
            action,
            actor_id: actor.id,
            group_id: group,
            target_user_id: target,
            client_addr: actor.client_addr.clone(),
            session_id: actor.session_id,
            details,
        }
    }

    /// Records an act that changes nothing else (a read, an export, a refused attempt) before its result
    /// leaves the server: when the entry cannot be written, the caller answers `503` and discloses nothing.
    pub async fn record(
        &self,
        action: &'static str,
        actor: &Actor,
        group: Option<Uuid>,
        target: Option<Uuid>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let entry = Self::entry(action, actor, group, target, details);
        let _guard = self.lock.lock().await;
        // Boxed: callers queue on the lock above, and each waiting caller's future would otherwise carry
        // room for the whole database write (~9 KiB).
        match Box::pin(self.store.append_audit(&entry, domain::now())).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = ?e, action, "AUDIT ENTRY NOT RECORDED: the act is refused");
                Err(e)
            }
        }
    }
}

/// Verifies the whole chain (and the anchor, if given; and the MACs, when the store has the audit key),
/// a page at a time; returns the last sequence number.
pub async fn verify(
    store: &Store,
    anchor: Option<(i64, String)>,
) -> Result<Result<i64, audit::ChainBreak>, StoreError> {
    const PAGE: i64 = 5_000;
    let mut verifier = audit::Verifier::new(anchor.as_ref().map(|(s, h)| (*s, h.as_str())), store.audit_key());
    let mut after = 0;
    loop {
        let page = store.audit_rows(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.fields().seq;
        for row in &page {
            let fields = row.fields();
            if let Err(broken) = verifier.next((&fields, &row.prev_hash, &row.hash, row.mac.as_deref())) {
                return Ok(Err(broken));
            }
        }
    }
    Ok(verifier.finish())
}

/// The latest entry as an anchor: (seq, hash).
pub async fn anchor(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    Ok(store.audit_last().await?.map(|e| (e.seq, e.hash)))
}

/// The anchor file's line, `SEQ HASH`, as (seq, hash); `None` for a malformed line.
pub fn parse_anchor(text: &str) -> Option<(i64, String)> {
    let (seq, hash) = text.trim().split_once(' ')?;
    let hash = hash.trim();
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    Some((seq.parse::<i64>().ok()?, hash.to_owned())).filter(|_| valid)
}

/// The anchor kept in the configured (or default) anchor file, if there is one yet.
pub fn configured_anchor(config: &Config) -> anyhow::Result<Option<(i64, String)>> {
    let path = config.effective_audit_anchor_file();
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => {
            parse_anchor(&text).map(Some).with_context(|| format!("{}: expected one line `SEQ HASH`", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The audit key from the configured (or default) key file; made on first use (32 random bytes, the file
/// 0600), keyed from the entry after the last one. The database names the key that seals its log (by
/// fingerprint): another key, or none where one is registered, is refused — a second key would make the
/// entries it seals look forged to every other node, and the earlier ones could not be checked.
pub async fn load_or_create_key(config: &Config, store: &Store) -> anyhow::Result<audit::AuditKey> {
    let path = config.effective_audit_key_file();
    let key = read_or_make_key(&path, store).await?;
    let registered = store.register_audit_key(&key.fingerprint(), crate::domain::now()).await?;
    if registered != key.fingerprint() {
        anyhow::bail!(
            "the audit log is sealed with another key (fingerprint {registered}) than {} ({}): every node and \
             command needs the same key file — copy it from the node that made it (set audit_key_file if it \
             lives elsewhere)",
            path.display(),
            key.fingerprint()
        );
    }
    Ok(key)
}

async fn read_or_make_key(path: &std::path::Path, store: &Store) -> anyhow::Result<audit::AuditKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            // An operator may keep the key root-owned and readable by the service's group only; a key this
            // process cannot tighten is said, not refused.
            if let Err(e) = crate::private_files::tighten_if_present(path) {
                tracing::warn!(path = %path.display(), error = %e, "the audit key is readable by others and cannot be tightened");
            }
            audit::AuditKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(fingerprint) = store.registered_audit_key().await? {
                anyhow::bail!(
                    "the audit log is sealed with a key (fingerprint {fingerprint}) but its key file {} is \
                     missing: copy it from the node that made it, or restore it with the database's backup (set \
                     audit_key_file if it lives elsewhere)",
                    path.display()
                );
            }
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness for the audit key: {e}"))?;
            let keyed_from = store.audit_last().await?.map_or(1, |e| e.seq + 1);
            let key = audit::AuditKey::new(key, keyed_from);
            if let Some(dir) = path.parent() {
                crate::private_files::create_private_dir(dir)?;
            }
            // Written whole or not at all, and never over a key another process made meanwhile.
            let partial = path.with_extension(format!("partial.{}", std::process::id()));
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .and_then(|mut f| std::io::Write::write_all(&mut f, key.to_file_text().as_bytes()))
                .with_context(|| format!("writing {}", partial.display()))?;
            let linked = std::fs::hard_link(&partial, path);
            std::fs::remove_file(&partial)?;
            match linked {
                Ok(()) => {}
                // Another node sharing the file made it first: that key is the one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path)?;
                    return audit::AuditKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
            tracing::info!(path = %path.display(), keyed_from, "audit key created: back it up with the database");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
