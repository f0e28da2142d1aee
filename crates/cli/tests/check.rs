//! `scimbridge check` and the activation check: a precise reason for each way a target can be
//! wrong, and never a false success.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use scimbridge_engine::apply::check_target;
use scimbridge_model::TargetSettings;
use scimbridge_testkit::tls::{TestPki, TlsServer};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn failure(target: &TargetSettings) -> String {
    match check_target(target, TIMEOUT).await {
        Ok(report) => panic!("check passed: {report:?}"),
        Err(e) => {
            eprintln!("check failed as expected: {e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn wrong_urls_and_non_scim_answers_are_named() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    let bearer = |url: &str| TargetSettings {
        authentication: scimbridge_model::AuthenticationMethod::Oauth2Bearer,
        access_token: Some(scimbridge_model::Secret::Literal("t0ken".into())),
        ..TargetSettings::new(url)
    };

    let report = check_target(&bearer(&target.url), TIMEOUT).await.unwrap();
    assert_eq!(report.users, Some(0));
    assert_eq!(report.users_url, format!("{}/Users", target.url));

    let port = scimbridge_testkit::free_port();
    let error = failure(&bearer(&format!("http://127.0.0.1:{port}/scim/v2"))).await;
    assert!(
        error.starts_with("nothing answers at target.scim_url: GET"),
        "{error}"
    );

    let error = failure(&TargetSettings {
        users_path: "/People".into(),
        ..bearer(&target.url)
    })
    .await;
    assert!(
        error.starts_with("no SCIM Users resource at this URL") && error.contains("/People"),
        "{error}"
    );

    let error = failure(&TargetSettings::new(&target.url)).await;
    assert!(
        error.starts_with("the target refused the credentials"),
        "{error}"
    );

    // The header type is the scheme word sent: the bundled target takes only Bearer.
    let error = failure(&TargetSettings {
        authorization_header_type: "Token".into(),
        ..bearer(&target.url)
    })
    .await;
    assert!(
        error.starts_with("the target refused the credentials"),
        "{error}"
    );
}

#[tokio::test]
async fn tls_needs_a_trusted_ca_and_the_client_certificate_when_asked() {
    let dir = temp_dir();
    let pki = TestPki::generate(dir.path());
    let server = TlsServer::start(&pki, false);
    let ca = Some(pki.ca_certificate.display().to_string());

    let error = failure(&TargetSettings::new(server.url("/scim"))).await;
    assert!(
        error.starts_with("TLS failed; check target.ca_certificate"),
        "{error}"
    );

    let trusted = TargetSettings {
        ca_certificate: ca.clone(),
        ..TargetSettings::new(server.url("/scim"))
    };
    let report = check_target(&trusted, TIMEOUT).await.unwrap();
    assert_eq!(report.users, Some(0));
    assert!(!report.capabilities.discovered);

    // A web page where the SCIM service should be is not a success.
    let error = failure(&TargetSettings {
        ca_certificate: ca.clone(),
        ..TargetSettings::new(server.url("/html"))
    })
    .await;
    assert!(
        error.starts_with("this is not a SCIM service") && error.contains("text/html"),
        "{error}"
    );

    // Mutual TLS: refused without the client certificate, accepted with it.
    let mutual = TlsServer::start(&pki, true);
    let without = TargetSettings {
        ca_certificate: ca.clone(),
        ..TargetSettings::new(mutual.url("/scim"))
    };
    let error = failure(&without).await;
    assert!(error.starts_with("TLS failed"), "{error}");
    let with = TargetSettings {
        client_certificate: Some(pki.client_certificate.display().to_string()),
        client_key: Some(pki.client_key.display().to_string()),
        ..without
    };
    check_target(&with, TIMEOUT).await.unwrap();
}

#[test]
fn the_check_command_reports_what_it_proved() {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    // Inactive: stored without a check.
    ws.apply(
        &Config::new()
            .connection("bundled", &target.url)
            .inactive()
            .bearer("t0ken"),
    );
    let out = ws.run(&["check", "bundled"]);
    assert!(
        out.contains(&format!(
            "users: {}/Users answers a SCIM list (0 users)",
            target.url
        )),
        "{out}"
    );
    assert!(out.contains("capabilities: PATCH yes"), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");

    drop(target);
    let output = ws.try_run(&["check", "bundled"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "connection \"bundled\": target check failed: nothing answers at target.scim_url"
        ),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn basic_authentication_against_the_bundled_target() {
    let ws = Workspace::new();
    let password_file = ws.path("password");
    std::fs::write(&password_file, "b4sic-pass\n").unwrap();
    let target = TargetProcess::serve(
        &ws.path("target.db"),
        &[
            "--basic-user",
            "provisioner",
            "--basic-password-file",
            &path_str(&password_file),
        ],
    );
    let basic = |password: &str| TargetSettings {
        authentication: scimbridge_model::AuthenticationMethod::Basic,
        basic_username: Some("provisioner".into()),
        basic_password: Some(scimbridge_model::Secret::Literal(password.into())),
        // Only the chosen method's fields are used: this token is ignored.
        access_token: Some(scimbridge_model::Secret::Literal("ignored".into())),
        ..TargetSettings::new(target.url.as_str())
    };
    let outcome = check_target(&basic("b4sic-pass"), TIMEOUT).await;
    let error = failure(&basic("wrong")).await;
    drop(target);
    assert_eq!(outcome.unwrap().users, Some(0));
    assert!(
        error.starts_with("the target refused the credentials")
            && error.contains("invalid user name or password"),
        "{error}"
    );
    assert!(!error.contains("wrong"), "{error}");
}

#[tokio::test]
async fn a_target_without_authentication_takes_none() {
    let ws = Workspace::new();
    let target = TargetProcess::serve(&ws.path("target.db"), &[]);
    let outcome = check_target(&TargetSettings::new(target.url.as_str()), TIMEOUT).await;
    drop(target);
    let report = outcome.unwrap();
    assert_eq!(report.users, Some(0));
    assert!(report.capabilities.bulk && report.capabilities.etag && report.capabilities.patch);
}
