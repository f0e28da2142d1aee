//! `scimbridge channel reset CHANNEL [--all-state]`: forget what a channel knows, like provmgr's
//! reset options.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::ChannelKey;

use crate::context::DataDir;
use crate::ops::channels::{Reset, reset};
use crate::output::outln;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Forget the channel's sync state, so that the next cycle is a full reconciliation; with
    /// --all-state, forget its records too, so that the next cycle links every user and group
    /// again by the unique identifier (creating no duplicate).
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// `CONNECTION/CHANNEL`, or the channel's name when no other connection has one so named.
    channel: String,
    /// Also forget every user and group record of the channel.
    #[arg(long)]
    all_state: bool,
}

pub async fn run(data_dir: &Path, command: Command) -> Result<ExitCode> {
    let Command::Reset(args) = command;
    let dir = DataDir::open(data_dir, false).await?;
    let key = resolve_channel(&dir, &args.channel).await?;
    if args.all_state {
        reset(&dir.store, &key, Reset::AllState).await?;
        outln!(
            "channel {key}: records, group records and sync state forgotten; the next cycle reads \
             every entry and links to the target's existing users and groups by the unique \
             identifier"
        );
    } else {
        reset(&dir.store, &key, Reset::SyncState).await?;
        outln!(
            "channel {key}: sync state forgotten; the next cycle reads every entry (a full \
             reconciliation)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn resolve_channel(dir: &DataDir, name: &str) -> Result<ChannelKey> {
    let connections = dir.store.connections().await?;
    let found: Vec<ChannelKey> = connections
        .iter()
        .flat_map(|c| {
            c.channels
                .iter()
                .map(move |ch| ChannelKey::new(&c.name, &ch.name))
        })
        .filter(|key| match name.split_once('/') {
            Some((connection, channel)) => key.connection == connection && key.channel == channel,
            None => key.channel == name,
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(anyhow!(
            "no channel {name} (see `scimbridge channels`; write CONNECTION/CHANNEL)"
        )),
        _ => Err(anyhow!(
            "several connections have a channel {name}; write CONNECTION/CHANNEL"
        )),
    }
}
