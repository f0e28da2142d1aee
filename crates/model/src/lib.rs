//! The vocabulary of scimbridge, shared by every other crate: data stores, connections, channels,
//! source entries, records, plans. No I/O happens here.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

pub mod config;
pub mod entry;
pub mod group;
pub mod ids;
pub mod mapping;
pub mod plan;
pub mod record;
pub mod secret;
pub mod source;
mod words;

pub use config::{
    AuthenticationMethod, Channel, ClientAuthentication, ConfigError, ConfigFile, Connection,
    DataStore, DataStoreKind, DataStoreType, GroupMembershipHandling, GroupNameSource,
    GuardSettings, ProvisioningOptions, RemoveUserAction, ScimVersion, SourceLocation,
    SourceSettings, TargetSettings, UniqueUserIdentifier,
};
pub use entry::{AttributeValue, SourceEntry};
pub use group::{DesiredGroup, GroupMember, GroupOperation, GroupRecord, PlannedGroupOperation};
pub use ids::{EntryGuid, EpochMs, TargetId, normalize_dn};
pub use mapping::{
    AttributeMapping, CharacterCase, ExtensionMapping, ExtensionPath, FieldMapping, FieldTarget,
    ScimField, ValueParser,
};
pub use plan::{Operation, Plan, PlanTotals, PlannedOperation};
pub use record::{
    AuditEvent, AuditEventType, ChannelKey, CycleSummary, HeldOperation, JournalEntry,
    OperationKind, Record, RecordStatus, SyncState, retry_backoff_ms,
};
pub use secret::Secret;
pub use source::{
    AccountStatus, AccountStatusAlgorithm, BindMethod, ChangeDetection, EffectiveSourceSettings,
    LdapSettings, LdapType,
};
pub use words::UnknownWord;
