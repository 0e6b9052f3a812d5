//! What makes a month's care record complete (在宅医療情報連携加算): a care-policy post of the attending
//! physician, a post of another profession they saw, and a consent that covers the month.

use std::collections::BTreeSet;

use renkei_protocol::{Consent, ConsentKind, MembershipRecord, RecordGap};
use time::{Date, Month as CalendarMonth, OffsetDateTime, UtcOffset};

/// A calendar month in the server's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    year: i32,
    month: CalendarMonth,
    offset: UtcOffset,
}

impl Month {
    /// `YYYY-MM` (years 2000–2999).
    pub fn parse(raw: &str, offset: UtcOffset) -> Option<Self> {
        let (y, m) = raw.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month = CalendarMonth::try_from(m.parse::<u8>().ok()?).ok()?;
        (2000..3000).contains(&year).then_some(Self { year, month, offset })
    }

    pub fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        let days = self.month.length(self.year);
        Date::from_calendar_date(self.year, self.month, days).unwrap_or(Date::MIN)
    }

    /// `[start, end)` of the month as instants.
    pub fn bounds(self) -> (OffsetDateTime, OffsetDateTime) {
        let start = self.first_day().midnight().assume_offset(self.offset);
        let end = self.last_day().next_day().unwrap_or(Date::MAX).midnight().assume_offset(self.offset);
        (start, end)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

/// The consent in force at the month's end (the latest version obtained on or before its last day), and
/// what is missing: none recorded by then, or withdrawn by then (a withdrawal within the month counts even
/// if consent was given again after it).
pub fn consent_for(consents: &[Consent], month: Month) -> (Option<&Consent>, Option<RecordGap>) {
    let last = month.last_day();
    let first = month.first_day();
    let known: Vec<&Consent> = consents.iter().filter(|c| c.obtained_on <= last).collect();
    let in_force = known.iter().copied().max_by_key(|c| c.version);
    let withdrawn_in_month = known.iter().any(|c| c.kind == ConsentKind::Withdrawn && c.obtained_on >= first);
    let gap = match in_force {
        None => Some(RecordGap::NoConsent),
        Some(c) if c.kind == ConsentKind::Withdrawn || withdrawn_in_month => Some(RecordGap::ConsentWithdrawn),
        Some(_) => None,
    };
    (in_force, gap)
}

/// The organisations of everyone who was a member at some time in `[from, until)`, sorted.
pub fn organisations_during(
    memberships: &[MembershipRecord],
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<String> {
    memberships
        .iter()
        .filter(|m| m.joined_at.is_some_and(|j| j < until) && m.ended_at.is_none_or(|e| e >= from))
        .map(|m| m.person.organisation.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Why the month is incomplete, in a stable order (none: complete).
pub fn gaps(has_care_policy: bool, has_seen_posts: bool, consent: Option<RecordGap>) -> Vec<RecordGap> {
    let mut gaps = Vec::new();
    if !has_care_policy {
        gaps.push(RecordGap::NoCarePolicy);
    }
    if !has_seen_posts {
        gaps.push(RecordGap::NoPostsSeen);
    }
    gaps.extend(consent);
    gaps
}

#[cfg(test)]
mod tests {
    use renkei_protocol::{ConsentMethod, Consenter, ConsenterKind};
    use time::macros::{date, datetime, offset};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_month_is_read_strictly_and_bounded_in_the_server_zone() {
        let m = Month::parse("2026-12", offset!(+9)).unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!((m.first_day(), m.last_day()), (date!(2026 - 12 - 01), date!(2026 - 12 - 31)));
        assert_eq!(m.bounds(), (datetime!(2026-11-30 15:00 UTC), datetime!(2026-12-31 15:00 UTC)));
        assert_eq!(Month::parse("2028-02", offset!(+9)).unwrap().last_day(), date!(2028 - 02 - 29));
        for bad in ["2026-13", "2026-00", "2026-1", "26-12", "2026/12", "1999-12", "2026-12-01", "", "２０２６-12"]
        {
            assert_eq!(Month::parse(bad, offset!(+9)), None, "{bad}");
        }
    }

    fn consent(version: i32, kind: ConsentKind, obtained_on: Date) -> Consent {
        Consent {
            version,
            kind,
            consenter: Consenter { kind: ConsenterKind::Patient, name: "p".into(), relationship: None },
            method: ConsentMethod::Written,
            obtained_on,
            scope: Vec::new(),
            recorded_by: Uuid::nil(),
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_consent_must_be_given_by_the_months_end_and_not_withdrawn_by_then() {
        let dec = Month::parse("2026-12", offset!(+9)).unwrap();
        let given = consent(1, ConsentKind::Recorded, date!(2026 - 11 - 10));
        assert_eq!(consent_for(&[], dec), (None, Some(RecordGap::NoConsent)));
        assert_eq!(consent_for(std::slice::from_ref(&given), dec), (Some(&given), None));
        // Given later than the month: not yet.
        let late = consent(1, ConsentKind::Recorded, date!(2027 - 01 - 02));
        assert_eq!(consent_for(&[late], dec).1, Some(RecordGap::NoConsent));
        // Withdrawn mid-month, or before it.
        let withdrawn = consent(2, ConsentKind::Withdrawn, date!(2026 - 12 - 15));
        let both = [given.clone(), withdrawn.clone()];
        assert_eq!(consent_for(&both, dec), (Some(&withdrawn), Some(RecordGap::ConsentWithdrawn)));
        // ...but November, before the withdrawal, was covered.
        let nov = Month::parse("2026-11", offset!(+9)).unwrap();
        assert_eq!(consent_for(&both, nov), (Some(&given), None));
        // An amendment keeps it covered.
        let amended = consent(2, ConsentKind::Amended, date!(2026 - 12 - 15));
        assert_eq!(consent_for(&[given, amended.clone()], dec), (Some(&amended), None));
    }

    #[test]
    fn gaps_come_in_a_stable_order() {
        assert!(gaps(true, true, None).is_empty());
        assert_eq!(
            gaps(false, false, Some(RecordGap::NoConsent)),
            [RecordGap::NoCarePolicy, RecordGap::NoPostsSeen, RecordGap::NoConsent]
        );
    }
}
