//! Channels reading a real OpenLDAP slapd (memberof, syncprov, accesslog) into the bundled
//! target: every kind of directory change reaches the target, by content synchronization and
//! by timestamps, scope by group with nested search, account status by flag, and a source that
//! fails deprovisions nobody.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use scimbridge_testkit::faults::FaultProxy;
use scimbridge_testkit::slapd::{SYNC_DN, SYNC_PASSWORD, Slapd};
use serde_json::{Value, json};

fn person(uid: &str, cn: &str, ou: &str) -> String {
    format!(
        "dn: uid={uid},ou={ou},dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {uid}\n\
         cn: {cn}\nsn: {cn}\nmail: {uid}@example.com\n\n"
    )
}

fn group(cn: &str, members: &[&str]) -> String {
    let mut text =
        format!("dn: cn={cn},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: {cn}\n");
    for member in members {
        text.push_str(&format!("member: {member}\n"));
    }
    text.push('\n');
    text
}

fn dn(uid: &str) -> String {
    format!("uid={uid},ou=people,dc=example,dc=com")
}

/// A configuration reading `slapd`; `source_settings` and `source_location` are extra TOML
/// lines for those tables.
fn config(
    slapd: &Slapd,
    target: &TargetProcess,
    source_settings: &str,
    location: &str,
    action: &str,
) -> String {
    format!(
        r#"version = 1

[[data_store]]
name = "directory"
type = "ldap"

[data_store.ldap]
ldap_type = "openldap"
hostnames = ["{ldap}"]
user_dn = "{SYNC_DN}"
bind_password = "{SYNC_PASSWORD}"

[[connection]]
name = "app"
active = true

[connection.target]
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "{token}"

[connection.options]
remove_user_action = "{action}"

[[connection.channel]]
name = "staff"
data_store = "directory"

[connection.channel.source_settings]
{source_settings}

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
{location}

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
displayName = {{ attributes = ["cn"] }}
workEmail = {{ attributes = ["mail"] }}
"#,
        ldap = slapd.url,
        url = target.url,
        token = target.token,
    )
}

fn sync(data: &Path) -> String {
    ok(scimbridge(data, &["sync", "app"], &[]))
}

fn groups(target: &TargetProcess) -> Vec<(String, Vec<String>)> {
    let (status, page) = target.client().get("/Groups", &[("count", "100")]);
    assert_eq!(status, 200, "{page}");
    let users = target.client().users();
    let name_of = |id: &str| {
        users
            .iter()
            .find(|u| u["id"] == id)
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| format!("unknown {id}"))
    };
    let mut found: Vec<(String, Vec<String>)> = page["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let mut members: Vec<String> = g["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| name_of(m["value"].as_str().unwrap()))
                .collect();
            members.sort();
            (g["displayName"].as_str().unwrap().to_owned(), members)
        })
        .collect();
    found.sort();
    found
}

fn user_names(target: &TargetProcess) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = target
        .client()
        .users()
        .iter()
        .map(|u| {
            (
                u["userName"].as_str().unwrap().to_owned(),
                u["active"] == Value::Bool(true),
            )
        })
        .collect();
    names.sort();
    names
}

fn owned(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(name, members)| {
            (
                (*name).to_owned(),
                members.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn content_sync_carries_hires_renames_moves_deletes_and_group_changes() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "dn: ou=contractors,dc=example,dc=com\nobjectClass: organizationalUnit\nou: contractors\n\n{}{}{}{}{}{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people"),
        person("cara", "Cara Diaz", "people"),
        person("dan", "Dan Wu", "people"),
        person("eve", "Eve Contractor", "contractors"),
        group("staff", &[&dn("ann"), &dn("bob"), "uid=eve,ou=contractors,dc=example,dc=com"]),
        group("eng", &[&dn("cara"), &dn("dan")]),
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            "",
            "group_base_dn = \"ou=groups,dc=example,dc=com\"",
            "delete",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    let out = sync(&data);
    assert!(out.contains("created 4,"), "{out}");
    assert!(
        out.contains("source read: content-sync, full read"),
        "{out}"
    );
    assert_eq!(
        user_names(&target),
        [
            ("ann".into(), true),
            ("bob".into(), true),
            ("cara".into(), true),
            ("dan".into(), true)
        ]
    );
    assert_eq!(
        groups(&target),
        owned(&[("eng", &["cara", "dan"]), ("staff", &["ann", "bob"])])
    );
    let bob_id = target.client().user_by_name("bob").unwrap()["id"].clone();

    // A day of directory changes.
    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nreplace: cn\ncn: Ann Lee-Smith\n\n\
         dn: {bob}\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 1\n\n\
         dn: {cara}\nchangetype: delete\n\n\
         dn: {dan}\nchangetype: modrdn\nnewrdn: uid=dan\ndeleteoldrdn: 1\nnewsuperior: ou=contractors,dc=example,dc=com\n\n\
         dn: cn=staff,ou=groups,dc=example,dc=com\nchangetype: modify\ndelete: member\nmember: {ann}\n\n\
         dn: cn=eng,ou=groups,dc=example,dc=com\nchangetype: modrdn\nnewrdn: cn=engineering\ndeleteoldrdn: 1\n",
        ann = dn("ann"),
        bob = dn("bob"),
        cara = dn("cara"),
        dan = dn("dan"),
    ));
    slapd.add(&person("fay", "Fay Park", "people"));

    let out = sync(&data);
    assert!(
        out.contains("source read: content-sync, incremental"),
        "{out}"
    );
    assert!(
        out.contains("created 1,") && out.contains("deleted 2,"),
        "{out}"
    );
    assert_eq!(
        user_names(&target),
        [
            ("ann".into(), true),
            ("fay".into(), true),
            ("robert".into(), true)
        ]
    );
    let ann = target.client().user_by_name("ann").unwrap();
    assert_eq!(ann["displayName"], "Ann Lee-Smith");
    // The rename kept the user: same target id, new userName.
    assert_eq!(
        target.client().user_by_name("robert").unwrap()["id"],
        bob_id
    );
    assert_eq!(
        groups(&target),
        owned(&[("engineering", &[]), ("staff", &["robert"])])
    );

    // Nothing changed: nothing is sent.
    let out = sync(&data);
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(
        out.contains("source read: content-sync, incremental"),
        "{out}"
    );
}

