//! argon2id password hashing, off the async worker threads.
//!
//! Parameters are OWASP's minimum for argon2id (19 MiB, t=2, p=1). Verification of an unknown login runs
//! against a dummy hash with the same parameters, so response time does not reveal which logins exist.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use renkei_protocol::Sensitive;

fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters, so construction cannot fail.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password nobody knows, computed once, so an unknown login costs a real verification.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    // Without an OS random source the dummy is still a valid hash of a fixed string nobody can log in with,
    // because only unknown logins are ever checked against it.
    let _ = getrandom::fill(&mut random);
    hasher().hash_password(&random).map(|h| h.to_string()).unwrap_or_default()
});

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub async fn hash(password: &Sensitive) -> Result<String, HashError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError::Hash(e.to_string()))
    })
    .await?
}

/// True when `password` matches `stored`. With `stored = None` (unknown login, or no password set yet)
/// it verifies against the dummy hash and returns false, taking the same time as a real check.
pub async fn verify(password: &Sensitive, stored: Option<String>) -> Result<bool, HashError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = hasher().verify_password(password.expose().as_bytes(), phc.as_str()).is_ok();
        ok && known
    })
    .await
    .map_err(HashError::from)
}

/// Makes sure the dummy hash exists before the first login, so the first unknown login is not slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let pw = Sensitive::new("correct horse battery");
        let phc = hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&pw, Some(phc.clone())).await.unwrap());
        assert!(!verify(&Sensitive::new("wrong horse battery"), Some(phc)).await.unwrap());
        assert!(!verify(&pw, None).await.unwrap());
    }
}
