//! A channel reading a real Active Directory (Samba AD DC) into the bundled target: binary
//! objectGUID, userAccountControl, DirSync with deletes, uSNChanged, memberOf, and range
//! retrieval of a group with more than 1,500 members.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use scimbridge_testkit::samba::{ADMIN, ADMIN_PASSWORD, SambaDc, URL};
use serde_json::Value;

const STAFF: &str = "OU=Staff,DC=example,DC=test";
const GROUPS: &str = "OU=Groups,DC=example,DC=test";
/// More than Active Directory's 1,500 values per attribute read.
const BULK_USERS: usize = 1_600;

fn user(name: &str, given: &str, sn: &str, enabled: bool) -> String {
    // 544 = NORMAL_ACCOUNT + PASSWD_NOTREQD; 546 adds ACCOUNTDISABLE.
    let control = if enabled { 544 } else { 546 };
    format!(
        "dn: CN={name},{STAFF}\nobjectClass: user\nsAMAccountName: {name}\n\
         userPrincipalName: {name}@example.test\ngivenName: {given}\nsn: {sn}\n\
         mail: {name}@example.test\nuserAccountControl: {control}\n\n"
    )
}

fn config(target: &TargetProcess, algorithm: &str) -> String {
    format!(
        r#"version = 1

[[data_store]]
name = "ad"
type = "ldap"

[data_store.ldap]
ldap_type = "active-directory"
hostnames = ["{URL}"]
user_dn = "{ADMIN}"
bind_password = "{ADMIN_PASSWORD}"
read_timeout = 120

[[connection]]
name = "app"
active = true

[connection.target]
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "{token}"

[connection.options]
remove_user_action = "disable"

[[connection.channel]]
name = "staff"
data_store = "ad"
max_threads = 4

[connection.channel.source_settings]
{algorithm}

[connection.channel.source_location]
base_dn = "{STAFF}"
group_base_dn = "{GROUPS}"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["sAMAccountName"] }}
displayName = {{ expression = 'Join(" ", [givenName], [sn])' }}
workEmail = {{ attributes = ["mail"] }}

[connection.channel.extension_mapping]
"urn:example:params:scim:schemas:extension:corp:2.0:User:groups" = {{ attributes = ["memberOf"], multi_valued = true, parser = "extract_cn_from_dn" }}
"#,
        url = target.url,
        token = target.token,
    )
}

fn sync(data: &Path) -> String {
    ok(scimbridge(data, &["sync", "app"], &[]))
}

fn group_members(target: &TargetProcess, name: &str) -> Vec<String> {
    let filter = format!("displayName eq \"{name}\"");
    let (status, page) = target.client().get("/Groups", &[("filter", &filter)]);
    assert_eq!(status, 200, "{page}");
    let group = &page["Resources"][0];
    let users = target.client().users();
    let mut names: Vec<String> = group["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            users
                .iter()
                .find(|u| u["id"] == m["value"])
                .map(|u| u["userName"].as_str().unwrap().to_owned())
        })
        .collect();
    names.sort();
    names
}

fn active(target: &TargetProcess, name: &str) -> Option<bool> {
    target
        .client()
        .user_by_name(name)
        .map(|u| u["active"] == Value::Bool(true))
}

