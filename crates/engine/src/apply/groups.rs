//! Applying group operations: create or link by `displayName`, rename, member deltas in chunks
//! with PATCH (or a full PUT when the target has no PATCH), delete.

use std::collections::BTreeSet;

use scimbridge_model::{
    GroupMember, GroupMembershipHandling, GroupOperation, GroupRecord, PlannedGroupOperation,
    RecordStatus, TargetId,
};
use serde_json::{Value, json};

use super::{ScimClient, ScimClientError, TargetFailure};

/// The target settings that shape group requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    pub membership: GroupMembershipHandling,
    /// At most this many member changes per PATCH request.
    pub chunk_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutcome {
    Created,
    /// Found by `displayName` and linked.
    Linked,
    Updated,
    Deleted,
    Forgotten,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedGroup {
    /// The record to store; `None` drops it.
    pub record: Option<GroupRecord>,
    pub outcome: GroupOutcome,
    /// Set when the failure may be the target's rather than the group's.
    pub target_failure: Option<TargetFailure>,
}

/// Performs one group operation. Never fails as a whole: a failure is kept on the record and
/// the group is tried again next cycle.
pub async fn apply_group_operation(
    client: &ScimClient,
    op: &PlannedGroupOperation,
    existing: Option<&GroupRecord>,
    settings: GroupSettings,
) -> AppliedGroup {
    match &op.operation {
        GroupOperation::Create {
            display_name,
            members,
        } => match create_or_link(client, display_name, members, settings).await {
            Ok((target_id, outcome)) => {
                settled(op, target_id.into(), display_name, members, outcome)
            }
            Err(e) => failed_by(op, existing, &e),
        },
        GroupOperation::Update {
            target_id,
            rename,
            add,
            remove,
        } => {
            let before = existing.map(|r| r.members.as_slice()).unwrap_or_default();
            let members = members_after(before, add, remove);
            let name = rename.as_deref().unwrap_or(&op.display_name);
            let group = TargetGroup {
                client,
                id: target_id,
                display_name: name,
                settings,
            };
            match update(&group, rename.as_deref(), &members, add, remove).await {
                Ok(()) => settled(op, target_id.clone(), name, &members, GroupOutcome::Updated),
                Err(e) if e.status() == Some(404) => failed(
                    op,
                    existing,
                    format!(
                        "target group {target_id} no longer exists; the next cycle creates it anew"
                    ),
                    true,
                ),
                Err(e) => failed_by(op, existing, &e),
            }
        }
        GroupOperation::Delete { target_id } => match client.delete_group(target_id).await {
            Ok(()) | Err(ScimClientError::Status { status: 404, .. }) => AppliedGroup {
                record: None,
                outcome: GroupOutcome::Deleted,
                target_failure: None,
            },
            Err(e) => failed_by(op, existing, &e),
        },
        GroupOperation::Forget => AppliedGroup {
            record: None,
            outcome: GroupOutcome::Forgotten,
            target_failure: None,
        },
    }
}

/// Links a group of that name when the target has one, else creates it; a create whose answer
/// was lost is followed by a look-up, never by a blind second POST.
async fn create_or_link(
    client: &ScimClient,
    display_name: &str,
    members: &[GroupMember],
    settings: GroupSettings,
) -> Result<(String, GroupOutcome), ScimClientError> {
    let ids = target_ids(members);
    let policy = client.retry_policy();
    let mut posted = 0;
    loop {
        if let Some(id) = client.find_group(display_name).await? {
            reconcile_linked(client, &id, display_name, &ids, settings).await?;
            let outcome = if posted > 0 {
                GroupOutcome::Created
            } else {
                GroupOutcome::Linked
            };
            return Ok((id, outcome));
        }
        // A large group is created with its first chunk of members; the rest follow by PATCH.
        let first = ids.len().min(settings.chunk_size);
        match client.create_group(display_name, &ids[..first]).await {
            Ok(id) => {
                if first < ids.len() {
                    add_members(client, &id, display_name, &ids, &ids[first..], settings).await?;
                }
                return Ok((id, GroupOutcome::Created));
            }
            Err(e) if e.is_duplicate() => {
                return match client.find_group(display_name).await? {
                    Some(id) => {
                        reconcile_linked(client, &id, display_name, &ids, settings).await?;
                        Ok((id, GroupOutcome::Linked))
                    }
                    None => Err(e),
                };
            }
            Err(e) if e.outcome_unknown() && posted < policy.max_retries => {
                tokio::time::sleep(policy.backoff(posted)).await;
                posted += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A group found in the target: merge adds our members to whatever it holds; overwrite also
/// removes the members we do not have.
async fn reconcile_linked(
    client: &ScimClient,
    id: &str,
    display_name: &str,
    ids: &[&str],
    settings: GroupSettings,
) -> Result<(), ScimClientError> {
    let current = client.group_member_ids(id).await?;
    let current: BTreeSet<&str> = current.iter().map(String::as_str).collect();
    let add: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|i| !current.contains(i))
        .collect();
    let remove: Vec<&str> = match settings.membership {
        GroupMembershipHandling::Merge => Vec::new(),
        GroupMembershipHandling::Overwrite => {
            let wanted: BTreeSet<&str> = ids.iter().copied().collect();
            current
                .iter()
                .copied()
                .filter(|i| !wanted.contains(i))
                .collect()
        }
    };
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let group = TargetGroup {
        client,
        id,
        display_name,
        settings,
    };
    let delta = Delta {
        rename: None,
        add: &add,
        remove: &remove,
    };
    change_members(&group, &current, &delta).await
}

async fn add_members(
    client: &ScimClient,
    id: &str,
    display_name: &str,
    all: &[&str],
    add: &[&str],
    settings: GroupSettings,
) -> Result<(), ScimClientError> {
    let already: BTreeSet<&str> = all.iter().copied().filter(|i| !add.contains(i)).collect();
    let group = TargetGroup {
        client,
        id,
        display_name,
        settings,
    };
    let delta = Delta {
        rename: None,
        add,
        remove: &[],
    };
    change_members(&group, &already, &delta).await
}

/// A group of the target being written: where, under which name, with which settings.
struct TargetGroup<'a> {
    client: &'a ScimClient,
    id: &'a str,
    display_name: &'a str,
    settings: GroupSettings,
}

/// A rename and member changes to send to a group.
struct Delta<'a> {
    rename: Option<&'a str>,
    add: &'a [&'a str],
    remove: &'a [&'a str],
}

