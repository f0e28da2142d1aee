//! `scimbridge plan CONNECTION`: the operations the next cycle would perform; writes nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::context::DataDir;
use crate::ops::plan::plan_one;

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
    let mut plans = Vec::new();
    for channel in connection.channels.iter().filter(|c| c.active) {
        let planned = plan_one(&dir, &connection, channel).await?;
        if !args.json {
            println!(
                "channel {}: data store read with {}",
                planned.channel, planned.read
            );
        }
        plans.push((planned.channel, planned.plan));
    }
    if args.json {
        let value: serde_json::Map<String, serde_json::Value> = plans
            .into_iter()
            .map(|(name, plan)| (name, serde_json::to_value(plan).unwrap_or_default()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for (name, plan) in plans {
            println!("channel {name}:");
            print!("{plan}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