#[test]
fn timestamps_scope_by_nested_group_and_the_flag_status() {
    timestamps_with("timestamp");
}

#[test]
fn timestamps_without_negation_scope_by_nested_group_and_the_flag_status() {
    timestamps_with("timestamp-no-negation");
}

fn timestamps_with(algorithm: &str) {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}{}{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people"),
        person("cara", "Cara Diaz", "people"),
        // groupOfNames needs a member: the service account stays when Bob leaves.
        group("team", &[&dn("bob"), SYNC_DN]),
        group(
            "app-users",
            &[&dn("ann"), "cn=team,ou=groups,dc=example,dc=com"]
        ),
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            &format!(
                "changed_users_algorithm = \"{algorithm}\"\n\
                 account_status_algorithm = \"flag\"\n\
             account_status_attribute = \"employeeType\"\n\
                 flag_comparison_value = \"suspended\"\n\
                 flag_comparison_status = false"
            ),
            "user_group_dn = \"cn=app-users,ou=groups,dc=example,dc=com\"\nuser_nested_search = true",
            "disable",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    let out = sync(&data);
    assert!(
        out.contains(&format!("source read: {algorithm}, full read")),
        "{out}"
    );
    // Cara is not in app-users; Bob is, through the nested team group.
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("bob".into(), true)]
    );

    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nadd: employeeType\nemployeeType: suspended\n\n\
         dn: cn=team,ou=groups,dc=example,dc=com\nchangetype: modify\ndelete: member\nmember: {bob}\n\n\
         dn: cn=app-users,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: {cara}\n",
        ann = dn("ann"),
        bob = dn("bob"),
        cara = dn("cara"),
    ));
    let out = sync(&data);
    assert!(
        out.contains(&format!("source read: {algorithm}, incremental")),
        "{out}"
    );
    // Ann is suspended (flag), Bob left the scope (remove user action: disable), Cara joined it
    // though her entry did not change.
    assert_eq!(
        user_names(&target),
        [
            ("ann".into(), false),
            ("bob".into(), false),
            ("cara".into(), true)
        ]
    );

    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\ndelete: employeeType\n\n\
         dn: {cara}\nchangetype: delete\n",
        ann = dn("ann"),
        cara = dn("cara"),
    ));
    let out = sync(&data);
    assert!(
        out.contains(&format!("source read: {algorithm}, incremental")),
        "{out}"
    );
    // Ann is active again; Cara's delete is found by the GUID sweep.
    assert_eq!(
        user_names(&target),
        [
            ("ann".into(), true),
            ("bob".into(), false),
            ("cara".into(), false)
        ]
    );
}

#[test]
fn a_failing_source_deprovisions_nobody_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people")
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&slapd, &target, "", "", "delete")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 2,"));

    // The base DN disappears (an OU renamed by mistake): the cycle stops.
    slapd.modify(&format!(
        "dn: {}\nchangetype: delete\n\ndn: {}\nchangetype: delete\n\ndn: ou=people,dc=example,dc=com\nchangetype: delete\n",
        dn("ann"),
        dn("bob")
    ));
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("ou=people,dc=example,dc=com does not exist"),
        "{err}"
    );
    assert_eq!(user_names(&target).len(), 2);

    // The server is down: the cycle stops, naming the host.
    let url = slapd.url.clone();
    drop(slapd);
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("no LDAP server answered") && err.contains(&url),
        "{err}"
    );
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("bob".into(), true)]
    );

    // The same, logged as JSON lines for a log pipeline; the bind password never appears.
    let output = scimbridge(&data, &["--log-format", "json", "-v", "sync", "app"], &[]);
    let err = stderr(&output);
    let stopped: Value = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["fields"]["message"] == "cycle stopped")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(stopped["level"], "ERROR");
    assert!(
        stopped["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("no LDAP server answered")
    );
    assert!(!err.contains(SYNC_PASSWORD), "{err}");
}

