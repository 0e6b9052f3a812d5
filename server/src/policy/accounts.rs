//! Account rules: who is an administrator, password strength, when TOTP is required, login throttling.

use std::time::Duration;

use renkei_protocol::{PendingStep, Role};
use time::OffsetDateTime;

use crate::config::{Config, TotpPolicy};
use crate::domain::Account;

/// Failed logins within the throttling window, for one account name and one client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailureStats {
    /// Failures of this login name from this address: what the back-off is counted on, so an attacker
    /// elsewhere cannot make the real user wait.
    pub pair_failures: u32,
    pub pair_last: Option<OffsetDateTime>,
    /// Failures of this login name from anywhere: the hard hourly ceiling.
    pub account_failures: u32,
    pub address_failures: u32,
    pub address_last: Option<OffsetDateTime>,
}

/// Why a caller may not do something. Mapped to `forbidden` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    NotAnAdministrator,
    /// Rule 2: only a physician opens a patient group.
    NotAPhysician,
    /// Rules 2 and 3: consent, invitations, removal, handover and archiving belong to the attending physician.
    NotAttendingPhysician,
    /// Only a post's author edits or deletes it.
    NotTheAuthor,
    /// A browser page from an origin not on the WebSocket allow-list.
    OriginNotAllowed,
    /// Rule 7: the caller's office allows file downloads only from its own networks.
    OutsideOfficeNetwork,
}

/// Administrator-only operations (registering professionals, disabling accounts) need the admin role.
pub fn require_admin(account: &Account) -> Result<(), Denied> {
    if account.is_admin() { Ok(()) } else { Err(Denied::NotAnAdministrator) }
}

/// An administrator's action that changes accounts, groups or exports needs a recent proof of identity
/// (MHLW guideline 6.0: re-authentication for privileged operations): the login, or a re-entered
/// password, no older than `window`.
pub fn sign_in_recent(authenticated_at: OffsetDateTime, now: OffsetDateTime, window: time::Duration) -> bool {
    now - authenticated_at <= window
}

/// An administrator may disable any account but their own, so an installation cannot lose its last
/// administrator by accident.
pub fn may_disable(actor: &Account, target: &Account) -> bool {
    actor.id() != target.id()
}

/// A browser may open the live connection only from an allowed origin; programs send no Origin.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    origin.is_none_or(|o| allowed.iter().any(|a| a == o))
}

/// Minimum password length (MHLW guideline 6.0, 14.1): 13 characters, or 8 when a second factor is on.
pub const MIN_PASSWORD_CHARS: usize = 13;
const MIN_PASSWORD_CHARS_WITH_TOTP: usize = 8;
/// Upper bound, so a megabyte "password" cannot tie up the hasher.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks a new password against the policy; the error is a stable problem code for `fields.new_password`.
pub fn check_new_password(password: &str, totp_enabled: bool) -> Result<(), &'static str> {
    let chars = password.chars().count();
    let min = if totp_enabled { MIN_PASSWORD_CHARS_WITH_TOTP } else { MIN_PASSWORD_CHARS };
    if chars < min {
        return Err(if totp_enabled { "shorter_than_8" } else { "shorter_than_13" });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err("too_long");
    }
    if password.chars().any(char::is_control) {
        return Err("control_characters");
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 4 {
        return Err("too_repetitive");
    }
    Ok(())
}

/// Whether the policy switch requires a second factor for this role.
pub fn totp_required(role: Role, policy: TotpPolicy) -> bool {
    match policy {
        TotpPolicy::Off => false,
        TotpPolicy::Admins => role == Role::Admin,
        TotpPolicy::Everyone => true,
    }
}

/// What a session of this account must do before it may use the rest of the API.
pub fn pending_step(account: &Account, policy: TotpPolicy) -> Option<PendingStep> {
    if account.user.must_change_password {
        Some(PendingStep::ChangePassword)
    } else if totp_required(account.user.role, policy) && !account.user.totp_enabled {
        Some(PendingStep::EnrollTotp)
    } else {
        None
    }
}

/// A login attempt refused before the password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    pub retry_after: Duration,
}

/// Failures of one login name from one address before back-off starts; a typo or two costs nothing.
const PAIR_FREE_FAILURES: u32 = 5;
/// Failures from one address before back-off starts (higher: a clinic's staff share one address).
const ADDRESS_FREE_FAILURES: u32 = 20;

