//! Channels reading a real OpenLDAP slapd (memberof, syncprov, accesslog) into the bundled
//! target: every kind of directory change reaches the target, by content synchronization and
//! by timestamps, scope by group with nested search, account status by flag, and a source that
//! fails deprovisions nobody.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::change::{add, clear, delete, remove, rename, replace};
use common::*;
use scimbridge_testkit::faults::FaultProxy;
use scimbridge_testkit::slapd::{CAPPED_DN, CAPPED_PASSWORD, SYNC_DN, SYNC_PASSWORD, Slapd};
use serde_json::{Value, json};

const CONTRACTORS: &str = "ou=contractors,dc=example,dc=com";

/// A person under `ou={ou},dc=example,dc=com`; slapd gives it its entryUUID.
fn person_in(ou: &str, uid: &str, cn: &str) -> Entry {
    Entry::new(
        &format!("uid={uid},ou={ou},dc=example,dc=com"),
        "inetOrgPerson",
    )
    .with("uid", uid)
    .with("cn", cn)
    .with("sn", cn)
    .with("mail", &format!("{uid}@example.com"))
}

fn person(uid: &str, cn: &str) -> Entry {
    person_in("people", uid, cn)
}

/// A group of these members (DNs).
fn group(cn: &str, members: &[&str]) -> Entry {
    members
        .iter()
        .fold(Entry::group(cn), |group, dn| group.member(dn))
}

/// The people of `ou=people` in `slapd`, read as the sync account, into the target at `url`;
/// leavers handled by `action`.
fn config(slapd: &Slapd, url: &str, action: &str) -> Config {
    let store = DataStore::ldap("directory", "openldap", &slapd.url, SYNC_DN, SYNC_PASSWORD);
    Config::reading(store, url, "t0ken")
        .option("remove_user_action", action)
        .map("displayName", "cn")
        .map("workEmail", "mail")
}

/// slapd, the bundled target and a workspace.
struct Setup {
    ws: Workspace,
    slapd: Slapd,
    target: TargetProcess,
}

impl std::ops::Deref for Setup {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

/// slapd, in `ws`, holding `entries` besides its skeleton.
fn slapd_with(ws: &Workspace, entries: &[Entry]) -> Slapd {
    let slapd = Slapd::start(ws.dir());
    slapd.add(&changes(entries));
    slapd
}

/// slapd holding `entries`, the bundled target, a workspace.
fn setup(entries: &[Entry]) -> Setup {
    let ws = Workspace::new();
    let slapd = slapd_with(&ws, entries);
    let target = ws.target("t0ken");
    Setup { ws, slapd, target }
}

fn ann_and_bob() -> [Entry; 2] {
    [person("ann", "Ann Lee"), person("bob", "Bob Stone")]
}

impl Setup {
    fn config(&self, action: &str) -> Config {
        config(&self.slapd, &self.target.url, action)
    }

    /// Each user's name and whether it is active, sorted.
    fn user_names(&self) -> Vec<(String, bool)> {
        user_names(&self.target)
    }

    fn groups(&self) -> Vec<Group> {
        self.target.client().groups()
    }
}

/// Users expected in the target: user name, and whether it is active.
fn accounts(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(name, active)| ((*name).to_owned(), *active))
        .collect()
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

#[test]
fn content_sync_carries_hires_renames_moves_deletes_and_group_changes() {
    let setup = setup(&[
        Entry::ou("contractors"),
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        person("cara", "Cara Diaz"),
        person("dan", "Dan Wu"),
        person_in("contractors", "eve", "Eve Contractor"),
        group(
            "staff",
            &[
                &user_dn("ann"),
                &user_dn("bob"),
                &format!("uid=eve,{CONTRACTORS}"),
            ],
        ),
        group("eng", &[&user_dn("cara"), &user_dn("dan")]),
    ]);
    setup.apply(&setup.config("delete").location("group_base_dn", GROUPS));
    let bob_id = a_first_full_read(&setup);
    a_day_of_changes_arrives_incrementally(&setup, &bob_id);

    // Nothing changed: nothing is sent.
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0",
            "source read: content-sync, incremental",
        ],
    );
}

/// Everyone in the people base DN, and their groups; returns bob's target id.
fn a_first_full_read(setup: &Setup) -> Value {
    let out = setup.sync();
    assert_has(
        &out,
        &["created 4,", "source read: content-sync, full read"],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("bob", true), ("cara", true), ("dan", true)])
    );
    assert_eq!(
        setup.groups(),
        expected_groups(&[("eng", &["cara", "dan"]), ("staff", &["ann", "bob"])])
    );
    setup.target.client().user_by_name("bob").unwrap()["id"].clone()
}

/// A day of directory changes: a rename, a new display name, a delete, a move out of the
/// source location, a member removed, a group renamed, a hire.
fn a_day_of_changes_arrives_incrementally(setup: &Setup, bob_id: &Value) {
    setup.slapd.modify(
        &[
            replace(&user_dn("ann"), "cn", "Ann Lee-Smith"),
            rename(&user_dn("bob"), "uid=robert", None),
            delete(&user_dn("cara")),
            rename(&user_dn("dan"), "uid=dan", Some(CONTRACTORS)),
            remove(&group_dn("staff"), "member", &user_dn("ann")),
            rename(&group_dn("eng"), "cn=engineering", None),
        ]
        .concat(),
    );
    setup.slapd.add(&changes([person("fay", "Fay Park")]));

    let out = setup.sync();
    assert_has(
        &out,
        &[
            "source read: content-sync, incremental",
            "created 1,",
            "deleted 2,",
        ],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("fay", true), ("robert", true)])
    );
    let client = setup.target.client();
    let ann = client.user_by_name("ann").unwrap();
    assert_eq!(ann["displayName"], "Ann Lee-Smith");
    // The rename kept the user: same target id, new userName.
    assert_eq!(client.user_by_name("robert").unwrap()["id"], *bob_id);
    assert_eq!(
        setup.groups(),
        expected_groups(&[("engineering", &[]), ("staff", &["robert"])])
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
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        person("cara", "Cara Diaz"),
        // groupOfNames needs a member: the service account stays when Bob leaves.
        group("team", &[&user_dn("bob"), SYNC_DN]),
        group("app-users", &[&user_dn("ann"), &group_dn("team")]),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .source("changed_users_algorithm", algorithm)
            .source("account_status_algorithm", "flag")
            .source("account_status_attribute", "employeeType")
            .source("flag_comparison_value", "suspended")
            .source("flag_comparison_status", false)
            .location("user_group_dn", group_dn("app-users"))
            .location("user_nested_search", true),
    );
    // A cycle reads the directory as `kind` says and leaves these users in the target.
    let cycle = |kind: &str, expected: &[(&str, bool)]| {
        let out = setup.sync();
        let read = format!("source read: {algorithm}, {kind}");
        assert!(out.contains(&read), "{out}");
        assert_eq!(setup.user_names(), accounts(expected));
    };

    // Cara is not in app-users; Bob is, through the nested team group.
    cycle("full read", &[("ann", true), ("bob", true)]);

    setup.slapd.modify(
        &[
            add(&user_dn("ann"), "employeeType", "suspended"),
            remove(&group_dn("team"), "member", &user_dn("bob")),
            add(&group_dn("app-users"), "member", &user_dn("cara")),
        ]
        .concat(),
    );
    // Ann is suspended (flag), Bob left the scope (remove user action: disable), Cara joined it
    // though her entry did not change.
    cycle(
        "incremental",
        &[("ann", false), ("bob", false), ("cara", true)],
    );

    setup.slapd.modify(
        &[
            clear(&user_dn("ann"), "employeeType"),
            delete(&user_dn("cara")),
        ]
        .concat(),
    );
    // Ann is active again; Cara's delete takes her out of app-users (the overlay's refint),
    // and so out of the scope.
    cycle(
        "incremental",
        &[("ann", true), ("bob", false), ("cara", false)],
    );
}

