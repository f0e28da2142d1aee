//! Crash safety: `sync` killed with SIGKILL at many points of a 10,000-user first cycle, then
//! run to the end, leaves the target exactly right: every user once, every group with its
//! members, and nothing left to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const USERS: usize = 10_000;
const GROUPS: usize = 5;

fn directory() -> String {
    let mut ldif = String::from("version: 1\n\n");
    for i in 0..USERS {
        write!(
            ldif,
            "dn: uid=user{i:05},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
             uid: user{i:05}\ncn: User {i}\nsn: {i}\nmail: user{i:05}@example.com\n\
             entryUUID: 00000000-0000-0000-0000-{i:012}\n\n"
        )
        .unwrap();
    }
    for g in 0..GROUPS {
        write!(
            ldif,
            "dn: cn=group{g},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: group{g}\n\
             entryUUID: 00000000-0000-0000-0001-{g:012}\n"
        )
        .unwrap();
        for i in (g..USERS).step_by(GROUPS) {
            writeln!(ldif, "member: uid=user{i:05},ou=people,dc=example,dc=com").unwrap();
        }
        ldif.push('\n');
    }
    ldif
}

#[test]
fn killed_at_many_points_the_target_ends_exactly_right() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory()).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"version = 1
[[data_store]]
name = "corp"
type = "ldif"
path = "{ldif}"
[[connection]]
name = "app"
active = true
[connection.target]
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "t0ken"
[[connection.channel]]
name = "staff"
data_store = "corp"
max_threads = 4
[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
displayName = {{ attributes = ["cn"] }}
workEmail = {{ attributes = ["mail"] }}
"#,
            ldif = ldif.display(),
            url = target.url
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    // Kills at growing delays land in every phase: reading, the Bulk creates, record saves,
    // the groups. Each run gets a little further before it dies.
    let mut seen = Vec::new();
    for delay_ms in [150, 300, 500, 700, 900, 1200, 1500, 2000] {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["sync", "app"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no chance to clean up.
        let _ = child.kill();
        let _ = child.wait();
        seen.push(target.client().users().len());
    }
    // The kills interrupted cycles half way (the test would prove nothing otherwise).
    assert!(
        seen.iter().any(|n| *n > 0 && *n < USERS),
        "users in the target after each kill: {seen:?}"
    );
    eprintln!("users in the target after each kill: {seen:?}");

    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    // Every user a killed cycle created was journaled before it was sent: it is recognised as
    // created by us, never linked as if someone else had made it.
    assert!(out.contains(", linked 0, "), "{out}");
    let users = target.client().users();
    let names: BTreeSet<String> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        users.len(),
        USERS,
        "duplicates or missing users; last cycle: {out}"
    );
    assert_eq!(names.len(), USERS);
    let (status, page) = target.client().get("/Groups", &[("count", "100")]);
    assert_eq!(status, 200);
    let groups = page["Resources"].as_array().unwrap();
    assert_eq!(groups.len(), GROUPS, "{page}");
    for group in groups {
        assert_eq!(
            group["members"].as_array().map_or(0, Vec::len),
            USERS / GROUPS,
            "{}",
            group["displayName"]
        );
    }
    // Nothing is left to do.
    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(!out.contains("groups:"), "{out}");
}
