//! Prometheus metrics, served at `/metrics` (loopback, a token, or `metrics_listen`: see `http::ops`): HTTP
//! answers by status class and latency by route template, logins, WebSocket connections, the group commit
//! (posts, batch sizes and durations), fan-out deliveries, lagged connections and resyncs, the cluster
//! listener, the database pool, the audit log's length, notifications, and the standard `process_*`
//! metrics. Label values are snake_case; none names a person, a group or a patient.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    Failure,
    TotpRequired,
    Throttled,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::TotpRequired => "totp_required",
            Self::Throttled => "throttled",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum NotificationOutcome {
    Sent,
    Retry,
    Failed,
    Gone,
}

impl NotificationOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    channel: &'static str,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The process's metrics. Counters and gauges are atomics shared with the code that moves them (cloning one
/// shares it); the registry is only read when rendering.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_responses: Family<StatusLabels, Counter>,
    http_seconds: HistogramFamily<RouteLabels>,
    logins: Family<OutcomeLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    notification_backlog: Gauge,
    /// WebSocket connections open on this node.
    pub ws_connections: Gauge,
    /// Posts the group commit stored.
    pub posts_committed: Counter,
    /// Posts per group-commit transaction.
    pub commit_batch_posts: Histogram,
    /// Seconds per group-commit transaction.
    pub commit_seconds: Histogram,
    /// Frames queued for this node's connections.
    pub deliveries: Counter,
    /// Times a connection's inbox was full (it then catches up from the database).
    pub lagged_connections: Counter,
    /// Resync frames sent (one per group of a lagged connection).
    pub resyncs: Counter,
    /// 1 while the cluster listener (PostgreSQL LISTEN) is connected, 0 while it reconnects.
    pub cluster_listener_up: Gauge,
    db_pool_connections: Gauge,
    db_pool_idle: Gauge,
    audit_entries: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("renkei");
        let http_responses = Family::<StatusLabels, Counter>::default();
        registry.register("http_responses", "HTTP responses by status class", http_responses.clone());
        let http_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP answers by method and route template",
            http_seconds.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register("logins", "Login attempts by outcome", logins.clone());
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notification sends by channel (push, email) and outcome (sent, retry, failed, gone)",
            notifications.clone(),
        );
        let notification_backlog = Gauge::default();
        registry.register("notification_backlog", "Notifications waiting in the outbox", notification_backlog.clone());
        let ws_connections = Gauge::default();
        registry.register("ws_connections", "WebSocket connections open on this node", ws_connections.clone());
        let posts_committed = Counter::default();
        registry.register("posts_committed", "Posts stored by this node's group commit", posts_committed.clone());
        let commit_batch_posts = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register("commit_batch_posts", "Posts per group-commit transaction", commit_batch_posts.clone());
        let commit_seconds = latency_histogram();
        registry.register("commit_duration_seconds", "Group-commit transactions by duration", commit_seconds.clone());
        let deliveries = Counter::default();
        registry.register("deliveries", "Frames queued for this node's WebSocket connections", deliveries.clone());
        let lagged_connections = Counter::default();
        registry.register(
            "lagged_connections",
            "Times a connection's inbox was full and it caught up from the database",
            lagged_connections.clone(),
        );
        let resyncs = Counter::default();
        registry.register("resyncs", "Resync frames sent to lagged connections", resyncs.clone());
        let cluster_listener_up = Gauge::default();
        registry.register(
            "cluster_listener_up",
            "1 while the cluster listener is connected (PostgreSQL), 0 while it reconnects",
            cluster_listener_up.clone(),
        );
        let db_pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Connections of the shared database pool",
            db_pool_connections.clone(),
        );
        let db_pool_idle = Gauge::default();
        registry.register("db_pool_idle", "Idle connections of the shared database pool", db_pool_idle.clone());
        let audit_entries = Gauge::default();
        registry.register(
            "audit_entries",
            "Entries in the audit log (its last sequence number)",
            audit_entries.clone(),
        );
        Self {
            registry,
            http_responses,
            http_seconds,
            logins,
            notifications,
            notification_backlog,
            ws_connections,
            posts_committed,
            commit_batch_posts,
            commit_seconds,
            deliveries,
            lagged_connections,
            resyncs,
            cluster_listener_up,
            db_pool_connections,
            db_pool_idle,
            audit_entries,
        }
    }
}

impl Metrics {
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&OutcomeLabels { outcome: outcome.label() }).inc();
    }

    pub fn notification(&self, channel: &'static str, outcome: NotificationOutcome) {
        self.notifications.get_or_create(&NotificationLabels { channel, outcome: outcome.label() }).inc();
    }

    pub fn notification_backlog(&self, rows: i64) {
        self.notification_backlog.set(rows);
    }

    /// What is read at scrape time rather than counted: the pool and the audit log's length.
    pub fn scraped(&self, pool_connections: u32, pool_idle: usize, audit_entries: Option<i64>) {
        self.db_pool_connections.set(i64::from(pool_connections));
        self.db_pool_idle.set(i64::try_from(pool_idle).unwrap_or(i64::MAX));
        if let Some(n) = audit_entries {
            self.audit_entries.set(n);
        }
    }

    /// The OpenMetrics text: the standard `process_*` metrics, then renkei's own.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = process_metrics();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The standard process metrics, read from `/proc` (Linux; nothing elsewhere).
fn process_metrics() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, sample: &str, value: f64| {
        let _ = write!(out, "# TYPE {name} {kind}\n# HELP {name} {help}\n{sample} {value}\n");
    };
    // USER_HZ is 100 in Linux's ABI, whatever the kernel's own tick.
    const TICKS: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        let help = "Total user and system CPU time spent in seconds.";
        metric("process_cpu_seconds", "counter", help, "process_cpu_seconds_total", (user + system) / TICKS);
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        let help = "Start time of the process since unix epoch in seconds.";
        metric("process_start_time_seconds", "gauge", help, "process_start_time_seconds", boot + start / TICKS);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    if let Some(rss) = kib("VmRSS:") {
        let name = "process_resident_memory_bytes";
        metric(name, "gauge", "Resident memory size in bytes.", name, rss * 1024.0);
    }
    if let Some(size) = kib("VmSize:") {
        let name = "process_virtual_memory_bytes";
        metric(name, "gauge", "Virtual memory size in bytes.", name, size * 1024.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let name = "process_open_fds";
        metric(name, "gauge", "Number of open file descriptors.", name, fds.count() as f64);
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if let Some(max) = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    {
        let name = "process_max_fds";
        metric(name, "gauge", "Maximum number of open file descriptors.", name, max);
    }
    out
}

/// Middleware counting every answer by status class, and timing it by method and route template (never the
/// path itself, which may hold ids).
pub async fn track(State(metrics): State<std::sync::Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = req.method().as_str().to_ascii_lowercase();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    metrics.http_seconds.get_or_create(&RouteLabels { method, route }).observe(started.elapsed().as_secs_f64());
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics.http_responses.get_or_create(&StatusLabels { class }).inc();
    response
}
