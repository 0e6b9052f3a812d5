//! A per-node cache of what posting to a group reads first ([`PostContext`]: the group, its active
//! members and their hours), kept for at most a second. It only decides which answer a caller gets before
//! the commit and who is off hours: the commit re-reads the group and its members inside its transaction,
//! so a stale entry can never let a post through that the database would refuse. An outsider is in no
//! entry, so they still get `not_found`; a member removed within the last second may get a content refusal
//! instead, about a group they knew. An entry that does not list the author is never trusted: the store
//! is asked again, so someone who joined a moment ago is not turned away. Removals on this node drop the
//! group's entry at once.
//!
//! Under load an entry is read again in the background before it expires, while it goes on serving, so
//! that no post waits for the read; each group's refresh comes at its own moment. When every entry expired
//! together, once a second every busy group's next post waited for its read, all of them at once
//! (docs/decisions/0004-the-post-path.md).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use uuid::Uuid;

use crate::store::{PostContext, Store, StoreError};

/// How long an entry serves.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// An entry at least this old is read again in the background by the next post that uses it, plus up to
/// [`REFRESH_SPREAD_MS`] by its group's id, so that groups loaded together are not read again together.
const REFRESH_FROM: Duration = Duration::from_millis(500);
const REFRESH_SPREAD_MS: u64 = 400;
/// Entries kept before the cache starts over (a node serves far fewer busy groups at once).
const MAX_ENTRIES: usize = 50_000;

type Entries = Arc<Mutex<HashMap<Uuid, Arc<Entry>>>>;

/// Cheap to clone: clones share the one cache (the cluster listener forgets entries in it too).
#[derive(Debug, Default, Clone)]
pub struct PostContexts {
    entries: Entries,
}

fn lock(entries: &Entries) -> MutexGuard<'_, HashMap<Uuid, Arc<Entry>>> {
    entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// When `group`'s entry is due to be read again.
fn refresh_after(group: Uuid) -> Duration {
    REFRESH_FROM + Duration::from_millis(u64::try_from(group.as_u128() % u128::from(REFRESH_SPREAD_MS)).unwrap_or(0))
}

/// One read of a group's context: loaded once however many posts ask for it at the same moment. (Each
/// expiry used to send every post then in flight to the store: ~20 reads instead of one under load.)
#[derive(Debug, Default)]
struct Entry {
    loaded: OnceCell<(Instant, Option<Arc<PostContext>>)>,
    /// Set by the post that starts this entry's background refresh, so that only one does.
    refreshing: AtomicBool,
}

impl Entry {
    fn loaded(at: Instant, context: Option<Arc<PostContext>>) -> Self {
        Entry { loaded: OnceCell::new_with(Some((at, context))), refreshing: AtomicBool::new(false) }
    }

    /// Whether this caller is the one to start the entry's background refresh.
    fn claim_refresh(&self, group: Uuid) -> bool {
        let due = self.loaded.get().is_some_and(|(at, _)| at.elapsed() >= refresh_after(group));
        due && !self.refreshing.swap(true, Ordering::Relaxed)
    }

    /// Whether `author` may be served this entry: still loading (then they wait for it), or read within
    /// the last second and listing them.
    fn serves(&self, author: Uuid) -> bool {
        match self.loaded.get() {
            None => true,
            Some((at, context)) => {
                at.elapsed() < FRESH_FOR && context.as_ref().is_some_and(|c| c.membership_of(author).is_some())
            }
        }
    }
}

