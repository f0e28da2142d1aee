//! `scimbridge health [--url URL]`: whether a running service answers on `/healthz`, for a
//! container's HEALTHCHECK or a monitoring probe, without curl in the image.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's health endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9464/healthz")]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

pub async fn run(args: Args) -> Result<ExitCode> {
    // A proxy from the environment (HTTP_PROXY in a container) must not stand between a
    // health check and the service next to it.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .build()
        .context("cannot build an HTTP client")?;
    let answer = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("the service does not answer at {}", args.url))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(anyhow!("{} answered {status}", args.url));
    }
    outln!("ok");
    Ok(ExitCode::SUCCESS)
}
