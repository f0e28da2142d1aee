//! `scimbridge`: the command line of the provisioning engine.

// Standard output goes through `output`, which stops quietly when the reader has gone.
#![deny(clippy::print_stdout)]

mod admin;
mod auth;
mod commands;
mod console;
mod context;
mod memory;
mod metrics;
mod ops;
mod output;
mod progress;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit code of a cycle that completed with failed records.
pub const EXIT_RECORDS_FAILED: u8 = 3;
/// Exit code of a cycle that stopped because the target was found down.
pub const EXIT_TARGET_DOWN: u8 = 4;

#[derive(Debug, Parser)]
#[command(name = "scimbridge", version, about = "Keeps SCIM targets in step with your directory.", long_about = None)]
struct Cli {
    /// Folder holding the state store, the secret key and quickstart files.
    #[arg(
        long,
        global = true,
        env = "SCIMBRIDGE_DATA_DIR",
        default_value = "./scimbridge-data"
    )]
    data_dir: PathBuf,

    /// More log output (-v: info, -vv: debug). SCIMBRIDGE_LOG takes a full filter instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Log lines for people (`text`) or for a log pipeline (`json`: one object per line).
    #[arg(
        long,
        global = true,
        env = "SCIMBRIDGE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Provision the sample directory into the bundled SCIM target, end to end, then follow edits.
    Quickstart(commands::quickstart::Args),
    /// Create or update data stores and connections from a configuration file.
    Apply(commands::apply::Args),
    /// Prove a connection's target URL and credentials work, or say precisely why not.
    Check(commands::check::Args),
    /// Print the stored configuration as a file (secrets redacted).
    Export(commands::export::Args),
    /// Show what the next cycle of a connection would do, and why; writes nothing.
    Plan(commands::plan::Args),
    /// Try a channel's attribute mapping on one directory entry.
    Mapping {
        #[command(subcommand)]
        command: commands::mapping::Command,
    },
    /// Run the provisioning service: every active channel on its schedule and on live changes.
    Serve(commands::serve::Args),
    /// Run one cycle of every active channel of a connection now, then exit.
    Sync(commands::sync::Args),
    /// One user's provisioning events across cycles ("why was this user disabled?").
    History(commands::history::Args),
    /// List the operations the mass-change guard holds for a connection.
    Held(commands::held::Args),
    /// Approve the held operations: the next cycle applies them.
    Approve(commands::held::Args),
    /// Discard the held operations.
    Discard(commands::held::Args),
    /// List channels with their status, user count and failed-record count.
    Channels,
    /// Activate, deactivate or delete a connection.
    Connection {
        #[command(subcommand)]
        command: commands::connection::Command,
    },
    /// Delete a data store that no channel reads.
    DataStore {
        #[command(subcommand)]
        command: commands::connection::DataStoreCommand,
    },
    /// Reset a channel's state.
    Channel {
        #[command(subcommand)]
        command: commands::channel::Command,
    },
    /// The admin API's administrator account and API tokens.
    Admin {
        #[command(subcommand)]
        command: commands::admin::Command,
    },
    /// The bundled SCIM 2.0 target service.
    Target {
        #[command(subcommand)]
        command: commands::target::Command,
    },
    /// Whether a running service answers on /healthz (exit 0), for container health checks.
    Health(commands::health::Args),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::docs::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command with --dir.
    Man(commands::docs::ManArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a person at a terminal: not in log files, journald or a pipe.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The async runtime a command runs on. A cycle's future is not `Send`: it runs where `main`
/// blocks on it, and on a multi-threaded runtime every request then hopped between that thread
/// and the runtime's workers, where the HTTP connections run (a quarter of a first cycle's CPU
/// without Bulk went to those wake-ups). `sync` and `plan` run their channels one at a time:
/// on one thread, as `serve` runs each channel's worker.
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Sync(_) | Command::Plan(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

fn main() -> ExitCode {
    memory::limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = cli.data_dir;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Quickstart(args) => commands::quickstart::run(&data_dir, args).await,
            Command::Apply(args) => commands::apply::run(&data_dir, args).await,
            Command::Check(args) => commands::check::run(&data_dir, args).await,
            Command::Export(args) => commands::export::run(&data_dir, args).await,
            Command::Plan(args) => commands::plan::run(&data_dir, args).await,
            Command::Sync(args) => commands::sync::run(&data_dir, args).await,
            Command::Serve(args) => commands::serve::run(&data_dir, args).await,
            Command::Mapping { command } => commands::mapping::run(&data_dir, command).await,
            Command::Channels => commands::channels::run(&data_dir).await,
            Command::Held(args) => commands::held::list(&data_dir, args).await,
            Command::History(args) => commands::history::run(&data_dir, args).await,
            Command::Approve(args) => commands::held::approve(&data_dir, args).await,
            Command::Discard(args) => commands::held::discard(&data_dir, args).await,
            Command::Channel { command } => commands::channel::run(&data_dir, command).await,
            Command::Connection { command } => commands::connection::run(&data_dir, command).await,
            Command::DataStore { command } => {
                commands::connection::run_data_store(&data_dir, command).await
            }
            Command::Target { command } => commands::target::run(&data_dir, command).await,
            Command::Admin { command } => commands::admin::run(&data_dir, command).await,
            Command::Health(args) => commands::health::run(args).await,
            Command::Completions(args) => commands::docs::completions(Cli::command(), args),
            Command::Man(args) => commands::docs::man(Cli::command(), args),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
