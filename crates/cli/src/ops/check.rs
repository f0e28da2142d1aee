//! The checks activation runs, and `scimbridge check` and the console's Test Connection show:
//! the target answers with the credentials given, and an LDAP data store answers too.

use std::time::Duration;

use anyhow::{Result, anyhow};
use scimbridge_engine::apply::{CheckReport, check_target};
use scimbridge_engine::source::source_of;
use scimbridge_model::{Channel, Connection, DataStore};

/// How long a check waits for each answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Proves a channel can read its data store; the line says what was found, the error what is
/// wrong.
pub async fn check_channel_source(channel: &Channel, data_store: &DataStore) -> Result<String> {
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let found = source_of(data_store)
        .check(&settings, &channel.source_location)
        .await
        .map_err(|e| anyhow!("channel \"{}\": {e}", channel.name))?;
    Ok(format!(
        "  channel \"{}\": data store \"{}\" {found}",
        channel.name, data_store.name
    ))
}

/// Checks the connection's target; the error names the connection and what to look at.
pub async fn check_connection(connection: &Connection) -> Result<CheckReport> {
    check_target(&connection.target, CHECK_TIMEOUT)
        .await
        .map_err(|e| {
            anyhow!(
                "connection \"{}\": target check failed: {e}",
                connection.name
            )
        })
}
