//! The behaviour every `Store` backend must show: one function per behaviour, each given a
//! fresh, empty store, so that one failing behaviour does not hide the others.
//!
//! A backend's tests make one test of each with
//! `scimbridge_testkit::store_conformance_tests!(fresh_store);`, where `fresh_store` is an
//! async fn returning the store and whatever must live as long as it (a temporary directory).
//! The backend's crate needs `tokio` (with `macros`) among its dev-dependencies.

use scimbridge_model::{
    AuditEvent, AuditEventType, AuthenticationMethod, ChangeDetection, ChannelKey, Connection,
    CycleSummary, DataStore, DataStoreKind, EntryGuid, EpochMs, GroupMember, GroupRecord,
    HeldOperation, JournalEntry, OperationKind, ProvisioningOptions, Record, RecordStatus, Secret,
    SyncState, TargetId, TargetSettings,
};
use scimbridge_state::{AdminAccount, ApiToken, GroupKey, MemberChange, RecordKey, Saved, Store};
use serde_json::json;

/// One `#[tokio::test]` per behaviour of this module, run on the store `$fresh().await` makes.
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        $crate::store_conformance_tests!(@each $fresh;
            data_store_saves_say_created_unchanged_or_updated,
            connection_saves_say_created_unchanged_or_updated,
            connections_are_listed_by_name,
            records_are_listed_by_guid_per_channel,
            record_heads_are_the_records_without_their_image,
            records_by_guid_are_those_that_exist_in_guid_order,
            records_by_guid_take_any_number_of_guids,
            saving_a_record_replaces_the_one_with_its_guid,
            records_saved_together_are_saved_as_one_by_one,
            record_counts_count_users_failures_and_blocks,
            record_heads_are_found_by_user_name_target_id_or_failure,
            record_heads_come_a_page_at_a_time_in_guid_order,
            deleting_a_record_leaves_the_others,
            group_records_are_listed_by_guid_per_channel,
            saving_a_group_record_replaces_the_one_with_its_guid,
            deleting_a_group_record_leaves_the_others,
            a_group_change_writes_its_members_by_the_change,
            group_heads_are_the_group_records_without_members,
            group_records_are_found_by_guid_or_by_member,
            memberships_move_to_the_entry_that_took_over_the_account,
            each_channel_has_one_sync_state,
            held_operations_are_replaced_as_a_set,
            audit_events_are_found_by_any_name_of_their_subject,
            audit_events_of_keeps_the_latest_within_the_limit,
            deleting_a_connection_takes_its_channels_state_and_nothing_else,
            deleting_a_data_store_leaves_the_others,
            the_administrator_account_is_one_and_replaced,
            api_tokens_are_kept_by_name_and_revoked,
            journal_entries_are_one_per_user_oldest_first,
            closing_journal_entries_settles_them,
            journal_entries_come_and_go_in_chunks,
            forgetting_a_channel_clears_its_state_and_nothing_else,
            the_cycle_history_is_newest_first,
        );
    };
    (@each $fresh:path; $($behaviour:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $behaviour() {
                let (store, _keep) = $fresh().await;
                $crate::store_conformance::$behaviour(&store).await;
            }
        )+
    };
}

/// A literal secret saved by the suite; backends must not store it in clear text.
pub const LITERAL_SECRET: &str = "conformance-literal-secret-4f1c";

fn employees() -> ChannelKey {
    ChannelKey::new("Slack", "employees")
}

fn contractors() -> ChannelKey {
    ChannelKey::new("Slack", "contractors")
}

pub fn data_store(path: &str) -> DataStore {
    DataStore {
        name: "corp".into(),
        kind: DataStoreKind::Ldif { path: path.into() },
    }
}

/// A directory server bound to with a literal password.
pub fn ldap_data_store() -> DataStore {
    DataStore {
        name: "corp-ldap".into(),
        kind: DataStoreKind::Ldap(
            serde_json::from_value(json!({
                "hostnames": ["ldap.example.com"],
                "user_dn": "cn=reader,dc=example,dc=com",
                "bind_password": format!("{LITERAL_SECRET}-bind"),
            }))
            .unwrap(),
        ),
    }
}

pub fn connection(url: &str) -> Connection {
    Connection {
        name: "Slack".into(),
        active: true,
        target: TargetSettings {
            authentication: AuthenticationMethod::Oauth2Bearer,
            access_token: Some(Secret::Literal(LITERAL_SECRET.into())),
            // Stored even when another method is chosen: each secret is encrypted.
            basic_username: Some("admin".into()),
            basic_password: Some(Secret::Literal(format!("{LITERAL_SECRET}-basic"))),
            client_id: Some("scimbridge".into()),
            client_secret: Some(Secret::Literal(format!("{LITERAL_SECRET}-client"))),
            ..TargetSettings::new(url)
        },
        options: ProvisioningOptions::default(),
        guard: Default::default(),
        channels: vec![],
    }
}

