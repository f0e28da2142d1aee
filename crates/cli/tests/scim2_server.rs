//! The same provisioning against PyPI's scim2-server: a SCIM implementation we did not write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scimbridge_ldap::RawEntry;
use serde_json::json;

/// The people of the sample into scim2-server, leavers handled by `action`.
fn config(ws: &Workspace, url: &str, action: &str) -> Config {
    Config::new()
        .data_store(DataStore::ldif("sample", &ws.ldif))
        .connection("python-scim", url)
        .bearer("env:SCIM2_TOKEN")
        .option("remove_user_action", action)
        .channel("people", "sample")
        .location("base_dn", PEOPLE)
        .map("userName", "uid")
        .map("externalId", "entryUUID")
        .map("givenName", "givenName")
        .map("familyName", "sn")
        .map("formattedName", "cn")
        .map_field("displayName", Field::attributes(&["displayName", "cn"]))
        .map("workEmail", "mail")
        .map("title", "title")
}

fn uid(person: &RawEntry) -> String {
    person.first_text("uid").unwrap().to_owned()
}

#[test]
fn provisions_the_sample_into_scim2_server() {
    let (server, client) = scim2_server("scim2-s3cret");
    let ws = Workspace::new().with_env("SCIM2_TOKEN", "scim2-s3cret");
    // 120 people keep the run short: scim2-server opens a connection per request.
    let (sample, kept) = sample_with_people(120);
    ws.write_ldif(&sample);
    ws.apply(&config(&ws, &server.url(), "disable"));
    every_person_arrives_and_the_existing_user_is_linked(&ws, &client, &kept);

    let out = ws.run(&["sync", "python-scim"]);
    assert!(
        out.contains(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 120"
        ),
        "{out}"
    );

    let edited = a_hand_edit_survives_a_changed_version(&ws, &client, &kept, &sample);

    // With remove user action delete, the next leaver is deleted.
    ws.apply(&config(&ws, &server.url(), "delete"));
    let second_leaver = uid(&kept[3]);
    ws.write_ldif(&without_entry(&edited, &kept[3].dn));
    let out = ws.run(&["sync", "python-scim"]);
    assert!(out.contains("deleted 1, failed 0"), "{out}");
    assert!(client.user_by_name(&second_leaver).is_none());
    assert_eq!(client.users().len(), 119);
}

/// One user already exists in the target: it is linked, not duplicated.
fn every_person_arrives_and_the_existing_user_is_linked(
    ws: &Workspace,
    client: &ScimReader,
    kept: &[RawEntry],
) {
    let existing = uid(&kept[5]);
    client.create_user(&existing, json!({"title": "Pre-existing"}));
    let out = ws.run(&["sync", "python-scim"]);
    assert!(
        out.contains(
            "python-scim/people: created 119, linked 1, updated 0, disabled 0, deleted 0, failed 0"
        ),
        "{out}"
    );

    let users = client.users();
    assert_eq!(users.len(), 120);
    for person in kept {
        let user = client.user_by_name(&uid(person)).unwrap();
        assert_eq!(user["externalId"], person.first_text("entryUUID").unwrap());
        assert_eq!(user["name"]["formatted"], person.first_text("cn").unwrap());
        assert_eq!(
            user["emails"][0]["value"],
            person.first_text("mail").unwrap()
        );
    }
    assert_ne!(
        client.user_by_name(&existing).unwrap()["title"],
        "Pre-existing"
    );
}

/// A change of title and a leaver, while someone edits the mover in the target: its version
/// (ETag) changes, so our If-Match with the version of our last write gets 412; the version is
/// read again and the update repeated. Being a PATCH of the title only, it keeps the hand edit.
/// Returns the directory as edited.
fn a_hand_edit_survives_a_changed_version(
    ws: &Workspace,
    client: &ScimReader,
    kept: &[RawEntry],
    sample: &str,
) -> String {
    let (mover, leaver) = (&kept[1], &kept[2]);
    let edited = with_value(
        &without_entry(sample, &leaver.dn),
        &mover.dn,
        "title",
        "Principal Engineer",
    );
    ws.write_ldif(&edited);
    client.patch_user(
        &client.id_of(&uid(mover)),
        json!([{"op": "replace", "path": "nickName", "value": "Edited by hand"}]),
    );
    let out = ws.run(&["sync", "python-scim"]);
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 1, deleted 0, failed 0"),
        "{out}"
    );
    let mover_now = client.user_by_name(&uid(mover)).unwrap();
    assert_eq!(mover_now["title"], "Principal Engineer");
    assert_eq!(mover_now["nickName"], "Edited by hand");
    assert_eq!(client.user_by_name(&uid(leaver)).unwrap()["active"], false);
    edited
}
