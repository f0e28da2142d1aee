//! `scimbridge target serve`: the bundled SCIM 2.0 target service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::outln;
use anyhow::{Context, Result, anyhow};
use scimbridge_target::{BASE_PATH, Faults, ScimTarget, TargetConfig};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve Users and Groups over SCIM 2.0, stored in SQLite, until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require this bearer token (discovery endpoints stay open). Prefer --token-file.
    #[arg(
        long,
        env = "SCIMBRIDGE_TARGET_TOKEN",
        conflicts_with = "token_file",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Read the required bearer token from a file.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Also accept HTTP Basic with this user name (with --basic-password-file).
    #[arg(long, requires = "basic_password_file")]
    basic_user: Option<String>,
    /// Read the HTTP Basic password from a file.
    #[arg(long, requires = "basic_user")]
    basic_password_file: Option<PathBuf>,
    /// SQLite file holding the target's users and groups [default: DATA_DIR/target.db].
    #[arg(long)]
    database: Option<PathBuf>,
    /// Test faults: wait this many milliseconds before handling each request.
    #[arg(long, default_value_t = 0, help_heading = "Faults (for tests)")]
    fault_latency_ms: u64,
    /// Test faults: handle each request, then wait this many milliseconds before answering.
    #[arg(long, default_value_t = 0, help_heading = "Faults (for tests)")]
    fault_latency_after_ms: u64,
    /// Test faults: answer every Nth request with --fault-status instead of handling it.
    #[arg(long, help_heading = "Faults (for tests)")]
    fault_error_every: Option<u64>,
    /// Test faults: the status of injected errors (429, 503, 500…).
    #[arg(long, default_value_t = 503, help_heading = "Faults (for tests)")]
    fault_status: u16,
    /// Test faults: send this Retry-After (seconds) with injected errors.
    #[arg(long, help_heading = "Faults (for tests)")]
    fault_retry_after: Option<u64>,
    /// Test faults: drop the connection of every Nth request, unanswered and unhandled.
    #[arg(long, help_heading = "Faults (for tests)")]
    fault_drop_every: Option<u64>,
}

pub async fn run(data_dir: &std::path::Path, command: Command) -> Result<ExitCode> {
    let Command::Serve(args) = command;
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    if token.as_deref() == Some("") {
        return Err(anyhow!("the bearer token is empty"));
    }
    let basic_credentials = match (&args.basic_user, &args.basic_password_file) {
        (Some(user), Some(path)) => {
            let password = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read password file {}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            if user.is_empty() || user.contains(':') || password.is_empty() {
                return Err(anyhow!(
                    "--basic-user must be non-empty without ':', and the password file not empty"
                ));
            }
            Some((user.clone(), password))
        }
        _ => None,
    };
    let database_path = match args.database {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            path
        }
        None => {
            crate::context::create_data_dir(data_dir)?;
            data_dir.join("target.db")
        }
    };
    let open = token.is_none() && basic_credentials.is_none();
    let target = ScimTarget::open(TargetConfig {
        database_path: database_path.clone(),
        bearer_token: token,
        basic_credentials,
    })
    .await
    .with_context(|| {
        format!(
            "cannot open the target database {}",
            database_path.display()
        )
    })?;
    let faults = Faults {
        latency_before: std::time::Duration::from_millis(args.fault_latency_ms),
        latency_after: std::time::Duration::from_millis(args.fault_latency_after_ms),
        error_every: args.fault_error_every.map(|n| (n, args.fault_status)),
        retry_after: args.fault_retry_after,
        drop_every: args.fault_drop_every,
    };
    if faults != Faults::default() {
        eprintln!("warning: injecting test faults: {faults:?}");
    }
    target.set_faults(faults);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    outln!(
        "SCIM 2.0 target listening on http://{address}{BASE_PATH} (database {})",
        database_path.display()
    );
    if open {
        outln!("warning: no --token and no --basic-user: every request is accepted");
    }
    target.serve(listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
