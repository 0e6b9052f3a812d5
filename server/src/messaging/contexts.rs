//! A per-node cache of what posting to a group reads first ([`PostContext`]: the group, its active
//! members and their hours), kept for at most a second. It only decides which answer a caller gets before
//! the commit and who is off hours: the commit re-reads the group and its members inside its transaction,
//! so a stale entry can never let a post through that the database would refuse. An outsider is in no
//! entry, so they still get `not_found`; a member removed within the last second may get a content refusal
//! instead, about a group they knew. An entry that does not list the author is never trusted: the store
//! is asked again, so someone who joined a moment ago is not turned away. Removals on this node drop the
//! group's entry at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use uuid::Uuid;

use crate::store::{PostContext, Store, StoreError};

/// How long an entry serves.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts over (a node serves far fewer busy groups at once).
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub struct PostContexts {
    entries: Mutex<HashMap<Uuid, Arc<Entry>>>,
}

/// One read of a group's context: loaded once however many posts ask for it at the same moment. (Each
/// expiry used to send every post then in flight to the store: ~20 reads instead of one under load.)
#[derive(Debug, Default)]
struct Entry {
    loaded: OnceCell<(Instant, Option<Arc<PostContext>>)>,
}

impl Entry {
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
            let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match entries.get(&group) {
                Some(entry) if entry.serves(author) => (entry.clone(), false),
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

    /// Drops a group's entry (its members changed).
    pub fn forget(&self, group: Uuid) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&group);
    }
}

/// Reads a group's context in a task of its own. A WebSocket connection polls its posts' futures only
/// between its other work; a read in such a future kept its pool connection while the connection waited
/// for the pool elsewhere (a catch-up page), and with every pooled connection held so, each waited for the
/// others until the pool's 10-s acquire timeout (renkei-bench multinode: 10-s stalls and `unavailable`
/// errors in about one run of three). A task runs to its end whoever awaits it.
async fn read(store: &Store, group: Uuid) -> Result<Option<Arc<PostContext>>, StoreError> {
    let store = store.clone();
    Ok(crate::store::in_own_task(async move { store.post_context(group).await }).await?.map(Arc::new))
}
