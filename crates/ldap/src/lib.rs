//! LDAP-side input for scimbridge: the LDIF reader and the LDAP client.

pub mod client;
pub mod ldif;

pub use client::{Bind, ClientSettings, LdapClient, LdapError, RootDse, SyncRefresh};
pub use ldif::{LdifAttribute, LdifError, LdifRecord, parse_ldif};
