//! Group provisioning end to end: create with members, rename, member deltas in chunks, delete,
//! a member whose user failed retried, merge and overwrite of existing groups; against the
//! bundled target and against scim2-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

const UIDS: [&str; 8] = ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"];

fn group(cn: &str, n: usize, members: &[&str]) -> Entry {
    Entry::group(cn).group_guid(n).members(members)
}

/// The people of `UIDS` (the one named by `skip_uid_of` without a uid), someone outside the
/// people base DN, and `groups`.
fn directory(groups: &[Entry], skip_uid_of: Option<&str>) -> String {
    let mut entries = vec![
        Entry::ou("people"),
        Entry::ou("groups"),
        // Outside the people base DN: never a member in the target.
        Entry::new("uid=out,ou=contractors,dc=example,dc=com", "inetOrgPerson")
            .with("uid", "out")
            .with("entryUUID", "11111111-0000-0000-0000-000000000001"),
    ];
    for (n, uid) in UIDS.iter().enumerate() {
        let person = Entry::person(uid)
            .with("cn", uid)
            .with("sn", uid)
            .guid(n + 1);
        // No userName: this user fails to provision.
        let failing = Some(*uid) == skip_uid_of;
        entries.push(if failing {
            person.without("uid")
        } else {
            person
        });
    }
    entries.extend(groups.iter().cloned());
    ldif(entries)
}

/// The people and the groups, member changes three at a time.
fn config(ws: &Workspace, url: &str, token: &str) -> Config {
    Config::ldif(&ws.ldif, url, token)
        .target("group_member_chunk_size", 3)
        .channel_setting("max_threads", 4)
        .location("group_base_dn", GROUPS)
        .map("familyName", "sn")
}

/// `sync app`: what it printed, whatever its outcome.
fn sync(ws: &Workspace) -> String {
    ws.try_sync().1
}

/// The whole flow against one target.
fn group_lifecycle(url: &str, token: &str, reader: &ScimReader) {
    let ws = Workspace::new();

    // cat fails to provision (no uid): staff gets everyone else now, cat later.
    let staff = group(
        "staff",
        1,
        &["ann", "ben", "cat", "dan", "eve", "fay", "gus", "out"],
    );
    let groups = [
        staff.clone(),
        group("ops", 2, &["ann", "hal"]),
        group("empty", 3, &[]),
    ];
    ws.write_ldif(&directory(&groups, Some("cat")));
    ws.apply(&config(&ws, url, token));
    let plan = ws.run(&["plan", "app"]);
    assert!(
        plan.contains("create group staff: new in the source location (7 members wait for their user to be in the target)"),
        "{plan}"
    );
    let out = sync(&ws);
    // Both targets offer Bulk, and the read hands its groups over before its users: the
    // discovery, one look-up per new group, one Bulk request creating the three groups (empty);
    // then, as the read goes, one look-up and one Bulk request for the seven users that also
    // adds staff's six members by bulkId (at least group_member_chunk_size = 3 of them). ops has
    // only two: they wait, and the group stage adds them with one PATCH.
    assert_has(
        &out,
        &[
            "groups: created 3, linked 0, updated 1, deleted 0, failed 0",
            "(8 requests;",
        ],
    );
    assert_eq!(
        reader.groups(),
        expected_groups(&[
            ("empty", &[]),
            ("ops", &["ann", "hal"]),
            ("staff", &["ann", "ben", "dan", "eve", "fay", "gus"]),
        ])
    );

    // cat is fixed: its user is created and it joins staff. ops is renamed and changes
    // members; empty leaves the directory.
    let groups = [
        staff,
        // Same entryUUID as ops: a rename.
        group("operations", 2, &["hal", "ben", "dan", "eve", "fay"]),
    ];
    ws.write_ldif(&directory(&groups, None));
    let out = sync(&ws);
    assert_has(
        &out,
        &[
            "created 1,",
            "groups: created 0, linked 0, updated 2, deleted 1, failed 0",
        ],
    );
    assert_eq!(
        reader.groups(),
        expected_groups(&[
            ("operations", &["ben", "dan", "eve", "fay", "hal"]),
            ("staff", &["ann", "ben", "cat", "dan", "eve", "fay", "gus"]),
        ])
    );

    // Nothing changed: nothing sent.
    let out = sync(&ws);
    assert!(!out.contains("groups:"), "{out}");
}

#[test]
fn groups_follow_the_directory_in_the_bundled_target() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    group_lifecycle(&target.url, "t0ken", &target.client());
}

