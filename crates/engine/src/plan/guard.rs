//! The mass-change guard: when a cycle would deprovision users, clear an attribute on many of
//! them, delete groups or strip a group of its members at a scale that looks like a mistake,
//! those operations are held for an operator, and the rest of the plan goes ahead. Every rule has
//! an absolute count and a share of what the channel has in the target. Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use scimbridge_model::{
    EntryGuid, GroupOperation, GroupRecord, GuardSettings, Operation, OperationKind, Plan,
    PlannedGroupOperation, Record, RecordStatus, SourceLocation,
};
use serde_json::Value;

use super::GuidSet;
use crate::source::SourceScan;

/// A read that would deprovision every provisioned user, or delete every provisioned group,
/// stops the cycle before anything is planned (a full read may have created its new users and
/// updated its changed ones, nothing the guard weighs): that is a directory or a source location gone
/// wrong, not the company emptied. `users_found` is how many users in scope a full read found
/// (a full read compared page by page keeps only the changed ones in `scan`); `group_records`
/// are every group record (members not needed). `Err` says why, to follow the data store's name.
pub fn refuse_to_empty(
    scan: &SourceScan,
    users_found: usize,
    provisioned: Provisioned,
    group_records: &[GroupRecord],
    location: &SourceLocation,
) -> Result<(), String> {
    let Provisioned {
        users: provisioned,
        active,
        removed,
    } = provisioned;
    if scan.complete && users_found == 0 && provisioned > 0 {
        return Err(format!(
            "returned no users below {} while {provisioned} are provisioned; refusing to \
             deprovision everyone (check the data store and the source location)",
            location.base_dn
        ));
    }
    // Leavers disabled long ago are never removed again: the active users are the measure.
    if !scan.complete && active > 1 && removed >= active {
        return Err(format!(
            "says every one of the {active} provisioned users is gone; refusing to \
             deprovision everyone (check the data store and the source location)"
        ));
    }
    let provisioned_groups = group_records
        .iter()
        .filter(|r| r.target_id.is_some())
        .count();
    // Read incrementally, the groups are gone when every provisioned one is listed as removed.
    let no_groups_left = match scan.groups_incremental {
        true => {
            let removed: HashSet<&EntryGuid> = scan.removed_group_guids.iter().collect();
            group_records
                .iter()
                .filter(|r| r.target_id.is_some())
                .all(|r| removed.contains(&r.guid))
        }
        false => scan.groups.is_empty(),
    };
    if let Some(group_base_dn) = &location.group_base_dn
        && no_groups_left
        && provisioned_groups > 0
    {
        return Err(format!(
            "returned no groups below {group_base_dn} while {provisioned_groups} are provisioned; \
             refusing to delete every group (check the data store and the source location)"
        ));
    }
    Ok(())
}

/// The channel's users in the target, those of them not disabled, and how many of those a read
/// says are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provisioned {
    pub users: usize,
    pub active: usize,
    pub removed: usize,
}

impl Provisioned {
    /// Counted from `records`, which hold every provisioned record the read removes.
    pub fn count(
        users: usize,
        active: usize,
        records: &[Record],
        scan: &SourceScan,
    ) -> Provisioned {
        let removed: HashSet<&str> = scan.removed_guids.iter().map(EntryGuid::as_str).collect();
        Provisioned {
            users,
            active,
            removed: records
                .iter()
                .filter(|r| r.target_id.is_some() && r.status != RecordStatus::Disabled)
                .filter(|r| removed.contains(r.guid.as_str()))
                .count(),
        }
    }
}

/// Approved held operations: (GUID, kind of operation).
pub type Approvals = HashSet<(EntryGuid, OperationKind)>;

