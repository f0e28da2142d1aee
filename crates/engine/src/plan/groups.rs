//! Groups: which source groups the target should hold, with which members, and the operations
//! that get it there. Pure. Runs after the users of the cycle are applied, so members resolve
//! to the target ids of users that are in the target now.

use std::collections::{BTreeSet, HashMap, HashSet};

use scimbridge_model::{
    DesiredGroup, EntryGuid, GroupMember, GroupOperation, GroupRecord, PlannedGroupOperation,
    Record, RecordStatus, TargetId,
};

use super::GuidSet;
use crate::source::{SourceGroup, normalize_dn};

/// Each group in scope with its members limited to the channel's users, given as (DN, GUID).
/// Members that are not users of the channel (outside the base DN, or groups) are left out.
pub fn desired_groups(groups: &[SourceGroup], users: &[(&str, &str)]) -> Vec<DesiredGroup> {
    let guid_by_dn: HashMap<String, &str> = users
        .iter()
        .map(|(dn, guid)| (normalize_dn(dn), *guid))
        .collect();
    groups
        .iter()
        .map(|group| {
            let members: BTreeSet<EntryGuid> = group
                .member_dns
                .iter()
                .filter_map(|dn| guid_by_dn.get(dn).map(|g| EntryGuid::from(*g)))
                .collect();
            DesiredGroup {
                guid: group.guid.clone(),
                dn: group.dn.clone(),
                display_name: group.display_name.clone(),
                member_guids: members.into_iter().collect(),
                source_stamp: group.stamp.clone(),
            }
        })
        .collect()
}

/// Who can be a member of a group in the target, and who must stay one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// GUID → target id of every user the target holds (active, disabled, or failing to update).
    pub targets: HashMap<EntryGuid, TargetId>,
    /// Users who left the scope but whose deprovisioning has not happened (held, failed,
    /// waiting for a retry, blocked by an option): they keep the memberships they have.
    pub keep: HashSet<EntryGuid>,
}

impl Members {
    /// From the channel's records. `in_scope` holds the GUIDs of the users in the source
    /// location now; `leaving` those whose disable or delete this cycle sends (when the plan is
    /// made before they are applied).
    pub fn of(records: &[Record], in_scope: &GuidSet, leaving: &HashSet<&str>) -> Members {
        let mut members = Members::default();
        for record in records {
            let Some(target_id) = &record.target_id else {
                continue;
            };
            if record.status == RecordStatus::Deleted {
                continue;
            }
            members
                .targets
                .insert(record.guid.clone(), target_id.clone());
            // Only a user who really left loses its memberships: deprovisioned, or about to be.
            let deprovisioned =
                record.status == RecordStatus::Disabled || leaving.contains(record.guid.as_str());
            if !in_scope.contains(&record.guid) && !deprovisioned {
                members.keep.insert(record.guid.clone());
            }
        }
        members
    }
}

