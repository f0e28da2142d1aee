//! `scimbridge plan CONNECTION`: the operations the next cycle would perform; writes nothing.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use scimbridge_engine::clock::{Clock, SystemClock};
use scimbridge_engine::plan_channel;

use crate::context::DataDir;

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
        let data_store = dir.data_store(&channel.data_store).await?;
        let planned = plan_channel(
            &dir.store,
            &connection,
            channel,
            &data_store,
            SystemClock.now_ms(),
        )
        .await?;
        if !args.json {
            println!(
                "channel {}: data store read with {}",
                channel.name,
                planned.read.describe()
            );
        }
        let mut plan = planned.plan;
        // Masked fields stay hidden in what the plan prints.
        for operation in plan.operations.iter_mut().chain(plan.held.iter_mut()) {
            crate::admin::mask_operation(operation, channel);
        }
        plans.push((channel.name.clone(), plan));
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
