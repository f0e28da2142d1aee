//! The steps every end-to-end test takes: a folder with a data directory, a directory file and
//! a configuration file; apply, sync, and read what the command printed.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::config::Config;
use super::target::TargetProcess;
use super::{ok, path_str, scimbridge, stderr, stdout};

/// A throwaway folder holding `data/` (the data directory), `directory.ldif` and `app.toml`.
#[derive(Clone)]
pub struct Workspace {
    dir: Arc<tempfile::TempDir>,
    pub data: PathBuf,
    pub ldif: PathBuf,
    pub cfg: PathBuf,
    env: Vec<(String, String)>,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        Workspace {
            data: dir.path().join("data"),
            ldif: dir.path().join("directory.ldif"),
            cfg: dir.path().join("app.toml"),
            dir: Arc::new(dir),
            env: Vec::new(),
        }
    }

    /// The workspace's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file or folder in the workspace.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The same files with another data directory: a fresh install that knows nothing.
    pub fn with_data_dir(&self, name: &str) -> Workspace {
        Workspace {
            data: self.path(name),
            ..self.clone()
        }
    }

    /// Every command run with this variable set.
    pub fn with_env(mut self, key: &str, value: &str) -> Workspace {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The bundled target, its database in the workspace.
    pub fn target(&self, token: &str) -> TargetProcess {
        TargetProcess::start(&self.path("target.db"), token)
    }

    pub fn write_ldif(&self, text: &str) {
        std::fs::write(&self.ldif, text).unwrap();
    }

    /// Writes the directory file as a finished export: last modified a while ago, so that the
    /// cycle need not wait for it to settle.
    pub fn write_settled(&self, bytes: &[u8]) {
        std::fs::write(&self.ldif, bytes).unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(&self.ldif)
            .unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(10))
            .unwrap();
    }

    /// Rewrites the directory file through `edit`, which must change it.
    pub fn edit_ldif(&self, edit: impl FnOnce(&str) -> String) {
        let text = std::fs::read_to_string(&self.ldif).unwrap();
        let edited = edit(&text);
        assert_ne!(text, edited, "the edit changed nothing");
        self.write_ldif(&edited);
    }

    /// Writes the configuration file.
    pub fn write_config(&self, config: &Config) {
        std::fs::write(&self.cfg, config.toml()).unwrap();
    }

    /// `apply -f` of `config`, which must succeed; returns what it printed.
    pub fn apply(&self, config: &Config) -> String {
        ok(self.try_apply(config, &[]))
    }

    /// `apply --skip-check -f` of `config`: stored and activated without checking the target.
    pub fn apply_unchecked(&self, config: &Config) -> String {
        ok(self.try_apply(config, &["--skip-check"]))
    }

    /// `apply -f` of `config` with these other arguments, whatever its outcome.
    pub fn try_apply(&self, config: &Config, args: &[&str]) -> Output {
        self.write_config(config);
        let cfg = path_str(&self.cfg);
        let mut all = vec!["apply", "-f", cfg.as_str()];
        all.extend_from_slice(args);
        self.try_run(&all)
    }

    /// A command that must succeed; returns its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        ok(self.try_run(args))
    }

    /// A command that must fail; returns what it wrote on standard error.
    #[track_caller]
    pub fn fail(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(!output.status.success(), "{}", both(&output));
        stderr(&output)
    }

    /// A command, whatever its outcome.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.try_run_with(args, &[])
    }

    /// A command with more variables set, whatever its outcome.
    pub fn try_run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(env);
        scimbridge(&self.data, args, &all)
    }

    /// `sync app`, which must succeed; returns the summary it printed.
    pub fn sync(&self) -> String {
        self.run(&["sync", "app"])
    }

    /// `sync app` whatever its outcome: the exit code, and standard output then error.
    pub fn try_sync(&self) -> (Option<i32>, String) {
        let output = self.try_run(&["sync", "app"]);
        (output.status.code(), both(&output))
    }

    /// `sync app`, which must exit with `code` and print each of `expected`; returns what it
    /// printed.
    #[track_caller]
    pub fn sync_expecting(&self, code: i32, expected: &[&str]) -> String {
        let (exit, out) = self.try_sync();
        for text in expected {
            assert!(out.contains(text), "no {text:?} in:\n{out}");
        }
        assert_eq!(exit, Some(code), "{out}");
        out
    }

    /// The `channels` table, and the cells of the row of `connection`.
    pub fn channels_row(&self, connection: &str) -> (String, Vec<String>) {
        let table = self.run(&["channels"]);
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{connection} ")))
            .unwrap_or_else(|| panic!("no row for {connection}:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        (table, row)
    }

    /// Sets the administrator's password.
    pub fn admin_password(&self, password: &str) {
        ok(self.try_run_with(
            &["admin", "password"],
            &[("SCIMBRIDGE_ADMIN_PASSWORD", password)],
        ));
    }

    /// A new API token named `name`.
    pub fn api_token(&self, name: &str) -> String {
        self.run(&["admin", "token", "create", name])
            .trim()
            .to_owned()
    }

    /// Whether any file of the data directory holds `text` in clear.
    pub fn data_holds(&self, text: &str) -> bool {
        data_dir_holds(&self.data, text)
    }
}

/// Whether any file of `data` holds `text` in clear.
pub fn data_dir_holds(data: &Path, text: &str) -> bool {
    std::fs::read_dir(data).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        String::from_utf8_lossy(&bytes).contains(text)
    })
}

/// Standard output, then standard error.
pub fn both(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}
