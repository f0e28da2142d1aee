//! Stage 4, plan: decides what to do with each changed entry and each leaver, honouring the
//! provisioning options. Pure: the plan is the dry run.

pub mod groups;
pub mod guid_set;

pub use guid_set::GuidSet;
pub mod guard;

use std::collections::{HashMap, HashSet};

use scimbridge_model::{
    EntryGuid, Operation, Plan, PlannedOperation, ProvisioningOptions, Record, RecordStatus,
    RemoveUserAction,
};

use crate::map::{DesiredUser, changed_attributes, with_active};

/// A changed or new entry after mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub guid: EntryGuid,
    pub dn: String,
    pub fingerprint: String,
    /// The mapped user, or why the entry cannot be mapped.
    pub mapped: Result<DesiredUser, String>,
}

pub fn plan_users(
    candidates: Vec<Candidate>,
    removed: Vec<Record>,
    records: &HashMap<EntryGuid, Record>,
    options: &ProvisioningOptions,
    unchanged: u64,
) -> Plan {
    let mut plan = Plan {
        unchanged,
        ..Plan::default()
    };
    for candidate in candidates {
        let record = records.get(&candidate.guid);
        let planned = plan_present(candidate, record, options);
        if planned.operation == Operation::Refresh {
            plan.unchanged += 1;
        }
        plan.operations.push(planned);
    }
    for record in removed {
        plan.operations.push(plan_leaver(record, options));
    }
    plan
}

/// A target user belongs to one entry of a channel: a create whose `userName` another entry
/// already has in the target (after this plan's renames), or that an earlier create of this plan
/// takes, fails alone with a reason naming that entry, and nothing is written for it. `records`
/// are the channel's records. An entry that left and was disabled holds its name no longer: a
/// new entry with it (a rehire) takes its account over. (A target that matches users on
/// something else is caught when the look-up finds a user another entry owns: see
/// `apply::Owners`.)
pub fn refuse_shared_user_names(plan: &mut Plan, records: &[Record]) {
    let planned: HashMap<&str, &PlannedOperation> = plan
        .operations
        .iter()
        .filter(|o| !matches!(o.operation, Operation::Create { .. }))
        .map(|o| (o.guid.as_str(), o))
        .collect();
    // userName (lower-cased: SCIM compares it without case) → its entry's GUID and DN, and
    // whether its account may pass to another entry.
    let mut holders: HashMap<String, (EntryGuid, String, bool)> = HashMap::new();
    for record in records.iter().filter(|r| r.target_id.is_some()) {
        let op = planned.get(record.guid.as_str());
        let name = op
            .and_then(|o| o.user_name.as_deref())
            .or(record.user_name.as_deref());
        let dn = op.map_or(record.dn.as_str(), |o| o.dn.as_str());
        let Some(name) = name else {
            continue;
        };
        let held = (
            record.guid.clone(),
            dn.to_owned(),
            record.left_and_disabled(),
        );
        // Where two records have one name, the one still holding it wins.
        match holders.get(&name.to_lowercase()) {
            Some((_, _, false)) => {}
            _ => {
                holders.insert(name.to_lowercase(), held);
            }
        }
    }
    for op in &mut plan.operations {
        if !matches!(op.operation, Operation::Create { .. }) {
            continue;
        }
        let Some(name) = op.user_name.as_deref() else {
            continue;
        };
        match holders.get(&name.to_lowercase()) {
            Some((guid, _, _)) if *guid == op.guid => {}
            Some((_, dn, true)) => {
                op.reason = format!(
                    "{}; takes over the disabled account of {dn}, which left the source location",
                    op.reason
                );
                let taken = (op.guid.clone(), op.dn.clone(), false);
                holders.insert(name.to_lowercase(), taken);
            }
            Some((_, dn, false)) => refuse_user_name_of(op, dn),
            None => {
                let taken = (op.guid.clone(), op.dn.clone(), false);
                holders.insert(name.to_lowercase(), taken);
            }
        }
    }
    refuse_renames_to_names_held(plan, records);
}

/// A create whose userName is that of `holder` (the DN of another entry of the channel) fails
/// alone, naming it.
pub fn refuse_user_name_of(op: &mut PlannedOperation, holder: &str) {
    let name = op.user_name.as_deref().unwrap_or_default();
    op.reason = format!(
        "userName {name} is also the userName of {holder}: a target user belongs to one entry \
         of a channel, so nothing is written for this one (two entries map to one user: fix \
         the directory)"
    );
    op.operation = Operation::Fail;
    op.link_image = None;
}

