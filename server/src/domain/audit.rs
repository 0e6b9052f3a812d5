//! The audit log's hash chain: each entry's hash is SHA-256 over the previous entry's hash and a canonical
//! encoding of the entry, so changing, deleting, inserting or reordering any entry breaks the chain at
//! exactly that entry, and an anchor (the latest sequence number and hash kept elsewhere) reveals a
//! truncated tail.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry's fields in hashing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub group_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub client_addr: Option<String>,
    pub session_id: Option<Uuid>,
    pub details: String,
}

impl AuditFields {
    /// A JSON array in fixed order: unambiguous, and the same on every platform.
    fn canonical(&self) -> String {
        let id = |u: Option<Uuid>| u.map(|u| u.to_string());
        serde_json::json!([
            self.seq,
            self.at,
            id(self.actor_id),
            self.action,
            id(self.group_id),
            id(self.target_user_id),
            self.client_addr,
            id(self.session_id),
            self.details,
        ])
        .to_string()
    }

    pub fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.canonical().as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where verification found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's content no longer matches its hash (changed).
    Altered { seq: i64 },
    /// The entry does not follow the one before it (deleted, inserted or reordered entries).
    Unlinked { seq: i64 },
    /// A sequence number is missing before this one.
    Gap { expected: i64, found: i64 },
    /// The log ends before the anchor (its tail was cut off or rewritten).
    Truncated { anchor_seq: i64, last_seq: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { seq } => write!(f, "entry {seq} was altered"),
            Self::Unlinked { seq } => {
                write!(f, "entry {seq} does not follow the entry before it (deleted, inserted or reordered)")
            }
            Self::Gap { expected, found } => write!(f, "entries {expected}..{found} are missing (deleted)"),
            Self::Truncated { anchor_seq, last_seq } => {
                write!(f, "the log ends at entry {last_seq} but the anchor names entry {anchor_seq} (tail removed)")
            }
        }
    }
}

/// Checks entries (in sequence order, with their stored previous hash and hash) against the chain.
/// `anchor` is a (seq, hash) recorded earlier; it must still be in the log, unchanged.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = (&'a AuditFields, &'a str, &'a str)>,
    anchor: Option<(i64, &str)>,
) -> Result<i64, ChainBreak> {
    let mut prev = GENESIS.to_owned();
    let mut last = 0;
    let mut anchor_seen = anchor.is_none();
    for (expected, (fields, prev_hash, hash)) in (1_i64..).zip(entries) {
        if fields.seq != expected {
            return Err(if fields.seq > expected {
                ChainBreak::Gap { expected, found: fields.seq }
            } else {
                ChainBreak::Unlinked { seq: fields.seq }
            });
        }
        if prev_hash != prev {
            return Err(ChainBreak::Unlinked { seq: fields.seq });
        }
        if fields.hash(prev_hash) != hash {
            return Err(ChainBreak::Altered { seq: fields.seq });
        }
        if let Some((anchor_seq, anchor_hash)) = anchor
            && anchor_seq == fields.seq
        {
            if anchor_hash != hash {
                return Err(ChainBreak::Altered { seq: fields.seq });
            }
            anchor_seen = true;
        }
        prev = hash.to_owned();
        last = fields.seq;
    }
    match anchor {
        Some((anchor_seq, _)) if !anchor_seen => Err(ChainBreak::Truncated { anchor_seq, last_seq: last }),
        _ => Ok(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(AuditFields, String, String)> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let f = AuditFields {
                    seq,
                    at: seq * 1000,
                    actor_id: None,
                    action: "login".into(),
                    group_id: None,
                    target_user_id: None,
                    client_addr: Some("127.0.0.1".into()),
                    session_id: None,
                    details: "{}".into(),
                };
                let hash = f.hash(&prev);
                let entry = (f, prev.clone(), hash.clone());
                prev = hash;
                entry
            })
            .collect()
    }

    fn check(entries: &[(AuditFields, String, String)], anchor: Option<(i64, &str)>) -> Result<i64, ChainBreak> {
        verify(entries.iter().map(|(f, p, h)| (f, p.as_str(), h.as_str())), anchor)
    }

    #[test]
    fn every_kind_of_tampering_is_found_at_its_entry() {
        let good = chain(6);
        assert_eq!(check(&good, Some((6, &good[5].2.clone()))), Ok(6));
        let mut changed = good.clone();
        changed[2].0.action = "logout".into();
        assert_eq!(check(&changed, None), Err(ChainBreak::Altered { seq: 3 }));
        let mut deleted = good.clone();
        deleted.remove(3);
        assert_eq!(check(&deleted, None), Err(ChainBreak::Gap { expected: 4, found: 5 }));
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert!(check(&swapped, None).is_err());
        let mut renumbered = good.clone();
        renumbered.swap(1, 2);
        renumbered[1].0.seq = 2;
        renumbered[2].0.seq = 3;
        assert_eq!(check(&renumbered, None), Err(ChainBreak::Unlinked { seq: 2 }));
        let truncated = &good[..4];
        let anchor = good[5].2.clone();
        assert_eq!(check(truncated, Some((6, &anchor))), Err(ChainBreak::Truncated { anchor_seq: 6, last_seq: 4 }));
    }
}
