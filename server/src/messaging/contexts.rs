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

use uuid::Uuid;

use crate::store::{PostContext, Store, StoreError};

/// How long an entry serves.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts over (a node serves far fewer busy groups at once).
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub struct PostContexts {
    entries: Mutex<HashMap<Uuid, (Instant, Arc<PostContext>)>>,
}

impl PostContexts {
    /// The group's context for a post by `author`: from the cache if read within the last second and
    /// listing `author` as an active member, else from the store.
    pub async fn get(&self, store: &Store, group: Uuid, author: Uuid) -> Result<Option<Arc<PostContext>>, StoreError> {
        if let Ok(entries) = self.entries.lock()
            && let Some((at, context)) = entries.get(&group)
            && at.elapsed() < FRESH_FOR
            && context.membership_of(author).is_some()
        {
            return Ok(Some(context.clone()));
        }
        let Some(context) = store.post_context(group).await? else { return Ok(None) };
        let context = Arc::new(context);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(group, (Instant::now(), context.clone()));
        }
        Ok(Some(context))
    }

    /// Drops a group's entry (its members changed).
    pub fn forget(&self, group: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&group);
        }
    }
}