/// Timestamps show what changed, not what was deleted: a user moved out of the base DN or out
/// of the filter leaves at the next cycle (found among the entries changed anywhere), a deleted
/// one at the next sweep for deletes (every `delete_sweep_minutes`).
#[test]
fn timestamps_find_leavers_by_what_changed_and_deletes_by_a_sweep() {
    let setup = setup(&[
        Entry::ou("contractors"),
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        person("cara", "Cara Diaz"),
        person("dan", "Dan Wu"),
    ]);
    let config = setup
        .config("disable")
        .source("changed_users_algorithm", "timestamp")
        .location("user_filter", "(!(employeeType=retired))");
    setup.apply(&config);
    assert_has(&setup.sync(), &["created 4,", "timestamp, full read"]);

    setup.slapd.modify(
        &[
            replace(&user_dn("ann"), "cn", "Ann Lee-Smith"),
            rename(&user_dn("bob"), "uid=bob", Some(CONTRACTORS)),
            add(&user_dn("cara"), "employeeType", "retired"),
            delete(&user_dn("dan")),
        ]
        .concat(),
    );
    let out = setup.sync();
    assert_has(
        &out,
        &["timestamp, incremental", "updated 1, disabled 2, deleted 0"],
    );
    assert!(!out.contains("swept"), "{out}");
    assert_eq!(
        setup.user_names(),
        accounts(&[
            ("ann", true),
            ("bob", false),
            ("cara", false),
            ("dan", true)
        ])
    );

    // The sweep is due (0: every cycle): Dan's delete is found; no full read for it.
    setup.apply(&config.source("delete_sweep_minutes", 0));
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "timestamp, incremental, swept for deletes",
            "updated 0, disabled 1, deleted 0",
        ],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[
            ("ann", true),
            ("bob", false),
            ("cara", false),
            ("dan", false)
        ])
    );
}

/// A channel keyed by an attribute unique within its scope only: another entry holding a
/// user's value changes outside the scope, and the user stays.
#[test]
fn timestamps_keep_a_user_whose_key_another_entry_outside_the_scope_shares() {
    let setup = setup(&[
        Entry::ou("contractors"),
        person("ann", "Ann Lee").with("employeeNumber", "1"),
        person("bob", "Bob Stone").with("employeeNumber", "2"),
        person_in("contractors", "adm-ann", "Ann's admin account").with("employeeNumber", "1"),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .source("changed_users_algorithm", "timestamp")
            .source("entry_guid_attribute", "employeeNumber"),
    );
    assert!(setup.sync().contains("created 2,"));
    // Timestamps have a second's resolution and the last second is read again: a change two
    // seconds later moves the cursor past the second Ann was written in.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    setup
        .slapd
        .modify(&replace(&user_dn("bob"), "cn", "Bob Stone-Smith"));
    assert!(setup.sync().contains("updated 1,"));
    setup.slapd.modify(&replace(
        &format!("uid=adm-ann,{CONTRACTORS}"),
        "cn",
        "Ann Lee (admin)",
    ));
    let out = setup.sync();
    assert_has(
        &out,
        &["timestamp, incremental", "updated 0, disabled 0, deleted 0"],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("bob", true)])
    );

    // A hire without the key fails alone, with the reason, rather than going unseen.
    setup.slapd.add(&changes([person("cy", "Cy Young")]));
    setup.sync_expecting(3, &["timestamp, incremental", "failed 1 "]);
}

/// A user filter on memberOf: leaving the group changes no timestamp of the user, so every
/// incremental read sweeps, and the leaver leaves at the next cycle.
#[test]
fn timestamps_with_a_member_of_filter_sweep_at_every_cycle() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        group("app", &[&user_dn("ann"), &user_dn("bob")]),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .source("changed_users_algorithm", "timestamp")
            .location("user_filter", format!("(memberOf={})", group_dn("app"))),
    );
    assert!(setup.sync().contains("created 2,"));
    setup
        .slapd
        .modify(&remove(&group_dn("app"), "member", &user_dn("bob")));
    let out = setup.sync();
    assert_has(
        &out,
        &["timestamp, incremental, swept for deletes", "disabled 1,"],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("bob", false)])
    );
}