async fn update(
    group: &TargetGroup<'_>,
    rename: Option<&str>,
    members: &[GroupMember],
    add: &[GroupMember],
    remove: &[GroupMember],
) -> Result<(), ScimClientError> {
    let client = group.client;
    let membership = group.settings.membership;
    let mut add = target_ids(add);
    let mut remove = target_ids(remove);
    let needs_current =
        membership == GroupMembershipHandling::Overwrite || !client.capabilities().await?.patch;
    let current = if needs_current {
        client.group_member_ids(group.id).await?
    } else {
        Vec::new()
    };
    let current: BTreeSet<&str> = current.iter().map(String::as_str).collect();
    if membership == GroupMembershipHandling::Overwrite {
        // The target's own list decides, so that members added there by hand go too.
        let wanted: BTreeSet<&str> = target_ids(members).into_iter().collect();
        add = wanted
            .iter()
            .copied()
            .filter(|i| !current.contains(i))
            .collect();
        remove = current
            .iter()
            .copied()
            .filter(|i| !wanted.contains(i))
            .collect();
    }
    if rename.is_none() && add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let delta = Delta {
        rename,
        add: &add,
        remove: &remove,
    };
    change_members(group, &current, &delta).await
}

/// Sends a rename and member changes: PATCH requests of at most `chunk_size` member changes,
/// or one PUT of the whole group (`current` minus `remove` plus `add`) without PATCH.
async fn change_members(
    group: &TargetGroup<'_>,
    current: &BTreeSet<&str>,
    delta: &Delta<'_>,
) -> Result<(), ScimClientError> {
    let client = group.client;
    if client.capabilities().await?.patch {
        let requests = member_patch_requests(
            delta.rename,
            delta.add,
            delta.remove,
            group.settings.chunk_size,
        );
        for operations in requests {
            client.patch_group(group.id, &operations).await?;
        }
        return Ok(());
    }
    let mut members: BTreeSet<&str> = current.clone();
    for gone in delta.remove {
        members.remove(gone);
    }
    members.extend(delta.add.iter().copied());
    let members: Vec<&str> = members.into_iter().collect();
    client
        .replace_group(group.id, group.display_name, &members)
        .await
}

