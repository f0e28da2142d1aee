//! Runs PyPI's `scim2-server` (python-scim), a SCIM 2.0 server we did not write, on loopback.
//!
//! The executable is taken from `SCIM2_SERVER_BIN`, else from `PATH`. `scripts/test` installs it
//! into a virtual environment and sets the variable.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Scim2Server {
    child: Child,
    pub port: u16,
    pub token: String,
}

impl Scim2Server {
    /// Starts the server on a free port, and waits until it answers a request with `token`.
    /// Another test may take the port between `free_port` and the server's bind: the server
    /// then exits, and it is started again on another port.
    pub fn start(token: &str) -> Scim2Server {
        let bin = std::env::var("SCIM2_SERVER_BIN").unwrap_or_else(|_| "scim2-server".into());
        for _ in 0..3 {
            let port = crate::free_port();
            let child = Command::new(&bin)
                .args([
                    "--hostname",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--bearer-token",
                    token,
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {bin} (install it with scripts/test or set SCIM2_SERVER_BIN): {e}"
                    )
                });
            let mut server = Scim2Server {
                child,
                port,
                token: token.to_owned(),
            };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("scim2-server exited three times at start (ports taken?)");
    }

    /// The SCIM base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// Whether the server answers: `false` when it exited (its port was taken), a panic when it
    /// neither answers nor exits within 30 s. A port that accepts connections is not enough: it
    /// may be another test's server.
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = format!("{}/ServiceProviderConfig", self.url());
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let answered = || {
                client
                    .get(&probe)
                    .bearer_auth(&self.token)
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            };
            if listens(self.child.id(), self.port) && answered() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "scim2-server did not answer on port {} within 30 s",
            self.port
        );
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (read from `/proc`).
fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    // Columns: sl, local address (hex IP:port), remote address, state (0A: listening), …, inode.
    let local = format!(":{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() > 9 && cols[1].ends_with(&local) && cols[3] == "0A")
        .map(|cols| format!("socket:[{}]", cols[9]))
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
    })
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
