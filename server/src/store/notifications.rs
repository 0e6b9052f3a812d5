//! Notifications: members' settings and watermarks, push subscriptions, and the durable outbox every node
//! sends from. A notification is planned once (a compare-and-set on the member's watermark) and each of its
//! rows is sent by the one node that claimed it (a lease, taken back if that node dies).

use renkei_protocol::{NotificationSettings, PushDevice};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::policy::notifications::PendingPosts;

use super::rules::parse_availability;
use super::{Store, StoreError, with_pool};
use crate::domain::{from_micros, to_micros};
use crate::store::BeginWrite;

/// A member with a channel on, as the planner needs them.
#[derive(Debug, Clone)]
pub struct NotificationCandidate {
    pub user: Uuid,
    pub settings: NotificationSettings,
    pub availability: renkei_protocol::Availability,
    pub care_manager: bool,
    pub noticed_through: i64,
    pub last_sent_at: Option<OffsetDateTime>,
}

/// One row of the outbox, claimed for sending.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: Uuid,
    pub posts: u32,
    pub question: bool,
    pub attempts: u32,
    pub target: OutboxTarget,
}

#[derive(Debug, Clone)]
pub enum OutboxTarget {
    Push { subscription: Uuid, endpoint: String, p256dh: String, auth: String },
    Email { address: String },
}

#[derive(Debug, sqlx::FromRow)]
struct CandidateRow {
    id: Uuid,
    push: bool,
    email: bool,
    email_address: Option<String>,
    digest_minutes: i32,
    noticed_through: i64,
    last_sent_at: Option<i64>,
    availability: Option<String>,
    profession: String,
}

#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    channel: String,
    posts: i32,
    question: bool,
    attempts: i32,
    email_address: Option<String>,
    subscription_id: Option<Uuid>,
    endpoint: Option<String>,
    p256dh: Option<String>,
    auth: Option<String>,
}

fn settings_of(push: bool, email: bool, email_address: Option<String>, digest_minutes: i32) -> NotificationSettings {
    NotificationSettings { push, email, email_address, digest_minutes: u32::try_from(digest_minutes).unwrap_or(30) }
}