/// What the guard weighs a plan against.
pub struct GuardInput<'a> {
    pub settings: &'a GuardSettings,
    /// The held operations an operator approved, as (GUID, verb): they pass and do not count.
    /// An approval covers that kind of operation only: approving a user's clearing update does
    /// not let its disable through, nor approving a group's member removals its delete.
    pub approved: &'a Approvals,
    /// The number of the channel's users in the target.
    pub provisioned: usize,
    /// GUIDs of the users in the source location now. Only their removals from groups count
    /// as member removals: a user who left is removed because it was deprovisioned, which the
    /// deprovisioning rule weighs.
    pub in_scope: &'a GuidSet,
    /// Why the source may have been read incompletely (an LDIF file that looks cut): then every
    /// deprovision, clearing update, group delete and member removal is held, however few.
    pub suspect_read: Option<&'a str>,
}

/// A count that is too high: over the absolute limit, or over the share of `population` once at
/// least `settings.percent_from` are affected. Says why, naming the setting.
struct Limit<'a> {
    max: u64,
    max_setting: &'a str,
    percent: u64,
    percent_setting: &'a str,
}

impl Limit<'_> {
    /// The reason reads "{count} {what}" or "{count} of {population} {what}".
    fn exceeded(
        &self,
        settings: &GuardSettings,
        count: u64,
        population: u64,
        what: &str,
    ) -> Option<String> {
        let share = count * 100 / population.max(1);
        if count > self.max {
            Some(format!(
                "{count} {what}, more than guard.{} {}",
                self.max_setting, self.max
            ))
        } else if count >= settings.percent_from && share > self.percent {
            Some(format!(
                "{count} of {population} {what} ({share}%), more than guard.{} {}%",
                self.percent_setting, self.percent
            ))
        } else {
            None
        }
    }
}

impl GuardInput<'_> {
    fn approved(&self, guid: &str, kind: Option<OperationKind>) -> bool {
        kind.is_some_and(|kind| self.approved.contains(&(EntryGuid::from(guid), kind)))
    }

    /// Why every destructive operation is held, however few: the read looked incomplete.
    /// (Even with the guard switched off: that is no mass rule.)
    fn suspect(&self) -> Option<String> {
        self.suspect_read.map(str::to_owned)
    }
}

fn held_reason(reason: &str, why: &str) -> String {
    format!("{reason}; held by the mass-change guard: {why} (scimbridge approve or discard)")
}

/// Holds the plan's user operations that the guard does not let through: deprovisions, then
/// updates that clear attributes. `records` gives the image each user last received.
pub fn guard_users(plan: &mut Plan, records: &HashMap<EntryGuid, Record>, input: &GuardInput) {
    if !input.settings.enabled && input.suspect_read.is_none() {
        return;
    }
    hold_mass_deprovisioning(plan, input);
    hold_mass_blanking(plan, records, input);
}

/// Moves the plan's disables and deletes into `plan.held` when there are more than the guard
/// allows; operations an operator approved (by GUID) are never held and do not count.
fn hold_mass_deprovisioning(plan: &mut Plan, input: &GuardInput) {
    let deprovisions = |op: &scimbridge_model::PlannedOperation| {
        matches!(
            op.operation,
            Operation::Disable { .. } | Operation::Delete { .. }
        ) && !input.approved(&op.guid, op.operation.kind())
    };
    let count = plan.operations.iter().filter(|o| deprovisions(o)).count() as u64;
    if count == 0 {
        return;
    }
    let settings = input.settings;
    let limit = Limit {
        max: settings.max_deprovisions,
        max_setting: "max_deprovisions",
        percent: settings.max_deprovision_percent,
        percent_setting: "max_deprovision_percent",
    };
    let why = input.suspect().or_else(|| {
        settings
            .enabled
            .then(|| {
                limit.exceeded(
                    settings,
                    count,
                    input.provisioned as u64,
                    "users would be deprovisioned at once",
                )
            })
            .flatten()
    });
    let Some(why) = why else {
        return;
    };
    let (held, kept): (Vec<_>, Vec<_>) = plan.operations.drain(..).partition(deprovisions);
    plan.operations = kept;
    plan.held.extend(held.into_iter().map(|mut op| {
        op.reason = held_reason(&op.reason, &why);
        op
    }));
}

