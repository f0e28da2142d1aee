//! Stage 1, source: reads entries from a data store. Only reads.

pub mod ldif;

use scimbridge_model::SourceEntry;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The data store could not be read at all; the cycle stops and nobody is deprovisioned.
    #[error("cannot read data store \"{data_store}\": {reason}")]
    Unreadable { data_store: String, reason: String },
}

/// An entry in scope that cannot be keyed (no GUID): it fails alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub dn: String,
    pub reason: String,
}

/// A group entry in scope: its name and the normalised DNs of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    pub guid: String,
    pub dn: String,
    pub display_name: String,
    pub member_dns: Vec<String>,
}

/// The users (and groups) in scope found by a full scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceScan {
    pub users: Vec<SourceEntry>,
    pub failures: Vec<EntryFailure>,
    /// Empty unless the channel has a group base DN.
    pub groups: Vec<SourceGroup>,
    /// Groups in scope that cannot be keyed (no GUID).
    pub group_failures: Vec<EntryFailure>,
}

/// Normalises a DN for comparison: case-insensitive, without spaces around separators.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split('=')
                .map(|part| part.trim().to_lowercase())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `dn` is `base` or below it; both already normalised.
pub fn is_within(dn: &str, base: &str) -> bool {
    dn == base
        || dn
            .strip_suffix(base)
            .is_some_and(|rest| rest.ends_with(','))
}