#[test]
fn a_failing_source_deprovisions_nobody_and_says_why() {
    let ws = Workspace::new();
    let slapd = slapd_with(&ws, &ann_and_bob());
    let target = ws.target("t0ken");
    ws.apply(&config(&slapd, &target.url, "delete"));
    assert!(ws.sync().contains("created 2,"));

    // The base DN disappears (an OU renamed by mistake): the cycle stops.
    slapd.modify(
        &[
            delete(&user_dn("ann")),
            delete(&user_dn("bob")),
            delete(PEOPLE),
        ]
        .concat(),
    );
    let err = ws.fail(&["sync", "app"]);
    assert!(
        err.contains("ou=people,dc=example,dc=com does not exist"),
        "{err}"
    );
    assert_eq!(user_names(&target).len(), 2);

    // The server is down: the cycle stops, naming the host.
    let url = slapd.url.clone();
    drop(slapd);
    let err = ws.fail(&["sync", "app"]);
    assert!(
        err.contains("no LDAP server answered") && err.contains(&url),
        "{err}"
    );
    assert_eq!(
        user_names(&target),
        accounts(&[("ann", true), ("bob", true)])
    );

    // The same, logged as JSON lines for a log pipeline; the bind password never appears.
    let output = ws.try_run(&["--log-format", "json", "-v", "sync", "app"]);
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
    let setup = setup(&[person("ann", "Ann Lee")]);
    let good = setup.config("disable");

    // Activation checks the data store: a wrong password saves nothing.
    let output = setup.try_apply(&good.clone().ldap("bind_password", "wrong-password"), &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_has(&err, &["nothing was saved", "invalid credentials"]);

    setup.apply(&good);
    let out = setup.run(&["check", "app"]);
    assert!(
        out.contains(&format!("answers at {}", setup.slapd.url)),
        "{out}"
    );
    assert!(out.contains("bind accepted, ou=people,dc=example,dc=com found, 1 of the first users read with their entryUUID; changes found with content-sync"), "{out}");

    check_names_what_is_wrong(&setup, &good);
    the_bind_password_is_encrypted_and_left_out_of_exports(&setup, &good);
}

/// A GUID attribute the users do not have, a base DN that does not exist and a scope group
/// that is none are named.
fn check_names_what_is_wrong(setup: &Setup, good: &Config) {
    let check_fails = |config: Config| {
        setup.apply_unchecked(&config);
        setup.fail(&["check", "app"])
    };
    let err = check_fails(
        good.clone()
            .source("entry_guid_attribute", "employeeNumber"),
    );
    assert!(err.contains("have no employeeNumber"), "{err}");
    let err = check_fails(
        good.clone()
            .location("base_dn", "ou=staff,dc=example,dc=com"),
    );
    assert!(
        err.contains("base_dn ou=staff,dc=example,dc=com does not exist"),
        "{err}"
    );
    // Activation names the data store as what failed, not the target, which answers.
    let refused = setup.try_apply(
        &good
            .clone()
            .location("base_dn", "ou=staff,dc=example,dc=com"),
        &[],
    );
    let err = stderr(&refused);
    assert!(!refused.status.success(), "{err}");
    assert_has(
        &err,
        &[
            "nothing was saved; activation needs a readable data store:",
            "base_dn ou=staff,dc=example,dc=com does not exist",
        ],
    );
    assert!(!err.contains("working target"), "{err}");
    let err = check_fails(
        good.clone()
            .location("user_group_dn", "cn=nobody,ou=groups,dc=example,dc=com"),
    );
    assert!(
        err.contains("user_group_dn cn=nobody,ou=groups,dc=example,dc=com is not a group"),
        "{err}"
    );
    // A cycle with that scope stops before deprovisioning anyone.
    assert_has(&setup.fail(&["sync", "app"]), &["nobody is deprovisioned"]);
}

/// The bind password is encrypted at rest and left out of exports; applying the export keeps
/// it.
fn the_bind_password_is_encrypted_and_left_out_of_exports(setup: &Setup, good: &Config) {
    setup.apply(good);
    assert!(!setup.data_holds(SYNC_PASSWORD));
    let exported = setup.run(&["export"]);
    assert!(!exported.contains(SYNC_PASSWORD), "{exported}");
    assert!(
        exported.contains("ldap.bind_password is stored encrypted and left out"),
        "{exported}"
    );
    let exported_file = setup.path("exported.toml");
    std::fs::write(&exported_file, &exported).unwrap();
    let out = setup.run(&["apply", "-f", &path_str(&exported_file)]);
    assert!(out.contains("data store \"directory\": unchanged"), "{out}");
    assert!(setup.sync().contains("created 1,"));
}

#[test]
fn expressions_create_only_masked_fields_and_mapping_test() {
    let ann = user_dn("zmuller");
    let setup = setup(&[Entry::person("zmuller")
        .with_base64("cn", "Zoë Müller")
        .with_base64("givenName", "Zoë")
        .with_base64("sn", "Müller")
        .with("employeeNumber", "1001")
        .with("description", "first-Passw0rd")]);
    let mapped = |user_name: &str| {
        setup
            .config("disable")
            .unmap("workEmail")
            .map_field("userName", Field::expression(user_name))
            .map_field(
                "displayName",
                Field::expression("Join(\" \", [givenName], [sn])"),
            )
            .map_field(
                "title",
                Field::expression("Switch([departmentNumber], \"Staff\", \"sales\", \"Sales\")"),
            )
            .map_field(
                "nickName",
                Field::expression("Left(uid, \"many\")").with("default_value", "n/a"),
            )
            .map_field(
                "externalId",
                Field::attribute("employeeNumber").with("create_only", true),
            )
            .map_field(
                "password",
                Field::attribute("description")
                    .with("create_only", true)
                    .with("masked", true),
            )
            .map_field(
                "locale",
                Field::expression("IIF(IsPresent(entryCSN), \"en-US\", \"none\")"),
            )
    };

    // A broken expression is refused when applied, with its position.
    let broken = mapped("ToLower(NormaliseDiacritics(Join(\".\", [givenName], [sn])))");
    let output = setup.try_apply(&broken, &[]);
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert_has(
        &err,
        &[
            "attribute_mapping.userName.expression",
            "unknown function NormaliseDiacritics at position 9",
        ],
    );

    setup.apply(&mapped(
        "ToLower(NormalizeDiacritics(Join(\".\", [givenName], [sn])))",
    ));
    mapping_test_shows_the_image_with_masked_fields_masked(&setup, &ann);
    create_only_fields_are_written_once(&setup, &ann);
}

fn mapping_test_shows_the_image_with_masked_fields_masked(setup: &Setup, ann: &str) {
    let out = setup.run(&["mapping", "test", "app", "--entry", ann]);
    assert_has(
        &out,
        &[
            "\"userName\": \"zoe.muller\"",
            "\"displayName\": \"Zoë Müller\"",
            "\"title\": \"Staff\"",
            "\"nickName\": \"n/a\"",
            // entryCSN is operational: read because the expression names it.
            "\"locale\": \"en-US\"",
            "\"password\": \"********\"",
        ],
    );
    assert!(!out.contains("first-Passw0rd"), "{out}");
    let plan = setup.run(&["plan", "app", "--json"]);
    assert!(
        plan.contains("zoe.muller") && !plan.contains("first-Passw0rd"),
        "{plan}"
    );
    let nobody = user_dn("nobody");
    assert_has(
        &setup.fail(&["mapping", "test", "app", "--entry", &nobody]),
        &["has no user uid=nobody"],
    );
}

fn create_only_fields_are_written_once(setup: &Setup, ann: &str) {
    let client = setup.target.client();
    assert!(setup.sync().contains("created 1,"));
    let user = client.user_by_name("zoe.muller").unwrap();
    assert_eq!(
        (user["externalId"].as_str(), user["title"].as_str()),
        (Some("1001"), Some("Staff"))
    );
    assert_eq!(user["locale"], "en-US");

    // Create-only fields are not updated; the others are.
    setup.slapd.modify(&format!(
        "dn: {ann}\nchangetype: modify\nreplace: employeeNumber\nemployeeNumber: 2002\n-\n\
         replace: description\ndescription: second-Passw0rd\n-\nadd: departmentNumber\ndepartmentNumber: sales\n"
    ));
    let out = setup.sync();
    assert!(out.contains("updated 1,"), "{out}");
    let user = client.user_by_name("zoe.muller").unwrap();
    assert_eq!(
        (user["externalId"].as_str(), user["title"].as_str()),
        (Some("1001"), Some("Sales"))
    );

    // Linking an existing target user (here after forgetting every record) writes no
    // create-only value: the target keeps its own.
    setup.run(&["channel", "reset", "staff", "--all-state"]);
    setup.slapd.modify(&replace(ann, "employeeNumber", "3003"));
    let out = setup.sync();
    assert!(out.contains("linked 1,"), "{out}");
    let user = client.user_by_name("zoe.muller").unwrap();
    assert_eq!(user["externalId"].as_str(), Some("1001"));
}

#[test]
fn watch_follows_the_live_change_feed_within_seconds() {
    let setup = setup(&[person("ann", "Ann Lee"), group("staff", &[&user_dn("ann")])]);
    setup.apply(&setup.config("disable").location("group_base_dn", GROUPS));

    // An hour between polls: whatever arrives sooner came through the live feed.
    let watch = Running::start(
        &setup.data,
        &["sync", "app", "--watch", "--interval", "3600"],
    );
    watch.read_until("following the directory's live change feed");
    assert!(setup.target.client().user_by_name("ann").is_some());

    setup.slapd.add(&changes([person("bob", "Bob Stone")]));
    setup
        .slapd
        .modify(&add(&group_dn("staff"), "member", &user_dn("bob")));
    let expected = expected_groups(&[("staff", &["ann", "bob"])]);
    wait_until(Duration::from_secs(20), "the change arrives", || {
        setup.groups() == expected
    });

    let (status, _) = watch.stop();
    assert!(status.success(), "{status:?}");
}

/// A feed reopened after the directory went away starts from then: what changed while it was
/// down is read by a cycle at once, not at the next scheduled one (an hour away here).
#[test]
fn a_live_feed_that_broke_reads_what_it_missed_when_it_reopens() {
    let mut setup = setup(&[person("ann", "Ann Lee")]);
    setup.apply(&setup.config("disable"));
    let watch = Running::start(
        &setup.data,
        &["sync", "app", "--watch", "--interval", "3600"],
    );
    watch.read_until("following the directory's live change feed");
    assert!(setup.target.client().user_by_name("ann").is_some());

    // The feed breaks and waits 5 s before it reopens; the change is made meanwhile.
    setup.slapd.restart();
    setup.slapd.add(&changes([person("bob", "Bob Stone")]));
    wait_until(Duration::from_secs(30), "the missed change arrives", || {
        setup.target.client().user_by_name("bob").is_some()
    });

    let (status, _) = watch.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn ldap_filters_scope_users_and_groups() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("cara", "Cara Diaz"),
        Entry::person("bob")
            .with("cn", "Bob Stone")
            .with("sn", "Stone")
            .with("employeeType", "contractor"),
        group(
            "staff",
            &[&user_dn("ann"), &user_dn("bob"), &user_dn("cara")],
        ),
        group("secret", &[&user_dn("ann")]),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .location("user_filter", "(!(employeeType=contractor))")
            .location("group_base_dn", GROUPS)
            .location("group_filter", "(!(cn=secret))"),
    );
    let out = setup.sync();
    assert!(out.contains("created 2,"), "{out}");
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("cara", true)])
    );
    assert_eq!(
        setup.groups(),
        expected_groups(&[("staff", &["ann", "cara"])])
    );

    // Cara becomes a contractor: she no longer matches the filter and leaves the scope.
    setup
        .slapd
        .modify(&add(&user_dn("cara"), "employeeType", "contractor"));
    let out = setup.sync();
    assert_has(
        &out,
        &["source read: content-sync, incremental", "disabled 1,"],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("cara", false)])
    );
    assert_eq!(setup.groups(), expected_groups(&[("staff", &["ann"])]));
}