#[test]
fn check_proves_the_data_store_and_the_bind_password_stays_secret() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&person("ann", "Ann Lee", "people"));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let good = config(&slapd, &target, "", "", "disable");

    // Activation checks the data store: a wrong password saves nothing.
    std::fs::write(&cfg, good.replace(SYNC_PASSWORD, "wrong-password")).unwrap();
    let output = scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("nothing was saved") && err.contains("invalid credentials"),
        "{err}"
    );

    std::fs::write(&cfg, &good).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = ok(scimbridge(&data, &["check", "app"], &[]));
    assert!(out.contains(&format!("answers at {}", slapd.url)), "{out}");
    assert!(out.contains("bind accepted, ou=people,dc=example,dc=com found, 1 of the first users read with their entryUUID; changes found with content-sync"), "{out}");

    // A GUID attribute the users do not have, and a base DN that does not exist, are named.
    let wrong_guid = good.replace(
        "[connection.channel.source_settings]\n",
        "[connection.channel.source_settings]\nentry_guid_attribute = \"employeeNumber\"\n",
    );
    std::fs::write(&cfg, wrong_guid).unwrap();
    ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&cfg), "--skip-check"],
        &[],
    ));
    let output = scimbridge(&data, &["check", "app"], &[]);
    let err = stderr(&output);
    assert!(
        !output.status.success() && err.contains("have no employeeNumber"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        good.replace("base_dn = \"ou=people", "base_dn = \"ou=staff"),
    )
    .unwrap();
    ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&cfg), "--skip-check"],
        &[],
    ));
    let output = scimbridge(&data, &["check", "app"], &[]);
    let err = stderr(&output);
    assert!(
        err.contains("base_dn ou=staff,dc=example,dc=com does not exist"),
        "{err}"
    );
    let missing_group = good.replace(
        "base_dn = \"ou=people,dc=example,dc=com\"",
        "base_dn = \"ou=people,dc=example,dc=com\"\nuser_group_dn = \"cn=nobody,ou=groups,dc=example,dc=com\"",
    );
    std::fs::write(&cfg, missing_group).unwrap();
    ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&cfg), "--skip-check"],
        &[],
    ));
    let output = scimbridge(&data, &["check", "app"], &[]);
    let err = stderr(&output);
    assert!(
        err.contains("user_group_dn cn=nobody,ou=groups,dc=example,dc=com is not a group"),
        "{err}"
    );
    // A cycle with that scope stops before deprovisioning anyone.
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nobody is deprovisioned"),
        "{}",
        stderr(&output)
    );

    // The bind password is encrypted at rest and left out of exports; applying the export
    // keeps it.
    std::fs::write(&cfg, &good).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(SYNC_PASSWORD));
    }
    let exported = ok(scimbridge(&data, &["export"], &[]));
    assert!(!exported.contains(SYNC_PASSWORD), "{exported}");
    assert!(
        exported.contains("ldap.bind_password is stored encrypted and left out"),
        "{exported}"
    );
    let exported_file = dir.path().join("exported.toml");
    std::fs::write(&exported_file, &exported).unwrap();
    let out = ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&exported_file)],
        &[],
    ));
    assert!(out.contains("data store \"directory\": unchanged"), "{out}");
    assert!(sync(&data).contains("created 1,"));
}

