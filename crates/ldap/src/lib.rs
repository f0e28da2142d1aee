//! LDAP-side input for scimbridge: the LDIF reader and the LDAP client.

pub mod client;
pub mod guid;
pub mod ldif;

pub use client::{Bind, ClientSettings, LdapClient, LdapError, PagedSearch, RootDse, SyncRefresh};
pub use guid::{GuidLayout, print_guid};
pub use ldif::{LdifError, RawAttribute, RawEntry, parse_ldif};
