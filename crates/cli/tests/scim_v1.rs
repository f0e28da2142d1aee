//! SCIM 1.1 end to end: the engine speaks the 1.1 dialect (URNs, media type, discovery path,
//! PATCH as a partial resource with `meta.attributes`, member deletes) to the bundled target's
//! `/scim/v1` endpoint; users and groups are created, changed, cleared and removed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ann() -> Entry {
    Entry::person("ann")
        .with("sn", "Lee")
        .with("givenName", "Ann")
        .with("initials", "Q")
        .with("mail", "ann@corp.example")
        .with("ou", "R&D")
        .with("entryUUID", "00000000-0000-0000-0000-00000000000a")
}

/// Ann, Ben and their group, crew; `ann` as given, crew's members as given.
fn directory(ann: Entry, crew: &[&str]) -> String {
    ldif([
        Entry::ou("people"),
        Entry::ou("groups"),
        ann,
        Entry::person("ben")
            .with("sn", "Stone")
            .with("entryUUID", "00000000-0000-0000-0000-00000000000b"),
        Entry::group("crew")
            .with("entryUUID", "00000000-0000-0000-0000-0000000000c1")
            .members(crew),
    ])
}

fn v1_get(url: &str, path: &str) -> (u16, String, Value) {
    let response = reqwest::blocking::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth("t0ken")
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.json().unwrap_or(Value::Null))
}

#[test]
fn users_and_groups_over_scim_1_1() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    let v1 = target.url.replace("/scim/v2", "/scim/v1");
    ws.write_ldif(&directory(ann(), &["ann", "ben"]));
    let out = ws.apply(
        &Config::ldif(&ws.ldif, &v1, "t0ken")
            .connection_setting("name", "legacy")
            .target("scim_version", "1.1")
            .location("group_base_dn", GROUPS)
            .map("givenName", "givenName")
            .map("familyName", "sn")
            .map("middleName", "initials")
            .map("workEmail", "mail")
            .map("department", "ou"),
    );
    assert!(out.contains("created"), "{out}");
    let out = ws.run(&["check", "legacy"]);
    assert_has(&out, &["(SCIM 1.1)", "PATCH yes"]);
    let out = ws.run(&["sync", "legacy"]);
    assert_has(&out, &["created 2,", "groups: created 1"]);
    they_read_back_with_1_1_urns(&target.client(), &v1);
    changes_go_as_1_1_patches(&ws, &target.client());
}

/// The target holds them; over 1.1 they read back with 1.1 URNs.
fn they_read_back_with_1_1_urns(reader: &ScimReader, v1: &str) {
    let ann = reader.user_by_name("ann").unwrap();
    assert_eq!(ann["name"]["middleName"], "Q");
    assert_eq!(ann[ENTERPRISE]["department"], "R&D");
    let (status, content_type, ann_v1) =
        v1_get(v1, &format!("/Users/{}", ann["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(
        ann_v1["schemas"],
        serde_json::json!([
            "urn:scim:schemas:core:1.0",
            "urn:scim:schemas:extension:enterprise:1.0"
        ])
    );
    let groups = reader.get("/Groups", &[]).1;
    assert_eq!(
        groups["Resources"][0]["members"].as_array().unwrap().len(),
        2
    );
}

/// A value changed, one cleared, one member removed.
fn changes_go_as_1_1_patches(ws: &Workspace, reader: &ScimReader) {
    let edited = ann()
        .set("givenName", "Anne")
        .without("initials")
        .without("ou");
    ws.write_ldif(&directory(edited, &["ann"]));
    let out = ws.run(&["sync", "legacy"]);
    assert_has(
        &out,
        &["updated 1,", "groups: created 0, linked 0, updated 1"],
    );
    let ann = reader.user_by_name("ann").unwrap();
    assert_eq!(ann["name"]["givenName"], "Anne");
    assert!(ann["name"].get("middleName").is_none(), "{ann}");
    assert!(
        ann.get(ENTERPRISE)
            .and_then(|e| e.get("department"))
            .is_none(),
        "{ann}"
    );
    let groups = reader.get("/Groups", &[]).1;
    let members = groups["Resources"][0]["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["value"], ann["id"]);
}

#[test]
fn a_wrong_token_is_refused_with_a_1_1_error_body() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    let v1 = target.url.replace("/scim/v2", "/scim/v1");
    let response = reqwest::blocking::Client::new()
        .get(format!("{v1}/Users"))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let error: Value = response.json().unwrap();
    assert_eq!(error["Errors"][0]["description"], "invalid bearer token");
}
