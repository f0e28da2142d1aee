//! `scimbridge plan CONNECTION`: the operations the next cycle would perform; writes nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::context::DataDir;
use crate::ops::plan::plan_one;
use crate::output::{out, outln, write_json};

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
    // JSON: an object of each channel's plan, printed as each is planned, never built whole.
    let mut first = true;
    for channel in connection.channels.iter().filter(|c| c.active) {
        let planned = plan_one(&dir, &connection, channel).await?;
        if args.json {
            out!(
                "{}\n  {}: ",
                if first { "{" } else { "," },
                serde_json::to_string(&planned.channel)?
            );
            write_json(&planned.plan, 2);
            first = false;
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
        outln!("{}", if first { "{}" } else { "\n}" });
    }
    Ok(ExitCode::SUCCESS)
}
