//! The cluster's wire format: the events that cross nodes on PostgreSQL and the NOTIFY payloads that
//! carry them (small posts ride in the notification; larger ones and every other change are read from the
//! database).

use std::collections::BTreeMap;
use std::sync::Arc;

use renkei_protocol::Post;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::hub;

/// A NOTIFY payload must stay under 8,000 bytes; each cluster message is kept under this.
const PAYLOAD_BUDGET: usize = 7_000;
/// Frames one `Posts` event carries at most, in bytes: a group's longer run of posts in a batch is split
/// over several events.
const FRAMES_PER_EVENT: usize = 3_000;
/// Users one `Ended` event names at most (each ~39 bytes of JSON).
pub(super) const ENDED_PER_EVENT: usize = 150;

/// Events that cross nodes (see [`payloads`] for their size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum ClusterEvent {
    /// Posts `from..=to` of group `g` were committed. `f` holds their frames, one per post in order, as
    /// the sending node's clients received them, when they fit in the notification: the other nodes then
    /// publish them as they are. Without them (`f` empty) the other nodes read the posts from the database.
    Posts {
        g: Uuid,
        from: i64,
        to: i64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        f: Vec<String>,
    },
    /// Post `s` of group `g` was edited or deleted.
    Updated { g: Uuid, s: i64 },
    /// User `u` marked post `s` of group `g` as seen.
    Seen { g: Uuid, s: i64, u: Uuid },
    /// These users are no longer active members of group `g`.
    Ended { g: Uuid, u: Vec<Uuid> },
    /// User `u` was disabled: close their sockets.
    Disabled { u: Uuid },
    /// What posting to groups `g` reads first changed (a member's availability): read it again.
    Forget { g: Vec<Uuid> },
    /// Sessions `e` of user `u` ended (logout, revoked, password changed or reset, expired): close the
    /// sockets opened with them.
    SessionsEnded { u: Uuid, e: hub::SessionsEnded },
}

impl ClusterEvent {
    /// How many posts the event announces.
    pub(super) fn posts(&self) -> i64 {
        if let Self::Posts { from, to, .. } = self { to - from + 1 } else { 0 }
    }

    /// The events of one committed batch (`posts` and their `frames`, in commit order): each group's new
    /// posts (consecutive sequence numbers) with their frames, split so that no event carries more than
    /// [`FRAMES_PER_EVENT`] bytes of them (one post at least).
    pub(super) fn committed(posts: &[Post], frames: &[Arc<str>]) -> Vec<Self> {
        let mut by_group: BTreeMap<Uuid, Vec<(i64, &Arc<str>)>> = BTreeMap::new();
        for (post, frame) in posts.iter().zip(frames) {
            by_group.entry(post.group_id).or_default().push((post.seq, frame));
        }
        let event = |g, run: &[(i64, &Arc<str>)]| Self::Posts {
            g,
            from: run[0].0,
            to: run[run.len() - 1].0,
            f: run.iter().map(|(_, frame)| frame.to_string()).collect(),
        };
        let mut events = Vec::new();
        for (g, run) in by_group {
            let (mut start, mut size) = (0, 0);
            for (i, (_, frame)) in run.iter().enumerate() {
                if i > start && size + frame.len() > FRAMES_PER_EVENT {
                    events.push(event(g, &run[start..i]));
                    (start, size) = (i, 0);
                }
                size += frame.len();
            }
            events.push(event(g, &run[start..]));
        }
        events
    }
}

