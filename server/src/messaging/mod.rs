//! Messaging: the group commit of posts, the local fan-out hub, and the cluster link that carries events
//! between nodes sharing one PostgreSQL (LISTEN/NOTIFY with ids only; the data is read from the database).

mod cluster;
mod contexts;
pub mod hub;

use std::collections::BTreeMap;
use std::sync::Arc;

use renkei_protocol::{Post, SeenMark, ServerFrame};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use contexts::PostContexts;
pub use hub::Hub;

use crate::domain;
use crate::store::{Committer, PostOutcome, PostRequest, Store, StoreError};

/// The most posts one transaction commits together. Each batch costs a few round trips to the database
/// whatever its size (one on PostgreSQL when its groups are kept, see `store::Committer`), each waiting its
/// turn among the connections' tasks: 1,024 carried 23,300 posts/s on PostgreSQL where 512 carried 22,200
/// (renkei-bench throughput, one run each, when a batch took seven).
const MAX_BATCH: usize = 1024;
/// Committed batches waiting to be published.
const PUBLISH_QUEUE: usize = 16;

/// Events that cross nodes, as ids only (a NOTIFY payload must stay under 8,000 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum ClusterEvent {
    /// Posts `from..=to` of group `g` were committed.
    Posts { g: Uuid, from: i64, to: i64 },
    /// Post `s` of group `g` was edited or deleted.
    Updated { g: Uuid, s: i64 },
    /// User `u` marked post `s` of group `g` as seen.
    Seen { g: Uuid, s: i64, u: Uuid },
    /// These users are no longer active members of group `g`.
    Ended { g: Uuid, u: Vec<Uuid> },
    /// User `u` was disabled: close their sockets.
    Disabled { u: Uuid },
}

impl ClusterEvent {
    /// How many posts the event announces.
    fn posts(&self) -> i64 {
        if let Self::Posts { from, to, .. } = self { to - from + 1 } else { 0 }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ClusterMessage {
    /// The sending node, which ignores its own messages.
    n: Uuid,
    e: Vec<ClusterEvent>,
}

/// The messaging side of a node. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Messaging {
    pub hub: Arc<Hub>,
    /// What posting to a group reads first, for a second.
    pub contexts: PostContexts,
    broadcaster: Broadcaster,
    commits: mpsc::Sender<Job>,
}

#[derive(Debug)]
struct Job {
    req: PostRequest,
    reply: oneshot::Sender<Result<PostOutcome, Arc<StoreError>>>,
}

/// Publishes events on this node and tells the other nodes.
#[derive(Debug, Clone)]
struct Broadcaster {
    store: Store,
    hub: Arc<Hub>,
    node: Uuid,
}

fn frame_json(frame: &ServerFrame) -> Arc<str> {
    // Serialising our own frame types cannot fail (no maps with non-string keys, no custom serialisers).
    Arc::from(serde_json::to_string(frame).unwrap_or_default())
}

impl Broadcaster {
    fn publish_posts_locally(&self, posts: &[Post]) {
        for post in posts {
            let json = frame_json(&ServerFrame::Post { post: post.clone() });
            self.hub.publish(post.group_id, Some(post.seq), json);
        }
    }

    fn publish_update_locally(&self, post: &Post) {
        self.hub.publish(post.group_id, None, frame_json(&ServerFrame::PostUpdated { post: post.clone() }));
    }

    fn publish_seen_locally(&self, mark: &SeenMark) {
        self.hub.publish(mark.group_id, None, frame_json(&ServerFrame::Seen { mark: mark.clone() }));
    }

    /// Publishes the posts other nodes committed to these groups just before `ranges` (each group's new
    /// posts, first to last) that this node has not published yet, where it has published the group before
    /// and the gap is short; longer gaps are left to the subscribers' own catch-up.
    async fn publish_missed_before(&self, ranges: &BTreeMap<Uuid, (i64, i64)>) {
        const SHORT_GAP: i64 = 256;
        // One node on SQLite: no other node commits to its groups.
        if self.store.backend() != crate::store::Backend::Postgres {
            return;
        }
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
            Ok(posts) => self.publish_posts_locally(&posts),
            // The subscribers see the gap and read it themselves.
            Err(e) => tracing::warn!(error = %e, "reading other nodes' posts before a batch failed"),
        }
    }

    /// One NOTIFY per call (per committed batch), after the commit, never inside the insert transaction.
    async fn tell_cluster(&self, events: Vec<ClusterEvent>) {
        if events.is_empty() {
            return;
        }
        // Keep every payload well under PostgreSQL's 8,000-byte limit.
        let mut chunk = Vec::new();
        let mut size = 0;
        for event in events {
            size += 120 + if let ClusterEvent::Ended { u, .. } = &event { u.len() * 40 } else { 0 };
            chunk.push(event);
            if size > 6000 {
                self.notify(std::mem::take(&mut chunk)).await;
                size = 0;
            }
        }
        self.notify(chunk).await;
    }

