//! Resource storage: everything in memory for fast reads, written through to
//! SQLite. Writers are serialised by one async mutex and touch the in-memory
//! state only after the database transaction committed, so the indexes and
//! the database never disagree; readers take a short std `RwLock` and never
//! wait on database I/O.
//!
//! A group's members are kept apart from the rest of the group, one row each
//! (`scim_group_members`) and one map entry each, so that adding or removing a
//! member costs the same in a group of ten and in a group of a million.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use scimbridge_scim::error::scim_type;
use scimbridge_scim::filter::{CompareOp, Filter};
use scimbridge_scim::patch::{PatchOp, PatchRequest};
use scimbridge_scim::{GROUP_SCHEMA, ScimErrorBody, USER_SCHEMA};
use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::TargetError;
use crate::time::now_rfc3339;

const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS scim_resources (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    resource_type TEXT    NOT NULL,
    json          TEXT    NOT NULL,
    created       TEXT    NOT NULL,
    last_modified TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    unique_name   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS scim_resources_user_name
    ON scim_resources (unique_name) WHERE resource_type = 'User';
CREATE TABLE IF NOT EXISTS scim_group_members (
    group_id TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    position INTEGER NOT NULL,
    member   TEXT    NOT NULL,
    PRIMARY KEY (group_id, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scim_group_members_value ON scim_group_members (value);
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
}

impl Kind {
    pub(crate) fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    pub(crate) fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Kind::User => USER_SCHEMA,
            Kind::Group => GROUP_SCHEMA,
        }
    }

    /// The required, indexed naming attribute.
    fn name_attr(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "displayName",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "User" => Some(Kind::User),
            "Group" => Some(Kind::Group),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    /// Creation order; list results are sorted by it.
    seq: i64,
    version: i64,
    /// The stored representation: everything but a group's `members`, and
    /// `meta.location` and `members[].$ref`, which depend on the request's base URL.
    json: Value,
    /// A group's members (none for a user).
    members: Members,
}

impl Record {
    /// The whole resource, members included.
    fn full(&self) -> Value {
        if self.members.is_empty() {
            return self.json.clone();
        }
        let Value::Object(obj) = &self.json else {
            return self.json.clone();
        };
        let mut out = Map::new();
        for (key, value) in obj {
            if key == "meta" {
                out.insert("members".into(), Value::Array(self.members.to_vec()));
            }
            out.insert(key.clone(), value.clone());
        }
        if !out.contains_key("members") {
            out.insert("members".into(), Value::Array(self.members.to_vec()));
        }
        Value::Object(out)
    }

    /// Whether `filter` matches the resource; members are looked at only when the filter names them.
    fn matches(&self, filter: &Filter) -> bool {
        if !self.members.is_empty() && names_members(filter) {
            filter.matches(&self.full())
        } else {
            filter.matches(&self.json)
        }
    }
}

/// Whether a filter looks at `members`.
fn names_members(filter: &Filter) -> bool {
    match filter {
        Filter::And(terms) | Filter::Or(terms) => terms.iter().any(names_members),
        Filter::Not(inner) => names_members(inner),
        Filter::Present(path) | Filter::Compare { path, .. } | Filter::ValuePath { path, .. } => {
            path.name.eq_ignore_ascii_case("members")
        }
    }
}

/// A group's members in the order they were added, found by value (the member's id).
#[derive(Debug, Clone, Default)]
struct Members {
    by_position: BTreeMap<i64, Value>,
    position_of: HashMap<String, i64>,
    next_position: i64,
}

impl Members {
    fn is_empty(&self) -> bool {
        self.by_position.is_empty()
    }

    fn contains(&self, value: &str) -> bool {
        self.position_of.contains_key(value)
    }

    fn get(&self, value: &str) -> Option<&Value> {
        self.by_position.get(self.position_of.get(value)?)
    }

    fn insert(&mut self, position: i64, value: String, member: Value) {
        self.remove(&value);
        self.position_of.insert(value, position);
        self.by_position.insert(position, member);
        self.next_position = self.next_position.max(position + 1);
    }

    fn remove(&mut self, value: &str) -> bool {
        match self.position_of.remove(value) {
            Some(position) => self.by_position.remove(&position).is_some(),
            None => false,
        }
    }

    fn to_vec(&self) -> Vec<Value> {
        self.by_position.values().cloned().collect()
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        self.position_of.keys().map(String::as_str)
    }
}

/// What a write does to a group's members: the rows it removes, then those it adds (with their
/// positions), so that the database and memory change by the same few entries.
#[derive(Debug, Default)]
struct MemberDelta {
    removed: Vec<String>,
    added: Vec<(i64, String, Value)>,
}

impl MemberDelta {
    /// From `before` to `after` (the whole new list): unchanged members keep their place.
    fn between(before: &Members, after: Vec<Value>) -> MemberDelta {
        let mut delta = MemberDelta::default();
        let mut kept: HashSet<String> = HashSet::new();
        let mut position = before.next_position;
        for member in after {
            let Some(value) = member_value(&member).map(str::to_owned) else {
                continue;
            };
            if before.get(&value) == Some(&member) {
                kept.insert(value);
                continue;
            }
            if before.contains(&value) {
                delta.removed.push(value.clone());
            }
            kept.insert(value.clone());
            delta.added.push((position, value, member));
            position += 1;
        }
        delta.removed.extend(
            before
                .values()
                .filter(|v| !kept.contains(*v))
                .map(str::to_owned),
        );
        delta
    }

    fn apply(self, members: &mut Members) {
        for value in &self.removed {
            members.remove(value);
        }
        for (position, value, member) in self.added {
            members.insert(position, value, member);
        }
    }
}

/// A change to one existing resource: its new representation (without members) and version,
/// and what happens to its members.
#[derive(Debug)]
struct Change {
    kind: Kind,
    id: String,
    json: Value,
    version: i64,
    members: MemberDelta,
}

/// What a write answers with: the whole resource, or only its representation without members
/// (for its location and version) when the client asked for no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    Whole,
    WithoutMembers,
}

