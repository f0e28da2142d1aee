//! LDIF directories for the tests: entries built in a line, the DNs and GUIDs the tests share,
//! the sample directory, and edits of a directory file.

use std::fmt::{self, Display, Write as _};

pub const SAMPLE: &str = include_str!("../../../../examples/directory.ldif");

pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";

pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS}")
}

/// The GUID (entryUUID) of the `n`-th person.
pub fn guid(n: usize) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

/// The GUID (entryUUID) of the `n`-th group.
pub fn group_guid(n: usize) -> String {
    format!("99999999-0000-0000-0000-{n:012}")
}

/// One LDIF entry: its DN and its attribute values, in order.
#[derive(Clone, Debug)]
pub struct Entry {
    dn: String,
    values: Vec<(String, String)>,
}

impl Entry {
    pub fn new(dn: &str, object_class: &str) -> Entry {
        Entry {
            dn: dn.to_owned(),
            values: Vec::new(),
        }
        .with("objectClass", object_class)
    }

    /// The organizational unit `ou={name},dc=example,dc=com`.
    pub fn ou(name: &str) -> Entry {
        Entry::new(
            &format!("ou={name},dc=example,dc=com"),
            "organizationalUnit",
        )
        .with("ou", name)
    }

    /// An inetOrgPerson under `ou=people` with this uid.
    pub fn person(uid: &str) -> Entry {
        Entry::new(&user_dn(uid), "inetOrgPerson").with("uid", uid)
    }

    /// A groupOfNames under `ou=groups`.
    pub fn group(cn: &str) -> Entry {
        Entry::new(&group_dn(cn), "groupOfNames").with("cn", cn)
    }

    pub fn with(mut self, attribute: &str, value: &str) -> Entry {
        self.values.push((attribute.to_owned(), value.to_owned()));
        self
    }

    /// The entryUUID of the `n`-th person.
    pub fn guid(self, n: usize) -> Entry {
        self.with("entryUUID", &guid(n))
    }

    /// The entryUUID of the `n`-th group.
    pub fn group_guid(self, n: usize) -> Entry {
        self.with("entryUUID", &group_guid(n))
    }

    /// A value written in base64 (`attribute:: …`), as LDIF writes text that is not ASCII.
    pub fn with_base64(mut self, attribute: &str, value: &str) -> Entry {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        self.values.push((format!("{attribute}:"), encoded));
        self
    }

    /// The entry `dn` as a member.
    pub fn member(self, dn: &str) -> Entry {
        self.with("member", dn)
    }

    /// The people with these uids as members.
    pub fn members<S: AsRef<str>>(self, uids: &[S]) -> Entry {
        uids.iter().fold(self, |entry, uid| {
            entry.with("member", &user_dn(uid.as_ref()))
        })
    }

    /// `attribute` with this one value, where its values were (or last).
    pub fn set(mut self, attribute: &str, value: &str) -> Entry {
        match self.values.iter().position(|(a, _)| a == attribute) {
            Some(at) => {
                self.values[at].1 = value.to_owned();
                let mut index = 0;
                self.values.retain(|(a, _)| {
                    index += 1;
                    a != attribute || index - 1 == at
                });
                self
            }
            None => self.with(attribute, value),
        }
    }

    /// Every value of `attribute` gone.
    pub fn without(mut self, attribute: &str) -> Entry {
        self.values.retain(|(a, _)| a != attribute);
        self
    }

    /// The same entry under another DN (a copy, or a move).
    pub fn at(mut self, dn: &str) -> Entry {
        dn.clone_into(&mut self.dn);
        self
    }
}

impl Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dn: {}", self.dn)?;
        for (attribute, value) in &self.values {
            writeln!(f, "{attribute}: {value}")?;
        }
        Ok(())
    }
}

/// An LDIF file: `version: 1`, then the entries, a blank line before each. (The file ends with
/// the last entry's last line, so that a file losing its last lines is the old one cut short.)
pub fn ldif<E: Display>(entries: impl IntoIterator<Item = E>) -> String {
    let mut text = String::from("version: 1\n");
    for entry in entries {
        let _ = write!(text, "\n{entry}");
    }
    text
}

/// LDIF change records applying to a live directory: the entries, a blank line after each.
pub fn changes<E: Display>(entries: impl IntoIterator<Item = E>) -> String {
    let mut text = String::new();
    for entry in entries {
        let _ = writeln!(text, "{entry}");
    }
    text
}