#[test]
fn groups_follow_the_directory_in_scim2_server() {
    let (server, reader) = scim2_server("s3cret");
    group_lifecycle(&server.url(), "s3cret", &reader);
}

#[test]
fn existing_groups_are_linked_and_merged_or_overwritten() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    let reader = target.client();
    // Made by hand in the target: a user we do not manage, in two groups named like ours.
    let stranger = reader.create_user("stranger", json!({}));
    for name in ["Staff", "ops"] {
        reader.create_group(name, &[&stranger["id"]]);
    }
    let ops = group("ops", 2, &["cat"]);
    ws.write_ldif(&directory(
        &[group("staff", 1, &["ann", "ben"]), ops.clone()],
        None,
    ));

    // Merge (the default): our members are added, the stranger stays.
    let merge = config(&ws, &target.url, "t0ken");
    ws.apply(&merge);
    let out = sync(&ws);
    assert!(out.contains("groups: created 0, linked 2"), "{out}");
    assert_eq!(
        reader.groups(),
        expected_groups(&[
            ("Staff", &["ann", "ben", "stranger"]),
            ("ops", &["cat", "stranger"]),
        ])
    );

    // Overwrite: the next change makes the target's members exactly ours.
    ws.apply(&merge.target("group_membership_handling", "overwrite"));
    ws.write_ldif(&directory(
        &[group("staff", 1, &["ann", "ben", "dan"]), ops],
        None,
    ));
    let out = sync(&ws);
    assert!(
        out.contains("groups: created 0, linked 0, updated 1"),
        "{out}"
    );
    assert_eq!(
        reader.groups(),
        expected_groups(&[
            ("Staff", &["ann", "ben", "dan"]),
            ("ops", &["cat", "stranger"]),
        ])
    );
}

#[test]
fn paths_override_and_a_target_without_discovery_gets_put_and_listing() {
    // The target is reached through path overrides from a base URL that has no discovery
    // documents: no ServiceProviderConfig means no PATCH and no filter assumed, so users and
    // groups are updated with PUT, and both are found by listing page by page.
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    let reader = target.client();
    let base = target.url.strip_suffix("/v2").unwrap().to_owned();
    for name in ["alpha", "beta", "gamma", "ops", "zeta"] {
        reader.create_group(name, &[]);
    }
    let paths = config(&ws, &base, "t0ken")
        .target("users_path", "v2/Users/")
        .target("groups_path", "/v2/Groups")
        .target("results_per_page", 2);
    let new = group("new", 4, &["cat"]);
    ws.write_ldif(&directory(
        &[group("ops", 2, &["ann", "ben"]), new.clone()],
        None,
    ));
    ws.apply(&paths);
    let out = ws.run(&["check", "app"]);
    assert!(
        out.contains("no ServiceProviderConfig; updates use PUT"),
        "{out}"
    );
    let out = sync(&ws);
    assert_has(&out, &["created 8,", "groups: created 1, linked 1"]);

    // A changed user and changed members, all sent with PUT.
    let edited = directory(&[group("ops", 2, &["ben", "dan"]), new], None)
        .replace("sn: ben\n", "sn: Benson\n");
    ws.write_ldif(&edited);
    let out = sync(&ws);
    assert_has(
        &out,
        &["updated 1,", "groups: created 0, linked 0, updated 1"],
    );
    assert_eq!(
        reader.user_by_name("ben").unwrap()["name"]["familyName"],
        "Benson"
    );
    let groups = reader.groups();
    let expected = expected_groups(&[("ops", &["ben", "dan"]), ("new", &["cat"])]);
    for group in &expected {
        assert!(groups.contains(group), "{groups:?}");
    }
    assert_eq!(groups.len(), 6, "{groups:?}");
}

#[test]
fn taking_the_group_base_dn_out_leaves_the_groups_alone() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    ws.write_ldif(&directory(&[group("staff", 1, &["ann", "ben"])], None));
    let with_groups = config(&ws, &target.url, "t0ken");
    ws.apply(&with_groups);
    let out = sync(&ws);
    assert!(out.contains("groups: created 1"), "{out}");

    ws.apply(&with_groups.without_location("group_base_dn"));
    let plan = ws.run(&["plan", "app"]);
    assert!(!plan.contains("group"), "{plan}");
    let out = sync(&ws);
    assert!(!out.contains("groups:"), "{out}");
    assert_eq!(
        target.client().groups(),
        expected_groups(&[("staff", &["ann", "ben"])])
    );
}