impl Store {
    /// A member's settings (everything off until they choose).
    pub async fn notification_settings(&self, user: Uuid) -> Result<NotificationSettings, StoreError> {
        let row: Option<(bool, bool, Option<String>, i32)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT push, email, email_address, digest_minutes FROM notification_settings WHERE user_id = $1"
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(p, e, a, d)| settings_of(p, e, a, d)).unwrap_or_default())
    }

    /// Replaces a member's settings. The watermark starts at `now` the first time, so what was there
    /// before is not announced.
    pub async fn set_notification_settings(
        &self,
        user: Uuid,
        settings: &NotificationSettings,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = to_micros(now);
        let digest = i32::try_from(settings.digest_minutes).unwrap_or(i32::MAX);
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO notification_settings (user_id, push, email, email_address, digest_minutes, \
             noticed_through, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (user_id) DO UPDATE SET push = excluded.push, email = excluded.email, \
             email_address = excluded.email_address, digest_minutes = excluded.digest_minutes, \
             updated_at = excluded.updated_at"
        )
        .bind(user)
        .bind(settings.push)
        .bind(settings.email)
        .bind(settings.email_address.as_deref())
        .bind(digest)
        .bind(at)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// A member's subscribed devices, oldest first.
    pub async fn push_devices(&self, user: Uuid) -> Result<Vec<PushDevice>, StoreError> {
        let rows: Vec<(Uuid, Option<String>, i64, Option<i64>)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, device, created_at, last_sent_at FROM push_subscriptions WHERE user_id = $1 \
             ORDER BY created_at, id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, device, created, sent)| PushDevice {
                id,
                device,
                created_at: from_micros(created),
                last_sent_at: sent.map(from_micros),
            })
            .collect())
    }

    /// Keeps a browser's subscription for `user`. A browser subscribing again (or a shared computer now
    /// used by someone else) has the same endpoint: the row moves to `user` with the new keys.
    pub async fn add_push_subscription(
        &self,
        user: Uuid,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        device: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<PushDevice, StoreError> {
        let at = to_micros(now);
        let (id, created, sent): (Uuid, i64, Option<i64>) = with_pool!(self, |pool| sqlx::query_as(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, device, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, \
             p256dh = excluded.p256dh, auth = excluded.auth, device = excluded.device \
             RETURNING id, created_at, last_sent_at"
        )
        .bind(Uuid::now_v7())
        .bind(user)
        .bind(endpoint)
        .bind(p256dh)
        .bind(auth)
        .bind(device)
        .bind(at)
        .fetch_one(pool)
        .await)?;
        Ok(PushDevice {
            id,
            device: device.map(str::to_owned),
            created_at: from_micros(created),
            last_sent_at: sent.map(from_micros),
        })
    }

    /// Removes one of `user`'s subscriptions (false: none of theirs has that id).
    pub async fn remove_push_subscription(&self, user: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let n = with_pool!(self, |pool| sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Removes a subscription its push service says is gone (404/410), with its unsent rows.
    pub async fn forget_push_subscription(&self, id: Uuid) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Every active member with a channel on.
    pub async fn notification_candidates(&self) -> Result<Vec<NotificationCandidate>, StoreError> {
        let rows: Vec<CandidateRow> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT u.id, n.push, n.email, n.email_address, n.digest_minutes, n.noticed_through, n.last_sent_at, \
             u.availability, u.profession FROM notification_settings n JOIN users u ON u.id = n.user_id \
             WHERE u.status = 'active' AND (n.push OR n.email)"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| NotificationCandidate {
                user: r.id,
                settings: settings_of(r.push, r.email, r.email_address, r.digest_minutes),
                availability: parse_availability(r.availability),
                care_manager: r.profession == "care_manager",
                noticed_through: r.noticed_through,
                last_sent_at: r.last_sent_at.map(from_micros),
            })
            .collect())
    }

    /// Others' unread, undeleted posts created after `since` (microseconds) in the groups `user` is an
    /// active member of.
    pub async fn pending_posts(&self, user: Uuid, since: i64, care_manager: bool) -> Result<PendingPosts, StoreError> {
        let (posts, questions, newest): (i64, i64, Option<i64>) = with_pool!(self, |pool| sqlx::query_as(
            "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN (p.kind = 'treatment_question' AND g.attending_physician_id = $1) \
               OR (p.kind = 'care_plan_question' AND $3) THEN 1 ELSE 0 END), 0), MAX(p.created_at) \
             FROM memberships m JOIN groups g ON g.id = m.group_id \
             JOIN posts p ON p.group_id = m.group_id \
             LEFT JOIN read_marks r ON r.group_id = m.group_id AND r.user_id = $1 \
             WHERE m.user_id = $1 AND m.state = 'active' AND p.created_at > $2 AND p.author_id <> $1 \
             AND p.deleted_at IS NULL AND p.seq > COALESCE(r.last_read_seq, 0)"
        )
        .bind(user)
        .bind(since)
        .bind(care_manager)
        .fetch_one(pool)
        .await)?;
        Ok(PendingPosts {
            posts: u32::try_from(posts).unwrap_or(u32::MAX),
            questions: u32::try_from(questions).unwrap_or(u32::MAX),
            newest: newest.unwrap_or(since),
        })
    }

    /// Plans one notification: moves `user`'s watermark from `from` to `to` and queues a row for each of
    /// their devices (with `push`) and their address (with `email`), in one transaction. False when another
    /// node moved the watermark first: that node planned it.
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_notification(
        &self,
        user: Uuid,
        from: i64,
        to: i64,
        pending: PendingPosts,
        push: bool,
        email: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let at = to_micros(now);
        let posts = i32::try_from(pending.posts).unwrap_or(i32::MAX);
        let question = pending.questions > 0;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let moved = sqlx::query(
                "UPDATE notification_settings SET noticed_through = $3, last_sent_at = $4 \
                 WHERE user_id = $1 AND noticed_through = $2",
            )
            .bind(user)
            .bind(from)
            .bind(to)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                return Ok(false);
            }
            // One row per device (with push) and one for the address (with e-mail).
            let devices: Vec<Uuid> = if push {
                sqlx::query_scalar("SELECT id FROM push_subscriptions WHERE user_id = $1")
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await?
            } else {
                Vec::new()
            };
            let targets =
                devices.into_iter().map(|d| ("push", Some(d), None)).chain(email.map(|a| ("email", None, Some(a))));
            for (channel, device, address) in targets {
                sqlx::query(
                    "INSERT INTO notification_outbox (id, user_id, channel, subscription_id, email_address, posts, \
                     question, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(Uuid::now_v7())
                .bind(user)
                .bind(channel)
                .bind(device)
                .bind(address)
                .bind(posts)
                .bind(question)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Claims up to `limit` due rows for `lease`: no other node takes them until the lease ends (a node
    /// that dies mid-send leaves them to the next).
    pub async fn claim_notifications(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let at = to_micros(now);
        let until = to_micros(now + lease);
        // The conditions are repeated outside the subquery: PostgreSQL re-checks them on a row another node
        // claimed meanwhile, so it is not claimed twice.
        let rows: Vec<OutboxRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE notification_outbox SET claimed_until = $2, attempts = attempts + 1 WHERE id IN \
                 (SELECT id FROM notification_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                  AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
                  ORDER BY next_attempt_at LIMIT $3) \
                 AND sent_at IS NULL AND failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < $1) \
                 RETURNING id",
            )
            .bind(at)
            .bind(until)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                let row: OutboxRow = sqlx::query_as(
                    "SELECT o.id, o.channel, o.posts, o.question, o.attempts, o.email_address, o.subscription_id, \
                     s.endpoint, s.p256dh, s.auth FROM notification_outbox o \
                     LEFT JOIN push_subscriptions s ON s.id = o.subscription_id WHERE o.id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                rows.push(row);
            }
            tx.commit().await?;
            rows
        });
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let target =
                    match (r.channel.as_str(), r.subscription_id, r.endpoint, r.p256dh, r.auth, r.email_address) {
                        ("push", Some(subscription), Some(endpoint), Some(p256dh), Some(auth), _) => {
                            OutboxTarget::Push { subscription, endpoint, p256dh, auth }
                        }
                        ("email", _, _, _, _, Some(address)) => OutboxTarget::Email { address },
                        _ => return None,
                    };
                Some(OutboxItem {
                    id: r.id,
                    posts: u32::try_from(r.posts).unwrap_or(0),
                    question: r.question,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    target,
                })
            })
            .collect())
    }

    /// The row reached its push service or SMTP server.
    pub async fn notification_sent(
        &self,
        id: Uuid,
        subscription: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = to_micros(now);
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE notification_outbox SET sent_at = $2, claimed_until = NULL WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if let Some(s) = subscription {
                sqlx::query("UPDATE push_subscriptions SET last_sent_at = $2 WHERE id = $1")
                    .bind(s)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The row failed: tried again at `retry_at`, or given up (`None`).
    pub async fn notification_failed(
        &self,
        id: Uuid,
        retry_at: Option<OffsetDateTime>,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "UPDATE notification_outbox SET claimed_until = NULL, last_error = $2, \
             next_attempt_at = COALESCE($3, next_attempt_at), failed_at = CASE WHEN $3 IS NULL THEN $4 END \
             WHERE id = $1"
        )
        .bind(id)
        .bind(error)
        .bind(retry_at.map(to_micros))
        .bind(to_micros(now))
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Rows waiting to be sent (for `/metrics`), and removes sent or abandoned rows older than `cutoff`.
    pub async fn notification_outbox_backlog(&self, cutoff: OffsetDateTime) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM notification_outbox WHERE created_at < $1 AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)",
            )
            .bind(to_micros(cutoff))
            .execute(pool)
            .await?;
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM notification_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
            )
            .fetch_one(pool)
            .await?)
        })
    }

    /// Registers the VAPID public key on first start; returns the registered one (another node's, if it
    /// was first). A running node hands its key to browsers, so a key is never replaced under it.
    pub async fn register_vapid_key(&self, public_key: &str) -> Result<String, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO vapid_key (id, public_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                .bind(public_key)
                .execute(pool)
                .await?;
            Ok(sqlx::query_scalar("SELECT public_key FROM vapid_key WHERE id = 1").fetch_one(pool).await?)
        })
    }
}