#[test]
fn groups_scoped_by_nested_group_membership() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        group("team-b", &[&user_dn("ann")]),
        group("team-a", &[&user_dn("ann"), &group_dn("team-b")]),
        group("other", &[&user_dn("ann")]),
        group("provisioned", &[&group_dn("team-a")]),
    ]);
    let scoped = |nested: bool| {
        setup
            .config("disable")
            .location("group_base_dn", GROUPS)
            .location("group_group_dn", group_dn("provisioned"))
            .location("group_nested_search", nested)
    };
    setup.apply(&scoped(false));
    setup.sync();
    // Only the direct member group of "provisioned".
    assert_eq!(setup.groups(), expected_groups(&[("team-a", &["ann"])]));

    // Nested search reaches team-b through team-a.
    setup.apply(&scoped(true));
    setup.sync();
    assert_eq!(
        setup.groups(),
        expected_groups(&[("team-a", &["ann"]), ("team-b", &["ann"])])
    );

    // A group taken out of the scope group is deleted from the target.
    setup
        .slapd
        .modify(&remove(&group_dn("team-a"), "member", &group_dn("team-b")));
    let out = setup.sync();
    assert!(out.contains("deleted 1"), "{out}");
    assert_eq!(setup.groups(), expected_groups(&[("team-a", &["ann"])]));
}

#[test]
fn content_sync_keyed_by_another_attribute_still_finds_deletes() {
    let setup = setup(&[
        person("ann", "ann").with("employeeNumber", "1"),
        person("bob", "bob").with("employeeNumber", "2"),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .source("entry_guid_attribute", "employeeNumber"),
    );
    assert!(setup.sync().contains("created 2,"));
    // The server reports the delete by entryUUID, which is not this channel's key: a sweep of
    // the GUIDs in scope tells who left, in the same cycle.
    setup.slapd.modify(&delete(&user_dn("bob")));
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "source read: content-sync, incremental, swept for deletes",
            "disabled 1,",
        ],
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("bob", false)])
    );
    // Nothing left: no sweep (the next one is due in delete_sweep_minutes).
    setup
        .slapd
        .modify(&replace(&user_dn("ann"), "cn", "Ann Lee-Smith"));
    let out = setup.sync();
    assert_has(&out, &["content-sync, incremental", "updated 1,"]);
    assert!(!out.contains("swept"), "{out}");
}

/// The directory read as `dn`, a paged search of two entries a page.
fn in_pages_of_two(setup: &Setup, dn: &str, password: &str) -> DataStore {
    DataStore::ldap("directory", "openldap", &setup.slapd.url, dn, password)
        .ldap_setting("page_size", 2)
}