pub fn record(guid: &str, status: RecordStatus) -> Record {
    Record {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        user_name: Some(guid.into()),
        target_id: (status != RecordStatus::Failed).then(|| format!("t-{guid}").into()),
        source_fingerprint: Some("fp".into()),
        applied_image: Some(
            // A create-only first password: images are encrypted at rest like secrets.
            json!({"userName": guid, "name": {"givenName": "Zoë"}, "active": true,
                   "password": format!("{LITERAL_SECRET}-password")}),
        ),
        target_version: (status == RecordStatus::Provisioned).then(|| "W/\"3\"".into()),
        status,
        last_error: (status == RecordStatus::Failed).then(|| "HTTP 500: boom".into()),
        attempts: u32::from(status == RecordStatus::Failed),
        retry_after_ms: (status == RecordStatus::Failed)
            .then_some(EpochMs::from_millis(1_700_000_060_000)),
        failed_fingerprint: (status == RecordStatus::Failed).then(|| "fp-new".into()),
    }
}

fn member(guid: &str) -> GroupMember {
    GroupMember {
        guid: guid.into(),
        target_id: format!("t-{guid}").into(),
    }
}

fn group_record(guid: &str, name: &str, members: &[&str]) -> GroupRecord {
    GroupRecord {
        guid: guid.into(),
        dn: format!("cn={name},ou=groups,dc=example,dc=com"),
        display_name: name.into(),
        target_id: Some(format!("t-{guid}").into()),
        members: members.iter().map(|m| member(m)).collect(),
        source_stamp: Some(format!("entryCSN:{guid}")),
        status: RecordStatus::Provisioned,
        last_error: None,
        attempts: 0,
    }
}

/// A group record that failed to be created.
fn pending_group_record() -> GroupRecord {
    GroupRecord {
        target_id: None,
        status: RecordStatus::Failed,
        last_error: Some("HTTP 500".into()),
        attempts: 2,
        source_stamp: None,
        ..group_record("g1", "Ünïcode crew", &[])
    }
}

fn sync_state() -> SyncState {
    SyncState {
        mechanism: ChangeDetection::ContentSync,
        cursor: "cmlkPTAwMCxjc249MjAyNg==".into(),
        settings_fingerprint: "abc".into(),
        last_full_read_ms: EpochMs::from_millis(1_700_000_000_000),
        last_sweep_ms: EpochMs::from_millis(1_700_000_600_000),
    }
}

fn held(guid: &str, approved: bool) -> HeldOperation {
    HeldOperation {
        guid: guid.into(),
        label: format!("user {guid}"),
        operation: OperationKind::Disable,
        reason: "left the source location; held by the mass-change guard".into(),
        held_at_ms: EpochMs::from_millis(1_700_000_000_000),
        approved,
    }
}

fn event(time_ms: i64, source_id: &str, name: &str, event_type: AuditEventType) -> AuditEvent {
    AuditEvent {
        time_ms: EpochMs::from_millis(time_ms),
        cycle_id: 7,
        connection: "Slack".into(),
        channel: "employees".into(),
        event_type,
        source_id: source_id.into(),
        dn: format!("uid={name},ou=people,dc=example,dc=com"),
        name: Some(name.into()),
        target_id: Some(format!("t-{source_id}").into()),
        success: true,
        cause: "new in the source location".into(),
    }
}

fn entry(guid: &str, operation: OperationKind, sent_at_ms: i64) -> JournalEntry {
    JournalEntry {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        label: format!("user {guid}"),
        operation,
        cycle_id: 9,
        sent_at_ms: EpochMs::from_millis(sent_at_ms),
    }
}

fn guids(names: &[&str]) -> Vec<EntryGuid> {
    names.iter().map(|g| EntryGuid::from(*g)).collect()
}

/// More GUIDs than one SQL statement may bind, none of them saved, then `and`.
fn many_guids_and(and: &[&str]) -> Vec<EntryGuid> {
    (0..1200)
        .map(|i| EntryGuid::from(format!("x{i}")))
        .chain(guids(and))
        .collect()
}

async fn save_records(store: &dyn Store, channel: &ChannelKey, records: &[Record]) {
    for record in records {
        store.save_record(channel, record).await.unwrap();
    }
}

/// Records b, a, c of employees and z of contractors; returns employees' records, by GUID.
async fn save_employees_and_a_contractor(store: &dyn Store) -> Vec<Record> {
    let saved = [
        record("b", RecordStatus::Provisioned),
        record("a", RecordStatus::Failed),
        record("c", RecordStatus::Disabled),
    ];
    save_records(store, &employees(), &saved).await;
    save_records(
        store,
        &contractors(),
        &[record("z", RecordStatus::Provisioned)],
    )
    .await;
    vec![saved[1].clone(), saved[0].clone(), saved[2].clone()]
}

async fn ann_and_bob_events(store: &dyn Store) -> Vec<AuditEvent> {
    store
        .record_audit_events(&[
            event(1, "g1", "ann", AuditEventType::UserCreate),
            event(2, "g2", "bob", AuditEventType::UserCreate),
            event(3, "g1", "ann", AuditEventType::UserDisable),
        ])
        .await
        .unwrap();
    vec![
        event(1, "g1", "ann", AuditEventType::UserCreate),
        event(3, "g1", "ann", AuditEventType::UserDisable),
    ]
}

async fn journal_employees_and_a_contractor(store: &dyn Store) {
    store
        .journal_operations(
            &employees(),
            &[
                entry("new", OperationKind::Create, 2),
                entry("b", OperationKind::Update, 1),
                entry("c", OperationKind::Delete, 3),
            ],
        )
        .await
        .unwrap();
    store
        .journal_operations(&contractors(), &[entry("z", OperationKind::Update, 1)])
        .await
        .unwrap();
    store
        .journal_operations(&employees(), &[entry("b", OperationKind::Disable, 4)])
        .await
        .unwrap();
}

