//! The embedded SQLite state store (WAL, migrations).
//!
//! It keeps what it is given: literal secrets and images are encrypted by [`crate::Sealed`]
//! in front of it, which the product always puts there.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use scimbridge_model::{
    AuditEvent, ChannelKey, Connection, CycleSummary, DataStore, EntryGuid, EpochMs, GroupMember,
    GroupRecord, HeldOperation, JournalEntry, Record, RecordStatus, SyncState, TargetId,
    UnknownWord, normalize_dn,
};
use scimbridge_state::{
    AdminAccount, AdminStore, ApiToken, AuditStore, ConfigurationStore, Cycle, GroupKey,
    HeldOperationStore, HistoryStore, JournalStore, MemberChange, RecordCounts, RecordKey,
    RecordStore, Saved, StoreError,
};
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite limits the number of bound parameters: lists of GUIDs go in chunks of this many.
const GUID_CHUNK: usize = 500;

/// The heads of one channel's records (every column but the image), as SQL to add conditions to.
macro_rules! record_heads {
    () => {
        "SELECT guid, dn, user_name, target_id, source_fingerprint, NULL AS applied_image, \
         target_version, status, last_error, attempts, retry_after_ms, failed_fingerprint \
         FROM records WHERE connection = ? AND channel = ?"
    };
}

/// The heads of one channel's group records (without members), as SQL to add conditions to.
macro_rules! group_heads {
    () => {
        "SELECT guid, dn, display_name, target_id, status, last_error, attempts, source_stamp \
         FROM group_records WHERE connection = ? AND channel = ?"
    };
}

/// Hands each group record its members; both ordered by group GUID.
fn attach_members(records: &mut [GroupRecord], members: Vec<(EntryGuid, GroupMember)>) {
    let mut records = records.iter_mut().peekable();
    for (group, member) in members {
        while records.next_if(|r| r.guid < group).is_some() {}
        if let Some(record) = records.peek_mut().filter(|r| r.guid == group) {
            record.members.push(member);
        }
    }
}

/// The tables of what a channel knows of its users and groups, which go with the channel.
const CHANNEL_STATE: [&str; 6] = [
    "records",
    "group_records",
    "group_members",
    "sync_states",
    "held_operations",
    "operation_journal",
];

/// One connection writes and the others read. SQLite lets one connection write at a time
/// anyway: writes wait their turn for the writer, in order, rather than in SQLite's busy
/// handler (which sleeps up to 100 ms a try while holding its connection), and the look-ups of
/// a cycle's operations in flight never take the connection a write needs (at
/// `max_threads = 8`, a first cycle stopped with "pool timed out" when they shared four).
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

/// Connections that read, beside the one that writes.
const READERS: u32 = 3;

/// How long a write may wait for the writing connection.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(120);

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

/// Names what the store was doing when SQLite failed.
fn failed(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| StoreError::backend(context, error)
}

impl SqliteStore {
    /// Opens (creating when missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_owner_only(path)
            .map_err(|e| StoreError::backend(format!("cannot create {}", path.display()), e))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(failed("opening"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let cannot_open = |e| StoreError::backend(format!("cannot open {}", path.display()), e);
        // A connection to a local file is not tested before each use: the test is a round
        // trip to the connection's SQLite thread on every call, and a connection whose
        // thread is gone fails its statement anyway.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // Writes queue here, not in SQLite's busy handler (which sleeps up to 100 ms
            // between tries): a burst of them waits its turn rather than failing.
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(cannot_open)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::backend("migration failed", e))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(cannot_open)?;
        let store = SqliteStore { writer, readers };
        store.fill_record_keys().await?;
        Ok(store)
    }

