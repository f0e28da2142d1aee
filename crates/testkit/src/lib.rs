//! Test-only helpers, used as a dev-dependency: the `Store` conformance suite every backend runs,
//! and launchers for real third-party servers on loopback, stopped by PID when dropped.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod faults;
pub mod oauth;
pub mod samba;
pub mod scim2_server;
pub mod slapd;
pub mod store_conformance;
pub mod tls;

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ldapadd` or `ldapmodify` (ldap-utils) with LDIF text as a simple-bound account.
pub(crate) fn ldap_tool(
    tool: &str,
    url: &str,
    bind_dn: &str,
    password: &str,
    dir: &std::path::Path,
    ldif: &str,
) {
    let file = dir.join("change.ldif");
    std::fs::write(&file, ldif).unwrap();
    let output = std::process::Command::new(tool)
        .args(["-x", "-H", url, "-D", bind_dn, "-w", password, "-f"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} (scripts/test installs ldap-utils): {e}"));
    assert!(
        output.status.success(),
        "{tool} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
