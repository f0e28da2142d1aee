//! The roles of a state store, one per kind of state.

use async_trait::async_trait;
use scimbridge_model::{
    AuditEvent, ChannelKey, Connection, CycleSummary, DataStore, EntryGuid, EpochMs, GroupRecord,
    HeldOperation, JournalEntry, Record, SyncState,
};

use crate::{
    AdminAccount, ApiToken, Cycle, GroupKey, MemberChange, RecordCounts, RecordKey, Saved,
    StoreError,
};

/// Data stores and connections (with their channels): what `apply` saves.
#[async_trait]
pub trait ConfigurationStore: Send + Sync {
    /// Creates or replaces the data store of that name.
    async fn save_data_store(&self, data_store: &DataStore) -> Result<Saved, StoreError>;
    async fn data_stores(&self) -> Result<Vec<DataStore>, StoreError>;

    /// Creates or replaces the connection of that name. A sealed store keeps literal secrets
    /// encrypted.
    async fn save_connection(&self, connection: &Connection) -> Result<Saved, StoreError>;
    /// All connections, ordered by name (a sealed store decrypts their secrets).
    async fn connections(&self) -> Result<Vec<Connection>, StoreError>;
    async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError>;
    /// Deletes the connection of that name with everything its channels know (records, group
    /// records, sync states, held operations, journal); the cycle history and audit trail stay.
    /// `false` when there was none.
    async fn delete_connection(&self, name: &str) -> Result<bool, StoreError>;
    /// Deletes the data store of that name; `false` when there was none.
    async fn delete_data_store(&self, name: &str) -> Result<bool, StoreError>;
}

