//! The embedded SQLite state store (WAL, migrations).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use scimbridge_model::{
    AuditEvent, ChannelKey, Connection, CycleSummary, DataStore, GroupRecord, HeldOperation,
    JournalEntry, Record, RecordStatus, Secret, SyncState,
};
use scimbridge_state::{
    AdminAccount, ApiToken, CycleRecord, RecordCounts, Saved, Store, StoreError,
};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::secrets::SecretKey;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    key: SecretKey,
}

/// Creates the database file, when missing, readable by its owner only: it holds the
/// administrator's password hash and the user images. SQLite would create it 0644 less the
/// umask; its `-wal` and `-shm` files take the mode of the database file.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

impl SqliteStore {
    /// Opens (creating when missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path, key: SecretKey) -> Result<SqliteStore, StoreError> {
        create_owner_only(path)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(backend)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(SqliteStore { pool, key })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Encrypts (or decrypts) every literal secret in place, bound to its owner's name so that
    /// a value cannot be moved to another connection or data store.
    fn seal<'a>(
        &self,
        owner: &str,
        secrets: impl Iterator<Item = &'a mut Secret>,
        encrypt: bool,
    ) -> Result<(), StoreError> {
        for secret in secrets {
            if let Secret::Literal(value) = secret {
                let sealed = if encrypt {
                    self.key.encrypt(value, owner)
                } else {
                    self.key.decrypt(value, owner)
                }
                .map_err(|e| StoreError::Secret(e.to_string()))?;
                *value = sealed;
            }
        }
        Ok(())
    }

    fn encrypt_secrets(&self, connection: &Connection) -> Result<Connection, StoreError> {
        let mut stored = connection.clone();
        let owner = format!("connection/{}", connection.name);
        self.seal(&owner, stored.secrets_mut(), true)?;
        Ok(stored)
    }

    fn decrypt_secrets(&self, mut connection: Connection) -> Result<Connection, StoreError> {
        let owner = format!("connection/{}", connection.name);
        self.seal(&owner, connection.secrets_mut(), false)?;
        Ok(connection)
    }

    /// The bind password is encrypted like connection secrets, bound to the data store's name.
    fn encrypt_data_store(&self, data_store: &DataStore) -> Result<DataStore, StoreError> {
        let mut stored = data_store.clone();
        let owner = format!("data-store/{}", data_store.name);
        let secrets = stored.secret_fields_mut().into_iter();
        self.seal(&owner, secrets.filter_map(|(_, s)| s.as_mut()), true)?;
        Ok(stored)
    }

    fn decrypt_data_store(&self, mut data_store: DataStore) -> Result<DataStore, StoreError> {
        let owner = format!("data-store/{}", data_store.name);
        let secrets = data_store.secret_fields_mut().into_iter();
        self.seal(&owner, secrets.filter_map(|(_, s)| s.as_mut()), false)?;
        Ok(data_store)
    }

    fn data_store_from_row(&self, row: &SqliteRow) -> Result<DataStore, StoreError> {
        let text: String = row.try_get("config").map_err(corrupt)?;
        let data_store: DataStore = serde_json::from_str(&text).map_err(corrupt)?;
        self.decrypt_data_store(data_store)
    }

    fn connection_from_row(&self, row: &SqliteRow) -> Result<Connection, StoreError> {
        let text: String = row.try_get("config").map_err(corrupt)?;
        let connection: Connection = serde_json::from_str(&text).map_err(corrupt)?;
        self.decrypt_secrets(connection)
    }
}

/// Whose image a ciphertext is: a copied image does not decrypt on another record.
fn image_owner(channel: &ChannelKey, guid: &str) -> String {
    format!("record/{}/{}/{guid}", channel.connection, channel.channel)
}

fn record_from_row(
    row: &SqliteRow,
    channel: &ChannelKey,
    key: &SecretKey,
) -> Result<Record, StoreError> {
    let status: String = row.try_get("status").map_err(corrupt)?;
    let guid: String = row.try_get("guid").map_err(corrupt)?;
    let applied_image: Option<String> = row.try_get("applied_image").map_err(corrupt)?;
    // Images written before they were encrypted are plain JSON.
    let applied_image = match applied_image {
        Some(text) if text.starts_with('{') => Some(text),
        Some(sealed) => Some(
            key.decrypt(&sealed, &image_owner(channel, &guid))
                .map_err(|e| StoreError::Secret(e.to_string()))?,
        ),
        None => None,
    };
    let attempts: i64 = row.try_get("attempts").map_err(corrupt)?;
    Ok(Record {
        guid,
        dn: row.try_get("dn").map_err(corrupt)?,
        user_name: row.try_get("user_name").map_err(corrupt)?,
        target_id: row.try_get("target_id").map_err(corrupt)?,
        source_fingerprint: row.try_get("source_fingerprint").map_err(corrupt)?,
        applied_image: applied_image
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(corrupt)?,
        target_version: row.try_get("target_version").map_err(corrupt)?,
        status: RecordStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown record status {status}")))?,
        last_error: row.try_get("last_error").map_err(corrupt)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        retry_after_ms: row.try_get("retry_after_ms").map_err(corrupt)?,
        failed_fingerprint: row.try_get("failed_fingerprint").map_err(corrupt)?,
    })
}