/// A small directory: people with these uids, family names `S0`, `S1`…, GUIDs by position.
pub fn people_named(uids: &[&str]) -> String {
    ldif(
        uids.iter()
            .enumerate()
            .map(|(i, uid)| Entry::person(uid).with("sn", &format!("S{i}")).guid(i)),
    )
}

/// The people of an LDIF text, parsed by our reader.
pub fn people(ldif: &str) -> Vec<scimbridge_ldap::RawEntry> {
    scimbridge_ldap::parse_ldif(ldif, "sample")
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.values("objectClass")
                .any(|v| v.eq_ignore_ascii_case(b"inetOrgPerson"))
        })
        .collect()
}

/// The sample directory with only its first `count` people (and every other entry), and those
/// people: a shorter run against a slow target.
pub fn sample_with_people(count: usize) -> (String, Vec<scimbridge_ldap::RawEntry>) {
    let mut kept = people(SAMPLE);
    kept.truncate(count);
    let dns: Vec<String> = kept.iter().map(|p| format!("dn: {}\n", p.dn)).collect();
    let text = edit_ldif(SAMPLE, |block| {
        let is_person = block.contains("objectClass: inetOrgPerson");
        (!is_person || dns.iter().any(|dn| block.contains(dn.as_str()))).then(|| block.to_owned())
    });
    (text, kept)
}

/// Splits LDIF text into records (blank-line separated) for editing in tests.
pub fn edit_ldif(text: &str, edit: impl Fn(&str) -> Option<String>) -> String {
    text.split("\n\n")
        .filter_map(edit)
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_entry(block: &str, dn: &str) -> bool {
    block
        .lines()
        .any(|line| line.strip_prefix("dn: ") == Some(dn))
}

/// `text` without the entry `dn`.
pub fn without_entry(text: &str, dn: &str) -> String {
    let edited = edit_ldif(text, |block| {
        (!is_entry(block, dn)).then(|| block.to_owned())
    });
    assert_ne!(edited, text, "no entry {dn}");
    edited
}

/// `text` with the values of `attribute` in the entry `dn` replaced by one: `value`.
pub fn with_value(text: &str, dn: &str, attribute: &str, value: &str) -> String {
    let prefix = format!("{attribute}:");
    let edited = edit_ldif(text, |block| {
        if !is_entry(block, dn) {
            return Some(block.to_owned());
        }
        let mut lines: Vec<String> = Vec::new();
        let mut placed = false;
        for line in block.lines() {
            if line.starts_with(&prefix) {
                if !placed {
                    lines.push(format!("{attribute}: {value}"));
                    placed = true;
                }
            } else {
                lines.push(line.to_owned());
            }
        }
        assert!(placed, "{dn} has no {attribute}");
        Some(lines.join("\n"))
    });
    assert_ne!(edited, text, "no entry {dn}");
    edited
}

/// LDIF change records for a live directory (`slapd.modify`), each ending with a blank line.
pub mod change {
    /// `dn` deleted.
    pub fn delete(dn: &str) -> String {
        format!("dn: {dn}\nchangetype: delete\n\n")
    }

    /// `attribute` of `dn` replaced by `value`.
    pub fn replace(dn: &str, attribute: &str, value: &str) -> String {
        format!("dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n\n")
    }

    /// `value` added to `attribute` of `dn`.
    pub fn add(dn: &str, attribute: &str, value: &str) -> String {
        format!("dn: {dn}\nchangetype: modify\nadd: {attribute}\n{attribute}: {value}\n\n")
    }

    /// `value` taken out of `attribute` of `dn`.
    pub fn remove(dn: &str, attribute: &str, value: &str) -> String {
        format!("dn: {dn}\nchangetype: modify\ndelete: {attribute}\n{attribute}: {value}\n\n")
    }

    /// Every value of `attribute` of `dn` gone.
    pub fn clear(dn: &str, attribute: &str) -> String {
        format!("dn: {dn}\nchangetype: modify\ndelete: {attribute}\n\n")
    }

    /// `dn` renamed to `new_rdn`, under `new_superior` when given (a move).
    pub fn rename(dn: &str, new_rdn: &str, new_superior: Option<&str>) -> String {
        let superior = new_superior.map_or(String::new(), |s| format!("newsuperior: {s}\n"));
        format!("dn: {dn}\nchangetype: modrdn\nnewrdn: {new_rdn}\ndeleteoldrdn: 1\n{superior}\n")
    }
}
