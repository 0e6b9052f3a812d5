//! Storage: the only place SQL runs. One [`Store`] with two real backends, SQLite and PostgreSQL.
//!
//! Most operations are written once, as SQL both dialects accept (`$1` placeholders, `RETURNING`,
//! `ON CONFLICT`), and compiled against both drivers by [`with_pool!`]; steps shared inside transactions
//! are `dialect::Steps`, also one text for both. What really differs (the group commit, locks, the
//! catch-up page, the range replay, NOTIFY, backup) is `dialect::Dialect`, implemented in `sqlite.rs`
//! and `postgres.rs` beside connecting and migrations. The contract tests run every operation on both.
//! A store method is one atomic domain operation; a transaction never crosses this module's boundary.

mod accounts;
mod attachments;
mod audit;
mod dialect;
mod group_rows;
mod groups;
mod housekeeping;
mod memberships;
mod notifications;
mod offices;
mod postgres;
mod posts;
mod retention;
mod rows;
mod rules;
mod sessions;
mod sqlite;

use std::path::Path;

use dialect::Dialect;

use sqlx::{PgPool, SqlitePool};

pub use crate::policy::accounts::LoginFailureStats;
pub use crate::policy::notifications::PendingPosts;
pub use accounts::NewUser;
pub use attachments::{AttachmentRecord, NewAttachment};
pub use audit::{AuditFilter, AuditRow, NewAuditEntry};
pub use groups::NewConsent;
pub use memberships::NewInvitation;
pub use notifications::{NotificationCandidate, OutboxItem, OutboxTarget};
pub use posts::{Committer, PostOutcome, PostRefused, PostRequest, Revision};
pub use retention::Purged;
pub use rules::{MemberAvailability, PostContext};
pub use sessions::NewSession;

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is in use. The body is
/// type-checked once per backend, so one SQL text serves both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Starts a transaction that will write. Every store transaction writes, so every one starts here.
///
/// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
/// first and writes later cannot wait for a concurrent writer — SQLite fails its upgrade at once with
/// `SQLITE_BUSY`, busy timeout or not. renkei-bench found this losing audit entries (which read the
/// last hash first) as soon as members logged in concurrently.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send {
        self.begin()
    }
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database seam. Cheap to clone: the pools are reference-counted.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// The key of the audit log's keyed chain, when the server has one (see [`Store::with_audit_key`]).
    audit_key: Option<std::sync::Arc<crate::domain::audit::AuditKey>>,
}

/// What a caller may need to react to; everything else is an internal fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
}

/// Uniqueness conflicts, translated by the store because constraint names differ between dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    LoginTaken,
    TotpAlreadyEnabled,
    /// The user is already invited to or a member of the group.
    AlreadyMember,
    /// The group is archived (or, for invitations, not active).
    GroupNotActive,
    InvitationExpired,
    /// The state the caller decided on changed before the write (a consent amended, an invitation
    /// answered); retrying re-evaluates.
    StateChanged,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if database_away(&e) { Self::Unavailable(e) } else { Self::Database(e) }
    }
}

/// True when the database is away rather than the statement wrong, so that a retry may succeed: the pool
/// has no connection to give, the connection broke, or PostgreSQL ended it or refused it while shutting
/// down, restarting or failing over (SQLSTATE class 08, 57P01–57P03, 53300).
pub fn database_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")),
        _ => false,
    }
}

/// Runs a database call in a task of its own, so it finishes (and hands its pool connection back) however
/// its caller is polled: see `messaging::contexts::read`, which found why.
pub async fn in_own_task<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::spawn(call).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
    }
}

/// True when `e` is a unique-constraint violation, whatever the dialect calls it.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Plan each statement for its arguments, never by a cached generic plan ([`Store::dedicated_planning_each_call`]).
const PLAN_EACH_CALL: (&str, &str) = ("plan_cache_mode", "force_custom_plan");

