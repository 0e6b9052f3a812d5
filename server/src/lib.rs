//! renkei-server: the HTTP API and (later) WebSocket of renkei, on SQLite or PostgreSQL.
//!
//! The binary in `main.rs` is a thin shell over this library, so tests start the very same server on
//! port 0 with a throwaway database (`renkei-tests`).

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

pub mod admin_cli;
pub mod app;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod failpoint;
pub mod housekeeping;
pub mod http;
pub mod messaging;
pub mod metrics;
pub mod notifications;
pub mod policy;
pub mod posting;
pub mod private_files;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use app::Application;
pub use config::Config;
pub use state::AppState;

/// Makes ring the process's rustls provider (once; later calls do nothing). reqwest is built without one, so
/// the server's outgoing clients (Web Push, the health check) need it installed first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