#[test]
fn expressions_create_only_masked_fields_and_mapping_test() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ann = dn("zmuller");
    slapd.add(&format!(
        "dn: {ann}\nobjectClass: inetOrgPerson\nuid: zmuller\ncn:: Wm/DqyBNw7xsbGVy\n\
         givenName:: Wm/Dqw==\nsn:: TcO8bGxlcg==\nemployeeNumber: 1001\n\
         description: first-Passw0rd\n\n"
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let mapping = r#"userName = { expression = 'ToLower(NormalizeDiacritics(Join(".", [givenName], [sn])))' }
displayName = { expression = 'Join(" ", [givenName], [sn])' }
title = { expression = 'Switch([departmentNumber], "Staff", "sales", "Sales")' }
nickName = { expression = 'Left(uid, "many")', default_value = "n/a" }
externalId = { attributes = ["employeeNumber"], create_only = true }
password = { attributes = ["description"], create_only = true, masked = true }
locale = { expression = 'IIF(IsPresent(entryCSN), "en-US", "none")' }
"#;
    let text = config(&slapd, &target, "", "", "disable");
    let head = text
        .split("[connection.channel.attribute_mapping]")
        .next()
        .unwrap();
    let good = format!("{head}[connection.channel.attribute_mapping]\n{mapping}");

    // A broken expression is refused when applied, with its position.
    let broken = good.replace("NormalizeDiacritics(", "NormaliseDiacritics(");
    std::fs::write(&cfg, broken).unwrap();
    let output = scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("attribute_mapping.userName.expression")
            && err.contains("unknown function NormaliseDiacritics at position 9"),
        "{err}"
    );

    std::fs::write(&cfg, &good).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = ok(scimbridge(
        &data,
        &["mapping", "test", "app", "--entry", &ann],
        &[],
    ));
    assert!(out.contains("\"userName\": \"zoe.muller\""), "{out}");
    assert!(out.contains("\"displayName\": \"Zoë Müller\""), "{out}");
    assert!(out.contains("\"title\": \"Staff\""), "{out}");
    assert!(out.contains("\"nickName\": \"n/a\""), "{out}");
    // entryCSN is operational: read because the expression names it.
    assert!(out.contains("\"locale\": \"en-US\""), "{out}");
    assert!(out.contains("\"password\": \"********\""), "{out}");
    assert!(!out.contains("first-Passw0rd"), "{out}");
    let plan = ok(scimbridge(&data, &["plan", "app", "--json"], &[]));
    assert!(
        plan.contains("zoe.muller") && !plan.contains("first-Passw0rd"),
        "{plan}"
    );
    let output = scimbridge(
        &data,
        &[
            "mapping",
            "test",
            "app",
            "--entry",
            "uid=nobody,ou=people,dc=example,dc=com",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("has no user uid=nobody"),
        "{}",
        stderr(&output)
    );

    assert!(sync(&data).contains("created 1,"));
    let user = target.client().user_by_name("zoe.muller").unwrap();
    assert_eq!(
        (user["externalId"].as_str(), user["title"].as_str()),
        (Some("1001"), Some("Staff"))
    );
    assert_eq!(user["locale"], "en-US");

    // Create-only fields are not updated; the others are.
    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nreplace: employeeNumber\nemployeeNumber: 2002\n-\n\
         replace: description\ndescription: second-Passw0rd\n-\nadd: departmentNumber\ndepartmentNumber: sales\n"
    ));
    let out = sync(&data);
    assert!(out.contains("updated 1,"), "{out}");
    let user = target.client().user_by_name("zoe.muller").unwrap();
    assert_eq!(
        (user["externalId"].as_str(), user["title"].as_str()),
        (Some("1001"), Some("Sales"))
    );

    // Linking an existing target user (here after forgetting every record) writes no
    // create-only value: the target keeps its own.
    ok(scimbridge(
        &data,
        &["channel", "reset", "staff", "--all-state"],
        &[],
    ));
    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nreplace: employeeNumber\nemployeeNumber: 3003\n"
    ));
    let out = sync(&data);
    assert!(out.contains("linked 1,"), "{out}");
    let user = target.client().user_by_name("zoe.muller").unwrap();
    assert_eq!(user["externalId"].as_str(), Some("1001"));
}

#[test]
fn watch_follows_the_live_change_feed_within_seconds() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}",
        person("ann", "Ann Lee", "people"),
        group("staff", &[&dn("ann")])
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            "",
            "group_base_dn = \"ou=groups,dc=example,dc=com\"",
            "disable",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    // An hour between polls: whatever arrives sooner came through the live feed.
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
        if line.contains("following the directory's live change feed") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(target.client().user_by_name("ann").is_some());

    slapd.add(&person("bob", "Bob Stone", "people"));
    slapd.modify(&format!(
        "dn: cn=staff,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: {}\n",
        dn("bob")
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let members = groups(&target);
        if members == owned(&[("staff", &["ann", "bob"])]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change did not arrive: {members:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn ldap_filters_scope_users_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}dn: uid=bob,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: bob\n\
         cn: Bob Stone\nsn: Stone\nemployeeType: contractor\n\n{}{}",
        person("ann", "Ann Lee", "people"),
        person("cara", "Cara Diaz", "people"),
        group("staff", &[&dn("ann"), &dn("bob"), &dn("cara")]),
        group("secret", &[&dn("ann")]),
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            "",
            "user_filter = \"(!(employeeType=contractor))\"\n\
             group_base_dn = \"ou=groups,dc=example,dc=com\"\n\
             group_filter = \"(!(cn=secret))\"",
            "disable",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = sync(&data);
    assert!(out.contains("created 2,"), "{out}");
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("cara".into(), true)]
    );
    assert_eq!(groups(&target), owned(&[("staff", &["ann", "cara"])]));

    // Cara becomes a contractor: she no longer matches the filter and leaves the scope.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: employeeType\nemployeeType: contractor\n",
        dn("cara")
    ));
    let out = sync(&data);
    assert!(
        out.contains("source read: content-sync, incremental"),
        "{out}"
    );
    assert!(out.contains("disabled 1,"), "{out}");
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("cara".into(), false)]
    );
    assert_eq!(groups(&target), owned(&[("staff", &["ann"])]));
}

