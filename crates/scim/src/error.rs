//! SCIM error response body (RFC 7644 §3.12).

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::ERROR_SCHEMA;

/// `scimType` values defined by RFC 7644 §3.12, Table 9.
pub mod scim_type {
    pub const INVALID_FILTER: &str = "invalidFilter";
    pub const TOO_MANY: &str = "tooMany";
    pub const UNIQUENESS: &str = "uniqueness";
    pub const MUTABILITY: &str = "mutability";
    pub const INVALID_SYNTAX: &str = "invalidSyntax";
    pub const INVALID_PATH: &str = "invalidPath";
    pub const NO_TARGET: &str = "noTarget";
    pub const INVALID_VALUE: &str = "invalidValue";
    pub const INVALID_VERS: &str = "invalidVers";
    pub const SENSITIVE: &str = "sensitive";
}

/// A SCIM error, as sent in an HTTP error response body.
///
/// Serialises with `schemas` and `status` as a string, as the RFC's examples
/// do; deserialises `status` from a string or a number because servers in the
/// wild send both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimErrorBody {
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: String,
}

impl ScimErrorBody {
    pub fn new(status: u16, scim_type: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: scim_type.map(str::to_owned),
            detail: detail.into(),
        }
    }

    /// 400 with the given `scimType`.
    pub fn bad_request(scim_type: &str, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(scim_type::UNIQUENESS), detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("schemas".into(), serde_json::json!([ERROR_SCHEMA]));
        map.insert("status".into(), self.status.to_string().into());
        if let Some(t) = &self.scim_type {
            map.insert("scimType".into(), t.clone().into());
        }
        map.insert("detail".into(), self.detail.clone().into());
        serde_json::Value::Object(map)
    }
}

impl std::fmt::Display for ScimErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SCIM error {}", self.status)?;
        if let Some(t) = &self.scim_type {
            write!(f, " ({t})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScimErrorBody {}

impl Serialize for ScimErrorBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.scim_type.is_some() { 4 } else { 3 };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("schemas", &[ERROR_SCHEMA])?;
        map.serialize_entry("status", &self.status.to_string())?;
        if let Some(t) = &self.scim_type {
            map.serialize_entry("scimType", t)?;
        }
        map.serialize_entry("detail", &self.detail)?;
        map.end()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusRepr {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct Raw {
    status: StatusRepr,
    #[serde(default, rename = "scimType", alias = "scimtype")]
    scim_type: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl<'de> Deserialize<'de> for ScimErrorBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(deserializer)?;
        let status = match raw.status {
            StatusRepr::Number(n) => u16::try_from(n).map_err(de::Error::custom)?,
            StatusRepr::Text(s) => s.trim().parse::<u16>().map_err(|_| {
                de::Error::invalid_value(de::Unexpected::Str(&s), &"an HTTP status code")
            })?,
        };
        Ok(Self {
            status,
            scim_type: raw.scim_type,
            detail: raw.detail.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_per_rfc() {
        let e = ScimErrorBody::bad_request(scim_type::INVALID_FILTER, "bad filter");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"schemas": [ERROR_SCHEMA], "status": "400", "scimType": "invalidFilter", "detail": "bad filter"})
        );
        assert_eq!(v, e.to_json());
        let nf = serde_json::to_value(ScimErrorBody::not_found("x")).unwrap();
        assert!(nf.get("scimType").is_none());
    }

    #[test]
    fn deserialises_string_or_number_status() {
        let a: ScimErrorBody =
            serde_json::from_value(json!({"schemas": [ERROR_SCHEMA], "status": "409", "scimType": "uniqueness", "detail": "dup"}))
                .unwrap();
        assert_eq!(a, ScimErrorBody::uniqueness("dup"));
        let b: ScimErrorBody = serde_json::from_value(json!({"status": 404})).unwrap();
        assert_eq!(b, ScimErrorBody::not_found(""));
        assert!(serde_json::from_value::<ScimErrorBody>(json!({"status": "oops"})).is_err());
        assert!(serde_json::from_value::<ScimErrorBody>(json!({"status": 70000})).is_err());
    }

    #[test]
    fn round_trips() {
        let e = ScimErrorBody::new(500, None, "boom");
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ScimErrorBody>(&s).unwrap(), e);
        assert_eq!(e.to_string(), "SCIM error 500: boom");
    }
}
