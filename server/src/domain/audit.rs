//! The audit log's hash chain: each entry's hash is SHA-256 over the previous entry's hash and a canonical
//! encoding of the entry, so changing, deleting, inserting or reordering any entry breaks the chain at
//! exactly that entry, and an anchor (the latest sequence number and hash kept elsewhere) reveals a
//! truncated tail. A key kept outside the database ([`AuditKey`]) adds each entry's HMAC, so that whoever
//! can write the database but cannot read the key cannot append or rewrite an entry that verifies.

use hmac::{Hmac, Mac};
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

/// The key of the keyed chain and the first entry written with it: entries from `keyed_from` on must carry
/// HMAC-SHA256(key, hash); earlier ones (written before the key existed) carry none.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    key: [u8; 32],
    pub keyed_from: i64,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("keyed_from", &self.keyed_from).finish_non_exhaustive()
    }
}

const KEY_FILE_HEADER: &str = "renkei audit key v1";

impl AuditKey {
    pub fn new(key: [u8; 32], keyed_from: i64) -> Self {
        Self { key, keyed_from }
    }

    /// The entry's MAC: HMAC-SHA256 over its hash (which covers the whole chain before it), in hex.
    pub fn mac(&self, hash: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes a key of any length");
        };
        mac.update(hash.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Names the key without revealing it: the first 16 hex digits of an HMAC of a fixed text.
    pub fn fingerprint(&self) -> String {
        self.mac("renkei audit key fingerprint")[..16].to_owned()
    }

    /// The key file's text: a header, the key in hex, the first keyed entry.
    pub fn to_file_text(&self) -> String {
        let hex: String = self.key.iter().map(|b| format!("{b:02x}")).collect();
        format!("{KEY_FILE_HEADER}\nkey {hex}\nkeyed_from {}\n", self.keyed_from)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(format!("not an audit key file (its first line must be `{KEY_FILE_HEADER}`)"));
        }
        let (mut key, mut keyed_from) = (None, None);
        for line in lines {
            match line.split_once(' ') {
                Some(("key", hex)) if hex.len() == 64 => {
                    let bytes: Result<Vec<u8>, _> =
                        (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)).collect();
                    key = bytes.ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
                }
                Some(("keyed_from", n)) => keyed_from = n.parse::<i64>().ok().filter(|n| *n >= 1),
                _ => return Err(format!("unexpected line `{line}`")),
            }
        }
        match (key, keyed_from) {
            (Some(key), Some(keyed_from)) => Ok(Self { key, keyed_from }),
            _ => Err("expected a `key` line of 64 hex digits and a `keyed_from` line".into()),
        }
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
    /// The entry hashes correctly but carries no valid MAC under the audit key: written or rewritten by
    /// someone without the key.
    Forged { seq: i64 },
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
            Self::Forged { seq } => {
                write!(f, "entry {seq} has no valid MAC under the audit key (written or rewritten without the key)")
            }
        }
    }
}

/// One stored entry as verification reads it: its fields, the previous hash it names, its hash, its MAC.
pub type StoredEntry<'a> = (&'a AuditFields, &'a str, &'a str, Option<&'a str>);

/// Checks entries (in sequence order). `anchor` is a (seq, hash) recorded earlier; it must still be in the
/// log, unchanged. With `key`, every entry from its `keyed_from` on must carry its MAC.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = StoredEntry<'a>>,
    anchor: Option<(i64, &str)>,
    key: Option<&AuditKey>,
) -> Result<i64, ChainBreak> {
    let mut verifier = Verifier::new(anchor, key);
    for entry in entries {
        verifier.next(entry)?;
    }
    verifier.finish()
}

/// [`verify`] one entry at a time, so that a log of any length is checked page by page in constant memory.
#[derive(Debug)]
pub struct Verifier<'k> {
    prev: String,
    last: i64,
    anchor: Option<(i64, String)>,
    anchor_seen: bool,
    key: Option<&'k AuditKey>,
}

impl<'k> Verifier<'k> {
    pub fn new(anchor: Option<(i64, &str)>, key: Option<&'k AuditKey>) -> Self {
        Self {
            prev: GENESIS.to_owned(),
            last: 0,
            anchor_seen: anchor.is_none(),
            anchor: anchor.map(|(seq, hash)| (seq, hash.to_owned())),
            key,
        }
    }

    /// Checks the next entry in sequence order.
    pub fn next(&mut self, (fields, prev_hash, hash, mac): StoredEntry<'_>) -> Result<(), ChainBreak> {
        let expected = self.last + 1;
        if fields.seq != expected {
            return Err(if fields.seq > expected {
                ChainBreak::Gap { expected, found: fields.seq }
            } else {
                ChainBreak::Unlinked { seq: fields.seq }
            });
        }
        if prev_hash != self.prev {
            return Err(ChainBreak::Unlinked { seq: fields.seq });
        }
        if fields.hash(prev_hash) != hash {
            return Err(ChainBreak::Altered { seq: fields.seq });
        }
        if let Some(key) = self.key
            && fields.seq >= key.keyed_from
            && mac != Some(key.mac(hash).as_str())
        {
            return Err(ChainBreak::Forged { seq: fields.seq });
        }
        if let Some((anchor_seq, anchor_hash)) = &self.anchor
            && *anchor_seq == fields.seq
        {
            if anchor_hash != hash {
                return Err(ChainBreak::Altered { seq: fields.seq });
            }
            self.anchor_seen = true;
        }
        hash.clone_into(&mut self.prev);
        self.last = fields.seq;
        Ok(())
    }

    /// The last sequence number, once every entry has been checked; a log that ends before the anchor is
    /// truncated.
    pub fn finish(self) -> Result<i64, ChainBreak> {
        match self.anchor {
            Some((anchor_seq, _)) if !self.anchor_seen => {
                Err(ChainBreak::Truncated { anchor_seq, last_seq: self.last })
            }
            _ => Ok(self.last),
        }
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
        verify(entries.iter().map(|(f, p, h)| (f, p.as_str(), h.as_str(), None)), anchor, None)
    }

    #[test]
    fn a_keyed_chain_finds_an_entry_rehashed_without_the_key() {
        let key = AuditKey::new([7; 32], 3);
        let mut entries = chain(5);
        let macs: Vec<Option<String>> = entries.iter().map(|(f, _, h)| (f.seq >= 3).then(|| key.mac(h))).collect();
        let run = |entries: &[(AuditFields, String, String)], macs: &[Option<String>]| {
            verify(
                entries.iter().zip(macs).map(|((f, p, h), m)| (f, p.as_str(), h.as_str(), m.as_deref())),
                None,
                Some(&key),
            )
        };
        assert_eq!(run(&entries, &macs), Ok(5));
        // Rewrite entry 4 and recompute every hash from it on: the plain chain verifies, the keyed one not.
        entries[3].0.action = "logout".into();
        let mut prev = entries[2].2.clone();
        for entry in entries.iter_mut().skip(3) {
            entry.1 = prev.clone();
            entry.2 = entry.0.hash(&prev);
            prev = entry.2.clone();
        }
        assert_eq!(check(&entries, None), Ok(5));
        assert_eq!(run(&entries, &macs), Err(ChainBreak::Forged { seq: 4 }));
        // An entry written before the key needs no MAC; one after it does.
        let mut stripped = macs.clone();
        stripped[4] = None;
        assert_eq!(run(&chain(5), &stripped), Err(ChainBreak::Forged { seq: 5 }));
        // The key file round-trips.
        assert_eq!(AuditKey::parse(&key.to_file_text()), Ok(key.clone()));
        assert!(AuditKey::parse("key 00").is_err());
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
