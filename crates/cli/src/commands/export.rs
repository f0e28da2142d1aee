//! `scimbridge export [CONNECTION]`: the stored configuration as a file, secrets redacted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::ConfigFile;
use scimbridge_model::config::CONFIG_VERSION;

use crate::context::DataDir;
use crate::output::out;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Export only this connection (and the data stores its channels use).
    connection: Option<String>,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connections = match &args.connection {
        Some(name) => vec![dir.connection(name).await?],
        None => dir.store.connections().await?,
    };
    let used: BTreeSet<&str> = connections
        .iter()
        .flat_map(|c| c.channels.iter().map(|ch| ch.data_store.as_str()))
        .collect();
    let data_stores = dir
        .store
        .data_stores()
        .await?
        .into_iter()
        .filter(|d| args.connection.is_none() || used.contains(d.name.as_str()))
        .collect();
    out!("{}", export_text(data_stores, connections)?);
    Ok(ExitCode::SUCCESS)
}

/// Renders the configuration; literal secrets are left out with a comment saying so, and
/// applying the file again keeps them (an omitted secret keeps its stored value).
pub fn export_text(
    mut data_stores: Vec<scimbridge_model::DataStore>,
    mut connections: Vec<scimbridge_model::Connection>,
) -> Result<String> {
    let mut notes = Vec::new();
    for data_store in &mut data_stores {
        let name = data_store.name.clone();
        for (key, secret) in data_store.secret_fields_mut() {
            if secret.as_ref().is_some_and(|s| s.is_literal()) {
                *secret = None;
                notes.push(format!(
                    "# data store \"{name}\": ldap.{key} is stored encrypted and left out here; applying this file keeps it."
                ));
            }
        }
    }
    for connection in &mut connections {
        let name = connection.name.clone();
        for (key, secret) in connection.target.secret_fields_mut() {
            if secret.as_ref().is_some_and(|s| s.is_literal()) {
                *secret = None;
                notes.push(format!(
                    "# connection \"{name}\": target.{key} is stored encrypted and left out here; applying this file keeps it."
                ));
            }
        }
    }
    let file = ConfigFile {
        version: CONFIG_VERSION,
        data_stores,
        connections,
    };
    let mut text = String::from(
        "# scimbridge configuration, exported; apply with: scimbridge apply -f FILE\n",
    );
    for note in notes {
        text.push_str(&note);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&file.to_toml()?);
    Ok(text)
}
