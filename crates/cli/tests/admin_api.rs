//! The admin REST API of `scimbridge serve`, driven over HTTP as an automation script would:
//! authentication (administrator and API token; wrong passwords limited per address and user
//! name, valid tokens never locked out), data stores and connections in PingFederate's shape,
//! write-only secrets, validation (422, every problem), the activation check, status, cycles,
//! audit events, plan, run now, reset, deletes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const SECRET: &str = "T0ken-that-stays-secret";
const PASSWORD: &str = "correct horse battery staple";

fn directory() -> String {
    let mut text = String::from("version: 1\n");
    for (i, name) in ["ann", "bob", "cara"].iter().enumerate() {
        text.push_str(&format!(
            "\ndn: uid={name},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {name}\nsn: S{i}\nentryUUID: 00000000-0000-0000-0000-{i:012}\n"
        ));
    }
    text
}

struct Service {
    child: Child,
    api: String,
    token: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// `scimbridge serve` on a free port; its first line names the admin API's address.
    fn start(data: &std::path::Path, token: String) -> Service {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        let api = first
            .split("admin API on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("{first}"))
            .trim()
            .to_owned();
        Service { child, api, token }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(method, path, body, Some(&format!("Bearer {}", self.token)))
    }

    fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        authorization: Option<&str>,
    ) -> (u16, Value) {
        let mut request = reqwest::blocking::Client::new().request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.api),
        );
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn connection(target: &str, token: Option<&str>, active: bool) -> Value {
    let mut settings = json!({"scimUrl": target, "authentication": "oauth2-bearer"});
    if let Some(token) = token {
        settings["accessToken"] = json!(token);
    }
    json!({
        "name": "App",
        "active": active,
        "outboundProvision": {
            "type": "SCIM",
            "targetSettings": settings,
            "provisioningOptions": {"removeUserAction": "disable"},
            "channels": [{
                "name": "staff",
                "channelSource": {
                    "dataSource": {"id": "corp"},
                    "sourceLocation": {"baseDn": "ou=people,dc=example,dc=com"}
                },
                "attributeMapping": [
                    {"fieldName": "userName", "saasFieldInfo": {"attributeNames": ["uid"]}},
                    {"fieldName": "familyName", "saasFieldInfo": {"attributeNames": ["sn"]}}
                ]
            }]
        }
    })
}

