//! The `renkei` and `renkei-server` binaries, end to end: an operator bootstraps an administrator, who
//! registers a care manager; she sets her password, enrols TOTP and logs in with a code; every failure
//! exits with its documented code and explains itself in the user's language. On SQLite and PostgreSQL.

mod deploy;
mod guidance;
mod harness;
mod lifecycle;
mod terminal;
