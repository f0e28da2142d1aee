//! Case-insensitive JSON object helpers: SCIM attribute names are
//! case-insensitive (RFC 7643 §2.1) while JSON keys are not.

use serde_json::{Map, Value};

/// Returns the actual key in `map` matching `name` case-insensitively.
/// An exact match wins so that differently-cased duplicates stay addressable.
pub(crate) fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub(crate) fn get_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    get_in(value.as_object()?, name)
}

pub(crate) fn get_in<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(crate) fn get_ci_mut<'a>(map: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = find_key(map, name)?;
    map.get_mut(&key)
}

/// Sets `name` to `value`, reusing the existing key spelling if any.
pub(crate) fn set_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = find_key(map, name).unwrap_or_else(|| name.to_owned());
    map.insert(key, value);
}

pub(crate) fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = find_key(map, name)?;
    map.remove(&key)
}

/// True for URNs of core schemas, whose attributes are top-level.
pub(crate) fn is_core_urn(urn: &str) -> bool {
    urn.get(..crate::CORE_SCHEMA_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(crate::CORE_SCHEMA_PREFIX))
}
