//! Group provisioning end to end: create with members, rename, member deltas in chunks, delete,
//! a member whose user failed retried, merge and overwrite of existing groups; against the
//! bundled target and against scim2-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use scimbridge_testkit::scim2_server::Scim2Server;
use serde_json::{Value, json};

fn person(uid: &str, n: u32) -> String {
    format!(
        "dn: uid={uid},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nentryUUID: 00000000-0000-0000-0000-{n:012}\n"
    )
}

fn group(cn: &str, n: u32, members: &[&str]) -> String {
    let mut text = format!(
        "dn: cn={cn},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: {cn}\nentryUUID: 99999999-0000-0000-0000-{n:012}\n"
    );
    for uid in members {
        text.push_str(&format!("member: uid={uid},ou=people,dc=example,dc=com\n"));
    }
    text
}

const PEOPLE: [&str; 8] = ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"];

fn directory(groups: &[String], skip_uid_of: Option<&str>) -> String {
    let mut blocks = vec![
        "version: 1".to_owned(),
        "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n".into(),
        "dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n".into(),
        // Outside the people base DN: never a member in the target.
        "dn: uid=out,ou=contractors,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: out\nentryUUID: 11111111-0000-0000-0000-000000000001\n".into(),
    ];
    for (n, uid) in PEOPLE.iter().enumerate() {
        let mut entry = person(uid, n as u32 + 1);
        if Some(*uid) == skip_uid_of {
            // No userName: this user fails to provision.
            entry = entry.replace(&format!("uid: {uid}\n"), "");
        }
        blocks.push(entry);
    }
    blocks.extend(groups.iter().cloned());
    blocks.join("\n")
}

fn config(ldif: &Path, url: &str, token: &str, extra_target: &str) -> String {
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
access_token = "{token}"
group_member_chunk_size = 3
{extra_target}

[[connection.channel]]
name = "staff"
data_store = "corp"
max_threads = 4

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
familyName = {{ attributes = ["sn"] }}
"#,
        ldif = ldif.display()
    )
}

/// Group display name → user names of its members, read from the target.
fn target_groups(reader: &ScimReader) -> Vec<(String, BTreeSet<String>)> {
    let users = reader.users();
    let name_of = |id: &str| {
        users
            .iter()
            .find(|u| u["id"] == id)
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| format!("unknown id {id}"))
    };
    let (status, page) = reader.get("/Groups", &[("count", "100")]);
    assert_eq!(status, 200, "{page}");
    let mut groups: Vec<(String, BTreeSet<String>)> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let members = g["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|m| name_of(m["value"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            (g["displayName"].as_str().unwrap().to_owned(), members)
        })
        .collect();
    groups.sort();
    groups
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn sync(data: &Path) -> String {
    let output = scimbridge(data, &["sync", "app"], &[]);
    format!("{}{}", stdout(&output), stderr(&output))
}

/// The whole flow against one target.
fn group_lifecycle(url: &str, token: &str, reader: &ScimReader) {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, url, token, "")).unwrap();

    // cat fails to provision (no uid): staff gets everyone else now, cat later.
    let groups = [
        group(
            "staff",
            1,
            &["ann", "ben", "cat", "dan", "eve", "fay", "gus", "out"],
        ),
        group("ops", 2, &["ann", "hal"]),
        group("empty", 3, &[]),
    ];
    std::fs::write(&ldif, directory(&groups, Some("cat"))).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let plan = ok(scimbridge(&data, &["plan", "app"], &[]));
    assert!(
        plan.contains("create group staff: new in the source location (7 members wait for their user to be in the target)"),
        "{plan}"
    );
    let out = sync(&data);
    // Both targets offer Bulk: the discovery, one look-up per new group, one Bulk request
    // creating the three groups (empty), then one look-up and one Bulk request for the seven
    // users that also adds staff's six members by bulkId (at least group_member_chunk_size = 3
    // of them). ops has only two: they wait, and the group stage adds them with one PATCH.
    assert!(
        out.contains("groups: created 3, linked 0, updated 1, deleted 0, failed 0"),
        "{out}"
    );
    assert!(out.contains("(8 requests;"), "{out}");
    assert_eq!(
        target_groups(reader),
        vec![
            ("empty".to_owned(), set(&[])),
            ("ops".to_owned(), set(&["ann", "hal"])),
            (
                "staff".to_owned(),
                set(&["ann", "ben", "dan", "eve", "fay", "gus"])
            ),
        ]
    );

    // cat is fixed: its user is created and it joins staff. ops is renamed and changes
    // members; empty leaves the directory.
    let groups = [
        group(
            "staff",
            1,
            &["ann", "ben", "cat", "dan", "eve", "fay", "gus", "out"],
        ),
        // Same entryUUID as ops: a rename.
        group("operations", 2, &["hal", "ben", "dan", "eve", "fay"]),
    ];
    std::fs::write(&ldif, directory(&groups, None)).unwrap();
    let out = sync(&data);
    assert!(out.contains("created 1,"), "{out}");
    assert!(
        out.contains("groups: created 0, linked 0, updated 2, deleted 1, failed 0"),
        "{out}"
    );
    assert_eq!(
        target_groups(reader),
        vec![
            (
                "operations".to_owned(),
                set(&["ben", "dan", "eve", "fay", "hal"])
            ),
            (
                "staff".to_owned(),
                set(&["ann", "ben", "cat", "dan", "eve", "fay", "gus"])
            ),
        ]
    );

    // Nothing changed: nothing sent.
    let out = sync(&data);
    assert!(!out.contains("groups:"), "{out}");
}

#[test]
fn groups_follow_the_directory_in_the_bundled_target() {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    group_lifecycle(&target.url, "t0ken", &target.client());
}

