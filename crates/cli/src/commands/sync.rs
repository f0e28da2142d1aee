//! `scimbridge sync CONNECTION`: one cycle of every active channel, then exit.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use scimbridge_engine::apply::Outcome;
use scimbridge_engine::clock::SystemClock;
use scimbridge_engine::cycle::sync_one_user;
use scimbridge_engine::map::fields::mask;
use scimbridge_engine::source::source_of;
use scimbridge_engine::{CycleReport, NoProgress, Progress, run_cycle};
use scimbridge_model::{ChannelKey, Connection, Operation, PlannedOperation};
use tokio::sync::mpsc;

use crate::commands::serve::follow_change_feed;
use crate::commands::target::shutdown_signal;
use crate::context::DataDir;
use crate::ops::users::{WHO_FORMS, user_dn};
use crate::output::outln;
use crate::progress::{AuditLogged, BarProgress, failure_lines, summary_line};
use crate::{EXIT_RECORDS_FAILED, EXIT_TARGET_DOWN};

#[derive(Debug, clap::Args)]
pub struct Args {
    connection: String,
    /// Keep running: follow the directory's live change feed (content synchronization) and
    /// run a cycle whenever it reports a change, plus one every --interval seconds.
    #[arg(long)]
    watch: bool,
    /// With --watch: seconds between cycles of channels without a live feed, and between
    /// safety cycles of those with one.
    #[arg(long, default_value_t = 60, requires = "watch")]
    interval: u64,
    /// Provision only this user, now: a DN, or the user name or entry GUID of a user the
    /// connection already knows.
    #[arg(long, conflicts_with = "watch")]
    user: Option<String>,
    /// With --user: say what would be done, and do nothing.
    #[arg(long, requires = "user")]
    dry_run: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    if let Some(who) = &args.user {
        return sync_one(&dir, &connection, who, args.dry_run).await;
    }
    let reports = sync_connection(&dir, &connection, &BarProgress::new()).await?;
    let code = print_reports(&reports);
    if !args.watch {
        return Ok(code);
    }
    watch(&dir, &connection, Duration::from_secs(args.interval.max(1))).await?;
    Ok(ExitCode::SUCCESS)
}