    async fn notify(&self, events: Vec<ClusterEvent>) {
        if events.is_empty() {
            return;
        }
        let payload = serde_json::to_string(&ClusterMessage { n: self.node, e: events }).unwrap_or_default();
        if let Err(e) = self.store.notify_cluster(&payload).await {
            // Other nodes catch up by sequence number when they next hear from us or reconnect.
            tracing::warn!(error = %e, "cluster notification failed");
        }
    }
}

impl Messaging {
    /// Starts the committer (and, on PostgreSQL, the cluster listener) for this node, each on database
    /// connections of its own ([`Store::dedicated`]).
    pub async fn start(store: Store, queue_frames: usize) -> Result<Arc<Self>, StoreError> {
        let hub = Hub::new(queue_frames);
        let node = Uuid::new_v4();
        let broadcaster = Broadcaster { store: store.clone(), hub: hub.clone(), node };
        let postgres = store.backend() == crate::store::Backend::Postgres;
        // The publisher's NOTIFYs need a connection of their own only where there is a cluster to tell.
        let publisher = Broadcaster {
            store: if postgres { store.dedicated_planning_each_call(1).await? } else { store.clone() },
            hub: hub.clone(),
            node,
        };
        let (published, to_publish) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(run_publisher(publisher, to_publish));
        let (commits, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_committer(store.dedicated(1).await?.committer(), rx, published));
        if postgres {
            let link = Broadcaster { store: store.dedicated_planning_each_call(2).await?, hub: hub.clone(), node };
            tokio::spawn(cluster::listen(link));
        }
        Ok(Arc::new(Self { hub, contexts: PostContexts::default(), broadcaster, commits }))
    }

    /// Queues a post for the next group commit and waits until it is durably committed (or refused).
    pub async fn post(&self, req: PostRequest) -> Result<PostOutcome, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let closed = || Arc::new(StoreError::Unavailable(sqlx::Error::PoolClosed));
        self.commits.send(Job { req, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// A post was edited or deleted.
    pub async fn post_updated(&self, post: &Post) {
        self.broadcaster.publish_update_locally(post);
        self.broadcaster.tell_cluster(vec![ClusterEvent::Updated { g: post.group_id, s: post.seq }]).await;
    }

    pub async fn seen(&self, mark: &SeenMark) {
        self.broadcaster.publish_seen_locally(mark);
        let event = ClusterEvent::Seen { g: mark.group_id, s: mark.seq, u: mark.by.id };
        self.broadcaster.tell_cluster(vec![event]).await;
    }

    /// Delivery of `group` to these users stops at once, on every node.
    pub async fn memberships_ended(&self, group: Uuid, users: Vec<Uuid>) {
        self.contexts.forget(group);
        if users.is_empty() {
            return;
        }
        self.hub.end_membership(group, &users);
        self.broadcaster.tell_cluster(vec![ClusterEvent::Ended { g: group, u: users }]).await;
    }

    /// A disabled user's sockets close, on every node.
    pub async fn user_disabled(&self, user: Uuid) {
        self.hub.close_user(user);
        self.broadcaster.tell_cluster(vec![ClusterEvent::Disabled { u: user }]).await;
    }
}

/// The group commit: take every post waiting, commit them in one transaction, answer each, and hand the new
/// posts to the publisher. While one batch is being synced to disk the next one gathers, so the batch size
/// follows the load. Publishing (a JSON frame per post for the local hub, NOTIFYs for the cluster) took a
/// quarter of each round when the committer did it itself; now it runs beside the next commit.
async fn run_committer(mut committer: Committer, mut rx: mpsc::Receiver<Job>, published: mpsc::Sender<Vec<Post>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (batch, replies): (Vec<PostRequest>, Vec<_>) = jobs.drain(..).map(|j| (j.req, j.reply)).unzip();
        match committer.commit_posts(&batch, domain::now()).await {
            Ok(outcomes) => {
                let created: Vec<Post> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok().filter(|(_, new)| *new).map(|(p, _)| p.clone()))
                    .collect();
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                // In commit order; a full queue holds the next commit back rather than growing.
                if !created.is_empty() && published.send(created).await.is_err() {
                    tracing::error!("the publisher stopped");
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, posts = replies.len(), "group commit failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
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
/// Each of them would otherwise read the gap itself (renkei-bench multinode, both nodes posting to the
/// same groups: 36,497 such reads in one run).
async fn run_publisher(broadcaster: Broadcaster, mut batches: mpsc::Receiver<Vec<Post>>) {
    while let Some(created) = batches.recv().await {
        let mut ranges: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
        for post in &created {
            let range = ranges.entry(post.group_id).or_insert((post.seq, post.seq));
            range.0 = range.0.min(post.seq);
            range.1 = range.1.max(post.seq);
        }
        broadcaster.publish_missed_before(&ranges).await;
        broadcaster.publish_posts_locally(&created);
        let events = ranges.into_iter().map(|(g, (from, to))| ClusterEvent::Posts { g, from, to }).collect();
        broadcaster.tell_cluster(events).await;
    }
}