    /// Fills `user_name_key` and `dn_key` in records written before they existed (once; none
    /// are left after).
    async fn fill_record_keys(&self) -> Result<(), StoreError> {
        const CONTEXT: &str = "filling record keys";
        // The partial indexes of migrations 0009 and 0011 make this cheap when there is
        // nothing to fill.
        let missing = sqlx::query(
            "SELECT rowid, dn, user_name FROM records \
             WHERE user_name IS NOT NULL AND user_name_key IS NULL \
             UNION SELECT rowid, dn, user_name FROM records WHERE dn_key IS NULL",
        );
        let rows = self
            .fetch(missing, "reading record keys", |row| {
                let columns = Columns::of(row, "records");
                Ok((
                    columns.get::<i64>("rowid")?,
                    columns.get::<String>("dn")?,
                    columns.get::<Option<String>>("user_name")?,
                ))
            })
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(failed(CONTEXT))?;
        for (rowid, dn, name) in rows {
            // Unless another process saved the record meanwhile.
            sqlx::query(
                "UPDATE records SET user_name_key = ?, dn_key = ? \
                 WHERE rowid = ? AND dn = ? AND user_name IS ?",
            )
            .bind(name.as_deref().map(str::to_lowercase))
            .bind(normalize_dn(&dn))
            .bind(rowid)
            .bind(&dn)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(failed(CONTEXT))?;
        }
        tx.commit().await.map_err(failed(CONTEXT))
    }

    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

type Statement = Query<'static, Sqlite, SqliteArguments>;

/// The rows `query` returns on `pool`, each read with `read`.
async fn rows_of<T>(
    query: Statement,
    pool: &SqlitePool,
    context: &'static str,
    read: fn(&SqliteRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = query.fetch_all(pool).await.map_err(failed(context))?;
    rows.iter().map(read).collect()
}

/// A statement whose first two parameters are the channel's connection and name.
fn in_channel(sql: &'static str, channel: &ChannelKey) -> Statement {
    sqlx::query(sql)
        .bind(&channel.connection)
        .bind(&channel.channel)
}

/// `sql` (about one channel) narrowed to the rows whose `column` holds one of these GUIDs, at
/// most [`GUID_CHUNK`] of them.
fn for_column(
    sql: &'static str,
    column: &'static str,
    channel: &ChannelKey,
    guids: &[EntryGuid],
) -> Statement {
    let placeholders = vec!["?"; guids.len()].join(", ");
    // Only the column and placeholders are formatted in; the GUIDs are bound.
    let sql = format!("{sql} AND {column} IN ({placeholders})");
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(&channel.connection)
        .bind(&channel.channel);
    for guid in guids {
        query = query.bind(guid.as_str().to_owned());
    }
    query
}

/// Deletes a channel's state from every table of [`CHANNEL_STATE`]; `filter` picks the rows,
/// with `keys` bound to its parameters.
async fn delete_channel_state(
    connection: &mut SqliteConnection,
    filter: &'static str,
    keys: &[&str],
) -> Result<(), sqlx::Error> {
    for table in CHANNEL_STATE {
        // Only constant table names and filters are formatted in.
        let mut query = sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE {filter}")));
        for key in keys {
            query = query.bind(*key);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// What a column can be read as: what SQLite decodes, and the identifiers kept as text.
trait FromColumn: Sized {
    fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! decoded_columns {
    ($($type:ty),*) => {
        $(impl FromColumn for $type {
            fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
                row.try_get(name)
            }
        })*
    };
}

decoded_columns!(String, Option<String>, i64, Option<i64>);

macro_rules! text_id_columns {
    ($($id:ty),*) => {
        $(impl FromColumn for $id {
            fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
                String::read(row, name).map(<$id>::from)
            }
        }

        impl FromColumn for Option<$id> {
            fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
                Ok(Option::<String>::read(row, name)?.map(<$id>::from))
            }
        })*
    };
}

text_id_columns!(EntryGuid, TargetId);

impl FromColumn for EpochMs {
    fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
        i64::read(row, name).map(EpochMs::from_millis)
    }
}

impl FromColumn for Option<EpochMs> {
    fn read(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
        Ok(Option::<i64>::read(row, name)?.map(EpochMs::from_millis))
    }
}

/// The columns of one row of a table; a column that does not decode is corrupt data there.
struct Columns<'r> {
    row: &'r SqliteRow,
    table: &'static str,
}

impl<'r> Columns<'r> {
    fn of(row: &'r SqliteRow, table: &'static str) -> Columns<'r> {
        Columns { row, table }
    }

    fn get<T: FromColumn>(&self, name: &str) -> Result<T, StoreError> {
        T::read(self.row, name).map_err(|e| StoreError::corrupt(self.table, e))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        let text: String = self.get(name)?;
        serde_json::from_str(&text).map_err(|e| StoreError::corrupt(self.table, e))
    }

    /// A column that holds one of an enumeration's words.
    fn word<T: FromStr<Err = UnknownWord>>(&self, name: &str) -> Result<T, StoreError> {
        let text: String = self.get(name)?;
        text.parse().map_err(|e| StoreError::corrupt(self.table, e))
    }

    fn attempts(&self) -> Result<u32, StoreError> {
        let attempts: i64 = self.get("attempts")?;
        Ok(u32::try_from(attempts).unwrap_or(u32::MAX))
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.get::<i64>(name)? != 0)
    }
}

/// A `$type` read from `$columns`: each field before the `;` from the column of its name, each
/// after it as given.
macro_rules! from_columns {
    ($columns:ident => $type:ident {
        $($field:ident),* $(,)? $(; $($other:ident: $value:expr),* $(,)?)?
    }) => {
        $type {
            $($field: $columns.get(stringify!($field))?,)*
            $($($other: $value,)*)?
        }
    };
}

/// An image is kept as text. A sealed image is a string, kept as it is (`enc:v1:…`); an object
/// is kept as JSON, as images were before they were encrypted.
fn image_text(image: &Value) -> String {
    match image {
        Value::String(sealed) => sealed.clone(),
        object => object.to_string(),
    }
}

fn image_from_text(text: String) -> Result<Value, StoreError> {
    if text.starts_with('{') {
        serde_json::from_str(&text).map_err(|e| StoreError::corrupt("records", e))
    } else {
        Ok(Value::String(text))
    }
}

/// The columns a record is saved in, and how a saved record replaces the one with its GUID: an
/// update, never a REPLACE, whose delete would not fire the triggers that count records by
/// status (migration 0013; a migration that rebuilds `records` must create them again).
const RECORD_COLUMNS: &str = "INSERT INTO records (connection, channel, guid, dn, user_name, \
     target_id, source_fingerprint, applied_image, target_version, status, last_error, attempts, \
     retry_after_ms, failed_fingerprint, user_name_key, dn_key) VALUES ";
const RECORD_CONFLICT: &str = " ON CONFLICT (connection, channel, guid) DO UPDATE SET \
     dn = excluded.dn, dn_key = excluded.dn_key, user_name = excluded.user_name, \
     user_name_key = excluded.user_name_key, \
     target_id = excluded.target_id, source_fingerprint = excluded.source_fingerprint, \
     applied_image = excluded.applied_image, target_version = excluded.target_version, \
     status = excluded.status, last_error = excluded.last_error, attempts = excluded.attempts, \
     retry_after_ms = excluded.retry_after_ms, failed_fingerprint = excluded.failed_fingerprint";
const RECORD_VALUES: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// How many records one statement saves (16 parameters each, well within SQLite's 32,766).
const RECORD_CHUNK: usize = 500;

