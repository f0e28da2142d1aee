//! `scimbridge connection activate|deactivate|delete NAME` and `scimbridge data-store delete
//! NAME`: what the console's toggles and Delete buttons do, from the command line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};

use crate::context::DataDir;
use crate::ops::Refused;
use crate::ops::configure::{ActivationCheck, set_active};
use crate::ops::delete::{delete_connection, delete_data_store};
use crate::output::outln;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Activate a connection: its target and LDAP data stores are checked first, as by apply;
    /// the service then runs its active channels.
    Activate {
        name: String,
        /// Activate without checking the target and data stores.
        #[arg(long)]
        skip_check: bool,
    },
    /// Deactivate a connection: the service stops its channels; its state is kept.
    Deactivate { name: String },
    /// Delete an inactive connection with its channels' state (records, journal, held
    /// operations, history). The target is not touched.
    Delete { name: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum DataStoreCommand {
    /// Delete a data store that no channel reads.
    Delete { name: String },
}

pub async fn run(data_dir: &Path, command: Command) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    match command {
        Command::Activate { name, skip_check } => {
            let check = if skip_check {
                ActivationCheck::Skip
            } else {
                ActivationCheck::Target
            };
            for line in set_active(&dir.store, &name, true, check).await? {
                outln!("{line}");
            }
        }
        Command::Deactivate { name } => {
            for line in set_active(&dir.store, &name, false, ActivationCheck::Skip).await? {
                outln!("{line}");
            }
        }
        Command::Delete { name } => {
            match delete_connection(&dir.store, &name).await {
                Ok(()) => {}
                Err(Refused::Conflict(reason)) => {
                    return Err(anyhow!("{reason}: scimbridge connection deactivate {name}"));
                }
                Err(other) => return Err(other.into()),
            }
            outln!("connection \"{name}\": deleted with its channels' state");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_data_store(data_dir: &Path, command: DataStoreCommand) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let DataStoreCommand::Delete { name } = command;
    delete_data_store(&dir.store, &name).await?;
    outln!("data store \"{name}\": deleted");
    Ok(ExitCode::SUCCESS)
}
