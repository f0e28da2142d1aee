//! `scimbridge plan CONNECTION`: the operations the next cycle would perform; writes nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::context::DataDir;
use crate::ops::plan::plan_one;
use crate::output::{out, outln};

#[derive(Debug, clap::Args)]
pub struct Args {
    connection: String,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    let mut plans = serde_json::Map::new();
    for channel in connection.channels.iter().filter(|c| c.active) {
        let planned = plan_one(&dir, &connection, channel).await?;
        if args.json {
            plans.insert(planned.channel, serde_json::to_value(planned.plan)?);
        } else {
            // Each channel as soon as it is planned: a long plan starts printing at once.
            outln!(
                "channel {} (data store read with {}):",
                planned.channel,
                planned.read
            );
            out!("{}", planned.plan);
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&plans)?);
    }
    Ok(ExitCode::SUCCESS)
}
