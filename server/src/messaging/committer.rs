//! The group commit's loop: take every post waiting, commit them in one transaction, answer each, and hand
//! the new posts to the publisher.

use std::sync::Arc;

use renkei_protocol::Post;
use tokio::sync::{mpsc, oneshot};

use crate::domain;
use crate::store::{Committer, PostOutcome, PostRequest, StoreError};

/// The most posts one transaction commits together: a batch costs a few round trips whatever its size
/// (why 1,024: docs/decisions/0004-the-post-path.md).
pub(super) const MAX_BATCH: usize = 1024;
/// Under load PostgreSQL's committer lets a batch gather this long before committing it, so that more posts
/// share each transaction: a transaction costs PostgreSQL about the same CPU whatever its size, and on
/// shared cores CPU is latency (docs/decisions/0004-the-post-path.md, "The committer"). SQLite's does not
/// wait: its commit costs the pages it writes, not CPU, and sixteen members posting one at a time waited
/// the gathering on every round (docs/decisions/0010-scale-that-matches-a-city.md).
pub(super) const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
/// Load, for [`GATHER`]: the last batch held at least this many posts. Below it a post is committed as
/// soon as the committer is free.
const GATHER_AFTER: usize = 4;
/// A batch this large already shares its transaction widely: it is committed without gathering (waiting
/// would only idle the committer at maximum throughput).
const GATHERED_ENOUGH: usize = 64;

#[derive(Debug)]
pub(super) struct Job {
    pub(super) req: PostRequest,
    pub(super) reply: oneshot::Sender<Result<PostOutcome, Arc<StoreError>>>,
}

/// The group commit's share of the node's metrics.
#[derive(Debug)]
pub(super) struct CommitMetrics {
    pub(super) posts: prometheus_client::metrics::counter::Counter,
    pub(super) batch: prometheus_client::metrics::histogram::Histogram,
    pub(super) seconds: prometheus_client::metrics::histogram::Histogram,
}

/// The group commit: take every post waiting, commit them in one transaction, answer each, and hand the new
/// posts to the publisher, which runs beside the next commit. While one batch is being synced to disk the
/// next one gathers, so the batch size follows the load; under load a small batch also waits `gather`
/// ([`GATHER`] on PostgreSQL) for company.
pub(super) async fn run_committer(
    mut committer: Committer,
    mut rx: mpsc::Receiver<Job>,
    published: mpsc::Sender<Vec<Post>>,
    metrics: CommitMetrics,
    gather: Option<std::time::Duration>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut loaded = false;
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        if let Some(gather) = gather
            && loaded
            && jobs.len() < GATHERED_ENOUGH
        {
            tokio::time::sleep(gather).await;
            while jobs.len() < MAX_BATCH
                && let Ok(job) = rx.try_recv()
            {
                jobs.push(job);
            }
        }
        loaded = jobs.len() >= GATHER_AFTER;
        let (batch, replies): (Vec<PostRequest>, Vec<_>) = jobs.drain(..).map(|j| (j.req, j.reply)).unzip();
        let started = std::time::Instant::now();
        let committed = committer.commit_posts(&batch, domain::now()).await;
        metrics.seconds.observe(started.elapsed().as_secs_f64());
        metrics.batch.observe(batch.len() as f64);
        match committed {
            Ok(outcomes) => {
                let created: Vec<Post> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok().filter(|(_, new)| *new).map(|(p, _)| p.clone()))
                    .collect();
                metrics.posts.inc_by(created.len() as u64);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                // In commit order; a full queue holds the next commit back rather than growing.
                if !created.is_empty() && published.send(created).await.is_err() {
                    tracing::error!("the publisher stopped");
                }
            }
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    crate::telemetry::database_unavailable(&e);
                } else {
                    tracing::error!(error = ?e, posts = replies.len(), "group commit failed");
                }
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
