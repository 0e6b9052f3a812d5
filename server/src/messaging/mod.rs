//! Messaging: the group commit of posts, the local fan-out hub, and the cluster link that carries events
//! between nodes sharing one PostgreSQL. [`Messaging`] is the one door: the transports post through it and
//! tell it what changed; its parts are the committer (`committer`), the publisher (`publisher`), the
//! node's fan-out (`hub`), the cluster's wire format (`wire`) and link (`cluster`), and the cache of what
//! posting reads first (`contexts`).

mod cluster;
mod committer;
mod contexts;
pub mod hub;
mod publisher;
mod wire;

use std::sync::Arc;

use renkei_protocol::{Post, SeenMark};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use contexts::PostContexts;
pub use hub::Hub;

use crate::store::{PostOutcome, PostRequest, Store, StoreError};
use committer::{CommitMetrics, GATHER, Job, MAX_BATCH, run_committer};
use publisher::{Broadcaster, PUBLISH_QUEUE, run_publisher};
use wire::{ClusterEvent, ENDED_PER_EVENT};

/// The messaging side of a node. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Messaging {
    pub hub: Arc<Hub>,
    /// What posting to a group reads first, for a second.
    pub contexts: PostContexts,
    broadcaster: Broadcaster,
    commits: mpsc::Sender<Job>,
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
        let clustered = store.clustered();
        // The publisher's NOTIFYs need a connection of their own only where there is a cluster to tell.
        let publisher = Broadcaster {
            store: if clustered { store.dedicated_planning_each_call(1).await? } else { store.clone() },
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
        let gather = clustered.then_some(GATHER);
        tokio::spawn(run_committer(store.dedicated(1).await?.committer(), rx, published, counted, gather));
        if clustered {
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