#[test]
fn active_directory_with_dirsync_usn_user_account_control_and_range_retrieval() {
    let dir = tempfile::tempdir().unwrap();
    let dc = SambaDc::start(dir.path());
    let mut ldif = format!(
        "dn: {STAFF}\nobjectClass: organizationalUnit\n\ndn: {GROUPS}\nobjectClass: organizationalUnit\n\n{}{}{}{}",
        user("ann", "Ann", "Lee", true),
        user("bob", "Bob", "Stone", true),
        user("cara", "Cara", "Diaz", true),
        user("dan", "Dan", "Wu", false),
    );
    for i in 0..BULK_USERS {
        ldif.push_str(&user(&format!("u{i:04}"), "Bulk", &format!("{i}"), true));
    }
    write!(
        ldif,
        "dn: CN=Engineering,{GROUPS}\nobjectClass: group\nsAMAccountName: engineering\n\
         member: CN=ann,{STAFF}\nmember: CN=bob,{STAFF}\n\n\
         dn: CN=Everyone,{GROUPS}\nobjectClass: group\nsAMAccountName: everyone\n"
    )
    .unwrap();
    for i in 0..BULK_USERS {
        writeln!(ldif, "member: CN=u{i:04},{STAFF}").unwrap();
    }
    writeln!(ldif, "member: CN=ann,{STAFF}").unwrap();
    dc.add(&ldif);

    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&target, "")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = ok(scimbridge(&data, &["check", "app"], &[]));
    assert!(
        out.contains("with their objectGUID; changes found with dirsync"),
        "{out}"
    );

    // The binary objectGUID is printed the way Active Directory prints it.
    let out = ok(scimbridge(
        &data,
        &[
            "mapping",
            "test",
            "app",
            "--entry",
            &format!("CN=ann,{STAFF}"),
        ],
        &[],
    ));
    let guid = out
        .lines()
        .next()
        .and_then(|l| l.split("objectGUID ").nth(1))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{out}"));
    let parts: Vec<usize> = guid.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "{guid}");
    assert!(out.contains("\"displayName\": \"Ann Lee\""), "{out}");
    // memberOf, kept by Active Directory itself, read as the groups' common names.
    assert!(
        out.contains("\"Engineering\"") && out.contains("\"Everyone\""),
        "{out}"
    );

    let out = sync(&data);
    assert!(out.contains("source read: dirsync, full read"), "{out}");
    // Dan is disabled (userAccountControl) and provision disabled users is off.
    assert!(
        out.contains(&format!("created {},", BULK_USERS + 3)),
        "{out}"
    );
    assert_eq!(active(&target, "dan"), None);
    assert_eq!(group_members(&target, "Engineering"), ["ann", "bob"]);
    // 1,601 members: Samba sends them 1,500 at a time.
    assert_eq!(group_members(&target, "Everyone").len(), BULK_USERS + 1);

    dc.modify(&format!(
        "dn: CN=bob,{STAFF}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n\n\
         dn: CN=dan,{STAFF}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n\n\
         dn: CN=ann,{STAFF}\nchangetype: modify\nreplace: sn\nsn: Lee-Smith\n\n\
         dn: CN=cara,{STAFF}\nchangetype: delete\n\n\
         dn: CN=Engineering,{GROUPS}\nchangetype: modify\ndelete: member\nmember: CN=bob,{STAFF}\n"
    ));
    let out = sync(&data);
    assert!(out.contains("source read: dirsync, incremental"), "{out}");
    assert_eq!(active(&target, "bob"), Some(false));
    assert_eq!(active(&target, "dan"), Some(true));
    // Deleted in the directory: found by DirSync's isDeleted, disabled in the target.
    assert_eq!(active(&target, "cara"), Some(false));
    assert_eq!(
        target.client().user_by_name("ann").unwrap()["displayName"],
        "Ann Lee-Smith"
    );
    assert_eq!(group_members(&target, "Engineering"), ["ann"]);

    // The USN algorithm: new settings read everything once, then only what changed.
    std::fs::write(
        &cfg,
        config(
            &target,
            "changed_users_algorithm = \"active-directory-usn\"",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = sync(&data);
    assert!(
        out.contains("source read: active-directory-usn, full read"),
        "{out}"
    );
    assert!(out.contains("created 0, linked 0, updated 0"), "{out}");
    dc.modify(&format!(
        "dn: CN=ann,{STAFF}\nchangetype: modify\nreplace: givenName\ngivenName: Anne\n\n\
         dn: CN=u0001,{STAFF}\nchangetype: delete\n"
    ));
    let out = sync(&data);
    assert!(
        out.contains("source read: active-directory-usn, incremental"),
        "{out}"
    );
    assert!(
        out.contains("updated 1,") && out.contains("disabled 1,"),
        "{out}"
    );
    assert_eq!(
        target.client().user_by_name("ann").unwrap()["displayName"],
        "Anne Lee-Smith"
    );
    assert_eq!(active(&target, "u0001"), Some(false));

    // Live: Samba pushes nothing, so `sync --watch` reads highestCommittedUSN every second
    // (live_poll_interval = 1); an hour between scheduled cycles means that whatever arrives
    // sooner came through that poll.
    std::fs::write(
        &cfg,
        config(
            &target,
            "changed_users_algorithm = \"active-directory-usn\"",
        )
        .replace("max_threads = 4", "max_threads = 4\nlive_poll_interval = 1"),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["sync", "app", "--watch", "--interval", "3600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("watch ended early").unwrap();
        if line.contains("watching the directory's highestCommittedUSN every 1 s") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    dc.add(&user("erin", "Erin", "Okafor", true));
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.client().user_by_name("erin").is_none() {
        assert!(Instant::now() < deadline, "erin did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
