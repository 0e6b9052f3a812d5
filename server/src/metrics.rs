//! Prometheus metrics, served at `/metrics`: HTTP responses by status class and login outcomes.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::app::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    class: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum LoginOutcome {
    Success,
    Failure,
    TotpRequired,
    Throttled,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    outcome: LoginOutcome,
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

/// The process's metrics. Counters are atomics; the registry is only read when rendering.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_responses: Family<StatusLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    notification_backlog: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("renkei");
        let http_responses = Family::<StatusLabels, Counter>::default();
        registry.register("http_responses", "HTTP responses by status class", http_responses.clone());
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("logins", "Login attempts by outcome", logins.clone());
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notification sends by channel (push, email) and outcome (sent, retry, failed, gone)",
            notifications.clone(),
        );
        let notification_backlog = Gauge::default();
        registry.register("notification_backlog", "Notifications waiting in the outbox", notification_backlog.clone());
        Self { registry, http_responses, logins, notifications, notification_backlog }
    }
}

impl Metrics {
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    pub fn notification(&self, channel: &'static str, outcome: NotificationOutcome) {
        self.notifications.get_or_create(&NotificationLabels { channel, outcome: outcome.label() }).inc();
    }

    pub fn notification_backlog(&self, rows: i64) {
        self.notification_backlog.set(rows);
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware counting every response by status class.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state.metrics.http_responses.get_or_create(&StatusLabels { class }).inc();
    response
}
