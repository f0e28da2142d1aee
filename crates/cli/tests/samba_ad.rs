//! A channel reading a real Active Directory (Samba AD DC) into the bundled target: binary
//! objectGUID, userAccountControl, DirSync with deletes, uSNChanged, memberOf, and range
//! retrieval of a group with more than 1,500 members.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::change::{delete, remove, replace};
use common::*;
use scimbridge_testkit::samba::{ADMIN, ADMIN_PASSWORD, SambaDc, URL};
use serde_json::Value;

const STAFF: &str = "OU=Staff,DC=example,DC=test";
const GROUPS_OU: &str = "OU=Groups,DC=example,DC=test";
/// More than Active Directory's 1,500 values per attribute read.
const BULK_USERS: usize = 1_600;

fn user_dn(name: &str) -> String {
    format!("CN={name},{STAFF}")
}

fn user(name: &str, given: &str, sn: &str, enabled: bool) -> Entry {
    // 544 = NORMAL_ACCOUNT + PASSWD_NOTREQD; 546 adds ACCOUNTDISABLE.
    let control = if enabled { "544" } else { "546" };
    Entry::new(&user_dn(name), "user")
        .with("sAMAccountName", name)
        .with("userPrincipalName", &format!("{name}@example.test"))
        .with("givenName", given)
        .with("sn", sn)
        .with("mail", &format!("{name}@example.test"))
        .with("userAccountControl", control)
}

/// A group of these users (names).
fn group(name: &str, account: &str, members: &[String]) -> Entry {
    members.iter().fold(
        Entry::new(&format!("CN={name},{GROUPS_OU}"), "group").with("sAMAccountName", account),
        |group, member| group.member(&user_dn(member)),
    )
}

/// Four people (dan disabled), 1,600 more, Engineering (ann and bob) and Everyone (the 1,600
/// and ann).
fn directory() -> String {
    let bulk: Vec<String> = (0..BULK_USERS).map(|i| format!("u{i:04}")).collect();
    let mut entries = vec![
        Entry::new(STAFF, "organizationalUnit"),
        Entry::new(GROUPS_OU, "organizationalUnit"),
        user("ann", "Ann", "Lee", true),
        user("bob", "Bob", "Stone", true),
        user("cara", "Cara", "Diaz", true),
        user("dan", "Dan", "Wu", false),
    ];
    entries.extend(
        bulk.iter()
            .enumerate()
            .map(|(i, name)| user(name, "Bulk", &i.to_string(), true)),
    );
    let mut everyone = bulk.clone();
    everyone.push("ann".into());
    entries.push(group(
        "Engineering",
        "engineering",
        &["ann".into(), "bob".into()],
    ));
    entries.push(group("Everyone", "everyone", &everyone));
    changes(entries)
}

/// The staff of the domain into `target`, read by `algorithm`.
fn config(target: &TargetProcess, algorithm: Option<&str>) -> Config {
    let store = DataStore::ldap("ad", "active-directory", URL, ADMIN, ADMIN_PASSWORD)
        .ldap_setting("read_timeout", 120);
    let config = Config::reading(store, &target.url, &target.token)
        .option("remove_user_action", "disable")
        .channel_setting("max_threads", 4)
        .location("base_dn", STAFF)
        .location("group_base_dn", GROUPS_OU)
        .map("userName", "sAMAccountName")
        .map_field(
            "displayName",
            Field::expression("Join(\" \", [givenName], [sn])"),
        )
        .map("workEmail", "mail")
        .extension(
            "urn:example:params:scim:schemas:extension:corp:2.0:User:groups",
            Field::attribute("memberOf")
                .with("multi_valued", true)
                .with("parser", "extract_cn_from_dn"),
        );
    match algorithm {
        Some(algorithm) => config.source("changed_users_algorithm", algorithm),
        None => config,
    }
}

fn group_members(target: &TargetProcess, name: &str) -> Vec<String> {
    target.client().members(name)
}

fn active(target: &TargetProcess, name: &str) -> Option<bool> {
    target
        .client()
        .user_by_name(name)
        .map(|u| u["active"] == Value::Bool(true))
}

#[test]
fn active_directory_with_dirsync_usn_user_account_control_and_range_retrieval() {
    let ws = Workspace::new();
    let dc = SambaDc::start(ws.dir());
    dc.add(&directory());
    let target = ws.target("t0ken");
    ws.apply(&config(&target, None));
    check_and_mapping_test_read_active_directory(&ws);
    dirsync_reads_everyone_then_what_changed(&ws, &dc, &target);
    usn_reads_everything_once_then_what_changed(&ws, &dc, &target);
    watch_polls_the_highest_committed_usn(&ws, &dc, &target);
}