/// An update that renames a user to a userName another entry's target user keeps (that entry
/// is not renamed away in this plan, nor left and disabled) fails alone, naming that entry: the
/// target would refuse it, or keep two users with one name. (A full read creates its new users
/// as it reads them, before the users it changes: the first user created keeps the name.)
fn refuse_renames_to_names_held(plan: &mut Plan, records: &[Record]) {
    // GUID → the userName (lower-cased) an update gives its user.
    let renamed_to: HashMap<&str, String> = plan
        .operations
        .iter()
        .filter(|o| matches!(o.operation, Operation::Update { .. }))
        .filter_map(|o| Some((o.guid.as_str(), o.user_name.as_deref()?.to_lowercase())))
        .collect();
    // The users renamed: their record keeps another name.
    let renamed: HashSet<EntryGuid> = records
        .iter()
        .filter(|r| {
            renamed_to.get(r.guid.as_str()).is_some_and(|new| {
                r.user_name.as_deref().map(str::to_lowercase).as_ref() != Some(new)
            })
        })
        .map(|r| r.guid.clone())
        .collect();
    if renamed.is_empty() {
        return;
    }
    // userName (lower-cased) → the entry (GUID, DN) that keeps it after this plan.
    let kept: HashMap<String, (EntryGuid, String)> = records
        .iter()
        .filter(|r| r.target_id.is_some() && !r.left_and_disabled() && !renamed.contains(&r.guid))
        .filter_map(|r| {
            let name = r.user_name.as_deref()?.to_lowercase();
            Some((name, (r.guid.clone(), r.dn.clone())))
        })
        .collect();
    for op in &mut plan.operations {
        if !renamed.contains(&op.guid) || !matches!(op.operation, Operation::Update { .. }) {
            continue;
        }
        let Some(name) = op.user_name.clone() else {
            continue;
        };
        if let Some((_, dn)) = kept.get(&name.to_lowercase()) {
            refuse_rename_to_name_of(op, dn);
        }
    }
}

/// An update renaming its user to the userName of `holder` (the DN of another entry of the
/// channel) fails alone, naming it.
fn refuse_rename_to_name_of(op: &mut PlannedOperation, holder: &str) {
    let name = op.user_name.as_deref().unwrap_or_default();
    op.reason = format!(
        "userName {name} is also the userName of {holder}: a target user belongs to one entry \
         of a channel, so this user is not renamed (two entries map to one user: fix the \
         directory)"
    );
    op.operation = Operation::Fail;
    op.link_image = None;
}

/// `plan` of a full read, whose new users were planned as it read them and have no record:
/// a create, or an update renaming its user (its record keeps another name), to a userName
/// one of them took fails alone, naming that user's entry, as the cycle's plan does once that
/// user is created. `taken_by` gives the DN of the entry that took a (lower-cased) name.
pub fn refuse_names_taken_as_read(
    plan: &mut Plan,
    records: &[Record],
    taken_by: impl Fn(&str) -> Option<String>,
) {
    let names: HashMap<&str, Option<String>> = records
        .iter()
        .map(|r| {
            (
                r.guid.as_str(),
                r.user_name.as_deref().map(str::to_lowercase),
            )
        })
        .collect();
    for op in &mut plan.operations {
        let Some(name) = op.user_name.as_deref().map(str::to_lowercase) else {
            continue;
        };
        let renamed = || {
            names
                .get(op.guid.as_str())
                .is_some_and(|kept| kept.as_ref() != Some(&name))
        };
        match &op.operation {
            Operation::Create { .. } => {
                if let Some(holder) = taken_by(&name) {
                    refuse_user_name_of(op, &holder);
                }
            }
            Operation::Update { .. } if renamed() => {
                if let Some(holder) = taken_by(&name) {
                    refuse_rename_to_name_of(op, &holder);
                }
            }
            _ => {}
        }
    }
}

/// Never deprovisions a target user that an entry in the source location still has (two records
/// sharing one user, left by a version that let them): the leaver's record is forgotten instead,
/// and a disable of an entry still in scope fails, naming the other entry.
pub fn protect_shared_targets(plan: &mut Plan, records: &[Record], in_scope: &GuidSet) {
    let mut holder_in_scope: HashMap<&str, &Record> = HashMap::new();
    for record in records.iter().filter(|r| in_scope.contains(&r.guid)) {
        if let Some(target_id) = &record.target_id {
            holder_in_scope.insert(target_id.as_str(), record);
        }
    }
    for op in &mut plan.operations {
        let (Operation::Disable { target_id, .. } | Operation::Delete { target_id }) =
            &op.operation
        else {
            continue;
        };
        let Some(other) = holder_in_scope.get(target_id.as_str()) else {
            continue;
        };
        if other.guid == op.guid {
            continue;
        }
        if op.fingerprint.is_none() {
            op.reason = format!(
                "left the source location, but its target user is also the user of {}, which is \
                 there: forgotten, not deprovisioned",
                other.dn
            );
            op.operation = Operation::Forget;
        } else {
            op.reason = format!(
                "{}, but its target user is also the user of {}, which stays: not deprovisioned \
                 (two entries map to one user: fix the directory)",
                op.reason, other.dn
            );
            op.operation = Operation::Fail;
        }
    }
}

