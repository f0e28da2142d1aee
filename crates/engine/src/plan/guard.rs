//! The mass-change guard: when a cycle would disable or delete too many of a channel's users,
//! those operations are held for an operator, and the rest of the plan goes ahead. Pure.

use std::collections::HashSet;

use scimbridge_model::{GuardSettings, Operation, Plan};

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
        }
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
