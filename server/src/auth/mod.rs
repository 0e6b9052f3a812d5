//! Authentication: password hashing, session tokens, TOTP, and the extractors that turn a bearer token
//! into an authenticated caller.

pub mod cookie;
pub mod extract;
pub mod password;
pub mod token;
pub mod totp;

pub use extract::{Admin, AnySession, ClientInfo, Member, RecentAdmin};
