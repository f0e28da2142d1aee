//! `scimbridge mapping test CONNECTION --entry WHO`: the SCIM image one directory entry would
//! get, computed exactly as a cycle computes it; sends nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use scimbridge_model::ChannelKey;

use crate::context::DataDir;
use crate::ops::mapping::{MapOutcome, map_entry};
use crate::ops::users::{WHO_FORMS, user_dn};
use crate::output::outln;

/// Exit code when the entry cannot be mapped (the reason is printed).
const EXIT_MAPPING_FAILED: u8 = 3;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the SCIM image an entry would get (masked fields hidden).
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    connection: String,
    /// The entry: its DN, or the user name or entry GUID of a user the channel has
    /// provisioned (as `sync --user` takes it).
    #[arg(long, visible_alias = "user", value_name = "WHO")]
    entry: String,
    /// The channel whose mapping to use [default: the connection's only active channel].
    #[arg(long)]
    channel: Option<String>,
}

pub async fn run(data_dir: &Path, command: Command) -> Result<ExitCode> {
    let Command::Test(args) = command;
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    let channel = match &args.channel {
        Some(name) => connection
            .channels
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| {
                anyhow!(
                    "connection \"{}\" has no channel \"{name}\"",
                    connection.name
                )
            })?,
        None => {
            let active: Vec<_> = connection.channels.iter().filter(|c| c.active).collect();
            match active.as_slice() {
                [only] => *only,
                [] => {
                    return Err(anyhow!(
                        "connection \"{}\" has no active channel",
                        connection.name
                    ));
                }
                _ => {
                    return Err(anyhow!(
                        "connection \"{}\" has several active channels; name one with --channel",
                        connection.name
                    ));
                }
            }
        }
    };
    let key = ChannelKey::new(&connection.name, &channel.name);
    let dn = user_dn(&dir.store, &key, &args.entry)
        .await?
        .ok_or_else(|| anyhow!("channel {key} knows no user {} ({WHO_FORMS})", args.entry))?;
    let data_store = dir.data_store(&channel.data_store).await?;
    let settings = channel.source_settings.effective(data_store.ldap_type());
    match map_entry(&data_store, channel, &dn).await? {
        MapOutcome::NotKeyed { dn, reason } => {
            outln!("{dn}: cannot be keyed: {reason}");
            Ok(ExitCode::from(EXIT_MAPPING_FAILED))
        }
        MapOutcome::Unmappable { dn, reason } => {
            outln!("channel \"{}\": {dn}", channel.name);
            outln!("cannot be mapped: {reason}");
            Ok(ExitCode::from(EXIT_MAPPING_FAILED))
        }
        MapOutcome::Image {
            dn,
            guid,
            outside,
            image,
        } => {
            outln!(
                "channel \"{}\": {dn} ({} {guid})",
                channel.name,
                settings.entry_guid_attribute
            );
            if let Some(base_dn) = outside {
                outln!("note: the entry is not below the base DN {base_dn}; cycles leave it out");
            }
            outln!("{}", serde_json::to_string_pretty(&image)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