/// Moves into `plan.held` the updates that clear an attribute when more users than the guard
/// allows would lose that same attribute in this cycle; approved operations pass.
fn hold_mass_blanking(plan: &mut Plan, records: &HashMap<EntryGuid, Record>, input: &GuardInput) {
    let cleared = |guid: &str, image: &Value| -> Vec<String> {
        let before = records.get(guid).and_then(|r| r.applied_image.as_ref());
        before.map_or_else(Vec::new, |before| cleared_attributes(before, image))
    };
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    for op in &plan.operations {
        if let Operation::Update { image, .. } = &op.operation
            && !input.approved(&op.guid, op.operation.kind())
        {
            for attribute in cleared(&op.guid, image) {
                *count.entry(attribute).or_default() += 1;
            }
        }
    }
    let settings = input.settings;
    let limit = Limit {
        max: settings.max_blanked,
        max_setting: "max_blanked",
        percent: settings.max_blanked_percent,
        percent_setting: "max_blanked_percent",
    };
    let over: Vec<(String, String)> = count
        .into_iter()
        .filter_map(|(attribute, n)| {
            let why = match input.suspect() {
                Some(suspect) => suspect,
                None if settings.enabled => limit.exceeded(
                    settings,
                    n,
                    input.provisioned as u64,
                    &format!("users would lose {attribute} at once"),
                )?,
                None => return None,
            };
            Some((attribute, why))
        })
        .collect();
    if over.is_empty() {
        return;
    }
    let names: Vec<&str> = over.iter().map(|(a, _)| a.as_str()).collect();
    let mut reasons: Vec<&str> = over.iter().map(|(_, why)| why.as_str()).collect();
    reasons.dedup();
    let why = reasons.join("; ");
    let (held, kept): (Vec<_>, Vec<_>) = plan.operations.drain(..).partition(|op| {
        matches!(&op.operation, Operation::Update { image, .. }
            if !input.approved(&op.guid, Some(OperationKind::Update))
                && cleared(&op.guid, image).iter().any(|a| names.contains(&a.as_str())))
    });
    plan.operations = kept;
    plan.held.extend(held.into_iter().map(|mut op| {
        op.reason = held_reason(&op.reason, &why);
        op
    }));
}

