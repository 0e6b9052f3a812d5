//! renkei client library: the typed HTTP client on the protocol crate (used by the `renkei` binary, the
//! tests and, later, the load generator), the per-user profile and token store, and the CLI's texts.

pub mod client;
pub mod i18n;
pub mod live;
pub mod profile;

pub use client::{Client, ClientError};