/// The operations for every group. `members.targets` maps the GUID of each user now in the
/// target to its target id; members without one are pending and added by a later cycle. Members
/// in `members.keep` are never removed.
pub fn plan_groups(
    desired: &[DesiredGroup],
    records: &[GroupRecord],
    members: &Members,
) -> Vec<PlannedGroupOperation> {
    let user_targets = &members.targets;
    let by_guid: HashMap<&str, &GroupRecord> =
        records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let mut operations = Vec::new();
    for group in desired {
        let (resolved, pending) = resolve(group, user_targets);
        let record = by_guid.get(group.guid.as_str()).copied();
        let planned = |operation: GroupOperation, reason: String| PlannedGroupOperation {
            guid: group.guid.clone(),
            dn: group.dn.clone(),
            display_name: group.display_name.clone(),
            operation,
            pending_members: pending.clone(),
            reason,
            // Members waiting for their user keep no group from its version: a user gets a
            // target user only by being read, and the read then reads its groups whole.
            source_stamp: group.source_stamp.clone(),
        };
        let Some((record, target_id)) = record.and_then(|r| r.target_id.as_ref().map(|t| (r, t)))
        else {
            let reason = match record.map(|r| r.status) {
                Some(RecordStatus::Failed) => "retrying the create that failed",
                _ => "new in the source location",
            };
            operations.push(planned(
                GroupOperation::Create {
                    display_name: group.display_name.clone(),
                    members: resolved,
                },
                format!(
                    "{reason}{}",
                    member_note(&members_count_text(pending.len()))
                ),
            ));
            continue;
        };
        // Compared by target id: an account that passed to a new entry (a rehire) is the same
        // member under another GUID, and must not be removed and added in one request.
        let applied: BTreeSet<&str> = record
            .members
            .iter()
            .map(|m| m.target_id.as_str())
            .collect();
        let wanted: BTreeSet<&str> = resolved.iter().map(|m| m.target_id.as_str()).collect();
        let add: Vec<GroupMember> = resolved
            .iter()
            .filter(|m| !applied.contains(m.target_id.as_str()))
            .cloned()
            .collect();
        let remove: Vec<GroupMember> = record
            .members
            .iter()
            .filter(|m| !wanted.contains(m.target_id.as_str()))
            .filter(|m| !members.keep.contains(&m.guid))
            .cloned()
            .collect();
        let rename =
            (record.display_name != group.display_name).then(|| group.display_name.clone());
        if add.is_empty()
            && remove.is_empty()
            && rename.is_none()
            && record.status != RecordStatus::Failed
        {
            continue;
        }
        let mut reasons = Vec::new();
        if let Some(name) = &rename {
            reasons.push(format!("renamed from {} to {name}", record.display_name));
        }
        if !add.is_empty() {
            reasons.push(format!("{} member(s) to add", add.len()));
        }
        if !remove.is_empty() {
            reasons.push(format!("{} member(s) to remove", remove.len()));
        }
        if reasons.is_empty() {
            reasons.push("retrying the update that failed".into());
        }
        operations.push(planned(
            GroupOperation::Update {
                target_id: target_id.clone(),
                rename,
                add,
                remove,
            },
            format!(
                "{}{}",
                reasons.join(", "),
                member_note(&members_count_text(pending.len()))
            ),
        ));
    }
    let in_source: BTreeSet<&str> = desired.iter().map(|g| g.guid.as_str()).collect();
    for record in records
        .iter()
        .filter(|r| !in_source.contains(r.guid.as_str()))
    {
        let operation = match &record.target_id {
            Some(target_id) => GroupOperation::Delete {
                target_id: target_id.clone(),
            },
            None => GroupOperation::Forget,
        };
        operations.push(PlannedGroupOperation {
            guid: record.guid.clone(),
            dn: record.dn.clone(),
            display_name: record.display_name.clone(),
            operation,
            pending_members: Vec::new(),
            reason: "left the source location".into(),
            source_stamp: None,
        });
    }
    operations
}

/// The group records whose version changes although no operation is planned for them (`planned`
/// holds every operation planned, held ones included): a group whose version moved without a
/// change for the channel.
pub fn settled_versions(
    desired: &[DesiredGroup],
    records: &[GroupRecord],
    planned: &[PlannedGroupOperation],
) -> Vec<GroupRecord> {
    let by_guid: HashMap<&EntryGuid, &GroupRecord> = records.iter().map(|r| (&r.guid, r)).collect();
    let with_operation: HashSet<&EntryGuid> = planned.iter().map(|o| &o.guid).collect();
    desired
        .iter()
        .filter(|group| !with_operation.contains(&group.guid))
        .filter_map(|group| {
            let record = by_guid.get(&group.guid)?;
            let stamp = &group.source_stamp;
            (record.source_stamp != *stamp).then(|| GroupRecord {
                source_stamp: stamp.clone(),
                ..(*record).clone()
            })
        })
        .collect()
}

/// A group the read did not return (its version did not move) as the directory has it: the
/// members its record holds. Planned when one of its members changes in the target (a leaver,
/// a user whose target user changed).
pub fn unchanged_group(record: &GroupRecord) -> DesiredGroup {
    DesiredGroup {
        guid: record.guid.clone(),
        dn: record.dn.clone(),
        display_name: record.display_name.clone(),
        member_guids: record.members.iter().map(|m| m.guid.clone()).collect(),
        source_stamp: record.source_stamp.clone(),
    }
}

fn resolve(
    group: &DesiredGroup,
    user_targets: &HashMap<EntryGuid, TargetId>,
) -> (Vec<GroupMember>, Vec<EntryGuid>) {
    let mut members = Vec::new();
    let mut pending = Vec::new();
    for guid in &group.member_guids {
        match user_targets.get(guid) {
            Some(target_id) => members.push(GroupMember {
                guid: guid.clone(),
                target_id: target_id.clone(),
            }),
            None => pending.push(guid.clone()),
        }
    }
    (members, pending)
}

