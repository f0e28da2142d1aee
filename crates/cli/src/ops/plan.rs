//! What the next cycle of a connection would do, per active channel, with masked fields hidden;
//! writes nothing.

use std::fmt;

use scimbridge_engine::clock::{Clock, SystemClock};
use scimbridge_engine::map::fields::mask;
use scimbridge_engine::{CycleError, PlanStream, plan_channel_streamed};
use scimbridge_model::{
    Channel, Connection, Operation, Plan, PlannedGroupOperation, PlannedOperation,
};

use crate::context::DataDir;

/// The plan of one channel.
pub struct ChannelPlan {
    pub channel: String,
    /// How the data store would be read (a full read, or which change detection).
    pub read: String,
    pub plan: Plan,
}

/// Why a channel could not be planned.
#[derive(Debug)]
pub enum PlanError {
    /// The channel's data store is not defined.
    DataStore(anyhow::Error),
    /// The data store or the state store could not be read, or the plan was refused.
    Cycle(CycleError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::DataStore(error) => write!(f, "{error:#}"),
            PlanError::Cycle(error) => f.write_str(&scimbridge_engine::state::full_message(error)),
        }
    }
}

/// The CLI reports the error it wraps, with its causes.
impl From<PlanError> for anyhow::Error {
    fn from(error: PlanError) -> anyhow::Error {
        match error {
            PlanError::DataStore(error) => error,
            PlanError::Cycle(error) => error.into(),
        }
    }
}

/// Plans one channel of the connection. The operations a full read plans page by page go to
/// `stream` as they are planned (masked); the plan returned holds the rest.
pub async fn plan_one(
    dir: &DataDir,
    connection: &Connection,
    channel: &Channel,
    stream: &dyn PlanStream,
) -> Result<ChannelPlan, PlanError> {
    let data_store = dir
        .data_store(&channel.data_store)
        .await
        .map_err(PlanError::DataStore)?;
    let masked = Masked { stream, channel };
    let planned = plan_channel_streamed(
        &dir.store,
        connection,
        channel,
        &data_store,
        SystemClock.now_ms(),
        &masked,
    )
    .await
    .map_err(PlanError::Cycle)?;
    let mut plan = planned.plan;
    for operation in plan.operations.iter_mut().chain(plan.held.iter_mut()) {
        mask_operation(operation, channel);
    }
    Ok(ChannelPlan {
        channel: channel.name.clone(),
        read: planned.read.describe(),
        plan,
    })
}

/// Hides masked fields before the operations go on.
struct Masked<'a> {
    stream: &'a dyn PlanStream,
    channel: &'a Channel,
}

impl PlanStream for Masked<'_> {
    fn operations(&self, mut operations: Vec<PlannedOperation>) {
        for operation in &mut operations {
            mask_operation(operation, self.channel);
        }
        self.stream.operations(operations);
    }

    fn groups(&self, operations: Vec<PlannedGroupOperation>, held: Vec<PlannedGroupOperation>) {
        self.stream.groups(operations, held);
    }
}

/// Masked fields stay hidden in every image an operation carries.
pub fn mask_operation(operation: &mut PlannedOperation, channel: &Channel) {
    if let Operation::Create { image }
    | Operation::Update { image, .. }
    | Operation::Disable { image, .. } = &mut operation.operation
    {
        *image = mask(
            image,
            &channel.attribute_mapping,
            &channel.extension_mapping,
        );
    }
    if let Some(image) = &mut operation.link_image {
        *image = mask(
            image,
            &channel.attribute_mapping,
            &channel.extension_mapping,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masked_fields_are_hidden_in_every_image_of_an_operation() {
        let file = scimbridge_model::ConfigFile::from_toml(
            r#"
version = 1
[[data_store]]
name = "corp"
type = "ldif"
path = "/tmp/d.ldif"
[[connection]]
name = "App"
[connection.target]
scim_url = "https://api.example.com/scim/v2"
[[connection.channel]]
name = "staff"
data_store = "corp"
[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
password = { attributes = ["initialPassword"], create_only = true, masked = true }
nickName = { attributes = ["nick"], masked = true }
"#,
        )
        .unwrap();
        let channel = &file.connections[0].channels[0];
        let mut operation = scimbridge_model::PlannedOperation {
            guid: "g".into(),
            dn: "uid=ann".into(),
            user_name: Some("ann".into()),
            fingerprint: None,
            operation: Operation::Create {
                image: json!({"userName": "ann", "password": "Secr3t!", "nickName": "Annie"}),
            },
            reason: "new".into(),
            link_image: Some(json!({"userName": "ann", "nickName": "Annie"})),
            resumed_cycle: None,
        };
        mask_operation(&mut operation, channel);
        let text = serde_json::to_string(&operation).unwrap();
        assert!(
            !text.contains("Secr3t!") && !text.contains("Annie"),
            "{text}"
        );
        assert!(text.contains("\"userName\":\"ann\""), "{text}");
    }
}
