//! Helpers shared by the end-to-end tests, which run the real binary:
//!
//! - `config`: configurations built in a few calls, written as TOML ([`Config`]);
//! - `directory`: LDIF entries, the sample directory, edits of a directory file;
//! - `target`: the bundled target as a separate process, and a reader of any SCIM target;
//! - `workspace`: a data directory, a directory file and a configuration file, and the
//!   commands run on them (apply, sync, …);
//! - `process`: long-running commands (`serve`, `sync --watch`), read line by line.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod config;
pub mod directory;
pub mod process;
pub mod target;
pub mod workspace;

use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use config::{Config, DataStore, Field};
pub use directory::*;
pub use process::*;
pub use target::*;
pub use workspace::*;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scimbridge")
}

/// `scimbridge --data-dir DIR ARGS…`, its standard input empty.
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null());
    command
}

/// Runs `scimbridge --data-dir DIR ARGS…` to completion.
pub fn scimbridge(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(data_dir, args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Asserts that `text` (what a command printed) contains each of `expected`.
#[track_caller]
pub fn assert_has(text: &str, expected: &[&str]) {
    for part in expected {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_str(path: &Path) -> String {
    path.display().to_string()
}
