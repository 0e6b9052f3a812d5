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

async fn listen_once(b: &Broadcaster) -> Result<(), StoreError> {
    let mut listener = b.store.cluster_listener(CHANNEL).await?;
    catch_up(b).await?;
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Ok(message) = serde_json::from_str::<ClusterMessage>(notification.payload())
                    && message.n != b.node
                {
                    replay(b, message.e).await?;
                }
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

async fn replay(b: &Broadcaster, events: Vec<ClusterEvent>) -> Result<(), StoreError> {
    let watched: std::collections::HashSet<uuid::Uuid> = b.hub.watched().into_iter().map(|(g, _)| g).collect();
    let is_watched = |g: &uuid::Uuid| watched.contains(g);
    // A batch's posts, read at once for every group watched here.
    let ranges: Vec<(uuid::Uuid, i64, i64)> = events
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::Posts { g, from, to } if is_watched(g) => Some((*g, *from, *to)),
            _ => None,
        })
        .collect();
    if !ranges.is_empty() {
        let posts = b.store.posts_in_ranges(&ranges).await?;
        b.publish_posts_locally(&posts);
    }
    for event in events {
        match event {
            ClusterEvent::Updated { g, s } if is_watched(&g) => {
                if let Some(post) = b.store.post(g, s).await? {
                    b.publish_update_locally(&post);
                }
            }
            ClusterEvent::Seen { g, s, u } if is_watched(&g) => {
                if let Some(mark) = b.store.seen_marks(g, s).await?.into_iter().find(|m| m.by.id == u) {
                    b.publish_seen_locally(&mark);
                }
            }
            ClusterEvent::Ended { g, u } => b.hub.end_membership(g, &u),
            ClusterEvent::Disabled { u } => b.hub.close_user(u),
            _ => {}
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
