//! TOTP (RFC 6238) through `totp-rs`: SHA-1, 6 digits, 30-second steps, one step of clock skew either side
//! — what every authenticator app supports.

use renkei_protocol::Sensitive;
use totp_rs::{Algorithm, Builder, Secret, Totp};

const ISSUER: &str = "renkei";

fn build(secret: Secret, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// A fresh secret for `account`: (base32 secret, otpauth URI).
pub fn enroll(account: &str) -> Option<(Sensitive, Sensitive)> {
    let totp = build(Secret::generate(), account)?;
    let uri = totp.to_url().ok()?;
    Some((Sensitive::new(totp.secret().to_base32()), Sensitive::new(uri)))
}

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Fresh recovery codes, `xxxx-xxxx-xxxx-xxxx` (80 random bits each; no 0, o, 1 or l to misread), with the
/// hash of each as stored.
pub fn recovery_codes() -> std::io::Result<Vec<(Sensitive, String)>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
            let chars: Vec<char> = bytes.iter().map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char).collect();
            let code = chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-");
            let hash = recovery_hash(&code).unwrap_or_default();
            Ok((Sensitive::new(code), hash))
        })
        .collect()
}

/// The stored hash of what was typed as a recovery code (case, spaces and dashes do not matter), or
/// `None` when it cannot be one.
pub fn recovery_hash(typed: &str) -> Option<String> {
    let normalised: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    (normalised.len() == 16 && normalised.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then(|| crate::auth::token::hash(&format!("recovery:{normalised}")))
}

/// The time step `code` matches for the base32 `secret` now, if any. The caller must still make sure the
/// step was not used before ([`crate::store::Store::accept_totp_step`]).
pub fn matching_step(secret_base32: &str, code: &str) -> Option<i64> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    let totp = build(secret, "check")?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    totp.check_current(&code).and_then(|step| i64::try_from(step).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_matches_once_per_step_and_garbage_never() {
        let (secret, uri) = enroll("sato").unwrap();
        assert!(uri.expose().starts_with("otpauth://totp/renkei:sato?"), "{}", uri.expose());
        let totp = build(Secret::try_from_base32(secret.expose()).unwrap(), "x").unwrap();
        let code = totp.generate_current().to_string();
        assert!(matching_step(secret.expose(), &code).is_some());
        assert!(matching_step(secret.expose(), "abcdef").is_none());
        assert!(matching_step(secret.expose(), "1234567").is_none());
        assert!(matching_step("not base32!", &code).is_none());
    }

    #[test]
    fn recovery_codes_are_distinct_and_match_however_they_are_typed() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().map(|(_, h)| h.clone()).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        assert_eq!(code.expose().len(), 19);
        assert_eq!(recovery_hash(code.expose()).as_deref(), Some(hash.as_str()));
        let sloppy = format!(" {} ", code.expose().to_uppercase().replace('-', " "));
        assert_eq!(recovery_hash(&sloppy).as_deref(), Some(hash.as_str()));
        assert!(recovery_hash("123456").is_none());
    }
}
