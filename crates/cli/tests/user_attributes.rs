//! Every kind of user attribute end to end: core, name parts, emails, phones, photos and
//! addresses by type, the enterprise extension and a custom extension, created, changed and
//! cleared, in the bundled target and (core and enterprise) in scim2-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use scimbridge_testkit::scim2_server::Scim2Server;
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

const DIRECTORY: &str = "\
version: 1

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann Lee
sn: Lee
givenName: Ann
initials: Q
displayName: Ann Lee
title: Lead
preferredLanguage: fr-CA
mail: ann@corp.example
homeMail: ann@home.example
telephoneNumber: +1 555 0100
mobile: +1 555 0101
street: 1 Main St
l: Toronto
st: ON
postalCode: M5V 1A1
c: CA
employeeNumber: 42
ou: R&D
badge: B-1
skill: rust
skill: ldap
laptop: SN-9
entryUUID: 00000000-0000-0000-0000-00000000000a
";

fn config(ldif: &Path, url: &str, token: &str, with_custom: bool) -> String {
    let custom = if with_custom {
        format!(
            r#"
[connection.channel.extension_mapping]
"{ACME}:badgeNumber" = {{ attributes = ["badge"] }}
"{ACME}:skills" = {{ attributes = ["skill"], multi_valued = true }}
"{ACME}:devices[type=laptop].serial" = {{ attributes = ["laptop"] }}
"#
        )
    } else {
        String::new()
    };
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
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "{token}"

[[connection.channel]]
name = "staff"
data_store = "corp"

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
externalId = {{ attributes = ["entryUUID"] }}
givenName = {{ attributes = ["givenName"] }}
familyName = {{ attributes = ["sn"] }}
middleName = {{ attributes = ["initials"] }}
formattedName = {{ attributes = ["cn"] }}
displayName = {{ attributes = ["displayName"] }}
title = {{ attributes = ["title"] }}
preferredLanguage = {{ attributes = ["preferredLanguage"] }}
workEmail = {{ attributes = ["mail"] }}
homeEmail = {{ attributes = ["homeMail"] }}
workPhone = {{ attributes = ["telephoneNumber"] }}
mobilePhone = {{ attributes = ["mobile"] }}
workStreet = {{ attributes = ["street"] }}
workCity = {{ attributes = ["l"] }}
workState = {{ attributes = ["st"] }}
workPostalCode = {{ attributes = ["postalCode"] }}
workCountry = {{ attributes = ["c"] }}
employeeNumber = {{ attributes = ["employeeNumber"] }}
department = {{ attributes = ["ou"] }}
{custom}"#,
        ldif = ldif.display()
    )
}

fn by_type<'a>(user: &'a Value, attribute: &str, kind: &str) -> Option<&'a Value> {
    user[attribute].as_array()?.iter().find(|v| {
        v["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

fn attribute_lifecycle(url: &str, token: &str, reader: &ScimReader, with_custom: bool) {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    let cfg = dir.path().join("app.toml");
    std::fs::write(&ldif, DIRECTORY).unwrap();
    std::fs::write(&cfg, config(&ldif, url, token, with_custom)).unwrap();
    ok(scimbridge(&data, &["apply", "-f", &path_str(&cfg)], &[]));
    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    assert!(out.contains("created 1,"), "{out}");

    let ann = reader.user_by_name("ann").unwrap();
    assert_eq!(ann["name"]["middleName"], "Q");
    assert_eq!(ann["preferredLanguage"], "fr-CA");
    assert_eq!(
        by_type(&ann, "emails", "work").unwrap()["value"],
        "ann@corp.example"
    );
    assert_eq!(by_type(&ann, "emails", "work").unwrap()["primary"], true);
    assert_eq!(
        by_type(&ann, "emails", "home").unwrap()["value"],
        "ann@home.example"
    );
    assert_eq!(
        by_type(&ann, "phoneNumbers", "mobile").unwrap()["value"],
        "+1 555 0101"
    );
    let address = by_type(&ann, "addresses", "work").unwrap();
    assert_eq!(
        (
            address["locality"].as_str(),
            address["region"].as_str(),
            address["country"].as_str()
        ),
        (Some("Toronto"), Some("ON"), Some("CA"))
    );
    assert_eq!(ann[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(ann[ENTERPRISE]["department"], "R&D");
    if with_custom {
        assert_eq!(ann[ACME]["badgeNumber"], "B-1");
        assert_eq!(ann[ACME]["skills"], json!(["rust", "ldap"]));
        assert_eq!(
            ann[ACME]["devices"],
            json!([{"type": "laptop", "serial": "SN-9"}])
        );
    }

    // Values change and some become empty in the directory: they are cleared in the target.
    let edited = DIRECTORY
        .replace("initials: Q\n", "")
        .replace("homeMail: ann@home.example\n", "")
        .replace("l: Toronto\n", "l: Ottawa\n")
        .replace("ou: R&D\n", "")
        .replace("badge: B-1\n", "");
    std::fs::write(&ldif, edited).unwrap();
    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    assert!(out.contains("updated 1,"), "{out}");
    let ann = reader.user_by_name("ann").unwrap();
    assert!(ann["name"].get("middleName").is_none(), "{ann}");
    assert_eq!(ann["name"]["givenName"], "Ann");
    assert!(by_type(&ann, "emails", "home").is_none(), "{ann}");
    assert_eq!(
        by_type(&ann, "emails", "work").unwrap()["value"],
        "ann@corp.example"
    );
    assert_eq!(
        by_type(&ann, "addresses", "work").unwrap()["locality"],
        "Ottawa"
    );
    assert!(ann[ENTERPRISE].get("department").is_none(), "{ann}");
    assert_eq!(ann[ENTERPRISE]["employeeNumber"], "42");
    if with_custom {
        assert!(ann[ACME].get("badgeNumber").is_none(), "{ann}");
        assert_eq!(ann[ACME]["skills"], json!(["rust", "ldap"]));
    }

    // Nothing changed: nothing sent.
    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    assert!(out.contains("updated 0,"), "{out}");
}

#[test]
fn every_attribute_kind_in_the_bundled_target() {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    attribute_lifecycle(&target.url, "t0ken", &target.client(), true);
}

#[test]
fn core_and_enterprise_attributes_in_scim2_server() {
    let server = Scim2Server::start("s3cret");
    let reader = ScimReader {
        url: server.url(),
        token: server.token.clone(),
    };
    attribute_lifecycle(&server.url(), "s3cret", &reader, false);
}

#[test]
fn a_malformed_extension_path_is_refused_when_applied() {
    let dir = temp_dir();
    let cfg = dir.path().join("bad.toml");
    let text = config(
        &dir.path().join("x.ldif"),
        "http://127.0.0.1:9/scim/v2",
        "x",
        true,
    )
    .replace("devices[type=laptop].serial", "devices[type=laptop]")
    .replace("active = true", "active = false")
    .replace("preferredLanguage = {", "jobTitle = {");
    std::fs::write(&cfg, &text).unwrap();
    let output = scimbridge(
        &dir.path().join("data"),
        &["apply", "-f", &path_str(&cfg)],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("unknown SCIM field `jobTitle`"), "{err}");

    std::fs::write(&cfg, text.replace("jobTitle = {", "preferredLanguage = {")).unwrap();
    let output = scimbridge(
        &dir.path().join("data"),
        &["apply", "-f", &path_str(&cfg)],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("a [type=…] filter must be followed by .subAttribute"),
        "{err}"
    );
}
