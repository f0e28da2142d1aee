//! Secret values in configuration: a literal, or a reference resolved when the secret is used.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret as written in a configuration file.
///
/// `env:NAME` reads the environment variable `NAME` and `file:PATH` reads a file (trailing newline
/// removed) at the moment the secret is used, so the secret itself is never stored. Any other string
/// is a literal secret, which the state store keeps encrypted.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Literal(String),
    Env(String),
    File(String),
}

impl Secret {
    pub fn parse(text: &str) -> Secret {
        if let Some(name) = text.strip_prefix("env:") {
            Secret::Env(name.to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            Secret::File(path.to_owned())
        } else {
            Secret::Literal(text.to_owned())
        }
    }

    /// The text written in a configuration file for this secret.
    pub fn to_config_text(&self) -> String {
        match self {
            Secret::Literal(value) => value.clone(),
            Secret::Env(name) => format!("env:{name}"),
            Secret::File(path) => format!("file:{path}"),
        }
    }

    /// True when the value itself (not a reference to it) is held.
    pub fn is_literal(&self) -> bool {
        matches!(self, Secret::Literal(_))
    }
}

impl fmt::Debug for Secret {
    // Never print a literal secret, even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Literal(_) => f.write_str("Secret(redacted)"),
            Secret::Env(name) => write!(f, "Secret(env:{name})"),
            Secret::File(path) => write!(f, "Secret(file:{path})"),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_config_text())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Secret::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_and_literals() {
        assert_eq!(Secret::parse("env:TOKEN"), Secret::Env("TOKEN".into()));
        assert_eq!(
            Secret::parse("file:/run/token"),
            Secret::File("/run/token".into())
        );
        assert_eq!(Secret::parse("s3cret"), Secret::Literal("s3cret".into()));
        assert_eq!(format!("{:?}", Secret::parse("s3cret")), "Secret(redacted)");
    }
}