fn plan_present(
    candidate: Candidate,
    record: Option<&Record>,
    options: &ProvisioningOptions,
) -> PlannedOperation {
    let Candidate {
        guid,
        dn,
        fingerprint,
        mapped,
    } = candidate;
    let planned =
        |user_name: Option<String>, operation: Operation, reason: String| PlannedOperation {
            guid: guid.clone(),
            dn: dn.clone(),
            user_name,
            fingerprint: Some(fingerprint.clone()),
            operation,
            reason,
            link_image: None,
            resumed_cycle: None,
        };
    let user = match mapped {
        Ok(user) => user,
        Err(reason) => {
            let user_name = record.and_then(|r| r.user_name.clone());
            return planned(user_name, Operation::Fail, reason);
        }
    };
    let DesiredUser {
        user_name,
        active,
        image,
        link_image,
    } = user;
    let name = Some(user_name);
    let target_id = record.and_then(|r| r.target_id.clone());
    let applied = record.and_then(|r| r.applied_image.as_ref());
    let retrying = record.is_some_and(|r| r.status == RecordStatus::Failed);

    match (active, target_id) {
        (true, None) => {
            if !options.user_create {
                return planned(
                    name,
                    Operation::Block,
                    "needs to be created, but user create is off".into(),
                );
            }
            let reason = match record.map(|r| r.status) {
                Some(RecordStatus::Failed) => "retrying the create that failed",
                Some(RecordStatus::Deleted | RecordStatus::Skipped) => "enabled in the directory",
                _ => "new in the source location",
            };
            PlannedOperation {
                link_image,
                ..planned(name, Operation::Create { image }, reason.into())
            }
        }
        (true, Some(target_id)) => {
            if applied == Some(&image) && !retrying {
                return planned(name, Operation::Refresh, "target already matches".into());
            }
            if !options.user_update {
                return planned(
                    name,
                    Operation::Block,
                    "changed, but user update is off".into(),
                );
            }
            let was_inactive = applied
                .and_then(|a| a.get("active"))
                .and_then(|a| a.as_bool())
                == Some(false);
            let reason = if was_inactive {
                "enabled in the directory again".to_owned()
            } else if retrying && applied == Some(&image) {
                "retrying the update that failed".to_owned()
            } else {
                format!(
                    "changed: {}",
                    changed_attributes(applied, &image).join(", ")
                )
            };
            planned(name, Operation::Update { target_id, image }, reason)
        }
        (false, None) => {
            if record.is_some_and(|r| r.status == RecordStatus::Deleted) && !retrying {
                return planned(
                    name,
                    Operation::Refresh,
                    "deleted from the target while disabled".into(),
                );
            }
            if !options.provision_disabled_users {
                return planned(
                    name,
                    Operation::Skip,
                    "disabled in the directory; provision disabled users is off".into(),
                );
            }
            if !options.user_create {
                return planned(
                    name,
                    Operation::Block,
                    "disabled user needs to be created, but user create is off".into(),
                );
            }
            PlannedOperation {
                link_image,
                ..planned(
                    name,
                    Operation::Create { image },
                    "disabled in the directory; provision disabled users is on".into(),
                )
            }
        }
        (false, Some(target_id)) => {
            if applied == Some(&image) && !retrying {
                return planned(name, Operation::Refresh, "target already disabled".into());
            }
            if !options.user_disable_delete {
                return planned(
                    name,
                    Operation::Block,
                    "disabled in the directory, but user disable/delete is off".into(),
                );
            }
            match options.remove_user_action {
                RemoveUserAction::Disable => planned(
                    name,
                    Operation::Disable { target_id, image },
                    "disabled in the directory".into(),
                ),
                RemoveUserAction::Delete => planned(
                    name,
                    Operation::Delete { target_id },
                    "disabled in the directory; remove user action is delete".into(),
                ),
            }
        }
    }
}

fn plan_leaver(record: Record, options: &ProvisioningOptions) -> PlannedOperation {
    let planned = |operation: Operation, reason: &str| PlannedOperation {
        guid: record.guid.clone(),
        dn: record.dn.clone(),
        user_name: record.user_name.clone(),
        fingerprint: None,
        operation,
        reason: reason.to_owned(),
        link_image: None,
        resumed_cycle: None,
    };
    let target_id = match (&record.target_id, record.status) {
        (Some(target_id), status) if status != RecordStatus::Deleted => target_id.clone(),
        _ => {
            return planned(
                Operation::Forget,
                "left the source location; nothing of it is in the target",
            );
        }
    };
    if !options.user_disable_delete {
        return planned(
            Operation::Block,
            "left the source location, but user disable/delete is off",
        );
    }
    match options.remove_user_action {
        RemoveUserAction::Delete => planned(
            Operation::Delete { target_id },
            "left the source location; remove user action is delete",
        ),
        RemoveUserAction::Disable => match &record.applied_image {
            Some(applied) if applied.get("active").and_then(|a| a.as_bool()) == Some(false) => {
                planned(
                    Operation::Refresh,
                    "left the source location; target already disabled",
                )
            }
            Some(applied) => planned(
                Operation::Disable {
                    target_id,
                    image: with_active(applied, false),
                },
                "left the source location",
            ),
            // Linked but never written: there is no image to disable with.
            None => planned(
                Operation::Forget,
                "left the source location before it was written",
            ),
        },
    }
}

#[cfg(test)]
mod tests;