/// Splits the group operations into those that go ahead and those the guard holds: group
/// deletes when too many groups would go, and the member removals of a group that would lose too
/// many of its members (its additions and rename go ahead). `records` are the channel's group
/// records.
pub fn guard_groups(
    operations: Vec<PlannedGroupOperation>,
    records: &[GroupRecord],
    input: &GuardInput,
) -> (Vec<PlannedGroupOperation>, Vec<PlannedGroupOperation>) {
    if !input.settings.enabled && input.suspect_read.is_none() {
        return (operations, Vec::new());
    }
    let settings = input.settings;
    let approved = |op: &PlannedGroupOperation| input.approved(&op.guid, op.operation.kind());
    let deletes = operations
        .iter()
        .filter(|o| matches!(o.operation, GroupOperation::Delete { .. }) && !approved(o))
        .count() as u64;
    let in_target = records.iter().filter(|r| r.target_id.is_some()).count() as u64;
    let deletes_held = match input.suspect() {
        Some(suspect) if deletes > 0 => Some(suspect),
        Some(_) => None,
        None if !settings.enabled => None,
        None => Limit {
            max: settings.max_group_deletes,
            max_setting: "max_group_deletes",
            percent: settings.max_group_delete_percent,
            percent_setting: "max_group_delete_percent",
        }
        .exceeded(
            settings,
            deletes,
            in_target,
            "groups would be deleted at once",
        ),
    };
    let member_limit = Limit {
        max: settings.max_member_removals,
        max_setting: "max_member_removals",
        percent: settings.max_member_removal_percent,
        percent_setting: "max_member_removal_percent",
    };
    let members_of: HashMap<&str, u64> = records
        .iter()
        .map(|r| (r.guid.as_str(), r.members.len() as u64))
        .collect();
    let mut kept = Vec::with_capacity(operations.len());
    let mut held = Vec::new();
    for mut op in operations {
        if approved(&op) {
            kept.push(op);
            continue;
        }
        let removals_held = match &op.operation {
            GroupOperation::Delete { .. } => {
                if let Some(why) = &deletes_held {
                    op.reason = held_reason(&op.reason, why);
                    held.push(op);
                } else {
                    kept.push(op);
                }
                continue;
            }
            GroupOperation::Update { remove, .. } => {
                let count = remove
                    .iter()
                    .filter(|m| input.in_scope.contains(&m.guid))
                    .count() as u64;
                let members = members_of.get(op.guid.as_str()).copied().unwrap_or(count);
                match input.suspect() {
                    Some(suspect) if count > 0 => Some(suspect),
                    Some(_) => None,
                    None if !settings.enabled => None,
                    None => member_limit.exceeded(
                        settings,
                        count,
                        members,
                        &format!("members would be removed from {} at once", op.display_name),
                    ),
                }
            }
            _ => None,
        };
        let Some(why) = removals_held else {
            kept.push(op);
            continue;
        };
        let PlannedGroupOperation {
            guid,
            dn,
            display_name,
            operation,
            pending_members,
            reason: _,
            source_stamp: _,
        } = op;
        let GroupOperation::Update {
            target_id,
            rename,
            add,
            remove,
        } = operation
        else {
            continue;
        };
        // Members still in scope wait; those who left go with their deprovisioning.
        let (remove_held, remove): (Vec<_>, Vec<_>) = remove
            .into_iter()
            .partition(|m| input.in_scope.contains(&m.guid));
        held.push(PlannedGroupOperation {
            guid: guid.clone(),
            dn: dn.clone(),
            display_name: display_name.clone(),
            reason: held_reason(&format!("{} member(s) to remove", remove_held.len()), &why),
            operation: GroupOperation::Update {
                target_id: target_id.clone(),
                rename: None,
                add: Vec::new(),
                remove: remove_held,
            },
            pending_members: Vec::new(),
            source_stamp: None,
        });
        // What removes nobody still in scope goes ahead; the group is read whole again while
        // removals wait.
        if rename.is_some() || !add.is_empty() || !remove.is_empty() {
            let mut reasons = Vec::new();
            if let Some(name) = &rename {
                reasons.push(format!("renamed to {name}"));
            }
            if !add.is_empty() {
                reasons.push(format!("{} member(s) to add", add.len()));
            }
            if !remove.is_empty() {
                reasons.push(format!("{} member(s) who left to remove", remove.len()));
            }
            kept.push(PlannedGroupOperation {
                guid,
                dn,
                display_name,
                operation: GroupOperation::Update {
                    target_id,
                    rename,
                    add,
                    remove,
                },
                pending_members,
                reason: reasons.join(", "),
                source_stamp: None,
            });
        }
    }
    (kept, held)
}

