use std::collections::HashMap;
use std::fmt::Write;

use scimbridge_model::{
    EntryGuid, Operation, ProvisioningOptions, Record, RecordStatus, RemoveUserAction,
};
use serde_json::json;

use super::{Candidate, plan_users};
use crate::map::DesiredUser;

fn image(user_name: &str, title: &str, active: bool) -> serde_json::Value {
    json!({"userName": user_name, "title": title, "active": active})
}

fn candidate(guid: &str, title: &str, active: bool) -> Candidate {
    Candidate {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        fingerprint: format!("fp-{guid}-{title}-{active}"),
        mapped: Ok(DesiredUser {
            user_name: guid.into(),
            active,
            image: image(guid, title, active),
            link_image: None,
        }),
    }
}

/// The entry `guid` mapped to an active engineer named `user_name`.
fn named(guid: &str, user_name: &str) -> Candidate {
    Candidate {
        mapped: Ok(DesiredUser {
            user_name: user_name.into(),
            active: true,
            image: image(user_name, "Engineer", true),
            link_image: None,
        }),
        ..candidate(guid, "Engineer", true)
    }
}

fn provisioned(guid: &str, title: &str, active: bool) -> Record {
    Record {
        guid: guid.into(),
        dn: format!("uid={guid},ou=people,dc=example,dc=com"),
        user_name: Some(guid.into()),
        target_id: Some(format!("id-{guid}").into()),
        source_fingerprint: Some("old".into()),
        applied_image: Some(image(guid, title, active)),
        target_version: None,
        status: if active {
            RecordStatus::Provisioned
        } else {
            RecordStatus::Disabled
        },
        last_error: None,
        attempts: 0,
        retry_after_ms: None,
        failed_fingerprint: None,
    }
}

