//! Operations a cycle performs, each with its reason.

use std::fmt;

use serde::Serialize;

use crate::group::PlannedGroupOperation;
use crate::ids::{EntryGuid, TargetId};
use crate::record::OperationKind;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// Look the user up by the unique user identifier; link and update it when found, else create it.
    Create {
        image: serde_json::Value,
    },
    /// Replace the target user with the image (also re-enables it).
    Update {
        target_id: TargetId,
        image: serde_json::Value,
    },
    /// Replace the target user with the image, whose `active` is false.
    Disable {
        target_id: TargetId,
        image: serde_json::Value,
    },
    Delete {
        target_id: TargetId,
    },
    /// The entry left the directory and nothing of it is in the target: drop the record.
    Forget,
    /// Nothing to send: the target already matches; only the record is brought up to date.
    Refresh,
    /// Not provisioned on purpose (for example a user disabled in the source).
    Skip,
    /// A needed action is switched off by a provisioning option.
    Block,
    /// The entry cannot be provisioned (for example a required field is missing).
    Fail,
}

impl Operation {
    pub fn verb(&self) -> &'static str {
        match self {
            Operation::Create { .. } => "create",
            Operation::Update { .. } => "update",
            Operation::Disable { .. } => "disable",
            Operation::Delete { .. } => "delete",
            Operation::Forget => "forget",
            Operation::Refresh => "unchanged",
            Operation::Skip => "skip",
            Operation::Block => "blocked",
            Operation::Fail => "fail",
        }
    }

    /// What the operation does to the target; `None` when it writes nothing.
    pub fn kind(&self) -> Option<OperationKind> {
        match self {
            Operation::Create { .. } => Some(OperationKind::Create),
            Operation::Update { .. } => Some(OperationKind::Update),
            Operation::Disable { .. } => Some(OperationKind::Disable),
            Operation::Delete { .. } => Some(OperationKind::Delete),
            _ => None,
        }
    }

    /// Whether the operation deprovisions the user (a disable or a delete).
    pub fn deprovisions(&self) -> bool {
        matches!(self, Operation::Disable { .. } | Operation::Delete { .. })
    }

    /// Whether the operation writes to the target.
    pub fn writes_target(&self) -> bool {
        matches!(
            self,
            Operation::Create { .. }
                | Operation::Update { .. }
                | Operation::Disable { .. }
                | Operation::Delete { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedOperation {
    pub guid: EntryGuid,
    pub dn: String,
    pub user_name: Option<String>,
    /// The entry's fingerprint, stored once the operation settles; `None` when the entry left
    /// the directory.
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub operation: Operation,
    pub reason: String,
    /// For a create: what to write when an existing target user is linked instead, that is the
    /// image without its create-only fields. `None`: the image itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_image: Option<serde_json::Value>,
    /// The cycle that sent an operation for this user and never settled it (it was
    /// interrupted): a user this create finds in the target is the one that cycle created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_cycle: Option<i64>,
}

impl PlannedOperation {
    /// What a link writes: the image without its create-only fields.
    pub fn link_image<'a>(&'a self, image: &'a serde_json::Value) -> &'a serde_json::Value {
        self.link_image.as_ref().unwrap_or(image)
    }

    /// A short name for messages: the user name when known, else the DN.
    pub fn label(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.dn)
    }
}

impl fmt::Display for PlannedOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.operation.verb(),
            self.label(),
            self.reason
        )
    }
}

/// What one cycle of one channel will do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub operations: Vec<PlannedOperation>,
    /// Entries whose target user is already right.
    pub unchanged: u64,
    /// Group operations, performed after the user operations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_operations: Vec<PlannedGroupOperation>,
    /// Operations the mass-change guard holds for an operator's approval; not applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<PlannedOperation>,
    /// Group operations (deletes, member removals) the mass-change guard holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_groups: Vec<PlannedGroupOperation>,
    /// Failed records whose retry backoff has not run out: left for a later cycle.
    #[serde(skip_serializing_if = "is_zero")]
    pub waiting_retry: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.lines())?;
        writeln!(f, "{}", self.totals())
    }
}

/// A plan's lines without its totals: its operations (a refresh shows nothing), held ones and
/// the failed records waiting for their retry.
pub struct PlanLines<'a>(&'a Plan);

impl fmt::Display for PlanLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.0;
        for operation in plan
            .operations
            .iter()
            .filter(|o| o.operation != Operation::Refresh)
        {
            writeln!(f, "{operation}")?;
        }
        for operation in &plan.group_operations {
            writeln!(f, "{operation}")?;
        }
        for operation in &plan.held {
            writeln!(f, "held: {operation}")?;
        }
        for operation in &plan.held_groups {
            writeln!(f, "held: {operation}")?;
        }
        if plan.waiting_retry > 0 {
            writeln!(f, "failed, waiting to be retried: {}", plan.waiting_retry)?;
        }
        Ok(())
    }
}

/// The order of the counts in [`PlanTotals`]: users, then groups, as the cycle does them.
const TOTALS_ORDER: [&str; 12] = [
    "create",
    "update",
    "disable",
    "delete",
    "forget",
    "skip",
    "blocked",
    "fail",
    "create group",
    "update group",
    "delete group",
    "forget group",
];

/// What a plan does, counted, for a reader who scrolled past the operations:
/// `total: create 2, update 1, held 3, unchanged 97`. Unchanged is always there. Counts the
/// operations of a plan printed as they come too ([`PlanTotals::count`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanTotals {
    counts: [u64; TOTALS_ORDER.len()],
    held: u64,
    waiting_retry: u64,
    unchanged: u64,
}

impl PlanTotals {
    /// Counts one user operation (a refresh is not counted: it shows nothing).
    pub fn count(&mut self, operation: &PlannedOperation) {
        if operation.operation != Operation::Refresh {
            self.count_verb(operation.operation.verb());
        }
    }