#[test]
fn groups_scoped_by_nested_group_membership() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let gdn = |cn: &str| format!("cn={cn},ou=groups,dc=example,dc=com");
    slapd.add(&format!(
        "{}{}{}{}{}",
        person("ann", "Ann Lee", "people"),
        group("team-b", &[&dn("ann")]),
        group("team-a", &[&dn("ann"), &gdn("team-b")]),
        group("other", &[&dn("ann")]),
        group("provisioned", &[&gdn("team-a")]),
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let location = |nested: bool| {
        format!(
            "group_base_dn = \"ou=groups,dc=example,dc=com\"\n\
             group_group_dn = \"{}\"\ngroup_nested_search = {nested}",
            gdn("provisioned")
        )
    };
    std::fs::write(
        &cfg,
        config(&slapd, &target, "", &location(false), "disable"),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    sync(&data);
    // Only the direct member group of "provisioned".
    assert_eq!(groups(&target), owned(&[("team-a", &["ann"])]));

    // Nested search reaches team-b through team-a.
    std::fs::write(
        &cfg,
        config(&slapd, &target, "", &location(true), "disable"),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    sync(&data);
    assert_eq!(
        groups(&target),
        owned(&[("team-a", &["ann"]), ("team-b", &["ann"])])
    );

    // A group taken out of the scope group is deleted from the target.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        gdn("team-a"),
        gdn("team-b")
    ));
    let out = sync(&data);
    assert!(out.contains("deleted 1"), "{out}");
    assert_eq!(groups(&target), owned(&[("team-a", &["ann"])]));
}

#[test]
fn content_sync_keyed_by_another_attribute_still_finds_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let with_number = |uid: &str, number: u32| {
        person(uid, uid, "people").replace("\n\n", &format!("\nemployeeNumber: {number}\n\n"))
    };
    slapd.add(&format!(
        "{}{}",
        with_number("ann", 1),
        with_number("bob", 2)
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            "entry_guid_attribute = \"employeeNumber\"",
            "",
            "disable",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 2,"));
    // The server reports the delete by entryUUID, which is not this channel's key: the GUID
    // sweep finds it instead.
    slapd.modify(&format!("dn: {}\nchangetype: delete\n", dn("bob")));
    let out = sync(&data);
    assert!(
        out.contains("source read: content-sync, incremental"),
        "{out}"
    );
    assert!(out.contains("disabled 1,"), "{out}");
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("bob".into(), false)]
    );
}

