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
    pub fn start(token: &str) -> Scim2Server {
        let bin = std::env::var("SCIM2_SERVER_BIN").unwrap_or_else(|_| "scim2-server".into());
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
        let server = Scim2Server {
            child,
            port,
            token: token.to_owned(),
        };
        server.wait_until_ready();
        server
    }

    /// The SCIM base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "scim2-server did not listen on port {} within 30 s",
            self.port
        );
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
