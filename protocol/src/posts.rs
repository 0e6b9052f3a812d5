//! Posts and the WebSocket frames that carry them.
//!
//! Every post has a per-group sequence number, gap-free and the same for every member; a client that
//! remembers the last one it saw per group resumes exactly where it left off.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Attachment, ErrorCode, Person, Profession};

wire_enum!(
    /// What a post is. A treatment question is addressed to the attending physician, a care-plan question to
    /// the care manager(s) (rule 3); a care policy (診療方針) is the attending physician's record for the
    /// team. There is no urgency or priority, by design (rule 6).
    PostKind {
        Update = "update",
        TreatmentQuestion = "treatment_question",
        CarePlanQuestion = "care_plan_question",
        CarePolicy = "care_policy",
    }
);

/// 診療方針: what the attending physician records and shares for the team (在宅医療情報連携加算): the next
/// visit, whether the treatment policy changed and how. The post's body holds the cautions for care
/// (留意事項).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarePolicy {
    /// The next visit date, `YYYY-MM-DD`.
    #[serde(with = "crate::groups::date_format::iso_date")]
    #[schema(value_type = String, format = Date)]
    pub next_visit_on: time::Date,
    pub policy_changed: bool,
    /// What changed; required when `policy_changed`.
    #[serde(default)]
    pub change_summary: Option<String>,
}

/// Longest client message id a client may choose.
pub const MAX_CLIENT_MSG_ID: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    pub kind: PostKind,
    pub body: String,
    /// The sequence number of the post this one answers.
    #[serde(default)]
    pub reply_to: Option<i64>,
    /// Chosen by the client; retrying with the same id returns the original post, never a second one.
    pub client_msg_id: String,
    /// The author confirms this is not an emergency although it reads like one ("今日は急変なし"). The
    /// override is audited with the matched terms (rule 6).
    #[serde(default)]
    pub confirm_not_emergency: bool,
    /// Files uploaded to this group beforehand (at most [`crate::MAX_ATTACHMENTS_PER_POST`]); the text may
    /// then be empty.
    #[serde(default)]
    pub attachments: Vec<Uuid>,
    /// Required for, and only for, a `care_policy` post.
    #[serde(default)]
    pub care_policy: Option<CarePolicy>,
}

/// A post's author as stamped when it was written: profession and organisation at that time (rule 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub id: Uuid,
    pub display_name: String,
    pub profession: Profession,
    pub organisation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Post {
    pub id: Uuid,
    pub group_id: Uuid,
    pub seq: i64,
    pub author: Author,
    pub kind: PostKind,
    /// `None` once deleted (the tombstone keeps its place in the sequence).
    pub body: Option<String>,
    pub reply_to: Option<i64>,
    pub client_msg_id: String,
    /// The consent version in force when it was posted (none in community groups).
    pub consent_version: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// 1 for the original; each edit adds one.
    pub version: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// Files the post shares (none once it is deleted).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// A care policy's record (none once it is deleted).
    #[serde(default)]
    pub care_policy: Option<CarePolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostPage {
    pub posts: Vec<Post>,
    /// The group's latest sequence number.
    pub last_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    pub body: String,
    #[serde(default)]
    pub confirm_not_emergency: bool,
    /// The files the post shares from now on (absent: unchanged): files it shares already, and files the
    /// author uploaded since. Earlier versions keep theirs.
    #[serde(default)]
    pub attachments: Option<Vec<Uuid>>,
    /// A care policy's record from now on (absent: unchanged); only for a `care_policy` post.
    #[serde(default)]
    pub care_policy: Option<CarePolicy>,
}

/// An addressee who is outside their availability hours right now (rule 5): no immediate reply should be
/// expected, and here is how they prefer to be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OffHours {
    pub person: Person,
    pub contact_preference: Option<String>,
}

/// The answer to a post: the post as committed, and who of its addressees is off hours now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostReceipt {
    pub post: Post,
    #[serde(default)]
    pub off_hours: Vec<OffHours>,
}

/// Questions addressed to me (treatment questions as attending physician, care-plan questions as care
/// manager) that I have neither answered nor marked seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressedList {
    pub posts: Vec<Post>,
}

wire_enum!(
    Weekday { Mon = "mon", Tue = "tue", Wed = "wed", Thu = "thu", Fri = "fri", Sat = "sat", Sun = "sun" }
);

/// A weekly window in the server's time zone, e.g. Mon–Fri 09:00–17:00 (`end` may be `24:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityWindow {
    pub days: Vec<Weekday>,
    pub start: String,
    pub end: String,
}

/// When and how a member prefers to be reached — the local 「ケアマネタイム」 (rule 5). No windows means no
/// claim either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    #[serde(default)]
    pub windows: Vec<AvailabilityWindow>,
    #[serde(default)]
    pub contact_preference: Option<String>,
}

