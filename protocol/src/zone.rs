//! The time zone people read times in: an IANA name (`Asia/Tokyo`, the default) or a fixed offset
//! (`+09:00`), shared by the server (availability hours, exports, records) and the CLI, so both show a time
//! the same way, with its zone marked (`2026-12-07 09:00 JST`). The zone database is the system's, else the
//! copy built in.

use time::{OffsetDateTime, UtcOffset};

/// The default: where renkei's users are.
pub const DEFAULT_ZONE: &str = "Asia/Tokyo";

/// A time zone.
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// `Asia/Tokyo`, `UTC`, or `+09:00`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        if let Ok(offset) = UtcOffset::parse(text, &format) {
            let offset = jiff::tz::Offset::from_seconds(offset.whole_seconds()).ok()?;
            return Some(Self(jiff::tz::TimeZone::fixed(offset)));
        }
        jiff::tz::TimeZone::get(text).ok().map(Self)
    }

    fn timestamp(t: OffsetDateTime) -> jiff::Timestamp {
        jiff::Timestamp::from_second(t.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// The zone's offset from UTC at `t`.
    pub fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        UtcOffset::from_whole_seconds(self.0.to_offset(Self::timestamp(t)).seconds()).unwrap_or(UtcOffset::UTC)
    }

    /// `t` on this zone's clock.
    pub fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.to_offset(self.offset_at(t))
    }

    /// The zone's abbreviation at `t` (`JST`), or its offset (`+09:00`) when it has none.
    pub fn mark(&self, t: OffsetDateTime) -> String {
        let info = self.0.to_offset_info(Self::timestamp(t));
        let abbreviation = info.abbreviation();
        if abbreviation.is_empty() || abbreviation.starts_with(['+', '-']) {
            let offset = self.offset_at(t);
            let (h, m, _) = offset.as_hms();
            let sign = if offset.is_negative() { '-' } else { '+' };
            format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
        } else {
            abbreviation.to_owned()
        }
    }

    /// `2026-12-07 09:00 JST`.
    pub fn minute(&self, t: OffsetDateTime) -> String {
        let local = self.local(t);
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        format!("{} {}", local.format(&format).unwrap_or_default(), self.mark(t))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn names_and_offsets_are_zones_and_times_say_theirs() {
        let tokyo = Zone::parse(DEFAULT_ZONE).unwrap();
        let t = datetime!(2026-12-07 00:30 UTC);
        assert_eq!(tokyo.minute(t), "2026-12-07 09:30 JST");
        assert_eq!(Zone::parse("+09:00").unwrap().minute(t), "2026-12-07 09:30 +09:00");
        // A zone with summer time changes its offset with the date.
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.minute(datetime!(2026-07-01 12:00 UTC)), "2026-07-01 14:00 CEST");
        assert_eq!(berlin.minute(datetime!(2026-12-01 12:00 UTC)), "2026-12-01 13:00 CET");
        assert!(Zone::parse("Mars/Olympus").is_none());
        assert!(Zone::parse("+9").is_none());
    }
}