/// Provisions one user in every active channel that reads it.
async fn sync_one(
    dir: &DataDir,
    connection: &Connection,
    who: &str,
    dry_run: bool,
) -> Result<ExitCode> {
    let mut found = false;
    let mut failed = false;
    let mut down = false;
    for channel in connection.channels.iter().filter(|c| c.active) {
        let key = ChannelKey::new(&connection.name, &channel.name);
        let Some(dn) = user_dn(&dir.store, &key, who).await? else {
            continue;
        };
        let data_store = dir.data_store(&channel.data_store).await?;
        let Some(one) = sync_one_user(
            &dir.store,
            connection,
            channel,
            &data_store,
            &dn,
            dry_run,
            &SystemClock,
        )
        .await
        .map_err(|e| anyhow!("channel {key}: {e}"))?
        else {
            continue;
        };
        found = true;
        let operation = &one.operation;
        match &one.applied {
            None => {
                outln!("channel {key}: {}", dry_run_line(operation));
                if let Operation::Create { image }
                | Operation::Update { image, .. }
                | Operation::Disable { image, .. } = &operation.operation
                {
                    let image = mask(
                        image,
                        &channel.attribute_mapping,
                        &channel.extension_mapping,
                    );
                    outln!("{}", serde_json::to_string_pretty(&image)?);
                }
            }
            Some(applied) => match &applied.outcome {
                Outcome::Failed(reason) => {
                    failed = true;
                    down |= one.target_down;
                    outln!("channel {key}: {operation}: failed: {reason}");
                }
                outcome => outln!("channel {key}: {operation}: {}", outcome_word(outcome)),
            },
        }
    }
    if !found {
        return Err(anyhow!(
            "no active channel of connection \"{}\" reads or knows {who} ({WHO_FORMS})",
            connection.name
        ));
    }
    Ok(if down {
        ExitCode::from(EXIT_TARGET_DOWN)
    } else if failed {
        ExitCode::from(EXIT_RECORDS_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `--dry-run` says of the operation: what would be sent, or why nothing would.
fn dry_run_line(operation: &PlannedOperation) -> String {
    let label = operation.label();
    let reason = &operation.reason;
    match operation.operation {
        Operation::Refresh => format!("{label}: nothing to send, the target user is already right"),
        Operation::Fail => format!("{label}: would fail: {reason}"),
        Operation::Block => format!("{label}: blocked: {reason}"),
        _ => format!("would {operation}"),
    }
}

fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Linked => "linked",
        Outcome::Updated => "updated",
        Outcome::Disabled => "disabled",
        Outcome::Deleted => "deleted",
        Outcome::Unchanged => "already right",
        Outcome::Skipped => "skipped",
        Outcome::Blocked => "blocked",
        Outcome::Forgotten => "forgotten",
        Outcome::Failed(_) => "failed",
    }
}

/// Runs cycles as changes arrive until Ctrl-C or SIGTERM. A feed that breaks is reopened after
/// a pause; meanwhile the interval cycles go on.
async fn watch(dir: &DataDir, connection: &Connection, interval: Duration) -> Result<()> {
    let (changed, mut changes) = mpsc::channel::<()>(1);
    for channel in connection.channels.iter().filter(|c| c.active) {
        let data_store = dir.data_store(&channel.data_store).await?;
        if !source_of(&data_store).may_have_live_feed() {
            continue;
        }
        let changed = changed.clone();
        let name = channel.name.clone();
        tokio::spawn(follow_change_feed(
            name,
            data_store,
            channel.clone(),
            interval,
            changed,
            // The cycle before the feeds opened may have missed what changed until then: a
            // feed signals a change as it opens.
            None,
        ));
    }
    drop(changed);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = ticker.tick() => {}
            Some(()) = changes.recv() => {
                // Changes come in bursts (an import, a group edit): let the burst settle.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while changes.try_recv().is_ok() {}
            }
        }
        match sync_connection(dir, connection, &NoProgress).await {
            Ok(reports) => {
                print_reports(&reports);
            }
            // The next change or tick tries again; nothing was deprovisioned.
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
}

/// Runs a cycle of each active channel of an active connection.
pub async fn sync_connection(
    dir: &DataDir,
    connection: &Connection,
    progress: &dyn Progress,
) -> Result<Vec<CycleReport>> {
    if !connection.active {
        return Err(anyhow!(
            "connection \"{}\" is not active; activate it with `scimbridge connection activate {}` (or active = true in its configuration, applied)",
            connection.name,
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
    let progress = AuditLogged::new(progress, dir);
    for channel in channels {
        let data_store = dir.data_store(&channel.data_store).await?;
        let report = run_cycle(
            &dir.store,
            connection,
            channel,
            &data_store,
            &SystemClock,
            &progress,
        )
        .await
        .map_err(|e| anyhow!("channel {}/{}: {e}", connection.name, channel.name))?;
        if let Some(failure) = progress.failure() {
            return Err(anyhow!(failure));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Prints each cycle's summary and failures; exit code 4 when the target was found down, 3
/// when any record failed.
pub fn print_reports(reports: &[CycleReport]) -> ExitCode {
    let mut failed = false;
    let mut down = false;
    for report in reports {
        outln!("{}", summary_line(report));
        for line in failure_lines(report, 20) {
            outln!("{line}");
        }
        // Records waiting for their retry are users the target still lacks.
        failed |= !report.failures.is_empty() || report.summary.waiting_retry > 0;
        down |= report.outage.is_some();
    }
    if down {
        ExitCode::from(EXIT_TARGET_DOWN)
    } else if failed {
        ExitCode::from(EXIT_RECORDS_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
