//! `scimbridge channels`: every channel with its status and counts, like provmgr --show-channels.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::ChannelKey;

use crate::context::DataDir;
use crate::ops::status::{channel_status, describe_cycle};
use crate::output::outln;

const COLUMNS: usize = 9;

pub async fn run(data_dir: &Path) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let mut rows = vec![[
        "CONNECTION".to_owned(),
        "CHANNEL".to_owned(),
        "STATUS".to_owned(),
        "USERS".to_owned(),
        "FAILED".to_owned(),
        "BLOCKED".to_owned(),
        "HELD".to_owned(),
        "DETECTION".to_owned(),
        "LAST CYCLE".to_owned(),
    ]];
    for connection in dir.store.connections().await? {
        for channel in &connection.channels {
            let key = ChannelKey::new(&connection.name, &channel.name);
            let found = channel_status(&dir.store, &key).await?;
            // Said until a cycle gets through to the target again.
            let target_down = found.target_down.is_some();
            let status = match (connection.active, channel.active) {
                (true, true) if target_down => "active (target down)",
                (true, true) => "active",
                (false, _) => "inactive (connection)",
                (true, false) => "inactive",
            };
            rows.push([
                connection.name.clone(),
                channel.name.clone(),
                status.to_owned(),
                found.counts.users.to_string(),
                found.counts.failed.to_string(),
                found.counts.blocked.to_string(),
                found.held.to_string(),
                found.detection.name().to_owned(),
                describe_cycle(found.last_cycle.as_ref()),
            ]);
        }
    }
    if rows.len() == 1 {
        outln!("no channels (define connections with `scimbridge apply -f FILE`)");
        return Ok(ExitCode::SUCCESS);
    }
    let widths: Vec<usize> = (0..COLUMNS)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        outln!("{}", cells.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