impl PostContexts {
    /// The group's context for a post by `author`: from the cache if read within the last second and
    /// listing `author` as an active member, else from the store.
    pub async fn get(&self, store: &Store, group: Uuid, author: Uuid) -> Result<Option<Arc<PostContext>>, StoreError> {
        let (entry, ours) = {
            let mut entries = lock(&self.entries);
            match entries.get(&group) {
                Some(entry) if entry.serves(author) => {
                    if entry.claim_refresh(group) {
                        self.refresh(store, group, entry.clone());
                    }
                    (entry.clone(), false)
                }
                _ => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                    let entry = Arc::new(Entry::default());
                    entries.insert(group, entry.clone());
                    (entry, true)
                }
            }
        };
        let (_, context) = entry
            .loaded
            .get_or_try_init(|| async { Ok::<_, StoreError>((Instant::now(), read(store, group).await?)) })
            .await?;
        match context {
            Some(context) if ours || context.membership_of(author).is_some() => Ok(Some(context.clone())),
            None if ours => Ok(None),
            // A read that began before this caller asked, without them in it (they may have joined since).
            _ => read(store, group).await,
        }
    }

    /// Reads `group`'s context again in a task of its own and puts it in place of `current`, unless
    /// `current` has been dropped or replaced meanwhile ([`PostContexts::forget`]: a read that began
    /// before a removal must not bring the old members back). On failure `current` simply expires.
    fn refresh(&self, store: &Store, group: Uuid, current: Arc<Entry>) {
        let (entries, store) = (self.entries.clone(), store.clone());
        tokio::spawn(async move {
            let at = Instant::now();
            let Ok(context) = store.post_context(group).await else { return };
            install(&entries, group, &current, Entry::loaded(at, context.map(Arc::new)));
        });
    }

    /// Drops a group's entry (its members changed).
    pub fn forget(&self, group: Uuid) {
        lock(&self.entries).remove(&group);
    }
}

/// Puts `fresh` in place of `current` if `current` is still `group`'s entry; whether it did.
fn install(entries: &Entries, group: Uuid, current: &Arc<Entry>, fresh: Entry) -> bool {
    let mut entries = lock(entries);
    let still = entries.get(&group).is_some_and(|e| Arc::ptr_eq(e, current));
    if still {
        entries.insert(group, Arc::new(fresh));
    }
    still
}

/// Reads a group's context in a task of its own. A WebSocket connection polls its posts' futures only
/// between its other work; a read in such a future kept its pool connection while the connection waited
/// for the pool elsewhere (a catch-up page), and with every pooled connection held so, each waited for the
/// others until the pool's 10-s acquire timeout (docs/decisions/0004-the-post-path.md, "Database calls
/// from a post's future"). A task runs to its end whoever awaits it.
async fn read(store: &Store, group: Uuid) -> Result<Option<Arc<PostContext>>, StoreError> {
    let store = store.clone();
    Ok(crate::store::in_own_task(async move { store.post_context(group).await }).await?.map(Arc::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded_ago(ago: Duration) -> Arc<Entry> {
        Arc::new(Entry::loaded(Instant::now().checked_sub(ago).unwrap_or_else(Instant::now), None))
    }

    #[test]
    fn an_entry_is_refreshed_once_between_half_a_second_and_its_expiry() {
        let group = Uuid::new_v4();
        assert!(!loaded_ago(Duration::ZERO).claim_refresh(group));
        let old = loaded_ago(Duration::from_millis(950));
        assert!(old.claim_refresh(group));
        assert!(!old.claim_refresh(group), "a second post does not start another read");
        // Groups loaded together are read again at moments spread over 400 ms.
        let moments: std::collections::HashSet<Duration> = (0..100).map(|_| refresh_after(Uuid::new_v4())).collect();
        assert!(moments.len() > 50);
        assert!(moments.iter().all(|m| *m >= REFRESH_FROM && *m < REFRESH_FROM + Duration::from_millis(400)));
        assert!(REFRESH_FROM + Duration::from_millis(REFRESH_SPREAD_MS) < FRESH_FOR);
    }

    #[test]
    fn a_refresh_never_brings_back_an_entry_dropped_or_replaced_meanwhile() {
        let contexts = PostContexts::default();
        let group = Uuid::new_v4();
        let current = loaded_ago(Duration::from_millis(700));
        lock(&contexts.entries).insert(group, current.clone());
        // Members changed while the read was on its way: the entry was dropped, and stays dropped.
        contexts.forget(group);
        assert!(!install(&contexts.entries, group, &current, Entry::loaded(Instant::now(), None)));
        assert!(lock(&contexts.entries).get(&group).is_none());
        // An entry loaded since is not overwritten by the older read.
        let newer = loaded_ago(Duration::ZERO);
        lock(&contexts.entries).insert(group, newer.clone());
        assert!(!install(&contexts.entries, group, &current, Entry::loaded(Instant::now(), None)));
        assert!(Arc::ptr_eq(&lock(&contexts.entries)[&group], &newer));
        // Still in place: replaced by the fresh read.
        assert!(install(&contexts.entries, group, &newer, Entry::loaded(Instant::now(), None)));
        assert!(!Arc::ptr_eq(&lock(&contexts.entries)[&group], &newer));
    }
}