/// The NOTIFY payloads (each a [`ClusterMessage`] from `node`) that carry `events` in order, each under
/// [`PAYLOAD_BUDGET`] bytes: a `Posts` event too large on its own goes without its frames, and an ended
/// membership of many users is split.
pub(super) fn payloads(node: Uuid, events: Vec<ClusterEvent>) -> Vec<String> {
    // Serialising our own event types cannot fail (see `publisher::frame_json`).
    let json = |event: &ClusterEvent| {
        serde_json::to_string(event).expect("a cluster event serialises: plain fields, string keys")
    };
    let head = format!(r#"{{"n":"{node}","e":["#);
    let (mut payloads, mut current) = (Vec::new(), head.clone());
    for event in events {
        let split = match event {
            ClusterEvent::Ended { g, u } if u.len() > ENDED_PER_EVENT => {
                u.chunks(ENDED_PER_EVENT).map(|u| ClusterEvent::Ended { g, u: u.to_vec() }).collect()
            }
            event => vec![event],
        };
        for mut event in split {
            let mut text = json(&event);
            if let ClusterEvent::Posts { f, .. } = &mut event
                && head.len() + text.len() + 2 > PAYLOAD_BUDGET
            {
                f.clear();
                text = json(&event);
            }
            if current.len() > head.len() && current.len() + text.len() + 3 > PAYLOAD_BUDGET {
                current.push_str("]}");
                payloads.push(std::mem::replace(&mut current, head.clone()));
            }
            if current.len() > head.len() {
                current.push(',');
            }
            current.push_str(&text);
        }
    }
    if current.len() > head.len() {
        current.push_str("]}");
        payloads.push(current);
    }
    payloads
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ClusterMessage {
    /// The sending node, which ignores its own messages.
    pub(super) n: Uuid,
    pub(super) e: Vec<ClusterEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain;
    use crate::messaging::publisher::post_frame;
    use renkei_protocol::ServerFrame;

    fn post(group_id: Uuid, seq: i64, body: &str) -> Post {
        Post {
            id: Uuid::new_v4(),
            group_id,
            seq,
            author: renkei_protocol::Author {
                id: Uuid::new_v4(),
                display_name: "佐藤 看護師".into(),
                profession: renkei_protocol::Profession::Nurse,
                organisation: "むさしの訪問看護ステーション".into(),
            },
            kind: renkei_protocol::PostKind::Update,
            body: Some(body.into()),
            reply_to: None,
            client_msg_id: format!("c-{seq}"),
            consent_version: Some(1),
            created_at: domain::now(),
            version: 1,
            edited_at: None,
            deleted_at: None,
            attachments: Vec::new(),
            care_policy: None,
        }
    }

    fn decoded(payloads: &[String]) -> Vec<ClusterEvent> {
        payloads
            .iter()
            .flat_map(|p| {
                assert!(p.len() < 8000, "a payload of {} bytes", p.len());
                serde_json::from_str::<ClusterMessage>(p).expect("a cluster message").e
            })
            .collect()
    }

    #[test]
    fn a_batch_rides_in_its_notifications_in_order_and_what_does_not_fit_is_announced_by_id() {
        let (a, b, node) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // Group a: forty short posts "改行\n\"引用\"" (split over events); group b: one that fits in no
        // notification.
        let mut posts: Vec<Post> = (1..=40).map(|seq| post(a, seq, "訪問しました。\n\"血圧\" 120/80")).collect();
        posts.push(post(b, 7, &"あ".repeat(3000)));
        let frames: Vec<Arc<str>> = posts.iter().map(post_frame).collect();
        let events = ClusterEvent::committed(&posts, &frames);
        assert!(events.len() > 2, "group a's run is split over events");
        let sent = payloads(node, events.clone());
        assert!(sent.len() > 1, "the events take several notifications");
        let received = decoded(&sent);
        // Every event arrives, in order; only the oversized one lost its frames.
        assert_eq!(received.len(), events.len());
        for (got, sent) in received.iter().zip(&events) {
            match (got, sent) {
                (ClusterEvent::Posts { g, from, to, f }, ClusterEvent::Posts { f: sent_f, .. }) if *g == b => {
                    assert_eq!((*from, *to), (7, 7));
                    assert!(f.is_empty() && !sent_f.is_empty());
                }
                _ => assert_eq!(got, sent),
            }
        }
        // Group a's frames are every post's frame, in order, exactly as published here.
        let carried: Vec<(i64, String)> = received
            .iter()
            .filter_map(|e| match e {
                ClusterEvent::Posts { g, from, f, .. } if *g == a => {
                    Some((*from..).zip(f.iter().cloned()).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        let expected: Vec<(i64, String)> = (1..=40).zip(frames[..40].iter().map(|f| f.to_string())).collect();
        assert_eq!(carried, expected);
        for f in &carried {
            assert_eq!(
                serde_json::from_str::<ServerFrame>(&f.1).unwrap(),
                ServerFrame::Post {
                    post: posts[usize::try_from(f.0 - 1).expect("a sequence number counts from 1")].clone()
                }
            );
        }
    }

    #[test]
    fn an_ended_membership_of_many_users_is_split_over_notifications() {
        let (group, node) = (Uuid::new_v4(), Uuid::new_v4());
        let users: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        let received = decoded(&payloads(node, vec![ClusterEvent::Ended { g: group, u: users.clone() }]));
        let mut named = Vec::new();
        for event in received {
            let ClusterEvent::Ended { g, u } = event else { panic!("{event:?}") };
            assert_eq!(g, group);
            named.extend(u);
        }
        assert_eq!(named, users);
    }
}
