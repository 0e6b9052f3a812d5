//! The fan-out hub of one node: which connection is subscribed to which group, and a bounded inbox per
//! connection. Publishing never blocks and never grows memory: a full inbox marks the connection as
//! lagged, and the connection catches up from the database (it never silently loses a post). An idle
//! connection's inbox holds no allocation at all: the queue exists only while frames wait in it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the hub hands a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A serialised server frame for a group; `seq` is set for posts, which connections deliver in order.
    Frame { group: Uuid, seq: Option<i64>, json: Arc<str> },
    /// The connection's user is no longer an active member of the group.
    MembershipEnded(Uuid),
}

/// A connection's inbox: the frames waiting for it, and the signals it reads when woken.
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<VecDeque<Outbound>>,
    /// Set when the queue was full: frames were dropped, and the connection must catch up from the database.
    pub lagged: AtomicBool,
    /// Set (to a [`CloseReason`]) when the connection must close: its account was disabled or its session
    /// ended. Zero while it may stay open.
    close: AtomicU8,
    /// Woken whenever something above changes.
    pub notify: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single call, so a panic elsewhere cannot leave them
    // inconsistent: a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the hub closes a connection; the connection tells its client in the close frame (code 1008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// An administrator disabled the account.
    AccountDisabled = 1,
    /// The session the connection was opened with ended: logout, revoked, password changed or reset,
    /// expired.
    SessionEnded = 2,
}

impl CloseReason {
    /// The close frame's reason text (stable: clients may match it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountDisabled => "account disabled",
            Self::SessionEnded => "session ended",
        }
    }
}

/// Which sessions of a user end (see [`Hub::close_sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SessionsEnded {
    /// This one session.
    One(Uuid),
    /// Every session of the user but this one (a password change keeps the session that changed it).
    AllBut(Option<Uuid>),
}

impl Inbox {
    /// Why the connection must close, if it must.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.close.load(Ordering::Acquire) {
            1 => Some(CloseReason::AccountDisabled),
            2 => Some(CloseReason::SessionEnded),
            _ => None,
        }
    }

    fn close(&self, reason: CloseReason) {
        // The first reason stays: a disabled account's sessions also end, and "disabled" says more.
        let _ = self.close.compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// Takes every waiting frame, in the order published; the queue's memory goes with them.
    pub fn take(&self) -> VecDeque<Outbound> {
        std::mem::take(&mut *lock(&self.queue))
    }

    fn push(&self, out: Outbound, limit: usize) {
        {
            let mut queue = lock(&self.queue);
            if queue.len() < limit {
                queue.push_back(out);
            } else {
                self.lagged.store(true, Ordering::Release);
            }
        }
        self.notify.notify_one();
    }
}

#[derive(Debug)]
struct Conn {
    user: Uuid,
    /// The session the connection was opened with: when it ends, the connection closes.
    session: Uuid,
    inbox: Arc<Inbox>,
    /// The groups this connection is subscribed to, so that leaving touches only those.
    groups: Vec<Uuid>,
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

impl Inner {
    fn leave(&mut self, conn: u64, group: Uuid) {
        if let Some(subs) = self.groups.get_mut(&group) {
            subs.conns.remove(&conn);
            if subs.conns.is_empty() {
                self.groups.remove(&group);
            }
        }
    }
}

/// The hub. A sync mutex: it is only held for map updates and queue pushes, never across an `.await`.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    queue_frames: usize,
    /// Connections registered here, and frames queued for them (shared with `/metrics`).
    connections: Gauge,
    deliveries: Counter,
}

/// A connection's place in the hub; leaving it (drop) unsubscribes everything.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    pub id: u64,
    pub inbox: Arc<Inbox>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        if let Some(conn) = inner.conns.remove(&self.id) {
            self.hub.connections.dec();
            for group in conn.groups {
                inner.leave(self.id, group);
            }
        }
    }
}

impl Hub {
    pub fn new(queue_frames: usize) -> Arc<Self> {
        Self::counted(queue_frames, Gauge::default(), Counter::default())
    }

    /// A hub that counts its connections and deliveries into these (the node's metrics).
    pub fn counted(queue_frames: usize, connections: Gauge, deliveries: Counter) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            queue_frames: queue_frames.max(1),
            connections,
            deliveries,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn register(self: &Arc<Self>, user: Uuid, session: Uuid) -> Registration {
        let inbox = Arc::new(Inbox::default());
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.conns.insert(id, Conn { user, session, inbox: inbox.clone(), groups: Vec::new() });
        self.connections.inc();
        Registration { hub: self.clone(), id, inbox }
    }

    pub fn subscribe(&self, conn: u64, group: Uuid) {
        let mut inner = self.lock();
        let Some(c) = inner.conns.get_mut(&conn) else { return };
        if !c.groups.contains(&group) {
            c.groups.push(group);
        }
        inner.groups.entry(group).or_default().conns.insert(conn);
    }

