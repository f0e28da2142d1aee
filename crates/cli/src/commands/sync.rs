//! `scimbridge sync CONNECTION`: one cycle of every active channel, then exit.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use scimbridge_engine::clock::SystemClock;
use scimbridge_engine::{CycleReport, Progress, run_cycle};
use scimbridge_model::Connection;

use crate::EXIT_RECORDS_FAILED;
use crate::context::DataDir;
use crate::progress::{BarProgress, failure_lines, summary_line};

#[derive(Debug, clap::Args)]
pub struct Args {
    connection: String,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    let reports = sync_connection(&dir, &connection, &BarProgress::new()).await?;
    Ok(print_reports(&reports))
}

/// Runs a cycle of each active channel of an active connection.
pub async fn sync_connection(
    dir: &DataDir,
    connection: &Connection,
    progress: &dyn Progress,
) -> Result<Vec<CycleReport>> {
    if !connection.active {
        return Err(anyhow!(
            "connection \"{}\" is not active; set active = true in its configuration and apply it",
            connection.name
        ));
    }
    let channels: Vec<_> = connection.channels.iter().filter(|c| c.active).collect();
    if channels.is_empty() {
        return Err(anyhow!(
            "connection \"{}\" has no active channel",
            connection.name
        ));
    }
    let mut reports = Vec::new();
    for channel in channels {
        let data_store = dir.data_store(&channel.data_store).await?;
        let report = run_cycle(
            &dir.store,
            connection,
            channel,
            &data_store,
            &SystemClock,
            progress,
        )
        .await
        .map_err(|e| anyhow!("channel {}/{}: {e}", connection.name, channel.name))?;
        reports.push(report);
    }
    Ok(reports)
}

/// Prints each cycle's summary and failures; exit code 3 when any record failed.
pub fn print_reports(reports: &[CycleReport]) -> ExitCode {
    let mut failed = false;
    for report in reports {
        println!("{}", summary_line(report));
        for line in failure_lines(report, 20) {
            println!("{line}");
        }
        failed |= !report.failures.is_empty();
    }
    if failed {
        ExitCode::from(EXIT_RECORDS_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
