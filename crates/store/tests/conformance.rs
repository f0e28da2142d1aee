//! The SQLite store passes the shared Store conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimbridge_state::{ConfigurationStore, RecordStore};
use scimbridge_store::{Sealed, SecretKey, SqliteStore};

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open(&path, 1).await;
    scimbridge_testkit::store_conformance::run(&store).await;
    store.backend().close().await;

    // Literal secrets never reach the file in clear text.
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
    for content in [bytes, wal] {
        let text = String::from_utf8_lossy(&content);
        assert!(!text.contains(scimbridge_testkit::store_conformance::LITERAL_SECRET));
    }

    // Data survives a reopen; a different key cannot read the secrets.
    let reopened = open(&path, 1).await;
    scimbridge_testkit::store_conformance::check_persisted(&reopened).await;
    let wrong_key = open(&path, 2).await;
    let err = wrong_key.connections().await.unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    let employees = scimbridge_model::ChannelKey::new("Slack", "employees");
    let err = wrong_key.records(&employees).await.unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
}

/// The store as the product opens it: SQLite behind the encryption layer.
async fn open(path: &std::path::Path, key: u8) -> Sealed<SqliteStore> {
    let backend = SqliteStore::open(path).await.unwrap();
    Sealed::new(backend, SecretKey::from_bytes(&[key; 32]))
}
