//! The cluster link on PostgreSQL: LISTEN for the other nodes' events and replay them locally, publishing
//! the posts that came with a notification as they are and reading the rest from the database. Notifications sent while the listener is disconnected are lost, so every (re)connect is
//! followed by a catch-up by sequence number for every group this node has subscribers in, and a
//! re-check of its subscribers' memberships.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::publisher::{Broadcaster, post_frame};
use super::wire::{ClusterEvent, ClusterMessage};
use crate::store::StoreError;

pub(super) const CHANNEL: &str = "renkei_events";

pub(super) async fn listen(broadcaster: Broadcaster, up: prometheus_client::metrics::gauge::Gauge) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = listen_once(&broadcaster, &up).await;
        up.set(0);
        match result {
            Err(StoreError::Unavailable(sqlx::Error::PoolClosed)) => return,
            Err(e @ StoreError::Unavailable(_)) => crate::telemetry::database_unavailable(&e),
            Err(e) => tracing::warn!(error = %e, "cluster listener lost its connection; reconnecting"),
            Ok(()) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Notifications taken at once when several wait (see [`listen_once`]), up to this many posts in all.
const MAX_COALESCED_POSTS: i64 = 4096;

async fn listen_once(b: &Broadcaster, up: &prometheus_client::metrics::gauge::Gauge) -> Result<(), StoreError> {
    let mut listener = b.store.cluster_listener(CHANNEL).await?;
    catch_up(b).await?;
    up.set(1);
    loop {
        match listener.try_recv().await {
            Ok(Some(first)) => {
                // Whatever else has arrived meanwhile is replayed with it, in order: a node that fell
                // behind (one read per notification) catches up in a few reads instead of falling further.
                let mut events = Vec::new();
                let mut posts = 0;
                let mut next = Some(first);
                while let Some(notification) = next {
                    if let Ok(message) = serde_json::from_str::<ClusterMessage>(notification.payload())
                        && message.n != b.node
                    {
                        posts += message.e.iter().map(ClusterEvent::posts).sum::<i64>();
                        events.extend(message.e);
                    }
                    next = if posts < MAX_COALESCED_POSTS { listener.next_buffered() } else { None };
                }
                replay(b, events).await?;
            }
            // The connection dropped: whatever was sent meanwhile is lost, so reconnect and catch up.
            Ok(None) => {
                listener.listen(CHANNEL).await.map_err(StoreError::from)?;
                catch_up(b).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Posts another node announced: `from..=to` of group `g`, with their frames when they came along.
#[derive(Debug, PartialEq, Eq)]
struct Announced {
    g: Uuid,
    from: i64,
    to: i64,
    /// One per post, in order; empty when the posts are to be read from the database.
    frames: Vec<String>,
}

/// What replaying a run of events does, in order: publish the posts of consecutive batches together,
/// reading those that did not come with their frames in one statement, or apply one other event.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Posts(Vec<Announced>),
    Other(ClusterEvent),
}

/// Splits events (in the order they were sent) into [`Step`]s: consecutive batches' posts are published
/// together, and any other event comes after the posts sent before it and before those sent after it,
/// so that (for one) a membership that ended stops delivery before the posts committed after it.
/// `watched` says which groups have subscribers on this node; other groups' posts are left alone. Frames
/// that do not match their range one to one are dropped, and those posts read.
fn steps(events: Vec<ClusterEvent>, watched: impl Fn(&Uuid) -> bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut announced = Vec::new();
    for event in events {
        match event {
            ClusterEvent::Posts { g, from, to, mut f } => {
                if watched(&g) {
                    if i64::try_from(f.len()).ok() != Some(to - from + 1) {
                        f.clear();
                    }
                    announced.push(Announced { g, from, to, frames: f });
                }
            }
            other => {
                if !announced.is_empty() {
                    steps.push(Step::Posts(std::mem::take(&mut announced)));
                }
                steps.push(Step::Other(other));
            }
        }
    }
    if !announced.is_empty() {
        steps.push(Step::Posts(announced));
    }
    steps
}

/// Publishes announced posts, each group's in order: those whose frames came along as they are, the
/// others read in one statement.
async fn publish_announced(b: &Broadcaster, announced: Vec<Announced>) -> Result<(), StoreError> {
    let unread: Vec<(Uuid, i64, i64)> =
        announced.iter().filter(|a| a.frames.is_empty()).map(|a| (a.g, a.from, a.to)).collect();
    if unread.is_empty() {
        // Sent in commit order, so each group's posts are in order already.
        for a in announced {
            for (seq, frame) in (a.from..).zip(a.frames) {
                b.hub.publish(a.g, Some(seq), Arc::from(frame));
            }
        }
        return Ok(());
    }
    let mut frames: BTreeMap<(Uuid, i64), Arc<str>> = BTreeMap::new();
    for post in b.store.posts_in_ranges(&unread).await? {
        frames.insert((post.group_id, post.seq), post_frame(&post));
    }
    for a in announced {
        frames.extend((a.from..).zip(a.frames).map(|(seq, frame)| ((a.g, seq), Arc::from(frame))));
    }
    for ((g, seq), frame) in frames {
        b.hub.publish(g, Some(seq), frame);
    }
    Ok(())
}

/// Replays other nodes' events in the order they were sent (see [`steps`]).
async fn replay(b: &Broadcaster, events: Vec<ClusterEvent>) -> Result<(), StoreError> {
    let watched: std::collections::HashSet<Uuid> = b.hub.watched().into_iter().map(|(g, _)| g).collect();
    let is_watched = |g: &Uuid| watched.contains(g);
    for step in steps(events, is_watched) {
        match step {
            Step::Posts(announced) => publish_announced(b, announced).await?,
            Step::Other(ClusterEvent::Updated { g, s }) if is_watched(&g) => {
                if let Some(post) = b.store.post(g, s).await? {
                    b.publish_update_locally(&post);
                }
            }
            Step::Other(ClusterEvent::Seen { g, s, u }) if is_watched(&g) => {
                if let Some(mark) = b.store.seen_marks(g, s).await?.into_iter().find(|m| m.by.id == u) {
                    b.publish_seen_locally(&mark);
                }
            }
            Step::Other(ClusterEvent::Ended { g, u }) => {
                b.contexts.forget(g);
                b.hub.end_membership(g, &u);
            }
            Step::Other(ClusterEvent::Forget { g }) => g.iter().for_each(|g| b.contexts.forget(*g)),
            Step::Other(ClusterEvent::Disabled { u }) => b.hub.close_user(u),
            Step::Other(ClusterEvent::SessionsEnded { u, e }) => b.hub.close_sessions(u, e),
            Step::Other(_) => {}
        }
    }
    Ok(())
}

/// After a (re)connect: publish what this node may have missed, and drop subscriptions that ended.
async fn catch_up(b: &Broadcaster) -> Result<(), StoreError> {
    for (group, last) in b.hub.watched() {
        let posts = b.store.posts_page(group, Some(last), None, 10_000).await?;
        b.publish_posts_locally(&posts);
    }
    for (group, user) in b.hub.subscriptions() {
        let active = b.store.current_membership(group, user).await?.is_some_and(|m| m.is_active());
        let user_active = b.store.account_by_id(user).await?.is_some_and(|a| a.is_active());
        if !user_active {
            b.hub.close_user(user);
        } else if !active {
            b.hub.end_membership(group, &[user]);
        }
    }
    // A session that ended while the link was down: its notification was lost with the link.
    for (user, session) in b.hub.sessions() {
        if !b.store.session_is_live(session).await? {
            b.hub.close_sessions(user, crate::messaging::hub::SessionsEnded::One(session));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_batches_are_published_together_and_other_events_keep_their_place() {
        let (watched, unwatched, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let frames = |n: usize| (0..n).map(|i| format!("frame {i}")).collect::<Vec<_>>();
        let posts = |g, from, to, f| ClusterEvent::Posts { g, from, to, f };
        let announced = |g, from, to, frames| Announced { g, from, to, frames };
        let ended = ClusterEvent::Ended { g: watched, u: vec![user] };
        let events = vec![
            posts(watched, 1, 3, frames(3)),
            posts(unwatched, 1, 9, vec![]),
            posts(watched, 4, 4, vec![]),
            ended.clone(),
            // Frames that do not match the range are not trusted: those posts are read.
            posts(watched, 5, 6, frames(1)),
            ClusterEvent::Disabled { u: user },
        ];
        assert_eq!(
            steps(events, |g| *g == watched),
            vec![
                Step::Posts(vec![announced(watched, 1, 3, frames(3)), announced(watched, 4, 4, vec![])]),
                Step::Other(ended),
                Step::Posts(vec![announced(watched, 5, 6, vec![])]),
                Step::Other(ClusterEvent::Disabled { u: user }),
            ]
        );
        assert_eq!(steps(vec![posts(unwatched, 1, 2, vec![])], |g| *g == watched), vec![]);
    }
}
