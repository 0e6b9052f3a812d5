//! Messaging: the group commit of posts, the local fan-out hub, and the cluster link that carries events
//! between nodes sharing one PostgreSQL (LISTEN/NOTIFY: small posts ride in the notification, larger ones
//! and every other change are read from the database).

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
/// Under load the committer lets a batch gather this long before committing it, so that more posts share
/// each transaction. A transaction costs PostgreSQL about the same CPU whatever its size, and on a shared
/// machine CPU is latency: in renkei-bench multinode at 5,000 posts/s (batches of ~7), waiting 1 ms halved
/// the commits, PostgreSQL went from 74 % to 49 % of a core and the whole machine from ~170 % to ~133 %,
/// and the cross-node p99 from 68–117 ms to 47–52 ms (two runs each), for ~1 ms more at the median.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
/// Load, for [`GATHER`]: the last batch held at least this many posts. Below it (1,000 posts/s on one node
/// gives batches of one or two) a post is committed as soon as the committer is free.
const GATHER_AFTER: usize = 4;
/// A batch this large already shares its transaction widely: it is committed without gathering (the
/// wait would only idle the committer at maximum throughput, ~10 % fewer posts/s when it always waited).
const GATHERED_ENOUGH: usize = 64;

/// A NOTIFY payload must stay under 8,000 bytes; each cluster message is kept under this.
const PAYLOAD_BUDGET: usize = 7_000;
/// Frames one `Posts` event carries at most, in bytes: a group's longer run of posts in a batch is split
/// over several events.
const FRAMES_PER_EVENT: usize = 3_000;
/// Users one `Ended` event names at most (each ~39 bytes of JSON).
const ENDED_PER_EVENT: usize = 150;