pub async fn data_store_saves_say_created_unchanged_or_updated(store: &dyn Store) {
    assert_eq!(
        store.save_data_store(&data_store("/a.ldif")).await.unwrap(),
        Saved::Created
    );
    assert_eq!(
        store.save_data_store(&data_store("/a.ldif")).await.unwrap(),
        Saved::Unchanged
    );
    assert_eq!(
        store.save_data_store(&data_store("/b.ldif")).await.unwrap(),
        Saved::Updated
    );
    assert_eq!(
        store.data_stores().await.unwrap(),
        vec![data_store("/b.ldif")]
    );
    // Secrets too are compared as they were given.
    assert_eq!(
        store.save_data_store(&ldap_data_store()).await.unwrap(),
        Saved::Created
    );
    assert_eq!(
        store.save_data_store(&ldap_data_store()).await.unwrap(),
        Saved::Unchanged
    );
    assert_eq!(
        store.data_stores().await.unwrap(),
        vec![data_store("/b.ldif"), ldap_data_store()],
        "secrets come back decrypted"
    );
}

pub async fn connection_saves_say_created_unchanged_or_updated(store: &dyn Store) {
    for (url, saved) in [
        ("http://a", Saved::Created),
        ("http://a", Saved::Unchanged),
        ("http://b", Saved::Updated),
    ] {
        assert_eq!(
            store.save_connection(&connection(url)).await.unwrap(),
            saved
        );
    }
    let stored = store.connection("Slack").await.unwrap().unwrap();
    assert_eq!(
        stored,
        connection("http://b"),
        "secrets come back decrypted"
    );
}

pub async fn connections_are_listed_by_name(store: &dyn Store) {
    assert!(store.connection("missing").await.unwrap().is_none());
    store
        .save_connection(&connection("http://b"))
        .await
        .unwrap();
    let mut other = connection("http://c");
    other.name = "Box".into();
    store.save_connection(&other).await.unwrap();
    let names: Vec<String> = store
        .connections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Box", "Slack"]);
}

pub async fn records_are_listed_by_guid_per_channel(store: &dyn Store) {
    let expected = save_employees_and_a_contractor(store).await;
    assert_eq!(store.records(&employees()).await.unwrap(), expected);
    assert_eq!(
        store.records(&contractors()).await.unwrap(),
        vec![record("z", RecordStatus::Provisioned)]
    );
}

pub async fn record_heads_are_the_records_without_their_image(store: &dyn Store) {
    let records = save_employees_and_a_contractor(store).await;
    let heads = store.record_heads(&employees()).await.unwrap();
    let mut expected = records.clone();
    for record in &mut expected {
        record.applied_image = None;
    }
    assert_eq!(heads, expected);
    assert!(records.iter().any(|r| r.applied_image.is_some()));
}

pub async fn records_by_guid_are_those_that_exist_in_guid_order(store: &dyn Store) {
    let records = save_employees_and_a_contractor(store).await;
    let wanted = guids(&["c", "a", "z", "never-there", "a"]);
    assert_eq!(
        store.records_by_guid(&employees(), &wanted).await.unwrap(),
        vec![records[0].clone(), records[2].clone()]
    );
}

pub async fn records_by_guid_take_any_number_of_guids(store: &dyn Store) {
    let records = save_employees_and_a_contractor(store).await;
    assert_eq!(
        store
            .records_by_guid(&employees(), &many_guids_and(&["b"]))
            .await
            .unwrap(),
        vec![records[1].clone()]
    );
}

pub async fn saving_a_record_replaces_the_one_with_its_guid(store: &dyn Store) {
    save_employees_and_a_contractor(store).await;
    let mut updated = record("a", RecordStatus::Provisioned);
    updated.applied_image = None;
    store.save_record(&employees(), &updated).await.unwrap();
    assert_eq!(store.records(&employees()).await.unwrap()[0], updated);
}

pub async fn records_saved_together_are_saved_as_one_by_one(store: &dyn Store) {
    let mut records = save_employees_and_a_contractor(store).await;
    let mut changed = record("b", RecordStatus::Disabled);
    changed.applied_image = Some(json!({"userName": "b", "active": false}));
    let added = record("e", RecordStatus::Provisioned);
    store
        .save_records(&employees(), &[changed.clone(), added.clone()])
        .await
        .unwrap();
    store.save_records(&employees(), &[]).await.unwrap();
    records[1] = changed;
    records.push(added);
    assert_eq!(store.records(&employees()).await.unwrap(), records);
    let counts = store.record_counts(&employees()).await.unwrap();
    assert_eq!(counts.users, 3, "{counts:?}");
}

