//! When a notification goes out, and to where (rule 5: no 24/365 binding). A question addressed to a
//! member notifies promptly within their hours; other posts wait for the member's digest interval; outside
//! their hours nothing is sent, and what waited is summarised when the window opens. There is no urgency:
//! emergencies go by phone (rule 1).

use renkei_protocol::{DIGEST_MINUTES, NotificationSettings};
use time::OffsetDateTime;

use crate::domain::FieldError;

/// What is new for a member since their watermark: others' unread posts in their groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingPosts {
    pub posts: u32,
    /// Of them, questions addressed to the member (rule 3).
    pub questions: u32,
    /// The newest one's creation, in microseconds: the watermark moves here once they are notified.
    pub newest: i64,
}

/// What the planner does for one member at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing new.
    Nothing,
    /// Something is new but waits: off hours, or the digest interval has not passed.
    Wait,
    Send,
}

/// The decision for a member with `pending` new posts, last notified at `last_sent`, `off_hours` now.
pub fn decide(
    pending: PendingPosts,
    off_hours: bool,
    last_sent: Option<OffsetDateTime>,
    digest_minutes: u32,
    now: OffsetDateTime,
) -> Decision {
    if pending.posts == 0 {
        return Decision::Nothing;
    }
    if off_hours {
        return Decision::Wait;
    }
    let digest_due = last_sent.is_none_or(|at| now - at >= time::Duration::minutes(i64::from(digest_minutes)));
    if pending.questions > 0 || digest_due { Decision::Send } else { Decision::Wait }
}

/// The problems with a member's settings, if any.
pub fn check_settings(s: &NotificationSettings) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if !DIGEST_MINUTES.contains(&s.digest_minutes) {
        problems.push(FieldError::new("digest_minutes", "out_of_range"));
    }
    match s.email_address.as_deref() {
        Some(a) if !plausible_address(a) => problems.push(FieldError::new("email_address", "invalid")),
        None if s.email => problems.push(FieldError::new("email_address", "required")),
        _ => {}
    }
    problems
}

/// One `@`, something on each side, a dot in the domain, no spaces or controls, at most 254 bytes.
fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else { return false };
    a.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
}

/// Whether the server may send to this push endpoint: `https` to a host in `allowed` (or a subdomain of
/// one), so that a subscription cannot make the server call into its own network. A loopback address over
/// plain `http` is allowed only when it is listed (the tests' push service).
pub fn endpoint_allowed(endpoint: &str, allowed: &[String]) -> Result<(), &'static str> {
    if endpoint.len() > 2048 {
        return Err("too_long");
    }
    let uri: axum::http::Uri = endpoint.parse().map_err(|_| "not_a_url")?;
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else { return Err("not_a_url") };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if host.is_empty() {
        return Err("not_a_url");
    }
    let listed = allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        host == a || host.ends_with(&format!(".{a}"))
    });
    if !listed {
        return Err("push_service_not_allowed");
    }
    let loopback = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("https_required"),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn pending(posts: u32, questions: u32) -> PendingPosts {
        PendingPosts { posts, questions, newest: 0 }
    }

    #[test]
    fn a_question_goes_at_once_and_other_posts_wait_for_the_digest() {
        let now = datetime!(2026-12-07 10:00 UTC);
        let five_ago = Some(now - time::Duration::minutes(5));
        assert_eq!(decide(pending(0, 0), false, None, 30, now), Decision::Nothing);
        assert_eq!(decide(pending(2, 0), false, None, 30, now), Decision::Send, "first notification");
        assert_eq!(decide(pending(2, 0), false, five_ago, 30, now), Decision::Wait, "digest not due");
        assert_eq!(decide(pending(2, 1), false, five_ago, 30, now), Decision::Send, "a question is prompt");
        let half_hour_ago = Some(now - time::Duration::minutes(30));
        assert_eq!(decide(pending(2, 0), false, half_hour_ago, 30, now), Decision::Send, "digest due");
    }

    #[test]
    fn nothing_goes_off_hours_not_even_a_question() {
        let now = datetime!(2026-12-07 23:00 UTC);
        assert_eq!(decide(pending(4, 2), true, None, 5, now), Decision::Wait);
    }

    #[test]
    fn settings_are_checked() {
        let mut s = NotificationSettings { push: true, email: true, email_address: None, digest_minutes: 30 };
        assert_eq!(check_settings(&s), vec![FieldError::new("email_address", "required")]);
        s.email_address = Some("nurse@example.jp".into());
        assert!(check_settings(&s).is_empty());
        for bad in ["nurse", "@example.jp", "a@b", "a b@example.jp", "a@example.jp>", "a@.jp"] {
            s.email_address = Some(bad.into());
            assert_eq!(check_settings(&s), vec![FieldError::new("email_address", "invalid")], "{bad}");
        }
        s.email_address = None;
        s.email = false;
        s.digest_minutes = 4;
        assert_eq!(check_settings(&s), vec![FieldError::new("digest_minutes", "out_of_range")]);
    }

    #[test]
    fn only_listed_push_services_are_called() {
        let allowed = vec!["fcm.googleapis.com".to_owned(), "127.0.0.1".to_owned()];
        assert_eq!(endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", &allowed), Ok(()));
        assert_eq!(endpoint_allowed("https://x.fcm.googleapis.com/a", &allowed), Ok(()));
        assert_eq!(endpoint_allowed("http://127.0.0.1:4000/push/1", &allowed), Ok(()));
        assert_eq!(endpoint_allowed("http://fcm.googleapis.com/a", &allowed), Err("https_required"));
        assert_eq!(
            endpoint_allowed("https://evilfcm.googleapis.com.example/a", &allowed),
            Err("push_service_not_allowed")
        );
        assert_eq!(endpoint_allowed("https://10.0.0.1/admin", &allowed), Err("push_service_not_allowed"));
        assert_eq!(endpoint_allowed("https://fcm.googleapis.com@10.0.0.1/", &allowed), Err("push_service_not_allowed"));
        assert_eq!(endpoint_allowed("fcm.googleapis.com", &allowed), Err("not_a_url"));
    }
}