/// Inserts or replaces one record, on the pool or inside a transaction. The image is
/// encrypted: it may hold create-only secrets (a first password) and personal data.
async fn upsert_record<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    channel: &ChannelKey,
    record: &Record,
    key: &SecretKey,
) -> Result<(), StoreError> {
    let image = record
        .applied_image
        .as_ref()
        .map(|i| key.encrypt(&i.to_string(), &image_owner(channel, &record.guid)))
        .transpose()
        .map_err(|e| StoreError::Secret(e.to_string()))?;
    sqlx::query(
        "INSERT INTO records (connection, channel, guid, dn, user_name, target_id, source_fingerprint, applied_image, target_version, status, last_error, attempts, retry_after_ms, failed_fingerprint)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (connection, channel, guid) DO UPDATE SET
           dn = excluded.dn, user_name = excluded.user_name, target_id = excluded.target_id,
           source_fingerprint = excluded.source_fingerprint, applied_image = excluded.applied_image,
           target_version = excluded.target_version,
           status = excluded.status, last_error = excluded.last_error, attempts = excluded.attempts,
           retry_after_ms = excluded.retry_after_ms, failed_fingerprint = excluded.failed_fingerprint",
    )
    .bind(&channel.connection)
    .bind(&channel.channel)
    .bind(&record.guid)
    .bind(&record.dn)
    .bind(&record.user_name)
    .bind(&record.target_id)
    .bind(&record.source_fingerprint)
    .bind(image)
    .bind(&record.target_version)
    .bind(record.status.as_str())
    .bind(&record.last_error)
    .bind(i64::from(record.attempts))
    .bind(record.retry_after_ms)
    .bind(&record.failed_fingerprint)
    .execute(executor)
    .await
    .map_err(backend)?;
    Ok(())
}

