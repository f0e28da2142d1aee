//! Saving configuration objects the way `scimbridge apply` does: validated against the stored
//! configuration, omitted secrets kept, active connections checked before anything is saved.
//! The CLI applies files through here; the admin API and the console apply single objects.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use scimbridge_engine::map::expression::mapping_problems;
use scimbridge_engine::secret::resolve;
use scimbridge_engine::source::source_of;
use scimbridge_engine::state::{Saved, Store};
use scimbridge_model::config::CONFIG_VERSION;
use scimbridge_model::{ConfigError, ConfigFile, Connection, DataStore, Secret};

use crate::ops::Refused;
use crate::ops::check::{check_channel_source, check_connection};

/// Activation refused: the target or a data store of an active connection failed its check.
#[derive(Debug)]
pub struct ActivationRefused {
    /// One line per failed check, targets' and data stores' alike.
    pub problems: Vec<String>,
    pub target_failed: bool,
    pub data_store_failed: bool,
}

impl std::fmt::Display for ActivationRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The heading names what failed: an unreachable directory is not a target problem.
        let needs = match (self.target_failed, self.data_store_failed) {
            (true, true) => "a working target and a readable data store",
            (false, true) => "a readable data store",
            _ => "a working target",
        };
        write!(
            f,
            "nothing was saved; activation needs {needs}:\n  - {}\n(fix the settings, apply the connection with active = false, or pass --skip-check)",
            self.problems.join("\n  - ")
        )
    }
}

impl std::error::Error for ActivationRefused {}

/// Saves objects sent by the admin API or the console the way a file is applied: validated,
/// omitted secrets kept, active connections checked first.
pub async fn save_objects(
    store: &dyn Store,
    data_stores: Vec<DataStore>,
    connections: Vec<Connection>,
) -> Result<Vec<String>> {
    let file = ConfigFile {
        version: 1,
        data_stores,
        connections,
    };
    save_configuration(store, file, Path::new("."), ActivationCheck::Target).await
}

/// Activates or deactivates a stored connection, saved as `apply` saves it: activating checks
/// its target and LDAP data stores first (unless `check` is `Skip`).
pub async fn set_active(
    store: &dyn Store,
    name: &str,
    active: bool,
    check: ActivationCheck,
) -> Result<Vec<String>> {
    let mut connection = store
        .connection(name)
        .await?
        .ok_or_else(|| Refused::not_found("connection", name))?;
    connection.active = active;
    let file = ConfigFile {
        version: CONFIG_VERSION,
        data_stores: Vec::new(),
        connections: vec![connection],
    };
    save_configuration(store, file, Path::new("."), check).await
}

/// Why `save_configuration` refused, one problem per entry: each invalid field, or each failed
/// activation check.
pub fn refusal_problems(error: &anyhow::Error) -> Vec<String> {
    if let Some(ConfigError::Invalid(problems)) = error.downcast_ref() {
        problems.clone()
    } else if let Some(refused) = error.downcast_ref::<ActivationRefused>() {
        refused.problems.clone()
    } else {
        vec![format!("{error:#}")]
    }
}

/// Whether activating a connection first proves its target works, as PingFederate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationCheck {
    Target,
    Skip,
}

