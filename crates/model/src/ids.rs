//! The values that were plain strings or numbers and easy to mix up: an entry's GUID in the data
//! store, a resource's `id` in the target, an instant in milliseconds since the epoch (not a
//! duration). Each is its own type, written and read as the bare string or number
//! (configuration files, the state store and the API are unchanged).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Maps keyed by the id are looked up with a `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                $name(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name(text.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(text: &String) -> $name {
                $name(text.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id! {
    /// What keys a source entry for its whole life: the value of the entry GUID attribute
    /// (`entryUUID`, `objectGUID` printed as text, …), or, for an entry without one when
    /// `use_dn_when_guid_missing` is on, its normalised DN behind `dn:` (see [`EntryGuid::of_dn`]).
    EntryGuid
}

string_id! {
    /// A resource's `id` in the target: what the target assigned to a user or a group.
    TargetId
}

impl EntryGuid {
    const DN_PREFIX: &'static str = "dn:";

    /// The key of an entry known by its DN only; `normalized_dn` is already normalised, so that
    /// the same entry gets the same key however its DN is spelled.
    pub fn of_dn(normalized_dn: &str) -> EntryGuid {
        EntryGuid(format!("{}{normalized_dn}", Self::DN_PREFIX))
    }

    /// Whether the entry is keyed by its DN, not by a GUID attribute.
    pub fn is_dn_key(&self) -> bool {
        self.0.starts_with(Self::DN_PREFIX)
    }
}

/// A DN as compared: case-insensitive, without spaces around separators. Records are found by
/// it (group members name users by DN), so the state store keeps it too.
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

/// An instant: milliseconds since the Unix epoch, as the engine's clock reads it. Durations stay
/// plain milliseconds (`i64`), so an instant and a wait cannot be confused: `plus_ms` and
/// `ms_since` convert between them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EpochMs(i64);

impl EpochMs {
    pub const fn from_millis(millis: i64) -> EpochMs {
        EpochMs(millis)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The instant `duration_ms` later (saturating).
    pub const fn plus_ms(self, duration_ms: i64) -> EpochMs {
        EpochMs(self.0.saturating_add(duration_ms))
    }

    /// Milliseconds from `earlier` to this instant (negative when `earlier` is later).
    pub const fn ms_since(self, earlier: EpochMs) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for EpochMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ids_are_written_and_read_as_bare_strings() {
        let guid = EntryGuid::from("8f1c");
        assert_eq!(serde_json::to_string(&guid).unwrap(), r#""8f1c""#);
        let back: TargetId = serde_json::from_str(r#""u-1""#).unwrap();
        assert_eq!(back, "u-1");
    }

    #[test]
    fn a_dn_key_is_marked_as_one() {
        let key = EntryGuid::of_dn("uid=ann,ou=people,dc=example,dc=com");
        assert_eq!(key.as_str(), "dn:uid=ann,ou=people,dc=example,dc=com");
        assert!(key.is_dn_key());
        assert!(!EntryGuid::from("8f1c").is_dn_key());
    }

    #[test]
    fn maps_keyed_by_an_id_are_looked_up_with_text() {
        let map: HashMap<EntryGuid, u32> = [(EntryGuid::from("a"), 1)].into();
        assert_eq!(map.get("a"), Some(&1));
    }

    #[test]
    fn instants_and_durations_convert_explicitly() {
        let start = EpochMs::from_millis(1_000);
        let later = start.plus_ms(60_000);
        assert_eq!(later.millis(), 61_000);
        assert_eq!(later.ms_since(start), 60_000);
        assert!(start < later);
        assert_eq!(serde_json::to_string(&later).unwrap(), "61000");
    }
}