#[test]
fn groups_follow_the_directory_in_scim2_server() {
    let server = Scim2Server::start("s3cret");
    let reader = ScimReader {
        url: server.url(),
        token: server.token.clone(),
    };
    group_lifecycle(&server.url(), "s3cret", &reader);
}

#[test]
fn existing_groups_are_linked_and_merged_or_overwritten() {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, body: Value| -> Value {
        let response = http
            .post(format!("{}{path}", target.url))
            .bearer_auth("t0ken")
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response.json().unwrap()
    };
    // Made by hand in the target: a user we do not manage, in two groups named like ours.
    let stranger = post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "stranger"}),
    );
    for name in ["Staff", "ops"] {
        post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
                   "members": [{"value": stranger["id"]}]}),
        );
    }

    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(
        &ldif,
        directory(
            &[
                group("staff", 1, &["ann", "ben"]),
                group("ops", 2, &["cat"]),
            ],
            None,
        ),
    )
    .unwrap();

    // Merge (the default): our members are added, the stranger stays.
    let cfg = dir.path().join("merge.toml");
    std::fs::write(&cfg, config(&ldif, &target.url, "t0ken", "")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = sync(&data);
    assert!(out.contains("groups: created 0, linked 2"), "{out}");
    assert_eq!(
        target_groups(&reader),
        vec![
            ("Staff".to_owned(), set(&["ann", "ben", "stranger"])),
            ("ops".to_owned(), set(&["cat", "stranger"])),
        ]
    );

    // Overwrite: the next change makes the target's members exactly ours.
    std::fs::write(
        &cfg,
        config(
            &ldif,
            &target.url,
            "t0ken",
            "group_membership_handling = \"overwrite\"",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    std::fs::write(
        &ldif,
        directory(
            &[
                group("staff", 1, &["ann", "ben", "dan"]),
                group("ops", 2, &["cat"]),
            ],
            None,
        ),
    )
    .unwrap();
    let out = sync(&data);
    assert!(
        out.contains("groups: created 0, linked 0, updated 1"),
        "{out}"
    );
    assert_eq!(
        target_groups(&reader),
        vec![
            ("Staff".to_owned(), set(&["ann", "ben", "dan"])),
            ("ops".to_owned(), set(&["cat", "stranger"])),
        ]
    );
}

#[test]
fn paths_override_and_a_target_without_discovery_gets_put_and_listing() {
    // The target is reached through path overrides from a base URL that has no discovery
    // documents: no ServiceProviderConfig means no PATCH and no filter assumed, so users and
    // groups are updated with PUT, and both are found by listing page by page.
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let base = target.url.strip_suffix("/v2").unwrap().to_owned();
    let http = reqwest::blocking::Client::new();
    for name in ["alpha", "beta", "gamma", "ops", "zeta"] {
        let status = http
            .post(format!("{}/Groups", target.url))
            .bearer_auth("t0ken")
            .header("Content-Type", "application/scim+json")
            .body(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})
                    .to_string(),
            )
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 201);
    }
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    let cfg = dir.path().join("paths.toml");
    std::fs::write(
        &cfg,
        config(
            &ldif,
            &base,
            "t0ken",
            "users_path = \"v2/Users/\"\ngroups_path = \"/v2/Groups\"\nresults_per_page = 2",
        ),
    )
    .unwrap();
    std::fs::write(
        &ldif,
        directory(
            &[group("ops", 2, &["ann", "ben"]), group("new", 4, &["cat"])],
            None,
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = ok(scimbridge(&data, &["check", "app"], &[]));
    assert!(
        out.contains("no ServiceProviderConfig; updates use PUT"),
        "{out}"
    );
    let out = sync(&data);
    assert!(out.contains("created 8,"), "{out}");
    assert!(out.contains("groups: created 1, linked 1"), "{out}");

    // A changed user and changed members, all sent with PUT.
    let edited = directory(
        &[group("ops", 2, &["ben", "dan"]), group("new", 4, &["cat"])],
        None,
    )
    .replace("sn: ben\n", "sn: Benson\n");
    std::fs::write(&ldif, edited).unwrap();
    let out = sync(&data);
    assert!(out.contains("updated 1,"), "{out}");
    assert!(
        out.contains("groups: created 0, linked 0, updated 1"),
        "{out}"
    );
    assert_eq!(
        reader.user_by_name("ben").unwrap()["name"]["familyName"],
        "Benson"
    );
    let groups = target_groups(&reader);
    assert!(
        groups.contains(&("ops".to_owned(), set(&["ben", "dan"]))),
        "{groups:?}"
    );
    assert!(
        groups.contains(&("new".to_owned(), set(&["cat"]))),
        "{groups:?}"
    );
    assert_eq!(groups.len(), 6, "{groups:?}");
}

#[test]
fn taking_the_group_base_dn_out_leaves_the_groups_alone() {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    let cfg = dir.path().join("app.toml");
    std::fs::write(
        &ldif,
        directory(&[group("staff", 1, &["ann", "ben"])], None),
    )
    .unwrap();
    std::fs::write(&cfg, config(&ldif, &target.url, "t0ken", "")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = sync(&data);
    assert!(out.contains("groups: created 1"), "{out}");

    let without = config(&ldif, &target.url, "t0ken", "")
        .replace("group_base_dn = \"ou=groups,dc=example,dc=com\"\n", "");
    std::fs::write(&cfg, without).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let plan = ok(scimbridge(&data, &["plan", "app"], &[]));
    assert!(!plan.contains("group"), "{plan}");
    let out = sync(&data);
    assert!(!out.contains("groups:"), "{out}");
    assert_eq!(
        target_groups(&reader),
        vec![("staff".to_owned(), set(&["ann", "ben"]))]
    );
}