#[test]
fn the_admin_api_creates_activates_watches_and_guards_a_connection() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory()).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), SECRET);

    // The administrator and a token for this script.
    let output = scimbridge(
        &data,
        &["admin", "password"],
        &[("SCIMBRIDGE_ADMIN_PASSWORD", "short")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("at least 12 characters"));
    ok(scimbridge(
        &data,
        &["admin", "password"],
        &[("SCIMBRIDGE_ADMIN_PASSWORD", PASSWORD)],
    ));
    let token = ok(scimbridge(&data, &["admin", "token", "create", "ci"], &[]))
        .trim()
        .to_owned();
    assert!(token.starts_with("sbt_"), "{token}");
    assert!(ok(scimbridge(&data, &["admin", "token", "list"], &[])).contains("ci "));

    let service = Service::start(&data, token);

    // Nothing without credentials; the administrator and the token both get in.
    let (status, body) = service.call_as("GET", "/connections", None, None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = service.call_as(
        "GET",
        "/connections",
        None,
        Some(&basic("administrator", PASSWORD)),
    );
    assert_eq!(status, 200);
    let (status, body) = service.call("GET", "/connections", None);
    assert_eq!((status, body), (200, json!([])));

    // The catalogue of SCIM fields, required ones marked.
    let (_, fields) = service.call("GET", "/fields", None);
    let user_name = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["required"], true);
    let work_email = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "workEmail")
        .unwrap();
    assert_eq!(work_email["scimPath"], "emails[type eq \"work\"].value");
    assert_eq!(work_email["multiValued"], true);

    // The OpenAPI document describes every body: a connection's lists its fields.
    let (status, openapi) = service.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    let schemas = openapi["components"]["schemas"].as_object().unwrap();
    assert!(!schemas.is_empty(), "{openapi}");
    for (schema, fields) in [
        ("Connection", &["name", "active", "outboundProvision"][..]),
        (
            "OutboundProvision",
            &[
                "type",
                "targetSettings",
                "provisioningOptions",
                "guard",
                "channels",
            ],
        ),
        (
            "TargetSettings",
            &["scimUrl", "authentication", "accessToken", "storedSecrets"],
        ),
        (
            "Channel",
            &[
                "name",
                "channelSource",
                "attributeMapping",
                "extensionMapping",
            ],
        ),
        (
            "DataStore",
            &["name", "type", "path", "ldap", "storedSecrets"],
        ),
        ("Problems", &["status", "problems"]),
    ] {
        let properties = &schemas[schema]["properties"];
        for field in fields {
            assert!(
                properties[field].is_object(),
                "{schema}.{field}: {properties}"
            );
        }
    }
    assert_eq!(
        openapi["paths"]["/api/connections"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/Connection"
    );

    // A data store, then a connection with a wrong token: activation checks the target first.
    let (status, body) = service.call(
        "POST",
        "/data-stores",
        Some(json!({"name": "corp", "type": "ldif", "path": ldif.display().to_string()})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = service.call("GET", "/data-stores/corp", None);
    assert_eq!((status, &body["type"]), (200, &json!("ldif")), "{body}");
    let (status, body) = service.call(
        "PUT",
        "/data-stores/corp",
        Some(json!({"name": "ignored", "type": "ldif", "path": ldif.display().to_string()})),
    );
    assert_eq!((status, &body["name"]), (200, &json!("corp")), "{body}");
    let (status, body) = service.call("PUT", "/data-stores/corp", Some(json!({"type": "ldap"})));
    assert_eq!(status, 422, "{body}");
    let (status, body) = service.call(
        "PUT",
        "/data-stores/corp",
        Some(json!({"type": "ldif", "path": ""})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["problems"],
        json!(["data store \"corp\": type ldif needs a path"])
    );
    assert_eq!(service.call("GET", "/data-stores/nowhere", None).0, 404);
    let (status, body) = service.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some("wrong-token"), true)),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("the target refused the credentials"),
        "{body}"
    );
    assert_eq!(service.call("GET", "/connections/App", None).0, 404);

    // Every problem of a bad document, named as the API spells it.
    let mut bad = connection(&target.url, Some(SECRET), false);
    bad["outboundProvision"]["targetSettings"]
        .as_object_mut()
        .unwrap()
        .remove("scimUrl");
    let (status, body) = service.call("POST", "/connections", Some(bad));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0].as_str().unwrap().contains("`scimUrl`"),
        "{body}"
    );
    let mut bad = connection(&target.url, Some(SECRET), false);
    bad["outboundProvision"]["channels"][0]["channelSource"]["dataSource"]["id"] = json!("nowhere");
    let (status, body) = service.call("POST", "/connections", Some(bad));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0].as_str().unwrap().contains("nowhere"),
        "{body}"
    );

    // Created inactive: no check, and the secret never comes back.
    let (status, body) = service.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some(SECRET), false)),
    );
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(SECRET));
    let settings = &body["outboundProvision"]["targetSettings"];
    assert_eq!(settings["accessToken"], Value::Null);
    assert_eq!(settings["storedSecrets"], json!(["accessToken"]));
    let (status, _) = service.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some(SECRET), false)),
    );
    assert_eq!(status, 409);

    // Activated by a PUT that leaves the token out: the stored one is kept and passes the check.
    let (status, body) = service.call(
        "PUT",
        "/connections/App",
        Some(connection(&target.url, None, true)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);

    // The running service picks the connection up without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.client().users().len() < 3 {
        assert!(Instant::now() < deadline, "the users did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = service.call("GET", "/connections/App/status", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"][0]["users"], 3, "{body}");
    assert_eq!(body["channels"][0]["failed"], 0);
    let (_, cycles) = service.call("GET", "/connections/App/cycles", None);
    assert_eq!(cycles[0]["summary"]["created"], 3, "{cycles}");
    let (_, events) = service.call("GET", "/audit-events?who=ann", None);
    assert_eq!(events[0]["eventType"], "user-create", "{events}");

    // Plan writes nothing; run starts a cycle; reset forgets the sync state.
    let (status, plan) = service.call("POST", "/connections/App/plan", None);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["staff"]["unchanged"], 3, "{plan}");
    let (status, body) = service.call("POST", "/connections/App/run", None);
    assert_eq!(
        (status, &body["started"]),
        (202, &json!(["staff"])),
        "{body}"
    );
    let (status, body) = service.call(
        "POST",
        "/connections/App/channels/staff/reset",
        Some(json!({"allState": false})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        service.call("GET", "/connections/App/held", None).1,
        json!([])
    );
    let (status, body) = service.call("POST", "/connections/App/held/approve", None);
    assert_eq!((status, &body["approved"]), (200, &json!(0)), "{body}");
    let (status, body) = service.call("POST", "/connections/App/held/discard", None);
    assert_eq!((status, &body["discarded"]), (200, &json!(0)), "{body}");
    assert_eq!(service.call("GET", "/connections/Nope/status", None).0, 404);

    // Only the reviewed operations are decided; a malformed decision is refused.
    let (status, body) = service.call(
        "POST",
        "/connections/App/held/approve",
        Some(json!({"guids": ["not-held"]})),
    );
    assert_eq!((status, &body["approved"]), (200, &json!(0)), "{body}");

    // Errors are JSON, wherever they come from.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/connections", service.api))
        .bearer_auth(&service.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().unwrap();
    assert!(body["problems"][0].is_string(), "{body}");
    let (status, body) = service.call("GET", "/no-such-thing", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(service.call_as("GET", "/no-such-thing", None, None).0, 401);
    let (status, body) = service.call("GET", "/connections/App/cycles?limit=many", None);
    assert_eq!(status, 400, "{body}");

    // A page of another site cannot make changes with remembered credentials.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/connections/App/held/discard", service.api))
        .bearer_auth(&service.token)
        .header("origin", "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // The API takes no new env: or file: reference: the server would read its own secrets.
    let mut peeking = connection(&target.url, Some("file:/etc/hostname"), false);
    peeking["name"] = json!("Peek");
    let (status, body) = service.call("POST", "/connections", Some(peeking));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("targetSettings.accessToken: env: and file: references"),
        "{body}"
    );

    // What is in use cannot be deleted; an inactive connection can.
    let (status, body) = service.call("DELETE", "/data-stores/corp", None);
    assert_eq!(status, 409, "{body}");
    let (status, body) = service.call("DELETE", "/connections/App", None);
    assert_eq!(status, 409, "{body}");
    let (status, _) = service.call(
        "PUT",
        "/connections/App",
        Some(connection(&target.url, None, false)),
    );
    assert_eq!(status, 200);
    assert_eq!(service.call("DELETE", "/connections/App", None).0, 204);
    assert_eq!(service.call("DELETE", "/data-stores/corp", None).0, 204);

    // The secret is in no answer and no file in clear text.
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));
        assert!(!String::from_utf8_lossy(&bytes).contains(PASSWORD));
    }
}