/// A full read of a directory in pages of two (paged search for timestamps, a refresh for
/// content synchronization) is compared with the records page by page: the first cycle creates
/// the group ahead and each page's Bulk request adds its members; a full reconciliation plans
/// the hire, the change and the leaver, counts the rest unchanged, and the group keeps its
/// unchanged members, found by DN.
#[test]
fn a_full_read_in_pages_plans_only_what_changed_and_finds_who_left() {
    for method in ["timestamp", "content-sync"] {
        let people = ["ann", "bob", "cara", "dan", "eli", "fay", "gus"];
        let mut entries: Vec<Entry> = people.iter().map(|uid| person(uid, uid)).collect();
        entries.push(group(
            "staff",
            &[
                &user_dn("ann"),
                &user_dn("bob"),
                &user_dn("cara"),
                &user_dn("dan"),
            ],
        ));
        let setup = setup(&entries);
        let store = in_pages_of_two(&setup, SYNC_DN, SYNC_PASSWORD);
        let config = Config::reading(store, &setup.target.url, "t0ken")
            .option("remove_user_action", "disable")
            .map("displayName", "cn")
            .source("changed_users_algorithm", method)
            .location("group_base_dn", GROUPS)
            .target("group_member_chunk_size", 1);
        setup.apply(&config);
        // `plan` plans the users page by page as it reads them, and the group with them: each
        // member waits for its user.
        assert_has(
            &setup.run(&["plan", "app"]),
            &[
                "create group staff: new in the source location (4 members wait for their user",
                &format!("data store read with {method}, full read"),
                "total: create 7, create group 1, unchanged 0",
            ],
        );
        let plan: Value = serde_json::from_str(&setup.run(&["plan", "app", "--json"])).unwrap();
        let plan = &plan["staff"];
        let creates = plan["operations"].as_array().unwrap();
        assert_eq!(creates.len(), 7, "{plan}");
        assert!(creates.iter().all(|o| o["type"] == "create"), "{plan}");
        let pending = plan["group_operations"][0]["pending_members"].as_array();
        assert_eq!(pending.map(Vec::len), Some(4), "{plan}");
        // The groups are read before the users: the discovery, a look-up and a Bulk request
        // creating staff empty, then a look-up and a Bulk request per page of two users, which
        // also adds the page's members of staff. The group stage has nothing left to send.
        assert_has(
            &setup.sync(),
            &[
                "created 7,",
                &format!("{method}, full read"),
                "groups: created 1, linked 0, updated 0,",
                "(11 requests;",
            ],
        );
        assert_eq!(
            setup.groups(),
            expected_groups(&[("staff", &["ann", "bob", "cara", "dan"])]),
            "{method}"
        );

        setup.slapd.add(&changes(&[person("hal", "hal")]));
        setup.slapd.modify(
            &[
                replace(&user_dn("ann"), "cn", "Ann Lee"),
                delete(&user_dn("bob")),
                add(&group_dn("staff"), "member", &user_dn("hal")),
            ]
            .concat(),
        );
        setup.run(&["channel", "reset", "staff"]);
        // The group is planned after the users, a batch of groups at a time: the leaver the
        // plan disables loses the membership, the new member waits for its user.
        assert_has(
            &setup.run(&["plan", "app"]),
            &[
                "disable bob: left the source location\nupdate group staff: 1 member(s) to remove (1 member waits for its user",
                "total: create 1, update 1, disable 1, update group 1, unchanged 5",
            ],
        );
        let plan: Value = serde_json::from_str(&setup.run(&["plan", "app", "--json"])).unwrap();
        let plan = &plan["staff"];
        let update = &plan["group_operations"][0];
        let bob = plan["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["user_name"] == "bob" && o["type"] == "disable");
        assert_eq!(
            update["remove"][0]["target_id"],
            bob.unwrap()["target_id"],
            "{plan}"
        );
        assert_eq!(update["pending_members"].as_array().map(Vec::len), Some(1));
        let out = setup.sync();
        assert_has(
            &out,
            &[
                &format!("{method}, full read"),
                "created 1, linked 0, updated 1, disabled 1, deleted 0",
                "(unchanged 5,",
                "groups: created 0, linked 0, updated 1,",
            ],
        );
        let mut expected: Vec<(&str, bool)> =
            people.iter().map(|uid| (*uid, *uid != "bob")).collect();
        expected.push(("hal", true));
        assert_eq!(setup.user_names(), accounts(&expected), "{method}");
        assert_eq!(
            setup.groups(),
            expected_groups(&[("staff", &["ann", "cara", "dan", "hal"])]),
            "{method}"
        );
        // Nothing changed since: the next full read plans nothing.
        setup.run(&["channel", "reset", "staff"]);
        assert_has(
            &setup.sync(),
            &[
                "created 0, linked 0, updated 0, disabled 0",
                "(unchanged 7,",
            ],
        );
    }
}

/// A first cycle creates its users as it reads them, a page at a time: a read that fails half
/// way (an account that may read four entries of a paged search) has created the users of the
/// pages it read and deprovisions nobody; the next cycle, reading everything, creates the rest
/// and no user twice.
#[test]
fn a_first_cycle_creates_users_as_it_reads_and_a_read_failing_half_way_loses_nothing() {
    let people = ["ann", "bob", "cara", "dan", "eli", "fay"];
    let entries: Vec<Entry> = people.iter().map(|uid| person(uid, uid)).collect();
    let setup = setup(&entries);
    let reading_as = |dn: &str, password: &str| {
        let store = in_pages_of_two(&setup, dn, password);
        Config::reading(store, &setup.target.url, "t0ken")
            .option("remove_user_action", "disable")
            .map("displayName", "cn")
            .source("changed_users_algorithm", "timestamp")
    };
    setup.apply(&reading_as(CAPPED_DN, CAPPED_PASSWORD));
    let err = setup.fail(&["sync", "app"]);
    assert!(err.contains("size limit exceeded"), "{err}");
    let created = setup.user_names();
    assert_eq!(created.len(), 4, "{created:?}");
    assert!(created.iter().all(|(_, active)| *active), "{created:?}");

    setup.apply(&reading_as(SYNC_DN, SYNC_PASSWORD));
    assert_has(
        &setup.sync(),
        &[
            "timestamp, full read",
            "created 2, linked 0, updated 0, disabled 0",
            "(unchanged 4,",
        ],
    );
    let everyone: Vec<(&str, bool)> = people.iter().map(|uid| (*uid, true)).collect();
    assert_eq!(setup.user_names(), accounts(&everyone));
}

/// Two entries on different pages of a first cycle map to one userName. The second one's page
/// is planned while the first one's may still be applied (its record not saved yet): it is left
/// to the plan all the same, which refuses it and names the first; one user has the name.
#[test]
fn two_entries_on_different_pages_with_one_user_name_make_one_user() {
    let people = [
        ("ann", "sam"),
        ("bob", "bob"),
        ("cara", "cara"),
        ("dan", "Sam"),
        ("eli", "eli"),
    ];
    let entries: Vec<Entry> = people.iter().map(|(uid, cn)| person(uid, cn)).collect();
    let setup = setup(&entries);
    let store = in_pages_of_two(&setup, SYNC_DN, SYNC_PASSWORD);
    let config = Config::reading(store, &setup.target.url, "t0ken")
        .map("userName", "cn")
        .source("changed_users_algorithm", "timestamp");
    setup.apply(&config);
    // `plan`, which plans each page as it reads it, says the same of the second entry.
    assert_has(
        &setup.run(&["plan", "app"]),
        &[
            "fail Sam: userName Sam is also the userName of uid=ann,",
            "total: create 4, fail 1, unchanged 0",
        ],
    );
    let (_, out) = setup.try_sync();
    assert_has(
        &out,
        &[
            "created 4, linked 0, updated 0, disabled 0, deleted 0, failed 1",
            "is also the userName of uid=",
        ],
    );
    let mut names: Vec<String> = setup
        .user_names()
        .into_iter()
        .map(|(name, _)| name.to_lowercase())
        .collect();
    names.sort();
    assert_eq!(names, ["bob", "cara", "eli", "sam"], "{out}");
}

/// A full read whose new user takes the userName an existing user is renamed to: the new user
/// is created as the read goes, so the rename fails naming it; `plan`, which plans new users as
/// it reads them, says so too.
#[test]
fn a_rename_to_the_user_name_of_a_user_new_in_the_same_full_read_fails_in_plan_and_cycle() {
    let setup = setup(&[person("ann", "ann"), person("bob", "bob")]);
    let store = in_pages_of_two(&setup, SYNC_DN, SYNC_PASSWORD);
    let config = Config::reading(store, &setup.target.url, "t0ken")
        .map("userName", "cn")
        .source("changed_users_algorithm", "timestamp");
    setup.apply(&config);
    assert_has(&setup.sync(), &["created 2,"]);
    setup.slapd.add(&changes(&[person("sam", "Sam")]));
    setup.slapd.modify(&replace(&user_dn("bob"), "cn", "SAM"));
    setup.run(&["channel", "reset", "staff"]);
    let failure = format!(
        "fail SAM: userName SAM is also the userName of {}",
        user_dn("sam")
    );
    assert_has(
        &setup.run(&["plan", "app"]),
        &[
            "create Sam: new in the source location",
            &failure,
            "total: create 1, fail 1, unchanged 1",
        ],
    );
    let (_, out) = setup.try_sync();
    assert_has(
        &out,
        &[
            "created 1, linked 0, updated 0, disabled 0, deleted 0, failed 1",
            &format!("is also the userName of {}", user_dn("sam")),
        ],
    );
}

#[test]
fn channel_reset_forces_a_full_read_and_all_state_relinks_without_duplicates() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        group("staff", &[&user_dn("ann"), &user_dn("bob")]),
    ]);
    setup.apply(&setup.config("disable").location("group_base_dn", GROUPS));
    assert!(setup.sync().contains("created 2,"));
    let table = setup.run(&["channels"]);
    assert_has(&table, &["DETECTION", "content-sync"]);
    assert!(
        setup
            .sync()
            .contains("source read: content-sync, incremental")
    );

    let out = setup.run(&["channel", "reset", "staff"]);
    assert!(
        out.contains("channel app/staff: sync state forgotten"),
        "{out}"
    );
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "source read: content-sync, full read",
            "created 0, linked 0, updated 0",
        ],
    );

    let out = setup.run(&["channel", "reset", "app/staff", "--all-state"]);
    assert!(
        out.contains("records, group records and sync state forgotten"),
        "{out}"
    );
    let out = setup.sync();
    assert_has(
        &out,
        &["created 0, linked 2,", "groups: created 0, linked 1"],
    );
    assert_eq!(setup.target.client().users().len(), 2);
    assert_eq!(
        setup.groups(),
        expected_groups(&[("staff", &["ann", "bob"])])
    );

    assert_has(
        &setup.fail(&["channel", "reset", "nobody"]),
        &["no channel nobody"],
    );
}

#[test]
fn serve_runs_every_channel_follows_changes_and_takes_new_configuration_without_restart() {
    let setup = setup(&[
        Entry::ou("contractors"),
        person("ann", "Ann Lee"),
        person_in("contractors", "eve", "Eve Smith"),
    ]);
    let one_channel = setup.config("disable");
    setup.apply(&one_channel);

    let service = Service::start(&setup.data);
    let serve = &service.process;
    serve.wait_for_output("app/staff: created 1,");
    serve.wait_for_output("following the directory's live change feed");

    // A hire reaches the target through the live feed, long before the hourly cycle.
    setup.slapd.add(&changes([person("bob", "Bob Stone")]));
    let client = setup.target.client();
    wait_until(Duration::from_secs(20), "bob via the live feed", || {
        client.user_by_name("bob").is_some()
    });

    // A second channel applied while the service runs starts without a restart.
    setup.apply(
        &one_channel
            .channel("contractors", "directory")
            .location("base_dn", CONTRACTORS)
            .map("userName", "uid"),
    );
    serve.wait_for_output("channel app/contractors: started");
    wait_until(Duration::from_secs(20), "eve from the new channel", || {
        client.user_by_name("eve").is_some()
    });

    metrics_and_health_are_served(&setup, &service);

    let (status, printed) = service.process.stop();
    assert!(status.success(), "{status:?}");
    assert!(printed.iter().any(|l| l.contains("stopped")), "{printed:?}");
    assert_eq!(client.users().len(), 3);
}

