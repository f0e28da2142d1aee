//! LDAP-side input for scimbridge: the LDIF reader and the LDAP client.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

pub mod client;
pub mod guid;
pub mod ldif;

pub use client::{Bind, ClientSettings, LdapClient, LdapError, PagedSearch, RootDse, SyncRefresh};
pub use guid::{GuidLayout, print_guid};
pub use ldif::{LdifError, RawAttribute, RawEntry, parse_ldif};
