//! `apply`, `sync`, `plan`, `channels` and `export` against the bundled target run as a separate
//! process: options, deletes, failures that stay alone, secrets that stay secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;

const DIRECTORY: &str = "\
version: 1

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Smith
sn: Smith
givenName: Alice
mail: alice@example.com
title: Engineer
entryUUID: 00000000-0000-0000-0000-00000000000a

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Jones
sn: Jones
mail: bob@example.com
entryUUID: 00000000-0000-0000-0000-00000000000b

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn:: Q2Fyb2wgTcO8bGxlcg==
sn:: TcO8bGxlcg==
mail: carol@example.com
entryUUID: 00000000-0000-0000-0000-00000000000c

dn: cn=no-uid,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
cn: no-uid
sn: Nobody
entryUUID: 00000000-0000-0000-0000-00000000000d
";

fn config(ldif: &Path, url: &str, token: &str, action: &str) -> String {
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
scim_url = "{url}/"
authentication = "oauth2-bearer"
access_token = "{token}"

[connection.options]
remove_user_action = "{action}"

[[connection.channel]]
name = "staff"
data_store = "corp"

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
externalId = {{ attributes = ["entryUUID"] }}
familyName = {{ attributes = ["sn"] }}
givenName = {{ attributes = ["givenName"] }}
displayName = {{ attributes = ["cn"] }}
workEmail = {{ attributes = ["mail"] }}
title = {{ attributes = ["title"], default_value = "Staff" }}
active = {{ attributes = ["employeeType"] }}
"#,
        ldif = ldif.display()
    )
}

#[test]
fn sync_with_delete_action_and_a_bad_record() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken-for-sync");
    let client = target.client();
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &target.url, "env:APP_TOKEN", "delete")).unwrap();

    let out = ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&cfg)],
        &[("APP_TOKEN", "t0ken-for-sync")],
    ));
    assert!(out.contains("data store \"corp\": created"), "{out}");
    assert!(
        out.contains("connection \"app\" (active, 1 channel): created"),
        "{out}"
    );
    let out = ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&cfg)],
        &[("APP_TOKEN", "t0ken-for-sync")],
    ));
    assert!(
        out.contains("connection \"app\" (active, 1 channel): unchanged"),
        "{out}"
    );

    // The plan writes nothing and says why.
    let out = ok(scimbridge(&data, &["plan", "app"], &[]));
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
    assert!(client.users().is_empty());

    // The entry without a user name fails alone; exit code 3 says records failed.
    let output = scimbridge(&data, &["sync", "app"], &[("APP_TOKEN", "t0ken-for-sync")]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    assert!(
        out.contains("app/staff: created 3, linked 0, updated 0, disabled 0, deleted 0, failed 1"),
        "{out}"
    );
    assert!(
        out.contains("failed cn=no-uid,ou=people,dc=example,dc=com: required field userName"),
        "{out}"
    );
    let carol = client.user_by_name("carol").unwrap();
    assert_eq!(carol["displayName"], "Carol Müller");
    assert_eq!(carol["title"], "Staff", "default value");
    assert!(carol["name"].get("givenName").is_none());
    let out = ok(scimbridge(&data, &["channels"], &[]));
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("app"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        ["app", "staff", "active", "3", "1", "0"],
        "{out}"
    );

    // Bob leaves, Carol is disabled in the directory, Alice's title is cleared, the bad entry is fixed.
    let edited = edit_ldif(DIRECTORY, |block| {
        if block.contains("uid=bob,") {
            return None;
        }
        let block = block
            .replace("title: Engineer\n", "")
            .replace("uid: carol\n", "uid: carol\nemployeeType: disabled\n");
        Some(block.replace("cn: no-uid\n", "cn: no-uid\nuid: dave\n"))
    });
    std::fs::write(&ldif, edited).unwrap();
    let out = ok(scimbridge(
        &data,
        &["sync", "app"],
        &[("APP_TOKEN", "t0ken-for-sync")],
    ));
    assert!(
        out.contains("created 1, linked 0, updated 1, disabled 0, deleted 2, failed 0"),
        "{out}"
    );
    assert!(client.user_by_name("bob").is_none());
    assert!(client.user_by_name("carol").is_none());
    assert_eq!(
        client.user_by_name("alice").unwrap()["title"],
        "Staff",
        "cleared title falls back to the default"
    );
    assert!(client.user_by_name("dave").is_some());

    // Carol is enabled again: created anew.
    std::fs::write(
        &ldif,
        DIRECTORY
            .replace("cn: no-uid\n", "cn: no-uid\nuid: dave\n")
            .replace("uid=bob", "uid=bob2"),
    )
    .unwrap();
    let out = ok(scimbridge(
        &data,
        &["sync", "app"],
        &[("APP_TOKEN", "t0ken-for-sync")],
    ));
    assert!(
        out.contains("created 2, linked 0, updated 1"),
        "bob came back under a new DN, carol re-created: {out}"
    );
    assert_eq!(client.user_by_name("carol").unwrap()["active"], true);
    let out = ok(scimbridge(
        &data,
        &["sync", "app"],
        &[("APP_TOKEN", "t0ken-for-sync")],
    ));
    assert!(
        out.contains(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 4"
        ),
        "{out}"
    );
}