/// Login throttling (OWASP ASVS 2.2.1). The back-off grows exponentially after a few failures of a login
/// name *from one address*, capped at `login_backoff_max_seconds`: an attacker elsewhere makes only
/// themselves wait, and the real user from her own address still gets in. Above that, hard limits per
/// hour: `login_account_failures_per_hour` evaluated failures of one account from anywhere (≤ 100, ASVS)
/// and `login_address_failures_per_hour` from one address. Refused attempts are not counted, so
/// hammering during a back-off does not extend it. `stats` counts what was recorded before this attempt.
pub fn login_throttle(stats: &LoginFailureStats, now: OffsetDateTime, config: &Config) -> Result<(), LoginThrottle> {
    let cap = Duration::from_secs(u64::from(config.login_backoff_max_seconds));
    let over_limit = stats.account_failures >= config.login_account_failures_per_hour
        || stats.address_failures >= config.login_address_failures_per_hour;
    if over_limit {
        return Err(LoginThrottle { retry_after: cap.max(Duration::from_secs(1)) });
    }
    let wait = |failures: u32, free: u32, last: Option<OffsetDateTime>| -> Duration {
        let Some(last) = last else {
            return Duration::ZERO;
        };
        if failures < free {
            return Duration::ZERO;
        }
        let exponent = (failures - free).min(20);
        let backoff = Duration::from_secs(1u64 << exponent).min(cap);
        let elapsed = Duration::try_from(now - last).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    };
    let retry_after = wait(stats.pair_failures, PAIR_FREE_FAILURES, stats.pair_last).max(wait(
        stats.address_failures,
        ADDRESS_FREE_FAILURES,
        stats.address_last,
    ));
    if retry_after.is_zero() { Ok(()) } else { Err(LoginThrottle { retry_after }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_13_characters_or_8_with_totp() {
        assert_eq!(check_new_password("short-pass1", false), Err("shorter_than_13"));
        assert_eq!(check_new_password("long enough pass", false), Ok(()));
        assert_eq!(check_new_password("eight ch", true), Ok(()));
        assert_eq!(check_new_password("seven c", true), Err("shorter_than_8"));
        assert_eq!(check_new_password("aaaaaaaaaaaaaaaa", false), Err("too_repetitive"));
        assert_eq!(check_new_password(&"ab1-".repeat(70), false), Err("too_long"));
        // Japanese passphrases count characters, not bytes.
        assert_eq!(check_new_password("あいうえおかきくけこさしす", false), Ok(()));
    }

    #[test]
    fn totp_policy_switch() {
        assert!(!totp_required(Role::Admin, TotpPolicy::Off));
        assert!(totp_required(Role::Admin, TotpPolicy::Admins));
        assert!(!totp_required(Role::Member, TotpPolicy::Admins));
        assert!(totp_required(Role::Member, TotpPolicy::Everyone));
    }

    #[test]
    fn back_off_grows_then_caps_and_the_hard_limit_holds() {
        let config = Config::default();
        let now = OffsetDateTime::now_utc();
        let stats = |n: u32, ago: i64| LoginFailureStats {
            pair_failures: n,
            pair_last: Some(now - time::Duration::seconds(ago)),
            account_failures: n,
            ..Default::default()
        };
        assert!(login_throttle(&stats(4, 0), now, &config).is_ok());
        assert_eq!(login_throttle(&stats(5, 0), now, &config).unwrap_err().retry_after, Duration::from_secs(1));
        assert_eq!(login_throttle(&stats(8, 0), now, &config).unwrap_err().retry_after, Duration::from_secs(8));
        assert!(login_throttle(&stats(8, 9), now, &config).is_ok());
        // Capped: never more than the configured maximum, however many failures.
        assert_eq!(login_throttle(&stats(60, 0), now, &config).unwrap_err().retry_after, Duration::from_secs(60));
        assert!(login_throttle(&stats(60, 61), now, &config).is_ok());
        // The hard limit per hour.
        assert!(login_throttle(&stats(100, 3000), now, &config).is_err());
    }

    #[test]
    fn failures_from_elsewhere_do_not_make_the_real_user_wait() {
        let config = Config::default();
        let now = OffsetDateTime::now_utc();
        // Forty failures of her login from an attacker's address; none from hers.
        let hers = LoginFailureStats { account_failures: 40, ..Default::default() };
        assert!(login_throttle(&hers, now, &config).is_ok());
        // The attacker's own address waits.
        let theirs = LoginFailureStats { pair_failures: 40, pair_last: Some(now), ..hers };
        assert!(login_throttle(&theirs, now, &config).is_err());
    }
}
