//! The behaviour every `Store` backend must show. Run it against a fresh, empty store.

use scimbridge_model::{
    AuditEvent, AuthenticationMethod, ChannelKey, Connection, CycleSummary, DataStore,
    DataStoreType, GroupMember, GroupRecord, HeldOperation, JournalEntry, ProvisioningOptions,
    Record, RecordStatus, Secret, SyncState, TargetSettings,
};
use scimbridge_state::{AdminAccount, ApiToken, Saved, Store};
use serde_json::json;

/// A literal secret saved by the suite; backends must not store it in clear text.
pub const LITERAL_SECRET: &str = "conformance-literal-secret-4f1c";

fn data_store(path: &str) -> DataStore {
    DataStore {
        name: "corp".into(),
        store_type: DataStoreType::Ldif,
        path: Some(path.into()),
        ldap: None,
    }
}

fn connection(url: &str) -> Connection {
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

fn record(guid: &str, status: RecordStatus) -> Record {
    Record {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        user_name: Some(guid.into()),
        target_id: (status != RecordStatus::Failed).then(|| format!("t-{guid}")),
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
        retry_after_ms: (status == RecordStatus::Failed).then_some(1_700_000_060_000),
        failed_fingerprint: (status == RecordStatus::Failed).then(|| "fp-new".into()),
    }
}

fn group_record(guid: &str, name: &str, members: &[&str]) -> GroupRecord {
    GroupRecord {
        guid: guid.into(),
        dn: format!("cn={name},ou=groups,dc=example,dc=com"),
        display_name: name.into(),
        target_id: Some(format!("t-{guid}")),
        members: members
            .iter()
            .map(|m| GroupMember {
                guid: (*m).into(),
                target_id: format!("t-{m}"),
            })
            .collect(),
        status: RecordStatus::Provisioned,
        last_error: None,
        attempts: 0,
    }
}

pub async fn run(store: &dyn Store) {
    // Configuration: create, unchanged, update, by name.
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

    assert_eq!(
        store
            .save_connection(&connection("http://a"))
            .await
            .unwrap(),
        Saved::Created
    );
    assert_eq!(
        store
            .save_connection(&connection("http://a"))
            .await
            .unwrap(),
        Saved::Unchanged
    );
    assert_eq!(
        store
            .save_connection(&connection("http://b"))
            .await
            .unwrap(),
        Saved::Updated
    );
    let stored = store.connection("Slack").await.unwrap().unwrap();
    assert_eq!(
        stored,
        connection("http://b"),
        "secrets come back decrypted"
    );
    assert!(store.connection("missing").await.unwrap().is_none());
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

    // Records: upsert, list ordered by GUID, per channel, delete, counts.
    let channel = ChannelKey::new("Slack", "employees");
    let elsewhere = ChannelKey::new("Slack", "contractors");
    store
        .save_record(&channel, &record("b", RecordStatus::Provisioned))
        .await
        .unwrap();
    store
        .save_record(&channel, &record("a", RecordStatus::Failed))
        .await
        .unwrap();
    store
        .save_record(&channel, &record("c", RecordStatus::Disabled))
        .await
        .unwrap();
    store
        .save_record(&elsewhere, &record("z", RecordStatus::Provisioned))
        .await
        .unwrap();
    let records = store.records(&channel).await.unwrap();
    assert_eq!(
        records,
        vec![
            record("a", RecordStatus::Failed),
            record("b", RecordStatus::Provisioned),
            record("c", RecordStatus::Disabled)
        ]
    );
    // Heads are the records without their image; whole records can be asked for by GUID.
    let heads = store.record_heads(&channel).await.unwrap();
    let mut expected = records.clone();
    for record in &mut expected {
        record.applied_image = None;
    }
    assert_eq!(heads, expected);
    assert!(records.iter().any(|r| r.applied_image.is_some()));
    let wanted: Vec<String> = ["c", "a", "z", "never-there", "a"]
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(
        store.records_by_guid(&channel, &wanted).await.unwrap(),
        vec![records[0].clone(), records[2].clone()]
    );
    let many: Vec<String> = (0..1200)
        .map(|i| format!("x{i}"))
        .chain(["b".into()])
        .collect();
    assert_eq!(
        store.records_by_guid(&channel, &many).await.unwrap(),
        vec![records[1].clone()]
    );
    let mut updated = record("a", RecordStatus::Provisioned);
    updated.applied_image = None;
    store.save_record(&channel, &updated).await.unwrap();
    assert_eq!(store.records(&channel).await.unwrap()[0], updated);
    store
        .save_record(&channel, &record("d", RecordStatus::Failed))
        .await
        .unwrap();
    let counts = store.record_counts(&channel).await.unwrap();
    assert_eq!((counts.users, counts.failed, counts.blocked), (3, 1, 0));
    store.delete_record(&channel, "d").await.unwrap();
    store.delete_record(&channel, "never-there").await.unwrap();
    assert_eq!(store.records(&channel).await.unwrap().len(), 3);
    assert_eq!(store.records(&elsewhere).await.unwrap().len(), 1);

    // Group records: upsert with members, list ordered by GUID, per channel, delete.
    let staff = group_record("g2", "staff", &["a", "b"]);
    store.save_group_record(&channel, &staff).await.unwrap();
    let mut pending = group_record("g1", "Ünïcode crew", &[]);
    pending.target_id = None;
    pending.status = RecordStatus::Failed;
    pending.last_error = Some("HTTP 500".into());
    pending.attempts = 2;
    store.save_group_record(&channel, &pending).await.unwrap();
    store
        .save_group_record(&elsewhere, &group_record("g9", "other", &["z"]))
        .await
        .unwrap();
    assert_eq!(
        store.group_records(&channel).await.unwrap(),
        vec![pending.clone(), staff.clone()]
    );
    let renamed = group_record("g2", "crew", &["b"]);
    store.save_group_record(&channel, &renamed).await.unwrap();
    assert_eq!(store.group_records(&channel).await.unwrap()[1], renamed);
    store.delete_group_record(&channel, "g1").await.unwrap();
    store
        .delete_group_record(&channel, "never-there")
        .await
        .unwrap();
    assert_eq!(store.group_records(&channel).await.unwrap(), vec![renamed]);
    assert_eq!(store.group_records(&elsewhere).await.unwrap().len(), 1);

    // Sync state: one per channel, replaced, forgotten.
    assert_eq!(store.sync_state(&channel).await.unwrap(), None);
    let state = SyncState {
        mechanism: "content-sync".into(),
        cursor: "cmlkPTAwMCxjc249MjAyNg==".into(),
        settings_fingerprint: "abc".into(),
        last_full_read_ms: 1_700_000_000_000,
    };
    store.save_sync_state(&channel, Some(&state)).await.unwrap();
    let later = SyncState {
        cursor: "20261129101500Z".into(),
        mechanism: "timestamp".into(),
        ..state.clone()
    };
    store
        .save_sync_state(&elsewhere, Some(&state))
        .await
        .unwrap();
    store.save_sync_state(&channel, Some(&later)).await.unwrap();
    assert_eq!(store.sync_state(&channel).await.unwrap(), Some(later));
    store.save_sync_state(&channel, None).await.unwrap();
    assert_eq!(store.sync_state(&channel).await.unwrap(), None);
    assert_eq!(
        store.sync_state(&elsewhere).await.unwrap(),
        Some(state.clone())
    );

    // Held operations: replaced as a set, per channel.
    assert!(store.held_operations(&channel).await.unwrap().is_empty());
    let held = |guid: &str, approved: bool| HeldOperation {
        guid: guid.into(),
        label: format!("user {guid}"),
        operation: "disable".into(),
        reason: "left the source location; held by the mass-change guard".into(),
        held_at_ms: 1_700_000_000_000,
        approved,
    };
    store
        .save_held_operations(&channel, &[held("b", false), held("a", true)])
        .await
        .unwrap();
    store
        .save_held_operations(&elsewhere, &[held("z", false)])
        .await
        .unwrap();
    assert_eq!(
        store.held_operations(&channel).await.unwrap(),
        vec![held("a", true), held("b", false)]
    );
    store
        .save_held_operations(&channel, &[held("c", false)])
        .await
        .unwrap();
    assert_eq!(
        store.held_operations(&channel).await.unwrap(),
        vec![held("c", false)]
    );
    assert_eq!(store.held_operations(&elsewhere).await.unwrap().len(), 1);

    // Audit events: appended, found by source id, target id, name or DN, oldest first.
    let event = |time_ms: i64, source_id: &str, name: &str, event_type: &str| AuditEvent {
        time_ms,
        cycle_id: 7,
        connection: "Slack".into(),
        channel: "employees".into(),
        event_type: event_type.into(),
        source_id: source_id.into(),
        dn: format!("uid={name},ou=people,dc=example,dc=com"),
        name: Some(name.into()),
        target_id: Some(format!("t-{source_id}")),
        success: true,
        cause: "new in the source location".into(),
    };
    store
        .record_audit_events(&[
            event(1, "g1", "ann", "user-create"),
            event(2, "g2", "bob", "user-create"),
            event(3, "g1", "ann", "user-disable"),
        ])
        .await
        .unwrap();
    let ann = vec![
        event(1, "g1", "ann", "user-create"),
        event(3, "g1", "ann", "user-disable"),
    ];
    assert_eq!(store.audit_events_of("g1", 10).await.unwrap(), ann);
    assert_eq!(store.audit_events_of("ANN", 10).await.unwrap(), ann);
    assert_eq!(store.audit_events_of("t-g1", 10).await.unwrap(), ann);
    assert_eq!(
        store
            .audit_events_of("UID=ann,ou=people,dc=example,dc=com", 10)
            .await
            .unwrap(),
        ann
    );
    assert_eq!(store.audit_events_of("g1", 1).await.unwrap(), ann[1..]);
    assert!(
        store
            .audit_events_of("nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting a connection takes its channels' state with it, and nothing else.
    let mut doomed = connection("http://d");
    doomed.name = "Doomed".into();
    store.save_connection(&doomed).await.unwrap();
    let doomed_channel = ChannelKey::new("Doomed", "employees");
    store
        .save_record(&doomed_channel, &record("d1", RecordStatus::Provisioned))
        .await
        .unwrap();
    store
        .save_sync_state(&doomed_channel, Some(&state))
        .await
        .unwrap();
    assert!(store.delete_connection("Doomed").await.unwrap());
    assert!(!store.delete_connection("Doomed").await.unwrap());
    assert_eq!(store.connection("Doomed").await.unwrap(), None);
    assert!(store.records(&doomed_channel).await.unwrap().is_empty());
    assert_eq!(store.sync_state(&doomed_channel).await.unwrap(), None);
    assert_eq!(store.records(&channel).await.unwrap().len(), 3);
    let mut spare = data_store("/spare.ldif");
    spare.name = "spare".into();
    store.save_data_store(&spare).await.unwrap();
    assert!(store.delete_data_store("spare").await.unwrap());
    assert!(!store.delete_data_store("spare").await.unwrap());
    assert_eq!(store.data_stores().await.unwrap().len(), 1);

    // The administrator account (one, replaced) and API tokens (by name, revoked).
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
    let token = |name: &str, hash: &str| ApiToken {
        name: name.into(),
        token_hash: hash.into(),
        created_at_ms: 1_700_000_000_000,
    };
    store
        .save_api_token(&token("terraform", "aa"))
        .await
        .unwrap();
    store.save_api_token(&token("ci", "bb")).await.unwrap();
    store.save_api_token(&token("ci", "cc")).await.unwrap();
    assert_eq!(
        store.api_tokens().await.unwrap(),
        vec![token("ci", "cc"), token("terraform", "aa")]
    );
    assert!(store.delete_api_token("ci").await.unwrap());
    assert!(!store.delete_api_token("ci").await.unwrap());
    assert_eq!(store.api_tokens().await.unwrap().len(), 1);

    // Operation journal: entries replaced per user, listed oldest first, closed.
    let entry = |guid: &str, operation: &str, sent_at_ms: i64| JournalEntry {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        label: format!("user {guid}"),
        operation: operation.into(),
        cycle_id: 9,
        sent_at_ms,
    };
    assert!(
        store
            .unsettled_operations(&channel)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .journal_operations(
            &channel,
            &[
                entry("new", "create", 2),
                entry("b", "update", 1),
                entry("c", "delete", 3),
            ],
        )
        .await
        .unwrap();
    store
        .journal_operations(&elsewhere, &[entry("z", "update", 1)])
        .await
        .unwrap();
    store
        .journal_operations(&channel, &[entry("b", "disable", 4)])
        .await
        .unwrap();
    assert_eq!(
        store.unsettled_operations(&channel).await.unwrap(),
        vec![
            entry("new", "create", 2),
            entry("c", "delete", 3),
            entry("b", "disable", 4)
        ]
    );
    store
        .close_journal_entries(&channel, &["new".into(), "c".into()])
        .await
        .unwrap();
    assert_eq!(
        store.unsettled_operations(&channel).await.unwrap(),
        vec![entry("b", "disable", 4)]
    );
    let many: Vec<String> = (0..1200)
        .map(|i| format!("x{i}"))
        .chain(["b".into(), "never-there".into()])
        .collect();
    store.close_journal_entries(&channel, &many).await.unwrap();
    assert!(
        store
            .unsettled_operations(&channel)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.unsettled_operations(&elsewhere).await.unwrap().len(),
        1
    );
    // Entries come in chunks too.
    let chunked: Vec<JournalEntry> = (0..450)
        .map(|i| entry(&format!("x{i:03}"), "create", i))
        .collect();
    store.journal_operations(&channel, &chunked).await.unwrap();
    assert_eq!(store.unsettled_operations(&channel).await.unwrap(), chunked);
    let guids: Vec<String> = chunked.iter().map(|e| e.guid.clone()).collect();
    store.close_journal_entries(&channel, &guids).await.unwrap();
    assert!(
        store
            .unsettled_operations(&channel)
            .await
            .unwrap()
            .is_empty()
    );

    // Forgetting a channel clears its records, group records, sync state and journal, and
    // nothing else.
    let reset = ChannelKey::new("Slack", "interns");
    store
        .journal_operations(&reset, &[entry("r", "create", 5)])
        .await
        .unwrap();
    store
        .save_record(&reset, &record("r", RecordStatus::Provisioned))
        .await
        .unwrap();
    store
        .save_group_record(&reset, &group_record("rg", "crew", &["r"]))
        .await
        .unwrap();
    store.save_sync_state(&reset, Some(&state)).await.unwrap();
    let before = store.records(&channel).await.unwrap();
    store.forget_channel(&reset).await.unwrap();
    assert!(store.records(&reset).await.unwrap().is_empty());
    assert!(store.group_records(&reset).await.unwrap().is_empty());
    assert_eq!(store.sync_state(&reset).await.unwrap(), None);
    assert!(store.unsettled_operations(&reset).await.unwrap().is_empty());
    assert_eq!(
        store.unsettled_operations(&elsewhere).await.unwrap().len(),
        1
    );
    assert_eq!(store.records(&channel).await.unwrap(), before);
    assert_eq!(store.group_records(&elsewhere).await.unwrap().len(), 1);
    assert!(store.sync_state(&elsewhere).await.unwrap().is_some());

    // Cycle history, newest first.
    let first = store.begin_cycle(&channel, 1_000).await.unwrap();
    let summary = CycleSummary {
        created: 3,
        failed: 1,
        groups_created: 2,
        ..CycleSummary::default()
    };
    store.end_cycle(first, 2_000, &summary, None).await.unwrap();
    let second = store.begin_cycle(&channel, 3_000).await.unwrap();
    store
        .end_cycle(
            second,
            3_500,
            &CycleSummary::default(),
            Some("data store unreadable"),
        )
        .await
        .unwrap();
    let open = store.begin_cycle(&channel, 4_000).await.unwrap();
    let cycles = store.cycles(&channel, 10).await.unwrap();
    assert_eq!(
        cycles.iter().map(|c| c.id).collect::<Vec<_>>(),
        [open, second, first]
    );
    assert_eq!(cycles[0].finished_at_ms, None);
    assert_eq!(cycles[1].error.as_deref(), Some("data store unreadable"));
    assert_eq!(cycles[2].summary, summary);
    assert_eq!(cycles[2].finished_at_ms, Some(2_000));
    assert_eq!(store.cycles(&channel, 1).await.unwrap().len(), 1);
    assert!(store.cycles(&elsewhere, 10).await.unwrap().is_empty());
}

/// After `run` and a reopen of the same storage, everything is still there.
pub async fn check_persisted(store: &dyn Store) {
    assert_eq!(
        store.connection("Slack").await.unwrap(),
        Some(connection("http://b"))
    );
    assert_eq!(
        store
            .records(&ChannelKey::new("Slack", "employees"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .cycles(&ChannelKey::new("Slack", "employees"), 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