    pub fn unsubscribe(&self, conn: u64, group: Uuid) {
        let mut inner = self.lock();
        if let Some(c) = inner.conns.get_mut(&conn) {
            c.groups.retain(|g| *g != group);
        }
        inner.leave(conn, group);
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
            conn.inbox.push(Outbound::Frame { group, seq, json: json.clone() }, self.queue_frames);
        }
        self.deliveries.inc_by(subs.conns.len() as u64);
    }

    /// Stops delivering `group` to these users' connections at once and tells them why.
    pub fn end_membership(&self, group: Uuid, users: &[Uuid]) {
        let mut inner = self.lock();
        let Inner { conns, groups, .. } = &mut *inner;
        let Some(subs) = groups.get_mut(&group) else { return };
        subs.conns.retain(|id| {
            let Some(conn) = conns.get_mut(id) else { return false };
            if !users.contains(&conn.user) {
                return true;
            }
            conn.groups.retain(|g| *g != group);
            // On a full inbox the resync that follows re-checks membership, so the notice is not lost.
            conn.inbox.push(Outbound::MembershipEnded(group), self.queue_frames);
            false
        });
        if subs.conns.is_empty() {
            groups.remove(&group);
        }
    }

    /// Closes every connection of a user (account disabled).
    pub fn close_user(&self, user: Uuid) {
        for conn in self.lock().conns.values().filter(|c| c.user == user) {
            conn.inbox.close(CloseReason::AccountDisabled);
        }
    }

    /// Closes the connections opened with the sessions of `user` that ended.
    pub fn close_sessions(&self, user: Uuid, ended: SessionsEnded) {
        let ends = |c: &&Conn| {
            c.user == user
                && match ended {
                    SessionsEnded::One(s) => c.session == s,
                    SessionsEnded::AllBut(kept) => Some(c.session) != kept,
                }
        };
        for conn in self.lock().conns.values().filter(ends) {
            conn.inbox.close(CloseReason::SessionEnded);
        }
    }

    /// Every (user, session) with a connection here, for re-checking after the cluster link was down.
    pub fn sessions(&self) -> Vec<(Uuid, Uuid)> {
        let mut out: Vec<_> = self.lock().conns.values().map(|c| (c.user, c.session)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The last post sequence number published here for `group`, if it has local subscribers and one was.
    pub fn last_published(&self, group: Uuid) -> Option<i64> {
        self.lock().groups.get(&group).map(|s| s.last_published).filter(|&seq| seq > 0)
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
        let reg = hub.register(Uuid::new_v4(), Uuid::new_v4());
        hub.subscribe(reg.id, group);
        for seq in 1..=5 {
            hub.publish(group, Some(seq), Arc::from("{}"));
        }
        assert!(reg.inbox.lagged.load(Ordering::Acquire));
        let queued: Vec<_> = reg.inbox.take().into_iter().collect();
        assert!(matches!(
            queued.as_slice(),
            [Outbound::Frame { seq: Some(1), .. }, Outbound::Frame { seq: Some(2), .. }]
        ));
        assert!(reg.inbox.take().is_empty());
        assert_eq!(hub.watched(), vec![(group, 5)]);
    }

    #[test]
    fn ending_sessions_closes_only_the_connections_opened_with_them() {
        let hub = Hub::new(8);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (phone, desk) = (Uuid::new_v4(), Uuid::new_v4());
        let a_phone = hub.register(alice, phone);
        let a_desk = hub.register(alice, desk);
        let b = hub.register(bob, Uuid::new_v4());
        hub.close_sessions(alice, SessionsEnded::One(phone));
        assert_eq!(a_phone.inbox.close_reason(), Some(CloseReason::SessionEnded));
        assert_eq!(a_desk.inbox.close_reason(), None);
        hub.close_sessions(alice, SessionsEnded::AllBut(Some(desk)));
        assert_eq!(a_desk.inbox.close_reason(), None);
        hub.close_sessions(alice, SessionsEnded::AllBut(None));
        assert_eq!(a_desk.inbox.close_reason(), Some(CloseReason::SessionEnded));
        assert_eq!(b.inbox.close_reason(), None);
        hub.close_user(bob);
        assert_eq!(b.inbox.close_reason(), Some(CloseReason::AccountDisabled));
    }

    #[test]
    fn ending_a_membership_stops_delivery_to_that_user_only() {
        let hub = Hub::new(8);
        let group = Uuid::new_v4();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let a = hub.register(alice, Uuid::new_v4());
        let b = hub.register(bob, Uuid::new_v4());
        hub.subscribe(a.id, group);
        hub.subscribe(b.id, group);
        hub.end_membership(group, &[bob]);
        hub.publish(group, Some(1), Arc::from("{}"));
        assert!(matches!(a.inbox.take().pop_front(), Some(Outbound::Frame { .. })));
        let b_queue: Vec<_> = b.inbox.take().into_iter().collect();
        assert!(matches!(b_queue.as_slice(), [Outbound::MembershipEnded(g)] if *g == group));
        drop(a);
        drop(b);
        assert!(hub.watched().is_empty());
        assert_eq!(hub.connection_count(), 0);
    }

    #[test]
    fn leaving_removes_only_that_connections_subscriptions() {
        let hub = Hub::new(8);
        let (g1, g2) = (Uuid::new_v4(), Uuid::new_v4());
        let a = hub.register(Uuid::new_v4(), Uuid::new_v4());
        let b = hub.register(Uuid::new_v4(), Uuid::new_v4());
        hub.subscribe(a.id, g1);
        hub.subscribe(a.id, g2);
        hub.subscribe(b.id, g2);
        hub.unsubscribe(b.id, g2);
        hub.subscribe(b.id, g1);
        drop(a);
        assert_eq!(hub.subscriptions().into_iter().map(|(g, _)| g).collect::<Vec<_>>(), vec![g1]);
        hub.publish(g1, Some(1), Arc::from("{}"));
        assert_eq!(b.inbox.take().len(), 1);
        drop(b);
        assert!(hub.watched().is_empty());
    }
}
