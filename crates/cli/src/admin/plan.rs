//! What the next cycle of a connection would do: `POST /api/connections/{name}/plan`.

use std::sync::{Mutex, PoisonError};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use scimbridge_engine::PlanStream;
use scimbridge_model::{self as model, EntryGuid, GroupOperation, Operation, PlanTotals, TargetId};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Admin, ApiError, ApiResult, Params, Problems, stored_connection};
use crate::ops::plan::{self, ChannelPlan};

/// How many operations of each list a plan answer holds unless `limit` says otherwise, and at
/// most: a first cycle of a million users is neither answered nor held whole.
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 100_000;

/// The plans of a connection's active channels, by channel name, in the channels' order.
pub(super) struct Plans(Vec<Shown>);

impl Serialize for Plans {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for shown in &self.0 {
            map.serialize_entry(&shown.planned.channel, &Plan::shown(shown))?;
        }
        map.end()
    }
}

/// A channel's plan as answered: at most `limit` operations in each list, every one counted.
pub(super) struct Shown {
    planned: ChannelPlan,
    totals: PlanTotals,
    omitted: u64,
}

/// Keeps the first `limit` operations of each list a streamed plan hands over, and counts them
/// all.
struct Kept {
    limit: usize,
    kept: Mutex<KeptLists>,
}

#[derive(Default)]
struct KeptLists {
    operations: Vec<model::PlannedOperation>,
    group_operations: Vec<model::PlannedGroupOperation>,
    held_groups: Vec<model::PlannedGroupOperation>,
    totals: PlanTotals,
    omitted: u64,
}

impl KeptLists {
    /// Keeps `item` in `list` unless it holds `limit` items already: then it is counted as
    /// omitted.
    fn keep<T>(list: &mut Vec<T>, item: T, limit: usize, omitted: &mut u64) {
        if list.len() < limit {
            list.push(item);
        } else {
            *omitted += 1;
        }
    }
}

impl Kept {
    fn new(limit: usize) -> Kept {
        Kept {
            limit,
            kept: Mutex::default(),
        }
    }

    /// The plan with the operations kept first and every list cut to `limit`; what was cut is
    /// counted in `omitted`, and everything in `totals`.
    fn shown(self, mut planned: ChannelPlan) -> Shown {
        let KeptLists {
            mut operations,
            mut group_operations,
            mut held_groups,
            mut totals,
            mut omitted,
        } = self
            .kept
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        totals.add(&planned.plan);
        let plan = &mut planned.plan;
        operations.append(&mut plan.operations);
        plan.operations = operations;
        group_operations.append(&mut plan.group_operations);
        plan.group_operations = group_operations;
        held_groups.append(&mut plan.held_groups);
        plan.held_groups = held_groups;
        omitted += cut(&mut plan.operations, self.limit)
            + cut(&mut plan.held, self.limit)
            + cut(&mut plan.group_operations, self.limit)
            + cut(&mut plan.held_groups, self.limit);
        Shown {
            planned,
            totals,
            omitted,
        }
    }
}

/// Cuts `list` to `limit` items; how many went.
fn cut<T>(list: &mut Vec<T>, limit: usize) -> u64 {
    let cut = list.len().saturating_sub(limit) as u64;
    list.truncate(limit);
    cut
}

impl PlanStream for Kept {
    fn operations(&self, operations: Vec<model::PlannedOperation>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let KeptLists {
            operations: list,
            totals,
            omitted,
            ..
        } = &mut *kept;
        for operation in operations {
            totals.count(&operation);
            KeptLists::keep(list, operation, self.limit, omitted);
        }
    }

    fn groups(
        &self,
        operations: Vec<model::PlannedGroupOperation>,
        held: Vec<model::PlannedGroupOperation>,
    ) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let KeptLists {
            group_operations,
            held_groups,
            totals,
            omitted,
            ..
        } = &mut *kept;
        totals.count_held(held.len());
        for operation in operations {
            totals.count_group(&operation);
            KeptLists::keep(group_operations, operation, self.limit, omitted);
        }
        for operation in held {
            KeptLists::keep(held_groups, operation, self.limit, omitted);
        }
    }
}

