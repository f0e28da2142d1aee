//! A throwaway OpenLDAP slapd (Debian's package; `scripts/test` installs it) on a free loopback
//! port, with the memberof, syncprov and accesslog overlays, as in test-harness §1. Stopped by
//! PID when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::free_port;
use crate::tls::TestPki;

pub const BASE_DN: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "secret";
/// The read-only account the engine binds as; it has no size limit.
pub const SYNC_DN: &str = "cn=scim-sync,ou=services,dc=example,dc=com";
pub const SYNC_PASSWORD: &str = "syncpass";

/// An account that may read four entries in a paged search, no more (`size.prtotal`): its full
/// read of a larger directory fails half way, after two pages of two.
pub const CAPPED_DN: &str = "cn=scim-capped,ou=services,dc=example,dc=com";
pub const CAPPED_PASSWORD: &str = "cappedpass";

/// The suffix, `ou=people`, `ou=groups`, `ou=services`, the sync account and the capped one.
pub const SKELETON: &str = "\
dn: dc=example,dc=com
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example Corp
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=com
objectClass: organizationalUnit
ou: services

dn: cn=scim-sync,ou=services,dc=example,dc=com
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: scim-sync
userPassword: syncpass

dn: cn=scim-capped,ou=services,dc=example,dc=com
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: scim-capped
userPassword: cappedpass
";

#[derive(Default)]
pub struct SlapdOptions<'a> {
    /// Serve `ldaps://` on a second port and StartTLS on the plain one, with this PKI; a client
    /// certificate maps to the sync account for SASL EXTERNAL.
    pub tls: Option<&'a TestPki>,
    /// Entries loaded with slapadd before the server starts (fast; overlays do not run).
    pub preload: Option<&'a Path>,
}

pub struct Slapd {
    pub url: String,
    /// `ldaps://127.0.0.1:PORT` when started with TLS.
    pub ldaps_url: Option<String>,
    pub dir: PathBuf,
    listeners: String,
    pid: u32,
}

impl Slapd {
    /// Starts an empty directory holding [`SKELETON`], in `dir` (which must exist).
    pub fn start(dir: &Path) -> Slapd {
        Slapd::start_with(dir, SlapdOptions::default())
    }

    pub fn start_with(dir: &Path, options: SlapdOptions<'_>) -> Slapd {
        let dir = dir.join("slapd");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("accesslog")).unwrap();
        let config = dir.join("slapd.conf");
        std::fs::write(&config, slapd_conf(&dir, options.tls)).unwrap();
        run("slaptest", &["-Q", "-u", "-f", path_str(&config)]);
        if let Some(preload) = options.preload {
            let skeleton = dir.join("skeleton.ldif");
            std::fs::write(&skeleton, SKELETON).unwrap();
            for file in [skeleton.as_path(), preload] {
                run(
                    "slapadd",
                    &[
                        "-q",
                        "-f",
                        path_str(&config),
                        "-b",
                        BASE_DN,
                        "-l",
                        path_str(file),
                    ],
                );
            }
        }
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let mut listeners = format!("{url}/");
        let ldaps_url = options.tls.map(|_| {
            let url = format!("ldaps://127.0.0.1:{}", free_port());
            listeners.push_str(&format!(" {url}/"));
            url
        });
        let pid = launch(&dir, &listeners, port);
        let slapd = Slapd {
            url,
            ldaps_url,
            dir,
            listeners,
            pid,
        };
        if options.preload.is_none() {
            slapd.add(SKELETON);
        }
        slapd
    }

    /// Adds entries (LDIF content records) as the directory administrator.
    pub fn add(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies LDIF change records (`changetype: modify|delete|modrdn`) as the administrator.
    pub fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    /// Stops the server (by PID, as a drop does) and waits until it has exited (20 s at most);
    /// whether it has.
    pub fn stop(&self) -> bool {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let running = || Path::new(&format!("/proc/{}", self.pid)).exists();
        while running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !running()
    }

    /// Starts the stopped server again on its ports, with its data.
    pub fn restart(&mut self) {
        assert!(self.stop(), "slapd {} did not stop", self.pid);
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap();
        // The PID file of the stopped server must not pass for the new one's.
        let _ = std::fs::remove_file(self.dir.join("slapd.pid"));
        self.pid = launch(&self.dir, &self.listeners, port);
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        crate::ldap_tool(tool, &self.url, ADMIN_DN, ADMIN_PASSWORD, &self.dir, ldif);
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts slapd on the configuration in `dir` and waits until it answers on `port`.
fn launch(dir: &Path, listeners: &str, port: u16) -> u32 {
    let config = dir.join("slapd.conf");
    run("slapd", &["-f", path_str(&config), "-h", listeners]);
    let pid_file = dir.join("slapd.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let started = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if let Some(pid) = started
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "slapd did not start on {listeners}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(program: &str, args: &[&str]) {
    // slapd, slapadd and slaptest live in /usr/sbin, which is not on every PATH.
    let sbin = Path::new("/usr/sbin").join(program);
    let executable = if sbin.exists() {
        sbin
    } else {
        PathBuf::from(program)
    };
    let output = Command::new(&executable)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (scripts/test installs slapd and ldap-utils): {e}")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn slapd_conf(dir: &Path, tls: Option<&TestPki>) -> String {
    let d = dir.display();
    let tls = match tls {
        Some(pki) => format!(
            "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n\
             TLSVerifyClient try\n\
             authz-regexp \"cn=scimbridge test client\" \"{SYNC_DN}\"\n",
            pki.ca_certificate.display(),
            pki.server_certificate.display(),
            pki.server_key.display()
        ),
        None => String::new(),
    };
    format!(
        r#"include   /etc/ldap/schema/core.schema
include   /etc/ldap/schema/cosine.schema
include   /etc/ldap/schema/inetorgperson.schema
include   /etc/ldap/schema/nis.schema
pidfile   {d}/slapd.pid
argsfile  {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload syncprov
moduleload accesslog
loglevel  none
{tls}
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
database  mdb
suffix    "cn=accesslog"
rootdn    "{ADMIN_DN}"
directory {d}/accesslog
dbnosync
maxsize   1073741824
index     default eq
index     objectClass,entryCSN,reqStart,reqEnd,reqResult,reqType,reqDN eq
access to * by dn.exact="{SYNC_DN}" read by * none
limits dn.exact="{SYNC_DN}" size=unlimited time=unlimited
overlay   syncprov
syncprov-nopresent TRUE
syncprov-reloadhint TRUE
database  mdb
suffix    "{BASE_DN}"
rootdn    "{ADMIN_DN}"
rootpw    {ADMIN_PASSWORD}
directory {d}/data
dbnosync
maxsize   8589934592
index     objectClass eq,pres
index     uid,mail,cn,sn,givenName,employeeNumber eq,pres,sub
index     member,memberOf eq
index     entryUUID,entryCSN eq
index     modifyTimestamp,createTimestamp eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{SYNC_DN}" read by users read by * none
limits dn.exact="{SYNC_DN}" size=unlimited time=unlimited
limits dn.exact="{CAPPED_DN}" size.soft=unlimited size.hard=unlimited size.prtotal=4
overlay   memberof
memberof-group-oc  groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint    TRUE
overlay   syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
overlay   accesslog
logdb     "cn=accesslog"
logops    writes
logsuccess TRUE
logpurge  07+00:00 01+00:00
"#
    )
}
