//! `apply`, `sync`, `plan`, `channels` and `export` against the bundled target run as a separate
//! process: options, deletes, failures that stay alone, secrets that stay secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

/// Alice, Bob, Carol (her name in base64, as LDIF writes text that is not ASCII) and an entry
/// without a uid, so without a user name.
fn directory() -> String {
    ldif([
        Entry::ou("people"),
        Entry::person("alice")
            .with("cn", "Alice Smith")
            .with("sn", "Smith")
            .with("givenName", "Alice")
            .with("mail", "alice@example.com")
            .with("title", "Engineer")
            .with("entryUUID", "00000000-0000-0000-0000-00000000000a"),
        Entry::person("bob")
            .with("cn", "Bob Jones")
            .with("sn", "Jones")
            .with("mail", "bob@example.com")
            .with("entryUUID", "00000000-0000-0000-0000-00000000000b"),
        Entry::person("carol")
            .with_base64("cn", "Carol Müller")
            .with_base64("sn", "Müller")
            .with("mail", "carol@example.com")
            .with("entryUUID", "00000000-0000-0000-0000-00000000000c"),
        Entry::new(&format!("cn=no-uid,{PEOPLE}"), "inetOrgPerson")
            .with("cn", "no-uid")
            .with("sn", "Nobody")
            .with("entryUUID", "00000000-0000-0000-0000-00000000000d"),
    ])
}

/// The directory with its entry without a uid given one: dave.
fn fixed(directory: &str) -> String {
    directory.replace("cn: no-uid\n", "cn: no-uid\nuid: dave\n")
}

/// The people of [`directory`] into the target at `url` (its base URL written with a trailing
/// slash), leavers handled by `action`.
fn config(ws: &Workspace, url: &str, token: &str, action: &str) -> Config {
    Config::ldif(&ws.ldif, &format!("{url}/"), token)
        .option("remove_user_action", action)
        .map("externalId", "entryUUID")
        .map("familyName", "sn")
        .map("givenName", "givenName")
        .map("displayName", "cn")
        .map("workEmail", "mail")
        .map_field(
            "title",
            Field::attribute("title").with("default_value", "Staff"),
        )
        .map("active", "employeeType")
}

/// A workspace holding [`directory`] and a bundled target taking `token`.
fn setup(token: &str) -> (Workspace, TargetProcess) {
    let ws = Workspace::new();
    ws.write_ldif(&directory());
    let target = ws.target(token);
    (ws, target)
}

#[test]
fn sync_with_delete_action_and_a_bad_record() {
    let (ws, target) = setup("t0ken-for-sync");
    let ws = ws.with_env("APP_TOKEN", "t0ken-for-sync");
    let config = config(&ws, &target.url, "env:APP_TOKEN", "delete");
    applied_once_then_unchanged(&ws, &config);
    the_plan_writes_nothing_and_says_why(&ws, &target);
    the_entry_without_a_user_name_fails_alone(&ws, &target);
    leavers_are_deleted_and_a_cleared_title_falls_back_to_its_default(&ws, &target);
    a_user_enabled_again_is_created_anew(&ws, &target);
}

fn applied_once_then_unchanged(ws: &Workspace, config: &Config) {
    let out = ws.apply(config);
    assert_has(
        &out,
        &[
            "data store \"corp\": created",
            "connection \"app\" (active, 1 channel): created",
        ],
    );
    let out = ws.apply(config);
    assert!(
        out.contains("connection \"app\" (active, 1 channel): unchanged"),
        "{out}"
    );
}

fn the_plan_writes_nothing_and_says_why(ws: &Workspace, target: &TargetProcess) {
    let out = ws.run(&["plan", "app"]);
    assert!(
        out.contains("create alice: new in the source location"),
        "{out}"
    );
    assert!(
        out.contains(
            "fail cn=no-uid,ou=people,dc=example,dc=com: required field userName has no value"
        ),
        "{out}"
    );
    assert!(target.client().users().is_empty());
}