#[test]
fn wrong_passwords_lock_out_one_name_from_one_address_and_never_a_valid_token() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    ok(scimbridge(
        &data,
        &["admin", "password"],
        &[("SCIMBRIDGE_ADMIN_PASSWORD", PASSWORD)],
    ));
    let token = ok(scimbridge(
        &data,
        &["admin", "token", "create", "prometheus"],
        &[],
    ))
    .trim()
    .to_owned();
    let service = Service::start(&data, token);
    let root = service.api.trim_end_matches("/api").to_owned();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Wrong tokens are refused, never counted: they spend nobody's password attempts.
    for _ in 0..8 {
        let (status, _) = service.call_as("GET", "/connections", None, Some("Bearer sbt_wrong"));
        assert_eq!(status, 401);
    }

    // Wrong passwords under another name lock out that name only: the administrator, from the
    // same address, still signs on to the API and to the console.
    for _ in 0..5 {
        let (status, _) =
            service.call_as("GET", "/connections", None, Some(&basic("root", "guess")));
        assert_eq!(status, 401);
    }
    let (status, body) =
        service.call_as("GET", "/connections", None, Some(&basic("root", "guess")));
    assert_eq!(status, 429, "{body}");
    let (status, body) = service.call_as(
        "GET",
        "/connections",
        None,
        Some(&basic("administrator", PASSWORD)),
    );
    assert_eq!(status, 200, "{body}");
    let sign_on = |password: &str| {
        http.post(format!("{root}/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "username=administrator&password={}",
                password.replace(' ', "+")
            ))
            .send()
            .unwrap()
    };
    assert_eq!(sign_on(PASSWORD).status().as_u16(), 303);

    // Five wrong passwords for the administrator, between the console and the API: then even
    // the right one is refused for a while, and the answer says how long.
    for _ in 0..3 {
        let (status, _) = service.call_as(
            "GET",
            "/connections",
            None,
            Some(&basic("administrator", "guess")),
        );
        assert_eq!(status, 401);
    }
    for _ in 0..2 {
        assert_eq!(sign_on("guess").status().as_u16(), 401);
    }
    let response = http
        .get(format!("{}/connections", service.api))
        .header("authorization", basic("administrator", PASSWORD))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    assert_eq!(sign_on(PASSWORD).status().as_u16(), 429);

    // A valid token is never refused by it: automation and Prometheus keep working.
    let (status, body) = service.call("GET", "/connections", None);
    assert_eq!((status, body), (200, json!([])));
    let metrics = http
        .get(format!("{root}/metrics"))
        .bearer_auth(&service.token)
        .send()
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics.text().unwrap().contains("scimbridge_"));
}

#[test]
fn schemathesis_finds_no_server_error_and_every_answer_matches_its_schema() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory()).unwrap();
    let target = TargetProcess::start(&dir.path().join("target.db"), SECRET);
    let token = ok(scimbridge(&data, &["admin", "token", "create", "st"], &[]))
        .trim()
        .to_owned();
    let service = Service::start(&data, token);
    // Something to find, so that the reads are not all 404s.
    let (status, _) = service.call(
        "POST",
        "/data-stores",
        Some(json!({"name": "corp", "type": "ldif", "path": ldif.display().to_string()})),
    );
    assert_eq!(status, 201);
    let (status, _) = service.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some(SECRET), false)),
    );
    assert_eq!(status, 201);

    let python = scimbridge_testkit::oauth::python();
    let schemathesis = python.with_file_name("schemathesis");
    // Run in the test's folder: schemathesis keeps a cache where it runs.
    let output = Command::new(&schemathesis)
        .current_dir(dir.path())
        .arg("run")
        .arg(format!("{}/openapi.json", service.api))
        .args(["-H", &format!("Authorization: Bearer {}", service.token)])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "25",
        ])
        .args(["--seed", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/test installs it): {e}",
                schemathesis.display()
            )
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("Selected: 20/20"), "{report}");
    assert!(!report.contains("failed"), "{report}");
}