/// Events that cross nodes (see [`payloads`] for their size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum ClusterEvent {
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
    fn posts(&self) -> i64 {
        if let Self::Posts { from, to, .. } = self { to - from + 1 } else { 0 }
    }

    /// The events of one committed batch (`posts` and their `frames`, in commit order): each group's new
    /// posts (consecutive sequence numbers) with their frames, split so that no event carries more than
    /// [`FRAMES_PER_EVENT`] bytes of them (one post at least).
    fn committed(posts: &[Post], frames: &[Arc<str>]) -> Vec<Self> {
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
fn payloads(node: Uuid, events: Vec<ClusterEvent>) -> Vec<String> {
    // Serialising our own event types cannot fail (see `frame_json`).
    let json = |event: &ClusterEvent| serde_json::to_string(event).unwrap_or_default();
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
    /// The node's post-context cache, which other nodes' events invalidate.
    contexts: PostContexts,
}

fn frame_json(frame: &ServerFrame) -> Arc<str> {
    // Serialising our own frame types cannot fail (no maps with non-string keys, no custom serialisers).
    Arc::from(serde_json::to_string(frame).unwrap_or_default())
}

/// A post's frame as its subscribers receive it.
fn post_frame(post: &Post) -> Arc<str> {
    frame_json(&ServerFrame::Post { post: post.clone() })
}

impl Broadcaster {
    /// Publishes posts to this node's subscribers; returns their frames, in order.
    fn publish_posts_locally(&self, posts: &[Post]) -> Vec<Arc<str>> {
        posts
            .iter()
            .map(|post| {
                let json = post_frame(post);
                self.hub.publish(post.group_id, Some(post.seq), json.clone());
                json
            })
            .collect()
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

    /// Whether other nodes may share the database (PostgreSQL); a node on SQLite is alone.
    fn clustered(&self) -> bool {
        self.store.backend() == crate::store::Backend::Postgres
    }

    /// Tells the other nodes, after the commit (never inside the insert transaction): one statement
    /// however many notifications the events take.
    async fn tell_cluster(&self, events: Vec<ClusterEvent>) {
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

impl Messaging {
    /// Starts the committer (and, on PostgreSQL, the cluster listener) for this node, each on database
    /// connections of its own ([`Store::dedicated`]).
    pub async fn start(
        store: Store,
        queue_frames: usize,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Arc<Self>, StoreError> {
        let hub = Hub::counted(queue_frames, metrics.ws_connections.clone(), metrics.deliveries.clone());
        let node = Uuid::new_v4();
        let contexts = PostContexts::default();
        let broadcaster = Broadcaster { store: store.clone(), hub: hub.clone(), node, contexts: contexts.clone() };
        let postgres = store.backend() == crate::store::Backend::Postgres;
        // The publisher's NOTIFYs need a connection of their own only where there is a cluster to tell.
        let publisher = Broadcaster {
            store: if postgres { store.dedicated_planning_each_call(1).await? } else { store.clone() },
            hub: hub.clone(),
            node,
            contexts: contexts.clone(),
        };
        let (published, to_publish) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(run_publisher(publisher, to_publish));
        let (commits, rx) = mpsc::channel(4 * MAX_BATCH);
        let counted = CommitMetrics {
            posts: metrics.posts_committed.clone(),
            batch: metrics.commit_batch_posts.clone(),
            seconds: metrics.commit_seconds.clone(),
        };
        tokio::spawn(run_committer(store.dedicated(1).await?.committer(), rx, published, counted));
        if postgres {
            let link = Broadcaster {
                store: store.dedicated_planning_each_call(2).await?,
                hub: hub.clone(),
                node,
                contexts: contexts.clone(),
            };
            tokio::spawn(cluster::listen(link, metrics.cluster_listener_up.clone()));
        }
        Ok(Arc::new(Self { hub, contexts, broadcaster, commits }))
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

    /// What posting to these groups reads first changed (a member's availability hours): the next post
    /// reads it again, on every node.
    pub async fn contexts_changed(&self, groups: &[Uuid]) {
        for group in groups {
            self.contexts.forget(*group);
        }
        let events = groups.chunks(ENDED_PER_EVENT).map(|g| ClusterEvent::Forget { g: g.to_vec() }).collect();
        self.broadcaster.tell_cluster(events).await;
    }

    /// The sockets opened with these sessions close, on every node.
    pub async fn sessions_ended(&self, ended: &[(Uuid, hub::SessionsEnded)]) {
        if ended.is_empty() {
            return;
        }
        for (user, e) in ended {
            self.hub.close_sessions(*user, *e);
        }
        let events = ended.iter().map(|(u, e)| ClusterEvent::SessionsEnded { u: *u, e: *e }).collect();
        self.broadcaster.tell_cluster(events).await;
    }

    /// A disabled user's sockets close, on every node.
    pub async fn user_disabled(&self, user: Uuid) {
        self.hub.close_user(user);
        self.broadcaster.tell_cluster(vec![ClusterEvent::Disabled { u: user }]).await;
    }
}

/// The group commit: take every post waiting, commit them in one transaction, answer each, and hand the new
/// posts to the publisher. While one batch is being synced to disk the next one gathers, so the batch size
/// follows the load; under load a small batch also waits [`GATHER`] for company. Publishing (a JSON frame
/// per post for the local hub, NOTIFYs for the cluster) took a quarter of each round when the committer
/// did it itself; now it runs beside the next commit.
/// The group commit's share of the node's metrics.
#[derive(Debug)]
struct CommitMetrics {
    posts: prometheus_client::metrics::counter::Counter,
    batch: prometheus_client::metrics::histogram::Histogram,
    seconds: prometheus_client::metrics::histogram::Histogram,
}

async fn run_committer(
    mut committer: Committer,
    mut rx: mpsc::Receiver<Job>,
    published: mpsc::Sender<Vec<Post>>,
    metrics: CommitMetrics,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut loaded = false;
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        if loaded && jobs.len() < GATHERED_ENOUGH {
            tokio::time::sleep(GATHER).await;
            while jobs.len() < MAX_BATCH
                && let Ok(job) = rx.try_recv()
            {
                jobs.push(job);
            }
        }
        loaded = jobs.len() >= GATHER_AFTER;
        let (batch, replies): (Vec<PostRequest>, Vec<_>) = jobs.drain(..).map(|j| (j.req, j.reply)).unzip();
        let started = std::time::Instant::now();
        let committed = committer.commit_posts(&batch, domain::now()).await;
        metrics.seconds.observe(started.elapsed().as_secs_f64());
        metrics.batch.observe(batch.len() as f64);
        match committed {
            Ok(outcomes) => {
                let created: Vec<Post> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok().filter(|(_, new)| *new).map(|(p, _)| p.clone()))
                    .collect();
                metrics.posts.inc_by(created.len() as u64);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                // In commit order; a full queue holds the next commit back rather than growing.
                if !created.is_empty() && published.send(created).await.is_err() {
                    tracing::error!("the publisher stopped");
                }
            }
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    crate::telemetry::database_unavailable(&e);
                } else {
                    tracing::error!(error = ?e, posts = replies.len(), "group commit failed");
                }
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
        // Alone on SQLite: no other node's posts to fill in first, and nobody to tell (copying the frames
        // into notifications took 3 % of the server's CPU at maximum throughput).
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

#[cfg(test)]
mod tests {
    use super::*;

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
