//! The SQLite store, sealed as the product uses it, passes the shared Store conformance suite;
//! and what it keeps on disk is encrypted, lasts, and reads as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use scimbridge_model::{ChannelKey, Connection, Secret, TargetSettings};
use scimbridge_state::{ConfigurationStore, RecordKey, RecordStore, full_message};
use scimbridge_store::{Sealed, SecretKey, SqliteStore};
use scimbridge_testkit::store_conformance::{
    LITERAL_SECRET, check_persisted, save_secrets_and_history,
};
use serde_json::json;
use tempfile::TempDir;

scimbridge_testkit::store_conformance_tests!(fresh_store);

async fn fresh_store() -> (Sealed<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state.db"), 1).await;
    (store, dir)
}

async fn open(path: &Path, key: u8) -> Sealed<SqliteStore> {
    let backend = SqliteStore::open(path).await.unwrap();
    Sealed::new(backend, SecretKey::from_bytes(&[key; 32]))
}

/// A store holding every kind of secret, closed.
async fn saved_and_closed() -> TempDir {
    let (store, dir) = fresh_store().await;
    save_secrets_and_history(&store).await;
    store.backend().close().await;
    dir
}

#[tokio::test]
async fn literal_secrets_and_images_never_reach_the_file_in_clear() {
    let dir = saved_and_closed().await;
    let bytes = std::fs::read(dir.path().join("state.db")).unwrap();
    let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
    for content in [bytes, wal] {
        let text = String::from_utf8_lossy(&content);
        assert!(!text.contains(LITERAL_SECRET));
        assert!(!text.contains("Zoë"), "images are encrypted");
    }
}

#[tokio::test]
async fn data_survives_a_reopen() {
    let dir = saved_and_closed().await;
    let reopened = open(&dir.path().join("state.db"), 1).await;
    check_persisted(&reopened).await;
}

#[tokio::test]
async fn another_key_cannot_read_the_secrets_or_images() {
    let dir = saved_and_closed().await;
    let wrong_key = open(&dir.path().join("state.db"), 2).await;
    let err = full_message(&wrong_key.connections().await.unwrap_err());
    assert!(err.contains("does not decrypt"), "{err}");
    let err = full_message(&wrong_key.data_stores().await.unwrap_err());
    assert!(err.contains("does not decrypt"), "{err}");
    let employees = ChannelKey::new("Slack", "employees");
    let err = full_message(&wrong_key.records(&employees).await.unwrap_err());
    assert!(err.contains("does not decrypt"), "{err}");
}

/// Rows as earlier versions wrote them: secrets and images `enc:v1:` text bound to their
/// owner, images from before images were encrypted as plain JSON, and records without the
/// lower-cased user name and the normalised DN the look-ups by key use.
#[tokio::test]
async fn rows_in_the_format_of_earlier_versions_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let key = SecretKey::from_bytes(&[1; 32]);
    let backend = SqliteStore::open(&path).await.unwrap();
    backend.close().await;

    let mut connection = Connection {
        name: "Legacy".into(),
        active: true,
        target: TargetSettings::new("http://legacy"),
        options: Default::default(),
        guard: Default::default(),
        channels: vec![],
    };
    let sealed_token = key.encrypt("legacy-token", "connection/Legacy").unwrap();
    connection.target.access_token = Some(Secret::Literal(sealed_token));
    let image = json!({"userName": "ann", "password": "first"});
    let sealed_image = key
        .encrypt(&image.to_string(), "record/Legacy/people/g1")
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO connections (name, config) VALUES ('Legacy', ?)")
        .bind(serde_json::to_string(&connection).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    for (guid, stored_image) in [("g1", sealed_image), ("g2", image.to_string())] {
        sqlx::query(
            "INSERT INTO records (connection, channel, guid, dn, user_name, applied_image, status) \
             VALUES ('Legacy', 'people', ?, 'uid=ann', 'Zoë', ?, 'provisioned')",
        )
        .bind(guid)
        .bind(stored_image)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = open(&path, 1).await;
    let read = store.connection("Legacy").await.unwrap().unwrap();
    assert_eq!(
        read.target.access_token,
        Some(Secret::Literal("legacy-token".into()))
    );
    let records = store
        .records(&ChannelKey::new("Legacy", "people"))
        .await
        .unwrap();
    let images: Vec<_> = records.iter().map(|r| r.applied_image.clone()).collect();
    assert_eq!(images, [Some(image.clone()), Some(image)]);
    let names = ["ZOË".to_owned()];
    let found = store
        .record_heads_with(
            &ChannelKey::new("Legacy", "people"),
            RecordKey::UserNames(&names),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    let dns = ["UID=Ann".to_owned()];
    let found = store
        .record_heads_with(&ChannelKey::new("Legacy", "people"), RecordKey::Dns(&dns))
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
}

/// A database from before group members were rows: each group's members, kept as a JSON array
/// in the group record, become rows when the store opens.
#[tokio::test]
async fn group_members_kept_as_json_become_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    // Back to the schema before migration 10, with one group of two members.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    for statement in [
        "DROP TABLE group_members",
        "ALTER TABLE group_records ADD COLUMN members TEXT NOT NULL DEFAULT '[]'",
        "DELETE FROM _sqlx_migrations WHERE version = 10",
        "INSERT INTO group_records (connection, channel, guid, dn, display_name, target_id, members, status, attempts) \
         VALUES ('Legacy', 'people', 'g1', 'cn=staff', 'staff', 't-g1', \
         '[{\"guid\":\"a\",\"target_id\":\"t-a\"},{\"guid\":\"b\",\"target_id\":\"t-b\"}]', 'provisioned', 0)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = open(&path, 1).await;
    let groups = store
        .group_records(&ChannelKey::new("Legacy", "people"))
        .await
        .unwrap();
    let members: Vec<(&str, &str)> = groups[0]
        .members
        .iter()
        .map(|m| (m.guid.as_str(), m.target_id.as_str()))
        .collect();
    assert_eq!(members, [("a", "t-a"), ("b", "t-b")]);
    assert_eq!(groups[0].display_name, "staff");
}