/// PATCH requests for a rename and member changes, each with at most `chunk_size` member
/// changes; the rename goes in the first.
pub fn member_patch_requests(
    rename: Option<&str>,
    add: &[&str],
    remove: &[&str],
    chunk_size: usize,
) -> Vec<Vec<Value>> {
    let chunk_size = chunk_size.max(1);
    let mut requests: Vec<Vec<Value>> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    if let Some(name) = rename {
        current.push(json!({"op": "replace", "path": "displayName", "value": name}));
    }
    let mut changes = 0;
    let mut flush = |current: &mut Vec<Value>, changes: &mut usize| {
        if !current.is_empty() {
            requests.push(std::mem::take(current));
        }
        *changes = 0;
    };
    for chunk in add.chunks(chunk_size) {
        if changes + chunk.len() > chunk_size {
            flush(&mut current, &mut changes);
        }
        let value: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
        current.push(json!({"op": "add", "path": "members", "value": value}));
        changes += chunk.len();
    }
    for id in remove {
        if changes + 1 > chunk_size {
            flush(&mut current, &mut changes);
        }
        let filter = format!("members[value eq {}]", scimbridge_scim::filter::quote(id));
        current.push(json!({"op": "remove", "path": filter}));
        changes += 1;
    }
    flush(&mut current, &mut changes);
    requests
}

fn target_ids(members: &[GroupMember]) -> Vec<&str> {
    members.iter().map(|m| m.target_id.as_str()).collect()
}

fn members_after(
    before: &[GroupMember],
    add: &[GroupMember],
    remove: &[GroupMember],
) -> Vec<GroupMember> {
    let mut members: BTreeSet<GroupMember> = before.iter().cloned().collect();
    for gone in remove {
        members.remove(gone);
    }
    members.extend(add.iter().cloned());
    members.into_iter().collect()
}

fn settled(
    op: &PlannedGroupOperation,
    target_id: TargetId,
    display_name: &str,
    members: &[GroupMember],
    outcome: GroupOutcome,
) -> AppliedGroup {
    AppliedGroup {
        record: Some(GroupRecord {
            guid: op.guid.clone(),
            dn: op.dn.clone(),
            display_name: display_name.to_owned(),
            target_id: Some(target_id),
            members: members.to_vec(),
            status: RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            source_stamp: op.source_stamp.clone(),
        }),
        outcome,
        target_failure: None,
    }
}

fn failed(
    op: &PlannedGroupOperation,
    existing: Option<&GroupRecord>,
    reason: String,
    target_gone: bool,
) -> AppliedGroup {
    let mut record = existing.cloned().unwrap_or_else(|| GroupRecord {
        guid: op.guid.clone(),
        dn: op.dn.clone(),
        display_name: op.display_name.clone(),
        target_id: None,
        members: Vec::new(),
        status: RecordStatus::Failed,
        last_error: None,
        attempts: 0,
        source_stamp: None,
    });
    record.dn = op.dn.clone();
    record.status = RecordStatus::Failed;
    // Read whole again at the next cycle, which tries again.
    record.source_stamp = None;
    record.last_error = Some(reason.clone());
    record.attempts = record.attempts.saturating_add(1);
    if target_gone {
        record.target_id = None;
        record.members.clear();
    }
    AppliedGroup {
        record: Some(record),
        outcome: GroupOutcome::Failed(reason),
        target_failure: None,
    }
}

/// [`failed`] because of `error`, noting whether the failure may be the target's.
fn failed_by(
    op: &PlannedGroupOperation,
    existing: Option<&GroupRecord>,
    error: &ScimClientError,
) -> AppliedGroup {
    AppliedGroup {
        target_failure: TargetFailure::of(error, false),
        ..failed(op, existing, error.to_string(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(requests: &[Vec<Value>]) -> Vec<Vec<String>> {
        requests
            .iter()
            .map(|ops| {
                ops.iter()
                    .map(|op| match op["op"].as_str().unwrap() {
                        "add" => format!("add {}", op["value"].as_array().unwrap().len()),
                        "remove" => format!("remove {}", op["path"].as_str().unwrap()),
                        other => format!("{other} {}", op["path"].as_str().unwrap()),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn member_changes_are_chunked_with_the_rename_first() {
        let add: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        let requests = member_patch_requests(Some("crew"), &add, &["x", "y"], 3);
        assert_eq!(
            shape(&requests),
            [
                vec!["replace displayName", "add 3"],
                vec!["add 2", r#"remove members[value eq "x"]"#],
                vec![r#"remove members[value eq "y"]"#],
            ]
        );
        assert!(member_patch_requests(None, &[], &[], 100).is_empty());
        assert_eq!(
            shape(&member_patch_requests(Some("a"), &[], &[], 100)),
            [vec!["replace displayName"]]
        );
    }

    #[test]
    fn members_after_a_delta() {
        let m = |g: &str| GroupMember {
            guid: g.into(),
            target_id: format!("t{g}").into(),
        };
        assert_eq!(
            members_after(&[m("a"), m("b")], &[m("c")], &[m("a")]),
            [m("b"), m("c")]
        );
    }
}