/// What a channel knows of its users and groups: records, group records, and its sync state.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// All records of a channel, ordered by GUID.
    async fn records(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError>;
    /// All records of a channel, ordered by GUID, without their applied image (`None`): what a
    /// cycle needs of every record, at a fraction of the memory.
    async fn record_heads(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError>;
    /// The whole records of these GUIDs (those that exist), ordered by GUID.
    async fn records_by_guid(
        &self,
        channel: &ChannelKey,
        guids: &[EntryGuid],
    ) -> Result<Vec<Record>, StoreError>;
    /// At most `limit` record heads, ordered by GUID, those after `after`: every record of a
    /// channel a page at a time, so that going through them all never holds them all.
    async fn record_heads_page(
        &self,
        channel: &ChannelKey,
        after: Option<&EntryGuid>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;
    /// The heads (records without their image) found by another key than the GUID, ordered by
    /// GUID: what an incremental cycle reads instead of every head.
    async fn record_heads_with(
        &self,
        channel: &ChannelKey,
        key: RecordKey<'_>,
    ) -> Result<Vec<Record>, StoreError>;
    /// Inserts or replaces the record with the record's GUID. The applied image comes back as
    /// it was saved: a JSON object, or the string the sealing layer made of it.
    async fn save_record(&self, channel: &ChannelKey, record: &Record) -> Result<(), StoreError>;
    /// Saves these records as `save_record` would, in as few writes as the backend allows: a
    /// chunk of operations that settled together costs one write, not one each.
    async fn save_records(
        &self,
        channel: &ChannelKey,
        records: &[Record],
    ) -> Result<(), StoreError>;
    async fn delete_record(&self, channel: &ChannelKey, guid: &EntryGuid)
    -> Result<(), StoreError>;
    async fn record_counts(&self, channel: &ChannelKey) -> Result<RecordCounts, StoreError>;

    /// All group records of a channel with their members, ordered by GUID.
    async fn group_records(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError>;
    /// All group records of a channel without their members (`members` empty), ordered by GUID:
    /// what an incremental cycle needs of every group.
    async fn group_heads(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError>;
    /// The group records found by `key`, with their members, ordered by GUID.
    async fn group_records_with(
        &self,
        channel: &ChannelKey,
        key: GroupKey<'_>,
    ) -> Result<Vec<GroupRecord>, StoreError>;
    /// Inserts or replaces the group record with the record's GUID, members included. It reads
    /// the group's members to write only what differs; a crash in the middle leaves no member
    /// of the target group unrecorded.
    async fn save_group_record(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
    ) -> Result<(), StoreError>;
    /// Saves everything of the group record but its members, and changes its members by these
    /// (`removed` by the GUID of the member): what a member change costs is the change, not
    /// the group. The members of `record` are not read.
    async fn save_group_change(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
        change: MemberChange<'_>,
    ) -> Result<(), StoreError>;
    /// The memberships of one entry pass to another, in every group (a rehire took over the
    /// account of a leaver).
    async fn move_group_memberships(
        &self,
        channel: &ChannelKey,
        from: &EntryGuid,
        to: &EntryGuid,
    ) -> Result<(), StoreError>;
    async fn delete_group_record(
        &self,
        channel: &ChannelKey,
        guid: &EntryGuid,
    ) -> Result<(), StoreError>;

    /// Where the channel's last incremental read stopped, if it has one.
    async fn sync_state(&self, channel: &ChannelKey) -> Result<Option<SyncState>, StoreError>;
    /// Replaces the channel's sync state; `None` forgets it (the next read is a full one).
    async fn save_sync_state(
        &self,
        channel: &ChannelKey,
        state: Option<&SyncState>,
    ) -> Result<(), StoreError>;

    /// Forgets everything the channel knows of its users and groups: records, group records,
    /// sync state, held operations and the operation journal (the cycle history stays). The
    /// next cycle reads everything and links to the target's users and groups by the unique
    /// identifier, creating no duplicates.
    async fn forget_channel(&self, channel: &ChannelKey) -> Result<(), StoreError>;
}

/// The operations the mass-change guard holds until someone approves or discards them.
#[async_trait]
pub trait HeldOperationStore: Send + Sync {
    /// The operations the mass-change guard holds for the channel, ordered by GUID.
    async fn held_operations(&self, channel: &ChannelKey)
    -> Result<Vec<HeldOperation>, StoreError>;
    /// Replaces the channel's held operations with these.
    async fn save_held_operations(
        &self,
        channel: &ChannelKey,
        held: &[HeldOperation],
    ) -> Result<(), StoreError>;
}

/// The operation journal: user operations that may have been sent and are not settled yet, so
/// that an interrupted cycle resumes where it stopped.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Journals user operations before they are sent to the target (an entry means "may have
    /// been sent"). One entry per user: a newer entry replaces an older one.
    async fn journal_operations(
        &self,
        channel: &ChannelKey,
        entries: &[JournalEntry],
    ) -> Result<(), StoreError>;
    /// Operations journaled and never settled (a crash came between), oldest first.
    async fn unsettled_operations(
        &self,
        channel: &ChannelKey,
    ) -> Result<Vec<JournalEntry>, StoreError>;
    /// Closes journal entries: their operations settled (their records are saved), or nothing
    /// will settle them.
    async fn close_journal_entries(
        &self,
        channel: &ChannelKey,
        guids: &[EntryGuid],
    ) -> Result<(), StoreError>;
}

/// The audit trail of provisioning events; it outlives connections.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends provisioning events to the audit trail.
    async fn record_audit_events(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The events of one user or group, oldest first: `who` is matched against the source id
    /// (GUID), the target id, the name (case-insensitively) and the DN (case-insensitively).
    async fn audit_events_of(&self, who: &str, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Who may use the admin API and console: the administrator account and API tokens.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// The administrator account, once one is set.
    async fn admin_account(&self) -> Result<Option<AdminAccount>, StoreError>;
    /// Creates or replaces the administrator account.
    async fn save_admin_account(&self, account: &AdminAccount) -> Result<(), StoreError>;
    /// API tokens, ordered by name.
    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Creates or replaces the token of that name.
    async fn save_api_token(&self, token: &ApiToken) -> Result<(), StoreError>;
    /// Revokes the token of that name; `false` when there was none.
    async fn delete_api_token(&self, name: &str) -> Result<bool, StoreError>;
}

/// The cycle history of each channel; it outlives connections.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Opens a cycle in the history and returns its id.
    async fn begin_cycle(
        &self,
        channel: &ChannelKey,
        started_at_ms: EpochMs,
    ) -> Result<i64, StoreError>;
    async fn end_cycle(
        &self,
        cycle_id: i64,
        finished_at_ms: EpochMs,
        summary: &CycleSummary,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The most recent cycles of a channel, newest first.
    async fn cycles(&self, channel: &ChannelKey, limit: u32) -> Result<Vec<Cycle>, StoreError>;
}
