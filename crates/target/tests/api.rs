#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use scimbridge_scim::{
    ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA,
    USER_SCHEMA,
};
use scimbridge_target::{BASE_PATH, ScimTarget, TargetConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "t0ps3cret";

struct Env {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    router: Router,
    token: Option<&'static str>,
}

async fn env_with(token: Option<&'static str>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("target.db");
    let target = ScimTarget::open(TargetConfig {
        database_path: path.clone(),
        bearer_token: token.map(str::to_owned),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    Env {
        _dir: dir,
        path,
        router: target.router(),
        token,
    }
}

async fn env() -> Env {
    env_with(None).await
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Env {
    async fn raw(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("non-JSON body: {bytes:?}"))
        };
        if !body.is_null() {
            assert_eq!(
                headers[header::CONTENT_TYPE],
                "application/scim+json",
                "{body}"
            );
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{BASE_PATH}{path}"))
            .header(header::HOST, "scim.test:8080");
        if let Some(token) = self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.raw(req.unwrap()).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, ops: Value) -> Resp {
        self.call(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    async fn create_user(&self, user_name: &str, extra: Value) -> Value {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": user_name});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        let r = self.post("/Users", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    async fn create_group(&self, name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    /// userNames of a filtered list, in response order.
    async fn names(&self, query: &str) -> Vec<String> {
        let r = self.get(&format!("/Users?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn filter_q(f: &str) -> String {
    format!("filter={}", enc(f))
}

fn assert_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([ERROR_SCHEMA]));
    assert_eq!(r.body["status"], status.to_string());
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
}

#[tokio::test]
async fn user_lifecycle() {
    let env = env().await;
    let r = env
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "userName": "bjensen@example.com",
                "externalId": "bjensen",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                "password": "hunter2",
                "active": true,
                "id": "client-chosen",
                ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let user = r.body;
    let id = user["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "client-chosen");
    let location = format!("http://scim.test:8080/scim/v2/Users/{id}");
    assert_eq!(r.headers[header::LOCATION], location.as_str());
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["version"], "W/\"1\"");
    assert_eq!(user["meta"]["created"], user["meta"]["lastModified"]);
    assert!(user["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password").is_none(), "password is never returned");
    assert_eq!(user[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "701984");

    let r = env.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, user);

    let r = env.get("/Users").await;
    assert_eq!(r.body["schemas"], json!([LIST_RESPONSE_SCHEMA]));
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["itemsPerPage"], 1);
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(r.body["Resources"][0], user);

    // PUT replaces everything but id / meta.created.
    let r = env
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER_SCHEMA], "userName": "BJensen@example.com", "displayName": "Babs", "id": "ignored"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["displayName"], "Babs");
    assert!(r.body.get("name").is_none());
    assert!(r.body.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(r.body["meta"]["created"], user["meta"]["created"]);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");

    // PATCH, Entra style.
    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.givenName", "value": "Barbara"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
                {"op": "Replace", "path": format!("{ENTERPRISE_USER_SCHEMA}:department"), "value": "Tours"},
                {"op": "Remove", "path": "displayName"}
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let patched = r.body;
    assert_eq!(patched["active"], false);
    assert_eq!(patched["name"]["givenName"], "Barbara");
    assert_eq!(
        patched["emails"],
        json!([{"type": "work", "value": "babs@example.com"}])
    );
    assert_eq!(patched[ENTERPRISE_USER_SCHEMA]["department"], "Tours");
    assert!(
        patched["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE_USER_SCHEMA))
    );
    assert!(patched.get("displayName").is_none());
    assert_eq!(patched["meta"]["version"], "W/\"3\"");
    assert_eq!(env.get(&format!("/Users/{id}")).await.body, patched);

    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "id", "value": "x"}]),
        )
        .await;
    assert_error(&r, 400, Some("mutability"));
    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x"}]),
        )
        .await;
    assert_error(&r, 400, Some("noTarget"));
    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "remove", "path": "userName"}]),
        )
        .await;
    assert_error(&r, 400, Some("invalidValue"));
    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "name[", "value": "x"}]),
        )
        .await;
    assert_error(&r, 400, Some("invalidPath"));
    let r = env
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "frobnicate", "path": "x"}]),
        )
        .await;
    assert_error(&r, 400, Some("invalidSyntax"));
    assert_eq!(
        env.get(&format!("/Users/{id}")).await.body,
        patched,
        "failed patches change nothing"
    );

    let r = env.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_null());
    assert_error(&env.get(&format!("/Users/{id}")).await, 404, None);
    assert_eq!(env.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn filters() {
    let env = env().await;
    env.create_user("alice", json!({"title": "Engineer", "emails": [{"value": "alice@corp.example", "type": "work"}], "active": true}))
        .await;
    env.create_user("bob", json!({"title": "Manager", "emails": [{"value": "bob@home.example", "type": "home"}], "active": false}))
        .await;
    env.create_user(
        "Carol",
        json!({"title": "Engineer", "externalId": "C-1", ENTERPRISE_USER_SCHEMA: {"employeeNumber": "42"}}),
    )
    .await;

    assert_eq!(
        env.names(&filter_q(r#"userName eq "ALICE""#)).await,
        ["alice"]
    );
    assert_eq!(
        env.names(&filter_q(r#"USERNAME Eq "carol""#)).await,
        ["Carol"]
    );
    assert_eq!(
        env.names(&filter_q(r#"userName eq "nobody""#)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        env.names(&filter_q(r#"title eq "engineer" and active eq true"#))
            .await,
        ["alice"]
    );
    assert_eq!(
        env.names(&filter_q(r#"userName eq "alice" and title eq "Manager""#))
            .await,
        Vec::<String>::new()
    );
    assert_eq!(
        env.names(&filter_q(r#"userName eq "bob" or userName eq "carol""#))
            .await,
        ["bob", "Carol"]
    );
    assert_eq!(
        env.names(&filter_q(r#"userName co "o""#)).await,
        ["bob", "Carol"]
    );
    assert_eq!(
        env.names(&filter_q(r#"emails co "example""#)).await,
        ["alice", "bob"]
    );
    assert_eq!(
        env.names(&filter_q(r#"emails[type eq "work" and value co "@corp"]"#))
            .await,
        ["alice"]
    );
    assert_eq!(
        env.names(&filter_q(
            "not (title eq \"engineer\") or externalId eq \"C-1\""
        ))
        .await,
        ["bob", "Carol"]
    );
    assert_eq!(
        env.names(&filter_q(r#"externalId eq "c-1""#)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        env.names(&filter_q(&format!(
            "{ENTERPRISE_USER_SCHEMA}:employeeNumber eq \"42\""
        )))
        .await,
        ["Carol"]
    );
    assert_eq!(
        env.names(&filter_q("meta.created gt \"2000-01-01T00:00:00Z\""))
            .await
            .len(),
        3
    );
    let alice_id = env
        .get(&format!("/Users?{}", filter_q(r#"userName eq "alice""#)))
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        env.names(&filter_q(&format!("id eq \"{alice_id}\""))).await,
        ["alice"]
    );
    // Parameter names are case-insensitive.
    assert_eq!(
        env.names(&format!("FILTER={}", enc(r#"userName eq "bob""#)))
            .await,
        ["bob"]
    );

    let r = env
        .get(&format!("/Users?{}", filter_q("userName eq")))
        .await;
    assert_error(&r, 400, Some("invalidFilter"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("position"),
        "{}",
        r.body
    );
    assert_error(
        &env.get(&format!("/Users?{}", filter_q("(userName pr")))
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &env.get("/Users?count=abc").await,
        400,
        Some("invalidValue"),
    );

    // Projection.
    let r = env
        .get(&format!(
            "/Users?attributes=userName,emails.value&{}",
            filter_q(r#"userName eq "alice""#)
        ))
        .await;
    let alice = &r.body["Resources"][0];
    assert_eq!(alice["emails"], json!([{"value": "alice@corp.example"}]));
    assert!(alice.get("title").is_none());
    assert!(alice.get("id").is_some() && alice.get("meta").is_some());
    let r = env
        .get(&format!(
            "/Users/{alice_id}?excludedAttributes=emails,title"
        ))
        .await;
    assert!(r.body.get("emails").is_none() && r.body.get("title").is_none());
    assert_eq!(r.body["userName"], "alice");
}

#[tokio::test]
async fn uniqueness_and_validation() {
    let env = env().await;
    let alice = env.create_user("alice", json!({})).await;
    let bob = env.create_user("bob", json!({})).await;
    let alice_id = alice["id"].as_str().unwrap();
    let bob_id = bob["id"].as_str().unwrap();

    assert_error(
        &env.post("/Users", json!({"userName": "ALICE"})).await,
        409,
        Some("uniqueness"),
    );
    assert_error(
        &env.put(&format!("/Users/{bob_id}"), json!({"userName": "Alice"}))
            .await,
        409,
        Some("uniqueness"),
    );
    assert_error(
        &env.patch(
            &format!("/Users/{bob_id}"),
            json!([{"op": "replace", "path": "userName", "value": "alice"}]),
        )
        .await,
        409,
        Some("uniqueness"),
    );
    // Changing the case of one's own userName is fine, and the index follows.
    let r = env
        .put(&format!("/Users/{alice_id}"), json!({"userName": "Alice"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env
        .patch(
            &format!("/Users/{bob_id}"),
            json!([{"op": "replace", "path": "userName", "value": "robert"}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    env.create_user("bob", json!({})).await;
    assert_eq!(
        env.names(&filter_q(r#"userName eq "robert""#)).await,
        ["robert"]
    );
    assert_eq!(
        env.names(&filter_q(r#"userName eq "alice""#)).await,
        ["Alice"]
    );

    assert_error(
        &env.post("/Users", json!({"displayName": "x"})).await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post("/Users", json!({"userName": "  "})).await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post("/Users", json!({"userName": 7})).await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post(
            "/Users",
            json!({"userName": "z", "schemas": [GROUP_SCHEMA]}),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post("/Users", json!({"userName": "z", "active": "maybe"}))
            .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post("/Groups", json!({"schemas": [GROUP_SCHEMA]}))
            .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &env.post("/Users", json!(["not", "an", "object"])).await,
        400,
        Some("invalidSyntax"),
    );

    // Malformed JSON, content types.
    let req = |ct: Option<&str>, body: &str| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(format!("{BASE_PATH}/Users"));
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    assert_error(
        &env.raw(req(Some("application/scim+json"), "{\"userName\": "))
            .await,
        400,
        Some("invalidSyntax"),
    );
    assert_error(&env.raw(req(None, "")).await, 400, Some("invalidSyntax"));
    assert_error(
        &env.raw(req(Some("text/plain"), r#"{"userName": "t"}"#))
            .await,
        415,
        None,
    );
    for (i, ct) in [
        None,
        Some("application/json"),
        Some("application/scim+json; charset=utf-8"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = env
            .raw(req(ct, &format!(r#"{{"userName": "ct{i}"}}"#)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{ct:?}: {}", r.body);
        // Without a Host header, locations are relative.
        assert!(
            r.body["meta"]["location"]
                .as_str()
                .unwrap()
                .starts_with("/scim/v2/Users/")
        );
    }
}

#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let env = env().await;
    let missing = "/Users/00000000-0000-0000-0000-000000000000";
    assert_error(&env.get(missing).await, 404, None);
    assert_error(&env.put(missing, json!({"userName": "x"})).await, 404, None);
    assert_error(
        &env.patch(
            missing,
            json!([{"op": "add", "path": "title", "value": "x"}]),
        )
        .await,
        404,
        None,
    );
    assert_error(&env.delete(missing).await, 404, None);
    assert_error(&env.get("/Groups/nope").await, 404, None);
    assert_error(&env.get("/Nope").await, 404, None);
    assert_error(&env.get("/ResourceTypes/Device").await, 404, None);
    assert_error(&env.get("/Schemas/urn:nope").await, 404, None);
    assert_error(
        &env.call(Method::POST, missing, Some(json!({}))).await,
        405,
        None,
    );
    assert_error(&env.call(Method::DELETE, "/Users", None).await, 405, None);
    assert_error(
        &env.call(Method::PUT, "/ServiceProviderConfig", Some(json!({})))
            .await,
        405,
        None,
    );
    assert_error(
        &env.post("/Bulk", json!({})).await,
        400,
        Some("invalidSyntax"),
    );
    // A user id is not a group id.
    let user = env.create_user("u", json!({})).await;
    assert_error(
        &env.get(&format!("/Groups/{}", user["id"].as_str().unwrap()))
            .await,
        404,
        None,
    );
}

#[tokio::test]
async fn bearer_authentication() {
    let env = env_with(Some(TOKEN)).await;
    env.create_user("alice", json!({})).await;

    let unauth = Env {
        _dir: tempfile::tempdir().unwrap(),
        path: env.path.clone(),
        router: env.router.clone(),
        token: None,
    };
    for path in ["/Users", "/Groups", "/Users/x"] {
        let r = unauth.get(path).await;
        assert_error(&r, 401, None);
        assert_eq!(
            r.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"scimbridge\""
        );
    }
    assert_error(
        &unauth.post("/Users", json!({"userName": "mallory"})).await,
        401,
        None,
    );
    let wrong = Env {
        token: Some("t0ps3cre"),
        ..unauth
    };
    let r = wrong.get("/Users").await;
    assert_error(&r, 401, None);
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"scimbridge\""
    );

    for auth in [
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        "Bearer".to_owned(),
    ] {
        let req = Request::get(format!("{BASE_PATH}/Users"))
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        assert_error(&wrong.raw(req).await, 401, None);
    }
    let req = Request::get(format!("{BASE_PATH}/Users"))
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let r = wrong.raw(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 1);

    // Discovery needs no token.
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/User",
        "/Schemas",
        &format!("/Schemas/{USER_SCHEMA}"),
    ] {
        let r = wrong.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let spc = wrong.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

#[tokio::test]
async fn discovery_documents() {
    let env = env().await;
    let spc = env.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["bulk"]["maxOperations"], 1000);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(spc["authenticationSchemes"], json!([]));
    assert_eq!(
        spc["meta"]["location"],
        "http://scim.test:8080/scim/v2/ServiceProviderConfig"
    );
    let rts = env.get("/ResourceTypes").await.body;
    assert_eq!(rts["totalResults"], 2);
    assert_eq!(
        rts["Resources"][0]["schemaExtensions"][0]["schema"],
        ENTERPRISE_USER_SCHEMA
    );
    let group_rt = env.get("/ResourceTypes/Group").await.body;
    assert_eq!(
        group_rt["meta"]["location"],
        "http://scim.test:8080/scim/v2/ResourceTypes/Group"
    );
    let schemas = env.get("/Schemas").await.body;
    assert_eq!(schemas["totalResults"], 3);
    let ent = env
        .get(&format!("/Schemas/{ENTERPRISE_USER_SCHEMA}"))
        .await
        .body;
    assert_eq!(ent["id"], ENTERPRISE_USER_SCHEMA);
    assert_eq!(
        ent["meta"]["location"],
        format!("http://scim.test:8080/scim/v2/Schemas/{ENTERPRISE_USER_SCHEMA}")
    );
}

#[tokio::test]
async fn groups_and_membership() {
    let env = env().await;
    let alice = env
        .create_user("alice", json!({"displayName": "Alice A"}))
        .await;
    let bob = env.create_user("bob", json!({})).await;
    let carol = env.create_user("carol", json!({})).await;
    let (a, b, c) = (
        alice["id"].as_str().unwrap(),
        bob["id"].as_str().unwrap(),
        carol["id"].as_str().unwrap(),
    );

    let group = env.create_group("Engineering", &[a, b, a]).await;
    let gid = group["id"].as_str().unwrap();
    assert_eq!(group["meta"]["resourceType"], "Group");
    assert_eq!(
        group["members"],
        json!([
            {"value": a, "type": "User", "$ref": format!("http://scim.test:8080/scim/v2/Users/{a}")},
            {"value": b, "type": "User", "$ref": format!("http://scim.test:8080/scim/v2/Users/{b}")}
        ])
    );
    assert_error(
        &env.post(
            "/Groups",
            json!({"displayName": "Bad", "members": [{"value": "no-such-id"}]}),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    // Group displayName need not be unique; the index returns both, in order.
    let other = env.create_group("engineering", &[]).await;
    let r = env
        .get(&format!(
            "/Groups?{}",
            filter_q(r#"displayName eq "ENGINEERING""#)
        ))
        .await;
    assert_eq!(r.body["totalResults"], 2);
    assert_eq!(r.body["Resources"][0]["id"], gid);
    let r = env
        .get(&format!(
            "/Groups?{}",
            filter_q(&format!("members[value eq \"{b}\"]"))
        ))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], gid);

    // Entra-style member add/remove.
    let r = env
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Add", "path": "members", "value": [{"value": c}, {"value": a}]}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3);
    let r = env
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}]),
        )
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let r = env
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}]),
        )
        .await;
    let values: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, [c]);
    assert_error(
        &env.patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    let r = env
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "replace", "path": "displayName", "value": "Eng"}]),
        )
        .await;
    assert_eq!(r.body["displayName"], "Eng");
    assert_eq!(
        env.get(&format!("/Groups?{}", filter_q(r#"displayName eq "eng""#)))
            .await
            .body["totalResults"],
        1
    );

    // Nested group, and PUT.
    let oid = other["id"].as_str().unwrap();
    let r = env
        .put(
            &format!("/Groups/{oid}"),
            json!({"displayName": "Parent", "members": [{"value": gid}, {"value": a}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"][0]["type"], "Group");
    assert_eq!(
        r.body["members"][0]["$ref"],
        format!("http://scim.test:8080/scim/v2/Groups/{gid}")
    );
    assert_error(
        &env.put(
            &format!("/Groups/{oid}"),
            json!({"displayName": "Parent", "members": [{"value": oid}]}),
        )
        .await,
        400,
        Some("invalidValue"),
    );

    // Deleting a user or group removes it from every group's members.
    assert_eq!(
        env.delete(&format!("/Users/{c}")).await.status,
        StatusCode::NO_CONTENT
    );
    let g = env.get(&format!("/Groups/{gid}")).await.body;
    assert!(g.get("members").is_none(), "{g}");
    assert!(g["meta"]["version"] != r.body["meta"]["version"]);
    assert_eq!(
        env.delete(&format!("/Users/{a}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.delete(&format!("/Groups/{gid}")).await.status,
        StatusCode::NO_CONTENT
    );
    let parent = env.get(&format!("/Groups/{oid}")).await.body;
    assert!(parent.get("members").is_none(), "{parent}");
    assert_eq!(env.get("/Groups").await.body["totalResults"], 1);
}

#[tokio::test]
async fn persistence_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.db");
    let config = || TargetConfig {
        database_path: path.clone(),
        bearer_token: None,
        ..TargetConfig::default()
    };
    let (users, group) = {
        let target = ScimTarget::open(config()).await.unwrap();
        let env = Env {
            _dir: tempfile::tempdir().unwrap(),
            path: path.clone(),
            router: target.router(),
            token: None,
        };
        let mut users = Vec::new();
        for name in ["zed", "amy", "Mike"] {
            users.push(env.create_user(name, json!({"title": "t"})).await);
        }
        let id1 = users[1]["id"].as_str().unwrap().to_owned();
        let r = env
            .patch(
                &format!("/Users/{id1}"),
                json!([{"op": "replace", "path": "title", "value": "patched"}]),
            )
            .await;
        users[1] = r.body;
        let group = env
            .create_group("G", &[users[0]["id"].as_str().unwrap()])
            .await;
        (env.get("/Users").await.body, group)
    };

    let target = ScimTarget::open(config()).await.unwrap();
    let env = Env {
        _dir: dir,
        path: path.clone(),
        router: target.router(),
        token: None,
    };
    assert_eq!(env.get("/Users").await.body, users);
    assert_eq!(
        env.names("").await,
        ["zed", "amy", "Mike"],
        "creation order survives"
    );
    assert_eq!(
        env.get(&format!("/Groups/{}", group["id"].as_str().unwrap()))
            .await
            .body,
        group
    );
    // Indexes are rebuilt.
    assert_eq!(
        env.names(&filter_q(r#"userName eq "MIKE""#)).await,
        ["Mike"]
    );
    assert_error(
        &env.post("/Users", json!({"userName": "AMY"})).await,
        409,
        Some("uniqueness"),
    );
    // New resources sort after the reloaded ones.
    env.create_user("new", json!({})).await;
    assert_eq!(env.names("").await, ["zed", "amy", "Mike", "new"]);
}

#[tokio::test]
async fn paging() {
    let env = env().await;
    for i in 0..25 {
        env.create_user(&format!("user{i:02}"), json!({})).await;
    }
    let page = |q: &'static str| {
        let env = &env;
        async move { env.get(&format!("/Users?{q}")).await.body }
    };
    let p = page("startIndex=1&count=10").await;
    assert_eq!(
        (
            p["totalResults"].as_u64(),
            p["itemsPerPage"].as_u64(),
            p["startIndex"].as_u64()
        ),
        (Some(25), Some(10), Some(1))
    );
    assert_eq!(p["Resources"][0]["userName"], "user00");
    assert_eq!(p["Resources"][9]["userName"], "user09");
    let p = page("startIndex=11&count=10").await;
    assert_eq!(p["Resources"][0]["userName"], "user10");
    let p = page("startIndex=21&count=10").await;
    assert_eq!(
        (p["totalResults"].as_u64(), p["itemsPerPage"].as_u64()),
        (Some(25), Some(5))
    );
    assert_eq!(p["Resources"][4]["userName"], "user24");
    let p = page("startIndex=100").await;
    assert_eq!(
        (p["totalResults"].as_u64(), p["itemsPerPage"].as_u64()),
        (Some(25), Some(0))
    );
    let p = page("count=0").await;
    assert_eq!(
        (p["totalResults"].as_u64(), p["itemsPerPage"].as_u64()),
        (Some(25), Some(0))
    );
    let p = page("startIndex=0&count=-5").await;
    assert_eq!(
        (p["startIndex"].as_u64(), p["itemsPerPage"].as_u64()),
        (Some(1), Some(0))
    );
    let p = page("count=5000").await;
    assert_eq!(p["itemsPerPage"], 25);
    let q = format!(
        "{}&startIndex=2&count=2",
        filter_q(r#"userName sw "user1""#)
    );
    let p = env.get(&format!("/Users?{q}")).await.body;
    assert_eq!(p["totalResults"], 10);
    let names: Vec<&str> = p["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user11", "user12"]);
}

#[tokio::test]
async fn serves_over_tcp_until_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let target = ScimTarget::open(TargetConfig {
        database_path: dir.path().join("t.db"),
        bearer_token: Some(TOKEN.into()),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(target.serve(listener, async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"userName":"tcp"}"#;
    let request = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response.contains(&format!("location: http://{addr}/scim/v2/Users/")),
        "{response}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn concurrent_creates_keep_uniqueness() {
    let env = env().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let router = env.router.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post(format!("{BASE_PATH}/Users"))
                .body(Body::from(
                    json!({"userName": format!("same{}", i % 4)}).to_string(),
                ))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 4);
    assert_eq!(env.get("/Users").await.body["totalResults"], 4);
}

#[tokio::test]
async fn bulk_creates_with_bulk_id_references_and_reports_each_result() {
    let env = env().await;
    env.create_user("taken", json!({})).await;
    let r = env
        .post(
            "/Bulk",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a",
                     "data": {"schemas": [USER_SCHEMA], "userName": "ann"}},
                    {"method": "POST", "path": "/Users", "bulkId": "t",
                     "data": {"schemas": [USER_SCHEMA], "userName": "taken"}},
                    {"method": "POST", "path": "/Groups", "bulkId": "g",
                     "data": {"schemas": [GROUP_SCHEMA], "displayName": "crew",
                              "members": [{"value": "bulkId:a"}]}},
                    {"method": "PATCH", "path": "/Users/bulkId:a",
                     "data": {"schemas": [PATCH_OP_SCHEMA],
                              "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}},
                    {"method": "POST", "path": "/Groups",
                     "data": {"schemas": [GROUP_SCHEMA], "displayName": "ghosts",
                              "members": [{"value": "bulkId:nobody"}]}}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let results = r.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "409", "201", "200", "409"]);
    assert_eq!(results[0]["bulkId"], "a");
    let ann_location = results[0]["location"].as_str().unwrap();
    let ann_id = ann_location.rsplit('/').next().unwrap();
    assert!(results[0]["version"].as_str().unwrap().starts_with("W/"));
    assert_eq!(results[1]["response"]["scimType"], "uniqueness");

    let ann = env.get(&format!("/Users/{ann_id}")).await.body;
    assert_eq!(ann["title"], "Lead");
    let group_id = results[2]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let group = env.get(&format!("/Groups/{group_id}")).await.body;
    assert_eq!(group["members"][0]["value"], ann_id);

    // failOnErrors stops after that many errors; limits are enforced.
    let r = env
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
                   "Operations": [
                       {"method": "DELETE", "path": "/Users/missing"},
                       {"method": "POST", "path": "/Users", "data": {"schemas": [USER_SCHEMA], "userName": "never"}}
                   ]}),
        )
        .await;
    assert_eq!(
        r.body["Operations"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let r = env
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": too_many}),
        )
        .await;
    assert_error(&r, 413, None);
}

#[tokio::test]
async fn etags_and_if_match() {
    let env = env().await;
    let r = env
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "userName": "ann"}),
        )
        .await;
    let etag = r.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, r.body["meta"]["version"].as_str().unwrap());
    let id = r.body["id"].as_str().unwrap().to_owned();

    let conditional = |method: Method, version: &str, body: Option<Value>| {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{BASE_PATH}/Users/{id}"))
            .header(header::HOST, "scim.test:8080")
            .header(header::IF_MATCH, version);
        let req = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/scim+json");
                req.body(Body::from(b.to_string()))
            }
            None => req.body(Body::empty()),
        };
        req.unwrap()
    };
    let put = json!({"schemas": [USER_SCHEMA], "userName": "ann", "title": "A"});
    let r = env
        .raw(conditional(Method::PUT, &etag, Some(put.clone())))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let newer = r.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    // The old version is stale now.
    let r = env.raw(conditional(Method::PUT, &etag, Some(put))).await;
    assert_error(&r, 412, None);
    let r = env.raw(conditional(Method::DELETE, &etag, None)).await;
    assert_error(&r, 412, None);
    let r = env.raw(conditional(Method::DELETE, "*", None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn search_with_post() {
    let env = env().await;
    env.create_user("ann", json!({"title": "Lead"})).await;
    env.create_user("bob", json!({})).await;
    let a = env.create_user("anna", json!({})).await;
    env.create_group("anchors", &[a["id"].as_str().unwrap()])
        .await;
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"an\" or displayName sw \"an\"", "attributes": ["userName", "displayName"],
        "startIndex": 1, "count": 10});
    let r = env.post("/Users/.search", search.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 2);
    assert!(r.body["Resources"][0].get("title").is_none(), "{}", r.body);
    let r = env.post("/.search", search).await;
    assert_eq!(r.body["totalResults"], 3, "{}", r.body);
    assert_eq!(r.body["Resources"][2]["displayName"], "anchors");
}

#[tokio::test]
async fn basic_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let target = ScimTarget::open(TargetConfig {
        database_path: dir.path().join("t.db"),
        basic_credentials: Some(("admin".into(), "pa:ss".into())),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    let env = Env {
        _dir: dir,
        path: Default::default(),
        router: target.router(),
        token: None,
    };
    let with = |authorization: &str| {
        Request::get(format!("{BASE_PATH}/Users"))
            .header(header::AUTHORIZATION, authorization.to_owned())
            .body(Body::empty())
            .unwrap()
    };
    // base64("admin:pa:ss") and base64("admin:wrong")
    assert_eq!(
        env.raw(with("Basic YWRtaW46cGE6c3M=")).await.status,
        StatusCode::OK
    );
    let r = env.raw(with("Basic YWRtaW46d3Jvbmc=")).await;
    assert_error(&r, 401, None);
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"scimbridge\""
    );
    assert_error(&env.raw(with("Bearer x")).await, 401, None);
    let spc = env.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["authenticationSchemes"][0]["type"], "httpbasic");
}

#[tokio::test]
async fn faults_on_demand_and_request_counts() {
    let dir = tempfile::tempdir().unwrap();
    let target = ScimTarget::open(TargetConfig {
        database_path: dir.path().join("t.db"),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    let env = Env {
        _dir: tempfile::tempdir().unwrap(),
        path: Default::default(),
        router: target.router(),
        token: None,
    };
    target.set_faults(scimbridge_target::Faults {
        error_every: Some((2, 429)),
        retry_after: Some(7),
        ..Default::default()
    });
    let first = env.get("/Users").await;
    assert_eq!(first.status, StatusCode::OK);
    let second = env.get("/Users").await;
    assert_error(&second, 429, None);
    assert_eq!(second.headers[header::RETRY_AFTER], "7");
    // Discovery is never faulted, nor counted.
    assert_eq!(
        env.get("/ServiceProviderConfig").await.status,
        StatusCode::OK
    );

    // A dropped connection: the answer breaks, and nothing was done.
    target.set_faults(scimbridge_target::Faults {
        drop_every: Some(1),
        ..Default::default()
    });
    let request = Request::post(format!("{BASE_PATH}/Users"))
        .header(header::CONTENT_TYPE, "application/scim+json")
        .body(Body::from(
            json!({"schemas": [USER_SCHEMA], "userName": "dropped"}).to_string(),
        ))
        .unwrap();
    let response = env.router.clone().oneshot(request).await.unwrap();
    assert!(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .is_err()
    );

    // Latency after the work: the user exists although the answer is late.
    target.set_faults(scimbridge_target::Faults {
        latency_after: std::time::Duration::from_millis(300),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    env.create_user("late", json!({})).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    target.set_faults(scimbridge_target::Faults::default());
    let users = env.get("/Users").await.body;
    let names: Vec<&str> = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["late"], "the dropped create did nothing");

    let requests = target.requests();
    assert_eq!(requests["GET /Users"], 3, "{requests:?}");
    assert_eq!(requests["POST /Users"], 2, "{requests:?}");
}

#[tokio::test]
async fn sorting() {
    let env = env().await;
    env.create_user(
        "carol",
        json!({"name": {"familyName": "Zeta"}, "emails": [{"value": "c@x", "primary": true}]}),
    )
    .await;
    env.create_user(
        "Alice",
        json!({"name": {"familyName": "beta"}, "emails": [{"value": "z@x"}]}),
    )
    .await;
    env.create_user("bob", json!({})).await;
    let names = |body: &Value| -> Vec<String> {
        body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = env.get("/Users?sortBy=userName").await;
    assert_eq!(names(&r.body), ["Alice", "bob", "carol"]);
    let r = env
        .get("/Users?sortBy=userName&sortOrder=descending&count=2")
        .await;
    assert_eq!(names(&r.body), ["carol", "bob"]);
    assert_eq!(r.body["totalResults"], 3);
    // Missing values go last; a multi-valued attribute sorts by its primary value.
    let r = env.get("/Users?sortBy=name.familyName").await;
    assert_eq!(names(&r.body), ["Alice", "carol", "bob"]);
    let r = env.get("/Users?sortBy=emails&sortOrder=descending").await;
    assert_eq!(names(&r.body), ["Alice", "carol", "bob"]);
    assert_error(
        &env.get("/Users?sortBy=userName&sortOrder=up").await,
        400,
        Some("invalidValue"),
    );
    let r = env
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "sortBy": "userName", "sortOrder": "descending"}),
        )
        .await;
    assert_eq!(names(&r.body), ["carol", "bob", "Alice"]);
}

/// One member added to or removed from a large group is one row in the database, the answer
/// to `Prefer: return=minimal` carries no members, and the members read back after a restart.
#[tokio::test]
async fn member_changes_touch_one_row_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scim.db");
    let config = || TargetConfig {
        database_path: path.clone(),
        ..TargetConfig::default()
    };
    let open = |target: ScimTarget| Env {
        _dir: tempfile::tempdir().unwrap(),
        path: path.clone(),
        router: target.router(),
        token: None,
    };
    let env = open(ScimTarget::open(config()).await.unwrap());
    let mut ids = Vec::new();
    for i in 0..300 {
        let user = env.create_user(&format!("member{i}"), json!({})).await;
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let all: Vec<&str> = ids[..299].iter().map(String::as_str).collect();
    let group = env.create_group("Everyone", &all).await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let rows = || async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let members: i64 =
            sqlx::query_scalar("SELECT count(*) FROM scim_group_members WHERE group_id = ?")
                .bind(&gid)
                .fetch_one(&pool)
                .await
                .unwrap();
        let json: String = sqlx::query_scalar("SELECT json FROM scim_resources WHERE id = ?")
            .bind(&gid)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        (members, json)
    };
    let (members, json) = rows().await;
    assert_eq!(members, 299);
    assert!(!json.contains("members"), "{json}");

    // Engine-style add with `Prefer: return=minimal`: 204, the new version as the ETag.
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(format!("/scim/v2/Groups/{gid}"))
        .header(header::CONTENT_TYPE, "application/scim+json")
        .header("prefer", "return=minimal")
        .body(Body::from(
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": ids[299]}]}
            ]})
            .to_string(),
        ))
        .unwrap();
    let r = env.raw(request).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.body, Value::Null);
    assert_eq!(r.headers[header::ETAG], "W/\"2\"");
    assert_eq!(r.headers["preference-applied"], "return=minimal");
    assert_eq!(rows().await.0, 300);

    // Removing by filter, re-adding a member already there, and removing a stranger.
    let r = env
        .patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                {"op": "add", "path": "members", "value": [{"value": ids[1], "display": "ignored"}]},
                {"op": "remove", "path": "members[value eq \"nobody\"]"}
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let values: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 299);
    assert!(!values.contains(&ids[0].as_str()));
    assert_eq!(values[0], ids[1], "members keep their order");
    assert!(r.body["members"][0].get("display").is_none());
    assert_eq!(r.body["meta"]["version"], "W/\"3\"");
    // A member that does not exist fails the whole request.
    assert_error(
        &env.patch(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])},
                {"op": "add", "path": "members", "value": [{"value": "ghost"}]}
            ]),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    // Deleting a user takes its row away too.
    env.delete(&format!("/Users/{}", ids[2])).await;
    let before = env.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(before["members"].as_array().unwrap().len(), 298);
    assert_eq!(rows().await.0, 298);
    // A filter on members still finds the group.
    let found = env
        .get(&format!(
            "/Groups?{}",
            filter_q(&format!("members[value eq \"{}\"]", ids[5]))
        ))
        .await;
    assert_eq!(found.body["totalResults"], 1);
    drop(env);

    let env = open(ScimTarget::open(config()).await.unwrap());
    assert_eq!(env.get(&format!("/Groups/{gid}")).await.body, before);
}

/// A database written before members had rows of their own is moved over when opened.
#[tokio::test]
async fn members_kept_inside_the_group_json_are_moved_to_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE scim_resources (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, \
         resource_type TEXT NOT NULL, json TEXT NOT NULL, created TEXT NOT NULL, \
         last_modified TEXT NOT NULL, version INTEGER NOT NULL, unique_name TEXT);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let meta = |kind: &str| {
        json!({"resourceType": kind, "created": "2026-01-01T00:00:00Z",
        "lastModified": "2026-01-01T00:00:00Z", "version": "W/\"1\""})
    };
    let user =
        json!({"schemas": [USER_SCHEMA], "id": "u1", "userName": "old", "meta": meta("User")});
    let group = json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "Old",
        "members": [{"value": "u1", "type": "User"}], "meta": meta("Group")});
    for (seq, id, kind, json, name) in [
        (1, "u1", "User", &user, Some("old")),
        (2, "g1", "Group", &group, None),
    ] {
        sqlx::query("INSERT INTO scim_resources VALUES (?, ?, ?, ?, '', '', 1, ?)")
            .bind(seq)
            .bind(id)
            .bind(kind)
            .bind(json.to_string())
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let target = ScimTarget::open(TargetConfig {
        database_path: path.clone(),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    let env = Env {
        _dir: dir,
        path: path.clone(),
        router: target.router(),
        token: None,
    };
    let g = env.get("/Groups/g1").await.body;
    assert_eq!(g["members"][0]["value"], "u1");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let json: String = sqlx::query_scalar("SELECT json FROM scim_resources WHERE id = 'g1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!json.contains("members"), "{json}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM scim_group_members")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