pub async fn record_counts_count_users_failures_and_blocks(store: &dyn Store) {
    save_records(
        store,
        &employees(),
        &[
            record("a", RecordStatus::Provisioned),
            record("b", RecordStatus::Provisioned),
            record("c", RecordStatus::Disabled),
            record("d", RecordStatus::Failed),
        ],
    )
    .await;
    let counts = store.record_counts(&employees()).await.unwrap();
    assert_eq!((counts.users, counts.failed, counts.blocked), (3, 1, 0));
    // Disabled users are not active; failed records are not settled.
    assert_eq!((counts.active, counts.settled_in_source), (2, 3));
    // A leaver (no fingerprint) is a user in the target, neither active nor settled in the
    // source; a failed leaver is counted once.
    let mut leaver = record("l", RecordStatus::Disabled);
    leaver.source_fingerprint = None;
    let mut failed_leaver = record("m", RecordStatus::Failed);
    failed_leaver.source_fingerprint = None;
    save_records(store, &employees(), &[leaver, failed_leaver]).await;
    let counts = store.record_counts(&employees()).await.unwrap();
    assert_eq!(
        (
            counts.users,
            counts.failed,
            counts.active,
            counts.settled_in_source
        ),
        (4, 2, 2, 3)
    );
    for guid in ["l", "m"] {
        store
            .delete_record(&employees(), &guid.into())
            .await
            .unwrap();
    }
    // A blocked user may be in the target already.
    save_records(store, &employees(), &[record("e", RecordStatus::Blocked)]).await;
    let counts = store.record_counts(&employees()).await.unwrap();
    assert_eq!((counts.users, counts.failed, counts.blocked), (4, 1, 1));
    let none = store.record_counts(&contractors()).await.unwrap();
    assert_eq!((none.users, none.failed, none.blocked), (0, 0, 0));
    // A record saved again in another status moves; in one statement with a new one too.
    store
        .save_records(
            &employees(),
            &[
                record("a", RecordStatus::Disabled),
                record("f", RecordStatus::Provisioned),
            ],
        )
        .await
        .unwrap();
    let counts = store.record_counts(&employees()).await.unwrap();
    assert_eq!((counts.users, counts.active, counts.blocked), (5, 3, 1));
    save_records(store, &contractors(), &[record("a", RecordStatus::Failed)]).await;
    // A channel forgotten has nothing left to count; the other keeps its counts.
    store.forget_channel(&employees()).await.unwrap();
    let gone = store.record_counts(&employees()).await.unwrap();
    assert_eq!(
        (gone.users, gone.failed, gone.active),
        (0, 0, 0),
        "{gone:?}"
    );
    let other = store.record_counts(&contractors()).await.unwrap();
    assert_eq!(other.failed, 1, "{other:?}");
}

pub async fn record_heads_are_found_by_user_name_target_id_or_failure(store: &dyn Store) {
    let mut renamed = record("b", RecordStatus::Provisioned);
    renamed.user_name = Some("Zoë.Ünal".into());
    save_records(
        store,
        &employees(),
        &[
            record("a", RecordStatus::Provisioned),
            renamed.clone(),
            record("c", RecordStatus::Failed),
            record("d", RecordStatus::Failed),
        ],
    )
    .await;
    save_records(store, &contractors(), &[record("a", RecordStatus::Failed)]).await;
    let head = |r: &Record| Record {
        applied_image: None,
        ..r.clone()
    };
    let find = |key: RecordKey<'static>| async move {
        store
            .record_heads_with(&employees(), key)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.guid.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    // User names compare without regard to case, ASCII or not.
    let names: &'static [String] = Box::leak(Box::new(["ZOË.üNAL".into(), "A".into(), "x".into()]));
    assert_eq!(find(RecordKey::UserNames(names)).await, ["a", "b"]);
    let targets: &'static [TargetId] = Box::leak(Box::new(["t-b".into(), "t-z".into()]));
    assert_eq!(find(RecordKey::TargetIds(targets)).await, ["b"]);
    assert_eq!(find(RecordKey::Failed).await, ["c", "d"]);
    let guids: &'static [EntryGuid] = Box::leak(Box::new(["d".into(), "a".into(), "q".into()]));
    assert_eq!(find(RecordKey::Guids(guids)).await, ["a", "d"]);
    // DNs compare as normalised, however they are spelled.
    let dns: &'static [String] = Box::leak(Box::new([
        "UID=c, ou=People,dc=example,dc=com".into(),
        "uid=a,ou=people,dc=example,dc=com".into(),
        "uid=q,ou=people,dc=example,dc=com".into(),
    ]));
    assert_eq!(find(RecordKey::Dns(dns)).await, ["a", "c"]);
    // Heads come without their image, in any number.
    let many: Vec<String> = many_guids_and(&["b"])
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    let many: &'static [String] = Box::leak(many.into_boxed_slice());
    let found = store
        .record_heads_with(&employees(), RecordKey::UserNames(many))
        .await
        .unwrap();
    assert!(found.is_empty(), "user names are not GUIDs: {found:?}");
    let found = store
        .record_heads_with(&employees(), RecordKey::TargetIds(targets))
        .await
        .unwrap();
    assert_eq!(found, vec![head(&renamed)]);
}

