//! Rule 5 (「ICTは24時間365日の対応を求めるものではない」): renkei does not bind anyone around the clock. Members
//! keep availability hours; a sender is told which addressees are off hours, and nothing is ever urgent.

use renkei_protocol::{Availability, AvailabilityWindow, PostKind, Weekday};
use time::OffsetDateTime;

/// `HH:MM`, or `24:00` for the end of the day, as minutes since midnight.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// The problem with a window, if any, as a stable code.
pub fn check_window(w: &AvailabilityWindow) -> Result<(), &'static str> {
    let (Some(start), Some(end)) = (minutes(&w.start), minutes(&w.end)) else { return Err("time_format") };
    if w.days.is_empty() {
        return Err("no_days");
    }
    if start >= end {
        return Err("ends_before_start");
    }
    Ok(())
}

fn weekday(t: &OffsetDateTime) -> Weekday {
    match t.weekday() {
        time::Weekday::Monday => Weekday::Mon,
        time::Weekday::Tuesday => Weekday::Tue,
        time::Weekday::Wednesday => Weekday::Wed,
        time::Weekday::Thursday => Weekday::Thu,
        time::Weekday::Friday => Weekday::Fri,
        time::Weekday::Saturday => Weekday::Sat,
        time::Weekday::Sunday => Weekday::Sun,
    }
}

/// Whether someone with this availability is off hours at `now` (already in the server's time zone).
/// No windows at all makes no claim: not off hours.
pub fn is_off_hours(availability: &Availability, now: OffsetDateTime) -> bool {
    if availability.windows.is_empty() {
        return false;
    }
    let day = weekday(&now);
    let minute = u32::from(now.hour()) * 60 + u32::from(now.minute());
    !availability.windows.iter().any(|w| {
        w.days.contains(&day)
            && matches!((minutes(&w.start), minutes(&w.end)), (Some(s), Some(e)) if s <= minute && minute < e)
    })
}

/// Rule 3 (「治療に関する質問は主治医に、ケアプランに関する質問はケアマネジャーに」): to whom a post is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressees {
    /// Everyone in the group.
    Group,
    AttendingPhysician,
    CareManagers,
}

pub fn addressees(kind: PostKind) -> Addressees {
    match kind {
        PostKind::Update | PostKind::CarePolicy => Addressees::Group,
        PostKind::TreatmentQuestion => Addressees::AttendingPhysician,
        PostKind::CarePlanQuestion => Addressees::CareManagers,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn weekdays_9_to_5() -> Availability {
        Availability {
            windows: vec![AvailabilityWindow {
                days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
                start: "09:00".into(),
                end: "17:00".into(),
            }],
            contact_preference: Some("平日 13-15時は電話可".into()),
        }
    }

    #[test]
    fn off_hours_follow_the_weekly_windows() {
        let a = weekdays_9_to_5();
        // 2026-11-20 is a Friday.
        assert!(!is_off_hours(&a, datetime!(2026-11-20 09:00 +09:00)));
        assert!(!is_off_hours(&a, datetime!(2026-11-20 16:59 +09:00)));
        assert!(is_off_hours(&a, datetime!(2026-11-20 17:00 +09:00)));
        assert!(is_off_hours(&a, datetime!(2026-11-20 21:00 +09:00)));
        assert!(is_off_hours(&a, datetime!(2026-11-21 10:00 +09:00)), "Saturday");
        assert!(!is_off_hours(&Availability::default(), datetime!(2026-11-21 03:00 +09:00)), "no claim");
        let all_day = Availability {
            windows: vec![AvailabilityWindow { days: vec![Weekday::Sat], start: "00:00".into(), end: "24:00".into() }],
            contact_preference: None,
        };
        assert!(!is_off_hours(&all_day, datetime!(2026-11-21 23:59 +09:00)));
    }

    #[test]
    fn windows_are_checked() {
        let w = |s: &str, e: &str| AvailabilityWindow { days: vec![Weekday::Mon], start: s.into(), end: e.into() };
        assert_eq!(check_window(&w("09:00", "17:00")), Ok(()));
        assert_eq!(check_window(&w("9:00", "24:00")), Ok(()));
        assert_eq!(check_window(&w("17:00", "09:00")), Err("ends_before_start"));
        assert_eq!(check_window(&w("25:00", "26:00")), Err("time_format"));
        assert_eq!(check_window(&w("nine", "17:00")), Err("time_format"));
        assert_eq!(
            check_window(&AvailabilityWindow { days: vec![], start: "09:00".into(), end: "10:00".into() }),
            Err("no_days")
        );
    }

    #[test]
    fn questions_go_to_the_right_person() {
        assert_eq!(addressees(PostKind::TreatmentQuestion), Addressees::AttendingPhysician);
        assert_eq!(addressees(PostKind::CarePlanQuestion), Addressees::CareManagers);
        assert_eq!(addressees(PostKind::Update), Addressees::Group);
    }
}
