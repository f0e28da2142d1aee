//! The mass-change guard: when a cycle would disable or delete too many of a channel's users,
//! those operations are held for an operator, and the rest of the plan goes ahead. Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use scimbridge_model::{GuardSettings, Operation, Plan, Record};
use serde_json::Value;

/// Moves the plan's disables and deletes into `plan.held` when there are more than the guard
/// allows; operations an operator approved (by GUID) are never held and do not count.
/// `provisioned` is the number of the channel's users in the target.
pub fn hold_mass_deprovisioning(
    plan: &mut Plan,
    provisioned: usize,
    settings: &GuardSettings,
    approved: &HashSet<String>,
) {
    if !settings.enabled {
        return;
    }
    let deprovisions =
        |op: &Operation| matches!(op, Operation::Disable { .. } | Operation::Delete { .. });
    let count = plan
        .operations
        .iter()
        .filter(|o| deprovisions(&o.operation) && !approved.contains(&o.guid))
        .count() as u64;
    let provisioned = (provisioned as u64).max(1);
    let percent = count * 100 / provisioned;
    let why = if count > settings.max_deprovisions {
        format!(
            "{count} users would be deprovisioned at once, more than guard.max_deprovisions {}",
            settings.max_deprovisions
        )
    } else if count >= settings.percent_from && percent > settings.max_deprovision_percent {
        format!(
            "{count} of {provisioned} users ({percent}%) would be deprovisioned at once, more than \
             guard.max_deprovision_percent {}%",
            settings.max_deprovision_percent
        )
    } else {
        return;
    };
    let (held, kept): (Vec<_>, Vec<_>) = plan
        .operations
        .drain(..)
        .partition(|o| deprovisions(&o.operation) && !approved.contains(&o.guid));
    plan.operations = kept;
    plan.held = held
        .into_iter()
        .map(|mut op| {
            op.reason = format!(
                "{}; held by the mass-change guard: {why} (scimbridge approve or discard)",
                op.reason
            );
            op
        })
        .collect();
}

/// Moves into `plan.held` the updates that clear an attribute when more users than
/// `max_blanked` would lose that same attribute in this cycle. `records` gives the image each
/// user last received; approved operations pass.
pub fn hold_mass_blanking(
    plan: &mut Plan,
    records: &HashMap<String, Record>,
    settings: &GuardSettings,
    approved: &HashSet<String>,
) {
    if !settings.enabled {
        return;
    }
    let cleared = |guid: &str, image: &Value| -> Vec<String> {
        let before = records.get(guid).and_then(|r| r.applied_image.as_ref());
        before.map_or_else(Vec::new, |before| cleared_attributes(before, image))
    };
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    for op in &plan.operations {
        if let Operation::Update { image, .. } = &op.operation
            && !approved.contains(&op.guid)
        {
            for attribute in cleared(&op.guid, image) {
                *count.entry(attribute).or_default() += 1;
            }
        }
    }
    let over: Vec<(String, u64)> = count
        .into_iter()
        .filter(|(_, n)| *n > settings.max_blanked)
        .collect();
    if over.is_empty() {
        return;
    }
    let names: Vec<&str> = over.iter().map(|(a, _)| a.as_str()).collect();
    let why = over
        .iter()
        .map(|(attribute, n)| format!("{attribute} would be cleared on {n} users at once"))
        .collect::<Vec<_>>()
        .join(", ");
    let (held, kept): (Vec<_>, Vec<_>) = plan.operations.drain(..).partition(|op| {
        matches!(&op.operation, Operation::Update { image, .. }
            if !approved.contains(&op.guid)
                && cleared(&op.guid, image).iter().any(|a| names.contains(&a.as_str())))
    });
    plan.operations = kept;
    plan.held.extend(held.into_iter().map(|mut op| {
        op.reason = format!(
            "{}; held by the mass-change guard: {why}, more than guard.max_blanked {} \
             (scimbridge approve or discard)",
            op.reason, settings.max_blanked
        );
        op
    }));
}

