//! Publishing: events of this node to its own subscribers (the hub), then to the other nodes (NOTIFY),
//! and committed batches in commit order.

use std::collections::BTreeMap;
use std::sync::Arc;

use renkei_protocol::{Post, SeenMark, ServerFrame};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::wire::{ClusterEvent, payloads};
use super::{Hub, PostContexts};
use crate::store::{Store, StoreError};

/// Committed batches waiting to be published.
pub(super) const PUBLISH_QUEUE: usize = 16;

/// Publishes events on this node and tells the other nodes.
#[derive(Debug, Clone)]
pub(super) struct Broadcaster {
    pub(super) store: Store,
    pub(super) hub: Arc<Hub>,
    pub(super) node: Uuid,
    /// The node's post-context cache, which other nodes' events invalidate.
    pub(super) contexts: PostContexts,
}

pub(super) fn frame_json(frame: &ServerFrame) -> Arc<str> {
    // Serialising our own frame types cannot fail (no maps with non-string keys, no custom serialisers).
    Arc::from(serde_json::to_string(frame).expect("a server frame serialises: plain fields, string keys"))
}

/// A post's frame as its subscribers receive it.
pub(super) fn post_frame(post: &Post) -> Arc<str> {
    frame_json(&ServerFrame::Post { post: post.clone() })
}

impl Broadcaster {
    /// Publishes posts to this node's subscribers; returns their frames, in order.
    pub(super) fn publish_posts_locally(&self, posts: &[Post]) -> Vec<Arc<str>> {
        posts
            .iter()
            .map(|post| {
                let json = post_frame(post);
                self.hub.publish(post.group_id, Some(post.seq), json.clone());
                json
            })
            .collect()
    }

    pub(super) fn publish_update_locally(&self, post: &Post) {
        self.hub.publish(post.group_id, None, frame_json(&ServerFrame::PostUpdated { post: post.clone() }));
    }

    pub(super) fn publish_seen_locally(&self, mark: &SeenMark) {
        self.hub.publish(mark.group_id, None, frame_json(&ServerFrame::Seen { mark: mark.clone() }));
    }

    /// Publishes the posts other nodes committed to these groups just before `ranges` (each group's new
    /// posts, first to last) that this node has not published yet, where it has published the group before
    /// and the gap is short; longer gaps are left to the subscribers' own catch-up.
    pub(super) async fn publish_missed_before(&self, ranges: &BTreeMap<Uuid, (i64, i64)>) {
        const SHORT_GAP: i64 = 256;
        let missed: Vec<(Uuid, i64, i64)> = ranges
            .iter()
            .filter_map(|(group, (first, _))| {
                let last = self.hub.last_published(*group)?;
                (*first > last + 1 && *first - last <= SHORT_GAP).then_some((*group, last + 1, *first - 1))
            })
            .collect();
        if missed.is_empty() {
            return;
        }
        match self.store.posts_in_ranges(&missed).await {
            Ok(posts) => {
                self.publish_posts_locally(&posts);
            }
            // The subscribers see the gap and read it themselves.
            Err(e) => tracing::warn!(error = %e, "reading other nodes' posts before a batch failed"),
        }
    }

    /// Whether other nodes may share the database ([`Store::clustered`]).
    pub(super) fn clustered(&self) -> bool {
        self.store.clustered()
    }

    /// Tells the other nodes, after the commit (never inside the insert transaction): one statement
    /// however many notifications the events take.
    pub(super) async fn tell_cluster(&self, events: Vec<ClusterEvent>) {
        if events.is_empty() || !self.clustered() {
            return;
        }
        if let Err(e) = self.store.notify_cluster(&payloads(self.node, events)).await {
            // Other nodes catch up by sequence number when they next hear from us or reconnect.
            match e {
                StoreError::Unavailable(_) => crate::telemetry::database_unavailable(&e),
                e => tracing::warn!(error = %e, "cluster notification failed"),
            }
        }
    }
}

/// Publishes committed batches in commit order: to this node's subscribers, then to the other nodes. Local
/// connections deliver by sequence number and fill any gap from the database, so a post published a little
/// after its acknowledgement is never lost or reordered.
///
/// A batch that starts past what this node last published for a group follows posts another node
/// committed whose notification has not been replayed here yet: the publisher reads those first (one
/// statement for the batch) and publishes them in order, so that the group's subscribers here see no gap.
/// Each of them would otherwise read the gap itself (docs/decisions/0004-the-post-path.md).
pub(super) async fn run_publisher(broadcaster: Broadcaster, mut batches: mpsc::Receiver<Vec<Post>>) {
    while let Some(created) = batches.recv().await {
        // Alone on SQLite: no other node's posts to fill in first, and nobody to tell.
        if !broadcaster.clustered() {
            broadcaster.publish_posts_locally(&created);
            continue;
        }
        let mut ranges: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
        for post in &created {
            let range = ranges.entry(post.group_id).or_insert((post.seq, post.seq));
            range.0 = range.0.min(post.seq);
            range.1 = range.1.max(post.seq);
        }
        broadcaster.publish_missed_before(&ranges).await;
        let frames = broadcaster.publish_posts_locally(&created);
        broadcaster.tell_cluster(ClusterEvent::committed(&created, &frames)).await;
    }
}
