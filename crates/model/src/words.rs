//! Enumerations kept and shown as fixed words (in the state store, the audit log, the admin
//! API): each variant has one word, `parse` is the inverse of `as_str`, and serde reads and
//! writes the same words.

/// Declares such an enumeration: `Variant = "word"` per variant.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($word => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::words::UnknownWord;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::parse(text).ok_or_else(|| $crate::words::UnknownWord {
                    kind: stringify!($name),
                    text: text.to_owned(),
                    expected: $name::ALL.iter().map(|v| v.as_str()).collect(),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use words;

/// A word that names no variant of the enumeration it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}, expected one of: {}", expected.join(", "))]
pub struct UnknownWord {
    pub kind: &'static str,
    pub text: String,
    pub expected: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use crate::{AuditEventType, ChangeDetection, OperationKind, RecordStatus};

    #[test]
    fn every_word_reads_back_as_its_variant() {
        for kind in OperationKind::ALL {
            assert_eq!(kind.as_str().parse::<OperationKind>(), Ok(*kind));
        }
        for event in AuditEventType::ALL {
            assert_eq!(event.as_str().parse::<AuditEventType>(), Ok(*event));
        }
        for status in RecordStatus::ALL {
            assert_eq!(RecordStatus::parse(status.as_str()), Some(*status));
        }
        for method in ChangeDetection::ALL {
            assert_eq!(method.name().parse::<ChangeDetection>(), Ok(method));
        }
    }

    #[test]
    fn serde_writes_and_reads_the_words() {
        let json = serde_json::to_string(&OperationKind::DeleteGroup).unwrap();
        assert_eq!(json, r#""delete group""#);
        let back: OperationKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, OperationKind::DeleteGroup);
        assert_eq!(
            serde_json::to_string(&AuditEventType::UserUnsettled).unwrap(),
            r#""user-unsettled""#
        );
    }

    #[test]
    fn an_unknown_word_names_the_words_expected() {
        let err = "erase".parse::<OperationKind>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown OperationKind \"erase\", expected one of: create, update, disable, delete, \
             create group, update group, delete group"
        );
        assert!(serde_json::from_str::<RecordStatus>(r#""gone""#).is_err());
    }
}
