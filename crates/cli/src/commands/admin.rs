//! `scimbridge admin`: the administrator account of the admin API and API tokens.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use scimbridge_engine::clock::{Clock, SystemClock};
use scimbridge_engine::state::{AdminAccount, AdminStore, ApiToken};

use crate::auth::{hash_password, new_token, token_hash};
use crate::context::DataDir;
use crate::ops::status::format_utc;
use crate::output::outln;

/// Environment variable holding the administrator password for `admin password`.
const PASSWORD_ENV: &str = "SCIMBRIDGE_ADMIN_PASSWORD";
/// Shorter passwords are refused.
const MIN_PASSWORD_LENGTH: usize = 12;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Set the administrator's user name and password (from SCIMBRIDGE_ADMIN_PASSWORD, else typed
    /// twice at the terminal without echo, else the first line of standard input); stored as an
    /// Argon2id hash.
    Password {
        #[arg(long, default_value = "administrator")]
        username: String,
    },
    /// API tokens for automation (Authorization: Bearer TOKEN).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create (or replace) a token; it is printed once and only its hash is kept.
    Create { name: String },
    /// List the tokens by name.
    List,
    /// Revoke a token.
    Revoke { name: String },
}

/// The new password: from [`PASSWORD_ENV`]; else, at a terminal, typed twice without echo;
/// else the first line of standard input (a script).
fn new_password(username: &str) -> Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return long_enough(password);
    }
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return long_enough(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let password = long_enough(
        hidden_line(&format!("New password for \"{username}\": "))
            .context("cannot read the password from the terminal")?,
    )?;
    let again = hidden_line("The same password again: ")
        .context("cannot read the password from the terminal")?;
    if again != password {
        return Err(anyhow!(
            "the two passwords differ; nothing was changed (run the command again)"
        ));
    }
    Ok(password)
}

/// A line typed at the terminal without echo. Echo goes off before the prompt is shown, so that
/// nothing typed as soon as it shows (or ahead of it) is echoed; it comes back however the read
/// ends.
fn hidden_line(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, BufReader, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let shown = tcgetattr(&tty)?;
    let mut hidden = shown.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    // The newline the user types is still shown, so that what follows starts on a new line.
    hidden.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Now, &hidden)?;
    let read = (|| {
        (&tty).write_all(prompt.as_bytes())?;
        (&tty).flush()?;
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    })();
    tcsetattr(&tty, OptionalActions::Now, &shown)?;
    read
}

fn long_enough(password: String) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(anyhow!(
            "the password must have at least {MIN_PASSWORD_LENGTH} characters (typed at the terminal, given in {PASSWORD_ENV} or on standard input)"
        ));
    }
    Ok(password)
}

pub async fn run(data_dir: &Path, command: Command) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, true).await?;
    match command {
        Command::Password { username } => {
            let password = new_password(&username)?;
            let password_hash = hash_password(&password)?;
            dir.store
                .save_admin_account(&AdminAccount {
                    username: username.clone(),
                    password_hash,
                })
                .await?;
            outln!("administrator \"{username}\": password set");
        }
        Command::Token { command } => match command {
            TokenCommand::Create { name } => {
                let token = new_token();
                dir.store
                    .save_api_token(&ApiToken {
                        name: name.clone(),
                        token_hash: token_hash(&token),
                        created_at_ms: SystemClock.now_ms(),
                    })
                    .await?;
                eprintln!("token \"{name}\" created; it is shown this once:");
                outln!("{token}");
            }
            TokenCommand::List => {
                for token in dir.store.api_tokens().await? {
                    outln!(
                        "{}  created {}",
                        token.name,
                        format_utc(token.created_at_ms)
                    );
                }
            }
            TokenCommand::Revoke { name } => {
                if !dir.store.delete_api_token(&name).await? {
                    return Err(anyhow!("no token named \"{name}\""));
                }
                outln!("token \"{name}\" revoked");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