#[test]
fn literal_secrets_are_encrypted_and_never_exported() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let secret = "literal-T0ken-that-must-not-leak";
    let target = TargetProcess::start(&dir.path().join("target.db"), secret);
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &target.url, secret, "disable")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    let exported = ok(scimbridge(&data, &["export"], &[]));
    assert!(!exported.contains(secret), "{exported}");
    assert!(
        exported.contains("target.access_token is stored encrypted and left out"),
        "{exported}"
    );
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret));
    }

    // Applying the export keeps the stored secret: the next sync still authenticates.
    let exported_file = dir.path().join("exported.toml");
    std::fs::write(&exported_file, &exported).unwrap();
    let out = ok(scimbridge(
        &data,
        &["apply", "-f", &path_str(&exported_file)],
        &[],
    ));
    assert!(
        out.contains("connection \"app\" (active, 1 channel): unchanged"),
        "{out}"
    );
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert!(
        stdout(&output).contains("created 3"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(!stderr(&output).contains(secret) && !stdout(&output).contains(secret));

    // A wrong token is refused at activation, precisely, and nothing is saved.
    std::fs::write(&cfg, config(&ldif, &target.url, "wrong-token", "disable")).unwrap();
    let output = scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("target check failed: the target refused the credentials")
            && err.contains("HTTP 401")
            && err.contains("nothing was saved"),
        "{err}"
    );
    let out = ok(scimbridge(&data, &["check", "app"], &[]));
    assert!(
        out.contains("authentication: oauth2-bearer accepted"),
        "{out}"
    );

    // Forced past the check, a wrong token fails every record with the target's answer, and
    // nothing else breaks.
    ok(scimbridge(
        &data,
        &["apply", "--skip-check", "-f", &path_str(&cfg)],
        &[],
    ));
    let output = scimbridge(&data, &["check", "app"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the target refused the credentials"),
        "{}",
        stderr(&output)
    );
    std::fs::write(&ldif, DIRECTORY.replace("title: Engineer", "title: Lead")).unwrap();
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stdout(&output).contains("HTTP 401"), "{}", stdout(&output));
}