/// What one cycle of one channel would do.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Plan<'a> {
    /// The user operations, each with its reason (users already right are only counted).
    operations: Vec<PlannedOperation<'a>>,
    /// Entries whose target user is already right.
    unchanged: u64,
    /// Group operations, performed after the user operations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_operations: Vec<PlannedGroupOperation<'a>>,
    /// User operations the mass-change guard would hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held: Vec<PlannedOperation<'a>>,
    /// Group operations the mass-change guard would hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held_groups: Vec<PlannedGroupOperation<'a>>,
    /// Failed records whose retry backoff has not run out.
    #[serde(skip_serializing_if = "is_zero")]
    waiting_retry: u64,
    /// How the data store would be read.
    #[schema(example = "a full read")]
    source_read: &'a str,
    /// What the plan does, counted, the operations left out included: each count that is not
    /// zero, in the cycle's order, and `unchanged`.
    #[schema(value_type = HashMap<String, u64>, example = json!({"create": 2, "updateGroup": 1, "held": 3, "unchanged": 97}))]
    totals: Totals,
    /// Operations left out of this answer: each list holds at most `limit` (counted in
    /// `totals`).
    #[serde(skip_serializing_if = "is_zero")]
    omitted: u64,
}

/// A plan's counts, keyed in camelCase (`createGroup`), in the cycle's order.
#[derive(Debug)]
struct Totals(Vec<(&'static str, u64)>);

impl Serialize for Totals {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (verb, count) in &self.0 {
            map.serialize_entry(&camel_case(verb), count)?;
        }
        map.end()
    }
}

/// `create group` → `createGroup`; `waiting to be retried` is `waitingRetry`, as the plan's own
/// field.
fn camel_case(words: &str) -> String {
    if words == "waiting to be retried" {
        return "waitingRetry".into();
    }
    let mut camel = String::with_capacity(words.len());
    for (i, word) in words.split(' ').enumerate() {
        let mut chars = word.chars();
        match chars.next() {
            Some(first) if i > 0 => camel.extend(first.to_uppercase().chain(chars)),
            Some(first) => camel.extend(std::iter::once(first).chain(chars)),
            None => {}
        }
    }
    camel
}

/// What is done to one user.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum OperationType {
    /// Look the user up by the unique user identifier; link and update it when found, else
    /// create it.
    Create,
    Update,
    Disable,
    Delete,
    /// The entry left the directory and nothing of it is in the target: its record goes.
    Forget,
    /// Nothing to send; the record is brought up to date.
    Refresh,
    /// Not provisioned on purpose.
    Skip,
    /// A provisioning option switches the needed action off.
    Block,
    /// The entry cannot be provisioned.
    Fail,
}

/// One user operation, with its reason. Masked fields are hidden in every image.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlannedOperation<'a> {
    guid: &'a str,
    dn: &'a str,
    user_name: Option<&'a str>,
    fingerprint: Option<&'a str>,
    #[serde(rename = "type")]
    operation: OperationType,
    /// The target user, for `update`, `disable` and `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    target_id: Option<&'a str>,
    /// The SCIM User the target should hold, for `create`, `update` and `disable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    image: Option<&'a Value>,
    reason: &'a str,
    /// For a create: what a link to an existing target user writes instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    link_image: Option<&'a Value>,
    /// The interrupted cycle whose operation for this user never settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    resumed_cycle: Option<i64>,
}

/// What is done to one group.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum GroupOperationType {
    /// Look the group up by `displayName`; link it when found, else create it.
    Create,
    /// Rename it and change members by delta.
    Update,
    Delete,
    /// The group left the source and was never in the target: its record goes.
    Forget,
}

/// One group operation, with its reason.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlannedGroupOperation<'a> {
    guid: &'a str,
    dn: &'a str,
    display_name: &'a str,
    #[serde(rename = "type")]
    operation: GroupOperationType,
    /// The members a create puts in the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    members: Option<Vec<GroupMember<'a>>>,
    /// The target group, for `update` and `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    target_id: Option<&'a str>,
    /// For an update: the new `displayName`, or null when it stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    rename: Option<Option<&'a str>>,
    /// For an update: members added.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    add: Option<Vec<GroupMember<'a>>>,
    /// For an update: members removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    remove: Option<Vec<GroupMember<'a>>>,
    /// GUIDs of members waiting for their user to be in the target.
    #[schema(value_type = Vec<String>)]
    pending_members: &'a [EntryGuid],
    reason: &'a str,
}

/// A provisioned user in a group.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct GroupMember<'a> {
    guid: &'a str,
    target_id: &'a str,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl<'a> Plan<'a> {
    /// A plan as answered, with its totals and what was left out.
    fn shown(shown: &'a Shown) -> Plan<'a> {
        Plan {
            totals: Totals(shown.totals.counts()),
            omitted: shown.omitted,
            ..Plan::from(&shown.planned)
        }
    }
}

