//! Logging through `tracing`: readable on a terminal, JSON for a log collector. Nothing logged anywhere in
//! the server carries a password, token, post body or patient identifier; ids only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Libraries whose detailed output would carry what travels in a frame or a body (tungstenite traces
/// every frame's payload): held at `info` whatever the filter asks for, so not even `trace` prints a post.
const QUIET: &str = "tungstenite=info,tokio_tungstenite=info,h2=info,hyper=info,hyper_util=info";

/// The filter in effect: `RENKEI_LOG_FILTER` (or the file's `log_filter`), or `RUST_LOG` when only that
/// is set, followed by [`QUIET`].
pub fn filter_directives(config: &Config, rust_log: Option<String>, renkei_set: bool) -> String {
    let base = match rust_log {
        Some(r) if !renkei_set && !r.trim().is_empty() => r,
        _ => config.log_filter.clone(),
    };
    // Whatever the filter says about those libraries is dropped, so QUIET decides alone.
    let quiet_targets: Vec<&str> = QUIET.split(',').filter_map(|d| d.split('=').next()).collect();
    let kept: Vec<&str> = base
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let target = d.split(['=', '[']).next().unwrap_or("");
            !quiet_targets.iter().any(|q| target == *q || target.starts_with(&format!("{q}::")))
        })
        .collect();
    if kept.is_empty() { QUIET.to_owned() } else { format!("{},{QUIET}", kept.join(",")) }
}

/// Installs the global subscriber. Safe to call more than once (tests); later calls do nothing.
pub fn init(config: &Config) {
    let directives =
        filter_directives(config, std::env::var("RUST_LOG").ok(), std::env::var("RENKEI_LOG_FILTER").is_ok());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Says that the database is away: at WARN, once, then at most once every 30 seconds with how many more
/// requests it refused meanwhile, so that a restart of PostgreSQL is a line or two in the log rather than a
/// stream of them.
pub fn database_unavailable(cause: &dyn std::fmt::Debug) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_SECOND: AtomicU64 = AtomicU64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    const EVERY_SECONDS: u64 = 30;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST_SECOND.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= EVERY_SECONDS
        && LAST_SECOND.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let more = SINCE.swap(0, Ordering::Relaxed);
        tracing::warn!(error = ?cause, refused_since_last_line = more, "database unavailable: answering 503, retry");
    } else {
        SINCE.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_counts_only_without_renkei_log_filter_and_frame_traces_stay_quiet() {
        let config = Config { log_filter: "debug".into(), ..Config::default() };
        assert!(filter_directives(&config, Some("trace".into()), false).starts_with("trace,"));
        assert!(filter_directives(&config, Some("trace".into()), true).starts_with("debug,"));
        assert!(filter_directives(&config, None, false).starts_with("debug,"));
        // An explicit tungstenite=trace is dropped: frames never reach the log.
        let config =
            Config { log_filter: "info,tungstenite=trace,tungstenite::protocol=trace".into(), ..Config::default() };
        assert_eq!(filter_directives(&config, None, true), format!("info,{QUIET}"));
    }
}