pub async fn record_heads_come_a_page_at_a_time_in_guid_order(store: &dyn Store) {
    let records = save_employees_and_a_contractor(store).await;
    save_records(store, &employees(), &[record("d", RecordStatus::Failed)]).await;
    let mut seen = Vec::new();
    let mut after: Option<EntryGuid> = None;
    loop {
        let page = store
            .record_heads_page(&employees(), after.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        assert!(page.iter().all(|r| r.applied_image.is_none()));
        let Some(last) = page.last() else { break };
        after = Some(last.guid.clone());
        seen.extend(page.iter().map(|r| r.guid.as_str().to_owned()));
    }
    assert_eq!(seen, ["a", "b", "c", "d"]);
    assert_eq!(
        store
            .record_heads_page(&employees(), None, 1)
            .await
            .unwrap(),
        vec![Record {
            applied_image: None,
            ..records[0].clone()
        }]
    );
    assert!(
        store
            .record_heads_page(&contractors(), Some(&"z".into()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn deleting_a_record_leaves_the_others(store: &dyn Store) {
    save_employees_and_a_contractor(store).await;
    save_records(store, &employees(), &[record("d", RecordStatus::Failed)]).await;
    store
        .delete_record(&employees(), &"d".into())
        .await
        .unwrap();
    store
        .delete_record(&employees(), &"never-there".into())
        .await
        .unwrap();
    assert_eq!(store.records(&employees()).await.unwrap().len(), 3);
    assert_eq!(store.records(&contractors()).await.unwrap().len(), 1);
}

/// Group records g2 (staff) and g1 (pending) of employees, and g9 of contractors.
async fn save_groups(store: &dyn Store) {
    let staff = group_record("g2", "staff", &["a", "b"]);
    store.save_group_record(&employees(), &staff).await.unwrap();
    store
        .save_group_record(&employees(), &pending_group_record())
        .await
        .unwrap();
    store
        .save_group_record(&contractors(), &group_record("g9", "other", &["z"]))
        .await
        .unwrap();
}

pub async fn group_records_are_listed_by_guid_per_channel(store: &dyn Store) {
    save_groups(store).await;
    assert_eq!(
        store.group_records(&employees()).await.unwrap(),
        vec![
            pending_group_record(),
            group_record("g2", "staff", &["a", "b"])
        ]
    );
    assert_eq!(store.group_records(&contractors()).await.unwrap().len(), 1);
}

pub async fn saving_a_group_record_replaces_the_one_with_its_guid(store: &dyn Store) {
    save_groups(store).await;
    let renamed = group_record("g2", "crew", &["b"]);
    store
        .save_group_record(&employees(), &renamed)
        .await
        .unwrap();
    assert_eq!(store.group_records(&employees()).await.unwrap()[1], renamed);
}

pub async fn deleting_a_group_record_leaves_the_others(store: &dyn Store) {
    save_groups(store).await;
    store
        .delete_group_record(&employees(), &"g1".into())
        .await
        .unwrap();
    store
        .delete_group_record(&employees(), &"never-there".into())
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&employees()).await.unwrap(),
        vec![group_record("g2", "staff", &["a", "b"])]
    );
    assert_eq!(store.group_records(&contractors()).await.unwrap().len(), 1);
    // Its members went with it: a group that comes back under the GUID starts empty.
    store
        .delete_group_record(&employees(), &"g2".into())
        .await
        .unwrap();
    let change = MemberChange::default();
    store
        .save_group_change(&employees(), &group_record("g2", "staff", &[]), change)
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&employees()).await.unwrap(),
        vec![group_record("g2", "staff", &[])]
    );
}

pub async fn a_group_change_writes_its_members_by_the_change(store: &dyn Store) {
    save_groups(store).await;
    // Renamed, c added, a removed; the members given with the record are not read.
    let renamed = group_record("g2", "crew", &["ignored"]);
    let added = [member("c")];
    let change = MemberChange {
        added: &added,
        removed: &["a".into(), "never-a-member".into()],
    };
    store
        .save_group_change(&employees(), &renamed, change)
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&employees()).await.unwrap()[1],
        group_record("g2", "crew", &["b", "c"])
    );
    // b's user was replaced by another target user: a GUID both removed and added is added.
    let moved = GroupMember {
        guid: "b".into(),
        target_id: "t-b2".into(),
    };
    let change = MemberChange {
        added: std::slice::from_ref(&moved),
        removed: &["b".into()],
    };
    store
        .save_group_change(&employees(), &renamed, change)
        .await
        .unwrap();
    let mut expected = group_record("g2", "crew", &["c"]);
    expected.members.insert(0, moved);
    assert_eq!(
        store.group_records(&employees()).await.unwrap()[1],
        expected
    );
    // A whole save writes the difference, whatever the change before.
    let whole = group_record("g2", "crew", &["a", "d"]);
    store.save_group_record(&employees(), &whole).await.unwrap();
    assert_eq!(store.group_records(&employees()).await.unwrap()[1], whole);
    // Many members at once, in and out, beyond any one statement's size.
    let many: Vec<String> = (0..1_200).map(|i| format!("u{i:04}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let big = group_record("g2", "crew", &many);
    store.save_group_record(&employees(), &big).await.unwrap();
    assert_eq!(store.group_records(&employees()).await.unwrap()[1], big);
    let removed: Vec<EntryGuid> = many[..1_100].iter().map(|m| (*m).into()).collect();
    let change = MemberChange {
        added: &[],
        removed: &removed,
    };
    store
        .save_group_change(&employees(), &big, change)
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&employees()).await.unwrap()[1],
        group_record("g2", "crew", &many[1_100..])
    );
    assert_eq!(
        store.group_records(&contractors()).await.unwrap(),
        vec![group_record("g9", "other", &["z"])]
    );
}

