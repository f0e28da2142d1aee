//! LDAP-side input for scimbridge.

pub mod ldif;

pub use ldif::{LdifAttribute, LdifError, LdifRecord, parse_ldif};
