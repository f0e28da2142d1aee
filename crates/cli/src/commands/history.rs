//! `scimbridge history USER`: one user's (or group's) provisioning events across cycles, to
//! answer "why was this user disabled?".

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use scimbridge_engine::state::AuditStore;

use crate::context::DataDir;
use crate::ops::status::format_utc;
use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A user name, group name, DN, entry GUID or target id.
    who: String,
    /// The most recent events to show.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let events = dir.store.audit_events_of(&args.who, args.limit).await?;
    if events.is_empty() {
        outln!(
            "no provisioning event for {} (a user name, group name, DN, entry GUID or target id)",
            args.who
        );
        return Ok(ExitCode::SUCCESS);
    }
    for event in events {
        outln!(
            "{}  {}/{}  cycle {}  {}  {}  {}{}: {}",
            format_utc(event.time_ms),
            event.connection,
            event.channel,
            event.cycle_id,
            event.event_type,
            if event.success { "ok" } else { "not done" },
            event.name.as_deref().unwrap_or(&event.dn),
            event
                .target_id
                .map(|id| format!(" (target id {id})"))
                .unwrap_or_default(),
            event.cause
        );
    }
    Ok(ExitCode::SUCCESS)
}
