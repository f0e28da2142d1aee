//! The checks activation runs, and `scimbridge check` and the console's Test Connection show:
//! the target answers with the credentials given, and an LDAP data store answers too.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use scimbridge_engine::apply::{CheckReport, check_target};
use scimbridge_engine::source::ldap;
use scimbridge_model::{Channel, Connection, DataStore, DataStoreType};

/// How long a check waits for each answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Proves a channel can read its data store; the line says what was found, the error what is
/// wrong.
pub async fn check_channel_source(channel: &Channel, data_store: &DataStore) -> Result<String> {
    let settings = channel.source_settings.effective(data_store.ldap_type());
    match data_store.store_type {
        DataStoreType::Ldif => {
            let path = data_store.path.as_deref().unwrap_or_default();
            if !Path::new(path).exists() {
                return Err(anyhow!(
                    "channel \"{}\": data store \"{}\": {path} does not exist",
                    channel.name,
                    data_store.name
                ));
            }
            Ok(format!(
                "  channel \"{}\": data store \"{}\" is the LDIF file {path}, read in full every cycle",
                channel.name, data_store.name
            ))
        }
        DataStoreType::Ldap => {
            let found = ldap::check(data_store, &settings, &channel.source_location)
                .await
                .map_err(|e| anyhow!("channel \"{}\": {e}", channel.name))?;
            Ok(format!(
                "  channel \"{}\": data store \"{}\" answers at {}{}: bind accepted, {} found, \
                 {} of the first users read with their {}; changes found with {}",
                channel.name,
                data_store.name,
                found.server,
                found.vendor.map(|v| format!(" ({v})")).unwrap_or_default(),
                channel.source_location.base_dn,
                found.sampled_users,
                settings.entry_guid_attribute,
                found.mechanism.name()
            ))
        }
    }
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