pub async fn group_heads_are_the_group_records_without_members(store: &dyn Store) {
    save_groups(store).await;
    let heads = store.group_heads(&employees()).await.unwrap();
    let without_members = |r: GroupRecord| GroupRecord {
        members: Vec::new(),
        ..r
    };
    assert_eq!(
        heads,
        vec![
            without_members(pending_group_record()),
            without_members(group_record("g2", "staff", &["a", "b"]))
        ]
    );
}

pub async fn group_records_are_found_by_guid_or_by_member(store: &dyn Store) {
    save_groups(store).await;
    let night = group_record("g3", "night", &["b", "c"]);
    store.save_group_record(&employees(), &night).await.unwrap();
    let find = |key: GroupKey<'static>| async move {
        store.group_records_with(&employees(), key).await.unwrap()
    };
    let guids: &'static [EntryGuid] = Box::leak(Box::new(["g3".into(), "g1".into(), "q".into()]));
    assert_eq!(
        find(GroupKey::Guids(guids)).await,
        vec![pending_group_record(), night.clone()]
    );
    let users: &'static [EntryGuid] = Box::leak(Box::new(["b".into(), "c".into(), "z".into()]));
    assert_eq!(
        find(GroupKey::Members(users)).await,
        vec![group_record("g2", "staff", &["a", "b"]), night]
    );
    // In any number, and only the channel's.
    let many: &'static [EntryGuid] = Box::leak(many_guids_and(&["a"]).into_boxed_slice());
    let found = find(GroupKey::Members(many)).await;
    assert_eq!(found, vec![group_record("g2", "staff", &["a", "b"])]);
}

pub async fn memberships_move_to_the_entry_that_took_over_the_account(store: &dyn Store) {
    save_groups(store).await;
    let both = group_record("g3", "night", &["a", "n"]);
    store.save_group_record(&employees(), &both).await.unwrap();
    store
        .move_group_memberships(&employees(), &"a".into(), &"n".into())
        .await
        .unwrap();
    let groups = store.group_records(&employees()).await.unwrap();
    let members = |i: usize| -> Vec<(&str, &str)> {
        groups[i]
            .members
            .iter()
            .map(|m| (m.guid.as_str(), m.target_id.as_str()))
            .collect()
    };
    // The account of a is n's now, in every group; a group with both keeps one.
    assert_eq!(members(1), [("b", "t-b"), ("n", "t-a")]);
    assert_eq!(members(2), [("n", "t-a")]);
    assert_eq!(
        store.group_records(&contractors()).await.unwrap(),
        vec![group_record("g9", "other", &["z"])]
    );
}

pub async fn each_channel_has_one_sync_state(store: &dyn Store) {
    assert_eq!(store.sync_state(&employees()).await.unwrap(), None);
    let state = sync_state();
    store
        .save_sync_state(&employees(), Some(&state))
        .await
        .unwrap();
    let later = SyncState {
        cursor: "20261129101500Z".into(),
        mechanism: ChangeDetection::Timestamp,
        last_sweep_ms: EpochMs::from_millis(1_700_000_900_000),
        ..state.clone()
    };
    store
        .save_sync_state(&contractors(), Some(&state))
        .await
        .unwrap();
    store
        .save_sync_state(&employees(), Some(&later))
        .await
        .unwrap();
    assert_eq!(store.sync_state(&employees()).await.unwrap(), Some(later));
    store.save_sync_state(&employees(), None).await.unwrap();
    assert_eq!(store.sync_state(&employees()).await.unwrap(), None);
    assert_eq!(store.sync_state(&contractors()).await.unwrap(), Some(state));
}

pub async fn held_operations_are_replaced_as_a_set(store: &dyn Store) {
    assert!(
        store
            .held_operations(&employees())
            .await
            .unwrap()
            .is_empty()
    );
    store
        .save_held_operations(&employees(), &[held("b", false), held("a", true)])
        .await
        .unwrap();
    store
        .save_held_operations(&contractors(), &[held("z", false)])
        .await
        .unwrap();
    assert_eq!(
        store.held_operations(&employees()).await.unwrap(),
        vec![held("a", true), held("b", false)]
    );
    store
        .save_held_operations(&employees(), &[held("c", false)])
        .await
        .unwrap();
    assert_eq!(
        store.held_operations(&employees()).await.unwrap(),
        vec![held("c", false)]
    );
    assert_eq!(
        store.held_operations(&contractors()).await.unwrap().len(),
        1
    );
}

