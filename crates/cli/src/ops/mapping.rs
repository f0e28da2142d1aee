//! One directory entry through a channel's mapping, as a cycle maps it, without sending
//! anything: `scimbridge mapping test` and the console's mapping preview.

use anyhow::{Result, anyhow};
use scimbridge_engine::map::fields::mask;
use scimbridge_engine::map::map_user;
use scimbridge_engine::source::{is_within, keyed_entry, normalize_dn, source_of};
use scimbridge_model::{Channel, DataStore};

/// What became of the entry.
pub enum MapOutcome {
    /// The SCIM image (masked fields hidden).
    Image {
        dn: String,
        guid: String,
        /// The base DN the entry is not below (cycles leave it out), when it is not.
        outside: Option<String>,
        image: serde_json::Value,
    },
    /// The entry has no usable GUID.
    NotKeyed { dn: String, reason: String },
    /// The mapping fails on it (a required field without a value, an expression error).
    Unmappable { dn: String, reason: String },
}

/// Reads the user at `dn` from the channel's data store and maps it; an error when there is
/// no such user or the data store cannot be read.
pub async fn map_entry(data_store: &DataStore, channel: &Channel, dn: &str) -> Result<MapOutcome> {
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let location = &channel.source_location;
    let entry = source_of(data_store)
        .read_entry(channel, &settings, dn)
        .await?
        .map(|record| keyed_entry(&record, &settings))
        .ok_or_else(|| {
            anyhow!(
                "data store \"{}\" has no user {dn} (object class {})",
                data_store.name,
                settings.user_object_class
            )
        })?;
    let entry = match entry {
        Ok(entry) => entry,
        Err(reason) => {
            return Ok(MapOutcome::NotKeyed {
                dn: dn.to_owned(),
                reason,
            });
        }
    };
    let outside = (!is_within(&normalize_dn(&entry.dn), &normalize_dn(&location.base_dn)))
        .then(|| location.base_dn.clone());
    Ok(
        match map_user(
            &entry,
            &channel.attribute_mapping,
            &channel.extension_mapping,
            &settings.account_status,
        ) {
            Ok(user) => MapOutcome::Image {
                dn: entry.dn.clone(),
                guid: entry.guid.to_string(),
                outside,
                image: mask(
                    &user.image,
                    &channel.attribute_mapping,
                    &channel.extension_mapping,
                ),
            },
            Err(reason) => MapOutcome::Unmappable {
                dn: entry.dn.clone(),
                reason: reason.to_string(),
            },
        },
    )
}
