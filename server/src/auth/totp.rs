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
}
