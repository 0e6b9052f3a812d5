//! What every request handler and the live connections share: the store, messaging, audit, the lexicon,
//! the configuration, metrics, the notifier and the upload permits. Its own module, so that a handler
//! depends on it and not on `app` (which builds the router from the handlers).

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared by every request handler. Cheap to clone: everything inside is reference-counted.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// The group commit, the fan-out hub and the cluster link.
    pub messaging: Arc<crate::messaging::Messaging>,
    /// The audit recorder.
    pub audit: Arc<crate::audit::Audit>,
    /// The emergency lexicon (rule 6), parsed once at start.
    pub lexicon: Arc<crate::policy::content::Lexicon>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Web Push and e-mail: the VAPID key, the SMTP transport, the planner and sender.
    pub notifier: Arc<crate::notifications::Notifier>,
    /// Uploads being read and cleaned on this node (`max_concurrent_uploads` permits).
    pub uploads: Arc<tokio::sync::Semaphore>,
}