/// Metrics and health, on the address the service printed.
fn metrics_and_health_are_served(setup: &Setup, service: &Service) {
    let metrics_url = format!("{}/metrics", service.root);
    // /metrics needs an API token like the admin API; /healthz needs nothing.
    let refused = reqwest::blocking::get(&metrics_url).unwrap();
    assert_eq!(refused.status(), 401);
    let token = setup.api_token("prometheus");
    let metrics = reqwest::blocking::Client::new()
        .get(&metrics_url)
        .bearer_auth(token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for series in [
        "scimbridge_cycles_total{channel=\"app/staff\",outcome=\"completed\"}",
        "scimbridge_operations_total{channel=\"app/staff\",type=\"user-create\",success=\"true\"}",
        "scimbridge_last_successful_cycle_seconds{channel=\"app/contractors\"}",
    ] {
        assert!(metrics.contains(series), "{metrics}");
    }
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
    let health = reqwest::blocking::get(format!("{}/healthz", service.root)).unwrap();
    assert_eq!(health.status(), 200);
}

const GUARDED: [&str; 7] = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"];

#[test]
fn the_mass_change_guard_holds_deprovisions_until_approved() {
    let people: Vec<Entry> = GUARDED[..6]
        .iter()
        .map(|n| person(n, &format!("User {n}")))
        .collect();
    let setup = setup(&people);
    setup.apply(&setup.config("disable").guard("max_deprovisions", 2));
    assert!(setup.sync().contains("created 6,"));

    three_leavers_are_held_while_a_joiner_goes_ahead(&setup);
    approved_they_are_disabled(&setup);
    the_timeline_says_what_happened_and_why(&setup);

    // Discarding drops the held set; what the directory still says is held again.
    let leave: Vec<String> = GUARDED[3..6].iter().map(|n| delete(&user_dn(n))).collect();
    setup.slapd.modify(&leave.concat());
    assert!(setup.sync().contains("held 3"));
    let out = setup.run(&["discard", "app"]);
    assert!(out.contains("3 held operations discarded"), "{out}");
    assert!(setup.run(&["held", "app"]).contains("nothing held"));
    assert!(setup.sync().contains("held 3"));
}

/// Three leave at once (more than 2) while one joins: the joiner goes ahead, the leavers wait;
/// until an operator decides, every cycle holds them again and sends nothing twice.
fn three_leavers_are_held_while_a_joiner_goes_ahead(setup: &Setup) {
    let leave: Vec<String> = GUARDED[..3].iter().map(|n| delete(&user_dn(n))).collect();
    setup.slapd.modify(&leave.concat());
    setup.slapd.add(&changes([person("u7", "User u7")]));
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "created 1,",
            "disabled 0,",
            "held 3: see `scimbridge held app`",
        ],
    );
    let users = setup.target.client().users();
    assert_eq!(users.len(), 7);
    assert!(users.iter().all(|u| u["active"] == Value::Bool(true)));
    let held = setup.run(&["held", "app"]);
    assert_has(
        &held,
        &[
            "channel app/staff: 3 operations held",
            "disable u1",
            "held by the mass-change guard: 3 users would be deprovisioned at once, more than guard.max_deprovisions 2",
        ],
    );
    let plan = setup.run(&["plan", "app"]);
    assert!(plan.contains("held: disable u2"), "{plan}");

    let out = setup.sync();
    assert_has(
        &out,
        &["created 0, linked 0, updated 0, disabled 0", "held 3"],
    );
}

fn approved_they_are_disabled(setup: &Setup) {
    let out = setup.run(&["approve", "app"]);
    assert!(out.contains("3 operations approved"), "{out}");
    assert!(
        setup
            .run(&["held", "app"])
            .contains("[approved: applied at the next cycle]")
    );
    let out = setup.sync();
    assert!(
        out.contains("disabled 3,") && !out.contains("held"),
        "{out}"
    );
    assert!(setup.run(&["held", "app"]).contains("nothing held"));
    let users = setup.target.client().users();
    let disabled = users
        .iter()
        .filter(|u| u["active"] == Value::Bool(false))
        .count();
    assert_eq!(disabled, 3);
}

/// The user's timeline says what happened and why, cycle by cycle; so does the audit trail.
fn the_timeline_says_what_happened_and_why(setup: &Setup) {
    let history = setup.run(&["history", "u1"]);
    let kinds: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        kinds,
        ["user-create", "user-held", "user-held", "user-disable"],
        "{history}"
    );
    assert_has(
        &history,
        &[
            "user-held  not done  u1",
            "user-disable  ok  u1 (target id ",
        ],
    );
    let log = std::fs::read_to_string(setup.data.join("audit.log")).unwrap();
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
}

#[test]
fn sync_one_user_on_demand_with_a_dry_run() {
    let setup = setup(&ann_and_bob());
    setup.apply(&setup.config("disable"));
    let ann = user_dn("ann");
    let client = setup.target.client();

    let out = setup.run(&["sync", "app", "--user", &ann, "--dry-run"]);
    assert_has(
        &out,
        &[
            "channel app/staff: would create ann: new in the source location",
            "\"displayName\": \"Ann Lee\"",
        ],
    );
    assert!(client.users().is_empty());

    let out = setup.run(&["sync", "app", "--user", &ann]);
    assert!(
        out.contains("create ann: new in the source location: created"),
        "{out}"
    );
    assert_eq!(setup.user_names(), accounts(&[("ann", true)]));

    // By user name, once known; only that user moves.
    setup.slapd.modify(
        &[
            replace(&ann, "cn", "Ann Lee-Smith"),
            replace(&user_dn("bob"), "cn", "Robert Stone"),
        ]
        .concat(),
    );
    let out = setup.run(&["sync", "app", "--user", "ANN"]);
    assert_has(&out, &["update ann", ": updated"]);
    assert_eq!(
        client.user_by_name("ann").unwrap()["displayName"],
        "Ann Lee-Smith"
    );
    assert!(client.user_by_name("bob").is_none());

    setup.slapd.modify(&delete(&ann));
    let out = setup.run(&["sync", "app", "--user", "ann"]);
    assert_has(
        &out,
        &["disable ann: left the source location", ": disabled"],
    );
    assert_eq!(setup.user_names(), accounts(&[("ann", false)]));

    assert_has(
        &setup.fail(&["sync", "app", "--user", "nobody"]),
        &["reads or knows nobody"],
    );
    let history = setup.run(&["history", "ann"]);
    assert!(
        history.contains("cycle 0  user-create  ok  ann"),
        "{history}"
    );
}

