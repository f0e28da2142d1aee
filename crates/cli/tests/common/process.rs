//! Long-running commands (`serve`, `sync --watch`, `quickstart`): started, their output read
//! line by line as it comes, stopped by PID.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::command;

/// Waits up to `timeout` for `condition`, asking every 50 ms; fails the test naming `what`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_for_port(port: u16) {
    wait_until(Duration::from_secs(30), &format!("port {port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

struct Lines {
    receiver: Receiver<String>,
    seen: Vec<String>,
    read: usize,
}

/// `scimbridge --data-dir DIR ARGS…` running, its standard output collected by a thread;
/// killed when dropped.
pub struct Running {
    child: Child,
    lines: Mutex<Lines>,
}

impl Running {
    pub fn start(data_dir: &Path, args: &[&str]) -> Running {
        Running::spawn(&mut command(data_dir, args))
    }

    /// The same, its standard error thrown away.
    pub fn start_quiet(data_dir: &Path, args: &[&str]) -> Running {
        Running::spawn(command(data_dir, args).stderr(Stdio::null()))
    }

    /// Any command whose output is read this way.
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, receiver) = channel();
        let reader = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in reader.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: Mutex::new(Lines {
                receiver,
                seen: Vec::new(),
                read: 0,
            }),
        }
    }

    /// The next line not read yet, waiting up to `timeout` for it.
    #[track_caller]
    pub fn next_line(&self, timeout: Duration) -> String {
        let mut lines = self.lines.lock().unwrap();
        if lines.read == lines.seen.len() {
            match lines.receiver.recv_timeout(timeout) {
                Ok(line) => lines.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line after {timeout:?}:\n{}", lines.seen.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the output ended:\n{}", lines.seen.join("\n"))
                }
            }
        }
        lines.read += 1;
        lines.seen[lines.read - 1].clone()
    }

    /// Reads lines up to the first that contains `needle` (waiting up to 30 s) and returns it.
    #[track_caller]
    pub fn read_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left.max(Duration::from_millis(1)));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Every line printed so far.
    pub fn output(&self) -> Vec<String> {
        let mut lines = self.lines.lock().unwrap();
        while let Ok(line) = lines.receiver.try_recv() {
            lines.seen.push(line);
        }
        lines.seen.clone()
    }

    /// Whether a line printed so far contains `needle`.
    pub fn printed(&self, needle: &str) -> bool {
        self.output().iter().any(|line| line.contains(needle))
    }

    /// Waits up to 20 s for a line that contains `needle`, anywhere in the output.
    #[track_caller]
    pub fn wait_for_output(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.printed(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the output:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (`TERM`, `INT`) and waits for the exit; returns its status and every line
    /// printed.
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let mut lines = self.lines.lock().unwrap();
        while let Ok(line) = lines.receiver.recv_timeout(Duration::from_secs(10)) {
            lines.seen.push(line);
        }
        (status, lines.seen.clone())
    }

    /// A graceful stop (SIGTERM).
    pub fn stop(self) -> (ExitStatus, Vec<String>) {
        self.stop_with("TERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `scimbridge serve` with an hour between scheduled cycles, on a port the system picks; its
/// first line names the addresses.
pub struct Service {
    pub process: Running,
    /// `http://127.0.0.1:PORT`: `/api`, `/console`, `/metrics` and `/healthz` are under it.
    pub root: String,
}

impl Service {
    pub fn start(data_dir: &Path) -> Service {
        Service::spawn(&mut Service::command(data_dir))
    }

    /// The command [`Service::start`] runs, to change before [`Service::spawn`].
    pub fn command(data_dir: &Path) -> Command {
        command(
            data_dir,
            &["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"],
        )
    }

    pub fn spawn(command: &mut Command) -> Service {
        let process = Running::spawn(command);
        // "metrics on http://ADDR/metrics, health on /healthz, admin API on http://ADDR/api, …"
        let first = process.next_line(Duration::from_secs(60));
        let root = first
            .strip_prefix("metrics on ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|metrics| metrics.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected first line from serve: {first}"))
            .to_owned();
        Service { process, root }
    }

    pub fn api(&self) -> String {
        format!("{}/api", self.root)
    }

    pub fn console(&self) -> String {
        format!("{}/console", self.root)
    }

    /// Signs on to the console as the administrator; returns the answer, not followed.
    pub fn sign_on(&self, password: &str) -> reqwest::blocking::Response {
        no_redirects()
            .post(format!("{}/login", self.console()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "username=administrator&password={}",
                password.replace(' ', "+")
            ))
            .send()
            .unwrap()
    }

    /// The console's session cookie (`name=value`) after a successful sign-on.
    pub fn session_cookie(&self, password: &str) -> String {
        let signed_on = self.sign_on(password);
        assert_eq!(signed_on.status().as_u16(), 303);
        signed_on.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

/// An HTTP client that shows redirects rather than following them.
pub fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