fn group_record_from_row(row: &SqliteRow) -> Result<GroupRecord, StoreError> {
    let status: String = row.try_get("status").map_err(corrupt)?;
    let members: String = row.try_get("members").map_err(corrupt)?;
    let attempts: i64 = row.try_get("attempts").map_err(corrupt)?;
    Ok(GroupRecord {
        guid: row.try_get("guid").map_err(corrupt)?,
        dn: row.try_get("dn").map_err(corrupt)?,
        display_name: row.try_get("display_name").map_err(corrupt)?,
        target_id: row.try_get("target_id").map_err(corrupt)?,
        members: serde_json::from_str(&members).map_err(corrupt)?,
        status: RecordStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown group record status {status}")))?,
        last_error: row.try_get("last_error").map_err(corrupt)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

fn cycle_from_row(row: &SqliteRow) -> Result<CycleRecord, StoreError> {
    let summary: Option<String> = row.try_get("summary").map_err(corrupt)?;
    Ok(CycleRecord {
        id: row.try_get("id").map_err(corrupt)?,
        channel: ChannelKey::new(
            row.try_get::<String, _>("connection").map_err(corrupt)?,
            row.try_get::<String, _>("channel").map_err(corrupt)?,
        ),
        started_at_ms: row.try_get("started_at_ms").map_err(corrupt)?,
        finished_at_ms: row.try_get("finished_at_ms").map_err(corrupt)?,
        summary: summary
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(corrupt)?
            .unwrap_or_default(),
        error: row.try_get("error").map_err(corrupt)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_data_store(&self, data_store: &DataStore) -> Result<Saved, StoreError> {
        let existing = sqlx::query("SELECT config FROM data_stores WHERE name = ?")
            .bind(&data_store.name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let saved = match existing {
            None => Saved::Created,
            Some(row) => {
                if &self.data_store_from_row(&row)? == data_store {
                    return Ok(Saved::Unchanged);
                }
                Saved::Updated
            }
        };
        let config =
            serde_json::to_string(&self.encrypt_data_store(data_store)?).map_err(backend)?;
        sqlx::query("INSERT INTO data_stores (name, config) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET config = excluded.config")
            .bind(&data_store.name)
            .bind(config)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(saved)
    }

    async fn data_stores(&self) -> Result<Vec<DataStore>, StoreError> {
        let rows = sqlx::query("SELECT config FROM data_stores ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| self.data_store_from_row(row))
            .collect()
    }

    async fn save_connection(&self, connection: &Connection) -> Result<Saved, StoreError> {
        let saved = match self.connection(&connection.name).await? {
            None => Saved::Created,
            Some(stored) if &stored == connection => return Ok(Saved::Unchanged),
            Some(_) => Saved::Updated,
        };
        let config = serde_json::to_string(&self.encrypt_secrets(connection)?).map_err(backend)?;
        sqlx::query("INSERT INTO connections (name, config) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET config = excluded.config")
            .bind(&connection.name)
            .bind(config)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(saved)
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query("SELECT config FROM connections ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| self.connection_from_row(row))
            .collect()
    }

    async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let row = sqlx::query("SELECT config FROM connections WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| self.connection_from_row(&row)).transpose()
    }

    async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        // One transaction: a connection is gone with all its state, or not at all.
        let mut transaction = self.pool.begin().await.map_err(backend)?;
        for table in [
            "records",
            "group_records",
            "sync_states",
            "held_operations",
            "operation_journal",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE connection = ?"
            )))
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        }
        let done = sqlx::query("DELETE FROM connections WHERE name = ?")
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        transaction.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_data_store(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM data_stores WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn records(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM records WHERE connection = ? AND channel = ? ORDER BY guid")
                .bind(&channel.connection)
                .bind(&channel.channel)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|row| record_from_row(row, channel, &self.key))
            .collect()
    }

    async fn record_heads(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT guid, dn, user_name, target_id, source_fingerprint, NULL AS applied_image, \
             target_version, status, last_error, attempts, retry_after_ms, failed_fingerprint \
             FROM records WHERE connection = ? AND channel = ? ORDER BY guid",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| record_from_row(row, channel, &self.key))
            .collect()
    }

    async fn records_by_guid(
        &self,
        channel: &ChannelKey,
        guids: &[String],
    ) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::with_capacity(guids.len());
        // SQLite limits the number of bound parameters: ask in chunks.
        for chunk in guids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT * FROM records WHERE connection = ? AND channel = ? AND guid IN ({placeholders})"
            );
            // Only placeholders are formatted in; the GUIDs are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&channel.connection)
                .bind(&channel.channel);
            for guid in chunk {
                query = query.bind(guid);
            }
            let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
            for row in &rows {
                records.push(record_from_row(row, channel, &self.key)?);
            }
        }
        records.sort_by(|a, b| a.guid.cmp(&b.guid));
        records.dedup_by(|a, b| a.guid == b.guid);
        Ok(records)
    }

    async fn save_record(&self, channel: &ChannelKey, record: &Record) -> Result<(), StoreError> {
        upsert_record(&self.pool, channel, record, &self.key).await
    }

    async fn delete_record(&self, channel: &ChannelKey, guid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM records WHERE connection = ? AND channel = ? AND guid = ?")
            .bind(&channel.connection)
            .bind(&channel.channel)
            .bind(guid)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn record_counts(&self, channel: &ChannelKey) -> Result<RecordCounts, StoreError> {
        let row = sqlx::query(
            "SELECT
               COALESCE(SUM(CASE WHEN target_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS users,
               COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
               COALESCE(SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END), 0) AS blocked
             FROM records WHERE connection = ? AND channel = ?",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        let count = |name: &str| -> Result<u64, StoreError> {
            let value: i64 = row.try_get(name).map_err(corrupt)?;
            Ok(u64::try_from(value).unwrap_or(0))
        };
        Ok(RecordCounts {
            users: count("users")?,
            failed: count("failed")?,
            blocked: count("blocked")?,
        })
    }

    async fn group_records(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM group_records WHERE connection = ? AND channel = ? ORDER BY guid",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(group_record_from_row).collect()
    }

    async fn save_group_record(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
    ) -> Result<(), StoreError> {
        let members = serde_json::to_string(&record.members).map_err(corrupt)?;
        sqlx::query(
            "INSERT INTO group_records (connection, channel, guid, dn, display_name, target_id, members, status, last_error, attempts)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (connection, channel, guid) DO UPDATE SET
               dn = excluded.dn, display_name = excluded.display_name, target_id = excluded.target_id,
               members = excluded.members, status = excluded.status,
               last_error = excluded.last_error, attempts = excluded.attempts",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(&record.guid)
        .bind(&record.dn)
        .bind(&record.display_name)
        .bind(&record.target_id)
        .bind(members)
        .bind(record.status.as_str())
        .bind(&record.last_error)
        .bind(i64::from(record.attempts))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn delete_group_record(
        &self,
        channel: &ChannelKey,
        guid: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM group_records WHERE connection = ? AND channel = ? AND guid = ?")
            .bind(&channel.connection)
            .bind(&channel.channel)
            .bind(guid)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn sync_state(&self, channel: &ChannelKey) -> Result<Option<SyncState>, StoreError> {
        let row = sqlx::query(
            "SELECT mechanism, cursor, settings_fingerprint, last_full_read_ms FROM sync_states WHERE connection = ? AND channel = ?",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|row| {
            Ok(SyncState {
                mechanism: row.try_get("mechanism").map_err(corrupt)?,
                cursor: row.try_get("cursor").map_err(corrupt)?,
                settings_fingerprint: row.try_get("settings_fingerprint").map_err(corrupt)?,
                last_full_read_ms: row.try_get("last_full_read_ms").map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn save_sync_state(
        &self,
        channel: &ChannelKey,
        state: Option<&SyncState>,
    ) -> Result<(), StoreError> {
        let Some(state) = state else {
            sqlx::query("DELETE FROM sync_states WHERE connection = ? AND channel = ?")
                .bind(&channel.connection)
                .bind(&channel.channel)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO sync_states (connection, channel, mechanism, cursor, settings_fingerprint, last_full_read_ms) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connection, channel) DO UPDATE SET \
             mechanism = excluded.mechanism, cursor = excluded.cursor, \
             settings_fingerprint = excluded.settings_fingerprint, last_full_read_ms = excluded.last_full_read_ms",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(&state.mechanism)
        .bind(&state.cursor)
        .bind(&state.settings_fingerprint)
        .bind(state.last_full_read_ms)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn held_operations(
        &self,
        channel: &ChannelKey,
    ) -> Result<Vec<HeldOperation>, StoreError> {
        let rows = sqlx::query(
            "SELECT guid, label, operation, reason, held_at_ms, approved FROM held_operations \
             WHERE connection = ? AND channel = ? ORDER BY guid",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let approved: i64 = row.try_get("approved").map_err(corrupt)?;
                Ok(HeldOperation {
                    guid: row.try_get("guid").map_err(corrupt)?,
                    label: row.try_get("label").map_err(corrupt)?,
                    operation: row.try_get("operation").map_err(corrupt)?,
                    reason: row.try_get("reason").map_err(corrupt)?,
                    held_at_ms: row.try_get("held_at_ms").map_err(corrupt)?,
                    approved: approved != 0,
                })
            })
            .collect()
    }

    async fn save_held_operations(
        &self,
        channel: &ChannelKey,
        held: &[HeldOperation],
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM held_operations WHERE connection = ? AND channel = ?")
            .bind(&channel.connection)
            .bind(&channel.channel)
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        for operation in held {
            sqlx::query(
                "INSERT INTO held_operations (connection, channel, guid, label, operation, reason, held_at_ms, approved) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&channel.connection)
            .bind(&channel.channel)
            .bind(&operation.guid)
            .bind(&operation.label)
            .bind(&operation.operation)
            .bind(&operation.reason)
            .bind(operation.held_at_ms)
            .bind(i64::from(operation.approved))
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        }
        transaction.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await.map_err(backend)?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (time_ms, cycle_id, connection, channel, event_type, source_id, dn, name, target_id, success, cause) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(event.time_ms)
            .bind(event.cycle_id)
            .bind(&event.connection)
            .bind(&event.channel)
            .bind(&event.event_type)
            .bind(&event.source_id)
            .bind(&event.dn)
            .bind(&event.name)
            .bind(&event.target_id)
            .bind(i64::from(event.success))
            .bind(&event.cause)
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        }
        transaction.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn audit_events_of(&self, who: &str, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit_events WHERE source_id = ? OR target_id = ? \
             OR name = ? COLLATE NOCASE OR dn = ? COLLATE NOCASE ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(who)
        .bind(who)
        .bind(who)
        .bind(who)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let success: i64 = row.try_get("success").map_err(corrupt)?;
                Ok(AuditEvent {
                    time_ms: row.try_get("time_ms").map_err(corrupt)?,
                    cycle_id: row.try_get("cycle_id").map_err(corrupt)?,
                    connection: row.try_get("connection").map_err(corrupt)?,
                    channel: row.try_get("channel").map_err(corrupt)?,
                    event_type: row.try_get("event_type").map_err(corrupt)?,
                    source_id: row.try_get("source_id").map_err(corrupt)?,
                    dn: row.try_get("dn").map_err(corrupt)?,
                    name: row.try_get("name").map_err(corrupt)?,
                    target_id: row.try_get("target_id").map_err(corrupt)?,
                    success: success != 0,
                    cause: row.try_get("cause").map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn journal_operations(
        &self,
        channel: &ChannelKey,
        entries: &[JournalEntry],
    ) -> Result<(), StoreError> {
        // One statement per chunk: journaling sits on the path of every operation.
        for chunk in entries.chunks(200) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT OR REPLACE INTO operation_journal (connection, channel, guid, dn, label, operation, cycle_id, sent_at_ms) VALUES {rows}"
            );
            // Only placeholders are formatted in; the values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for entry in chunk {
                query = query
                    .bind(&channel.connection)
                    .bind(&channel.channel)
                    .bind(&entry.guid)
                    .bind(&entry.dn)
                    .bind(&entry.label)
                    .bind(&entry.operation)
                    .bind(entry.cycle_id)
                    .bind(entry.sent_at_ms);
            }
            query.execute(&self.pool).await.map_err(backend)?;
        }
        Ok(())
    }

    async fn unsettled_operations(
        &self,
        channel: &ChannelKey,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM operation_journal WHERE connection = ? AND channel = ?
             ORDER BY sent_at_ms, guid",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(JournalEntry {
                    guid: row.try_get("guid").map_err(corrupt)?,
                    dn: row.try_get("dn").map_err(corrupt)?,
                    label: row.try_get("label").map_err(corrupt)?,
                    operation: row.try_get("operation").map_err(corrupt)?,
                    cycle_id: row.try_get("cycle_id").map_err(corrupt)?,
                    sent_at_ms: row.try_get("sent_at_ms").map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn close_journal_entries(
        &self,
        channel: &ChannelKey,
        guids: &[String],
    ) -> Result<(), StoreError> {
        for chunk in guids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "DELETE FROM operation_journal WHERE connection = ? AND channel = ? AND guid IN ({placeholders})"
            );
            // Only placeholders are formatted in; the GUIDs are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&channel.connection)
                .bind(&channel.channel);
            for guid in chunk {
                query = query.bind(guid);
            }
            query.execute(&self.pool).await.map_err(backend)?;
        }
        Ok(())
    }

    async fn forget_channel(&self, channel: &ChannelKey) -> Result<(), StoreError> {
        // One transaction: a reset is all or nothing.
        let mut transaction = self.pool.begin().await.map_err(backend)?;
        for table in [
            "records",
            "group_records",
            "sync_states",
            "held_operations",
            "operation_journal",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE connection = ? AND channel = ?"
            )))
            .bind(&channel.connection)
            .bind(&channel.channel)
            .execute(&mut *transaction)
            .await
            .map_err(backend)?;
        }
        transaction.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn admin_account(&self) -> Result<Option<AdminAccount>, StoreError> {
        let row = sqlx::query("SELECT username, password_hash FROM admin_account WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| {
            Ok(AdminAccount {
                username: row.try_get("username").map_err(corrupt)?,
                password_hash: row.try_get("password_hash").map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn save_admin_account(&self, account: &AdminAccount) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_account (id, username, password_hash) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, password_hash = excluded.password_hash",
        )
        .bind(&account.username)
        .bind(&account.password_hash)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(ApiToken {
                    name: row.try_get("name").map_err(corrupt)?,
                    token_hash: row.try_get("token_hash").map_err(corrupt)?,
                    created_at_ms: row.try_get("created_at_ms").map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn save_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, created_at_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, created_at_ms = excluded.created_at_ms",
        )
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn delete_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn begin_cycle(
        &self,
        channel: &ChannelKey,
        started_at_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO cycles (connection, channel, started_at_ms) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(started_at_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        row.try_get("id").map_err(corrupt)
    }

    async fn end_cycle(
        &self,
        cycle_id: i64,
        finished_at_ms: i64,
        summary: &CycleSummary,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let summary = serde_json::to_string(summary).map_err(backend)?;
        sqlx::query("UPDATE cycles SET finished_at_ms = ?, summary = ?, error = ? WHERE id = ?")
            .bind(finished_at_ms)
            .bind(summary)
            .bind(error)
            .bind(cycle_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn cycles(
        &self,
        channel: &ChannelKey,
        limit: u32,
    ) -> Result<Vec<CycleRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cycles WHERE connection = ? AND channel = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(cycle_from_row).collect()
    }
}
