//! State store backends. SQLite is the embedded default; every backend implements
//! [`scimbridge_state::Store`] and passes the conformance suite in `scimbridge-testkit`.

pub mod secrets;
pub mod sqlite;

pub use secrets::{SecretKey, SecretKeyError};
pub use sqlite::SqliteStore;
