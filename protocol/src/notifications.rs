//! Notifications (Web Push and e-mail): each member's choice of channels, their browsers' push
//! subscriptions, and the one thing a notification ever says — that there is something new, and how much.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Shortest and longest wait between two digests of ordinary posts, in minutes.
pub const DIGEST_MINUTES: std::ops::RangeInclusive<u32> = 5..=1440;

/// A member's notification settings. Questions addressed to them (rule 3) notify promptly within their
/// availability hours; other posts wait for the next digest; nothing is sent outside those hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Web Push to every browser this member subscribed.
    pub push: bool,
    /// E-mail to `email_address`.
    pub email: bool,
    /// Where e-mail goes; needed when `email` is on.
    #[serde(default)]
    pub email_address: Option<String>,
    /// At most one notification of ordinary posts every this many minutes (5–1440).
    pub digest_minutes: u32,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self { push: false, email: false, email_address: None, digest_minutes: 30 }
    }
}

/// A browser's push subscription, as the browser's `PushSubscription.toJSON()` gives it, with a name for the
/// device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewPushSubscription {
    /// The push service's URL for this browser.
    pub endpoint: String,
    pub keys: PushKeys,
    /// How the member will recognise the device in the list (e.g. "iPhone", "事業所のPC").
    #[serde(default)]
    pub device: Option<String>,
}

/// The browser's keys: `p256dh` (its P-256 public key) and `auth` (16 bytes), both base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// One subscribed device. Its endpoint and keys are never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushDevice {
    pub id: Uuid,
    pub device: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the last notification reached its push service.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_sent_at: Option<OffsetDateTime>,
}

/// My notification settings with what this server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationsView {
    pub settings: NotificationSettings,
    /// The server's VAPID public key (base64url, uncompressed P-256), for `pushManager.subscribe`.
    pub vapid_public_key: String,
    /// Whether the operator configured an SMTP server.
    pub email_available: bool,
    pub devices: Vec<PushDevice>,
}

/// The content of every push message and e-mail: a count, never a label, a name or a word of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationPayload {
    /// New posts for this member since the last notification.
    pub posts: u32,
    /// Whether a question addressed to this member (rule 3) is among them.
    pub question: bool,
    pub title: String,
    /// The sentence in Japanese.
    pub body_ja: String,
    /// The sentence in English.
    pub body_en: String,
}

impl NotificationPayload {
    pub fn new(posts: u32, question: bool) -> Self {
        let (body_ja, body_en) = if question {
            (
                format!("renkei にあなた宛ての質問を含む新しい投稿が {posts} 件あります"),
                format!("{posts} new posts in renkei, with a question for you"),
            )
        } else {
            (format!("renkei に新しい投稿が {posts} 件あります"), format!("{posts} new posts in renkei"))
        };
        Self { posts, question, title: "renkei".into(), body_ja, body_en }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_says_a_count_and_nothing_else() {
        let p = NotificationPayload::new(3, false);
        assert_eq!(p.body_ja, "renkei に新しい投稿が 3 件あります");
        assert_eq!(p.body_en, "3 new posts in renkei");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 5, "{json}");
    }
}