#[derive(Default)]
struct Collection {
    by_id: HashMap<String, Record>,
    order: BTreeMap<i64, String>,
    /// Lower-cased naming attribute → (seq → id). Unique for users.
    by_name: HashMap<String, BTreeMap<i64, String>>,
}

fn name_key(kind: Kind, json: &Value) -> Option<String> {
    json.get(kind.name_attr())?.as_str().map(str::to_lowercase)
}

impl Collection {
    fn insert(&mut self, kind: Kind, id: &str, record: Record) {
        self.remove(kind, id);
        self.order.insert(record.seq, id.to_owned());
        if let Some(key) = name_key(kind, &record.json) {
            self.by_name
                .entry(key)
                .or_default()
                .insert(record.seq, id.to_owned());
        }
        self.by_id.insert(id.to_owned(), record);
    }

    fn remove(&mut self, kind: Kind, id: &str) -> Option<Record> {
        let old = self.by_id.remove(id)?;
        self.order.remove(&old.seq);
        if let Some(key) = name_key(kind, &old.json)
            && let Some(ids) = self.by_name.get_mut(&key)
        {
            ids.remove(&old.seq);
            if ids.is_empty() {
                self.by_name.remove(&key);
            }
        }
        Some(old)
    }
}

struct State {
    users: Collection,
    groups: Collection,
    next_seq: i64,
}

impl State {
    fn coll(&self, kind: Kind) -> &Collection {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    fn coll_mut(&mut self, kind: Kind) -> &mut Collection {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }
}

pub(crate) struct Resources {
    pool: SqlitePool,
    write_lock: tokio::sync::Mutex<()>,
    state: RwLock<State>,
}

/// One change inside a write transaction.
enum Write<'a> {
    Insert(Kind, &'a str, &'a Record),
    Update(&'a Change),
    Delete(&'a str),
}

/// Creates the database file, when missing, readable by its owner only: it holds people's
/// names and addresses. SQLite would create it 0644 less the umask; its `-wal` and `-shm`
/// files take the mode of the database file.
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

impl Resources {
    pub(crate) async fn open(path: &Path) -> Result<Resources, TargetError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent).await?;
        }
        create_owner_only(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        // One connection is enough: reads are served from memory and writes
        // are serialised anyway. A connection to a local file is not tested before each use
        // (by default a round trip to its SQLite thread on every write).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA_SQL).execute(&pool).await?;

        let mut state = load(&pool).await?;
        state.next_seq = state.next_seq.max(1);
        Ok(Resources {
            pool,
            write_lock: tokio::sync::Mutex::new(()),
            state: RwLock::new(state),
        })
    }