/// One statement that inserts these records or replaces the ones with their GUIDs: a single
/// statement, so it holds the write lock for no longer than it runs.
fn upsert_records(channel: &ChannelKey, records: &[Record]) -> Statement {
    let values = vec![RECORD_VALUES; records.len()].join(", ");
    // Only placeholders are formatted in; the values are bound.
    let sql = format!("{RECORD_COLUMNS}{values}{RECORD_CONFLICT}");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for record in records {
        query = query
            .bind(&channel.connection)
            .bind(&channel.channel)
            .bind(record.guid.as_str().to_owned())
            .bind(record.dn.clone())
            .bind(record.user_name.clone())
            .bind(record.target_id.as_deref().map(str::to_owned))
            .bind(record.source_fingerprint.clone())
            .bind(record.applied_image.as_ref().map(image_text))
            .bind(record.target_version.clone())
            .bind(record.status.as_str())
            .bind(record.last_error.clone())
            .bind(i64::from(record.attempts))
            .bind(record.retry_after_ms.map(EpochMs::millis))
            .bind(record.failed_fingerprint.clone())
            .bind(record.user_name.as_deref().map(str::to_lowercase))
            .bind(normalize_dn(&record.dn));
    }
    query
}

/// How many audit events one statement inserts (eleven parameters each).
const AUDIT_CHUNK: usize = 500;

fn insert_audit_events(events: &[AuditEvent]) -> Statement {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; events.len()].join(", ");
    // Only placeholders are formatted in; the values are bound.
    let sql = format!(
        "INSERT INTO audit_events (time_ms, cycle_id, connection, channel, event_type, source_id, dn, name, target_id, success, cause) VALUES {values}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for event in events {
        query = query
            .bind(event.time_ms.millis())
            .bind(event.cycle_id)
            .bind(event.connection.clone())
            .bind(event.channel.clone())
            .bind(event.event_type.as_str())
            .bind(event.source_id.as_str().to_owned())
            .bind(event.dn.clone())
            .bind(event.name.clone())
            .bind(event.target_id.as_deref().map(str::to_owned))
            .bind(i64::from(event.success))
            .bind(event.cause.clone());
    }
    query
}

fn record_from_row(row: &SqliteRow) -> Result<Record, StoreError> {
    let columns = Columns::of(row, "records");
    let image: Option<String> = columns.get("applied_image")?;
    Ok(from_columns!(columns => Record {
        guid, dn, user_name, target_id, source_fingerprint, target_version, last_error,
        retry_after_ms, failed_fingerprint;
        applied_image: image.map(image_from_text).transpose()?,
        status: columns.word("status")?,
        attempts: columns.attempts()?,
    }))
}

/// A group record without its members, which are rows of their own.
fn group_record_from_row(row: &SqliteRow) -> Result<GroupRecord, StoreError> {
    let columns = Columns::of(row, "group_records");
    Ok(from_columns!(columns => GroupRecord {
        guid, dn, display_name, target_id, last_error, source_stamp;
        members: Vec::new(),
        status: columns.word("status")?,
        attempts: columns.attempts()?,
    }))
}

/// A member row: the group's GUID and the member.
fn group_member_from_row(row: &SqliteRow) -> Result<(EntryGuid, GroupMember), StoreError> {
    let columns = Columns::of(row, "group_members");
    Ok((
        columns.get("group_guid")?,
        GroupMember {
            guid: columns.get("user_guid")?,
            target_id: columns.get("target_id")?,
        },
    ))
}

/// How many members one statement saves (5 parameters each).
const MEMBER_CHUNK: usize = 500;

