//! The same provisioning against PyPI's scim2-server: a SCIM implementation we did not write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scimbridge_testkit::scim2_server::Scim2Server;
use serde_json::json;

fn config(ldif: &std::path::Path, url: &str, action: &str) -> String {
    format!(
        r#"version = 1

[[data_store]]
name = "sample"
type = "ldif"
path = "{}"

[[connection]]
name = "python-scim"
active = true

[connection.target]
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "env:SCIM2_TOKEN"

[connection.options]
remove_user_action = "{action}"

[[connection.channel]]
name = "people"
data_store = "sample"

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
externalId = {{ attributes = ["entryUUID"] }}
givenName = {{ attributes = ["givenName"] }}
familyName = {{ attributes = ["sn"] }}
formattedName = {{ attributes = ["cn"] }}
displayName = {{ attributes = ["displayName", "cn"] }}
workEmail = {{ attributes = ["mail"] }}
title = {{ attributes = ["title"] }}
"#,
        ldif.display()
    )
}

#[test]
fn provisions_the_sample_into_scim2_server() {
    let server = Scim2Server::start("scim2-s3cret");
    let client = ScimReader {
        url: server.url(),
        token: server.token.clone(),
    };
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    // 120 people keep the run short: scim2-server opens a connection per request.
    let people = people(SAMPLE);
    let kept: Vec<&scimbridge_ldap::LdifRecord> = people.iter().take(120).collect();
    let keep_dns: Vec<String> = kept.iter().map(|p| format!("dn: {}\n", p.dn)).collect();
    let sample = edit_ldif(SAMPLE, |block| {
        let is_person = block.contains("objectClass: inetOrgPerson");
        (!is_person || keep_dns.iter().any(|dn| block.contains(dn.as_str())))
            .then(|| block.to_owned())
    });
    std::fs::write(&ldif, &sample).unwrap();

    // One user already exists in the target: it is linked, not duplicated.
    let existing = kept[5].first_text("uid").unwrap().to_owned();
    let created = reqwest::blocking::Client::new()
        .post(format!("{}/Users", server.url()))
        .bearer_auth(&server.token)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": existing, "title": "Pre-existing"}))
        .send()
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    let cfg = dir.path().join("scim2.toml");
    std::fs::write(&cfg, config(&ldif, &server.url(), "disable")).unwrap();
    let env = [("SCIM2_TOKEN", "scim2-s3cret")];
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &env));
    let out = ok(scimbridge(&data, &["sync", "python-scim"], &env));
    assert!(
        out.contains(
            "python-scim/people: created 119, linked 1, updated 0, disabled 0, deleted 0, failed 0"
        ),
        "{out}"
    );

    let users = client.users();
    assert_eq!(users.len(), 120);
    for person in &kept {
        let user = client
            .user_by_name(person.first_text("uid").unwrap())
            .unwrap();
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

    let out = ok(scimbridge(&data, &["sync", "python-scim"], &env));
    assert!(
        out.contains(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 120"
        ),
        "{out}"
    );

    // A rename of the title and a leaver.
    let mover = kept[1].first_text("uid").unwrap().to_owned();
    let leaver = kept[2].first_text("uid").unwrap().to_owned();
    let edited = edit_ldif(&sample, |block| {
        if block.contains(&format!("dn: uid={leaver},")) {
            None
        } else if block.contains(&format!("dn: uid={mover},")) {
            Some(
                block
                    .lines()
                    .map(|l| {
                        if l.starts_with("title:") {
                            "title: Principal Engineer"
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        } else {
            Some(block.to_owned())
        }
    });
    std::fs::write(&ldif, &edited).unwrap();
    // Meanwhile someone edits the mover in the target: its version (ETag) changes, so our
    // If-Match with the version of our last write gets 412; the version is read again and the
    // update repeated. Being a PATCH of the title only, it keeps the hand edit.
    let mover_id = client.user_by_name(&mover).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let edited_by_hand = reqwest::blocking::Client::new()
        .patch(format!("{}/Users/{mover_id}", server.url()))
        .bearer_auth(&server.token)
        .header("Content-Type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "nickName", "value": "Edited by hand"}]})
            .to_string(),
        )
        .send()
        .unwrap();
    assert!(
        edited_by_hand.status().is_success(),
        "{:?}",
        edited_by_hand.text()
    );
    let out = ok(scimbridge(&data, &["sync", "python-scim"], &env));
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 1, deleted 0, failed 0"),
        "{out}"
    );
    let mover_now = client.user_by_name(&mover).unwrap();
    assert_eq!(mover_now["title"], "Principal Engineer");
    assert_eq!(mover_now["nickName"], "Edited by hand");
    assert_eq!(client.user_by_name(&leaver).unwrap()["active"], false);

    // With remove user action delete, the next leaver is deleted.
    std::fs::write(&cfg, config(&ldif, &server.url(), "delete")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &env));
    let second_leaver = kept[3].first_text("uid").unwrap().to_owned();
    let edited = edit_ldif(&edited, |block| {
        (!block.contains(&format!("dn: uid={second_leaver},"))).then(|| block.to_owned())
    });
    std::fs::write(&ldif, &edited).unwrap();
    let out = ok(scimbridge(&data, &["sync", "python-scim"], &env));
    assert!(out.contains("deleted 1, failed 0"), "{out}");
    assert!(client.user_by_name(&second_leaver).is_none());
    assert_eq!(client.users().len(), 119);
}