/// The five situations a user can be in, planned under the given options.
fn scenarios(options: &ProvisioningOptions) -> String {
    let records: HashMap<EntryGuid, Record> = [
        provisioned("mover", "Engineer", true),
        provisioned("leaver", "Engineer", true),
        provisioned("disabler", "Engineer", true),
        provisioned("same", "Engineer", true),
    ]
    .into_iter()
    .map(|r| (r.guid.clone(), r))
    .collect();
    let candidates = vec![
        candidate("joiner", "Engineer", true),
        candidate("disabled-joiner", "Engineer", false),
        candidate("mover", "Manager", true),
        candidate("disabler", "Engineer", false),
        candidate("same", "Engineer", true),
    ];
    let removed = vec![records["leaver"].clone()];
    let plan = plan_users(candidates, removed, &records, options, 0);
    plan.operations
        .iter()
        .map(|o| format!("{}={}", o.guid, o.operation.verb()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_provisioning_option_combination() {
    let mut table = String::new();
    for bits in 0..32u32 {
        let options = ProvisioningOptions {
            user_create: bits & 1 != 0,
            user_update: bits & 2 != 0,
            user_disable_delete: bits & 4 != 0,
            provision_disabled_users: bits & 8 != 0,
            remove_user_action: if bits & 16 != 0 {
                RemoveUserAction::Delete
            } else {
                RemoveUserAction::Disable
            },
        };
        writeln!(
            table,
            "c{} u{} dd{} pdu{} {:<7} | {}",
            u8::from(options.user_create),
            u8::from(options.user_update),
            u8::from(options.user_disable_delete),
            u8::from(options.provision_disabled_users),
            options.remove_user_action.to_string(),
            scenarios(&options)
        )
        .unwrap();
    }
    let expected = include_str!("option_combinations.txt");
    assert_eq!(table, expected, "\n{table}");
}

#[test]
fn reasons_say_why() {
    let records: HashMap<EntryGuid, Record> = [provisioned("mover", "Engineer", true)]
        .into_iter()
        .map(|r| (r.guid.clone(), r))
        .collect();
    let plan = plan_users(
        vec![
            candidate("mover", "Manager", true),
            candidate("joiner", "Engineer", true),
        ],
        vec![],
        &records,
        &ProvisioningOptions::default(),
        3,
    );
    assert_eq!(
        plan.to_string(),
        "update mover: changed: title\ncreate joiner: new in the source location\ntotal: create 1, update 1, unchanged 3\n"
    );
}

#[test]
fn a_failed_mapping_fails_only_that_record() {
    let mut bad = candidate("bad", "x", true);
    bad.mapped = Err("required field userName has no value (mapped from uid)".into());
    let plan = plan_users(
        vec![bad, candidate("good", "x", true)],
        vec![],
        &HashMap::new(),
        &ProvisioningOptions::default(),
        0,
    );
    assert_eq!(plan.operations[0].operation, Operation::Fail);
    assert!(plan.operations[0].reason.contains("userName"));
    assert!(matches!(
        plan.operations[1].operation,
        Operation::Create { .. }
    ));
}

#[test]
fn a_returning_leaver_is_re_enabled_and_a_settled_disable_is_not_repeated() {
    let mut disabled = provisioned("back", "Engineer", false);
    disabled.source_fingerprint = None;
    let records: HashMap<EntryGuid, Record> = [(disabled.guid.clone(), disabled.clone())]
        .into_iter()
        .collect();
    let plan = plan_users(
        vec![candidate("back", "Engineer", true)],
        vec![],
        &records,
        &ProvisioningOptions::default(),
        0,
    );
    assert_eq!(
        plan.to_string(),
        "update back: enabled in the directory again\ntotal: update 1, unchanged 0\n"
    );

    let plan = plan_users(
        vec![],
        vec![disabled],
        &records,
        &ProvisioningOptions::default(),
        0,
    );
    assert_eq!(plan.operations[0].operation, Operation::Refresh);
}

#[test]
fn a_leaver_that_never_reached_the_target_is_forgotten() {
    let mut failed = provisioned("ghost", "x", true);
    failed.target_id = None;
    failed.status = RecordStatus::Failed;
    let plan = plan_users(
        vec![],
        vec![failed],
        &HashMap::new(),
        &ProvisioningOptions::default(),
        0,
    );
    assert_eq!(plan.operations[0].operation, Operation::Forget);
}

#[test]
fn a_user_name_another_entry_has_fails_the_second_entry_alone() {
    // "ann" is provisioned; "bob" renames himself to "cat" while a newcomer takes "bob".
    let records = vec![provisioned("ann", "Engineer", true), {
        let mut bob = provisioned("bob", "Engineer", true);
        bob.guid = "g-bob".into();
        bob
    }];
    let by_guid: HashMap<EntryGuid, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    let mut plan = plan_users(
        vec![
            named("ann2", "ANN"),
            named("g-bob", "cat"),
            named("newbob", "bob"),
            named("twin1", "dee"),
            named("twin2", "Dee"),
        ],
        Vec::new(),
        &by_guid,
        &ProvisioningOptions::default(),
        0,
    );
    super::refuse_shared_user_names(&mut plan, &records);
    let lines: Vec<String> = plan.operations.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        lines,
        [
            "fail ANN: userName ANN is also the userName of uid=ann,ou=people,dc=example,dc=com: a target user belongs to one entry of a channel, so nothing is written for this one (two entries map to one user: fix the directory)",
            "update cat: changed: userName",
            "create bob: new in the source location",
            "create dee: new in the source location",
            "fail Dee: userName Dee is also the userName of uid=twin1,ou=people,dc=example,dc=com: a target user belongs to one entry of a channel, so nothing is written for this one (two entries map to one user: fix the directory)",
        ]
    );
}

#[test]
fn a_rename_to_a_user_name_another_entry_keeps_fails_alone_and_a_swap_goes_ahead() {
    // bob renames himself to "ANN", which ann keeps; cat and dee swap their names.
    let records: Vec<Record> = ["ann", "bob", "cat", "dee"]
        .iter()
        .map(|uid| provisioned(uid, "Engineer", true))
        .collect();
    let by_guid: HashMap<EntryGuid, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    let mut plan = plan_users(
        vec![
            named("bob", "ANN"),
            named("cat", "dee"),
            named("dee", "cat"),
        ],
        Vec::new(),
        &by_guid,
        &ProvisioningOptions::default(),
        0,
    );
    super::refuse_shared_user_names(&mut plan, &records);
    let lines: Vec<String> = plan.operations.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        lines,
        [
            "fail ANN: userName ANN is also the userName of uid=ann,ou=people,dc=example,dc=com: a target user belongs to one entry of a channel, so this user is not renamed (two entries map to one user: fix the directory)",
            "update dee: changed: userName",
            "update cat: changed: userName",
        ]
    );
}

/// `plan` of a full read: a create left to the plan (its operation never settled) and a
/// rename to a userName a user planned as the read went took fail alone, naming that user's
/// entry; an update that keeps its user's name, and a create of a free name, go ahead.
#[test]
fn names_taken_by_users_planned_as_read_fail_the_creates_and_renames_that_want_them() {
    let records: Vec<Record> = ["bob", "cat"]
        .iter()
        .map(|uid| provisioned(uid, "Engineer", true))
        .collect();
    let by_guid: HashMap<EntryGuid, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    let mut plan = plan_users(
        vec![
            named("bob", "Sam"),
            candidate("cat", "Manager", true),
            named("unsettled", "SAM"),
            named("free", "free"),
        ],
        Vec::new(),
        &by_guid,
        &ProvisioningOptions::default(),
        0,
    );
    let streamed = |name: &str| {
        ["sam", "cat"]
            .contains(&name)
            .then(|| format!("uid={name}-as-read,ou=people"))
    };
    super::refuse_names_taken_as_read(&mut plan, &records, streamed);
    let lines: Vec<String> = plan.operations.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        lines,
        [
            "fail Sam: userName Sam is also the userName of uid=sam-as-read,ou=people: a target user belongs to one entry of a channel, so this user is not renamed (two entries map to one user: fix the directory)",
            "update cat: changed: title",
            "fail SAM: userName SAM is also the userName of uid=sam-as-read,ou=people: a target user belongs to one entry of a channel, so nothing is written for this one (two entries map to one user: fix the directory)",
            "create free: new in the source location",
        ]
    );
}

#[test]
fn the_totals_line_counts_in_cycle_order_whatever_the_order_of_the_operations() {
    let mut bad = candidate("bad", "x", true);
    bad.mapped = Err("required field userName has no value (mapped from uid)".into());
    let mut plan = plan_users(
        vec![bad, candidate("good", "x", true)],
        vec![],
        &HashMap::new(),
        &ProvisioningOptions::default(),
        4,
    );
    plan.held = vec![plan.operations[1].clone()];
    plan.waiting_retry = 2;
    assert_eq!(
        plan.totals(),
        "total: create 1, fail 1, held 1, waiting to be retried 2, unchanged 4"
    );
}
