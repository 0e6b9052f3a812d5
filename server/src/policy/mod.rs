//! Policy: every authorisation and rule decision, as pure functions an auditor can read next to the tests
//! that enforce them. Handlers ask; they never decide access on their own.
//!
//! This module grows with the ICT collaboration rules (PRODUCT.md); today it holds the account rules of
//! the MHLW guideline 6.0 and OWASP ASVS that the foundation needs.

mod accounts;

pub use accounts::{
    Denied, LoginThrottle, check_new_password, login_throttle, pending_step, require_admin,
    totp_required,
};