#[test]
fn channel_reset_forces_a_full_read_and_all_state_relinks_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people"),
        group("staff", &[&dn("ann"), &dn("bob")])
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &cfg,
        config(
            &slapd,
            &target,
            "",
            "group_base_dn = \"ou=groups,dc=example,dc=com\"",
            "disable",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 2,"));
    let table = ok(scimbridge(&data, &["channels"], &[]));
    assert!(
        table.contains("DETECTION") && table.contains("content-sync"),
        "{table}"
    );
    assert!(sync(&data).contains("source read: content-sync, incremental"));

    let out = ok(scimbridge(&data, &["channel", "reset", "staff"], &[]));
    assert!(
        out.contains("channel app/staff: sync state forgotten"),
        "{out}"
    );
    let out = sync(&data);
    assert!(
        out.contains("source read: content-sync, full read"),
        "{out}"
    );
    assert!(out.contains("created 0, linked 0, updated 0"), "{out}");

    let out = ok(scimbridge(
        &data,
        &["channel", "reset", "app/staff", "--all-state"],
        &[],
    ));
    assert!(
        out.contains("records, group records and sync state forgotten"),
        "{out}"
    );
    let out = sync(&data);
    assert!(out.contains("created 0, linked 2,"), "{out}");
    assert!(out.contains("groups: created 0, linked 1"), "{out}");
    assert_eq!(target.client().users().len(), 2);
    assert_eq!(groups(&target), owned(&[("staff", &["ann", "bob"])]));

    let output = scimbridge(&data, &["channel", "reset", "nobody"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no channel nobody"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn serve_runs_every_channel_follows_changes_and_takes_new_configuration_without_restart() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "dn: ou=contractors,dc=example,dc=com\nobjectClass: organizationalUnit\nou: contractors\n\n{}{}",
        person("ann", "Ann Lee", "people"),
        person("eve", "Eve Smith", "contractors"),
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let one_channel = config(&slapd, &target, "", "", "disable");
    std::fs::write(&cfg, &one_channel).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let lines = output.clone();
    let collector = std::thread::spawn(move || {
        for line in reader.lines() {
            lines.lock().unwrap().push(line.unwrap());
        }
    });
    let wait_for = |what: &dyn Fn() -> bool, label: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !what() {
            assert!(
                Instant::now() < deadline,
                "{label}; output so far:\n{}",
                output.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let printed = |needle: &str| output.lock().unwrap().iter().any(|l| l.contains(needle));
    wait_for(&|| printed("app/staff: created 1,"), "first cycle");
    wait_for(
        &|| printed("following the directory's live change feed"),
        "live feed",
    );

    // A hire reaches the target through the live feed, long before the hourly cycle.
    slapd.add(&person("bob", "Bob Stone", "people"));
    wait_for(
        &|| target.client().user_by_name("bob").is_some(),
        "bob via the live feed",
    );

    // A second channel applied while the service runs starts without a restart.
    let two_channels = format!(
        "{one_channel}\n[[connection.channel]]\nname = \"contractors\"\ndata_store = \"directory\"\n\
         [connection.channel.source_location]\nbase_dn = \"ou=contractors,dc=example,dc=com\"\n\
         [connection.channel.attribute_mapping]\nuserName = {{ attributes = [\"uid\"] }}\n"
    );
    std::fs::write(&cfg, two_channels).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    wait_for(
        &|| printed("channel app/contractors: started"),
        "second channel",
    );
    wait_for(
        &|| target.client().user_by_name("eve").is_some(),
        "eve from the new channel",
    );

    // Metrics and health, on the address the service printed.
    let metrics_url = output
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.strip_prefix("metrics on ")
                .map(|rest| rest.split(',').next().unwrap().to_owned())
        })
        .unwrap();
    // /metrics needs an API token like the admin API; /healthz needs nothing.
    let refused = reqwest::blocking::get(&metrics_url).unwrap();
    assert_eq!(refused.status(), 401);
    let token = ok(scimbridge(
        &data,
        &["admin", "token", "create", "prometheus"],
        &[],
    ));
    let metrics = reqwest::blocking::Client::new()
        .get(&metrics_url)
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("scimbridge_cycles_total{channel=\"app/staff\",outcome=\"completed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scimbridge_operations_total{channel=\"app/staff\",type=\"user-create\",success=\"true\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scimbridge_last_successful_cycle_seconds{channel=\"app/contractors\"}"),
        "{metrics}"
    );
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    // bob's hire was timed from the feed's signal to the target.
    assert!(value("scimbridge_change_to_target_seconds_count{channel=\"app/staff\"}") >= 1.0);
    assert!(value("scimbridge_change_to_target_seconds_sum{channel=\"app/staff\"}") < 20.0);
    assert!(
        value("scimbridge_target_request_seconds_bucket{channel=\"app/staff\",le=\"+Inf\"}") >= 2.0
    );
    assert!(value("scimbridge_cycle_seconds_count{channel=\"app/contractors\"}") >= 1.0);
    assert_eq!(
        value("scimbridge_pending_operations{channel=\"app/staff\"}"),
        0.0
    );
    assert_eq!(
        value("scimbridge_failed_records{channel=\"app/staff\"}"),
        0.0
    );
    let health = reqwest::blocking::get(metrics_url.replace("/metrics", "/healthz")).unwrap();
    assert_eq!(health.status(), 200);

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    collector.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(printed("stopped"));
    assert_eq!(target.client().users().len(), 3);
}

#[test]
fn the_mass_change_guard_holds_deprovisions_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let names = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    let people: String = names[..6]
        .iter()
        .map(|n| person(n, &format!("User {n}"), "people"))
        .collect();
    slapd.add(&people);
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let text = format!(
        "{}\n[connection.guard]\nmax_deprovisions = 2\n",
        config(&slapd, &target, "", "", "disable")
    );
    std::fs::write(&cfg, text).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 6,"));

    // Three leave at once (more than 2) while one joins: the joiner goes ahead, the leavers wait.
    let deletes: String = names[..3]
        .iter()
        .map(|n| format!("dn: {}\nchangetype: delete\n\n", dn(n)))
        .collect();
    slapd.modify(&deletes);
    slapd.add(&person("u7", "User u7", "people"));
    let out = sync(&data);
    assert!(
        out.contains("created 1,") && out.contains("disabled 0,"),
        "{out}"
    );
    assert!(out.contains("held 3: see `scimbridge held app`"), "{out}");
    assert_eq!(target.client().users().len(), 7);
    assert!(
        target
            .client()
            .users()
            .iter()
            .all(|u| u["active"] == Value::Bool(true))
    );
    let held = ok(scimbridge(&data, &["held", "app"], &[]));
    assert!(
        held.contains("channel app/staff: 3 operations held"),
        "{held}"
    );
    assert!(held.contains("disable u1") && held.contains("held by the mass-change guard: 3 users would be deprovisioned at once, more than guard.max_deprovisions 2"), "{held}");
    let plan = ok(scimbridge(&data, &["plan", "app"], &[]));
    assert!(plan.contains("held: disable u2"), "{plan}");

    // Until an operator decides, every cycle holds them again and sends nothing twice.
    let out = sync(&data);
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0"),
        "{out}"
    );
    assert!(out.contains("held 3"), "{out}");

    let out = ok(scimbridge(&data, &["approve", "app"], &[]));
    assert!(out.contains("3 operations approved"), "{out}");
    assert!(
        ok(scimbridge(&data, &["held", "app"], &[]))
            .contains("[approved: applied at the next cycle]")
    );
    let out = sync(&data);
    assert!(
        out.contains("disabled 3,") && !out.contains("held"),
        "{out}"
    );
    assert!(ok(scimbridge(&data, &["held", "app"], &[])).contains("nothing held"));
    assert_eq!(
        target
            .client()
            .users()
            .iter()
            .filter(|u| u["active"] == Value::Bool(false))
            .count(),
        3
    );

    // The user's timeline says what happened and why, cycle by cycle.
    let history = ok(scimbridge(&data, &["history", "u1"], &[]));
    let kinds: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        kinds,
        ["user-create", "user-held", "user-held", "user-disable"],
        "{history}"
    );
    assert!(history.contains("user-held  not done  u1"), "{history}");
    assert!(
        history.contains("user-disable  ok  u1 (target id "),
        "{history}"
    );
    let log = std::fs::read_to_string(data.join("audit.log")).unwrap();
    let disable: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_type"] == "user-disable" && e["name"] == "u1")
        .unwrap();
    assert_eq!(disable["success"], true);
    assert_eq!(
        (disable["connection"].as_str(), disable["channel"].as_str()),
        (Some("app"), Some("staff"))
    );
    assert!(
        disable["cause"]
            .as_str()
            .unwrap()
            .contains("left the source location")
    );

    // Discarding drops the held set; what the directory still says is held again.
    let deletes: String = names[3..6]
        .iter()
        .map(|n| format!("dn: {}\nchangetype: delete\n\n", dn(n)))
        .collect();
    slapd.modify(&deletes);
    assert!(sync(&data).contains("held 3"));
    let out = ok(scimbridge(&data, &["discard", "app"], &[]));
    assert!(out.contains("3 held operations discarded"), "{out}");
    assert!(ok(scimbridge(&data, &["held", "app"], &[])).contains("nothing held"));
    assert!(sync(&data).contains("held 3"));
}

