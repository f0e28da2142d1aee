//! `scimbridge completions SHELL` and `scimbridge man`: shell completions and manual pages,
//! generated from the command line's own definition so that they never fall behind it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap_complete::Shell;

use crate::output::out;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command into this folder (scimbridge.1, scimbridge-plan.1, …) instead
    /// of printing the main page.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Prints the completion script, to be sourced by the shell (README, *Shell completions*).
pub fn completions(mut cli: clap::Command, args: CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "scimbridge", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}

pub fn man(cli: clap::Command, args: ManArgs) -> Result<ExitCode> {
    match args.dir {
        Some(dir) => write_pages(cli, &dir)?,
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cli)
                .render(&mut page)
                .context("cannot render the manual page")?;
            out!("{}", String::from_utf8_lossy(&page));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_pages(cli: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cli, dir)
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
    eprintln!("manual pages written into {}", dir.display());
    Ok(())
}