/// Exit code 3 says records failed.
fn the_entry_without_a_user_name_fails_alone(ws: &Workspace, target: &TargetProcess) {
    let output = ws.try_run(&["sync", "app"]);
    assert_eq!(output.status.code(), Some(3), "{}", both(&output));
    let out = stdout(&output);
    assert_has(
        &out,
        &[
            "app/staff: created 3, linked 0, updated 0, disabled 0, deleted 0, failed 1",
            "failed cn=no-uid,ou=people,dc=example,dc=com: required field userName",
        ],
    );
    let carol = target.client().user_by_name("carol").unwrap();
    assert_eq!(carol["displayName"], "Carol Müller");
    assert_eq!(carol["title"], "Staff", "default value");
    assert!(carol["name"].get("givenName").is_none());
    let (table, row) = ws.channels_row("app");
    assert_eq!(
        &row[..6],
        ["app", "staff", "active", "3", "1", "0"],
        "{table}"
    );
}

/// Bob leaves, Carol is disabled in the directory, Alice's title is cleared, the bad entry is
/// fixed.
fn leavers_are_deleted_and_a_cleared_title_falls_back_to_its_default(
    ws: &Workspace,
    target: &TargetProcess,
) {
    let edited = without_entry(&directory(), &user_dn("bob"))
        .replace("title: Engineer\n", "")
        .replace("uid: carol\n", "uid: carol\nemployeeType: disabled\n");
    ws.write_ldif(&fixed(&edited));
    let out = ws.sync();
    assert!(
        out.contains("created 1, linked 0, updated 1, disabled 0, deleted 2, failed 0"),
        "{out}"
    );
    let client = target.client();
    assert!(client.user_by_name("bob").is_none());
    assert!(client.user_by_name("carol").is_none());
    assert_eq!(
        client.user_by_name("alice").unwrap()["title"],
        "Staff",
        "cleared title falls back to the default"
    );
    assert!(client.user_by_name("dave").is_some());
}

fn a_user_enabled_again_is_created_anew(ws: &Workspace, target: &TargetProcess) {
    ws.write_ldif(&fixed(&directory()).replace("uid=bob", "uid=bob2"));
    let out = ws.sync();
    assert!(
        out.contains("created 2, linked 0, updated 1"),
        "bob came back under a new DN, carol re-created: {out}"
    );
    assert_eq!(
        target.client().user_by_name("carol").unwrap()["active"],
        true
    );
    let out = ws.sync();
    assert!(
        out.contains(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 4"
        ),
        "{out}"
    );
}

