//! `scimbridge check CONNECTION`: proves the target URL and credentials work.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use scimbridge_engine::apply::CheckReport;
use scimbridge_model::Connection;

use crate::context::DataDir;
use crate::ops::check::{check_channel_source, check_connection};
use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connection whose target to check.
    connection: String,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    let report = check_connection(&connection).await?;
    for line in describe(&connection, &report) {
        outln!("{line}");
    }
    for channel in connection.channels.iter().filter(|c| c.active) {
        let data_store = dir.data_store(&channel.data_store).await?;
        outln!("{}", check_channel_source(channel, &data_store).await?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn describe(connection: &Connection, report: &CheckReport) -> Vec<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let capabilities = &report.capabilities;
    vec![
        format!(
            "connection \"{}\": target {} (SCIM {})",
            connection.name,
            connection.target.scim_url,
            match connection.target.scim_version {
                scimbridge_model::ScimVersion::V2 => "2.0",
                scimbridge_model::ScimVersion::V1_1 => "1.1",
            }
        ),
        format!(
            "  authentication: {} accepted",
            connection.target.authentication.name()
        ),
        format!(
            "  users: {} answers a SCIM list{}",
            report.users_url,
            report
                .users
                .map(|n| format!(" ({n} users)"))
                .unwrap_or_default()
        ),
        if capabilities.discovered {
            format!(
                "  capabilities: PATCH {}, filter {}, ETag {}, sort {}, Bulk {}",
                yes_no(capabilities.patch),
                yes_no(capabilities.filter),
                yes_no(capabilities.etag),
                yes_no(capabilities.sort),
                yes_no(capabilities.bulk)
            )
        } else {
            "  capabilities: no ServiceProviderConfig; updates use PUT".to_owned()
        },
        "OK".to_owned(),
    ]
}
