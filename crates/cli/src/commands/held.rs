//! `scimbridge held CONNECTION`, `approve CONNECTION`, `discard CONNECTION`: the operations the
//! mass-change guard holds, and the operator's decision on them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use scimbridge_engine::state::HeldOperationStore;
use scimbridge_model::{ChannelKey, Connection};

use crate::context::DataDir;
use crate::ops::held::decide;
use crate::ops::status::format_utc;
use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    connection: String,
    /// Only this channel [default: every channel of the connection].
    #[arg(long)]
    channel: Option<String>,
}

fn channels(connection: &Connection, only: Option<&str>) -> Result<Vec<ChannelKey>> {
    let keys: Vec<ChannelKey> = connection
        .channels
        .iter()
        .filter(|c| only.is_none_or(|name| c.name == name))
        .map(|c| ChannelKey::new(&connection.name, &c.name))
        .collect();
    match (only, keys.is_empty()) {
        (Some(name), true) => Err(anyhow!(
            "connection \"{}\" has no channel \"{name}\"",
            connection.name
        )),
        _ => Ok(keys),
    }
}

/// Lists the held operations.
pub async fn list(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    let mut any = false;
    for key in channels(&connection, args.channel.as_deref())? {
        let held = dir.store.held_operations(&key).await?;
        if held.is_empty() {
            continue;
        }
        any = true;
        outln!("channel {key}: {} operations held", held.len());
        for operation in held {
            outln!(
                "  {} {}{}: {} (held {})",
                operation.operation,
                operation.label,
                if operation.approved {
                    " [approved: applied at the next cycle]"
                } else {
                    ""
                },
                operation.reason,
                format_utc(operation.held_at_ms)
            );
        }
    }
    if !any {
        outln!("nothing held for connection \"{}\"", connection.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Approves the held operations: the next cycle applies them.
pub async fn approve(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    for key in channels(&connection, args.channel.as_deref())? {
        let approved = decide(&dir.store, &key, |_| true, true).await?;
        if approved > 0 {
            outln!("channel {key}: {approved} operations approved; the next cycle applies them");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Discards the held operations. The directory decides again at the next cycle: what it still
/// says is held again.
pub async fn discard(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    for key in channels(&connection, args.channel.as_deref())? {
        let discarded = decide(&dir.store, &key, |_| true, false).await?;
        if discarded > 0 {
            outln!(
                "channel {key}: {discarded} held operations discarded; fix the directory, or the \
                 next cycle holds what it still says again"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
