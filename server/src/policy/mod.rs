//! Policy: every authorisation and rule decision, as pure functions an auditor can read next to the tests
//! that enforce them. Handlers ask; they never decide access on their own.
//!
//! `accounts`: the account rules of the MHLW guideline 6.0 and OWASP ASVS. `groups`: the care-team rules
//! (PRODUCT.md rules 2 and 3) — who opens a patient group, who sees it, who consent covers.

pub mod accounts;
pub mod attachments;
pub mod availability;
pub mod content;
pub mod groups;
pub mod notifications;
pub mod offices;
pub mod posts;
pub mod records;
pub mod retention;

pub use accounts::{
    Denied, LoginThrottle, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_new_password, login_throttle, may_disable,
    origin_allowed, pending_step, require_admin, sign_in_recent, totp_required,
};
