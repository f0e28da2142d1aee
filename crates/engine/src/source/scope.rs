//! Scope by group membership: which users (or groups) are members of a group DN, directly or,
//! with nested search, through groups within it. Pure.

use std::collections::{HashMap, HashSet};

use super::{MemberDns, normalize_dn};

/// The directory's groups: normalised DN → normalised member DNs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupIndex {
    members: HashMap<String, MemberDns>,
}

impl GroupIndex {
    pub fn insert(&mut self, dn: &str, member_dns: MemberDns) {
        self.members.insert(normalize_dn(dn), member_dns);
    }

    pub fn contains(&self, dn: &str) -> bool {
        self.members.contains_key(&normalize_dn(dn))
    }

    /// The normalised DNs of the members of `group_dn`; with `nested`, members of member
    /// groups too, however deep (cycles are harmless). `None` when the group is not known.
    pub fn members_of(&self, group_dn: &str, nested: bool) -> Option<HashSet<String>> {
        let root = normalize_dn(group_dn);
        let direct = self.members.get(&root)?;
        let mut found: HashSet<String> = HashSet::new();
        let mut visited: HashSet<&str> = HashSet::from([root.as_str()]);
        let mut queue: Vec<&str> = direct.iter().collect();
        while let Some(member) = queue.pop() {
            if !found.insert(member.to_owned()) || !nested {
                continue;
            }
            if let Some(inner) = self.members.get(member)
                && visited.insert(member)
            {
                queue.extend(inner.iter());
            }
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> GroupIndex {
        let mut index = GroupIndex::default();
        index.insert(
            "cn=staff,ou=groups,dc=x",
            vec![
                "uid=ann,ou=people,dc=x".to_owned(),
                "cn=eng,ou=groups,dc=x".to_owned(),
            ]
            .into(),
        );
        index.insert(
            "cn=eng,ou=groups,dc=x",
            vec![
                "uid=bob,ou=people,dc=x".to_owned(),
                "cn=staff,ou=groups,dc=x".to_owned(),
            ]
            .into(),
        );
        index
    }

    #[test]
    fn direct_members_only_without_nested_search() {
        let members = index()
            .members_of("CN=Staff, ou=groups,dc=x", false)
            .unwrap();
        assert!(members.contains("uid=ann,ou=people,dc=x"));
        assert!(!members.contains("uid=bob,ou=people,dc=x"));
    }

    #[test]
    fn nested_search_follows_groups_and_survives_cycles() {
        let members = index().members_of("cn=staff,ou=groups,dc=x", true).unwrap();
        assert!(members.contains("uid=ann,ou=people,dc=x"));
        assert!(members.contains("uid=bob,ou=people,dc=x"));
        assert!(index().members_of("cn=nope,dc=x", true).is_none());
    }
}