/// One statement that saves these members of a group, replacing a member of the same GUID.
fn upsert_members(channel: &ChannelKey, group: &EntryGuid, members: &[GroupMember]) -> Statement {
    let values = vec!["(?, ?, ?, ?, ?)"; members.len()].join(", ");
    // Only placeholders are formatted in; the values are bound.
    let sql = format!(
        "INSERT INTO group_members (connection, channel, group_guid, user_guid, target_id) \
         VALUES {values} ON CONFLICT (connection, channel, group_guid, user_guid) \
         DO UPDATE SET target_id = excluded.target_id"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for member in members {
        query = query
            .bind(&channel.connection)
            .bind(&channel.channel)
            .bind(group.as_str().to_owned())
            .bind(member.guid.as_str().to_owned())
            .bind(member.target_id.as_str().to_owned());
    }
    query
}

/// One statement that saves everything of a group record but its members.
fn upsert_group_head(channel: &ChannelKey, record: &GroupRecord) -> Statement {
    in_channel(
        "INSERT INTO group_records (connection, channel, guid, dn, display_name, target_id, status, last_error, attempts, source_stamp)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (connection, channel, guid) DO UPDATE SET
           dn = excluded.dn, display_name = excluded.display_name, target_id = excluded.target_id,
           status = excluded.status, last_error = excluded.last_error, attempts = excluded.attempts,
           source_stamp = excluded.source_stamp",
        channel,
    )
    .bind(record.guid.as_str().to_owned())
    .bind(record.dn.clone())
    .bind(record.display_name.clone())
    .bind(record.target_id.as_deref().map(str::to_owned))
    .bind(record.status.as_str())
    .bind(record.last_error.clone())
    .bind(i64::from(record.attempts))
    .bind(record.source_stamp.clone())
}

/// One statement that deletes these members of a group, at most [`GUID_CHUNK`] of them.
fn delete_members(channel: &ChannelKey, group: &EntryGuid, guids: &[EntryGuid]) -> Statement {
    let placeholders = vec!["?"; guids.len()].join(", ");
    // Only placeholders are formatted in; the values are bound.
    let sql = format!(
        "DELETE FROM group_members WHERE connection = ? AND channel = ? AND group_guid = ? \
         AND user_guid IN ({placeholders})"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(group.as_str().to_owned());
    for guid in guids {
        query = query.bind(guid.as_str().to_owned());
    }
    query
}

fn sync_state_from_row(row: &SqliteRow) -> Result<SyncState, StoreError> {
    let columns = Columns::of(row, "sync_states");
    Ok(from_columns!(columns => SyncState {
        cursor, settings_fingerprint, last_full_read_ms, last_sweep_ms;
        mechanism: columns.word("mechanism")?,
    }))
}

fn held_operation_from_row(row: &SqliteRow) -> Result<HeldOperation, StoreError> {
    let columns = Columns::of(row, "held_operations");
    Ok(from_columns!(columns => HeldOperation {
        guid, label, reason, held_at_ms;
        operation: columns.word("operation")?,
        approved: columns.flag("approved")?,
    }))
}

fn audit_event_from_row(row: &SqliteRow) -> Result<AuditEvent, StoreError> {
    let columns = Columns::of(row, "audit_events");
    Ok(from_columns!(columns => AuditEvent {
        time_ms, cycle_id, connection, channel, source_id, dn, name, target_id, cause;
        event_type: columns.word("event_type")?,
        success: columns.flag("success")?,
    }))
}

fn journal_entry_from_row(row: &SqliteRow) -> Result<JournalEntry, StoreError> {
    let columns = Columns::of(row, "operation_journal");
    Ok(from_columns!(columns => JournalEntry {
        guid, dn, label, cycle_id, sent_at_ms;
        operation: columns.word("operation")?,
    }))
}

fn admin_account_from_row(row: &SqliteRow) -> Result<AdminAccount, StoreError> {
    let columns = Columns::of(row, "admin_account");
    Ok(from_columns!(columns => AdminAccount { username, password_hash }))
}

fn api_token_from_row(row: &SqliteRow) -> Result<ApiToken, StoreError> {
    let columns = Columns::of(row, "api_tokens");
    Ok(from_columns!(columns => ApiToken { name, token_hash, created_at_ms }))
}

fn cycle_from_row(row: &SqliteRow) -> Result<Cycle, StoreError> {
    let columns = Columns::of(row, "cycles");
    let summary: Option<String> = columns.get("summary")?;
    let summary = summary.map(|s| serde_json::from_str(&s)).transpose();
    Ok(from_columns!(columns => Cycle {
        id, started_at_ms, finished_at_ms, error;
        channel: ChannelKey::new(
            columns.get::<String>("connection")?,
            columns.get::<String>("channel")?,
        ),
        summary: summary
            .map_err(|e| StoreError::corrupt("cycles", e))?
            .unwrap_or_default(),
    }))
}

/// A config column as the configuration object it holds.
fn config_from_row<T: serde::de::DeserializeOwned>(row: &SqliteRow) -> Result<T, StoreError> {
    Columns::of(row, "configuration").json("config")
}

impl SqliteStore {
    /// Runs `query`; `context` says what for when it fails.
    async fn run(
        &self,
        query: Statement,
        context: &'static str,
    ) -> Result<SqliteQueryResult, StoreError> {
        query.execute(&self.writer).await.map_err(failed(context))
    }

    /// The records `select` (about one channel) reads whose `column` has one of `values`, in
    /// chunks of [`GUID_CHUNK`], ordered by GUID, once each.
    async fn records_where_in(
        &self,
        select: &'static str,
        channel: &ChannelKey,
        column: &'static str,
        values: &[String],
    ) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::with_capacity(values.len());
        for chunk in values.chunks(GUID_CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            // Only the column and placeholders are formatted in; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(format!(
                "{select} AND {column} IN ({placeholders})"
            )))
            .bind(&channel.connection)
            .bind(&channel.channel);
            for value in chunk {
                query = query.bind(value.clone());
            }
            records.extend(
                self.fetch(query, "reading records", record_from_row)
                    .await?,
            );
        }
        records.sort_by(|a, b| a.guid.cmp(&b.guid));
        records.dedup_by(|a, b| a.guid == b.guid);
        Ok(records)
    }

    /// Record counts of a channel per status, from a `SELECT status, count(*) AS n … GROUP BY
    /// status` about the channel.
    async fn count_by_status(
        &self,
        channel: &ChannelKey,
        sql: &'static str,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let rows = self
            .fetch(in_channel(sql, channel), "counting records", |row| {
                let columns = Columns::of(row, "records");
                let n: i64 = columns.get("n")?;
                Ok((
                    columns.get::<String>("status")?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Runs `query` and reads each row it returns with `read`. A query by key returns one row
    /// at the most: its callers `pop()` it.
    async fn fetch<T>(
        &self,
        query: Statement,
        context: &'static str,
        read: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        rows_of(query, &self.readers, context, read).await
    }

    /// [`SqliteStore::fetch`] for a statement that writes and returns rows.
    async fn write_returning<T>(
        &self,
        query: Statement,
        context: &'static str,
        read: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        rows_of(query, &self.writer, context, read).await
    }

    async fn data_store(&self, name: &str) -> Result<Option<DataStore>, StoreError> {
        let query = sqlx::query("SELECT config FROM data_stores WHERE name = ?").bind(name);
        Ok(self
            .fetch(query, "reading a data store", config_from_row)
            .await?
            .pop())
    }

    /// Saves `config`, kept as JSON, as the configuration object `name` of `table`, unless
    /// the one `stored` there is the same.
    async fn save_config<T: serde::Serialize + PartialEq>(
        &self,
        table: &'static str,
        stored: Option<T>,
        name: &str,
        config: &T,
    ) -> Result<Saved, StoreError> {
        let saved = Saved::compare(stored.as_ref(), config);
        if saved == Saved::Unchanged {
            return Ok(saved);
        }
        let config = serde_json::to_string(config)
            .map_err(|e| StoreError::backend("encoding the configuration", e))?;
        // Only constant table names are formatted in.
        let sql = format!(
            "INSERT INTO {table} (name, config) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET config = excluded.config"
        );
        let query = sqlx::query(AssertSqlSafe(sql)).bind(name).bind(config);
        self.run(query, "saving the configuration").await?;
        Ok(saved)
    }
}

#[async_trait]
impl ConfigurationStore for SqliteStore {
    async fn save_data_store(&self, data_store: &DataStore) -> Result<Saved, StoreError> {
        let stored = self.data_store(&data_store.name).await?;
        self.save_config("data_stores", stored, &data_store.name, data_store)
            .await
    }

    async fn data_stores(&self) -> Result<Vec<DataStore>, StoreError> {
        let query = sqlx::query("SELECT config FROM data_stores ORDER BY name");
        self.fetch(query, "reading data stores", config_from_row)
            .await
    }

    async fn save_connection(&self, connection: &Connection) -> Result<Saved, StoreError> {
        let stored = self.connection(&connection.name).await?;
        self.save_config("connections", stored, &connection.name, connection)
            .await
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let query = sqlx::query("SELECT config FROM connections ORDER BY name");
        self.fetch(query, "reading connections", config_from_row)
            .await
    }

    async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let query = sqlx::query("SELECT config FROM connections WHERE name = ?").bind(name);
        Ok(self
            .fetch(query, "reading a connection", config_from_row)
            .await?
            .pop())
    }

    async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        const CONTEXT: &str = "deleting a connection";
        // One transaction: a connection is gone with all its state, or not at all.
        let mut transaction = self.writer.begin().await.map_err(failed(CONTEXT))?;
        delete_channel_state(&mut transaction, "connection = ?", &[name])
            .await
            .map_err(failed(CONTEXT))?;
        let done = sqlx::query("DELETE FROM connections WHERE name = ?")
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(failed(CONTEXT))?;
        transaction.commit().await.map_err(failed(CONTEXT))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_data_store(&self, name: &str) -> Result<bool, StoreError> {
        let query = sqlx::query("DELETE FROM data_stores WHERE name = ?").bind(name);
        let done = self.run(query, "deleting a data store").await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn records(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        let query = in_channel(
            "SELECT * FROM records WHERE connection = ? AND channel = ? ORDER BY guid",
            channel,
        );
        self.fetch(query, "reading records", record_from_row).await
    }

    async fn record_heads(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        let query = in_channel(concat!(record_heads!(), " ORDER BY guid"), channel);
        self.fetch(query, "reading records", record_from_row).await
    }

    async fn records_by_guid(
        &self,
        channel: &ChannelKey,
        guids: &[EntryGuid],
    ) -> Result<Vec<Record>, StoreError> {
        let guids: Vec<String> = guids.iter().map(|g| g.as_str().to_owned()).collect();
        self.records_where_in(
            "SELECT * FROM records WHERE connection = ? AND channel = ?",
            channel,
            "guid",
            &guids,
        )
        .await
    }

    async fn record_heads_page(
        &self,
        channel: &ChannelKey,
        after: Option<&EntryGuid>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let query = in_channel(
            concat!(record_heads!(), " AND guid > ? ORDER BY guid LIMIT ?"),
            channel,
        )
        .bind(after.map_or("", EntryGuid::as_str).to_owned())
        .bind(i64::from(limit));
        self.fetch(query, "reading records", record_from_row).await
    }

    async fn record_heads_with(
        &self,
        channel: &ChannelKey,
        key: RecordKey<'_>,
    ) -> Result<Vec<Record>, StoreError> {
        let (column, values): (&str, Vec<String>) = match key {
            RecordKey::Failed => {
                let query = in_channel(
                    concat!(record_heads!(), " AND status = 'failed' ORDER BY guid"),
                    channel,
                );
                return self.fetch(query, "reading records", record_from_row).await;
            }
            RecordKey::Guids(guids) => (
                "guid",
                guids.iter().map(|g| g.as_str().to_owned()).collect(),
            ),
            RecordKey::UserNames(names) => (
                "user_name_key",
                names.iter().map(|n| n.to_lowercase()).collect(),
            ),
            RecordKey::TargetIds(ids) => (
                "target_id",
                ids.iter().map(|t| t.as_str().to_owned()).collect(),
            ),
            RecordKey::Dns(dns) => ("dn_key", dns.iter().map(|d| normalize_dn(d)).collect()),
        };
        self.records_where_in(record_heads!(), channel, column, &values)
            .await
    }

    async fn save_record(&self, channel: &ChannelKey, record: &Record) -> Result<(), StoreError> {
        self.run(
            upsert_records(channel, std::slice::from_ref(record)),
            "saving a record",
        )
        .await?;
        Ok(())
    }

    async fn save_records(
        &self,
        channel: &ChannelKey,
        records: &[Record],
    ) -> Result<(), StoreError> {
        // One statement per chunk, not a transaction: a transaction would hold the write lock
        // across awaits, while a cycle's other writes wait on the same task.
        for chunk in records.chunks(RECORD_CHUNK) {
            self.run(upsert_records(channel, chunk), "saving records")
                .await?;
        }
        Ok(())
    }

    async fn delete_record(
        &self,
        channel: &ChannelKey,
        guid: &EntryGuid,
    ) -> Result<(), StoreError> {
        let query = in_channel(
            "DELETE FROM records WHERE connection = ? AND channel = ? AND guid = ?",
            channel,
        );
        self.run(query.bind(guid.as_str()), "deleting a record")
            .await?;
        Ok(())
    }

    async fn record_counts(&self, channel: &ChannelKey) -> Result<RecordCounts, StoreError> {
        // Every record per status, as the triggers of migration 0013 keep them; those without
        // a target user and those without a source fingerprint, each a scan of a partial index
        // of those records only (migration 0009): few, once a channel is provisioned.
        let all = self
            .count_by_status(
                channel,
                "SELECT status, n FROM record_status_counts WHERE connection = ? AND channel = ?",
            )
            .await?;
        let without_target = self
            .count_by_status(channel, "SELECT status, count(*) AS n FROM records WHERE connection = ? AND channel = ? AND target_id IS NULL GROUP BY status")
            .await?;
        let without_fingerprint = self
            .count_by_status(channel, "SELECT status, count(*) AS n FROM records WHERE connection = ? AND channel = ? AND source_fingerprint IS NULL GROUP BY status")
            .await?;
        let total: u64 = all.values().sum();
        let of = |counts: &HashMap<String, u64>, status: RecordStatus| {
            counts.get(status.as_str()).copied().unwrap_or(0)
        };
        // Saturating: counts read one after the other may see another process's write between.
        let users = total.saturating_sub(without_target.values().sum::<u64>());
        let failed = of(&all, RecordStatus::Failed);
        let disabled_users = of(&all, RecordStatus::Disabled)
            .saturating_sub(of(&without_target, RecordStatus::Disabled));
        let unsettled_leavers = without_fingerprint
            .values()
            .sum::<u64>()
            .saturating_sub(of(&without_fingerprint, RecordStatus::Failed));
        Ok(RecordCounts {
            users,
            failed,
            blocked: of(&all, RecordStatus::Blocked),
            active: users.saturating_sub(disabled_users),
            settled_in_source: total.saturating_sub(failed + unsettled_leavers),
        })
    }

    async fn group_records(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError> {
        let mut records = self.group_heads(channel).await?;
        let query = in_channel(
            "SELECT group_guid, user_guid, target_id FROM group_members \
             WHERE connection = ? AND channel = ? ORDER BY group_guid, user_guid",
            channel,
        );
        let members = self
            .fetch(query, "reading group members", group_member_from_row)
            .await?;
        attach_members(&mut records, members);
        Ok(records)
    }

    async fn group_heads(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError> {
        let query = in_channel(concat!(group_heads!(), " ORDER BY guid"), channel);
        self.fetch(query, "reading group records", group_record_from_row)
            .await
    }

    async fn group_records_with(
        &self,
        channel: &ChannelKey,
        key: GroupKey<'_>,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        let mut guids: Vec<EntryGuid> = match key {
            GroupKey::Guids(guids) => guids.to_vec(),
            GroupKey::Members(users) => {
                let mut groups = Vec::new();
                for chunk in users.chunks(GUID_CHUNK) {
                    let query = for_column(
                        "SELECT DISTINCT group_guid FROM group_members \
                         WHERE connection = ? AND channel = ?",
                        "user_guid",
                        channel,
                        chunk,
                    );
                    groups.extend(
                        self.fetch(query, "reading group members", |row| {
                            Columns::of(row, "group_members").get::<EntryGuid>("group_guid")
                        })
                        .await?,
                    );
                }
                groups
            }
        };
        guids.sort();
        guids.dedup();
        let mut records = Vec::new();
        let mut members = Vec::new();
        for chunk in guids.chunks(GUID_CHUNK) {
            let query = for_column(group_heads!(), "guid", channel, chunk);
            records.extend(
                self.fetch(query, "reading group records", group_record_from_row)
                    .await?,
            );
            let query = for_column(
                "SELECT group_guid, user_guid, target_id FROM group_members \
                 WHERE connection = ? AND channel = ?",
                "group_guid",
                channel,
                chunk,
            );
            members.extend(
                self.fetch(query, "reading group members", group_member_from_row)
                    .await?,
            );
        }
        records.sort_by(|a, b| a.guid.cmp(&b.guid));
        members.sort();
        attach_members(&mut records, members);
        Ok(records)
    }

    async fn save_group_record(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
    ) -> Result<(), StoreError> {
        let query = in_channel(
            "SELECT group_guid, user_guid, target_id FROM group_members \
             WHERE connection = ? AND channel = ? AND group_guid = ?",
            channel,
        )
        .bind(record.guid.as_str().to_owned());
        let saved: HashMap<EntryGuid, GroupMember> = self
            .fetch(query, "reading group members", group_member_from_row)
            .await?
            .into_iter()
            .map(|(_, member)| (member.guid.clone(), member))
            .collect();
        let added: Vec<GroupMember> = record
            .members
            .iter()
            .filter(|m| saved.get(&m.guid) != Some(m))
            .cloned()
            .collect();
        let kept: HashSet<&EntryGuid> = record.members.iter().map(|m| &m.guid).collect();
        let removed: Vec<EntryGuid> = saved
            .into_keys()
            .filter(|guid| !kept.contains(guid))
            .collect();
        let change = MemberChange {
            added: &added,
            removed: &removed,
        };
        self.save_group_change(channel, record, change).await
    }

    async fn save_group_change(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
        change: MemberChange<'_>,
    ) -> Result<(), StoreError> {
        // Statements, not a transaction: a group's save runs among the cycle's concurrent
        // operations (see `save_records`). Members added go first, members removed after, the
        // head last: each step is true of the target group on its own, so a crash in between
        // leaves no member unrecorded. A head that forgets the group's version goes first
        // instead: a crash after the members changed must not leave the old version, which
        // would let the next read skip the group.
        let forgets_version = record.source_stamp.is_none();
        if forgets_version {
            let head = upsert_group_head(channel, record);
            self.run(head, "saving a group record").await?;
        }
        for chunk in change.added.chunks(MEMBER_CHUNK) {
            let query = upsert_members(channel, &record.guid, chunk);
            self.run(query, "saving group members").await?;
        }
        // A GUID both removed and added keeps the member added (its target user changed).
        let added: HashSet<&EntryGuid> = change.added.iter().map(|m| &m.guid).collect();
        let removed: Vec<EntryGuid> = change
            .removed
            .iter()
            .filter(|guid| !added.contains(guid))
            .cloned()
            .collect();
        for chunk in removed.chunks(GUID_CHUNK) {
            let query = delete_members(channel, &record.guid, chunk);
            self.run(query, "saving group members").await?;
        }
        if !forgets_version {
            let head = upsert_group_head(channel, record);
            self.run(head, "saving a group record").await?;
        }
        Ok(())
    }

    async fn move_group_memberships(
        &self,
        channel: &ChannelKey,
        from: &EntryGuid,
        to: &EntryGuid,
    ) -> Result<(), StoreError> {
        // A group that has both keeps one row, the one moved.
        let query = sqlx::query(
            "UPDATE OR REPLACE group_members SET user_guid = ? \
             WHERE connection = ? AND channel = ? AND user_guid = ?",
        )
        .bind(to.as_str().to_owned())
        .bind(&channel.connection)
        .bind(&channel.channel)
        .bind(from.as_str().to_owned());
        self.run(query, "moving group memberships").await?;
        Ok(())
    }

    async fn delete_group_record(
        &self,
        channel: &ChannelKey,
        guid: &EntryGuid,
    ) -> Result<(), StoreError> {
        // The members first: a crash in between leaves a record without members, which the next
        // cycle deletes again, never members of a group that is gone.
        let query = in_channel(
            "DELETE FROM group_members WHERE connection = ? AND channel = ? AND group_guid = ?",
            channel,
        );
        self.run(
            query.bind(guid.as_str().to_owned()),
            "deleting a group record",
        )
        .await?;
        let query = in_channel(
            "DELETE FROM group_records WHERE connection = ? AND channel = ? AND guid = ?",
            channel,
        );
        self.run(
            query.bind(guid.as_str().to_owned()),
            "deleting a group record",
        )
        .await?;
        Ok(())
    }

    async fn sync_state(&self, channel: &ChannelKey) -> Result<Option<SyncState>, StoreError> {
        let query = in_channel(
            "SELECT mechanism, cursor, settings_fingerprint, last_full_read_ms, last_sweep_ms FROM sync_states WHERE connection = ? AND channel = ?",
            channel,
        );
        Ok(self
            .fetch(query, "reading a sync state", sync_state_from_row)
            .await?
            .pop())
    }

    async fn save_sync_state(
        &self,
        channel: &ChannelKey,
        state: Option<&SyncState>,
    ) -> Result<(), StoreError> {
        let query = match state {
            None => in_channel(
                "DELETE FROM sync_states WHERE connection = ? AND channel = ?",
                channel,
            ),
            Some(state) => in_channel(
                "INSERT INTO sync_states (connection, channel, mechanism, cursor, settings_fingerprint, last_full_read_ms, last_sweep_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (connection, channel) DO UPDATE SET \
                 mechanism = excluded.mechanism, cursor = excluded.cursor, \
                 settings_fingerprint = excluded.settings_fingerprint, last_full_read_ms = excluded.last_full_read_ms, \
                 last_sweep_ms = excluded.last_sweep_ms",
                channel,
            )
            .bind(state.mechanism.name())
            .bind(&state.cursor)
            .bind(&state.settings_fingerprint)
            .bind(state.last_full_read_ms.millis())
            .bind(state.last_sweep_ms.millis()),
        };
        self.run(query, "saving a sync state").await?;
        Ok(())
    }

    async fn forget_channel(&self, channel: &ChannelKey) -> Result<(), StoreError> {
        const CONTEXT: &str = "forgetting a channel";
        // One transaction: a reset is all or nothing.
        let mut transaction = self.writer.begin().await.map_err(failed(CONTEXT))?;
        delete_channel_state(
            &mut transaction,
            "connection = ? AND channel = ?",
            &[&channel.connection, &channel.channel],
        )
        .await
        .map_err(failed(CONTEXT))?;
        transaction.commit().await.map_err(failed(CONTEXT))
    }
}

#[async_trait]
impl HeldOperationStore for SqliteStore {
    async fn held_operations(
        &self,
        channel: &ChannelKey,
    ) -> Result<Vec<HeldOperation>, StoreError> {
        let query = in_channel(
            "SELECT guid, label, operation, reason, held_at_ms, approved FROM held_operations \
             WHERE connection = ? AND channel = ? ORDER BY guid",
            channel,
        );
        self.fetch(query, "reading held operations", held_operation_from_row)
            .await
    }

    async fn save_held_operations(
        &self,
        channel: &ChannelKey,
        held: &[HeldOperation],
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "saving held operations";
        let mut transaction = self.writer.begin().await.map_err(failed(CONTEXT))?;
        let mut queries = vec![in_channel(
            "DELETE FROM held_operations WHERE connection = ? AND channel = ?",
            channel,
        )];
        queries.extend(held.iter().map(|operation| {
            in_channel(
                "INSERT INTO held_operations (connection, channel, guid, label, operation, reason, held_at_ms, approved) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                channel,
            )
            .bind(operation.guid.as_str())
            .bind(&operation.label)
            .bind(operation.operation.as_str())
            .bind(&operation.reason)
            .bind(operation.held_at_ms.millis())
            .bind(i64::from(operation.approved))
        }));
        for query in queries {
            query
                .execute(&mut *transaction)
                .await
                .map_err(failed(CONTEXT))?;
        }
        transaction.commit().await.map_err(failed(CONTEXT))
    }
}

#[async_trait]
impl JournalStore for SqliteStore {
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
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for entry in chunk {
                query = query
                    .bind(&channel.connection)
                    .bind(&channel.channel)
                    .bind(entry.guid.as_str())
                    .bind(&entry.dn)
                    .bind(&entry.label)
                    .bind(entry.operation.as_str())
                    .bind(entry.cycle_id)
                    .bind(entry.sent_at_ms.millis());
            }
            self.run(query, "journaling operations").await?;
        }
        Ok(())
    }

    async fn unsettled_operations(
        &self,
        channel: &ChannelKey,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let query = in_channel(
            "SELECT * FROM operation_journal WHERE connection = ? AND channel = ?
             ORDER BY sent_at_ms, guid",
            channel,
        );
        self.fetch(
            query,
            "reading the operation journal",
            journal_entry_from_row,
        )
        .await
    }

    async fn close_journal_entries(
        &self,
        channel: &ChannelKey,
        guids: &[EntryGuid],
    ) -> Result<(), StoreError> {
        for chunk in guids.chunks(GUID_CHUNK) {
            let query = for_column(
                "DELETE FROM operation_journal WHERE connection = ? AND channel = ?",
                "guid",
                channel,
                chunk,
            );
            self.run(query, "closing journal entries").await?;
        }
        Ok(())
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        // One statement per chunk, not a transaction: a cycle records its events as it goes,
        // and a transaction would hold the write lock across awaits.
        for chunk in events.chunks(AUDIT_CHUNK) {
            self.run(insert_audit_events(chunk), "recording audit events")
                .await?;
        }
        Ok(())
    }

    async fn audit_events_of(&self, who: &str, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let query = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit_events WHERE source_id = ? OR target_id = ? \
             OR name = ? COLLATE NOCASE OR dn = ? COLLATE NOCASE ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(who)
        .bind(who)
        .bind(who)
        .bind(who)
        .bind(i64::from(limit));
        self.fetch(query, "reading audit events", audit_event_from_row)
            .await
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn admin_account(&self) -> Result<Option<AdminAccount>, StoreError> {
        let query = sqlx::query("SELECT username, password_hash FROM admin_account WHERE id = 1");
        let found = self.fetch(
            query,
            "reading the administrator account",
            admin_account_from_row,
        );
        Ok(found.await?.pop())
    }

    async fn save_admin_account(&self, account: &AdminAccount) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO admin_account (id, username, password_hash) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username, password_hash = excluded.password_hash",
        )
        .bind(&account.username)
        .bind(&account.password_hash);
        self.run(query, "saving the administrator account").await?;
        Ok(())
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let query = sqlx::query("SELECT * FROM api_tokens ORDER BY name");
        self.fetch(query, "reading API tokens", api_token_from_row)
            .await
    }

    async fn save_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, created_at_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, created_at_ms = excluded.created_at_ms",
        )
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.created_at_ms.millis());
        self.run(query, "saving an API token").await?;
        Ok(())
    }

    async fn delete_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let query = sqlx::query("DELETE FROM api_tokens WHERE name = ?").bind(name);
        let done = self.run(query, "deleting an API token").await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn begin_cycle(
        &self,
        channel: &ChannelKey,
        started_at_ms: EpochMs,
    ) -> Result<i64, StoreError> {
        let query = in_channel(
            "INSERT INTO cycles (connection, channel, started_at_ms) VALUES (?, ?, ?) RETURNING id",
            channel,
        )
        .bind(started_at_ms.millis());
        let id = self.write_returning(query, "beginning a cycle", |row| {
            Columns::of(row, "cycles").get("id")
        });
        id.await?
            .pop()
            .ok_or_else(|| StoreError::corrupt("cycles", "a new cycle has no id"))
    }

    async fn end_cycle(
        &self,
        cycle_id: i64,
        finished_at_ms: EpochMs,
        summary: &CycleSummary,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let summary = serde_json::to_string(summary)
            .map_err(|e| StoreError::backend("encoding a cycle summary", e))?;
        let query = sqlx::query(
            "UPDATE cycles SET finished_at_ms = ?, summary = ?, error = ? WHERE id = ?",
        )
        .bind(finished_at_ms.millis())
        .bind(summary)
        .bind(error)
        .bind(cycle_id);
        self.run(query, "ending a cycle").await?;
        Ok(())
    }

    async fn cycles(&self, channel: &ChannelKey, limit: u32) -> Result<Vec<Cycle>, StoreError> {
        let query = in_channel(
            "SELECT * FROM cycles WHERE connection = ? AND channel = ? ORDER BY id DESC LIMIT ?",
            channel,
        )
        .bind(i64::from(limit));
        self.fetch(query, "reading cycles", cycle_from_row).await
    }
}