/// Validates the file against itself and the stored configuration, checks the target of each
/// active connection, then saves it. Nothing is saved when
/// anything fails. Returns one line per object saying what happened.
pub async fn save_configuration(
    store: &dyn Store,
    mut file: ConfigFile,
    base_dir: &Path,
    check: ActivationCheck,
) -> Result<Vec<String>> {
    // LDIF paths are stored absolute so that later commands work from any folder (an empty
    // one never gets here: reading the file refused it).
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    for data_store in &mut file.data_stores {
        data_store.resolve_file_against(&base_dir);
    }
    let stored_data_stores = store.data_stores().await?;
    for data_store in &mut file.data_stores {
        if let Some(stored) = stored_data_stores
            .iter()
            .find(|d| d.name == data_store.name)
        {
            data_store.keep_omitted_secrets(stored);
        }
    }
    let mut to_check = Vec::new();
    for connection in &mut file.connections {
        if let Some(stored) = store.connection(&connection.name).await? {
            connection.keep_omitted_secrets(&stored);
        }
        // Every active connection, not only changed ones: env: and file: secrets can change
        // without the file changing.
        if connection.active {
            to_check.push(connection.name.clone());
        }
    }
    let known: BTreeSet<String> = stored_data_stores.iter().map(|d| d.name.clone()).collect();
    file.validate(&known)?;
    let mut problems = Vec::new();
    for connection in &file.connections {
        for channel in &connection.channels {
            let at = format!(
                "connection \"{}\" channel \"{}\"",
                connection.name, channel.name
            );
            problems.extend(mapping_problems(
                &at,
                &channel.attribute_mapping,
                &channel.extension_mapping,
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems).into());
    }
    if check == ActivationCheck::Target {
        let mut problems = Vec::new();
        let mut target_failed = false;
        let mut data_store_failed = false;
        for connection in file
            .connections
            .iter()
            .filter(|c| to_check.contains(&c.name))
        {
            if let Err(e) = check_connection(connection).await {
                target_failed = true;
                problems.push(format!("{e:#}"));
            }
            // An LDAP data store must answer too; an LDIF file may be written later.
            for channel in connection.channels.iter().filter(|c| c.active) {
                let data_store = file
                    .data_stores
                    .iter()
                    .chain(&stored_data_stores)
                    .find(|d| d.name == channel.data_store);
                if let Some(data_store) =
                    data_store.filter(|d| source_of(d).checked_on_activation())
                    && let Err(e) = check_channel_source(channel, data_store).await
                {
                    data_store_failed = true;
                    problems.push(format!("connection \"{}\" {e:#}", connection.name));
                }
            }
        }
        if !problems.is_empty() {
            return Err(ActivationRefused {
                problems,
                target_failed,
                data_store_failed,
            }
            .into());
        }
    }

    let mut lines = Vec::new();
    for data_store in &file.data_stores {
        if let Some(path) = data_store.file()
            && !Path::new(path).exists()
        {
            lines.push(format!(
                "warning: data store \"{}\": {path} does not exist yet",
                data_store.name
            ));
        }
        let saved = store.save_data_store(data_store).await?;
        lines.push(format!(
            "data store \"{}\": {}",
            data_store.name,
            describe(saved)
        ));
    }
    for connection in &file.connections {
        for secret in connection.secrets() {
            if !matches!(secret, Secret::Literal(_))
                && let Err(e) = resolve(secret)
            {
                // The service may run with another environment: warn, do not refuse.
                lines.push(format!("warning: connection \"{}\": {e}", connection.name));
            }
        }
        let saved = store.save_connection(connection).await?;
        let state = if connection.active {
            "active"
        } else {
            "inactive"
        };
        lines.push(format!(
            "connection \"{}\" ({state}, {} channel{}): {}",
            connection.name,
            connection.channels.len(),
            if connection.channels.len() == 1 {
                ""
            } else {
                "s"
            },
            describe(saved)
        ));
    }
    Ok(lines)
}

fn describe(saved: Saved) -> &'static str {
    match saved {
        Saved::Created => "created",
        Saved::Updated => "updated",
        Saved::Unchanged => "unchanged",
    }
}

/// The secrets of `incoming` that are `env:` or `file:` references not stored under the same
/// name already. Such a reference makes the server read its own environment or files: only
/// configuration files applied on the server may bring new ones, so the admin API and the
/// console refuse them (a document read and sent back keeps the stored ones).
pub fn new_references<'a>(
    incoming: impl IntoIterator<Item = (&'static str, &'a mut Option<Secret>)>,
    stored: impl IntoIterator<Item = (&'static str, &'a mut Option<Secret>)>,
) -> Vec<&'static str> {
    let stored: Vec<(&str, Option<Secret>)> = stored
        .into_iter()
        .map(|(name, secret)| (name, secret.clone()))
        .collect();
    incoming
        .into_iter()
        .filter_map(|(name, secret)| {
            let secret = secret.as_ref()?;
            let known = stored
                .iter()
                .any(|(n, s)| *n == name && s.as_ref() == Some(secret));
            (!secret.is_literal() && !known).then_some(name)
        })
        .collect()
}
