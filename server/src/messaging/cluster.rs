//! The cluster link on PostgreSQL: LISTEN for the other nodes' events and replay them locally from the
//! database. Notifications sent while the listener is disconnected are lost, so every (re)connect is
//! followed by a catch-up by sequence number for every group this node has subscribers in, and a
//! re-check of its subscribers' memberships.

use std::time::Duration;

use super::{Broadcaster, ClusterEvent, ClusterMessage};
use crate::store::StoreError;

pub(super) const CHANNEL: &str = "renkei_events";

pub(super) async fn listen(broadcaster: Broadcaster) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&broadcaster).await {
            Err(StoreError::Unavailable(sqlx::Error::PoolClosed)) => return,
            Err(e) => tracing::warn!(error = %e, "cluster listener lost its connection; reconnecting"),
            Ok(()) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Notifications taken at once when several wait (see [`listen_once`]), up to this many posts in all.
const MAX_COALESCED_POSTS: i64 = 4096;

async fn listen_once(b: &Broadcaster) -> Result<(), StoreError> {
    let mut listener = b.store.cluster_listener(CHANNEL).await?;
    catch_up(b).await?;
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

/// What replaying a run of events does, in order: read and publish the posts of consecutive batches
/// together, or apply one other event.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Posts(Vec<(uuid::Uuid, i64, i64)>),
    Other(ClusterEvent),
}

/// Splits events (in the order they were sent) into [`Step`]s: consecutive batches' posts are read in one
/// statement, and any other event comes after the posts sent before it and before those sent after it,
/// so that (for one) a membership that ended stops delivery before the posts committed after it.
/// `watched` says which groups have subscribers on this node; other groups' posts are not read.
fn steps(events: Vec<ClusterEvent>, watched: impl Fn(&uuid::Uuid) -> bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut ranges = Vec::new();
    for event in events {
        match event {
            ClusterEvent::Posts { g, from, to } => {
                if watched(&g) {
                    ranges.push((g, from, to));
                }
            }
            other => {
                if !ranges.is_empty() {
                    steps.push(Step::Posts(std::mem::take(&mut ranges)));
                }
                steps.push(Step::Other(other));
            }
        }
    }
    if !ranges.is_empty() {
        steps.push(Step::Posts(ranges));
    }
    steps
}

/// Replays other nodes' events in the order they were sent (see [`steps`]).
async fn replay(b: &Broadcaster, events: Vec<ClusterEvent>) -> Result<(), StoreError> {
    let watched: std::collections::HashSet<uuid::Uuid> = b.hub.watched().into_iter().map(|(g, _)| g).collect();
    let is_watched = |g: &uuid::Uuid| watched.contains(g);
    for step in steps(events, is_watched) {
        match step {
            Step::Posts(ranges) => {
                let posts = b.store.posts_in_ranges(&ranges).await?;
                b.publish_posts_locally(&posts);
            }
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
            Step::Other(ClusterEvent::Ended { g, u }) => b.hub.end_membership(g, &u),
            Step::Other(ClusterEvent::Disabled { u }) => b.hub.close_user(u),
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_batches_are_read_together_and_other_events_keep_their_place() {
        let (watched, unwatched, user) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let posts = |g, from, to| ClusterEvent::Posts { g, from, to };
        let ended = ClusterEvent::Ended { g: watched, u: vec![user] };
        let events = vec![
            posts(watched, 1, 3),
            posts(unwatched, 1, 9),
            posts(watched, 4, 4),
            ended.clone(),
            posts(watched, 5, 6),
            ClusterEvent::Disabled { u: user },
        ];
        assert_eq!(
            steps(events, |g| *g == watched),
            vec![
                Step::Posts(vec![(watched, 1, 3), (watched, 4, 4)]),
                Step::Other(ended),
                Step::Posts(vec![(watched, 5, 6)]),
                Step::Other(ClusterEvent::Disabled { u: user }),
            ]
        );
        assert_eq!(steps(vec![posts(unwatched, 1, 2)], |g| *g == watched), vec![]);
    }
}