#[test]
fn configuration_errors_name_the_problem() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    let cfg = dir.path().join("bad.toml");
    let text = config(&ldif, "http://127.0.0.1:9/scim/v2", "x", "disable")
        .replace("remove_user_action", "remove_user_acton");
    std::fs::write(&cfg, text).unwrap();
    let output = scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("remove_user_acton") && err.contains("line 18"),
        "{err}"
    );

    let text = config(&ldif, "http://127.0.0.1:9/scim/v2", "x", "disable")
        .replace("data_store = \"corp\"", "data_store = \"hr\"");
    std::fs::write(&cfg, text).unwrap();
    let err = stderr(&scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(err.contains("data store \"hr\" is not defined"), "{err}");

    let output = scimbridge(&data, &["sync", "nope"], &[]);
    assert_eq!(output.status.code(), Some(1));

    // An unreadable data store stops the cycle without deprovisioning anybody.
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), "tok");
    std::fs::write(&cfg, config(&ldif, &target.url, "tok", "delete")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let _ = scimbridge(&data, &["sync", "app"], &[]);
    std::fs::write(
        &ldif,
        format!("{DIRECTORY}\ndn: uid=x,ou=people,dc=example,dc=com\nphoto:< file:///etc/passwd\n"),
    )
    .unwrap();
    let output = scimbridge(&data, &["sync", "app"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("directory.ldif:") && err.contains("not supported"),
        "{err}"
    );
    std::fs::write(
        &ldif,
        "version: 1\n\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\n",
    )
    .unwrap();
    let err = stderr(&scimbridge(&data, &["sync", "app"], &[]));
    assert!(err.contains("refusing to deprovision everyone"), "{err}");
    assert_eq!(target.client().users().len(), 3);
}

#[test]
fn a_nul_character_never_reaches_the_target() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    // Bob's title is "Chief\0Officer" in base64, which LDIF allows.
    let directory = DIRECTORY.replace(
        "mail: bob@example.com\n",
        "mail: bob@example.com\ntitle:: Q2hpZWYAT2ZmaWNlcg==\n",
    );
    std::fs::write(&ldif, &directory).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &target.url, "t0ken", "delete")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));

    // Bob fails alone, with the attribute named; the others are provisioned.
    let output = scimbridge(&data, &["sync", "app"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{out}{}", stderr(&output));
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
    std::fs::write(
        &ldif,
        directory.replace("title: Engineer", "title: Engi\0neer"),
    )
    .unwrap();
    let output = scimbridge(&data, &["sync", "app"], &[]);
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
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &target.url, "t0ken", "disable")).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = stdout(&scimbridge(&data, &["sync", "app"], &[]));
    assert!(out.contains("created 3"), "{out}");
    let delete_by_hand = |user_name: &str| {
        let id = reader.user_by_name(user_name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let status = reqwest::blocking::Client::new()
            .delete(format!("{}/Users/{id}", target.url))
            .bearer_auth("t0ken")
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
        id
    };
    let old_alice = delete_by_hand("alice");
    let old_bob = delete_by_hand("bob");

    // alice changes: her update finds her gone and she is created again in the same cycle.
    // bob leaves: disabling a user that is already gone is done.
    let edited = edit_ldif(DIRECTORY, |block| {
        if block.contains("uid: bob\n") {
            None
        } else {
            Some(block.replace("title: Engineer", "title: Lead"))
        }
    });
    std::fs::write(&ldif, &edited).unwrap();
    let output = scimbridge(&data, &["sync", "app"], &[]);
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
    delete_by_hand("alice");
    std::fs::write(
        &cfg,
        config(&ldif, &target.url, "t0ken", "disable").replace(
            "[connection.options]",
            "[connection.options]\nuser_create = false",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    std::fs::write(&ldif, edited.replace("title: Lead", "title: Chief")).unwrap();
    let out = stdout(&scimbridge(&data, &["sync", "app"], &[]));
    assert!(
        out.contains("no longer exists, and user create is off"),
        "{out}"
    );
}

#[test]
fn existing_users_are_found_by_work_email_or_a_filter_expression() {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let reader = target.client();
    let http = reqwest::blocking::Client::new();
    // Made by hand in the target, under other user names: only the email or the externalId
    // tells they are alice and bob.
    for body in [
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "asmith",
            "emails": [{"value": "alice@example.com", "type": "work"}]}),
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjones",
            "externalId": "00000000-0000-0000-0000-00000000000b"}),
    ] {
        let status = http
            .post(format!("{}/Users", target.url))
            .bearer_auth("t0ken")
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 201);
    }
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let cfg = dir.path().join("app.toml");

    // workEmail: alice is linked through her email; everyone else is created.
    let data = dir.path().join("by-email");
    std::fs::write(
        &cfg,
        config(&ldif, &target.url, "t0ken", "disable").replace(
            "access_token = \"t0ken\"",
            "access_token = \"t0ken\"\nunique_user_identifier = \"workEmail\"",
        ),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = stdout(&scimbridge(&data, &["sync", "app"], &[]));
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
    let data = dir.path().join("by-filter");
    let with_filter = |filter: &str| {
        config(&ldif, &target.url, "t0ken", "disable").replace(
            "access_token = \"t0ken\"",
            &format!(
                "access_token = \"t0ken\"\nunique_user_identifier = \"workEmail\"\nfilter_expression = '{filter}'"
            ),
        )
    };
    std::fs::write(&cfg, with_filter("emails eq \"%s\" or userName eq \"%s\"")).unwrap();
    let output = scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("must contain %s exactly once"),
        "{}",
        stderr(&output)
    );
    std::fs::write(
        &cfg,
        with_filter("emails[type eq \"work\" and value eq \"%s\"]"),
    )
    .unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = stdout(&scimbridge(&data, &["sync", "app"], &[]));
    // Everyone exists by now (alice, bob and carol from the first data directory).
    assert!(out.contains("created 0, linked 3,"), "{out}");
    assert_eq!(
        reader.users().len(),
        4,
        "bjones stays, nobody is duplicated"
    );
}