    // A panic while holding the lock cannot leave the state half-updated
    // (updates are plain map inserts after the commit), so poison is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<Value> {
        self.read().coll(kind).by_id.get(id).map(Record::full)
    }

    /// Filtered page in creation order: (totalResults, resources).
    /// `start_index` is 1-based.
    pub(crate) fn list(
        &self,
        kind: Kind,
        filter: Option<&Filter>,
        start_index: usize,
        count: usize,
    ) -> (usize, Vec<Value>) {
        let state = self.read();
        let coll = state.coll(kind);
        let skip = start_index.saturating_sub(1);
        let mut total = 0;
        let mut page = Vec::new();
        let mut visit = |id: &String| {
            let Some(record) = coll.by_id.get(id) else {
                return;
            };
            if filter.is_none_or(|f| record.matches(f)) {
                if total >= skip && page.len() < count {
                    page.push(record.full());
                }
                total += 1;
            }
        };
        // The index only narrows the candidates; the full filter still decides,
        // so indexed and scanned answers are identical.
        match filter.and_then(|f| index_candidate(kind, f)) {
            Some(candidate) => {
                let mut ids = BTreeMap::new();
                candidate_ids(coll, &candidate, &mut ids);
                ids.values().for_each(&mut visit);
            }
            None => coll.order.values().for_each(&mut visit),
        }
        (total, page)
    }

    pub(crate) async fn create(
        &self,
        kind: Kind,
        body: Map<String, Value>,
    ) -> Result<Value, ScimErrorBody> {
        let _writer = self.write_lock.lock().await;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_rfc3339();
        let record = {
            let state = self.read();
            let normalized = prepare(&state, kind, &id, body)?;
            let mut json = assemble(kind, &id, normalized, &now, &now, 1);
            let mut members = Members::default();
            for (position, member) in (0..).zip(take_members(&mut json)) {
                if let Some(value) = member_value(&member).map(str::to_owned) {
                    members.insert(position, value, member);
                }
            }
            Record {
                seq: state.next_seq,
                version: 1,
                json,
                members,
            }
        };
        self.persist(&[Write::Insert(kind, &id, &record)]).await?;
        let json = record.full();
        let mut state = self.write();
        state.next_seq = record.seq + 1;
        state.coll_mut(kind).insert(kind, &id, record);
        Ok(json)
    }

    /// PUT: replaces every attribute except `id` and `meta.created`.
    pub(crate) async fn replace(
        &self,
        kind: Kind,
        id: &str,
        body: Map<String, Value>,
        if_match: Option<&str>,
    ) -> Result<Value, ScimErrorBody> {
        let _writer = self.write_lock.lock().await;
        let change = {
            let state = self.read();
            let existing = existing_matching(&state, kind, id, if_match)?;
            let normalized = prepare(&state, kind, id, body)?;
            updated(kind, id, existing, normalized)
        };
        self.commit(vec![change], Reply::Whole).await
    }

    /// PATCH. Adding and removing group members (the usual PATCH of a group) touches only the
    /// members named; any other operation rewrites the resource.
    pub(crate) async fn patch(
        &self,
        kind: Kind,
        id: &str,
        request: PatchRequest,
        if_match: Option<&str>,
        reply: Reply,
    ) -> Result<Value, ScimErrorBody> {
        let _writer = self.write_lock.lock().await;
        let change = {
            let state = self.read();
            let existing = existing_matching(&state, kind, id, if_match)?;
            match member_operations(kind, &request) {
                Some(operations) => member_change(&state, id, existing, operations)?,
                None => {
                    let mut resource = existing.full();
                    if let Some(obj) = resource.as_object_mut() {
                        obj.remove("meta");
                    }
                    request.apply(&mut resource)?;
                    let Value::Object(body) = resource else {
                        return Err(ScimErrorBody::internal("patched resource is not an object"));
                    };
                    let normalized = prepare(&state, kind, id, body)?;
                    updated(kind, id, existing, normalized)
                }
            }
        };
        self.commit(vec![change], reply).await
    }

    /// Writes changes to existing resources and answers with the first.
    async fn commit(&self, changes: Vec<Change>, reply: Reply) -> Result<Value, ScimErrorBody> {
        let writes: Vec<Write> = changes.iter().map(Write::Update).collect();
        self.persist(&writes).await?;
        let mut state = self.write();
        let mut first = None;
        for change in changes {
            let Change {
                kind,
                id,
                json,
                version,
                members,
            } = change;
            let coll = state.coll_mut(kind);
            let Some(mut record) = coll.remove(kind, &id) else {
                continue;
            };
            record.json = json;
            record.version = version;
            members.apply(&mut record.members);
            if first.is_none() {
                first = Some(match reply {
                    Reply::Whole => record.full(),
                    Reply::WithoutMembers => record.json.clone(),
                });
            }
            coll.insert(kind, &id, record);
        }
        first.ok_or_else(|| ScimErrorBody::internal("nothing was written"))
    }

    /// Deletes a resource and removes it from every group's `members`.
    pub(crate) async fn delete(
        &self,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimErrorBody> {
        let _writer = self.write_lock.lock().await;
        let now = now_rfc3339();
        let group_changes: Vec<Change> = {
            let state = self.read();
            existing_matching(&state, kind, id, if_match)?;
            state
                .groups
                .by_id
                .iter()
                .filter(|(gid, group)| gid.as_str() != id && group.members.contains(id))
                .map(|(gid, group)| Change {
                    kind: Kind::Group,
                    id: gid.clone(),
                    json: touched(&group.json, group.version + 1, &now),
                    version: group.version + 1,
                    members: MemberDelta {
                        removed: vec![id.to_owned()],
                        added: Vec::new(),
                    },
                })
                .collect()
        };
        let mut writes = vec![Write::Delete(id)];
        writes.extend(group_changes.iter().map(Write::Update));
        self.persist(&writes).await?;
        let mut state = self.write();
        state.coll_mut(kind).remove(kind, id);
        for change in group_changes {
            if let Some(group) = state.groups.by_id.get_mut(&change.id) {
                group.json = change.json;
                group.version = change.version;
                change.members.apply(&mut group.members);
            }
        }
        Ok(())
    }

    async fn persist(&self, writes: &[Write<'_>]) -> Result<(), ScimErrorBody> {
        self.persist_tx(writes).await.map_err(|e| {
            tracing::error!(error = %e, "SCIM target: database write failed");
            ScimErrorBody::internal("storage error")
        })
    }

    /// Writes in one transaction; a write of one statement commits on its own (SQLite makes
    /// every statement atomic), without the round trips of `BEGIN` and `COMMIT` to SQLite's
    /// thread: a user created or replaced is one call.
    async fn persist_tx(&self, writes: &[Write<'_>]) -> Result<(), sqlx::Error> {
        if let [write] = writes
            && write.statements() == 1
        {
            let mut connection = self.pool.acquire().await?;
            return execute(&mut connection, write).await;
        }
        let mut tx = self.pool.begin().await?;
        for write in writes {
            execute(&mut tx, write).await?;
        }
        tx.commit().await
    }
}

impl Write<'_> {
    /// How many statements it takes.
    fn statements(&self) -> usize {
        match self {
            Write::Insert(_, _, record) => 1 + record.members.by_position.len(),
            Write::Update(change) => 1 + change.members.removed.len() + change.members.added.len(),
            Write::Delete(_) => 2,
        }
    }
}

/// Runs the statements of one write.
async fn execute(
    connection: &mut sqlx::SqliteConnection,
    write: &Write<'_>,
) -> Result<(), sqlx::Error> {
    match write {
        Write::Insert(kind, id, record) => {
            sqlx::query(
                "INSERT INTO scim_resources \
                 (seq, id, resource_type, json, created, last_modified, version, unique_name) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(record.seq)
            .bind(*id)
            .bind(kind.resource_type())
            .bind(record.json.to_string())
            .bind(meta_str(&record.json, "created"))
            .bind(meta_str(&record.json, "lastModified"))
            .bind(record.version)
            .bind(unique_name(*kind, &record.json))
            .execute(&mut *connection)
            .await?;
            for (position, member) in &record.members.by_position {
                insert_member(connection, id, *position, member).await?;
            }
        }
        Write::Update(change) => {
            sqlx::query(
                "UPDATE scim_resources SET json = ?, last_modified = ?, version = ?, unique_name = ? \
                 WHERE id = ?",
            )
            .bind(change.json.to_string())
            .bind(meta_str(&change.json, "lastModified"))
            .bind(change.version)
            .bind(unique_name(change.kind, &change.json))
            .bind(&change.id)
            .execute(&mut *connection)
            .await?;
            for value in &change.members.removed {
                sqlx::query("DELETE FROM scim_group_members WHERE group_id = ? AND value = ?")
                    .bind(&change.id)
                    .bind(value)
                    .execute(&mut *connection)
                    .await?;
            }
            for (position, _, member) in &change.members.added {
                insert_member(connection, &change.id, *position, member).await?;
            }
        }
        Write::Delete(id) => {
            sqlx::query("DELETE FROM scim_resources WHERE id = ?")
                .bind(*id)
                .execute(&mut *connection)
                .await?;
            sqlx::query("DELETE FROM scim_group_members WHERE group_id = ?")
                .bind(*id)
                .execute(&mut *connection)
                .await?;
        }
    }
    Ok(())
}

async fn insert_member(
    tx: &mut sqlx::SqliteConnection,
    group_id: &str,
    position: i64,
    member: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scim_group_members (group_id, value, position, member) VALUES (?, ?, ?, ?)",
    )
    .bind(group_id)
    .bind(member_value(member).unwrap_or_default())
    .bind(position)
    .bind(member.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// Reads every resource and member into memory. A database written before members had their
/// own rows keeps them inside the group's JSON: they are moved out here, once.
async fn load(pool: &SqlitePool) -> Result<State, TargetError> {
    let rows = sqlx::query(
        "SELECT seq, id, resource_type, json, version FROM scim_resources ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    let mut state = State {
        users: Collection::default(),
        groups: Collection::default(),
        next_seq: 1,
    };
    let mut legacy: Vec<(String, Value, Vec<Value>)> = Vec::new();
    for row in rows {
        let seq: i64 = row.try_get("seq")?;
        let id: String = row.try_get("id")?;
        let resource_type: String = row.try_get("resource_type")?;
        let text: String = row.try_get("json")?;
        let version: i64 = row.try_get("version")?;
        let kind = Kind::parse(&resource_type).ok_or_else(|| TargetError::UnknownResourceType {
            id: id.clone(),
            resource_type: resource_type.clone(),
        })?;
        let mut json: Value =
            serde_json::from_str(&text).map_err(|source| TargetError::CorruptResource {
                id: id.clone(),
                source,
            })?;
        let inline = take_members(&mut json);
        if !inline.is_empty() {
            legacy.push((id.clone(), json.clone(), inline));
        }
        state.next_seq = state.next_seq.max(seq + 1);
        state.coll_mut(kind).insert(
            kind,
            &id,
            Record {
                seq,
                version,
                json,
                members: Members::default(),
            },
        );
    }
    if !legacy.is_empty() {
        let mut tx = pool.begin().await?;
        for (id, json, inline) in &legacy {
            sqlx::query("UPDATE scim_resources SET json = ? WHERE id = ?")
                .bind(json.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for (position, member) in (0..).zip(inline) {
                sqlx::query(
                    "INSERT OR REPLACE INTO scim_group_members (group_id, value, position, member) VALUES (?, ?, ?, ?)",
                )
                .bind(id)
                .bind(member_value(member).unwrap_or_default())
                .bind(position)
                .bind(member.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
    let mut members = sqlx::query(
        "SELECT group_id, value, position, member FROM scim_group_members ORDER BY group_id, position",
    )
    .fetch(pool);
    while let Some(row) = futures_util::TryStreamExt::try_next(&mut members).await? {
        let group_id: String = row.try_get("group_id")?;
        let value: String = row.try_get("value")?;
        let position: i64 = row.try_get("position")?;
        let text: String = row.try_get("member")?;
        let member: Value =
            serde_json::from_str(&text).map_err(|source| TargetError::CorruptResource {
                id: group_id.clone(),
                source,
            })?;
        if let Some(group) = state.groups.by_id.get_mut(&group_id) {
            group.members.insert(position, value, member);
        }
    }
    Ok(state)
}

/// Takes `members` out of a group's JSON.
fn take_members(json: &mut Value) -> Vec<Value> {
    match json.as_object_mut().and_then(|o| o.remove("members")) {
        Some(Value::Array(members)) => members,
        _ => Vec::new(),
    }
}

/// A copy of a resource's JSON with a new version and modification time.
fn touched(json: &Value, version: i64, now: &str) -> Value {
    let mut json = json.clone();
    if let Some(Value::Object(meta)) = json.get_mut("meta") {
        meta.insert("lastModified".into(), now.into());
        meta.insert("version".into(), weak_etag(version).into());
    }
    json
}

/// Member additions and removals of a PATCH request: `add` of `members` with an array of
/// members, `remove` of `members[value eq "…"]`, or `remove` of `members` with the members in
/// `value` (Entra ID's form). `None` when the request does anything else.
fn member_operations(kind: Kind, request: &PatchRequest) -> Option<Vec<MemberOperation>> {
    if kind != Kind::Group {
        return None;
    }
    let mut operations = Vec::new();
    for op in &request.operations {
        let path = op.path.as_deref()?.trim();
        let (attr, filter) = scimbridge_scim::filter::parse_patch_path(path).ok()?;
        if !attr.name.eq_ignore_ascii_case("members")
            || attr.urn.is_some()
            || attr.sub_attr.is_some()
        {
            return None;
        }
        match (op.op, filter, &op.value) {
            (PatchOp::Add, None, Some(Value::Array(items))) => {
                operations.extend(items.iter().cloned().map(MemberOperation::Add));
            }
            (PatchOp::Remove, None, Some(Value::Array(items))) => {
                for item in items {
                    let value = item.get("value").and_then(Value::as_str)?;
                    operations.push(MemberOperation::Remove(value.to_owned()));
                }
            }
            (
                PatchOp::Remove,
                Some(Filter::Compare {
                    path,
                    op: CompareOp::Eq,
                    value: Value::String(value),
                }),
                None,
            ) if path.is_simple("value") => operations.push(MemberOperation::Remove(value)),
            _ => return None,
        }
    }
    Some(operations)
}

enum MemberOperation {
    /// A member object as sent.
    Add(Value),
    /// A member's value.
    Remove(String),
}

/// The change member operations make to a group, checked like a whole new member list would
/// be, in the order they were sent.
fn member_change(
    state: &State,
    id: &str,
    group: &Record,
    operations: Vec<MemberOperation>,
) -> Result<Change, ScimErrorBody> {
    // value → Some(member) added, None removed, applied in order over the stored members.
    let mut outcome: Vec<(String, Option<Value>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for operation in operations {
        let (value, member) = match operation {
            MemberOperation::Add(item) => {
                let member = resolve_member(state, id, item)?;
                match member_value(&member).map(str::to_owned) {
                    Some(value) => (value, Some(member)),
                    None => continue,
                }
            }
            MemberOperation::Remove(value) => (value, None),
        };
        match index.get(&value) {
            Some(&i) => outcome[i].1 = member,
            None => {
                index.insert(value.clone(), outcome.len());
                outcome.push((value, member));
            }
        }
    }
    let mut members = MemberDelta::default();
    let mut position = group.members.next_position;
    for (value, member) in outcome {
        match member {
            // Adding a member already there keeps it as it is (RFC 7644 §3.5.2.1).
            Some(_) if group.members.contains(&value) => {}
            Some(member) => {
                members.added.push((position, value, member));
                position += 1;
            }
            None if group.members.contains(&value) => members.removed.push(value),
            None => {}
        }
    }
    let version = group.version + 1;
    Ok(Change {
        kind: Kind::Group,
        id: id.to_owned(),
        json: touched(&group.json, version, &now_rfc3339()),
        version,
        members,
    })
}

fn meta_str(json: &Value, field: &str) -> String {
    json.get("meta")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn unique_name(kind: Kind, json: &Value) -> Option<String> {
    (kind == Kind::User).then(|| name_key(kind, json)).flatten()
}

enum Candidate {
    Name(String),
    Id(String),
    /// Any of these (an `or` whose every term is indexable).
    AnyOf(Vec<Candidate>),
}

/// An index lookup that yields a superset of the filter's matches: an `eq`
/// on the naming attribute or `id`, alone or as one term of an `and`.
fn index_candidate(kind: Kind, filter: &Filter) -> Option<Candidate> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(s),
        } => {
            if path.is_simple(kind.name_attr()) {
                Some(Candidate::Name(s.to_lowercase()))
            } else if path.is_simple("id") {
                Some(Candidate::Id(s.clone()))
            } else {
                None
            }
        }
        Filter::And(terms) => terms.iter().find_map(|t| index_candidate(kind, t)),
        // `userName eq "a" or userName eq "b" …`: the union of the index entries.
        Filter::Or(terms) => terms
            .iter()
            .map(|t| index_candidate(kind, t))
            .collect::<Option<Vec<_>>>()
            .map(Candidate::AnyOf),
        _ => None,
    }
}

/// The ids a candidate names, keyed by creation sequence (so in creation order, once each).
fn candidate_ids(coll: &Collection, candidate: &Candidate, out: &mut BTreeMap<i64, String>) {
    match candidate {
        Candidate::Name(key) => {
            if let Some(ids) = coll.by_name.get(key) {
                out.extend(ids.iter().map(|(seq, id)| (*seq, id.clone())));
            }
        }
        Candidate::Id(id) => {
            if let Some(record) = coll.by_id.get(id) {
                out.insert(record.seq, id.clone());
            }
        }
        Candidate::AnyOf(candidates) => {
            for candidate in candidates {
                candidate_ids(coll, candidate, out);
            }
        }
    }
}

fn not_found(kind: Kind, id: &str) -> ScimErrorBody {
    ScimErrorBody::not_found(format!("{} {id} not found", kind.resource_type()))
}

fn existing<'a>(state: &'a State, kind: Kind, id: &str) -> Result<&'a Record, ScimErrorBody> {
    state
        .coll(kind)
        .by_id
        .get(id)
        .ok_or_else(|| not_found(kind, id))
}

/// The resource, if `if_match` (an `If-Match` header) names its current version or is `*`
/// (RFC 7232 §3.1; weak and strong forms of our versions compare equal).
fn existing_matching<'a>(
    state: &'a State,
    kind: Kind,
    id: &str,
    if_match: Option<&str>,
) -> Result<&'a Record, ScimErrorBody> {
    let record = existing(state, kind, id)?;
    if let Some(if_match) = if_match {
        let current = weak_etag(record.version);
        let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
        let matches = if_match
            .split(',')
            .any(|tag| tag.trim() == "*" || strip(tag) == strip(&current));
        if !matches {
            return Err(ScimErrorBody::new(
                412,
                None,
                format!(
                    "{} {id} has changed: its version is {current}",
                    kind.resource_type()
                ),
            ));
        }
    }
    Ok(record)
}

/// The change a PUT or a rewriting PATCH makes: a new representation, and the members that
/// differ from the stored ones.
fn updated(kind: Kind, id: &str, existing: &Record, normalized: Normalized) -> Change {
    let created = meta_str(&existing.json, "created");
    let version = existing.version + 1;
    let mut json = assemble(kind, id, normalized, &created, &now_rfc3339(), version);
    let members = MemberDelta::between(&existing.members, take_members(&mut json));
    Change {
        kind,
        id: id.to_owned(),
        json,
        version,
        members,
    }
}

fn member_value(member: &Value) -> Option<&str> {
    member.get("value").and_then(Value::as_str)
}

fn weak_etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A validated request body, before `id` and `meta` are added.
struct Normalized {
    schemas: Vec<String>,
    attrs: Map<String, Value>,
}

fn invalid_value(detail: impl Into<String>) -> ScimErrorBody {
    ScimErrorBody::bad_request(scim_type::INVALID_VALUE, detail)
}

/// Removes every case variant of `name`, returning the last value seen.
fn take_ci(attrs: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = attrs
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    keys.into_iter().fold(None, |_, k| attrs.remove(&k))
}

/// Validates and normalises a User/Group body (POST, PUT, or PATCH result):
/// read-only and never-returned attributes dropped, naming attribute
/// required and unique (users), group members resolved.
fn prepare(
    state: &State,
    kind: Kind,
    id: &str,
    mut attrs: Map<String, Value>,
) -> Result<Normalized, ScimErrorBody> {
    // `id` and `meta` are server-assigned; `password` is never returned and a
    // reference target has no use for storing it; User `groups` is read-only.
    for key in ["id", "meta", "password"] {
        take_ci(&mut attrs, key);
    }
    if kind == Kind::User {
        take_ci(&mut attrs, "groups");
    }

    let core = kind.schema();
    let mut schemas = vec![core.to_owned()];
    match take_ci(&mut attrs, "schemas") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let given: Vec<String> = list
                .into_iter()
                .map(|s| match s {
                    Value::String(s) => Ok(s),
                    _ => Err(invalid_value("schemas must be an array of strings")),
                })
                .collect::<Result<_, _>>()?;
            if !given.is_empty() && !given.iter().any(|s| s.eq_ignore_ascii_case(core)) {
                return Err(invalid_value(format!("schemas must include {core}")));
            }
            for s in given {
                if !schemas.iter().any(|x| x.eq_ignore_ascii_case(&s)) {
                    schemas.push(s);
                }
            }
        }
        Some(_) => return Err(invalid_value("schemas must be an array of strings")),
    }
    for (key, value) in &attrs {
        let is_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        if is_urn && value.is_object() && !schemas.iter().any(|s| s.eq_ignore_ascii_case(key)) {
            schemas.push(key.clone());
        }
    }

    let name_attr = kind.name_attr();
    match take_ci(&mut attrs, name_attr) {
        Some(Value::String(name)) if !name.trim().is_empty() => {
            if kind == Kind::User
                && let Some(ids) = state.users.by_name.get(&name.to_lowercase())
                && ids.values().any(|other| other != id)
            {
                return Err(ScimErrorBody::uniqueness(format!(
                    "userName {name:?} is already in use"
                )));
            }
            attrs.insert(name_attr.to_owned(), Value::String(name));
        }
        _ => {
            return Err(invalid_value(format!(
                "{name_attr} is required and must be a non-empty string"
            )));
        }
    }

    if let Some(active) = take_ci(&mut attrs, "active") {
        let active = match active {
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            v @ (Value::Bool(_) | Value::Null) => v,
            _ => return Err(invalid_value("active must be a boolean")),
        };
        attrs.insert("active".into(), active);
    }

    if kind == Kind::Group {
        resolve_members(state, id, &mut attrs)?;
    }
    Ok(Normalized { schemas, attrs })
}

/// Checks that every member exists, de-duplicates, and fills in `type`.
/// `$ref` is not stored: it depends on the request's base URL.
fn resolve_members(
    state: &State,
    group_id: &str,
    attrs: &mut Map<String, Value>,
) -> Result<(), ScimErrorBody> {
    let items = match take_ci(attrs, "members") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid_value("members must be an array")),
    };
    let mut seen = HashSet::new();
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        let member = resolve_member(state, group_id, item)?;
        if member_value(&member).is_some_and(|value| seen.insert(value.to_owned())) {
            members.push(member);
        }
    }
    if !members.is_empty() {
        attrs.insert("members".into(), Value::Array(members));
    }
    Ok(())
}

