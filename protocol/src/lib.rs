//! renkei's wire contract: every type that crosses the network between `renkei-server` and its clients.
//!
//! This crate is the API boundary. The server and every client serialise only these types, so a change to
//! the wire shows up here, in one place, and in the snapshot tests at the bottom of each module.

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

#[macro_use]
mod macros;

pub mod account;
pub mod attachments;
pub mod catalogue;
pub mod error;
pub mod groups;
pub mod notifications;
pub mod offices;
pub mod posts;
pub mod records;
pub mod sensitive;
pub mod words;
pub mod zone;

pub use account::*;
pub use attachments::*;
pub use error::{ErrorBody, ErrorCode};
pub use groups::*;
pub use notifications::*;
pub use offices::*;
pub use posts::*;
pub use records::*;
pub use sensitive::Sensitive;

/// Path prefix of the versioned HTTP API.
pub const API_PREFIX: &str = "/api/v1";