impl<'a> From<&'a ChannelPlan> for Plan<'a> {
    fn from(planned: &'a ChannelPlan) -> Plan<'a> {
        let mut totals = PlanTotals::default();
        totals.add(&planned.plan);
        let model::Plan {
            operations,
            unchanged,
            group_operations,
            held,
            held_groups,
            waiting_retry,
        } = &planned.plan;
        Plan {
            operations: operations.iter().map(PlannedOperation::from).collect(),
            unchanged: *unchanged,
            group_operations: group_operations
                .iter()
                .map(PlannedGroupOperation::from)
                .collect(),
            held: held.iter().map(PlannedOperation::from).collect(),
            held_groups: held_groups
                .iter()
                .map(PlannedGroupOperation::from)
                .collect(),
            waiting_retry: *waiting_retry,
            source_read: &planned.read,
            totals: Totals(totals.counts()),
            omitted: 0,
        }
    }
}

impl<'a> From<&'a model::PlannedOperation> for PlannedOperation<'a> {
    fn from(planned: &'a model::PlannedOperation) -> PlannedOperation<'a> {
        let model::PlannedOperation {
            guid,
            dn,
            user_name,
            fingerprint,
            operation,
            reason,
            link_image,
            resumed_cycle,
        } = planned;
        let (operation, target_id, image) = match operation {
            Operation::Create { image } => (OperationType::Create, None, Some(image)),
            Operation::Update { target_id, image } => {
                (OperationType::Update, Some(target_id), Some(image))
            }
            Operation::Disable { target_id, image } => {
                (OperationType::Disable, Some(target_id), Some(image))
            }
            Operation::Delete { target_id } => (OperationType::Delete, Some(target_id), None),
            Operation::Forget => (OperationType::Forget, None, None),
            Operation::Refresh => (OperationType::Refresh, None, None),
            Operation::Skip => (OperationType::Skip, None, None),
            Operation::Block => (OperationType::Block, None, None),
            Operation::Fail => (OperationType::Fail, None, None),
        };
        PlannedOperation {
            guid,
            dn,
            user_name: user_name.as_deref(),
            fingerprint: fingerprint.as_deref(),
            operation,
            target_id: target_id.map(TargetId::as_str),
            image,
            reason,
            link_image: link_image.as_ref(),
            resumed_cycle: *resumed_cycle,
        }
    }
}

impl<'a> From<&'a model::PlannedGroupOperation> for PlannedGroupOperation<'a> {
    fn from(planned: &'a model::PlannedGroupOperation) -> PlannedGroupOperation<'a> {
        let model::PlannedGroupOperation {
            guid,
            dn,
            display_name,
            operation,
            pending_members,
            reason,
            // The engine's own bookkeeping, not part of what the plan shows.
            source_stamp: _,
        } = planned;
        let members = |members: &'a [model::GroupMember]| {
            Some(
                members
                    .iter()
                    .map(|m| GroupMember {
                        guid: &m.guid,
                        target_id: &m.target_id,
                    })
                    .collect(),
            )
        };
        let mut shown = PlannedGroupOperation {
            guid,
            dn,
            display_name,
            operation: GroupOperationType::Forget,
            members: None,
            target_id: None,
            rename: None,
            add: None,
            remove: None,
            pending_members,
            reason,
        };
        match operation {
            GroupOperation::Create {
                display_name,
                members: created,
            } => {
                shown.operation = GroupOperationType::Create;
                shown.display_name = display_name;
                shown.members = members(created);
            }
            GroupOperation::Update {
                target_id,
                rename,
                add,
                remove,
            } => {
                shown.operation = GroupOperationType::Update;
                shown.target_id = Some(target_id);
                shown.rename = Some(rename.as_deref());
                shown.add = members(add);
                shown.remove = members(remove);
            }
            GroupOperation::Delete { target_id } => {
                shown.operation = GroupOperationType::Delete;
                shown.target_id = Some(target_id);
            }
            GroupOperation::Forget => {}
        }
        shown
    }
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/plan",
    tag = "operations",
    summary = "What the next cycle would do; writes nothing",
    params(("name" = String, Path, description = "The connection name"), ("limit" = Option<u32>, Query, description = "At most this many operations in each list of a channel's plan (1,000; at most 100,000); the rest are counted in `totals` and `omitted`")),
    responses((status = 200, description = "Plan per active channel, by channel name", body = HashMap<String, Plan>), (status = 400, description = "A query parameter is malformed", body = Problems), (status = 404, description = "No such connection", body = Problems), (status = 422, description = "The data store cannot be read", body = Problems))
)]
pub(super) async fn plan(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<Limit>,
) -> ApiResult<Json<Plans>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let connection = stored_connection(&admin, &name).await?;
    let mut plans = Vec::new();
    // Streamed: a full read's new users are counted as they are planned, and only the first
    // `limit` kept, so that the service never holds a million images for an answer.
    for channel in connection.channels.iter().filter(|c| c.active) {
        let kept = Kept::new(limit);
        let planned = plan::plan_one(&admin.dir, &connection, channel, &kept)
            .await
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        plans.push(kept.shown(planned));
    }
    Ok(Json(Plans(plans)))
}

