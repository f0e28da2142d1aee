//! A throwaway Samba Active Directory domain controller (Debian's packages; `scripts/test`
//! installs them), as in test-harness §5. It needs root and listens on 127.0.0.1:389 (Samba's
//! LDAP port cannot be moved), so only one runs at a time: tests share it through a lock.
//! Stopped by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const DOMAIN_DN: &str = "DC=example,DC=test";
pub const ADMIN: &str = "Administrator@example.test";
pub const ADMIN_PASSWORD: &str = "Passw0rd!Test";
pub const URL: &str = "ldap://127.0.0.1:389";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub struct SambaDc {
    pub dir: PathBuf,
    child: Child,
    _lock: MutexGuard<'static, ()>,
}

impl SambaDc {
    /// Provisions a new domain in `dir` and starts its DC.
    pub fn start(dir: &Path) -> SambaDc {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let uid = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the Samba AD tests need root (privileged port 389); run scripts/test as root"
        );
        let dir = dir.join("samba-dc");
        run(
            "samba-tool",
            &[
                "domain",
                "provision",
                "--realm=EXAMPLE.TEST",
                "--domain=EXAMPLE",
                "--server-role=dc",
                "--dns-backend=NONE",
                &format!("--adminpass={ADMIN_PASSWORD}"),
                "--use-rfc2307",
                &format!("--targetdir={}", dir.display()),
                "--host-ip=127.0.0.1",
                "--host-name=dc1",
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ],
        );
        let conf = dir.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        let mut edited = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("server services") {
                edited.push_str("\tserver services = ldap, cldap, kdc, rpc\n");
                edited.push_str("\tldap server require strong auth = no\n");
                // Samba's RPC endpoints take ports from 49152 up by default, inside Linux's
                // ephemeral range (32768-60999), where another test's server or a client socket
                // may already be: the DC then stops. Above that range nothing else binds.
                edited.push_str("\trpc server dynamic port range = 61000-61999\n");
                // Run files of our own: a pid file left in the shared /run/samba by a killed
                // DC names a PID that may since belong to another process, and then the next DC
                // believes it is already running and exits.
                edited.push_str(&format!("\tpid directory = {}/run\n", dir.display()));
                edited.push_str(&format!("\tncalrpc dir = {}/run/ncalrpc\n", dir.display()));
            } else if trimmed.starts_with("log file") {
                edited.push_str(&format!("\tlog file = {}/log.%m\n", dir.display()));
            } else {
                edited.push_str(line);
                edited.push('\n');
            }
        }
        std::fs::write(&conf, edited).unwrap();
        std::fs::create_dir_all(dir.join("run/ncalrpc")).unwrap();
        let log = std::fs::File::create(dir.join("samba.log")).unwrap();
        let child = Command::new(sbin("samba"))
            .args(["-F", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let samba = SambaDc {
            dir,
            child,
            _lock: lock,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = Command::new("ldapsearch")
                .args(["-x", "-H", URL, "-D", ADMIN, "-w", ADMIN_PASSWORD])
                .args(["-s", "base", "-b", "", "namingContexts"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return samba;
            }
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(samba.dir.join("samba.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "Samba did not answer on {URL}; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Adds entries (LDIF content records) as the domain administrator.
    pub fn add(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies LDIF change records as the domain administrator.
    pub fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        crate::ldap_tool(tool, URL, ADMIN, ADMIN_PASSWORD, &self.dir, ldif);
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its prefork workers follow the parent within a couple of seconds; the next DC needs
        // port 389.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect("127.0.0.1:389").is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn sbin(program: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(program);
    if path.exists() {
        path
    } else {
        PathBuf::from(program)
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs samba): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
