//! SCIM 2.0 protocol pieces (RFC 7643 / RFC 7644) without HTTP or I/O:
//! error bodies, filter parsing and evaluation, PATCH application and
//! discovery documents.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;

mod json;

pub use error::ScimErrorBody;
pub use filter::{Filter, FilterError};
pub use patch::{PatchError, PatchOp, PatchOperation, PatchRequest};

/// Core User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// List response message (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Error response message (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// PATCH request message (RFC 7644 §3.5.2).
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Service provider configuration schema (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// Resource type schema (RFC 7643 §6).
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// Schema definition schema (RFC 7643 §7).
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Media type of SCIM requests and responses (RFC 7644 §8.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// Prefix shared by all core schema URNs; attributes of core schemas live at
/// the top level of a resource, extension attributes under their URN key.
pub const CORE_SCHEMA_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

/// Builds a ListResponse envelope (RFC 7644 §3.4.2).
///
/// `start_index` is 1-based; `itemsPerPage` is the number of resources given.
pub fn list_response(
    total_results: usize,
    start_index: usize,
    resources: Vec<serde_json::Value>,
) -> serde_json::Value {
    serde_json::json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}
