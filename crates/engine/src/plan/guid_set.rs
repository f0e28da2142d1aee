//! Sets of entry GUIDs as large as the directory, held as 128-bit hashes.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use scimbridge_model::EntryGuid;

/// A 128-bit hash of `text`: two SipHash passes with different salts. Deterministic, so that
/// the same text hashes the same across a cycle.
pub fn hash128(text: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        (salt, text).hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// A 64-bit hash of `text`, for what a rare collision only costs work, never correctness.
pub fn hash64(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A set of entry GUIDs (the users in scope of a read), each held as a 128-bit hash of its
/// text: at a million users, 16 bytes each instead of a string and its allocation (about 35 MB
/// instead of 120). Two GUIDs of a directory never share a hash in practice; if they did, the
/// GUID not in the set would be taken for one in it: a user in scope is kept, never
/// deprovisioned by mistake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuidSet(HashSet<u128>);

impl GuidSet {
    pub fn new() -> GuidSet {
        GuidSet::default()
    }

    /// Adds `guid`; `false` when it was there already.
    pub fn insert(&mut self, guid: &EntryGuid) -> bool {
        self.0.insert(hash128(guid.as_str()))
    }

    pub fn contains(&self, guid: &EntryGuid) -> bool {
        self.0.contains(&hash128(guid.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'g> Extend<&'g EntryGuid> for GuidSet {
    fn extend<I: IntoIterator<Item = &'g EntryGuid>>(&mut self, guids: I) {
        self.0
            .extend(guids.into_iter().map(|guid| hash128(guid.as_str())));
    }
}

impl Extend<EntryGuid> for GuidSet {
    fn extend<I: IntoIterator<Item = EntryGuid>>(&mut self, guids: I) {
        self.0
            .extend(guids.into_iter().map(|guid| hash128(guid.as_str())));
    }
}

impl<'g> FromIterator<&'g EntryGuid> for GuidSet {
    fn from_iter<I: IntoIterator<Item = &'g EntryGuid>>(guids: I) -> GuidSet {
        let mut set = GuidSet::new();
        set.extend(guids);
        set
    }
}

impl FromIterator<EntryGuid> for GuidSet {
    fn from_iter<I: IntoIterator<Item = EntryGuid>>(guids: I) -> GuidSet {
        let mut set = GuidSet::new();
        set.extend(guids);
        set
    }
}

impl<const N: usize> From<[EntryGuid; N]> for GuidSet {
    fn from(guids: [EntryGuid; N]) -> GuidSet {
        guids.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_guids_added_and_no_other() {
        let mut set: GuidSet = ["ann".into(), "bob".into()].into();
        assert!(set.contains(&"ann".into()) && set.contains(&"bob".into()));
        assert!(!set.contains(&"cara".into()) && !set.contains(&"Ann".into()));
        assert!(!set.insert(&"ann".into()));
        assert!(set.insert(&"cara".into()));
        assert_eq!(set.len(), 3);
        assert_eq!(hash128("ann"), hash128("ann"));
        assert_ne!(hash128("ann"), hash128("bob"));
    }
}
