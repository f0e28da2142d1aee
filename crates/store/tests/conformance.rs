//! The SQLite store passes the shared Store conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimbridge_state::{ConfigurationStore, RecordStore};
use scimbridge_store::{SecretKey, SqliteStore};

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, SecretKey::from_bytes(&[1; 32]))
        .await
        .unwrap();
    scimbridge_testkit::store_conformance::run(&store).await;
    store.close().await;

    // Literal secrets never reach the file in clear text.
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
    for content in [bytes, wal] {
        let text = String::from_utf8_lossy(&content);
        assert!(!text.contains(scimbridge_testkit::store_conformance::LITERAL_SECRET));
    }

    // Data survives a reopen; a different key cannot read the secrets.
    let reopened = SqliteStore::open(&path, SecretKey::from_bytes(&[1; 32]))
        .await
        .unwrap();
    scimbridge_testkit::store_conformance::check_persisted(&reopened).await;
    let wrong_key = SqliteStore::open(&path, SecretKey::from_bytes(&[2; 32]))
        .await
        .unwrap();
    let err = wrong_key.connections().await.unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    let employees = scimbridge_model::ChannelKey::new("Slack", "employees");
    let err = wrong_key.records(&employees).await.unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
}
