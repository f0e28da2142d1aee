//! OAuth 2 client credentials against a real authorization server (Canaille) and a SCIM server
//! that introspects every token: tokens obtained, renewed before they expire, replaced after a
//! 401, both client authentication methods, and precise errors for wrong credentials.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use scimbridge_engine::apply::{ScimClient, check_target};
use scimbridge_model::{AuthenticationMethod, ClientAuthentication, Secret, TargetSettings};
use scimbridge_testkit::oauth::{BASIC_CLIENT, Canaille, IntrospectedScimServer, POST_CLIENT};

fn client_credentials(
    canaille: &Canaille,
    server: &IntrospectedScimServer,
    (client_id, secret): (&str, &str),
    method: ClientAuthentication,
) -> TargetSettings {
    TargetSettings {
        authentication: AuthenticationMethod::Oauth2ClientCredentials,
        token_endpoint: Some(canaille.token_endpoint()),
        client_id: Some(client_id.into()),
        client_secret: Some(Secret::Literal(secret.into())),
        client_authentication: method,
        scopes: "openid, profile".into(),
        ..TargetSettings::new(server.url())
    }
}

/// A token from Canaille, for reading the SCIM server the way a user would.
fn reader_token(canaille: &Canaille) -> String {
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(canaille.token_endpoint())
        .basic_auth(BASIC_CLIENT.0, Some(BASIC_CLIENT.1))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Why the check of `target` fails (it must).
async fn refusal(target: &TargetSettings) -> String {
    check_target(target, Duration::from_secs(10))
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn both_client_authentication_methods_and_wrong_secrets() {
    let canaille = Canaille::start(3600);
    let server = IntrospectedScimServer::start(&canaille);
    let timeout = Duration::from_secs(10);

    for (client, method) in [
        (BASIC_CLIENT, ClientAuthentication::ClientSecretBasic),
        (POST_CLIENT, ClientAuthentication::ClientSecretPost),
    ] {
        let target = client_credentials(&canaille, &server, client, method);
        let report = check_target(&target, timeout).await.unwrap();
        assert_eq!(report.users, Some(0), "{method:?}");
        assert!(report.capabilities.patch, "{method:?}");
    }

    // Each client may only use its registered method: the wrong one is refused, so the
    // method we send is the one configured.
    let target = client_credentials(
        &canaille,
        &server,
        POST_CLIENT,
        ClientAuthentication::ClientSecretBasic,
    );
    let error = refusal(&target).await;
    assert!(
        error.contains("no access token could be obtained"),
        "{error}"
    );

    let target = client_credentials(
        &canaille,
        &server,
        (BASIC_CLIENT.0, "wrong-secret"),
        ClientAuthentication::ClientSecretBasic,
    );
    let error = refusal(&target).await;
    assert!(
        error.starts_with("no access token could be obtained: token endpoint http://127.0.0.1:")
            && error
                .contains("HTTP 401: the client id or client secret was refused (invalid_client"),
        "{error}"
    );
    assert!(!error.contains("wrong-secret"), "{error}");

    // A bare bearer token the SCIM server never issued: refused credentials, not "not SCIM".
    let target = TargetSettings {
        authentication: AuthenticationMethod::Oauth2Bearer,
        access_token: Some(Secret::Literal("made-up".into())),
        ..TargetSettings::new(server.url())
    };
    let error = refusal(&target).await;
    assert!(
        error.starts_with("the target refused the credentials: GET"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_request_retried_once() {
    let mut canaille = Canaille::start(3600);
    let server = IntrospectedScimServer::start(&canaille);
    let target = client_credentials(
        &canaille,
        &server,
        BASIC_CLIENT,
        ClientAuthentication::ClientSecretBasic,
    );
    let client = ScimClient::new(&target, Duration::from_secs(10)).unwrap();
    client.check().await.unwrap();
    assert_eq!(client.token_requests(), 1);
    client.check().await.unwrap();
    assert_eq!(client.token_requests(), 1, "the token is cached");

    // A new authorization server on the same port knows none of the old tokens: the SCIM
    // server answers 401 to the cached one, and the client fetches another and retries.
    let port = canaille.port;
    drop(canaille);
    canaille = Canaille::start_on(port, 3600);
    client.check().await.unwrap();
    assert_eq!(client.token_requests(), 2);
    drop(canaille);
}

#[test]
fn a_cycle_outlives_its_tokens_without_a_failure() {
    // Tokens live 2 s; 40 users at 12 requests per second (a look-up and a create each) take
    // about 7 s, so the cycle needs several tokens.
    let canaille = Canaille::start(2);
    let server = IntrospectedScimServer::start(&canaille);
    let ws = Workspace::new().with_env("TEST_CLIENT_SECRET", BASIC_CLIENT.1);
    let (sample, people) = sample_with_people(40);
    ws.write_ldif(&sample);
    let config = Config::new()
        .data_store(DataStore::ldif("sample", &ws.ldif))
        .connection("oauth-app", &format!("{}/", server.url()))
        .target("authentication", "oauth2-client-credentials")
        .target("token_endpoint", canaille.token_endpoint())
        .target("client_id", BASIC_CLIENT.0)
        .target("client_secret", "env:TEST_CLIENT_SECRET")
        .target("scopes", "openid,profile")
        .target("requests_per_second", 12)
        // One request per user, so that the cycle is long enough.
        .target("use_bulk", false)
        .channel("people", "sample")
        .location("base_dn", PEOPLE)
        .map("userName", "uid")
        .map("givenName", "givenName")
        .map("familyName", "sn")
        .map("workEmail", "mail");
    let out = ws.apply(&config);
    assert!(
        out.contains("connection \"oauth-app\" (active, 1 channel): created"),
        "{out}"
    );
    tokens_are_renewed_during_the_cycle(&ws);

    let reader = ScimReader {
        url: server.url(),
        token: reader_token(&canaille),
    };
    let users = reader.users();
    assert_eq!(users.len(), 40);
    let expected = people[3].first_text("uid").unwrap();
    assert!(
        reader.user_by_name(expected).is_some(),
        "{expected} missing"
    );

    // A wrong secret is refused when the connection is activated, with the reason.
    let wrong = ws.with_env("TEST_CLIENT_SECRET", "not-the-secret");
    let output = wrong.try_apply(&config, &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_has(
        &err,
        &["no access token could be obtained", "invalid_client"],
    );
}

fn tokens_are_renewed_during_the_cycle(ws: &Workspace) {
    let output = ws.try_run_with(
        &["sync", "oauth-app"],
        &[("SCIMBRIDGE_LOG", "scimbridge_engine=debug")],
    );
    let log = stderr(&output);
    assert!(output.status.success(), "{}\n{log}", stdout(&output));
    assert!(
        stdout(&output).contains("created 40"),
        "{}",
        stdout(&output)
    );
    let tokens = log.matches("access token obtained").count();
    assert!(tokens >= 2, "expected renewed tokens, got {tokens}:\n{log}");
    assert!(
        !log.contains(BASIC_CLIENT.1),
        "the client secret was logged"
    );
}
