//! `scimbridge apply -f FILE`: validate, then create or update by name. Idempotent.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use scimbridge_model::ConfigFile;

use crate::context::DataDir;
use crate::ops::configure::{ActivationCheck, save_configuration};
use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (TOML, `version = 1`).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Do not check the target of active connections before saving them.
    #[arg(long)]
    skip_check: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read configuration file {}", args.file.display()))?;
    let file = ConfigFile::from_toml(&text).map_err(|e| anyhow!("{}: {e}", args.file.display()))?;
    let base_dir = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let dir = DataDir::open(data_dir, true).await?;
    let check = if args.skip_check {
        ActivationCheck::Skip
    } else {
        ActivationCheck::Target
    };
    for line in save_configuration(&dir.store, file, &base_dir, check)
        .await
        .map_err(|e| anyhow!("{}: {e:#}", args.file.display()))?
    {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
