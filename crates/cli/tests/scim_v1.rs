//! SCIM 1.1 end to end: the engine speaks the 1.1 dialect (URNs, media type, discovery path,
//! PATCH as a partial resource with `meta.attributes`, member deletes) to the bundled target's
//! `/scim/v1` endpoint; users and groups are created, changed, cleared and removed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

const DIRECTORY: &str = "\
version: 1

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
sn: Lee
givenName: Ann
initials: Q
mail: ann@corp.example
ou: R&D
entryUUID: 00000000-0000-0000-0000-00000000000a

dn: uid=ben,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ben
sn: Stone
entryUUID: 00000000-0000-0000-0000-00000000000b

dn: cn=crew,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: crew
entryUUID: 00000000-0000-0000-0000-0000000000c1
member: uid=ann,ou=people,dc=example,dc=com
member: uid=ben,ou=people,dc=example,dc=com
";

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
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let v1 = target.url.replace("/scim/v2", "/scim/v1");
    let reader = target.client();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    let cfg = dir.path().join("v1.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"version = 1

[[data_store]]
name = "corp"
type = "ldif"
path = "{ldif}"

[[connection]]
name = "legacy"
active = true

[connection.target]
scim_url = "{v1}"
scim_version = "1.1"
authentication = "oauth2-bearer"
access_token = "t0ken"

[[connection.channel]]
name = "staff"
data_store = "corp"

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
givenName = {{ attributes = ["givenName"] }}
familyName = {{ attributes = ["sn"] }}
middleName = {{ attributes = ["initials"] }}
workEmail = {{ attributes = ["mail"] }}
department = {{ attributes = ["ou"] }}
"#,
            ldif = ldif.display()
        ),
    )
    .unwrap();
    let out = ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    assert!(out.contains("created"), "{out}");
    let out = ok(scimbridge(&data, &["check", "legacy"], &[]));
    assert!(
        out.contains("(SCIM 1.1)") && out.contains("PATCH yes"),
        "{out}"
    );
    let out = ok(scimbridge(&data, &["sync", "legacy"], &[]));
    assert!(out.contains("created 2,"), "{out}");
    assert!(out.contains("groups: created 1"), "{out}");

    // The target holds them; over 1.1 they read back with 1.1 URNs.
    let ann = reader.user_by_name("ann").unwrap();
    assert_eq!(ann["name"]["middleName"], "Q");
    assert_eq!(
        ann["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    let (status, content_type, ann_v1) =
        v1_get(&v1, &format!("/Users/{}", ann["id"].as_str().unwrap()));
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

    // Changes go as 1.1 PATCH: a value changed, one cleared, one member removed.
    let edited = DIRECTORY
        .replace("givenName: Ann\n", "givenName: Anne\n")
        .replace("initials: Q\n", "")
        .replace("ou: R&D\n", "")
        .replace("member: uid=ben,ou=people,dc=example,dc=com\n", "");
    std::fs::write(&ldif, edited).unwrap();
    let out = ok(scimbridge(&data, &["sync", "legacy"], &[]));
    assert!(out.contains("updated 1,"), "{out}");
    assert!(
        out.contains("groups: created 0, linked 0, updated 1"),
        "{out}"
    );
    let ann = reader.user_by_name("ann").unwrap();
    assert_eq!(ann["name"]["givenName"], "Anne");
    assert!(ann["name"].get("middleName").is_none(), "{ann}");
    assert!(
        ann.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
            .and_then(|e| e.get("department"))
            .is_none(),
        "{ann}"
    );
    let groups = reader.get("/Groups", &[]).1;
    let members = groups["Resources"][0]["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["value"], ann["id"]);

    // A 1.1 error body is read: a wrong token is refused with the target's reason.
    let response = reqwest::blocking::Client::new()
        .get(format!("{v1}/Users"))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let error: Value = response.json().unwrap();
    assert_eq!(error["Errors"][0]["description"], "invalid bearer token");
}