/// `?limit=N`.
#[derive(Debug, Deserialize)]
pub(super) struct Limit {
    limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use scimbridge_model::{GroupMember as Member, PlannedGroupOperation as GroupPlanned};
    use serde_json::json;

    use super::*;
    use crate::admin::shape::camel_json;

    fn user(operation: Operation, image_key: &str) -> model::PlannedOperation {
        model::PlannedOperation {
            guid: "g1".into(),
            dn: "uid=ann,ou=people,dc=example,dc=com".into(),
            user_name: Some("ann".into()),
            fingerprint: None,
            operation,
            reason: "why".into(),
            link_image: Some(json!({ image_key: "x" })),
            resumed_cycle: Some(7),
        }
    }

    fn group(operation: GroupOperation) -> GroupPlanned {
        GroupPlanned {
            guid: "g2".into(),
            dn: "cn=staff,ou=groups,dc=example,dc=com".into(),
            display_name: "staff".into(),
            operation,
            pending_members: vec!["g9".into()],
            reason: "why".into(),
            source_stamp: None,
        }
    }

    /// A plan with every kind of operation, whose images have the SCIM attribute `key`.
    fn every_operation(key: &str) -> ChannelPlan {
        let image = json!({ "userName": "ann", key: "x" });
        let member = Member {
            guid: "g1".into(),
            target_id: "t1".into(),
        };
        let mut operations = vec![
            user(
                Operation::Create {
                    image: image.clone(),
                },
                key,
            ),
            user(
                Operation::Update {
                    target_id: "t1".into(),
                    image: image.clone(),
                },
                key,
            ),
            user(
                Operation::Disable {
                    target_id: "t1".into(),
                    image,
                },
                key,
            ),
            user(
                Operation::Delete {
                    target_id: "t1".into(),
                },
                key,
            ),
        ];
        for operation in [
            Operation::Forget,
            Operation::Refresh,
            Operation::Skip,
            Operation::Block,
            Operation::Fail,
        ] {
            let mut planned = user(operation, key);
            planned.link_image = None;
            planned.resumed_cycle = None;
            planned.user_name = None;
            planned.fingerprint = Some("f".into());
            operations.push(planned);
        }
        let groups = vec![
            group(GroupOperation::Create {
                display_name: "staff".into(),
                members: vec![member.clone()],
            }),
            group(GroupOperation::Update {
                target_id: "t2".into(),
                rename: None,
                add: vec![member.clone()],
                remove: Vec::new(),
            }),
            group(GroupOperation::Update {
                target_id: "t2".into(),
                rename: Some("Staff".into()),
                add: Vec::new(),
                remove: vec![member],
            }),
            group(GroupOperation::Delete {
                target_id: "t2".into(),
            }),
            group(GroupOperation::Forget),
        ];
        ChannelPlan {
            channel: "staff".into(),
            read: "a full read".into(),
            plan: model::Plan {
                held: operations[2..4].to_vec(),
                held_groups: groups[3..].to_vec(),
                operations,
                unchanged: 3,
                group_operations: groups,
                waiting_retry: 2,
            },
        }
    }

    /// A plan as the API wrote it before its bodies were typed, with the totals it added
    /// since.
    fn untyped(planned: &ChannelPlan, totals: Value) -> Value {
        let mut value = serde_json::to_value(&planned.plan).unwrap();
        let object = value.as_object_mut().unwrap();
        object.insert("source_read".into(), Value::String(planned.read.clone()));
        let mut value = camel_json(value);
        value
            .as_object_mut()
            .unwrap()
            .insert("totals".into(), totals);
        value
    }