/// The attributes (`title`, `name.givenName`, `emails`, `urn:…:User.manager`) that have a value
/// in `before` and none in `after`.
fn cleared_attributes(before: &Value, after: &Value) -> Vec<String> {
    let mut cleared = Vec::new();
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return cleared;
    };
    for (key, value) in before {
        if key == "schemas" || key == "active" {
            continue;
        }
        match (value, after.get(key)) {
            (Value::Object(inner), Some(Value::Object(now))) => {
                for sub in inner.keys() {
                    if !now.contains_key(sub) {
                        cleared.push(format!("{key}.{sub}"));
                    }
                }
            }
            (_, None) => cleared.push(key.clone()),
            _ => {}
        }
    }
    cleared.sort();
    cleared
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use scimbridge_model::PlannedOperation;

    fn op(guid: &str, operation: Operation) -> PlannedOperation {
        PlannedOperation {
            guid: guid.into(),
            dn: format!("uid={guid}"),
            user_name: Some(guid.into()),
            fingerprint: None,
            operation,
            reason: "left the source location".into(),
            link_image: None,
            resumed_cycle: None,
        }
    }

    fn plan(disables: usize) -> Plan {
        let mut operations: Vec<PlannedOperation> = (0..disables)
            .map(|i| {
                op(
                    &format!("u{i}"),
                    Operation::Disable {
                        target_id: format!("t{i}"),
                        image: serde_json::json!({}),
                    },
                )
            })
            .collect();
        operations.push(op(
            "new",
            Operation::Create {
                image: serde_json::json!({}),
            },
        ));
        Plan {
            operations,
            ..Plan::default()
        }
    }

    fn settings(max: u64, percent: u64) -> GuardSettings {
        GuardSettings {
            enabled: true,
            max_deprovisions: max,
            max_deprovision_percent: percent,
            percent_from: 10,
            max_blanked: 2,
        }
    }

    #[test]
    fn updates_clearing_one_attribute_on_many_users_are_held() {
        let record = |guid: &str| Record {
            guid: guid.into(),
            dn: format!("uid={guid}"),
            user_name: Some(guid.into()),
            target_id: Some(format!("t-{guid}")),
            source_fingerprint: Some("f".into()),
            applied_image: Some(serde_json::json!({
                "userName": guid, "title": "Engineer", "name": {"givenName": "A", "familyName": "B"}
            })),
            target_version: None,
            status: scimbridge_model::RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            retry_after_ms: None,
            failed_fingerprint: None,
        };
        let update = |guid: &str, image: Value| {
            op(
                guid,
                Operation::Update {
                    target_id: format!("t-{guid}"),
                    image,
                },
            )
        };
        let records: HashMap<String, Record> = ["a", "b", "c", "d"]
            .iter()
            .map(|g| (g.to_string(), record(g)))
            .collect();
        let no_title = |g: &str| serde_json::json!({"userName": g, "name": {"givenName": "A", "familyName": "B"}});
        let mut plan = Plan {
            operations: vec![
                update("a", no_title("a")),
                update("b", no_title("b")),
                update("c", no_title("c")),
                // A rename keeps every attribute: not held.
                update(
                    "d",
                    serde_json::json!({"userName": "d", "title": "Lead", "name": {"givenName": "A", "familyName": "B"}}),
                ),
            ],
            ..Plan::default()
        };
        hold_mass_blanking(&mut plan, &records, &settings(500, 50), &HashSet::new());
        assert_eq!(plan.held.len(), 3);
        assert_eq!(plan.operations.len(), 1);
        assert!(
            plan.held[0].reason.contains(
                "title would be cleared on 3 users at once, more than guard.max_blanked 2"
            ),
            "{}",
            plan.held[0].reason
        );

        // Two are within the limit; a sub-attribute counts by its path.
        let mut plan = Plan {
            operations: vec![
                update(
                    "a",
                    serde_json::json!({"userName": "a", "title": "Engineer", "name": {"familyName": "B"}}),
                ),
                update(
                    "b",
                    serde_json::json!({"userName": "b", "title": "Engineer", "name": {"familyName": "B"}}),
                ),
            ],
            ..Plan::default()
        };
        hold_mass_blanking(&mut plan, &records, &settings(500, 50), &HashSet::new());
        assert!(plan.held.is_empty());
        assert_eq!(
            cleared_attributes(
                &records["a"].applied_image.clone().unwrap(),
                &serde_json::json!({"userName": "a", "name": {"familyName": "B"}})
            ),
            ["name.givenName", "title"]
        );
    }

    #[test]
    fn within_the_limits_nothing_is_held() {
        let mut p = plan(5);
        hold_mass_deprovisioning(&mut p, 100, &settings(5, 50), &HashSet::new());
        assert!(p.held.is_empty());
        assert_eq!(p.operations.len(), 6);
    }

    #[test]
    fn over_the_count_every_deprovision_is_held_and_the_rest_goes_ahead() {
        let mut p = plan(6);
        hold_mass_deprovisioning(&mut p, 100, &settings(5, 50), &HashSet::new());
        assert_eq!(p.held.len(), 6);
        assert_eq!(p.operations.len(), 1);
        assert_eq!(p.operations[0].guid, "new");
        assert!(
            p.held[0].reason.contains(
                "6 users would be deprovisioned at once, more than guard.max_deprovisions 5"
            ),
            "{}",
            p.held[0].reason
        );
    }

    #[test]
    fn over_the_share_from_a_minimum_count() {
        let mut p = plan(12);
        hold_mass_deprovisioning(&mut p, 20, &settings(500, 50), &HashSet::new());
        assert_eq!(p.held.len(), 12);
        assert!(
            p.held[0].reason.contains("12 of 20 users (60%)"),
            "{}",
            p.held[0].reason
        );
        // Few users: the share alone holds nothing.
        let mut p = plan(3);
        hold_mass_deprovisioning(&mut p, 4, &settings(500, 50), &HashSet::new());
        assert!(p.held.is_empty());
    }

    #[test]
    fn approved_operations_pass_and_do_not_count() {
        let mut p = plan(6);
        let approved: HashSet<String> = (0..6).map(|i| format!("u{i}")).collect();
        hold_mass_deprovisioning(&mut p, 100, &settings(5, 50), &approved);
        assert!(p.held.is_empty());
        let disabled = GuardSettings {
            enabled: false,
            ..GuardSettings::default()
        };
        let mut p = plan(1000);
        hold_mass_deprovisioning(&mut p, 1000, &disabled, &HashSet::new());
        assert!(p.held.is_empty());
    }
}
