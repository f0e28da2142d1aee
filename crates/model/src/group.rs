//! Groups: what a channel reads from the directory, what the state store remembers of each
//! provisioned group, and the group operations of a plan.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{EntryGuid, TargetId};
use crate::record::{OperationKind, RecordStatus};

/// A provisioned user in a group: its source GUID and its target `id`, kept so that it can be
/// removed from the group even after its own record is gone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupMember {
    pub guid: EntryGuid,
    pub target_id: TargetId,
}

/// The state of one source group in one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub guid: EntryGuid,
    pub dn: String,
    /// The `displayName` last written to the target.
    pub display_name: String,
    pub target_id: Option<TargetId>,
    /// The members this channel put in the target group, ordered by GUID.
    pub members: Vec<GroupMember>,
    /// `Provisioned` or `Failed`.
    pub status: RecordStatus,
    pub last_error: Option<String>,
    pub attempts: u32,
    /// The group entry's version (`entryCSN`, `uSNChanged` with the server that counted it, or
    /// `modifyTimestamp`, behind the attribute's name) when the channel last planned it whole:
    /// an incremental read reads whole only the groups whose version moved. `None`: read it
    /// whole at the next cycle (never read so, failed, or forgotten for a user who came or went
    /// without a group stage). Members waiting for their user do not clear it: the read that
    /// finds that user reads its groups whole.
    #[serde(default)]
    pub source_stamp: Option<String>,
}

/// A group as the directory has it now, with its members already limited to users in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredGroup {
    pub guid: EntryGuid,
    pub dn: String,
    pub display_name: String,
    /// Source GUIDs of the member users, ordered.
    pub member_guids: Vec<EntryGuid>,
    /// The group entry's version as read (see [`GroupRecord::source_stamp`]).
    pub source_stamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GroupOperation {
    /// Look the group up by `displayName`; link it when found, else create it; then make its
    /// members right.
    Create {
        display_name: String,
        members: Vec<GroupMember>,
    },
    /// Rename and/or change members by delta.
    Update {
        target_id: TargetId,
        rename: Option<String>,
        add: Vec<GroupMember>,
        remove: Vec<GroupMember>,
    },
    /// The group left the source: delete it from the target.
    Delete { target_id: TargetId },
    /// The group left the source and was never in the target: drop the record.
    Forget,
}

impl GroupOperation {
    pub fn verb(&self) -> &'static str {
        match self {
            GroupOperation::Create { .. } => "create group",
            GroupOperation::Update { .. } => "update group",
            GroupOperation::Delete { .. } => "delete group",
            GroupOperation::Forget => "forget group",
        }
    }

    /// What the operation does to the target; `None` when it writes nothing.
    pub fn kind(&self) -> Option<OperationKind> {
        match self {
            GroupOperation::Create { .. } => Some(OperationKind::CreateGroup),
            GroupOperation::Update { .. } => Some(OperationKind::UpdateGroup),
            GroupOperation::Delete { .. } => Some(OperationKind::DeleteGroup),
            GroupOperation::Forget => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedGroupOperation {
    pub guid: EntryGuid,
    pub dn: String,
    pub display_name: String,
    #[serde(flatten)]
    pub operation: GroupOperation,
    /// GUIDs of members not sent yet because their user is not in the target (failed, blocked
    /// or about to be created); they are added once it is.
    pub pending_members: Vec<EntryGuid>,
    pub reason: String,
    /// The version the group record keeps once this operation succeeds: the group's, when
    /// nothing is left waiting; else `None`, so that the next cycle reads the group whole.
    #[serde(skip)]
    pub source_stamp: Option<String>,
}

impl fmt::Display for PlannedGroupOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.operation.verb(),
            self.display_name,
            self.reason
        )
    }
}
