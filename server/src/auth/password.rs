//! argon2id password hashing, on threads of its own.
//!
//! Parameters are OWASP's minimum for argon2id (19 MiB, t=2, p=1). Verification of an unknown login runs
//! against a dummy hash with the same parameters, so response time does not reveal which logins exist.
//!
//! Hashing runs on one thread per core, each with its own 19 MiB working memory allocated once and
//! reused. The argon2 crate's own API allocates and frees 19 MiB per hash, and glibc answers a freed block
//! that size by raising its mmap threshold and keeping later ones in the heap, so a login storm grew the
//! server by gigabytes (docs/decisions/0004-the-post-path.md). Here the memory is bounded by the core count, and a login storm waits its turn instead of
//! taking every core from the members who are posting.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    hash_now(&random).unwrap_or_default()
});

thread_local! {
    /// This hashing thread's argon2 working memory.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes argon2 into `out` with this thread's working memory.
fn compute(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), HashError> {
    MEMORY
        .with_borrow_mut(|memory| {
            let needed = argon.params().block_count();
            if memory.len() < needed {
                memory.resize(needed, Block::default());
            }
            argon.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
        })
        .map_err(|e| HashError::Hash(e.to_string()))
}

/// A new PHC string for `password`, with a random salt (on the calling thread).
fn hash_now(password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError::Hash(e.to_string()))?;
    let argon = hasher();
    let mut out = [0u8; 32];
    compute(&argon, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| HashError::Hash(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(|e| HashError::Hash(e.to_string()))?),
        hash: Some(Output::new(&out).map_err(|e| HashError::Hash(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// True when `password` hashes to `phc` under the parameters `phc` names (on the calling thread).
fn verify_now(password: &[u8], phc: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = Version::try_from(parsed.version.unwrap_or(Version::V0x13.into())).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut out = vec![0u8; expected.len()];
        compute(&Argon2::new(algorithm, version, params), password, &salt, &mut out).ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing threads are gone")]
    Pool,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, fed through one queue.
static POOL: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("renkei-argon2-{i}")).spawn(move || {
            loop {
                let job = match rx.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
        // Without a thread the jobs wait forever; every caller then gets `Pool` from a closed queue.
        if spawned.is_err() {
            tracing::error!("cannot start a password hashing thread");
        }
    }
    tx
});

/// Runs `f` on a hashing thread.
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    POOL.send(job).map_err(|_| HashError::Pool)?;
    rx.await.map_err(|_| HashError::Pool)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub async fn hash(password: &Sensitive) -> Result<String, HashError> {
    let password = password.clone();
    on_pool(move || hash_now(password.expose().as_bytes())).await?
}

/// True when `password` matches `stored`. With `stored = None` (unknown login, or no password set yet)
/// it verifies against the dummy hash and returns false, taking the same time as a real check.
pub async fn verify(password: &Sensitive, stored: Option<String>) -> Result<bool, HashError> {
    let password = password.clone();
    on_pool(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        verify_now(password.expose().as_bytes(), &phc) && known
    })
    .await
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

    #[test]
    fn our_hashes_and_the_argon2_crates_verify_each_other() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = hasher().hash_password(b"correct horse battery").unwrap().to_string();
        assert!(verify_now(b"correct horse battery", &theirs));
        assert!(!verify_now(b"correct horse batterY", &theirs));
        let ours = hash_now(b"correct horse battery").unwrap();
        assert!(hasher().verify_password(b"correct horse battery", ours.as_str()).is_ok());
        assert!(!verify_now(b"x", "not a phc string"));
    }
}
