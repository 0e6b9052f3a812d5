//! Failpoints for crash tests: with `RENKEI_FAILPOINT=NAME` set, the process aborts when it reaches the
//! point NAME — no destructor runs and no transaction commits, as with `kill -9`. Read once; when unset (in
//! production) a point costs one comparison.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT.get_or_init(|| std::env::var(crate::config::FAILPOINT_ENV).ok().filter(|p| !p.is_empty())).as_deref()
}

/// Just before the audit entry of `action` is written in its act's transaction (after the act's own
/// statements): `RENKEI_FAILPOINT=audit_append:ACTION`.
pub fn before_audit_append(action: &str) {
    if armed().and_then(|p| p.strip_prefix("audit_append:")) == Some(action) {
        eprintln!("renkei-server: failpoint audit_append:{action} reached; aborting");
        std::process::abort();
    }
}
