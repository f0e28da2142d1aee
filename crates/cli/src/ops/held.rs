//! The operations the mass-change guard holds, and the operator's decision on them.

use scimbridge_engine::state::{Store, StoreError};
use scimbridge_model::{ChannelKey, Connection, HeldOperation};

use crate::ops::channels::channel_keys;

/// Approves (the next cycle applies them) or discards the channel's held operations that
/// `chosen` picks by GUID; returns how many.
pub async fn decide(
    store: &dyn Store,
    key: &ChannelKey,
    chosen: impl Fn(&str) -> bool,
    approve: bool,
) -> Result<usize, StoreError> {
    let mut held = store.held_operations(key).await?;
    let count = held.iter().filter(|h| chosen(&h.guid)).count();
    if count == 0 {
        return Ok(0);
    }
    if approve {
        for operation in held.iter_mut().filter(|h| chosen(&h.guid)) {
            operation.approved = true;
        }
    } else {
        held.retain(|h| !chosen(&h.guid));
    }
    store.save_held_operations(key, &held).await?;
    Ok(count)
}

/// Decides the held operations of every channel of the connection that `chosen` picks by
/// channel name and GUID; returns how many. The admin API and the console decide exactly the
/// operations the operator reviewed: a cycle may have held others since.
pub async fn decide_reviewed(
    store: &dyn Store,
    connection: &Connection,
    chosen: impl Fn(&str, &str) -> bool,
    approve: bool,
) -> Result<usize, StoreError> {
    let mut count = 0;
    for key in channel_keys(connection) {
        count += decide(store, &key, |guid| chosen(&key.channel, guid), approve).await?;
    }
    Ok(count)
}

/// The held operations of every channel of the connection, with their channel's name.
pub async fn held_operations(
    store: &dyn Store,
    connection: &Connection,
) -> Result<Vec<(String, HeldOperation)>, StoreError> {
    let mut all = Vec::new();
    for key in channel_keys(connection) {
        for operation in store.held_operations(&key).await? {
            all.push((key.channel.clone(), operation));
        }
    }
    Ok(all)
}
