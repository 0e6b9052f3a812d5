//! Opaque random tokens (sessions, setup tokens). Only their SHA-256 is stored, so a copy of the database
//! does not let anyone log in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renkei_protocol::Sensitive;
use sha2::{Digest, Sha256};

/// A new token with 256 bits of randomness, `rk_` + URL-safe base64, and its hash for storage.
pub fn generate(prefix: &str) -> std::io::Result<(Sensitive, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hashed = hash(&token);
    Ok((Sensitive::new(token), hashed))
}

/// Hex SHA-256 of a token, as stored.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Session tokens start with this, so a leaked one is recognisable in a secret scanner.
pub const SESSION_PREFIX: &str = "rks_";
/// Setup tokens start with this.
pub const SETUP_PREFIX: &str = "rku_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = generate(SESSION_PREFIX).unwrap();
        let (b, hb) = generate(SESSION_PREFIX).unwrap();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(a.expose().starts_with(SESSION_PREFIX));
        assert_eq!(a.expose().len(), SESSION_PREFIX.len() + 43);
        assert_eq!(hash(a.expose()), ha);
        assert_eq!(ha.len(), 64);
    }
}