#[test]
fn sync_one_user_on_demand_with_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people")
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&slapd, &target, "", "", "disable")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let ann = dn("ann");

    let out = ok(scimbridge(
        &data,
        &["sync", "app", "--user", &ann, "--dry-run"],
        &[],
    ));
    assert!(
        out.contains("channel app/staff: would create ann: new in the source location"),
        "{out}"
    );
    assert!(out.contains("\"displayName\": \"Ann Lee\""), "{out}");
    assert!(target.client().users().is_empty());

    let out = ok(scimbridge(&data, &["sync", "app", "--user", &ann], &[]));
    assert!(
        out.contains("create ann: new in the source location: created"),
        "{out}"
    );
    assert_eq!(user_names(&target), [("ann".into(), true)]);

    // By user name, once known; only that user moves.
    slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nreplace: cn\ncn: Ann Lee-Smith\n\n\
         dn: {}\nchangetype: modify\nreplace: cn\ncn: Robert Stone\n",
        dn("bob")
    ));
    let out = ok(scimbridge(&data, &["sync", "app", "--user", "ANN"], &[]));
    assert!(
        out.contains("update ann") && out.contains(": updated"),
        "{out}"
    );
    assert_eq!(
        target.client().user_by_name("ann").unwrap()["displayName"],
        "Ann Lee-Smith"
    );
    assert!(target.client().user_by_name("bob").is_none());

    slapd.modify(&format!("dn: {ann}\nchangetype: delete\n"));
    let out = ok(scimbridge(&data, &["sync", "app", "--user", "ann"], &[]));
    assert!(
        out.contains("disable ann: left the source location") && out.contains(": disabled"),
        "{out}"
    );
    assert_eq!(user_names(&target), [("ann".into(), false)]);

    let output = scimbridge(&data, &["sync", "app", "--user", "nobody"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("reads or knows nobody"),
        "{}",
        stderr(&output)
    );
    let history = ok(scimbridge(&data, &["history", "ann"], &[]));
    assert!(
        history.contains("cycle 0  user-create  ok  ann"),
        "{history}"
    );
}

