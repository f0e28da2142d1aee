//! `scimbridge quickstart` end to end: the sample directory reaches the bundled target, a second
//! run changes nothing, edits of the directory file are provisioned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use scimbridge_ldap::RawEntry;
use serde_json::Value;

fn text(record: &RawEntry, name: &str) -> String {
    record.first_text(name).unwrap_or_default().to_owned()
}

#[test]
fn quickstart_once_provisions_the_sample_then_changes_nothing_then_follows_edits() {
    let ws = Workspace::new();
    let people = people(SAMPLE);
    assert!(people.len() >= 990, "the sample has about 1,000 people");
    the_first_run_creates_exactly_the_sample(&ws, &people);

    // Second run: nothing to do.
    let out = ws.run(&["quickstart", "--once"]);
    assert!(
        out.contains(&format!(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged {}",
            people.len()
        )),
        "{out}"
    );

    an_edit_and_a_leaver_are_provisioned(&ws, &people);

    // The state store agrees; the connection is left inactive, its target gone with quickstart.
    let (table, cells) = ws.channels_row("quickstart");
    assert_eq!(
        &cells[..6],
        [
            "quickstart",
            "people",
            "inactive",
            "(connection)",
            &people.len().to_string(),
            "0"
        ],
        "{table}"
    );
}

/// Exactly the sample's people are created, with every creation in the audit trail, the groups'
/// too.
fn the_first_run_creates_exactly_the_sample(ws: &Workspace, people: &[RawEntry]) {
    let out = ws.run(&["quickstart", "--once"]);
    let expected = format!(
        "quickstart/people: created {}, linked 0, updated 0, disabled 0, deleted 0, failed 0",
        people.len()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(out.contains("groups: created 20,"), "{out}");
    let audit = std::fs::read_to_string(ws.data.join("audit.log")).unwrap();
    let kinds: Vec<String> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["event_type"].to_string())
        .collect();
    let created = |kind: &str| {
        kinds
            .iter()
            .filter(|k| *k == &format!("\"{kind}\""))
            .count()
    };
    assert_eq!(created("user-create"), people.len());
    assert_eq!(created("group-create"), 20, "{kinds:?}");
    let history = ws.run(&["history", "engineering"]);
    assert!(history.contains("group-create"), "{history}");

    let target = TargetProcess::start(&ws.data.join("target.db"), &read_token(&ws.data));
    let users = target.client().users();
    assert_eq!(users.len(), people.len());
    let by_name: BTreeMap<String, &Value> = users
        .iter()
        .map(|u| (u["userName"].as_str().unwrap().to_owned(), u))
        .collect();
    for person in people {
        let user = by_name
            .get(&text(person, "uid"))
            .unwrap_or_else(|| panic!("{} missing", person.dn));
        assert_eq!(user["externalId"], text(person, "entryUUID"));
        assert_eq!(user["displayName"], text(person, "displayName"));
        assert_eq!(user["name"]["givenName"], text(person, "givenName"));
        assert_eq!(user["name"]["familyName"], text(person, "sn"));
        assert_eq!(user["emails"][0]["value"], text(person, "mail"));
        assert_eq!(user["title"], text(person, "title"));
        assert_eq!(user["active"], true);
    }
    let non_ascii = users
        .iter()
        .filter(|u| !u["displayName"].as_str().unwrap().is_ascii())
        .count();
    assert!(
        non_ascii >= 100,
        "non-ASCII names arrive intact ({non_ascii})"
    );
}

/// One title changes, one person leaves: updated, and disabled (not deleted, by default).
fn an_edit_and_a_leaver_are_provisioned(ws: &Workspace, people: &[RawEntry]) {
    let (mover, leaver) = (&people[10], &people[20]);
    let ldif = ws.data.join("directory.ldif");
    let original = std::fs::read_to_string(&ldif).unwrap();
    let edited = with_value(
        &without_entry(&original, &leaver.dn),
        &mover.dn,
        "title",
        "Chief Quickstart Tester",
    );
    std::fs::write(&ldif, edited).unwrap();
    let out = ws.run(&["quickstart", "--once"]);
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 1, deleted 0, failed 0"),
        "{out}"
    );

    let target = TargetProcess::start(&ws.data.join("target.db"), &read_token(&ws.data));
    let client = target.client();
    assert_eq!(
        client.user_by_name(&text(mover, "uid")).unwrap()["title"],
        "Chief Quickstart Tester"
    );
    assert_eq!(
        client.user_by_name(&text(leaver, "uid")).unwrap()["active"],
        false
    );
    assert_eq!(
        client.users().len(),
        people.len(),
        "a leaver is disabled, not deleted, by default"
    );
}

#[test]
fn quickstart_keeps_running_and_provisions_each_saved_edit() {
    let ws = Workspace::new();
    let quickstart = Running::start(&ws.data, &["quickstart"]);
    let target_line = quickstart.read_until("Target:");
    let url = target_line
        .strip_prefix("Target:")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no target URL in {target_line:?}"))
        .to_owned();
    quickstart.read_until("Watching");
    assert!(
        quickstart.printed("What to try next"),
        "{}",
        quickstart.output().join("\n")
    );
    let client = ScimReader {
        url,
        token: read_token(&ws.data),
    };

    let person = &people(SAMPLE)[3];
    let uid = text(person, "uid");
    let ldif = ws.data.join("directory.ldif");
    let original = std::fs::read_to_string(&ldif).unwrap();
    std::fs::write(
        &ldif,
        with_value(&original, &person.dn, "title", "Live Edit Engineer"),
    )
    .unwrap();

    // The documented promise is "within two seconds"; the bound here only keeps a broken build
    // from hanging (latency is measured by the benchmark, not by tests).
    wait_until(
        Duration::from_secs(30),
        "the edit reaches the target",
        || client.user_by_name(&uid).unwrap()["title"] == "Live Edit Engineer",
    );
    let update_line = quickstart.next_line(Duration::from_secs(30));
    assert!(update_line.contains("updated 1"), "{update_line}");

    let (status, printed) = quickstart.stop_with("INT");
    assert!(status.success());
    assert!(printed.iter().any(|l| l == "Stopped."), "{printed:?}");
}