    #[test]
    fn a_typed_plan_writes_what_the_untyped_one_did() {
        let planned = every_operation("title");
        let typed = serde_json::to_value(Plan::from(&planned)).unwrap();
        let totals = json!({
            "create": 1, "update": 1, "disable": 1, "delete": 1, "forget": 1, "skip": 1,
            "blocked": 1, "fail": 1, "createGroup": 1, "updateGroup": 2, "deleteGroup": 1,
            "forgetGroup": 1, "held": 4, "waitingRetry": 2, "unchanged": 3
        });
        assert_eq!(typed, untyped(&planned, totals));
        let empty = ChannelPlan {
            channel: "staff".into(),
            read: "a full read".into(),
            plan: model::Plan::default(),
        };
        let typed = serde_json::to_value(Plan::from(&empty)).unwrap();
        assert_eq!(typed, untyped(&empty, json!({"unchanged": 0})));
        let shown = Kept::new(DEFAULT_LIMIT).shown(empty);
        assert_eq!(
            serde_json::to_value(Plans(vec![shown])).unwrap(),
            json!({"staff": {
                "operations": [], "unchanged": 0, "sourceRead": "a full read",
                "totals": {"unchanged": 0}
            }})
        );
    }

    /// A plan answered with a limit holds the first operations streamed, then the plan's own,
    /// at most `limit` in each list; the rest are counted as omitted, and everything in the
    /// totals.
    #[test]
    fn an_answer_keeps_the_first_operations_of_each_list_and_counts_them_all() {
        let create = |guid: &str| {
            let mut planned = user(
                Operation::Create {
                    image: json!({"userName": guid}),
                },
                "title",
            );
            planned.guid = guid.into();
            planned
        };
        let kept = Kept::new(3);
        kept.operations(vec![create("s1"), create("s2")]);
        kept.operations(vec![create("s3"), create("s4")]);
        let mut planned = every_operation("title");
        planned.plan.group_operations.truncate(2);
        let shown = kept.shown(planned);
        let guids: Vec<&str> = shown
            .planned
            .plan
            .operations
            .iter()
            .map(|o| o.guid.as_str())
            .collect();
        assert_eq!(guids, ["s1", "s2", "s3"]);
        // One streamed create over the limit and the plan's nine operations; the two held
        // and the two group operations, under the limit, are all there.
        assert_eq!(shown.omitted, 1 + 9);
        assert_eq!(shown.planned.plan.held.len(), 2);
        assert_eq!(shown.planned.plan.group_operations.len(), 2);
        let answer = serde_json::to_value(Plan::shown(&shown)).unwrap();
        assert_eq!(answer["omitted"], 10, "{answer}");
        assert_eq!(answer["totals"]["create"], 5, "{answer}");
        assert_eq!(answer["totals"]["createGroup"], 1, "{answer}");
        assert_eq!(answer["totals"]["held"], 4, "{answer}");

        // Groups streamed a batch at a time come first in their lists, and count alike.
        let kept = Kept::new(3);
        let planned = every_operation("title");
        let streamed = |name: &str| {
            let mut planned = group(GroupOperation::Forget);
            planned.display_name = name.into();
            planned
        };
        kept.groups(vec![streamed("s1"), streamed("s2")], vec![streamed("h1")]);
        kept.groups(vec![streamed("s3")], vec![streamed("h2"), streamed("h3")]);
        let shown = kept.shown(planned);
        let names = |list: &[GroupPlanned]| -> Vec<String> {
            list.iter().map(|o| o.display_name.clone()).collect()
        };
        assert_eq!(
            names(&shown.planned.plan.group_operations),
            ["s1", "s2", "s3"]
        );
        assert_eq!(names(&shown.planned.plan.held_groups), ["h1", "h2", "h3"]);
        // Of the plan's own: six of nine users, five groups and two held groups over the limit.
        assert_eq!(shown.omitted, 6 + 5 + 2);
        let answer = serde_json::to_value(Plan::shown(&shown)).unwrap();
        assert_eq!(answer["totals"]["forgetGroup"], 4, "{answer}");
        assert_eq!(answer["totals"]["held"], 4 + 3, "{answer}");
    }

    #[test]
    fn images_keep_the_names_of_their_attributes() {
        // An extension attribute spelled with an underscore was renamed `badgeNumber` in the
        // images of the plan the API showed, though the target is sent `badge_number`.
        let key = "urn:example:params:scim:schemas:extension:corp:2.0:User";
        let planned = every_operation(key);
        let typed = serde_json::to_value(Plan::from(&planned)).unwrap();
        let operation = &typed["operations"][0];
        assert_eq!(operation["image"][key], "x");
        let planned = every_operation("badge_number");
        let typed = serde_json::to_value(Plan::from(&planned)).unwrap();
        for operation in typed["operations"].as_array().unwrap().iter().take(3) {
            assert_eq!(operation["image"]["badge_number"], "x", "{operation}");
            assert_eq!(operation["linkImage"]["badge_number"], "x", "{operation}");
        }
        assert_ne!(
            typed["operations"],
            untyped(&planned, json!({}))["operations"]
        );
    }
}