#[test]
fn a_disable_that_failed_is_retried_though_the_server_reports_the_delete_once() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people")
    ));
    let database = dir.path().join("target.db");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let first = TargetProcess::start(&database, "t0ken");
    // No retries: one failed request fails the record.
    let template = config(&slapd, &first, "", "", "disable").replace(
        "access_token = \"t0ken\"",
        "access_token = \"t0ken\"\nmax_retries = 0",
    );
    let first_url = first.url.clone();
    let apply = |url: &str| {
        std::fs::write(&cfg, template.replace(&first_url, url)).unwrap();
        ok(scimbridge(
            &data,
            &["apply", "-f", &path_str(&cfg), "--skip-check"],
            &[],
        ));
    };
    apply(&first.url);
    assert!(sync(&data).contains("created 2,"));
    drop(first);

    slapd.modify(&format!("dn: {}\nchangetype: delete\n", dn("bob")));
    // The same target, refusing every change of a user (it answers everything else): the
    // disable fails, the cursor moves on.
    let target = TargetProcess::start(&database, "t0ken");
    let proxy = FaultProxy::start(
        target.url.strip_suffix("/scim/v2").unwrap(),
        &json!([
            {"method": "PATCH", "path": "/scim/v2/Users/", "count": -1, "fault": "status", "status": 500},
            {"method": "PUT", "path": "/scim/v2/Users/", "count": -1, "fault": "status", "status": 500},
        ]),
    );
    apply(&proxy.url("/scim/v2"));
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(stdout(&output).contains("failed 1"), "{}", stdout(&output));
    drop(proxy);
    drop(target);

    // The server will not report the delete again; the retry finds it by GUID.
    let target = TargetProcess::start(&database, "t0ken");
    apply(&target.url);
    let out = sync(&data);
    assert!(
        out.contains("source read: content-sync, incremental"),
        "{out}"
    );
    assert!(out.contains("disabled 1,"), "{out}");
    assert_eq!(
        user_names(&target),
        [("ann".into(), true), ("bob".into(), false)]
    );
}

#[test]
fn the_guard_holds_updates_that_would_clear_an_attribute_on_many_users() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let with_title =
        |uid: &str| person(uid, uid, "people").replace("\n\n", "\ntitle: Engineer\n\n");
    slapd.add(&format!(
        "{}{}{}",
        with_title("u1"),
        with_title("u2"),
        with_title("u3")
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    let text = format!(
        "{}title = {{ attributes = [\"title\"] }}\n\n[connection.guard]\nmax_blanked = 2\n",
        config(&slapd, &target, "", "", "disable")
    );
    std::fs::write(&cfg, text).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 3,"));

    // An export gone wrong empties everyone's title: held, not sent.
    let clear: String = ["u1", "u2", "u3"]
        .iter()
        .map(|u| format!("dn: {}\nchangetype: modify\ndelete: title\n\n", dn(u)))
        .collect();
    slapd.modify(&clear);
    let out = sync(&data);
    assert!(
        out.contains("updated 0,") && out.contains("held 3"),
        "{out}"
    );
    assert!(
        target
            .client()
            .users()
            .iter()
            .all(|u| u["title"] == "Engineer")
    );
    let held = ok(scimbridge(&data, &["held", "app"], &[]));
    assert!(held.contains("3 users would lose title at once"), "{held}");

    ok(scimbridge(&data, &["approve", "app"], &[]));
    let out = sync(&data);
    assert!(out.contains("updated 3,"), "{out}");
    assert!(
        target
            .client()
            .users()
            .iter()
            .all(|u| u.get("title").is_none())
    );
}

#[test]
fn a_record_waiting_for_its_retry_is_reported_under_incremental_reads() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.add(&format!(
        "{}{}",
        person("ann", "Ann Lee", "people"),
        person("bob", "Bob Stone", "people")
    ));
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let data = dir.path().join("data");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&slapd, &target, "", "", "disable")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(sync(&data).contains("created 2,"));

    // A hire without a uid: no userName, so the record fails, is retried by the next cycle,
    // fails again, and then waits for its backoff.
    slapd.add("dn: cn=Carl Nouid,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Carl Nouid\nsn: Nouid\n\n");
    for _ in 0..2 {
        let output = scimbridge(&data, &["sync", "app"], &[]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(3), "{out}");
        assert!(out.contains("failed 1 "), "{out}");
        assert!(out.contains("content-sync, incremental"), "{out}");
    }
    // Within its backoff the incremental read does not return it: still a user missing from the
    // target, and every view says so.
    let output = scimbridge(&data, &["sync", "app"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(
        out.contains(
            "failed 0 (unchanged 2, skipped 0, blocked 0, failed earlier and waiting to be retried 1)"
        ),
        "{out}"
    );
    assert!(out.contains("content-sync, incremental"), "{out}");
    let plan = ok(scimbridge(&data, &["plan", "app"], &[]));
    assert!(plan.contains("failed, waiting to be retried: 1"), "{plan}");
    let channels = ok(scimbridge(&data, &["channels"], &[]));
    assert!(
        channels.contains("ok (0 failed, 1 waiting to be retried)"),
        "{channels}"
    );
}