fn members_count_text(pending: usize) -> String {
    match pending {
        0 => String::new(),
        1 => "1 member waits for its user to be in the target".into(),
        n => format!("{n} members wait for their user to be in the target"),
    }
}

fn member_note(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(guid: &str) -> GroupMember {
        GroupMember {
            guid: guid.into(),
            target_id: format!("t-{guid}").into(),
        }
    }

    fn record(guid: &str, name: &str, members: &[&str]) -> GroupRecord {
        GroupRecord {
            guid: guid.into(),
            dn: format!("cn={name},ou=groups"),
            display_name: name.into(),
            target_id: Some(format!("g-{guid}").into()),
            members: members.iter().map(|m| member(m)).collect(),
            status: RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            source_stamp: Some(format!("entryCSN:{guid}")),
        }
    }

    fn targets(guids: &[&str]) -> Members {
        Members {
            targets: guids
                .iter()
                .map(|g| (EntryGuid::from(*g), TargetId::from(format!("t-{g}"))))
                .collect(),
            keep: HashSet::new(),
        }
    }

    fn render(operations: &[PlannedGroupOperation]) -> Vec<String> {
        operations.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn members_are_the_channel_users_only() {
        let group = SourceGroup {
            guid: "g1".into(),
            dn: "cn=staff,ou=groups".into(),
            display_name: "staff".into(),
            member_dns: ["uid=b,ou=people", "uid=a,ou=people", "uid=x,ou=contractors"]
                .map(String::from)
                .into_iter()
                .collect(),
            stamp: None,
        };
        let users = [("uid=a,ou=people", "A"), ("UID=b, ou=People", "B")];
        let desired = desired_groups(&[group], &users);
        assert_eq!(desired[0].member_guids, ["A", "B"]);
    }

    #[test]
    fn new_groups_are_created_with_members_in_the_target_and_the_rest_waits() {
        let desired = [DesiredGroup {
            guid: "g1".into(),
            dn: "cn=staff".into(),
            display_name: "staff".into(),
            member_guids: vec!["A".into(), "B".into(), "C".into()],
            source_stamp: None,
        }];
        let operations = plan_groups(&desired, &[], &targets(&["A", "C"]));
        assert_eq!(
            render(&operations),
            [
                "create group staff: new in the source location (1 member waits for its user to be in the target)"
            ]
        );
        let GroupOperation::Create { members, .. } = &operations[0].operation else {
            panic!()
        };
        assert_eq!(members, &[member("A"), member("C")]);
    }

    #[test]
    fn renames_and_member_changes_are_deltas() {
        let desired = [DesiredGroup {
            guid: "g1".into(),
            dn: "cn=crew".into(),
            display_name: "crew".into(),
            member_guids: vec!["A".into(), "C".into()],
            source_stamp: None,
        }];
        let records = [record("g1", "staff", &["A", "B"])];
        let operations = plan_groups(&desired, &records, &targets(&["A", "B", "C"]));
        assert_eq!(
            render(&operations),
            [
                "update group crew: renamed from staff to crew, 1 member(s) to add, 1 member(s) to remove"
            ]
        );
        let GroupOperation::Update {
            add,
            remove,
            rename,
            ..
        } = &operations[0].operation
        else {
            panic!()
        };
        assert_eq!(
            (add.as_slice(), remove.as_slice()),
            ([member("C")].as_slice(), [member("B")].as_slice())
        );
        assert_eq!(rename.as_deref(), Some("crew"));
    }

    #[test]
    fn unchanged_groups_need_nothing_and_a_failed_member_is_retried() {
        let desired = [DesiredGroup {
            guid: "g1".into(),
            dn: "cn=staff".into(),
            display_name: "staff".into(),
            member_guids: vec!["A".into(), "B".into()],
            source_stamp: None,
        }];
        // B's user failed last cycle: not in the target, so not a member yet.
        let records = [record("g1", "staff", &["A"])];
        assert!(render(&plan_groups(&desired, &records, &targets(&["A"]))).is_empty());
        // Once B is in the target, it is added.
        assert_eq!(
            render(&plan_groups(&desired, &records, &targets(&["A", "B"]))),
            ["update group staff: 1 member(s) to add"]
        );
    }

    #[test]
    fn a_group_keeps_its_version_once_nothing_waits() {
        let desired = [DesiredGroup {
            guid: "g1".into(),
            dn: "cn=staff".into(),
            display_name: "staff".into(),
            member_guids: vec!["A".into(), "B".into()],
            source_stamp: Some("entryCSN:2".into()),
        }];
        let mut old = record("g1", "staff", &["A"]);
        old.source_stamp = Some("entryCSN:1".into());
        let records = [old.clone()];
        let version = |records: &[GroupRecord]| -> Vec<Option<String>> {
            records.iter().map(|r| r.source_stamp.clone()).collect()
        };
        // B's user is not in the target: nothing to send, and the group keeps its new version
        // (B's groups are read whole when B is read again).
        let members = targets(&["A"]);
        let operations = plan_groups(&desired, &records, &members);
        assert!(operations.is_empty());
        let settled = settled_versions(&desired, &records, &operations);
        assert_eq!(version(&settled), [Some("entryCSN:2".into())]);
        // Once B is in the target, the update that adds B leaves the group at its version.
        let operations = plan_groups(&desired, &records, &targets(&["A", "B"]));
        assert_eq!(operations[0].source_stamp.as_deref(), Some("entryCSN:2"));
        // A version that moved with nothing for the channel to do is kept as it is.
        let only_a = [DesiredGroup {
            member_guids: vec!["A".into()],
            ..desired[0].clone()
        }];
        let operations = plan_groups(&only_a, &records, &members);
        let settled = settled_versions(&only_a, &records, &operations);
        assert_eq!(version(&settled), [Some("entryCSN:2".into())]);
        // And at that version, nothing is written again.
        let settled = settled_versions(&only_a, &settled, &operations);
        assert!(settled.is_empty());
        // A group unchanged in the directory is planned as its record holds it.
        assert_eq!(unchanged_group(&old).member_guids, ["A"]);
        assert_eq!(unchanged_group(&old).source_stamp, old.source_stamp);
    }

    #[test]
    fn groups_that_leave_are_deleted_or_forgotten() {
        let mut never_created = record("g2", "ghost", &[]);
        never_created.target_id = None;
        never_created.status = RecordStatus::Failed;
        let operations = plan_groups(
            &[],
            &[record("g1", "staff", &["A"]), never_created],
            &targets(&[]),
        );
        assert_eq!(
            render(&operations),
            [
                "delete group staff: left the source location",
                "forget group ghost: left the source location"
            ]
        );
    }

    #[test]
    fn only_a_user_who_really_left_loses_its_memberships() {
        let user = |guid: &str, status: RecordStatus| Record {
            guid: guid.into(),
            dn: format!("uid={guid}"),
            user_name: Some(guid.into()),
            target_id: Some(format!("t-{guid}").into()),
            source_fingerprint: Some("f".into()),
            applied_image: None,
            target_version: None,
            status,
            last_error: None,
            attempts: 0,
            retry_after_ms: None,
            failed_fingerprint: None,
        };
        let records = [
            // In scope, its update failed: a member as the directory says.
            user("failing", RecordStatus::Failed),
            // Left the scope, its disable is held (still provisioned), failed, or blocked.
            user("held", RecordStatus::Provisioned),
            user("retrying", RecordStatus::Failed),
            user("blocked", RecordStatus::Blocked),
            // Left and deprovisioned, or about to be in this cycle.
            user("gone", RecordStatus::Disabled),
            user("leaving", RecordStatus::Provisioned),
        ];
        let in_scope: GuidSet = ["failing".into()].into();
        let members = Members::of(&records, &in_scope, &["leaving"].into());
        let everyone = ["failing", "held", "retrying", "blocked", "gone", "leaving"];
        assert_eq!(members.targets.len(), everyone.len());
        let group = record("g1", "staff", &everyone);
        let desired = [DesiredGroup {
            guid: "g1".into(),
            dn: "cn=staff".into(),
            display_name: "staff".into(),
            member_guids: Vec::new(),
            source_stamp: None,
        }];
        let operations = plan_groups(&desired, &[group], &members);
        let GroupOperation::Update { remove, .. } = &operations[0].operation else {
            panic!()
        };
        let removed: Vec<&str> = remove.iter().map(|m| m.guid.as_str()).collect();
        assert_eq!(removed, ["failing", "gone", "leaving"]);
    }
}