pub async fn audit_events_are_found_by_any_name_of_their_subject(store: &dyn Store) {
    let ann = ann_and_bob_events(store).await;
    for who in ["g1", "ANN", "t-g1", "UID=ann,ou=people,dc=example,dc=com"] {
        assert_eq!(store.audit_events_of(who, 10).await.unwrap(), ann, "{who}");
    }
    assert!(
        store
            .audit_events_of("nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn audit_events_of_keeps_the_latest_within_the_limit(store: &dyn Store) {
    let ann = ann_and_bob_events(store).await;
    assert_eq!(store.audit_events_of("g1", 1).await.unwrap(), ann[1..]);
}

pub async fn deleting_a_connection_takes_its_channels_state_and_nothing_else(store: &dyn Store) {
    store
        .save_connection(&connection("http://b"))
        .await
        .unwrap();
    save_employees_and_a_contractor(store).await;
    let mut doomed = connection("http://d");
    doomed.name = "Doomed".into();
    store.save_connection(&doomed).await.unwrap();
    let doomed_channel = ChannelKey::new("Doomed", "employees");
    save_records(
        store,
        &doomed_channel,
        &[record("d1", RecordStatus::Provisioned)],
    )
    .await;
    store
        .save_sync_state(&doomed_channel, Some(&sync_state()))
        .await
        .unwrap();
    store
        .save_group_record(&doomed_channel, &group_record("dg", "crew", &["d1"]))
        .await
        .unwrap();
    store
        .save_held_operations(&doomed_channel, &[held("d1", false)])
        .await
        .unwrap();
    store
        .journal_operations(&doomed_channel, &[entry("d1", OperationKind::Update, 1)])
        .await
        .unwrap();
    let cycle = store
        .begin_cycle(&doomed_channel, EpochMs::from_millis(1_000))
        .await
        .unwrap();

    assert!(store.delete_connection("Doomed").await.unwrap());
    assert!(!store.delete_connection("Doomed").await.unwrap());
    assert_eq!(store.connection("Doomed").await.unwrap(), None);
    assert!(store.records(&doomed_channel).await.unwrap().is_empty());
    assert_eq!(store.sync_state(&doomed_channel).await.unwrap(), None);
    assert!(
        store
            .group_records(&doomed_channel)
            .await
            .unwrap()
            .is_empty()
    );
    let change = MemberChange::default();
    let again = group_record("dg", "crew", &[]);
    store
        .save_group_change(&doomed_channel, &again, change)
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&doomed_channel).await.unwrap(),
        [again],
        "the group's members went with the connection"
    );
    assert!(
        store
            .held_operations(&doomed_channel)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .unsettled_operations(&doomed_channel)
            .await
            .unwrap()
            .is_empty()
    );
    // The history stays.
    assert_eq!(
        store.cycles(&doomed_channel, 10).await.unwrap()[0].id,
        cycle
    );
    assert_eq!(store.records(&employees()).await.unwrap().len(), 3);
    assert!(store.connection("Slack").await.unwrap().is_some());
}

pub async fn deleting_a_data_store_leaves_the_others(store: &dyn Store) {
    store.save_data_store(&data_store("/b.ldif")).await.unwrap();
    let mut spare = data_store("/spare.ldif");
    spare.name = "spare".into();
    store.save_data_store(&spare).await.unwrap();
    assert!(store.delete_data_store("spare").await.unwrap());
    assert!(!store.delete_data_store("spare").await.unwrap());
    assert_eq!(store.data_stores().await.unwrap().len(), 1);
}

pub async fn the_administrator_account_is_one_and_replaced(store: &dyn Store) {
    assert_eq!(store.admin_account().await.unwrap(), None);
    let admin = |hash: &str| AdminAccount {
        username: "administrator".into(),
        password_hash: hash.into(),
    };
    store
        .save_admin_account(&admin("$argon2id$a"))
        .await
        .unwrap();
    store
        .save_admin_account(&admin("$argon2id$b"))
        .await
        .unwrap();
    assert_eq!(
        store.admin_account().await.unwrap(),
        Some(admin("$argon2id$b"))
    );
}

pub async fn api_tokens_are_kept_by_name_and_revoked(store: &dyn Store) {
    let token = |name: &str, hash: &str| ApiToken {
        name: name.into(),
        token_hash: hash.into(),
        created_at_ms: EpochMs::from_millis(1_700_000_000_000),
    };
    for saved in [
        token("terraform", "aa"),
        token("ci", "bb"),
        token("ci", "cc"),
    ] {
        store.save_api_token(&saved).await.unwrap();
    }
    assert_eq!(
        store.api_tokens().await.unwrap(),
        vec![token("ci", "cc"), token("terraform", "aa")]
    );
    assert!(store.delete_api_token("ci").await.unwrap());
    assert!(!store.delete_api_token("ci").await.unwrap());
    assert_eq!(store.api_tokens().await.unwrap().len(), 1);
}

pub async fn journal_entries_are_one_per_user_oldest_first(store: &dyn Store) {
    assert!(
        store
            .unsettled_operations(&employees())
            .await
            .unwrap()
            .is_empty()
    );
    journal_employees_and_a_contractor(store).await;
    assert_eq!(
        store.unsettled_operations(&employees()).await.unwrap(),
        vec![
            entry("new", OperationKind::Create, 2),
            entry("c", OperationKind::Delete, 3),
            entry("b", OperationKind::Disable, 4)
        ]
    );
}

