//! Stage 6, state: what every state store backend provides.
//!
//! The interface speaks the product's vocabulary only, so SQLite today and PostgreSQL later
//! implement the same traits and pass the same conformance suite (`scimbridge-testkit`). It is
//! split into roles, one per kind of state; [`Store`] is all of them, and every type that plays
//! every role is a `Store`. This crate holds the interface and its types and nothing else, so
//! that a backend depends on the model, not on the engine and its HTTP, LDAP and template crates.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

mod error;
mod roles;
mod types;

pub use error::{BoxError, StoreError, full_message};
pub use roles::{
    AdminStore, AuditStore, ConfigurationStore, HeldOperationStore, HistoryStore, JournalStore,
    RecordStore,
};
pub use types::{
    AdminAccount, ApiToken, Cycle, GroupKey, MemberChange, RecordCounts, RecordKey, Saved,
};

/// A whole state store: every role. Callers that need one role can ask for that role alone.
pub trait Store:
    ConfigurationStore
    + RecordStore
    + HeldOperationStore
    + JournalStore
    + AuditStore
    + AdminStore
    + HistoryStore
{
}

impl<T> Store for T where
    T: ConfigurationStore
        + RecordStore
        + HeldOperationStore
        + JournalStore
        + AuditStore
        + AdminStore
        + HistoryStore
        + ?Sized
{
}
