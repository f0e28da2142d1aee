//! Every kind of user attribute end to end: core, name parts, emails, phones, photos and
//! addresses by type, the enterprise extension and a custom extension, created, changed and
//! cleared, in the bundled target and (core and enterprise) in scim2-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// Ann, with a value for every kind of attribute.
fn ann_entry() -> Entry {
    Entry::person("ann")
        .with("cn", "Ann Lee")
        .with("sn", "Lee")
        .with("givenName", "Ann")
        .with("initials", "Q")
        .with("displayName", "Ann Lee")
        .with("title", "Lead")
        .with("preferredLanguage", "fr-CA")
        .with("mail", "ann@corp.example")
        .with("homeMail", "ann@home.example")
        .with("telephoneNumber", "+1 555 0100")
        .with("mobile", "+1 555 0101")
        .with("street", "1 Main St")
        .with("l", "Toronto")
        .with("st", "ON")
        .with("postalCode", "M5V 1A1")
        .with("c", "CA")
        .with("employeeNumber", "42")
        .with("ou", "R&D")
        .with("badge", "B-1")
        .with("skill", "rust")
        .with("skill", "ldap")
        .with("laptop", "SN-9")
        .with("entryUUID", "00000000-0000-0000-0000-00000000000a")
}

/// Every kind of SCIM field, from Ann's attributes.
fn config(ws: &Workspace, url: &str, token: &str) -> Config {
    [
        ("externalId", "entryUUID"),
        ("givenName", "givenName"),
        ("familyName", "sn"),
        ("middleName", "initials"),
        ("formattedName", "cn"),
        ("displayName", "displayName"),
        ("title", "title"),
        ("preferredLanguage", "preferredLanguage"),
        ("workEmail", "mail"),
        ("homeEmail", "homeMail"),
        ("workPhone", "telephoneNumber"),
        ("mobilePhone", "mobile"),
        ("workStreet", "street"),
        ("workCity", "l"),
        ("workState", "st"),
        ("workPostalCode", "postalCode"),
        ("workCountry", "c"),
        ("employeeNumber", "employeeNumber"),
        ("department", "ou"),
    ]
    .into_iter()
    .fold(
        Config::ldif(&ws.ldif, url, token),
        |config, (field, attribute)| config.map(field, attribute),
    )
}

/// A custom extension: a single value, a multi-valued one, and a typed entry's sub-attribute
/// at `device_path`.
fn with_acme(config: Config, device_path: &str) -> Config {
    config
        .extension(&format!("{ACME}:badgeNumber"), Field::attribute("badge"))
        .extension(
            &format!("{ACME}:skills"),
            Field::attribute("skill").with("multi_valued", true),
        )
        .extension(&format!("{ACME}:{device_path}"), Field::attribute("laptop"))
}

fn by_type<'a>(user: &'a Value, attribute: &str, kind: &str) -> Option<&'a Value> {
    user[attribute].as_array()?.iter().find(|v| {
        v["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

fn attribute_lifecycle(url: &str, token: &str, reader: &ScimReader, with_custom: bool) {
    let ws = Workspace::new();
    ws.write_ldif(&ldif([Entry::ou("people"), ann_entry()]));
    let config = config(&ws, url, token);
    ws.apply(&if with_custom {
        with_acme(config, "devices[type=laptop].serial")
    } else {
        config
    });
    let out = ws.sync();
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
    let edited = ann_entry()
        .without("initials")
        .without("homeMail")
        .set("l", "Ottawa")
        .without("ou")
        .without("badge");
    ws.write_ldif(&ldif([Entry::ou("people"), edited]));
    let out = ws.sync();
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
    let out = ws.sync();
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
    let (server, reader) = scim2_server("s3cret");
    attribute_lifecycle(&server.url(), "s3cret", &reader, false);
}

#[test]
fn a_malformed_extension_path_is_refused_when_applied() {
    let ws = Workspace::new();
    let config = with_acme(
        config(&ws, "http://127.0.0.1:9/scim/v2", "x"),
        "devices[type=laptop]",
    )
    .inactive();
    let output = ws.try_apply(
        &config
            .clone()
            .unmap("preferredLanguage")
            .map("jobTitle", "preferredLanguage"),
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("unknown SCIM field `jobTitle`"), "{err}");

    let output = ws.try_apply(&config, &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("a [type=…] filter must be followed by .subAttribute"),
        "{err}"
    );
}
