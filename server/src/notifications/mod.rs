//! Notifications: every node plans what is due for each member (`policy::notifications` decides) and sends
//! the outbox's due rows — Web Push to each subscribed browser, e-mail through the operator's SMTP server.
//! Nothing here runs on the post path: posting only writes posts; a slow or failing push service or SMTP
//! server delays nothing but its own notifications (each call has a timeout; the outbox retries with
//! back-off). What is sent is a count (`NotificationPayload`), never a label, a name or a word of a post.

mod email;
mod push;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use renkei_protocol::NotificationPayload;
use time::OffsetDateTime;

use crate::config::Config;
use crate::metrics::{Metrics, NotificationOutcome};
use crate::policy::availability::is_off_hours;
use crate::policy::notifications::{Decision, decide};
use crate::store::{OutboxItem, OutboxTarget, Store};

pub use push::{VapidKey, check_keys as check_push_keys};

/// How long a node holds the rows it claimed before another may take them.
const LEASE: time::Duration = time::Duration::minutes(2);
/// Rows one node claims per pass, and sends at once.
const BATCH: usize = 64;
const CONCURRENT_SENDS: usize = 8;
/// A row is given up after this many attempts (the last about an hour after the first).
const MAX_ATTEMPTS: u32 = 8;
/// Sent and abandoned rows are kept this long, for the operator's eyes.
const KEEP: time::Duration = time::Duration::days(7);

/// The planner and sender of one node.
#[derive(Debug)]
pub struct Notifier {
    store: Store,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    vapid: VapidKey,
    http: reqwest::Client,
    smtp: Option<email::Smtp>,
}

impl Notifier {
    /// Loads (or makes, on first start) the VAPID key and prepares the SMTP transport if configured.
    pub async fn new(store: Store, config: Arc<Config>, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let vapid = VapidKey::load_or_create(&config, &store).await?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let smtp = email::Smtp::from_config(&config)?;
        Ok(Self { store, config, metrics, vapid, http, smtp })
    }

    /// The VAPID public key, base64url, for browsers to subscribe with.
    pub fn vapid_public_key(&self) -> &str {
        self.vapid.public_key()
    }

    pub fn email_available(&self) -> bool {
        self.smtp.is_some()
    }

    /// One pass at `now`: plan what is due, then send what the outbox holds.
    pub async fn run_once(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        self.plan(now).await?;
        self.send_due(now).await?;
        let backlog = self.store.notification_outbox_backlog(now - KEEP).await?;
        self.metrics.notification_backlog(backlog);
        Ok(())
    }

    /// Queues a notification for every member it is due for at `now`.
    pub async fn plan(&self, now: OffsetDateTime) -> anyhow::Result<usize> {
        let local = self.config.zone().local(now);
        let mut planned = 0;
        for member in self.store.notification_candidates().await? {
            let pending = self.store.pending_posts(member.user, member.noticed_through, member.care_manager).await?;
            let off_hours = is_off_hours(&member.availability, local);
            if decide(pending, off_hours, member.last_sent_at, member.settings.digest_minutes, now) != Decision::Send {
                continue;
            }
            let email = member.settings.email.then_some(member.settings.email_address.as_deref()).flatten();
            let email = email.filter(|_| self.smtp.is_some());
            if self
                .store
                .plan_notification(
                    member.user,
                    member.noticed_through,
                    pending.newest,
                    pending,
                    member.settings.push,
                    email,
                    now,
                )
                .await?
            {
                planned += 1;
            }
        }
        Ok(planned)
    }

    /// Claims and sends the outbox's due rows, a few at a time, until none is left.
    pub async fn send_due(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        loop {
            let items = self.store.claim_notifications(now, LEASE, BATCH as i64).await?;
            let claimed = items.len();
            futures_util::stream::iter(items)
                .for_each_concurrent(CONCURRENT_SENDS, |item| async move {
                    if let Err(e) = self.send_one(item, now).await {
                        tracing::warn!(error = %e, "recording a notification's outcome failed; it is retried");
                    }
                })
                .await;
            if claimed < BATCH {
                return Ok(());
            }
        }
    }

    async fn send_one(&self, item: OutboxItem, now: OffsetDateTime) -> anyhow::Result<()> {
        let payload = NotificationPayload::new(item.posts, item.question);
        let (channel, subscription, outcome) = match &item.target {
            OutboxTarget::Push { subscription, endpoint, p256dh, auth } => {
                let outcome =
                    push::send(&self.http, &self.vapid, &self.config.vapid_subject, endpoint, p256dh, auth, &payload)
                        .await;
                if outcome == Sent::Gone {
                    self.store.forget_push_subscription(*subscription).await?;
                }
                ("push", Some(*subscription), outcome)
            }
            OutboxTarget::Email { address } => {
                let outcome = match &self.smtp {
                    Some(smtp) => smtp.send(address, &payload, self.config.public_url.as_deref()).await,
                    None => Sent::Failed("smtp_not_configured".into()),
                };
                ("email", None, outcome)
            }
        };
        let recorded = match &outcome {
            Sent::Delivered => {
                self.store.notification_sent(item.id, subscription, now).await?;
                NotificationOutcome::Sent
            }
            Sent::Gone => NotificationOutcome::Gone,
            Sent::Retry(e) if item.attempts < MAX_ATTEMPTS => {
                let wait = 30_i64.saturating_mul(1 << item.attempts.saturating_sub(1).min(7)).min(3600);
                tracing::info!(channel, attempts = item.attempts, error = %e, "notification not delivered; retrying");
                self.store.notification_failed(item.id, Some(now + time::Duration::seconds(wait)), e, now).await?;
                NotificationOutcome::Retry
            }
            Sent::Retry(e) | Sent::Failed(e) => {
                tracing::warn!(channel, attempts = item.attempts, error = %e, "notification given up");
                self.store.notification_failed(item.id, None, e, now).await?;
                NotificationOutcome::Failed
            }
        };
        self.metrics.notification(channel, recorded);
        Ok(())
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Delivered,
    /// The push service says the subscription is gone (404/410).
    Gone,
    /// A passing failure (timeout, 429, 5xx): tried again later.
    Retry(String),
    /// A lasting one (refused, malformed): not tried again.
    Failed(String),
}

/// Runs a pass every `notification_seconds` until aborted.
pub fn start(notifier: Arc<Notifier>) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(u64::from(notifier.config.notification_seconds.max(1)));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = notifier.run_once(crate::domain::now()).await {
                tracing::warn!(error = %e, "notification pass failed; retrying at the next tick");
            }
        }
    })
}
