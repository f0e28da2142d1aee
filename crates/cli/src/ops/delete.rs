//! Deleting configuration objects: what is in use stays.

use scimbridge_engine::state::Store;

use crate::ops::Refused;

/// Deletes a data store that no channel reads.
pub async fn delete_data_store(store: &dyn Store, name: &str) -> Result<(), Refused> {
    let readers: Vec<String> = store
        .connections()
        .await?
        .iter()
        .flat_map(|c| {
            c.channels
                .iter()
                .filter(|ch| ch.data_store == name)
                .map(|ch| format!("{}/{}", c.name, ch.name))
        })
        .collect();
    if !readers.is_empty() {
        return Err(Refused::Conflict(format!(
            "data store \"{name}\" is read by channel {}; change or delete those first",
            readers.join(", ")
        )));
    }
    if store.delete_data_store(name).await? {
        Ok(())
    } else {
        Err(Refused::not_found("data store", name))
    }
}

/// Deletes an inactive connection with its channels' state. An active one is refused: it must
/// be deactivated first, so that the service stops its channels.
pub async fn delete_connection(store: &dyn Store, name: &str) -> Result<(), Refused> {
    let connection = store
        .connection(name)
        .await?
        .ok_or_else(|| Refused::not_found("connection", name))?;
    if connection.active {
        return Err(Refused::Conflict(format!(
            "connection \"{name}\" is active; deactivate it before deleting it"
        )));
    }
    store.delete_connection(name).await?;
    Ok(())
}