#[test]
fn a_disable_that_failed_is_retried_though_the_server_reports_the_delete_once() {
    let ws = Workspace::new();
    let slapd = slapd_with(&ws, &ann_and_bob());
    let database = ws.path("target.db");
    // No retries: one failed request fails the record.
    let apply = |url: &str| {
        ws.apply_unchecked(&config(&slapd, url, "disable").target("max_retries", 0));
    };
    let first = TargetProcess::start(&database, "t0ken");
    apply(&first.url);
    assert!(ws.sync().contains("created 2,"));
    drop(first);

    slapd.modify(&delete(&user_dn("bob")));
    // The same target, refusing every change of a user (it answers everything else): the
    // disable fails, the cursor moves on.
    let target = TargetProcess::start(&database, "t0ken");
    let proxy = FaultProxy::start(
        &target.upstream(),
        &json!([
            {"method": "PATCH", "path": "/scim/v2/Users/", "count": -1, "fault": "status", "status": 500},
            {"method": "PUT", "path": "/scim/v2/Users/", "count": -1, "fault": "status", "status": 500},
        ]),
    );
    apply(&proxy.url("/scim/v2"));
    let output = ws.try_run(&["sync", "app"]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(stdout(&output).contains("failed 1"), "{}", stdout(&output));
    drop(proxy);
    drop(target);

    // The server will not report the delete again; the retry finds it by GUID.
    let target = TargetProcess::start(&database, "t0ken");
    apply(&target.url);
    let out = ws.sync();
    assert_has(
        &out,
        &["source read: content-sync, incremental", "disabled 1,"],
    );
    assert_eq!(
        user_names(&target),
        accounts(&[("ann", true), ("bob", false)])
    );
}

#[test]
fn the_guard_holds_updates_that_would_clear_an_attribute_on_many_users() {
    let engineer = |uid: &str| person(uid, uid).with("title", "Engineer");
    let setup = setup(&[engineer("u1"), engineer("u2"), engineer("u3")]);
    setup.apply(
        &setup
            .config("disable")
            .map("title", "title")
            .guard("max_blanked", 2),
    );
    assert!(setup.sync().contains("created 3,"));
    let client = setup.target.client();

    // An export gone wrong empties everyone's title: held, not sent.
    let cleared: Vec<String> = ["u1", "u2", "u3"]
        .iter()
        .map(|u| clear(&user_dn(u), "title"))
        .collect();
    setup.slapd.modify(&cleared.concat());
    let out = setup.sync();
    assert_has(&out, &["updated 0,", "held 3"]);
    assert!(client.users().iter().all(|u| u["title"] == "Engineer"));
    let held = setup.run(&["held", "app"]);
    assert!(held.contains("3 users would lose title at once"), "{held}");

    setup.run(&["approve", "app"]);
    let out = setup.sync();
    assert!(out.contains("updated 3,"), "{out}");
    assert!(client.users().iter().all(|u| u.get("title").is_none()));
}

#[test]
fn a_record_waiting_for_its_retry_is_reported_under_incremental_reads() {
    let setup = setup(&ann_and_bob());
    setup.apply(&setup.config("disable"));
    assert!(setup.sync().contains("created 2,"));

    // A hire without a uid: no userName, so the record fails, is retried by the next cycle,
    // fails again, and then waits for its backoff.
    setup.slapd.add(&changes([Entry::new(
        &format!("cn=Carl Nouid,{PEOPLE}"),
        "inetOrgPerson",
    )
    .with("cn", "Carl Nouid")
    .with("sn", "Nouid")]));
    for _ in 0..2 {
        let output = setup.try_run(&["sync", "app"]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(3), "{out}");
        assert_has(&out, &["failed 1 ", "content-sync, incremental"]);
    }
    // Within its backoff the incremental read does not return it: still a user missing from the
    // target, and every view says so.
    let output = setup.try_run(&["sync", "app"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(
        out.contains(
            "failed 0 (unchanged 2, skipped 0, blocked 0, failed earlier and waiting to be retried 1)"
        ),
        "{out}"
    );
    assert!(out.contains("content-sync, incremental"), "{out}");
    let plan = setup.run(&["plan", "app"]);
    assert!(plan.contains("failed, waiting to be retried: 1"), "{plan}");
    let channels = setup.run(&["channels"]);
    assert!(
        channels.contains("ok (0 failed, 1 waiting to be retried)"),
        "{channels}"
    );
}

/// An incremental cycle of a channel without groups reads the records it touches, not all of
/// them: still, a new entry never takes a target user another entry owns, whether it shares
/// that entry's userName or the target user was renamed by hand to its name, and the users it
/// did not read count as unchanged.
#[test]
fn an_incremental_cycle_read_by_key_keeps_one_target_user_per_entry() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        person("cid", "Cid Moss"),
    ]);
    setup.apply(&setup.config("disable"));
    assert!(setup.sync().contains("created 3,"));
    let client = setup.target.client();

    // Someone renames Ann's account in the target to the name of a hire to come.
    let ann = client.id_of("ann");
    client.patch_user(
        &ann,
        json!([{"op": "replace", "path": "userName", "value": "zed"}]),
    );
    // The hire, and an entry whose uid is Bob's in other letters.
    setup.slapd.add(&changes([
        person("zed", "Zed Ray"),
        Entry::new(&format!("cn=Robert Stone,{PEOPLE}"), "inetOrgPerson")
            .with("uid", "BOB")
            .with("cn", "Robert Stone")
            .with("sn", "Stone"),
    ]));
    let output = setup.try_run(&["sync", "app"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert_has(
        &out,
        &[
            "content-sync, incremental",
            "created 0,",
            "failed 2 (unchanged 3,",
            "belongs to another entry of this channel, uid=ann,ou=people,dc=example,dc=com",
            "userName BOB is also the userName of uid=bob,ou=people,dc=example,dc=com",
        ],
    );
    // Nobody's account moved: Ann's is still Ann's, Bob's is Bob's, and both are active.
    let user = client.user_by_name("zed").unwrap();
    assert_eq!(user["id"], Value::String(ann.clone()));
    assert_eq!(user["displayName"], "Ann Lee");
    assert_eq!(
        user_names(&setup.target),
        accounts(&[("bob", true), ("cid", true), ("zed", true)])
    );

    // A leaver and a change, read by key: the rest still count as unchanged.
    setup.slapd.modify(&delete(&user_dn("cid")));
    setup
        .slapd
        .modify(&replace(&user_dn("bob"), "cn", "Bob Stone-Hill"));
    let output = setup.try_run(&["sync", "app"]);
    let out = stdout(&output);
    assert_has(
        &out,
        &["content-sync, incremental", "updated 1, disabled 1,"],
    );
    assert!(out.contains("(unchanged 1,"), "{out}");
    assert_eq!(
        user_names(&setup.target),
        accounts(&[("bob", true), ("cid", false), ("zed", true)])
    );
}

/// A group that names a renamed user's old DN (a dangling value: the overlay's refint moved the
/// member to the new DN, and the group was edited back) does not have that user as a member: the
/// user was read at its new DN, and the DN its record still keeps is stale.
#[test]
fn a_group_naming_a_renamed_users_old_dn_does_not_have_the_user() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        group("staff", &[&user_dn("ann"), &user_dn("bob")]),
    ]);
    setup.apply(&setup.config("disable").location("group_base_dn", GROUPS));
    assert!(setup.sync().contains("created 2,"));
    assert_eq!(
        setup.groups(),
        expected_groups(&[("staff", &["ann", "bob"])])
    );

    setup
        .slapd
        .modify(&rename(&user_dn("ann"), "uid=anna", None));
    setup.slapd.modify(
        &[
            remove(&group_dn("staff"), "member", &user_dn("anna")),
            add(&group_dn("staff"), "member", &user_dn("ann")),
        ]
        .concat(),
    );
    let out = setup.sync();
    assert_has(&out, &["content-sync, incremental", "updated 1,"]);
    assert_eq!(setup.groups(), expected_groups(&[("staff", &["bob"])]));
}

#[test]
fn groups_are_read_whole_only_when_they_change_by_content_sync() {
    groups_read_incrementally("content-sync");
}

#[test]
fn groups_are_read_whole_only_when_they_change_by_timestamps() {
    groups_read_incrementally("timestamp");
}