fn check_and_mapping_test_read_active_directory(ws: &Workspace) {
    let out = ws.run(&["check", "app"]);
    assert!(
        out.contains("with their objectGUID; changes found with dirsync"),
        "{out}"
    );

    // The binary objectGUID is printed the way Active Directory prints it.
    let out = ws.run(&["mapping", "test", "app", "--entry", &user_dn("ann")]);
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
    assert_has(&out, &["\"Engineering\"", "\"Everyone\""]);
}

fn dirsync_reads_everyone_then_what_changed(ws: &Workspace, dc: &SambaDc, target: &TargetProcess) {
    let out = ws.sync();
    assert!(out.contains("source read: dirsync, full read"), "{out}");
    // Dan is disabled (userAccountControl) and provision disabled users is off.
    assert!(
        out.contains(&format!("created {},", BULK_USERS + 3)),
        "{out}"
    );
    assert_eq!(active(target, "dan"), None);
    assert_eq!(group_members(target, "Engineering"), ["ann", "bob"]);
    // 1,601 members: Samba sends them 1,500 at a time.
    assert_eq!(group_members(target, "Everyone").len(), BULK_USERS + 1);

    dc.modify(
        &[
            replace(&user_dn("bob"), "userAccountControl", "546"),
            replace(&user_dn("dan"), "userAccountControl", "544"),
            replace(&user_dn("ann"), "sn", "Lee-Smith"),
            delete(&user_dn("cara")),
            remove(
                &format!("CN=Engineering,{GROUPS_OU}"),
                "member",
                &user_dn("bob"),
            ),
        ]
        .concat(),
    );
    let out = ws.sync();
    assert!(out.contains("source read: dirsync, incremental"), "{out}");
    assert_eq!(active(target, "bob"), Some(false));
    assert_eq!(active(target, "dan"), Some(true));
    // Deleted in the directory: found by DirSync's isDeleted, disabled in the target.
    assert_eq!(active(target, "cara"), Some(false));
    assert_eq!(
        target.client().user_by_name("ann").unwrap()["displayName"],
        "Ann Lee-Smith"
    );
    assert_eq!(group_members(target, "Engineering"), ["ann"]);
}

/// New settings read everything once, then only what changed.
fn usn_reads_everything_once_then_what_changed(
    ws: &Workspace,
    dc: &SambaDc,
    target: &TargetProcess,
) {
    ws.apply(&config(target, Some("active-directory-usn")));
    let out = ws.sync();
    assert_has(
        &out,
        &[
            "source read: active-directory-usn, full read",
            "created 0, linked 0, updated 0",
        ],
    );
    dc.modify(
        &[
            replace(&user_dn("ann"), "givenName", "Anne"),
            delete(&user_dn("u0001")),
        ]
        .concat(),
    );
    let out = ws.sync();
    assert_has(
        &out,
        &[
            "source read: active-directory-usn, incremental",
            "updated 1,",
            "disabled 1,",
        ],
    );
    // The delete was found by its tombstone, not by a sweep (due every 15 minutes).
    assert!(!out.contains("swept"), "{out}");
    assert_eq!(
        target.client().user_by_name("ann").unwrap()["displayName"],
        "Anne Lee-Smith"
    );
    assert_eq!(active(target, "u0001"), Some(false));
}

/// Samba pushes nothing, so `sync --watch` reads highestCommittedUSN every second
/// (live_poll_interval = 1); an hour between scheduled cycles means that whatever arrives
/// sooner came through that poll.
fn watch_polls_the_highest_committed_usn(ws: &Workspace, dc: &SambaDc, target: &TargetProcess) {
    ws.apply(
        &config(target, Some("active-directory-usn")).channel_setting("live_poll_interval", 1),
    );
    let watch = Running::start(&ws.data, &["sync", "app", "--watch", "--interval", "3600"]);
    watch.read_until("watching the directory's highestCommittedUSN every 1 s");
    dc.add(&changes([user("erin", "Erin", "Okafor", true)]));
    wait_until(Duration::from_secs(30), "erin arrives", || {
        target.client().user_by_name("erin").is_some()
    });
    let (status, _) = watch.stop();
    assert!(status.success(), "{status:?}");
}
