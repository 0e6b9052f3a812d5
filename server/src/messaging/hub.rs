//! The fan-out hub of one node: which connection is subscribed to which group, and a bounded queue per
//! connection. Publishing never blocks and never grows memory: a full queue marks the connection as
//! lagged, and the connection catches up from the database (it never silently loses a post).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

/// What the hub hands a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A serialised server frame for a group; `seq` is set for posts, which connections deliver in order.
    Frame { group: Uuid, seq: Option<i64>, json: Arc<str> },
    /// The connection's user is no longer an active member of the group.
    MembershipEnded(Uuid),
}

/// Signals a connection reads when its queue could not take a frame, or when it must close.
#[derive(Debug, Default)]
pub struct ConnSignals {
    pub lagged: AtomicBool,
    pub close: AtomicBool,
    pub notify: Notify,
}

#[derive(Debug)]
struct Conn {
    user: Uuid,
    tx: mpsc::Sender<Outbound>,
    signals: Arc<ConnSignals>,
}

#[derive(Debug, Default)]
struct GroupSubs {
    conns: HashSet<u64>,
    /// The highest post sequence number published here, for the cluster's catch-up.
    last_published: i64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Conn>,
    groups: HashMap<Uuid, GroupSubs>,
}

/// The hub. A sync mutex: it is only held for map updates and `try_send`s, never across an `.await`.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    queue_frames: usize,
}

/// A connection's place in the hub; leaving it (drop) unsubscribes everything.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    pub id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    pub signals: Arc<ConnSignals>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        inner.conns.remove(&self.id);
        inner.groups.retain(|_, subs| {
            subs.conns.remove(&self.id);
            !subs.conns.is_empty()
        });
    }
}

impl Hub {
    pub fn new(queue_frames: usize) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(Inner::default()), queue_frames: queue_frames.max(1) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent (each update is one call),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(self: &Arc<Self>, user: Uuid) -> Registration {
        let (tx, rx) = mpsc::channel(self.queue_frames);
        let signals = Arc::new(ConnSignals::default());
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.conns.insert(id, Conn { user, tx, signals: signals.clone() });
        Registration { hub: self.clone(), id, rx, signals }
    }

    pub fn subscribe(&self, conn: u64, group: Uuid) {
        self.lock().groups.entry(group).or_default().conns.insert(conn);
    }

    pub fn unsubscribe(&self, conn: u64, group: Uuid) {
        let mut inner = self.lock();
        if let Some(subs) = inner.groups.get_mut(&group) {
            subs.conns.remove(&conn);
        }
    }

    /// Queues a frame for every connection subscribed to `group`, without waiting.
    pub fn publish(&self, group: Uuid, seq: Option<i64>, json: Arc<str>) {
        let mut inner = self.lock();
        let Inner { conns, groups, .. } = &mut *inner;
        let Some(subs) = groups.get_mut(&group) else { return };
        if let Some(seq) = seq {
            subs.last_published = subs.last_published.max(seq);
        }
        for id in &subs.conns {
            let Some(conn) = conns.get(id) else { continue };
            let frame = Outbound::Frame { group, seq, json: json.clone() };
            if conn.tx.try_send(frame).is_err() {
                conn.signals.lagged.store(true, Ordering::Release);
                conn.signals.notify.notify_one();
            }
        }
    }

    /// Stops delivering `group` to these users' connections at once and tells them why.
    pub fn end_membership(&self, group: Uuid, users: &[Uuid]) {
        let mut inner = self.lock();
        let Inner { conns, groups, .. } = &mut *inner;
        let Some(subs) = groups.get_mut(&group) else { return };
        subs.conns.retain(|id| {
            let Some(conn) = conns.get(id) else { return false };
            if !users.contains(&conn.user) {
                return true;
            }
            if conn.tx.try_send(Outbound::MembershipEnded(group)).is_err() {
                // The resync that follows re-checks membership, so the notice is not lost.
                conn.signals.lagged.store(true, Ordering::Release);
                conn.signals.notify.notify_one();
            }
            false
        });
    }

    /// Closes every connection of a user (account disabled).
    pub fn close_user(&self, user: Uuid) {
        for conn in self.lock().conns.values().filter(|c| c.user == user) {
            conn.signals.close.store(true, Ordering::Release);
            conn.signals.notify.notify_one();
        }
    }

    /// Groups with at least one local subscriber, and the last sequence number published for each.
    pub fn watched(&self) -> Vec<(Uuid, i64)> {
        self.lock().groups.iter().filter(|(_, s)| !s.conns.is_empty()).map(|(g, s)| (*g, s.last_published)).collect()
    }

    /// Every (group, user) pair subscribed here.
    pub fn subscriptions(&self) -> Vec<(Uuid, Uuid)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (group, subs) in &inner.groups {
            for id in &subs.conns {
                if let Some(conn) = inner.conns.get(id) {
                    out.push((*group, conn.user));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_marks_the_connection_lagged_instead_of_blocking_or_growing() {
        let hub = Hub::new(2);
        let group = Uuid::new_v4();
        let mut reg = hub.register(Uuid::new_v4());
        hub.subscribe(reg.id, group);
        for seq in 1..=5 {
            hub.publish(group, Some(seq), Arc::from("{}"));
        }
        assert!(reg.signals.lagged.load(Ordering::Acquire));
        assert!(matches!(reg.rx.try_recv(), Ok(Outbound::Frame { seq: Some(1), .. })));
        assert!(matches!(reg.rx.try_recv(), Ok(Outbound::Frame { seq: Some(2), .. })));
        assert!(reg.rx.try_recv().is_err());
        assert_eq!(hub.watched(), vec![(group, 5)]);
    }

    #[test]
    fn ending_a_membership_stops_delivery_to_that_user_only() {
        let hub = Hub::new(8);
        let group = Uuid::new_v4();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = hub.register(alice);
        let mut b = hub.register(bob);
        hub.subscribe(a.id, group);
        hub.subscribe(b.id, group);
        hub.end_membership(group, &[bob]);
        hub.publish(group, Some(1), Arc::from("{}"));
        assert!(matches!(a.rx.try_recv(), Ok(Outbound::Frame { .. })));
        assert!(matches!(b.rx.try_recv(), Ok(Outbound::MembershipEnded(g)) if g == group));
        assert!(b.rx.try_recv().is_err());
        drop(a);
        drop(b);
        assert!(hub.watched().is_empty());
        assert_eq!(hub.connection_count(), 0);
    }
}