/// Incremental cycles read each group's version and read whole only the groups that need it;
/// what the memberof overlay does silently (a deleted member taken out of its groups) and a
/// hire who joined a group before entering the directory still reach the target.
fn groups_read_incrementally(algorithm: &str) {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        person("cara", "Cara Diaz"),
        person("dan", "Dan Wu"),
        group("staff", &[&user_dn("ann"), &user_dn("bob")]),
        group("eng", &[&user_dn("cara")]),
        group("ops", &[&user_dn("dan")]),
        // Hal is a member before Hal's entry exists.
        group("later", &[&user_dn("hal"), SYNC_DN]),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .source("changed_users_algorithm", algorithm)
            // Timestamps see a deleted entry by a sweep only: one every cycle.
            .source("delete_sweep_minutes", 0)
            .location("group_base_dn", GROUPS),
    );
    let out = setup.sync();
    assert_has(&out, &["created 4,", &format!("{algorithm}, full read")]);
    let mut groups = vec![
        ("eng", vec!["cara"]),
        ("later", vec![]),
        ("ops", vec!["dan"]),
        ("staff", vec!["ann", "bob"]),
    ];
    let expected = |groups: &[(&str, Vec<&str>)]| {
        let groups: Vec<(&str, &[&str])> = groups.iter().map(|(g, m)| (*g, m.as_slice())).collect();
        expected_groups(&groups)
    };
    assert_eq!(setup.groups(), expected(&groups));
    // A cycle reads incrementally, reads `whole` groups whole of `of`, and leaves `groups`.
    let cycle = |whole: usize, of: usize, groups: &[(&str, Vec<&str>)], summary: &str| {
        let out = setup.sync();
        assert_has(
            &out,
            &[
                &format!("{algorithm}, incremental, {whole} of {of} groups read whole"),
                summary,
            ],
        );
        assert_eq!(setup.groups(), expected(groups), "{out}");
    };
    // Nothing changed: no group is read whole.
    cycle(0, 4, &groups, "created 0, linked 0, updated 0");

    // A member joins one group: that group alone is read, and one member added.
    setup
        .slapd
        .modify(&add(&group_dn("staff"), "member", &user_dn("cara")));
    groups[3].1 = vec!["ann", "bob", "cara"];
    cycle(1, 4, &groups, "groups: created 0, linked 0, updated 1,");

    // Dan's entry is deleted: the overlay takes Dan out of ops without changing ops' version,
    // and the target's ops loses Dan all the same (Dan's user is only disabled), with no
    // group read whole.
    setup.slapd.modify(&delete(&user_dn("dan")));
    groups[2].1 = vec![];
    cycle(0, 4, &groups, "disabled 1,");

    // Hal's entry appears: the group Hal was put in before is read, and Hal added to it.
    setup.slapd.add(&changes([person("hal", "Hal Ito")]));
    groups[1].1 = vec!["hal"];
    cycle(1, 4, &groups, "created 1,");

    // A leaver deprovisioned on demand, with no group stage: the next cycle reads their groups
    // whole and takes them out (by timestamps, no later read would name Bob again).
    setup.slapd.modify(&delete(&user_dn("bob")));
    let out = setup.run(&["sync", "app", "--user", &user_dn("bob")]);
    assert!(out.contains("disable"), "{out}");
    groups[3].1 = vec!["ann", "cara"];
    cycle(1, 4, &groups, "disabled 0,");

    // A group deleted in the directory is deleted in the target.
    setup.slapd.modify(&delete(&group_dn("eng")));
    groups.remove(0);
    cycle(
        0,
        3,
        &groups,
        "groups: created 0, linked 0, updated 0, deleted 1,",
    );
    cycle(0, 3, &groups, "created 0, linked 0, updated 0");

    // Ivy is put in ops before her entry exists (ops is read, Ivy is nobody yet); her entry
    // appears and an operator creates her on demand, with no group stage: the next cycle
    // reads the groups whole, and Ivy joins ops.
    setup
        .slapd
        .modify(&add(&group_dn("ops"), "member", &user_dn("ivy")));
    cycle(1, 3, &groups, "created 0, linked 0, updated 0");
    setup.slapd.add(&changes([person("ivy", "Ivy Holm")]));
    let out = setup.run(&["sync", "app", "--user", &user_dn("ivy")]);
    assert!(out.contains("create"), "{out}");
    groups[1].1 = vec!["ivy"];
    let out = setup.sync();
    assert_has(&out, &["groups: created 0, linked 0, updated 1,"]);
    assert_eq!(setup.groups(), expected(&groups), "{out}");
    cycle(0, 3, &groups, "created 0, linked 0, updated 0");
}

/// A user who left the scope (out of the filter: disabled, out of its groups, whose versions
/// did not move) and whom an operator brings back with `sync --user` (no group stage) is in
/// its groups again after the next cycle.
#[test]
fn a_user_brought_back_on_demand_rejoins_its_groups() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        group("staff", &[&user_dn("ann"), &user_dn("bob")]),
    ]);
    setup.apply(
        &setup
            .config("disable")
            .location("user_filter", "(!(employeeType=retired))")
            .location("group_base_dn", GROUPS),
    );
    assert!(setup.sync().contains("created 2,"));
    setup
        .slapd
        .modify(&add(&user_dn("bob"), "employeeType", "retired"));
    assert_has(&setup.sync(), &["disabled 1,"]);
    assert_eq!(setup.groups(), expected_groups(&[("staff", &["ann"])]));

    setup.slapd.modify(&clear(&user_dn("bob"), "employeeType"));
    let out = setup.run(&["sync", "app", "--user", &user_dn("bob")]);
    assert!(out.contains("update"), "{out}");
    setup.sync();
    assert_eq!(
        setup.groups(),
        expected_groups(&[("staff", &["ann", "bob"])])
    );
    assert_eq!(
        setup.user_names(),
        accounts(&[("ann", true), ("bob", true)])
    );
}

/// A member whose user the channel keeps out of the target (disabled in the directory, so
/// deleted from the target under `remove_user_action = delete`, as Active Directory keeps
/// disabled accounts in their groups) leaves its group's version alone: the group is not read
/// whole at every cycle for it. Once the user is enabled, its groups are read whole and it
/// joins them again.
#[test]
fn a_member_kept_out_of_the_target_does_not_make_its_group_read_at_every_cycle() {
    let setup = setup(&[
        person("ann", "Ann Lee"),
        person("bob", "Bob Stone"),
        group("staff", &[&user_dn("ann"), &user_dn("bob")]),
        group("eng", &[&user_dn("ann")]),
    ]);
    setup.apply(
        &setup
            .config("delete")
            .source("account_status_algorithm", "flag")
            .source("account_status_attribute", "employeeType")
            .source("flag_comparison_value", "suspended")
            .source("flag_comparison_status", false)
            .location("group_base_dn", GROUPS),
    );
    let out = setup.sync();
    assert_has(&out, &["created 2,", "content-sync, full read"]);
    setup
        .slapd
        .modify(&add(&user_dn("bob"), "employeeType", "suspended"));
    let out = setup.sync();
    assert_has(&out, &["deleted 1,"]);
    assert_eq!(setup.user_names(), accounts(&[("ann", true)]));
    for _ in 0..2 {
        let out = setup.sync();
        assert_has(
            &out,
            &["content-sync, incremental, 0 of 2 groups read whole"],
        );
    }
    assert_eq!(
        setup.groups(),
        expected_groups(&[("eng", &["ann"]), ("staff", &["ann"])])
    );

    // Bob is enabled: his groups are read whole and he joins staff again.
    setup.slapd.modify(&clear(&user_dn("bob"), "employeeType"));
    let out = setup.sync();
    assert_has(
        &out,
        &[
            "content-sync, incremental, 1 of 2 groups read whole",
            "created 1,",
        ],
    );
    assert_eq!(
        setup.groups(),
        expected_groups(&[("eng", &["ann"]), ("staff", &["ann", "bob"])])
    );
    let out = setup.sync();
    assert_has(
        &out,
        &["content-sync, incremental, 0 of 2 groups read whole"],
    );
}