impl Store {
    /// The SQLite file a URL names, if it is a SQLite URL.
    pub fn sqlite_path(url: &str) -> Option<&Path> {
        url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).map(Path::new)
    }

    /// Connects to `url` (`sqlite://PATH` or `postgres://...`). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let db = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Db::Sqlite(sqlite::connect(Path::new(path), max_connections).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(postgres::connect(url, max_connections).await?)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        Ok(Self { db, audit_key: None })
    }

    /// A store on the same database with a pool of its own of `max_connections`. The group committer, its
    /// publisher (PostgreSQL) and the cluster link use one each: under overload thousands of requests wait
    /// for the shared pool, and the one task that makes progress must not wait behind them
    /// (renkei-bench's multinode scenario collapsed to pool timeouts until it had its own connection).
    pub async fn dedicated(&self, max_connections: u32) -> Result<Self, StoreError> {
        self.dedicated_with(max_connections, &[]).await
    }

    /// [`Store::dedicated`], with every statement planned for the arguments of each call on PostgreSQL
    /// (`plan_cache_mode = force_custom_plan`), never by a prepared statement's cached generic plan. For the
    /// readers of other nodes' posts ([`Store::posts_in_ranges`]): a generic plan settled while `posts` was
    /// young and small scans the whole table, and keeps doing so as it grows until autovacuum next analyzes
    /// it. The statements stay prepared, so this costs a plan per call and no round trip.
    pub async fn dedicated_planning_each_call(&self, max_connections: u32) -> Result<Self, StoreError> {
        self.dedicated_with(max_connections, &[PLAN_EACH_CALL]).await
    }

    /// PostgreSQL settings for a dedicated pool's sessions; SQLite has none of them.
    async fn dedicated_with(&self, max_connections: u32, settings: &[(&str, &str)]) -> Result<Self, StoreError> {
        let db = match &self.db {
            Db::Sqlite(pool) => Db::Sqlite(
                sqlx::pool::PoolOptions::new()
                    .max_connections(max_connections)
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
            Db::Postgres(pool) => {
                let options = (*pool.connect_options()).clone().options(settings.iter().copied());
                Db::Postgres(
                    sqlx::pool::PoolOptions::new().max_connections(max_connections).connect_with(options).await?,
                )
            }
        };
        Ok(Self { db, audit_key: self.audit_key.clone() })
    }

    /// This store, appending audit entries with their MAC under `key` (the keyed chain).
    pub fn with_audit_key(mut self, key: crate::domain::audit::AuditKey) -> Self {
        self.audit_key = Some(std::sync::Arc::new(key));
        self
    }

    /// The audit key, when this store has one.
    pub fn audit_key(&self) -> Option<&crate::domain::audit::AuditKey> {
        self.audit_key.as_deref()
    }

    /// How this store appends an audit entry.
    pub(crate) fn audit_appender(&self) -> dialect::AuditAppender {
        dialect::AuditAppender { key: self.audit_key.clone() }
    }

    /// Whether other nodes may share this database and must be told of each event (PostgreSQL's
    /// LISTEN/NOTIFY, [`Store::notify_cluster`], [`Store::cluster_listener`]); a node on SQLite is alone.
    pub fn clustered(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration of this backend's folder.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await?,
            Db::Postgres(pool) => postgres::MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// The migration versions this binary carries for `backend`, in order.
    pub fn migration_versions(backend: Backend) -> Vec<i64> {
        let migrator = match backend {
            Backend::Sqlite => &sqlite::MIGRATOR,
            Backend::Postgres => &postgres::MIGRATOR,
        };
        migrator.iter().map(|m| m.version).collect()
    }

    /// The shared pool's connections and how many of them are idle, for `/metrics`.
    pub fn pool_stats(&self) -> (u32, usize) {
        with_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Tells every node listening on the cluster channel (PostgreSQL only; a single SQLite node has no one
    /// to tell).
    pub async fn notify_cluster(&self, payloads: &[String]) -> Result<(), StoreError> {
        Ok(with_pool!(self, |pool| pool.acquire().await?.notify(payloads).await)?)
    }

    /// A listener on the cluster channel (PostgreSQL only).
    pub async fn cluster_listener(&self, channel: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
        match &self.db {
            Db::Postgres(pool) => postgres::listener(pool, channel).await,
            Db::Sqlite(_) => Err(StoreError::UnsupportedUrl),
        }
    }

    /// Terminates every backend of this database that is listening on the cluster channel (tests and
    /// operators use it to exercise the catch-up after a lost listener). Returns how many were ended.
    pub async fn terminate_listeners(&self) -> Result<u64, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%') t",
                )
                .fetch_one(pool)
                .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            Db::Sqlite(_) => Ok(0),
        }
    }

    /// A consistent copy of a live SQLite database ([`dialect::Dialect::backup_into`]).
    pub async fn backup_into(&self, path: &Path) -> Result<(), StoreError> {
        with_pool!(self, |pool| pool.acquire().await?.backup_into(path).await)
    }

    /// SQLite's own consistency check: true when the file is sound.
    pub async fn integrity_ok(&self) -> Result<bool, StoreError> {
        match &self.db {
            Db::Sqlite(pool) => {
                let result: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(pool).await?;
                Ok(result == "ok")
            }
            Db::Postgres(_) => Ok(true),
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}
