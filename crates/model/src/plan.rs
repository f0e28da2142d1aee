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
        for operation in self
            .operations
            .iter()
            .filter(|o| o.operation != Operation::Refresh)
        {
            writeln!(f, "{operation}")?;
        }
        for operation in &self.group_operations {
            writeln!(f, "{operation}")?;
        }
        for operation in &self.held {
            writeln!(f, "held: {operation}")?;
        }
        for operation in &self.held_groups {
            writeln!(f, "held: {operation}")?;
        }
        if self.waiting_retry > 0 {
            writeln!(f, "failed, waiting to be retried: {}", self.waiting_retry)?;
        }
        writeln!(f, "{}", self.totals())
    }
}

/// The order of the counts in [`Plan::totals`]: users, then groups, as the cycle does them.
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

impl Plan {
    /// One line counting what the plan does, for a reader who scrolled past the operations:
    /// `total: create 2, update 1, held 3, unchanged 97`. Unchanged is always there.
    pub fn totals(&self) -> String {
        let mut counts = [0u64; TOTALS_ORDER.len()];
        let verbs = self
            .operations
            .iter()
            .filter(|o| o.operation != Operation::Refresh)
            .map(|o| o.operation.verb())
            .chain(self.group_operations.iter().map(|g| g.operation.verb()));
        for verb in verbs {
            if let Some(at) = TOTALS_ORDER.iter().position(|v| *v == verb) {
                counts[at] += 1;
            }
        }
        let held = (self.held.len() + self.held_groups.len()) as u64;
        let parts: Vec<String> = TOTALS_ORDER
            .iter()
            .zip(counts)
            .chain([
                (&"held", held),
                (&"waiting to be retried", self.waiting_retry),
            ])
            .filter(|(_, count)| *count > 0)
            .chain([(&"unchanged", self.unchanged)])
            .map(|(verb, count)| format!("{verb} {count}"))
            .collect();
        format!("total: {}", parts.join(", "))
    }
}
