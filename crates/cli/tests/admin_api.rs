//! The admin REST API of `scimbridge serve`, driven over HTTP as an automation script would:
//! authentication (administrator and API token; wrong passwords limited per address and user
//! name, valid tokens never locked out), data stores and connections in PingFederate's shape,
//! write-only secrets, validation (422, every problem), the activation check, status, cycles,
//! audit events, plan, run now, reset, deletes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const SECRET: &str = "T0ken-that-stays-secret";
const PASSWORD: &str = "correct horse battery staple";

/// Ann, Bob and Cara.
fn directory() -> String {
    people_named(&["ann", "bob", "cara"])
}

/// `scimbridge serve` driven through its admin API with an API token.
struct Api {
    service: Service,
    api: String,
    token: String,
}

impl Api {
    fn start(data: &std::path::Path, token: String) -> Api {
        let service = Service::start(data);
        Api {
            api: service.api(),
            service,
            token,
        }
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
    let ws = Workspace::new();
    ws.write_ldif(&directory());
    let target = ws.target(SECRET);
    let token = the_administrator_and_a_token_for_this_script(&ws);
    let api = Api::start(&ws.data, token);

    // Nothing without credentials; the administrator and the token both get in.
    let (status, body) = api.call_as("GET", "/connections", None, None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = api.call_as(
        "GET",
        "/connections",
        None,
        Some(&basic("administrator", PASSWORD)),
    );
    assert_eq!(status, 200);
    let (status, body) = api.call("GET", "/connections", None);
    assert_eq!((status, body), (200, json!([])));

    a_data_store_is_created_read_and_validated(&api, &ws.ldif);
    a_connection_is_validated_before_it_is_stored(&api, &target);
    created_inactive_then_activated_it_runs_in_the_service(&api, &target);
    plan_run_reset_and_held_operations(&api);
    errors_and_refusals(&api, &target);

    // What is in use cannot be deleted; an inactive connection can.
    let (status, body) = api.call("DELETE", "/data-stores/corp", None);
    assert_eq!(status, 409, "{body}");
    let (status, body) = api.call("DELETE", "/connections/App", None);
    assert_eq!(status, 409, "{body}");
    let (status, _) = api.call(
        "PUT",
        "/connections/App",
        Some(connection(&target.url, None, false)),
    );
    assert_eq!(status, 200);
    assert_eq!(api.call("DELETE", "/connections/App", None).0, 204);
    assert_eq!(api.call("DELETE", "/data-stores/corp", None).0, 204);

    // The secret is in no answer and no file in clear text.
    assert!(!ws.data_holds(SECRET));
    assert!(!ws.data_holds(PASSWORD));
}

/// A password too short is refused; the right one is set, and a token made and listed.
fn the_administrator_and_a_token_for_this_script(ws: &Workspace) -> String {
    let output = ws.try_run_with(
        &["admin", "password"],
        &[("SCIMBRIDGE_ADMIN_PASSWORD", "short")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("at least 12 characters"));
    ws.admin_password(PASSWORD);
    let token = ws.api_token("ci");
    assert!(token.starts_with("sbt_"), "{token}");
    assert!(ws.run(&["admin", "token", "list"]).contains("ci "));
    token
}

fn a_data_store_is_created_read_and_validated(api: &Api, ldif: &Path) {
    let corp = json!({"name": "corp", "type": "ldif", "path": ldif.display().to_string()});
    let (status, body) = api.call("POST", "/data-stores", Some(corp));
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.call("GET", "/data-stores/corp", None);
    assert_eq!((status, &body["type"]), (200, &json!("ldif")), "{body}");
    let renamed = json!({"name": "ignored", "type": "ldif", "path": ldif.display().to_string()});
    let (status, body) = api.call("PUT", "/data-stores/corp", Some(renamed));
    assert_eq!((status, &body["name"]), (200, &json!("corp")), "{body}");
    let (status, body) = api.call("PUT", "/data-stores/corp", Some(json!({"type": "ldap"})));
    assert_eq!(status, 422, "{body}");
    let (status, body) = api.call(
        "PUT",
        "/data-stores/corp",
        Some(json!({"type": "ldif", "path": ""})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["problems"],
        json!(["data store \"corp\": type ldif needs a path"])
    );
    assert_eq!(api.call("GET", "/data-stores/nowhere", None).0, 404);
}

/// Activation checks the target first; every problem of a bad document is named as the API
/// spells it.
fn a_connection_is_validated_before_it_is_stored(api: &Api, target: &TargetProcess) {
    let (status, body) = api.call(
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
    assert_eq!(api.call("GET", "/connections/App", None).0, 404);

    let mut bad = connection(&target.url, Some(SECRET), false);
    bad["outboundProvision"]["targetSettings"]
        .as_object_mut()
        .unwrap()
        .remove("scimUrl");
    let (status, body) = api.call("POST", "/connections", Some(bad));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0].as_str().unwrap().contains("`scimUrl`"),
        "{body}"
    );
    let mut bad = connection(&target.url, Some(SECRET), false);
    bad["outboundProvision"]["channels"][0]["channelSource"]["dataSource"]["id"] = json!("nowhere");
    let (status, body) = api.call("POST", "/connections", Some(bad));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0].as_str().unwrap().contains("nowhere"),
        "{body}"
    );
}

/// Created inactive: no check, and the secret never comes back. Activated by a PUT that leaves
/// the token out: the stored one is kept and passes the check, and the running service picks
/// the connection up without a restart.
fn created_inactive_then_activated_it_runs_in_the_service(api: &Api, target: &TargetProcess) {
    let (status, body) = api.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some(SECRET), false)),
    );
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(SECRET));
    let settings = &body["outboundProvision"]["targetSettings"];
    assert_eq!(settings["accessToken"], Value::Null);
    assert_eq!(settings["storedSecrets"], json!(["accessToken"]));
    let (status, _) = api.call(
        "POST",
        "/connections",
        Some(connection(&target.url, Some(SECRET), false)),
    );
    assert_eq!(status, 409);
    // Before the first cycle the plan creates three users: an answer of at most two holds the
    // first two, and counts them all.
    let (status, plan) = api.call("POST", "/connections/App/plan?limit=2", None);
    assert_eq!(status, 200, "{plan}");
    let staff = &plan["staff"];
    assert_eq!(
        staff["operations"].as_array().map(Vec::len),
        Some(2),
        "{plan}"
    );
    assert_eq!(staff["omitted"], 1, "{plan}");
    assert_eq!(
        staff["totals"],
        json!({"create": 3, "unchanged": 0}),
        "{plan}"
    );

    let (status, body) = api.call(
        "PUT",
        "/connections/App",
        Some(connection(&target.url, None, true)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    wait_until(Duration::from_secs(30), "the users arrive", || {
        target.client().users().len() >= 3
    });
    let (status, body) = api.call("GET", "/connections/App/status", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"][0]["users"], 3, "{body}");
    assert_eq!(body["channels"][0]["failed"], 0);
    let (_, cycles) = api.call("GET", "/connections/App/cycles", None);
    assert_eq!(cycles[0]["summary"]["created"], 3, "{cycles}");
    let (_, events) = api.call("GET", "/audit-events?who=ann", None);
    assert_eq!(events[0]["eventType"], "user-create", "{events}");
}

/// Plan writes nothing; run starts a cycle; reset forgets the sync state; only the reviewed
/// held operations are decided.
fn plan_run_reset_and_held_operations(api: &Api) {
    let (status, plan) = api.call("POST", "/connections/App/plan", None);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["staff"]["unchanged"], 3, "{plan}");
    let (status, body) = api.call("POST", "/connections/App/run", None);
    assert_eq!(
        (status, &body["started"]),
        (202, &json!(["staff"])),
        "{body}"
    );
    let (status, body) = api.call(
        "POST",
        "/connections/App/channels/staff/reset",
        Some(json!({"allState": false})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.call("GET", "/connections/App/held", None).1, json!([]));
    let (status, body) = api.call("POST", "/connections/App/held/approve", None);
    assert_eq!((status, &body["approved"]), (200, &json!(0)), "{body}");
    let (status, body) = api.call("POST", "/connections/App/held/discard", None);
    assert_eq!((status, &body["discarded"]), (200, &json!(0)), "{body}");
    assert_eq!(api.call("GET", "/connections/Nope/status", None).0, 404);
    let (status, body) = api.call(
        "POST",
        "/connections/App/held/approve",
        Some(json!({"guids": ["not-held"]})),
    );
    assert_eq!((status, &body["approved"]), (200, &json!(0)), "{body}");
}

/// Errors are JSON wherever they come from; a page of another site cannot make changes with
/// remembered credentials; the API takes no new env: or file: reference (the server would
/// read its own secrets).
fn errors_and_refusals(api: &Api, target: &TargetProcess) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/connections", api.api))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().unwrap();
    assert!(body["problems"][0].is_string(), "{body}");
    let (status, body) = api.call("GET", "/no-such-thing", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(api.call_as("GET", "/no-such-thing", None, None).0, 401);
    let (status, body) = api.call("GET", "/connections/App/cycles?limit=many", None);
    assert_eq!(status, 400, "{body}");

    let response = reqwest::blocking::Client::new()
        .post(format!("{}/connections/App/held/discard", api.api))
        .bearer_auth(&api.token)
        .header("origin", "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    let mut peeking = connection(&target.url, Some("file:/etc/hostname"), false);
    peeking["name"] = json!("Peek");
    let (status, body) = api.call("POST", "/connections", Some(peeking));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("targetSettings.accessToken: env: and file: references"),
        "{body}"
    );
}

#[test]
fn the_fields_catalogue_and_the_openapi_document_describe_every_body() {
    let ws = Workspace::new();
    let api = Api::start(&ws.data, ws.api_token("ci"));

    // The catalogue of SCIM fields, required ones marked.
    let (_, fields) = api.call("GET", "/fields", None);
    let field = |name: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("userName")["required"], true);
    let work_email = field("workEmail");
    assert_eq!(work_email["scimPath"], "emails[type eq \"work\"].value");
    assert_eq!(work_email["multiValued"], true);

    // The OpenAPI document describes every body: a connection's lists its fields.
    let (status, openapi) = api.call("GET", "/openapi.json", None);
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
}

#[test]
fn wrong_passwords_lock_out_one_name_from_one_address_and_never_a_valid_token() {
    let ws = Workspace::new();
    ws.admin_password(PASSWORD);
    let service = Api::start(&ws.data, ws.api_token("prometheus"));
    let root = service.service.root.clone();
    let http = no_redirects();

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
    let sign_on = |password: &str| service.service.sign_on(password);
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
    let ws = Workspace::new();
    ws.write_ldif(&directory());
    let target = ws.target(SECRET);
    let service = Api::start(&ws.data, ws.api_token("st"));
    // Something to find, so that the reads are not all 404s.
    let corp = json!({"name": "corp", "type": "ldif", "path": ws.ldif.display().to_string()});
    let (status, _) = service.call("POST", "/data-stores", Some(corp));
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
        .current_dir(ws.dir())
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
