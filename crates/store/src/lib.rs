//! State store backends. SQLite is the embedded default; every backend implements the roles of
//! [`scimbridge_state::Store`] and passes the conformance suite in `scimbridge-testkit`.
//! [`Sealed`] encrypts secrets and images in front of any of them.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

pub mod sealed;
pub mod secrets;
pub mod sqlite;

pub use sealed::Sealed;
pub use secrets::{SecretKey, SecretKeyError};
pub use sqlite::SqliteStore;