    /// Counts one group operation.
    pub fn count_group(&mut self, operation: &PlannedGroupOperation) {
        self.count_verb(operation.operation.verb());
    }

    /// Counts operations the guard holds.
    pub fn count_held(&mut self, held: usize) {
        self.held += held as u64;
    }

    fn count_verb(&mut self, verb: &str) {
        if let Some(at) = TOTALS_ORDER.iter().position(|v| *v == verb) {
            self.counts[at] += 1;
        }
    }

    /// Adds everything `plan` holds.
    pub fn add(&mut self, plan: &Plan) {
        for operation in &plan.operations {
            self.count(operation);
        }
        for operation in &plan.group_operations {
            self.count_group(operation);
        }
        self.held += (plan.held.len() + plan.held_groups.len()) as u64;
        self.waiting_retry += plan.waiting_retry;
        self.unchanged += plan.unchanged;
    }
}

impl PlanTotals {
    /// Each count that is not zero, in the cycle's order, then `unchanged` (always):
    /// `("create", 2), ("create group", 1), ("held", 3), ("unchanged", 97)`.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        TOTALS_ORDER
            .iter()
            .copied()
            .zip(self.counts)
            .chain([
                ("held", self.held),
                ("waiting to be retried", self.waiting_retry),
            ])
            .filter(|(_, count)| *count > 0)
            .chain([("unchanged", self.unchanged)])
            .collect()
    }
}

impl fmt::Display for PlanTotals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .counts()
            .into_iter()
            .map(|(verb, count)| format!("{verb} {count}"))
            .collect();
        write!(f, "total: {}", parts.join(", "))
    }
}

/// A plan's JSON fields after `operations`, for a plan whose operations are written as they
/// come (`plan`, streamed): the plan's own JSON is `operations` and these.
#[derive(Debug, Serialize)]
pub struct PlanAfterOperations<'a> {
    unchanged: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    group_operations: &'a [PlannedGroupOperation],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    held: &'a [PlannedOperation],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    held_groups: &'a [PlannedGroupOperation],
    #[serde(skip_serializing_if = "is_zero")]
    waiting_retry: u64,
}

impl Plan {
    /// The plan's lines without its totals.
    pub fn lines(&self) -> PlanLines<'_> {
        PlanLines(self)
    }

    /// One line counting what the plan does (see [`PlanTotals`]).
    pub fn totals(&self) -> String {
        let mut totals = PlanTotals::default();
        totals.add(self);
        totals.to_string()
    }

    /// The plan's JSON fields after `operations`.
    pub fn after_operations(&self) -> PlanAfterOperations<'_> {
        PlanAfterOperations {
            unchanged: self.unchanged,
            group_operations: &self.group_operations,
            held: &self.held,
            held_groups: &self.held_groups,
            waiting_retry: self.waiting_retry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupOperation;

    fn user(guid: &str, operation: Operation) -> PlannedOperation {
        PlannedOperation {
            guid: guid.into(),
            dn: format!("uid={guid},ou=people"),
            user_name: Some(guid.into()),
            fingerprint: None,
            operation,
            reason: "new in the source location".into(),
            link_image: None,
            resumed_cycle: None,
        }
    }

    fn group(guid: &str) -> PlannedGroupOperation {
        PlannedGroupOperation {
            guid: guid.into(),
            dn: format!("cn={guid},ou=groups"),
            display_name: guid.into(),
            operation: GroupOperation::Delete {
                target_id: "g1".into(),
            },
            pending_members: Vec::new(),
            reason: "gone".into(),
            source_stamp: None,
        }
    }

    /// A plan written as its operations come is the plan's own JSON: `operations`, then the
    /// fields after them, with the same fields left out when empty.
    #[test]
    fn the_fields_after_the_operations_complete_the_plan_s_json() {
        let create = Operation::Create {
            image: serde_json::json!({"userName": "ann"}),
        };
        let full = Plan {
            operations: vec![user("ann", create)],
            unchanged: 7,
            group_operations: vec![group("staff")],
            held: vec![user("bob", Operation::Fail)],
            held_groups: vec![group("old")],
            waiting_retry: 2,
        };
        for plan in [full, Plan::default()] {
            let mut composed = serde_json::Map::new();
            composed.insert(
                "operations".into(),
                serde_json::to_value(&plan.operations).unwrap(),
            );
            let after = serde_json::to_value(plan.after_operations()).unwrap();
            composed.extend(after.as_object().unwrap().clone());
            assert_eq!(
                serde_json::Value::Object(composed),
                serde_json::to_value(&plan).unwrap()
            );
        }
    }

    /// Totals counted operation by operation, as a streamed plan prints them, match those of
    /// the plan that holds them all; a refresh is not counted.
    #[test]
    fn totals_count_operations_as_they_come_as_the_plan_counts_them() {
        let create = || Operation::Create {
            image: serde_json::json!({}),
        };
        let whole = Plan {
            operations: vec![
                user("ann", create()),
                user("bob", create()),
                user("cara", Operation::Fail),
                user("dan", Operation::Refresh),
            ],
            unchanged: 3,
            group_operations: vec![group("staff")],
            held: vec![user("eve", Operation::Fail)],
            ..Plan::default()
        };
        assert_eq!(
            whole.totals(),
            "total: create 2, fail 1, delete group 1, held 1, unchanged 3"
        );
        let mut streamed = PlanTotals::default();
        for operation in &whole.operations[..2] {
            streamed.count(operation);
        }
        let rest = Plan {
            operations: whole.operations[2..].to_vec(),
            ..whole.clone()
        };
        streamed.add(&rest);
        assert_eq!(streamed.to_string(), whole.totals());
    }
}
