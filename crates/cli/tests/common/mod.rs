//! Helpers shared by the end-to-end tests: run the real binary, start the bundled target as a
//! separate process, read a SCIM target over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SAMPLE: &str = include_str!("../../../../examples/directory.ldif");

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scimbridge")
}

/// Runs `scimbridge --data-dir DIR ARGS…` to completion.
pub fn scimbridge(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
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

/// The bundled target run as `scimbridge target serve`, killed when dropped.
pub struct TargetProcess {
    child: Child,
    pub url: String,
    pub token: String,
}

impl TargetProcess {
    pub fn start(database: &Path, token: &str) -> TargetProcess {
        let (child, url) = serve_target(&["--token", token], database);
        TargetProcess {
            child,
            url,
            token: token.to_owned(),
        }
    }

    pub fn client(&self) -> ScimReader {
        ScimReader {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scimbridge target serve` on a port the system picks (no race with other tests for a
/// free port) and returns it with its SCIM base URL, read from its first line of output.
pub fn serve_target(args: &[&str], database: &Path) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(bin())
        .args(["target", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--database")
        .arg(database)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep reading, so that later lines never meet a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    // "SCIM 2.0 target listening on http://127.0.0.1:PORT/scim/v2 (database …)"
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line from target serve: {line:?}"))
        .to_owned();
    (child, url)
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// Reads a SCIM target the way a user would check it.
pub struct ScimReader {
    pub url: String,
    pub token: String,
}

impl ScimReader {
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Sends a write (`POST`, `PUT`, `PATCH`) and returns the status and body, as an operator
    /// changing the target by hand would.
    pub fn send(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every user, page by page.
    pub fn users(&self) -> Vec<Value> {
        let mut users = Vec::new();
        loop {
            let start = (users.len() + 1).to_string();
            let (status, page) = self.get("/Users", &[("startIndex", &start), ("count", "500")]);
            assert_eq!(status, 200, "{page}");
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap() as usize;
            if resources.is_empty() {
                assert_eq!(users.len(), total);
                return users;
            }
            users.extend(resources);
            if users.len() >= total {
                return users;
            }
        }
    }

    pub fn user_by_name(&self, user_name: &str) -> Option<Value> {
        let filter = format!("userName eq \"{user_name}\"");
        let (status, page) = self.get("/Users", &[("filter", &filter)]);
        assert_eq!(status, 200, "{page}");
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        assert!(
            resources.len() <= 1,
            "{user_name} exists {} times",
            resources.len()
        );
        resources.into_iter().next()
    }
}

/// The people of an LDIF text, parsed by our reader.
pub fn people(ldif: &str) -> Vec<scimbridge_ldap::LdifRecord> {
    scimbridge_ldap::parse_ldif(ldif, "sample")
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.values("objectClass")
                .any(|v| v.eq_ignore_ascii_case(b"inetOrgPerson"))
        })
        .collect()
}

/// Splits LDIF text into records (blank-line separated) for editing in tests.
pub fn edit_ldif(text: &str, edit: impl Fn(&str) -> Option<String>) -> String {
    text.split("\n\n")
        .filter_map(edit)
        .collect::<Vec<_>>()
        .join("\n\n")
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_str(path: &Path) -> String {
    path.display().to_string()
}

pub fn read_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("target-token"))
        .unwrap()
        .trim()
        .to_owned()
}

pub fn data_file(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(name)
}