/// One member as stored: its `value` (an existing user or group other than the group
/// itself), its `type`, and `display` when the client sent one.
fn resolve_member(state: &State, group_id: &str, item: Value) -> Result<Value, ScimErrorBody> {
    let Value::Object(member) = item else {
        return Err(invalid_value("each member must be an object"));
    };
    let value = member
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| invalid_value("each member needs a string \"value\""))?;
    if value == group_id {
        return Err(invalid_value("a group cannot be a member of itself"));
    }
    let kind = if state.users.by_id.contains_key(value) {
        Kind::User
    } else if state.groups.by_id.contains_key(value) {
        Kind::Group
    } else {
        return Err(invalid_value(format!(
            "member {value:?} is not an existing User or Group"
        )));
    };
    let display = member
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("display"))
        .map(|(_, v)| v.clone())
        // Only what the client sent: a member reads back as it was written.
        .filter(Value::is_string);
    let mut out = Map::new();
    out.insert("value".into(), value.into());
    out.insert("type".into(), kind.resource_type().into());
    if let Some(display) = display {
        out.insert("display".into(), display);
    }
    Ok(Value::Object(out))
}

/// Builds the stored representation with a stable key order:
/// schemas, id, externalId, naming attribute, the rest, meta.
fn assemble(
    kind: Kind,
    id: &str,
    normalized: Normalized,
    created: &str,
    modified: &str,
    version: i64,
) -> Value {
    let Normalized { schemas, mut attrs } = normalized;
    let mut out = Map::new();
    out.insert("schemas".into(), json!(schemas));
    out.insert("id".into(), id.into());
    if let Some(external) = take_ci(&mut attrs, "externalId") {
        out.insert("externalId".into(), external);
    }
    if let Some(name) = attrs.remove(kind.name_attr()) {
        out.insert(kind.name_attr().into(), name);
    }
    out.extend(attrs);
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.resource_type(),
            "created": created,
            "lastModified": modified,
            "version": weak_etag(version),
        }),
    );
    Value::Object(out)
}

/// Adds the request-dependent parts: `meta.location` and group `$ref`s.
pub(crate) fn render(kind: Kind, mut json: Value, base: &str) -> Value {
    let Some(obj) = json.as_object_mut() else {
        return json;
    };
    if let Some(id) = obj.get("id").and_then(Value::as_str).map(str::to_owned)
        && let Some(Value::Object(meta)) = obj.get_mut("meta")
    {
        meta.insert(
            "location".into(),
            format!("{base}/{}/{id}", kind.endpoint()).into(),
        );
    }
    if kind == Kind::Group
        && let Some(Value::Array(members)) = obj.get_mut("members")
    {
        for member in members.iter_mut().filter_map(Value::as_object_mut) {
            let endpoint = match member.get("type").and_then(Value::as_str) {
                Some("Group") => Kind::Group.endpoint(),
                _ => Kind::User.endpoint(),
            };
            if let Some(value) = member
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_owned)
            {
                member.insert("$ref".into(), format!("{base}/{endpoint}/{value}").into());
            }
        }
    }
    json
}