#[test]
fn literal_secrets_are_encrypted_and_never_exported() {
    let secret = "literal-T0ken-that-must-not-leak";
    let (ws, target) = setup(secret);
    ws.apply(&config(&ws, &target.url, secret, "disable"));

    let exported = ws.run(&["export"]);
    assert!(!exported.contains(secret), "{exported}");
    assert!(
        exported.contains("target.access_token is stored encrypted and left out"),
        "{exported}"
    );
    assert!(!ws.data_holds(secret));

    // Applying the export keeps the stored secret: the next sync still authenticates.
    let exported_file = ws.path("exported.toml");
    std::fs::write(&exported_file, &exported).unwrap();
    let out = ws.run(&["apply", "-f", &path_str(&exported_file)]);
    assert!(
        out.contains("connection \"app\" (active, 1 channel): unchanged"),
        "{out}"
    );
    let output = ws.try_run(&["sync", "app"]);
    assert!(stdout(&output).contains("created 3"), "{}", both(&output));
    assert!(!both(&output).contains(secret));

    // A wrong token is refused at activation, precisely, and nothing is saved.
    let wrong = config(&ws, &target.url, "wrong-token", "disable");
    let output = ws.try_apply(&wrong, &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_has(
        &err,
        &[
            "target check failed: the target refused the credentials",
            "HTTP 401",
            "nothing was saved",
        ],
    );
    let out = ws.run(&["check", "app"]);
    assert!(
        out.contains("authentication: oauth2-bearer accepted"),
        "{out}"
    );

    // Forced past the check, a wrong token stops the cycle as a target that is down does: the
    // probe is refused too, so no record is counted failed for it, and nothing else breaks.
    ws.apply_unchecked(&wrong);
    let output = ws.try_run(&["check", "app"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the target refused the credentials"),
        "{}",
        stderr(&output)
    );
    ws.write_ldif(&directory().replace("title: Engineer", "title: Lead"));
    let output = ws.try_run(&["sync", "app"]);
    assert_eq!(output.status.code(), Some(4), "{}", both(&output));
    assert_has(
        &stdout(&output),
        &[
            "failed 0 (",
            "target unreachable: the target refused the credentials",
            "HTTP 401",
        ],
    );
}

#[test]
fn configuration_errors_name_the_problem() {
    let ws = Workspace::new();
    let nowhere = config(&ws, "http://127.0.0.1:9/scim/v2", "x", "disable");

    // A misspelled key, named with its line.
    let text = nowhere
        .toml()
        .replace("remove_user_action", "remove_user_acton");
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("remove_user_acton"))
        .unwrap();
    std::fs::write(&ws.cfg, text).unwrap();
    let output = ws.try_run(&["apply", "-f", &path_str(&ws.cfg)]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("remove_user_acton") && err.contains(&format!("line {line}")),
        "{err}"
    );

    let to_hr = nowhere.channel_setting("data_store", "hr");
    let err = stderr(&ws.try_apply(&to_hr, &[]));
    assert!(err.contains("data store \"hr\" is not defined"), "{err}");

    let output = ws.try_run(&["sync", "nope"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn an_unreadable_data_store_stops_the_cycle_without_deprovisioning_anybody() {
    let (ws, target) = setup("tok");
    ws.apply(&config(&ws, &target.url, "tok", "delete"));
    let _ = ws.try_sync();
    ws.write_ldif(&format!(
        "{}\ndn: uid=x,ou=people,dc=example,dc=com\nphoto:< file:///etc/passwd\n",
        directory()
    ));
    let output = ws.try_run(&["sync", "app"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_has(&err, &["directory.ldif:", "not supported"]);
    ws.write_ldif(&ldif([Entry::ou("people")]));
    let err = stderr(&ws.try_run(&["sync", "app"]));
    assert!(err.contains("refusing to deprovision everyone"), "{err}");
    assert_eq!(target.client().users().len(), 3);
}

#[test]
fn a_nul_character_never_reaches_the_target() {
    let (ws, target) = setup("t0ken");
    // Bob's title is "Chief\0Officer" in base64, which LDIF allows.
    let directory = directory().replace(
        "mail: bob@example.com\n",
        "mail: bob@example.com\ntitle:: Q2hpZWYAT2ZmaWNlcg==\n",
    );
    ws.write_ldif(&directory);
    let reader = target.client();
    ws.apply(&config(&ws, &target.url, "t0ken", "delete"));

    // Bob fails alone, with the attribute named; the others are provisioned.
    let output = ws.try_run(&["sync", "app"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{}", both(&output));
    assert!(
        out.contains("created 2, linked 0, updated 0, disabled 0, deleted 0, failed 2"),
        "{out}"
    );
    assert!(
        out.contains(
            "failed uid=bob,ou=people,dc=example,dc=com: attribute title has a value with a NUL character"
        ),
        "{out}"
    );
    assert!(reader.user_by_name("bob").is_none());
    assert_eq!(reader.users().len(), 2);

    // A NUL written plainly is a malformed file: the cycle stops at its line, and nobody is
    // deprovisioned or changed.
    ws.write_ldif(&directory.replace("title: Engineer", "title: Engi\0neer"));
    let output = ws.try_run(&["sync", "app"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(
        err.contains(
            "directory.ldif:14: plain value of attribute title contains a NUL character, which LDIF allows only in base64 values; use base64 (\"title:: ...\") instead"
        ),
        "{err}"
    );
    assert_eq!(reader.users().len(), 2);
    assert_eq!(reader.user_by_name("alice").unwrap()["title"], "Engineer");
}

#[test]
fn a_user_deleted_in_the_target_is_created_again_or_reported() {
    let (ws, target) = setup("t0ken");
    let reader = target.client();
    let config = config(&ws, &target.url, "t0ken", "disable");
    ws.apply(&config);
    let out = stdout(&ws.try_run(&["sync", "app"]));
    assert!(out.contains("created 3"), "{out}");
    let old_alice = reader.delete_user("alice");
    let old_bob = reader.delete_user("bob");

    // alice changes: her update finds her gone and she is created again in the same cycle.
    // bob leaves: disabling a user that is already gone is done.
    let edited =
        without_entry(&directory(), &user_dn("bob")).replace("title: Engineer", "title: Lead");
    ws.write_ldif(&edited);
    let output = ws.try_run(&["sync", "app"]);
    let out = stdout(&output);
    assert!(output.status.code() == Some(3), "{out}"); // no-uid still fails, alone
    assert!(
        out.contains("created 1, linked 0, updated 0, disabled 1"),
        "{out}"
    );
    let alice = reader.user_by_name("alice").unwrap();
    assert_ne!(alice["id"].as_str().unwrap(), old_alice);
    assert_eq!(alice["title"], "Lead");
    assert!(
        reader.user_by_name("bob").is_none(),
        "bob {old_bob} came back"
    );

    // With user create off, the same situation is a failure that says why.
    reader.delete_user("alice");
    ws.apply(&config.option("user_create", false));
    ws.write_ldif(&edited.replace("title: Lead", "title: Chief"));
    let out = stdout(&ws.try_run(&["sync", "app"]));
    assert!(
        out.contains("no longer exists, and user create is off"),
        "{out}"
    );
}

#[test]
fn existing_users_are_found_by_work_email_or_a_filter_expression() {
    let (ws, target) = setup("t0ken");
    let reader = target.client();
    // Made by hand in the target, under other user names: only the email or the externalId
    // tells they are alice and bob.
    reader.create_user(
        "asmith",
        json!({"emails": [{"value": "alice@example.com", "type": "work"}]}),
    );
    reader.create_user(
        "bjones",
        json!({"externalId": "00000000-0000-0000-0000-00000000000b"}),
    );
    let by_email =
        config(&ws, &target.url, "t0ken", "disable").target("unique_user_identifier", "workEmail");

    // workEmail: alice is linked through her email; everyone else is created.
    let first = ws.with_data_dir("by-email");
    first.apply(&by_email);
    let out = stdout(&first.try_run(&["sync", "app"]));
    assert!(out.contains("created 2, linked 1,"), "{out}");
    let alice = reader
        .get("/Users", &[("filter", "emails eq \"alice@example.com\"")])
        .1;
    assert_eq!(alice["totalResults"], 1, "{alice}");
    assert_eq!(
        alice["Resources"][0]["userName"], "alice",
        "linked and renamed by the update"
    );

    // A filter expression (a value path here), with a new data directory: everyone is found
    // and linked, nobody is created twice.
    let second = ws.with_data_dir("by-filter");
    let with_filter = |filter: &str| by_email.clone().target("filter_expression", filter);
    let output = second.try_apply(&with_filter("emails eq \"%s\" or userName eq \"%s\""), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("must contain %s exactly once"),
        "{}",
        stderr(&output)
    );
    second.apply(&with_filter("emails[type eq \"work\" and value eq \"%s\"]"));
    let out = stdout(&second.try_run(&["sync", "app"]));
    // Everyone exists by now (alice, bob and carol from the first data directory).
    assert!(out.contains("created 0, linked 3,"), "{out}");
    assert_eq!(
        reader.users().len(),
        4,
        "bjones stays, nobody is duplicated"
    );
}
