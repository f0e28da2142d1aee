//! A real OAuth 2 authorization server (Canaille, from PyPI `pytest-iam`) and a SCIM server
//! that checks its tokens by introspection (PyPI `scim2-server`), both on loopback and stopped
//! by PID when dropped. The launcher scripts are in this crate's `python/` folder.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The engine's client registered with `client_secret_basic`.
pub const BASIC_CLIENT: (&str, &str) = ("scim-provisioner", "provisioner-secret");
/// The engine's client registered with `client_secret_post`.
pub const POST_CLIENT: (&str, &str) = ("scim-poster", "poster-secret");

/// The Python of the test virtual environment: `SCIMBRIDGE_TEST_PYTHON`, else the `python`
/// beside `SCIM2_SERVER_BIN`.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("SCIMBRIDGE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    if let Ok(bin) = std::env::var("SCIM2_SERVER_BIN")
        && let Some(dir) = PathBuf::from(bin).parent()
    {
        return dir.join("python");
    }
    panic!(
        "set SCIMBRIDGE_TEST_PYTHON to the test virtual environment's python (scripts/test does)"
    )
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Starts a script and waits for it to print "ready".
pub(crate) fn start_script(name: &str, args: &[String]) -> Child {
    let python = python();
    let mut child = Command::new(&python)
        .arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} {name}: {e}", python.display()));
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let _ = child.kill();
        let status = child.wait();
        panic!(
            "{name} did not start ({status:?}); are the test packages installed? run scripts/test"
        );
    }
    child
}

pub struct Canaille {
    child: Child,
    pub port: u16,
}

impl Canaille {
    /// Client credentials tokens live `token_ttl_seconds`.
    pub fn start(token_ttl_seconds: u64) -> Canaille {
        Canaille::start_on(crate::free_port(), token_ttl_seconds)
    }

    /// Starts on a given port, for example again after `stop`: the new instance knows none of
    /// the tokens the old one issued.
    pub fn start_on(port: u16, token_ttl_seconds: u64) -> Canaille {
        let child = start_script(
            "canaille_server.py",
            &[port.to_string(), token_ttl_seconds.to_string()],
        );
        Canaille { child, port }
    }

    pub fn token_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/token", self.port)
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/introspect", self.port)
    }

    pub fn revocation_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/oauth/revoke", self.port)
    }
}

impl Drop for Canaille {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// scim2-server accepting only tokens the authorization server says are active.
pub struct IntrospectedScimServer {
    child: Child,
    pub port: u16,
}

impl IntrospectedScimServer {
    pub fn start(authorization_server: &Canaille) -> IntrospectedScimServer {
        let port = crate::free_port();
        let child = start_script(
            "scim2_server_oauth.py",
            &[
                port.to_string(),
                authorization_server.introspection_endpoint(),
                "scim-target".into(),
                "target-secret".into(),
            ],
        );
        IntrospectedScimServer { child, port }
    }

    /// The SCIM base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }
}

impl Drop for IntrospectedScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
