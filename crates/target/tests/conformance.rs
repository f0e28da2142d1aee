//! The bundled target passes scim2-tester (PyPI `scim2-tester`, run by `scim2 test` of
//! `scim2-cli`) with zero failures: discovery, CRUD, list, `.search`, attribute projection, and
//! PATCH add, replace and remove of every attribute of every resource type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use scimbridge_target::{BASE_PATH, ScimTarget, TargetConfig};

/// `scim2` beside the test virtual environment's python (scripts/test installs both).
fn scim2_cli() -> PathBuf {
    let python = std::env::var("SCIMBRIDGE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("SCIMBRIDGE_TEST_PYTHON is not set: run scripts/test, which installs scim2-cli and scim2-tester")
    });
    PathBuf::from(python).parent().unwrap().join("scim2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_finds_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let target = ScimTarget::open(TargetConfig {
        database_path: dir.path().join("target.db"),
        bearer_token: Some("conformance-t0ken".into()),
        ..TargetConfig::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{BASE_PATH}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(target.serve(listener, async {
        let _ = stopped.await;
    }));

    let cli = scim2_cli();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&cli)
            .args([
                "--url",
                &url,
                "-h",
                "Authorization: Bearer conformance-t0ken",
                "test",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.display()))
    })
    .await
    .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("CRITICAL"))
        .collect();
    let successes = text.lines().filter(|l| l.starts_with("SUCCESS")).count();
    assert!(failures.is_empty(), "scim2-tester failures:\n{text}");
    assert!(
        output.status.success(),
        "scim2 test exited {:?}:\n{text}",
        output.status
    );
    // The checks really ran (135 with scim2-tester 0.5.2).
    assert!(successes >= 130, "only {successes} checks passed:\n{text}");
}
