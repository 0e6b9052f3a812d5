//! Validated domain types. Input from the wire is parsed into these once, at the edge; code behind the
//! edge never re-checks a login's shape or a display name's length.

mod account;
pub mod audit;
mod groups;
mod text;

pub use account::{Account, SessionInfo};
pub use groups::{GroupRecord, Membership};
pub use text::{DisplayName, FieldError, Login, Organisation, Phone, parse_label, parse_notes, parse_optional_label};

use time::OffsetDateTime;

/// Microseconds since the Unix epoch: how every time is stored, in both dialects.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Now, truncated to the microsecond precision the database keeps, so values read back compare equal.
pub fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}
