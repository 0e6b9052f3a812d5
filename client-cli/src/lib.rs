//! renkei client library: the typed HTTP client on the protocol crate (used by the `renkei` binary, the
//! tests and, later, the load generator), the per-user profile and token store, and the CLI's texts.

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

pub mod client;
pub mod i18n;
pub mod live;
pub mod profile;

pub use client::{Client, ClientError};