/// Whether an update of `record`'s user to `image` leaves a value in every attribute its
/// applied image has: what [`guard_users`] never holds.
pub(crate) fn blanks_nothing(record: &Record, image: &Value) -> bool {
    record
        .applied_image
        .as_ref()
        .is_none_or(|before| cleared_attributes(before, image).is_empty())
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
                        target_id: format!("t{i}").into(),
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
            max_blanked_percent: 100,
            ..GuardSettings::default()
        }
    }

    fn input<'a>(
        settings: &'a GuardSettings,
        provisioned: usize,
        approved: &'a Approvals,
    ) -> GuardInput<'a> {
        static EVERYONE: std::sync::LazyLock<GuidSet> = std::sync::LazyLock::new(|| {
            (0..100).map(|i| EntryGuid::from(format!("u{i}"))).collect()
        });
        GuardInput {
            settings,
            approved,
            provisioned,
            in_scope: &EVERYONE,
            suspect_read: None,
        }
    }

    fn hold_mass_deprovisioning(
        plan: &mut Plan,
        provisioned: usize,
        settings: &GuardSettings,
        approved: &Approvals,
    ) {
        guard_users(
            plan,
            &HashMap::new(),
            &input(settings, provisioned, approved),
        );
    }

    #[test]
    fn updates_clearing_one_attribute_on_many_users_are_held() {
        let record = |guid: &str| Record {
            guid: guid.into(),
            dn: format!("uid={guid}"),
            user_name: Some(guid.into()),
            target_id: Some(format!("t-{guid}").into()),
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
                    target_id: format!("t-{guid}").into(),
                    image,
                },
            )
        };
        let records: HashMap<EntryGuid, Record> = ["a", "b", "c", "d"]
            .iter()
            .map(|g| (EntryGuid::from(*g), record(g)))
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
        let none = HashSet::new();
        guard_users(&mut plan, &records, &input(&settings(500, 50), 4, &none));
        assert_eq!(plan.held.len(), 3);
        assert_eq!(plan.operations.len(), 1);
        assert!(
            plan.held[0]
                .reason
                .contains("3 users would lose title at once, more than guard.max_blanked 2"),
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
        guard_users(&mut plan, &records, &input(&settings(500, 50), 4, &none));
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
            p.held[0]
                .reason
                .contains("12 of 20 users would be deprovisioned at once (60%)"),
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
        let approved: Approvals = (0..6)
            .map(|i| (format!("u{i}").into(), OperationKind::Disable))
            .collect();
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

    fn group_record(guid: &str, members: usize) -> GroupRecord {
        GroupRecord {
            guid: guid.into(),
            dn: format!("cn={guid}"),
            display_name: guid.into(),
            target_id: Some(format!("t-{guid}").into()),
            members: (0..members)
                .map(|i| scimbridge_model::GroupMember {
                    guid: format!("u{i}").into(),
                    target_id: format!("t{i}").into(),
                })
                .collect(),
            status: scimbridge_model::RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            source_stamp: None,
        }
    }

    fn group_op(guid: &str, operation: GroupOperation) -> PlannedGroupOperation {
        PlannedGroupOperation {
            guid: guid.into(),
            dn: format!("cn={guid}"),
            display_name: guid.into(),
            operation,
            pending_members: Vec::new(),
            reason: "left the source location".into(),
            source_stamp: None,
        }
    }

    fn delete(guid: &str) -> PlannedGroupOperation {
        group_op(
            guid,
            GroupOperation::Delete {
                target_id: format!("t-{guid}").into(),
            },
        )
    }

    #[test]
    fn deleting_many_groups_is_held() {
        let records: Vec<GroupRecord> =
            (0..20).map(|i| group_record(&format!("g{i}"), 3)).collect();
        let none = HashSet::new();
        let defaults = GuardSettings::default();
        // 2 of 20: too few for the share to count.
        let (kept, held) = guard_groups(
            vec![delete("g0"), delete("g1")],
            &records,
            &input(&defaults, 100, &none),
        );
        assert_eq!((kept.len(), held.len()), (2, 0));
        // 6 of 20 (30%): held, with the rule that held them.
        let (kept, held) = guard_groups(
            (0..6).map(|i| delete(&format!("g{i}"))).collect(),
            &records,
            &input(&defaults, 100, &none),
        );
        assert_eq!((kept.len(), held.len()), (0, 6));
        assert!(
            held[0].reason.contains(
                "6 of 20 groups would be deleted at once (30%), more than guard.max_group_delete_percent 10%"
            ),
            "{}",
            held[0].reason
        );
        // An approved delete passes and does not count.
        let approved: Approvals = (0..6)
            .map(|i| (format!("g{i}").into(), OperationKind::DeleteGroup))
            .collect();
        let (kept, held) = guard_groups(
            (0..6).map(|i| delete(&format!("g{i}"))).collect(),
            &records,
            &input(&defaults, 100, &approved),
        );
        assert_eq!((kept.len(), held.len()), (6, 0));
    }

    #[test]
    fn a_group_losing_many_members_has_its_removals_held_and_its_additions_go_ahead() {
        let records = vec![group_record("staff", 20)];
        let member = |i: usize| scimbridge_model::GroupMember {
            guid: format!("u{i}").into(),
            target_id: format!("t{i}").into(),
        };
        let update = |remove: usize| {
            group_op(
                "staff",
                GroupOperation::Update {
                    target_id: "t-staff".into(),
                    rename: Some("crew".into()),
                    add: vec![member(99)],
                    remove: (0..remove).map(member).collect(),
                },
            )
        };
        let none = HashSet::new();
        let defaults = GuardSettings::default();
        let (kept, held) = guard_groups(vec![update(5)], &records, &input(&defaults, 20, &none));
        assert_eq!((kept.len(), held.len()), (1, 0), "5 of 20 is within 25%");
        let (kept, held) = guard_groups(vec![update(12)], &records, &input(&defaults, 20, &none));
        assert_eq!((kept.len(), held.len()), (1, 1));
        let GroupOperation::Update {
            rename,
            add,
            remove,
            ..
        } = &kept[0].operation
        else {
            panic!()
        };
        assert_eq!(
            (rename.as_deref(), add.len(), remove.len()),
            (Some("crew"), 1, 0)
        );
        let GroupOperation::Update {
            rename,
            add,
            remove,
            ..
        } = &held[0].operation
        else {
            panic!()
        };
        assert_eq!((rename.as_deref(), add.len(), remove.len()), (None, 0, 12));
        assert!(
            held[0].reason.contains(
                "12 of 20 members would be removed from staff at once (60%), more than guard.max_member_removal_percent 25%"
            ),
            "{}",
            held[0].reason
        );
    }

    #[test]
    fn a_source_that_looks_cut_holds_every_destructive_change_however_few() {
        let defaults = GuardSettings::default();
        let none = HashSet::new();
        let suspect = GuardInput {
            suspect_read: Some("d.ldif looks cut short"),
            ..input(&defaults, 100, &none)
        };
        let mut p = plan(1);
        guard_users(&mut p, &HashMap::new(), &suspect);
        assert_eq!((p.operations.len(), p.held.len()), (1, 1));
        assert!(
            p.held[0].reason.contains("d.ldif looks cut short"),
            "{}",
            p.held[0].reason
        );
        let records = vec![group_record("g0", 20), group_record("g1", 20)];
        let one_removal = group_op(
            "g1",
            GroupOperation::Update {
                target_id: "t-g1".into(),
                rename: None,
                add: Vec::new(),
                remove: vec![scimbridge_model::GroupMember {
                    guid: "u0".into(),
                    target_id: "t0".into(),
                }],
            },
        );
        let (kept, held) = guard_groups(vec![delete("g0"), one_removal], &records, &suspect);
        assert_eq!((kept.len(), held.len()), (0, 2));
    }

    #[test]
    fn an_approval_covers_one_kind_of_operation_and_cut_files_are_held_even_unguarded() {
        let records: Vec<GroupRecord> =
            (0..20).map(|i| group_record(&format!("g{i}"), 3)).collect();
        // The removals of g0 were approved: that approves no delete of g0.
        let approved: Approvals = [("g0".into(), OperationKind::UpdateGroup)].into();
        let defaults = GuardSettings::default();
        let (kept, held) = guard_groups(
            (0..6).map(|i| delete(&format!("g{i}"))).collect(),
            &records,
            &input(&defaults, 100, &approved),
        );
        assert_eq!((kept.len(), held.len()), (0, 6));

        // The guard switched off still holds what a file cut short would do.
        let off = GuardSettings {
            enabled: false,
            ..GuardSettings::default()
        };
        let none = Approvals::new();
        let suspect = GuardInput {
            suspect_read: Some("d.ldif looks cut short"),
            ..input(&off, 100, &none)
        };
        let mut p = plan(1);
        guard_users(&mut p, &HashMap::new(), &suspect);
        assert_eq!(p.held.len(), 1);
        let (_, held) = guard_groups(vec![delete("g0")], &records, &suspect);
        assert_eq!(held.len(), 1);
        // Without a suspect read, nothing is held when the guard is off.
        let mut p = plan(1000);
        guard_users(&mut p, &HashMap::new(), &input(&off, 1000, &none));
        assert!(p.held.is_empty());
    }
}
