//! The data directory holds the administrator's password hash, the secret key, people's data
//! and the audit trail: it is the service user's alone whatever the umask, and a looser one made
//! earlier is named with its fix.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `scimbridge --data-dir DIR ARGS…` under `umask 022`, the usual default that leaves new
/// files readable by everyone.
fn under_umask_022(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022; exec \"$@\"", "sh", bin(), "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

/// The permission bits, in octal as `ls` and `chmod` spell them.
fn mode(path: &Path) -> String {
    format!(
        "{:o}",
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    )
}

/// Every file of the directory with its mode, by name.
fn file_modes(dir: &Path) -> Vec<(String, String)> {
    let mut modes: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                mode(&entry.path()),
            )
        })
        .collect();
    modes.sort();
    modes
}

#[track_caller]
fn assert_owner_only(dir: &Path, expected_files: &[&str]) {
    assert_eq!(mode(dir), "700", "{}", dir.display());
    let modes = file_modes(dir);
    for name in expected_files {
        assert!(
            modes.iter().any(|(n, _)| n == name),
            "{name} missing: {modes:?}"
        );
    }
    for (name, mode) in &modes {
        assert_eq!(mode, "600", "{name}: {modes:?}");
    }
}

/// Starts `command`, a server, and waits for its first line, which must contain `ready`;
/// returns the files of `dir` with their modes while it runs, and what it wrote on standard
/// error until it was killed.
fn modes_while_running(
    command: &mut Command,
    ready: &str,
    dir: &Path,
) -> (Vec<(String, String)>, String) {
    let mut server = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(ready), "{first}");
    let running = file_modes(dir);
    let _ = server.kill();
    let errors = server.wait_with_output().unwrap();
    for (name, mode) in &running {
        assert_eq!(mode, "600", "{name}: {running:?}");
    }
    (running, stderr(&errors))
}

#[test]
fn quickstart_sync_and_serve_keep_the_data_directory_private_under_umask_022() {
    let ws = Workspace::new();
    let data = &ws.data;

    let output = run(under_umask_022(data, &["quickstart", "--once"]).stdout(Stdio::null()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("open to other users"));
    let quickstart_files = [
        "state.db",
        "secret.key",
        "audit.log",
        "target-token",
        "target.db",
        "quickstart.toml",
        "directory.ldif",
    ];
    assert_owner_only(data, &quickstart_files);

    // A cycle that changes something appends to the audit trail.
    let ldif = data.join("directory.ldif");
    let text = std::fs::read_to_string(&ldif).unwrap();
    let title = text.lines().find(|l| l.starts_with("title: ")).unwrap();
    std::fs::write(&ldif, text.replacen(title, "title: Moved", 1)).unwrap();
    let output = run(&mut under_umask_022(data, &["quickstart", "--once"]));
    assert!(stdout(&output).contains("updated 1"), "{}", stdout(&output));
    assert_owner_only(data, &quickstart_files);

    // While the service runs, SQLite's -wal and -shm files exist: they are private too.
    let (running, errors) = modes_while_running(
        &mut under_umask_022(
            data,
            &["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"],
        ),
        "admin API on",
        data,
    );
    for name in ["state.db-wal", "state.db-shm"] {
        assert!(
            running.iter().any(|(n, _)| n == name),
            "{name} missing: {running:?}"
        );
    }
    assert!(!errors.contains("open to other users"));
}

#[test]
fn a_data_directory_made_by_another_command_and_the_target_s_own_are_private() {
    let ws = Workspace::new();
    let admin_data = ws.path("nested/admin-data");
    let output = run(&mut under_umask_022(
        &admin_data,
        &["admin", "token", "create", "ci"],
    ));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_owner_only(&admin_data, &["state.db", "secret.key"]);

    let target_data = ws.path("target-data");
    let (running, _) = modes_while_running(
        &mut under_umask_022(
            &target_data,
            &["target", "serve", "--listen", "127.0.0.1:0"],
        ),
        "target listening",
        &target_data,
    );
    assert_eq!(mode(&target_data), "700");
    assert!(running.iter().any(|(n, _)| n == "target.db"), "{running:?}");
}

#[test]
fn a_data_directory_open_to_others_is_named_with_its_fix() {
    let ws = Workspace::new();
    let data = &ws.data;
    ws.api_token("ci");
    let state_db = data.join("state.db");
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&state_db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let output = ws.try_run(&["admin", "token", "list"]);
    assert!(output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("the data directory is open to other users"),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 700 {}", data.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 600 {}", state_db.display())),
        "{err}"
    );
    // Named, not changed behind the administrator's back.
    assert_eq!(mode(data), "755");

    // Once fixed, nothing more is said. (SQLite makes its -wal and -shm files as open as
    // state.db is, so the fix covers every file, as `chmod 600 DIR/*` would.)
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let output = ws.try_run(&["admin", "token", "list"]);
    assert!(output.status.success());
    assert!(
        !stderr(&output).contains("open to other users"),
        "{}",
        stderr(&output)
    );
}
