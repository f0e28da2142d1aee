//! The types the roles speak in that the model does not already define.

use scimbridge_model::{ChannelKey, CycleSummary, EpochMs};
use serde::{Deserialize, Serialize};

/// What saving a named configuration object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
    Unchanged,
}

impl Saved {
    /// What saving `new` where `stored` is (if anything) does.
    pub fn compare<T: PartialEq>(stored: Option<&T>, new: &T) -> Saved {
        match stored {
            None => Saved::Created,
            Some(stored) if stored == new => Saved::Unchanged,
            Some(_) => Saved::Updated,
        }
    }
}

/// One cycle of one channel, as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    pub id: i64,
    pub channel: ChannelKey,
    pub started_at_ms: EpochMs,
    pub finished_at_ms: Option<EpochMs>,
    pub summary: CycleSummary,
    /// Set when the cycle stopped early (for example the data store could not be read).
    pub error: Option<String>,
}

/// The administrator account of the admin API and console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub username: String,
    /// Argon2id, in the PHC string format.
    pub password_hash: String,
}

/// An API token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at_ms: EpochMs,
}

/// Record counts of one channel, for `scimbridge channels`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records whose user is in the target (provisioned or disabled).
    pub users: u64,
    pub failed: u64,
    pub blocked: u64,
}