/// One version of a post (clinical records keep every version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostVersion {
    pub version: i32,
    /// `None` for the deletion.
    pub body: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The files this version shared.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// A care policy's record in this version.
    #[serde(default)]
    pub care_policy: Option<CarePolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostHistory {
    pub versions: Vec<PostVersion>,
}

/// 「見ました」: a named acknowledgement the whole group sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeenMark {
    pub group_id: Uuid,
    pub seq: i64,
    pub by: Person,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeenList {
    pub seen: Vec<SeenMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadMark {
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unread {
    pub group_id: Uuid,
    pub label: String,
    pub last_seq: i64,
    pub last_read_seq: i64,
    /// Posts after `last_read_seq` written by others (one's own posts are never unread).
    pub unread: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnreadList {
    pub groups: Vec<Unread>,
}

/// Where a subscriber resumes: everything in `group_id` after `after_seq` (0 for the beginning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub group_id: Uuid,
    #[serde(default)]
    pub after_seq: i64,
}

/// Frames a client sends on `/api/v1/ws`. Each carries a request id the server echoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Subscribe to groups (added to earlier subscriptions), resuming after the given sequence numbers.
    Subscribe {
        id: String,
        groups: Vec<Subscription>,
    },
    Post {
        id: String,
        group_id: Uuid,
        post: NewPost,
    },
    /// 「見ました」 on one post.
    MarkSeen {
        id: String,
        group_id: Uuid,
        seq: i64,
    },
    /// Moves my read position forward.
    MarkRead {
        id: String,
        group_id: Uuid,
        seq: i64,
    },
    Ping {
        id: String,
    },
}

/// Why the server stopped delivering a group to this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    /// Removed, left, outside a narrowed consent, or consent withdrawn.
    Ended,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A post, live or replayed; always in sequence order per group.
    Post {
        post: Post,
    },
    /// A post was edited or deleted (its new state).
    PostUpdated {
        post: Post,
    },
    Seen {
        mark: SeenMark,
    },
    /// Delivery of this group to me has stopped.
    MembershipChanged {
        group_id: Uuid,
        change: MembershipChange,
    },
    /// This connection fell behind; the server replays what it missed from the database right after.
    Resync {
        group_id: Uuid,
    },
    /// A subscription is in place; everything up to `last_seq` has been sent.
    Subscribed {
        id: String,
        group_id: Uuid,
        last_seq: i64,
    },
    /// A request succeeded; for a post, its sequence number (after it was durably committed).
    Ack {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        post_id: Option<Uuid>,
        /// For a post: addressees off hours right now (rule 5).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        off_hours: Vec<OffHours>,
    },
    Error {
        /// The id of the client frame refused (also for `rate_limited` and malformed frames, whenever the
        /// frame had a readable `id`), so a client knows which post to send again.
        #[serde(default)]
        id: Option<String>,
        code: ErrorCode,
        message: String,
        /// The same details an HTTP error carries in its body's `fields` (e.g. the attending physician's
        /// phone of an `emergency_use_prohibited` refusal).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        fields: std::collections::BTreeMap<String, String>,
    },
    Pong {
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_json() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"ping","id":"1"}"#).unwrap();
        assert_eq!(frame, ClientFrame::Ping { id: "1".into() });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"post","id":"1","urgent":true}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout","id":"1"}"#).is_err());
        let ack = ServerFrame::Ack { id: "7".into(), group_id: None, seq: Some(3), post_id: None, off_hours: vec![] };
        assert_eq!(serde_json::to_string(&ack).unwrap(), r#"{"type":"ack","id":"7","seq":3}"#);
    }

    #[test]
    fn there_is_no_urgency_anywhere_in_a_post() {
        let post = NewPost {
            kind: PostKind::Update,
            body: "x".into(),
            reply_to: None,
            client_msg_id: "c".into(),
            confirm_not_emergency: false,
            attachments: Vec::new(),
            care_policy: None,
        };
        let json = serde_json::to_string(&post).unwrap();
        assert!(!json.contains("urgent") && !json.contains("priority"));
        let urgent = r#"{"kind":"update","body":"x","client_msg_id":"c","priority":"high"}"#;
        assert!(serde_json::from_str::<NewPost>(urgent).is_err());
    }
}

/// One post of a timeline export: every version and every 「見ました」.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportedPost {
    pub post: Post,
    pub versions: Vec<PostVersion>,
    pub seen: Vec<SeenMark>,
}

/// A patient group's timeline for the medical record (attending physician only; audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimelineExport {
    pub group_id: Uuid,
    pub label: String,
    pub patient: Option<crate::PatientIdentifiers>,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    pub posts: Vec<ExportedPost>,
}

/// Who was in a patient group and who read it (for the attending physician, and for the patient or family
/// on request): every membership episode, and every audited act on the group — invitations with their
/// consent version, removals, reads of the timeline — with the people named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessReport {
    pub group_id: Uuid,
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub memberships: Vec<crate::MembershipRecord>,
    pub events: Vec<crate::AuditEntry>,
    /// Everyone the events name.
    pub people: Vec<Person>,
}