pub async fn closing_journal_entries_settles_them(store: &dyn Store) {
    journal_employees_and_a_contractor(store).await;
    store
        .close_journal_entries(&employees(), &guids(&["new", "c"]))
        .await
        .unwrap();
    assert_eq!(
        store.unsettled_operations(&employees()).await.unwrap(),
        vec![entry("b", OperationKind::Disable, 4)]
    );
    store
        .close_journal_entries(&employees(), &many_guids_and(&["b", "never-there"]))
        .await
        .unwrap();
    assert!(
        store
            .unsettled_operations(&employees())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .unsettled_operations(&contractors())
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn journal_entries_come_and_go_in_chunks(store: &dyn Store) {
    let chunked: Vec<JournalEntry> = (0..450)
        .map(|i| entry(&format!("x{i:03}"), OperationKind::Create, i))
        .collect();
    store
        .journal_operations(&employees(), &chunked)
        .await
        .unwrap();
    assert_eq!(
        store.unsettled_operations(&employees()).await.unwrap(),
        chunked
    );
    let guids: Vec<EntryGuid> = chunked.iter().map(|e| e.guid.clone()).collect();
    store
        .close_journal_entries(&employees(), &guids)
        .await
        .unwrap();
    assert!(
        store
            .unsettled_operations(&employees())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn forgetting_a_channel_clears_its_state_and_nothing_else(store: &dyn Store) {
    save_employees_and_a_contractor(store).await;
    journal_employees_and_a_contractor(store).await;
    save_groups(store).await;
    store
        .save_sync_state(&contractors(), Some(&sync_state()))
        .await
        .unwrap();
    let reset = ChannelKey::new("Slack", "interns");
    store
        .journal_operations(&reset, &[entry("r", OperationKind::Create, 5)])
        .await
        .unwrap();
    save_records(store, &reset, &[record("r", RecordStatus::Provisioned)]).await;
    store
        .save_group_record(&reset, &group_record("rg", "crew", &["r"]))
        .await
        .unwrap();
    store
        .save_sync_state(&reset, Some(&sync_state()))
        .await
        .unwrap();
    store
        .save_held_operations(&reset, &[held("r", false)])
        .await
        .unwrap();
    let before = store.records(&employees()).await.unwrap();

    store.forget_channel(&reset).await.unwrap();
    assert!(store.records(&reset).await.unwrap().is_empty());
    assert!(store.group_records(&reset).await.unwrap().is_empty());
    // The group's members went too: the group saved again under its GUID has none.
    let change = MemberChange::default();
    store
        .save_group_change(&reset, &group_record("rg", "crew", &[]), change)
        .await
        .unwrap();
    assert!(
        store.group_records(&reset).await.unwrap()[0]
            .members
            .is_empty()
    );
    assert_eq!(store.sync_state(&reset).await.unwrap(), None);
    assert!(store.unsettled_operations(&reset).await.unwrap().is_empty());
    assert!(store.held_operations(&reset).await.unwrap().is_empty());
    assert_eq!(
        store
            .unsettled_operations(&contractors())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.records(&employees()).await.unwrap(), before);
    assert_eq!(store.group_records(&contractors()).await.unwrap().len(), 1);
    assert!(store.sync_state(&contractors()).await.unwrap().is_some());
}

pub async fn the_cycle_history_is_newest_first(store: &dyn Store) {
    let first = store
        .begin_cycle(&employees(), EpochMs::from_millis(1_000))
        .await
        .unwrap();
    let summary = CycleSummary {
        created: 3,
        failed: 1,
        groups_created: 2,
        ..CycleSummary::default()
    };
    store
        .end_cycle(first, EpochMs::from_millis(2_000), &summary, None)
        .await
        .unwrap();
    let second = store
        .begin_cycle(&employees(), EpochMs::from_millis(3_000))
        .await
        .unwrap();
    store
        .end_cycle(
            second,
            EpochMs::from_millis(3_500),
            &CycleSummary::default(),
            Some("data store unreadable"),
        )
        .await
        .unwrap();
    let open = store
        .begin_cycle(&employees(), EpochMs::from_millis(4_000))
        .await
        .unwrap();
    let cycles = store.cycles(&employees(), 10).await.unwrap();
    assert_eq!(
        cycles.iter().map(|c| c.id).collect::<Vec<_>>(),
        [open, second, first]
    );
    assert_eq!(cycles[0].finished_at_ms, None);
    assert_eq!(cycles[1].error.as_deref(), Some("data store unreadable"));
    assert_eq!(cycles[2].summary, summary);
    assert_eq!(cycles[2].finished_at_ms, Some(EpochMs::from_millis(2_000)));
    assert_eq!(store.cycles(&employees(), 1).await.unwrap().len(), 1);
    assert!(store.cycles(&contractors(), 10).await.unwrap().is_empty());
}

/// Saves every kind of secret the store keeps (a connection's, a bind password, images with a
/// first password) and a short history: for a backend's own checks of what it keeps at rest
/// and across a reopen ([`check_persisted`]).
pub async fn save_secrets_and_history(store: &dyn Store) {
    store
        .save_connection(&connection("http://b"))
        .await
        .unwrap();
    store.save_data_store(&ldap_data_store()).await.unwrap();
    save_employees_and_a_contractor(store).await;
    for started_at_ms in [1_000, 3_000, 4_000] {
        store
            .begin_cycle(&employees(), EpochMs::from_millis(started_at_ms))
            .await
            .unwrap();
    }
}

/// After [`save_secrets_and_history`] and a reopen of the same storage, everything is still
/// there, secrets decrypted.
pub async fn check_persisted(store: &dyn Store) {
    assert_eq!(
        store.connection("Slack").await.unwrap(),
        Some(connection("http://b"))
    );
    assert_eq!(store.data_stores().await.unwrap(), vec![ldap_data_store()]);
    assert_eq!(store.records(&employees()).await.unwrap().len(), 3);
    assert_eq!(store.cycles(&employees(), 10).await.unwrap().len(), 3);
}
