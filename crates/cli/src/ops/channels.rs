//! A connection's channels: naming them, and forgetting what one knows.

use scimbridge_engine::state::{Store, StoreError};
use scimbridge_model::{ChannelKey, Connection};

use crate::ops::Refused;

/// Every channel of the connection, active or not.
pub fn channel_keys(connection: &Connection) -> Vec<ChannelKey> {
    connection
        .channels
        .iter()
        .map(|c| ChannelKey::new(&connection.name, &c.name))
        .collect()
}

/// The connection's channel of that name.
pub fn channel_key(connection: &Connection, name: &str) -> Result<ChannelKey, Refused> {
    connection
        .channels
        .iter()
        .find(|c| c.name == name)
        .map(|c| ChannelKey::new(&connection.name, &c.name))
        .ok_or_else(|| Refused::not_found("channel", name))
}

/// What a reset forgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Where the last incremental read stopped: the next cycle reads every entry (a full
    /// reconciliation).
    SyncState,
    /// Every user and group record too: the next cycle links to the target's existing users and
    /// groups by the unique identifier again, creating no duplicate.
    AllState,
}

pub async fn reset(store: &dyn Store, key: &ChannelKey, reset: Reset) -> Result<(), StoreError> {
    match reset {
        Reset::SyncState => store.save_sync_state(key, None).await,
        Reset::AllState => store.forget_channel(key).await,
    }
}
