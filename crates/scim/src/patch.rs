//! SCIM PATCH (RFC 7644 §3.5.2) applied to a JSON resource.
//!
//! Tolerates the quirks of common clients (Microsoft Entra ID sends
//! capitalised ops like `"Replace"`, `"False"` strings for `active`, dotted or
//! URN-qualified keys inside a path-less `value`, and removes members with
//! `path: "members"` plus a `value` list).

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ScimErrorBody, scim_type};
use crate::filter::{AttrPath, CompareOp, Filter, parse_patch_path};
use crate::json::{find_key, get_ci, get_ci_mut, get_in, is_core_urn, remove_ci, set_ci};
use crate::{ENTERPRISE_USER_SCHEMA, PATCH_OP_SCHEMA};

/// A PatchOp request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    pub fn new(operations: Vec<PatchOperation>) -> Self {
        Self {
            schemas: vec![PATCH_OP_SCHEMA.to_owned()],
            operations,
        }
    }

    /// Decodes a request body; structural problems are `invalidSyntax`.
    pub fn from_json(body: Value) -> Result<Self, PatchError> {
        serde_json::from_value(body).map_err(|e| PatchError::InvalidSyntax(e.to_string()))
    }

    /// Applies all operations atomically: on error `resource` is unchanged.
    pub fn apply(&self, resource: &mut Value) -> Result<(), PatchError> {
        apply(resource, self)
    }
}

/// One entry of `Operations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    pub op: PatchOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOperation {
    pub fn add(path: Option<&str>, value: Value) -> Self {
        Self {
            op: PatchOp::Add,
            path: path.map(str::to_owned),
            value: Some(value),
        }
    }

    pub fn replace(path: Option<&str>, value: Value) -> Self {
        Self {
            op: PatchOp::Replace,
            path: path.map(str::to_owned),
            value: Some(value),
        }
    }

    pub fn remove(path: &str) -> Self {
        Self {
            op: PatchOp::Remove,
            path: Some(path.to_owned()),
            value: None,
        }
    }
}

/// The operation keyword; parsed case-insensitively, written lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
}

impl PatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Replace => "replace",
            PatchOp::Remove => "remove",
        }
    }
}

impl Serialize for PatchOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PatchOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        match s.to_ascii_lowercase().as_str() {
            "add" => Ok(PatchOp::Add),
            "replace" => Ok(PatchOp::Replace),
            "remove" => Ok(PatchOp::Remove),
            _ => Err(de::Error::unknown_variant(
                &s,
                &["add", "replace", "remove"],
            )),
        }
    }
}

/// Why a PATCH could not be applied; each maps to a SCIM `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("no target: {0}")]
    NoTarget(String),
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error("attribute {0:?} is read-only")]
    Mutability(String),
    #[error("malformed PATCH request: {0}")]
    InvalidSyntax(String),
}

impl PatchError {
    pub fn scim_type(&self) -> &'static str {
        match self {
            PatchError::InvalidPath { .. } => scim_type::INVALID_PATH,
            PatchError::NoTarget(_) => scim_type::NO_TARGET,
            PatchError::InvalidValue(_) => scim_type::INVALID_VALUE,
            PatchError::Mutability(_) => scim_type::MUTABILITY,
            PatchError::InvalidSyntax(_) => scim_type::INVALID_SYNTAX,
        }
    }

    /// HTTP status; all PATCH errors are client errors.
    pub fn status(&self) -> u16 {
        400
    }
}

impl From<PatchError> for ScimErrorBody {
    fn from(e: PatchError) -> Self {
        ScimErrorBody::new(e.status(), Some(e.scim_type()), e.to_string())
    }
}

/// Applies `request` to `resource` (a JSON object) atomically: either every
/// operation succeeds or `resource` is left unchanged (RFC 7644 §3.5.2).
pub fn apply(resource: &mut Value, request: &PatchRequest) -> Result<(), PatchError> {
    let Value::Object(original) = resource else {
        return Err(PatchError::InvalidValue(
            "the resource is not a JSON object".into(),
        ));
    };
    let mut working = original.clone();
    for op in &request.operations {
        apply_op(&mut working, op)?;
    }
    *original = working;
    Ok(())
}

fn require_value(op: PatchOp, value: Option<Value>) -> Result<Value, PatchError> {
    value.ok_or_else(|| PatchError::InvalidValue(format!("'{}' requires a value", op.as_str())))
}

fn invalid_path(path: &str, reason: impl Into<String>) -> PatchError {
    PatchError::InvalidPath {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn apply_op(root: &mut Map<String, Value>, op: &PatchOperation) -> Result<(), PatchError> {
    match op.path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => {
            if op.op == PatchOp::Remove {
                return Err(PatchError::NoTarget("'remove' requires a path".into()));
            }
            match require_value(op.op, op.value.clone())? {
                Value::Object(attrs) => {
                    for (key, value) in attrs {
                        apply_keyed(root, op.op, &key, Some(value))?;
                    }
                    Ok(())
                }
                _ => Err(PatchError::InvalidValue(
                    "without a path, 'value' must be an object of attributes".into(),
                )),
            }
        }
        Some(path) => apply_keyed(root, op.op, path, op.value.clone()),
    }
}

/// Applies one operation whose target is given as text: a path, or a key of a
/// path-less `value` (which clients also fill with dotted / URN paths).
fn apply_keyed(
    root: &mut Map<String, Value>,
    op: PatchOp,
    key: &str,
    value: Option<Value>,
) -> Result<(), PatchError> {
    if let Some(urn) = schema_urn(root, key) {
        return apply_schema(root, op, &urn, value);
    }
    let (path, filter) = parse_patch_path(key).map_err(|e| invalid_path(key, e.to_string()))?;
    apply_path(root, op, &path, filter.as_ref(), value, key)
}

/// If `key` names a whole schema (rather than an attribute in it), returns it.
fn schema_urn(root: &Map<String, Value>, key: &str) -> Option<String> {
    let key = key.trim();
    if !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return None;
    }
    let known = key.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
        || key.eq_ignore_ascii_case(crate::USER_SCHEMA)
        || key.eq_ignore_ascii_case(crate::GROUP_SCHEMA)
        || find_key(root, key).is_some()
        || root
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(key)))
            });
    known.then(|| key.to_owned())
}

/// Targets a whole schema: core schemas are the resource itself, extension
/// schemas behave like a complex attribute keyed by their URN.
fn apply_schema(
    root: &mut Map<String, Value>,
    op: PatchOp,
    urn: &str,
    value: Option<Value>,
) -> Result<(), PatchError> {
    if op == PatchOp::Remove {
        if is_core_urn(urn) {
            return Err(invalid_path(urn, "a core schema cannot be removed"));
        }
        remove_ci(root, urn);
        remove_schema(root, urn);
        return Ok(());
    }
    let Value::Object(attrs) = require_value(op, value)? else {
        return Err(PatchError::InvalidValue(format!(
            "the value for {urn} must be an object"
        )));
    };
    for (key, v) in attrs {
        let target = if is_core_urn(urn) {
            key
        } else {
            format!("{urn}:{key}")
        };
        apply_keyed(root, op, &target, Some(v))?;
    }
    Ok(())
}

fn apply_path(
    root: &mut Map<String, Value>,
    op: PatchOp,
    path: &AttrPath,
    filter: Option<&Filter>,
    value: Option<Value>,
    raw: &str,
) -> Result<(), PatchError> {
    let extension = path
        .is_extension()
        .then(|| path.urn.clone().unwrap_or_default());
    if extension.is_none() {
        check_mutable(root, op, path, filter, value.as_ref())?;
    }
    let value = value.map(|v| coerce(path, filter, v));
    match &extension {
        None => apply_in(root, op, path, filter, value, raw),
        Some(urn) => {
            if op != PatchOp::Remove {
                add_schema(root, urn);
                if find_key(root, urn).is_none() {
                    root.insert(urn.clone(), Value::Object(Map::new()));
                }
            }
            let result = match get_ci_mut(root, urn) {
                Some(Value::Object(container)) => apply_in(container, op, path, filter, value, raw),
                None | Some(Value::Null) if op == PatchOp::Remove => Ok(()),
                _ => Err(invalid_path(raw, format!("{urn} is not an object"))),
            };
            // An emptied extension is dropped along with its schema URN.
            if get_in(root, urn).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
                remove_ci(root, urn);
                remove_schema(root, urn);
            }
            result
        }
    }
}

/// `id` and `meta` are read-only (RFC 7643 §3.1); writing the current `id`
/// back is tolerated because some clients echo it.
fn check_mutable(
    root: &Map<String, Value>,
    op: PatchOp,
    path: &AttrPath,
    filter: Option<&Filter>,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    if path.name.eq_ignore_ascii_case("meta") {
        return Err(PatchError::Mutability("meta".into()));
    }
    if path.name.eq_ignore_ascii_case("id") {
        let echo = op != PatchOp::Remove
            && filter.is_none()
            && path.sub_attr.is_none()
            && value.is_some()
            && value == get_in(root, "id");
        if !echo {
            return Err(PatchError::Mutability("id".into()));
        }
    }
    Ok(())
}

/// Entra sends booleans such as `active` as "True"/"False" strings.
fn coerce(path: &AttrPath, filter: Option<&Filter>, value: Value) -> Value {
    if path.is_simple("active")
        && filter.is_none()
        && let Value::String(s) = &value
    {
        if s.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if s.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
    }
    value
}

fn add_schema(root: &mut Map<String, Value>, urn: &str) {
    let schemas = root
        .entry("schemas")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = schemas
        && !list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    {
        list.push(Value::String(urn.to_owned()));
    }
}

fn remove_schema(root: &mut Map<String, Value>, urn: &str) {
    if let Some(Value::Array(list)) = root.get_mut("schemas") {
        list.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
    }
}

/// Applies the operation inside `container` (the resource or an extension).
fn apply_in(
    container: &mut Map<String, Value>,
    op: PatchOp,
    path: &AttrPath,
    filter: Option<&Filter>,
    value: Option<Value>,
    raw: &str,
) -> Result<(), PatchError> {
    let name = path.name.as_str();
    match (filter, path.sub_attr.as_deref()) {
        (None, None) => apply_attribute(container, op, name, value),
        (None, Some(sub)) => apply_sub_attribute(container, op, name, sub, value, raw),
        (Some(filter), sub) => apply_filtered(container, op, name, filter, sub, value, raw),
    }
}

fn merge(target: &mut Map<String, Value>, incoming: Map<String, Value>) {
    for (k, v) in incoming {
        set_ci(target, &k, v);
    }
}

/// Equality used to avoid duplicate multi-values: identical JSON, or complex
/// values with the same `value` (and the same `type` when both carry one).
fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if !(a.is_object() && b.is_object()) {
        return false;
    }
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) if x == y => match (get_ci(a, "type"), get_ci(b, "type")) {
            (Some(Value::String(s)), Some(Value::String(t))) => s.eq_ignore_ascii_case(t),
            (Some(s), Some(t)) => s == t,
            _ => true,
        },
        _ => false,
    }
}

fn apply_attribute(
    container: &mut Map<String, Value>,
    op: PatchOp,
    name: &str,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let key = find_key(container, name);
    let existing = key.as_ref().and_then(|k| container.get_mut(k));
    match op {
        PatchOp::Add => {
            let value = require_value(op, value)?;
            match existing {
                Some(Value::Array(items)) => {
                    let incoming = match value {
                        Value::Array(list) => list,
                        single => vec![single],
                    };
                    // Indexed by `value`, so that adding to a large multi-valued
                    // attribute (a group of 100,000 members) is not quadratic.
                    let mut by_value: std::collections::HashMap<String, Vec<usize>> =
                        std::collections::HashMap::new();
                    for (index, existing) in items.iter().enumerate() {
                        if let Some(Value::String(key)) = get_ci(existing, "value") {
                            by_value.entry(key.clone()).or_default().push(index);
                        }
                    }
                    for item in incoming {
                        let duplicate = match get_ci(&item, "value") {
                            Some(Value::String(key)) => by_value.get(key).is_some_and(|found| {
                                found.iter().any(|&i| same_value(&items[i], &item))
                            }),
                            _ => items.iter().any(|e| same_value(e, &item)),
                        };
                        if !duplicate {
                            if let Some(Value::String(key)) = get_ci(&item, "value") {
                                by_value.entry(key.clone()).or_default().push(items.len());
                            }
                            items.push(item);
                        }
                    }
                }
                Some(Value::Object(obj)) if value.is_object() => {
                    if let Value::Object(incoming) = value {
                        merge(obj, incoming);
                    }
                }
                Some(slot) => *slot = value,
                None => {
                    container.insert(name.to_owned(), value);
                }
            }
        }
        PatchOp::Replace => {
            let value = require_value(op, value)?;
            match (existing, value) {
                // Replacing a complex value replaces only the given sub-attributes.
                (Some(Value::Object(obj)), Value::Object(incoming)) => merge(obj, incoming),
                (Some(slot), value) => *slot = value,
                (None, value) => {
                    container.insert(name.to_owned(), value);
                }
            }
        }
        PatchOp::Remove => {
            let targets = match value {
                Some(Value::Array(list)) if !list.is_empty() => Some(list),
                Some(obj @ Value::Object(_)) => Some(vec![obj]),
                _ => None,
            };
            match (existing, targets) {
                // Entra removes group members as {path: "members", value: [{value: id}]}.
                (Some(Value::Array(items)), Some(targets)) => {
                    items.retain(|e| !targets.iter().any(|t| same_value(e, t)));
                    if items.is_empty() {
                        remove_ci(container, name);
                    }
                }
                _ => {
                    remove_ci(container, name);
                }
            }
        }
    }
    Ok(())
}

fn apply_sub_attribute(
    container: &mut Map<String, Value>,
    op: PatchOp,
    name: &str,
    sub: &str,
    value: Option<Value>,
    raw: &str,
) -> Result<(), PatchError> {
    let key = find_key(container, name);
    let existing = key.as_ref().and_then(|k| container.get_mut(k));
    match op {
        PatchOp::Add | PatchOp::Replace => {
            let value = require_value(op, value)?;
            match existing {
                Some(Value::Object(obj)) => set_ci(obj, sub, value),
                // Without a filter the sub-attribute of every value is set.
                Some(Value::Array(items)) => {
                    for item in items.iter_mut() {
                        if let Value::Object(obj) = item {
                            set_ci(obj, sub, value.clone());
                        }
                    }
                }
                Some(slot @ Value::Null) => {
                    let mut obj = Map::new();
                    obj.insert(sub.to_owned(), value);
                    *slot = Value::Object(obj);
                }
                Some(_) => {
                    return Err(invalid_path(
                        raw,
                        format!("{name} is not a complex attribute"),
                    ));
                }
                None => {
                    let mut obj = Map::new();
                    obj.insert(sub.to_owned(), value);
                    container.insert(name.to_owned(), Value::Object(obj));
                }
            }
        }
        PatchOp::Remove => match existing {
            Some(Value::Object(obj)) => {
                remove_ci(obj, sub);
                if obj.is_empty() {
                    remove_ci(container, name);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(obj) = item {
                        remove_ci(obj, sub);
                    }
                }
            }
            _ => {}
        },
    }
    Ok(())
}

/// The attributes a new value must have to satisfy `filter`, when the filter
/// is a plain conjunction of `eq` comparisons (e.g. `type eq "work"`).
fn template_from_filter(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub_attr.is_none() && !value.is_null() => {
            let mut m = Map::new();
            m.insert(path.name.clone(), value.clone());
            Some(m)
        }
        Filter::And(terms) => {
            let mut m = Map::new();
            for t in terms {
                merge(&mut m, template_from_filter(t)?);
            }
            Some(m)
        }
        _ => None,
    }
}

fn apply_filtered(
    container: &mut Map<String, Value>,
    op: PatchOp,
    name: &str,
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
    raw: &str,
) -> Result<(), PatchError> {
    let key = match find_key(container, name) {
        Some(k) if !container.get(&k).is_some_and(Value::is_null) => k,
        _ => match op {
            PatchOp::Remove => return Ok(()),
            PatchOp::Replace => {
                return Err(PatchError::NoTarget(format!(
                    "{name} has no values matching {filter}"
                )));
            }
            PatchOp::Add => {
                set_ci(container, name, Value::Array(Vec::new()));
                find_key(container, name).unwrap_or_else(|| name.to_owned())
            }
        },
    };
    let Some(Value::Array(items)) = container.get_mut(&key) else {
        return Err(invalid_path(raw, format!("{name} is not multi-valued")));
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_object() && filter.matches(v))
        .map(|(i, _)| i)
        .collect();
    match op {
        PatchOp::Remove => {
            match sub {
                Some(sub) => {
                    for &i in &matched {
                        if let Some(Value::Object(obj)) = items.get_mut(i) {
                            remove_ci(obj, sub);
                        }
                    }
                }
                None => {
                    let mut index = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&index);
                        index += 1;
                        keep
                    });
                }
            }
            if items.is_empty() {
                container.remove(&key);
            }
        }
        PatchOp::Replace | PatchOp::Add => {
            let value = require_value(op, value)?;
            if matched.is_empty() {
                // RFC 7644 §3.5.2.3: replace needs a match. For add, clients
                // (Entra) expect `phoneNumbers[type eq "work"].value` to create
                // the value when none exists yet.
                let template = if op == PatchOp::Add {
                    template_from_filter(filter)
                } else {
                    None
                };
                let Some(mut new_value) = template else {
                    return Err(PatchError::NoTarget(format!(
                        "{name} has no values matching {filter}"
                    )));
                };
                match (sub, value) {
                    (Some(sub), value) => set_ci(&mut new_value, sub, value),
                    (None, Value::Object(incoming)) => merge(&mut new_value, incoming),
                    (None, _) => {
                        return Err(PatchError::InvalidValue(format!(
                            "values of {name} must be objects"
                        )));
                    }
                }
                items.push(Value::Object(new_value));
                return Ok(());
            }
            for &i in &matched {
                let Some(Value::Object(obj)) = items.get_mut(i) else {
                    continue;
                };
                match (sub, &value, op) {
                    (Some(sub), value, _) => set_ci(obj, sub, value.clone()),
                    (None, Value::Object(incoming), PatchOp::Add) => merge(obj, incoming.clone()),
                    (None, Value::Object(incoming), _) => *obj = incoming.clone(),
                    (None, _, _) => {
                        return Err(PatchError::InvalidValue(format!(
                            "values of {name} must be objects"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;

    fn user() -> Value {
        json!({
            "schemas": [crate::USER_SCHEMA],
            "id": "u1",
            "userName": "bjensen",
            "displayName": "Babs",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "b@work.example", "type": "work", "primary": true},
                {"value": "b@home.example", "type": "home"}
            ],
            "meta": {"resourceType": "User", "version": "W/\"1\""}
        })
    }

    fn patch(resource: &mut Value, ops: Value) -> Result<(), PatchError> {
        let req =
            PatchRequest::from_json(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops}))?;
        apply(resource, &req)
    }

    fn patched(ops: Value) -> Value {
        let mut u = user();
        patch(&mut u, ops).unwrap();
        u
    }

    #[test]
    fn op_keyword_is_case_insensitive() {
        let req = PatchRequest::from_json(json!({"Operations": [
            {"op": "Replace", "path": "displayName", "value": "X"},
            {"op": "ADD", "path": "title", "value": "T"},
            {"op": "remove", "path": "nickName"}
        ]}))
        .unwrap();
        assert_eq!(req.operations[0].op, PatchOp::Replace);
        assert_eq!(req.operations[1].op, PatchOp::Add);
        let err = PatchRequest::from_json(json!({"Operations": [{"op": "move", "path": "x"}]}))
            .unwrap_err();
        assert_eq!(err.scim_type(), "invalidSyntax");
        assert_eq!(
            serde_json::to_value(PatchRequest::new(vec![PatchOperation::remove("x")])).unwrap(),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "x"}]})
        );
    }

    #[test]
    fn replace_simple_and_sub_attributes() {
        let u = patched(json!([
            {"op": "Replace", "path": "displayName", "value": "Barbara J"},
            {"op": "replace", "path": "NAME.givenName", "value": "Barb"},
            {"op": "replace", "path": "active", "value": "False"},
            {"op": "add", "path": "name.middleName", "value": "Q"},
            {"op": "add", "path": "addresses", "value": [{"type": "work", "locality": "Oslo"}]}
        ]));
        assert_eq!(u["displayName"], "Barbara J");
        assert_eq!(
            u["name"],
            json!({"givenName": "Barb", "familyName": "Jensen", "middleName": "Q"})
        );
        assert_eq!(u["active"], false);
        assert_eq!(u["addresses"][0]["locality"], "Oslo");
        let u = patched(json!([{"op": "replace", "path": "title", "value": "Boss"}]));
        assert_eq!(u["title"], "Boss");
        let u = patched(
            json!([{"op": "replace", "path": "name.formatted", "value": "Ms B"}, {"op": "add", "path": "x.y", "value": 1}]),
        );
        assert_eq!(u["name"]["formatted"], "Ms B");
        assert_eq!(u["x"], json!({"y": 1}));
    }

    #[test]
    fn case_insensitive_attribute_keeps_existing_key() {
        let u = patched(json!([{"op": "replace", "path": "DISPLAYNAME", "value": "Z"}]));
        assert_eq!(u["displayName"], "Z");
        assert!(u.get("DISPLAYNAME").is_none());
    }

    #[test]
    fn enterprise_extension_paths() {
        let u = patched(json!([
            {"op": "add", "path": format!("{ENT}:employeeNumber"), "value": "42"},
            {"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": "m1"}},
            {"op": "add", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}
        ]));
        assert_eq!(
            u[ENT],
            json!({"employeeNumber": "42", "manager": {"value": "m1", "displayName": "Boss"}})
        );
        assert_eq!(u["schemas"], json!([crate::USER_SCHEMA, ENT]));
        let mut u2 = u.clone();
        patch(
            &mut u2,
            json!([
                {"op": "remove", "path": format!("{ENT}:employeeNumber")},
                {"op": "remove", "path": format!("{ENT}:manager")}
            ]),
        )
        .unwrap();
        assert!(u2.get(ENT).is_none(), "emptied extension is dropped: {u2}");
        assert_eq!(u2["schemas"], json!([crate::USER_SCHEMA]));
        let mut u3 = u.clone();
        patch(&mut u3, json!([{"op": "remove", "path": ENT}])).unwrap();
        assert!(u3.get(ENT).is_none());
        // Core-URN-qualified path addresses the top level.
        let u4 = patched(
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "C"}]),
        );
        assert_eq!(u4["displayName"], "C");
    }

    #[test]
    fn no_path_merges_value_object() {
        let u = patched(json!([{"op": "replace", "value": {
            "displayName": "New",
            "name": {"givenName": "B2"},
            "active": "false",
            "emails": [{"value": "only@example.com", "type": "work"}],
            "name.familyName": "J2",
            ENT: {"department": "R&D"},
            format!("{ENT}:employeeNumber"): "7"
        }}]));
        assert_eq!(u["displayName"], "New");
        assert_eq!(u["name"], json!({"givenName": "B2", "familyName": "J2"}));
        assert_eq!(u["active"], false);
        assert_eq!(
            u["emails"],
            json!([{"value": "only@example.com", "type": "work"}])
        );
        assert_eq!(u[ENT], json!({"department": "R&D", "employeeNumber": "7"}));
        let u = patched(
            json!([{"op": "add", "value": {"emails": [{"value": "new@example.com"}], "nickName": "B"}}]),
        );
        assert_eq!(u["emails"].as_array().unwrap().len(), 3);
        assert_eq!(u["nickName"], "B");
    }

    #[test]
    fn add_appends_without_duplicates() {
        let mut g = json!({"schemas": [crate::GROUP_SCHEMA], "id": "g", "displayName": "G", "members": [{"value": "a"}]});
        patch(&mut g, json!([
            {"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a", "display": "A"}]},
            {"op": "add", "path": "members", "value": [{"value": "b"}]}
        ]))
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "a"}, {"value": "b"}]));
        let u = patched(
            json!([{"op": "add", "path": "emails", "value": [{"value": "b@home.example", "type": "home"}, {"value": "b@home.example", "type": "other"}]}]),
        );
        assert_eq!(u["emails"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn remove_whole_attribute_and_filtered_values() {
        let u = patched(
            json!([{"op": "remove", "path": "displayName"}, {"op": "remove", "path": "doesNotExist"}]),
        );
        assert!(u.get("displayName").is_none());
        let u = patched(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]));
        assert_eq!(
            u["emails"],
            json!([{"value": "b@home.example", "type": "home"}])
        );
        let u = patched(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
        assert_eq!(
            u["emails"][0],
            json!({"value": "b@work.example", "type": "work"})
        );
        let u = patched(json!([{"op": "remove", "path": "emails[value co \"example\"]"}]));
        assert!(
            u.get("emails").is_none(),
            "emptied multi-valued attribute is removed"
        );
        let u = patched(json!([{"op": "remove", "path": "emails[type eq \"none\"]"}]));
        assert_eq!(u["emails"].as_array().unwrap().len(), 2);
        let u = patched(json!([{"op": "remove", "path": "name.givenName"}]));
        assert_eq!(u["name"], json!({"familyName": "Jensen"}));
    }

    #[test]
    fn group_member_removal_styles() {
        let base = json!({"id": "g", "displayName": "G", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
        let mut g = base.clone();
        patch(
            &mut g,
            json!([{"op": "remove", "path": "members[value eq \"b\"]"}]),
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "a"}, {"value": "c"}]));
        let mut g = base.clone();
        patch(
            &mut g,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]}]),
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "b"}]));
        let mut g = base.clone();
        patch(&mut g, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert!(g.get("members").is_none());
        let mut g = base;
        patch(
            &mut g,
            json!([{"op": "replace", "path": "members", "value": [{"value": "z"}]}]),
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "z"}]));
    }

    #[test]
    fn replace_with_value_filter() {
        let u = patched(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"}]),
        );
        assert_eq!(
            u["emails"][0],
            json!({"value": "new@work.example", "type": "work", "primary": true})
        );
        assert_eq!(u["emails"][1]["value"], "b@home.example");
        let u = patched(
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@x", "type": "home"}}]),
        );
        assert_eq!(u["emails"][1], json!({"value": "h@x", "type": "home"}));
        let mut u = user();
        let err = patch(
            &mut u,
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), "noTarget");
        let err = patch(&mut u, json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "x"}])).unwrap_err();
        assert_eq!(err.scim_type(), "noTarget");
    }

    #[test]
    fn add_with_filter_creates_missing_value() {
        let u = patched(json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555"},
            {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 556"},
            {"op": "add", "path": "emails[type eq \"home\"].display", "value": "Home"}
        ]));
        assert_eq!(
            u["phoneNumbers"],
            json!([{"type": "work", "value": "+1 556"}])
        );
        assert_eq!(u["emails"][1]["display"], "Home");
        let mut u = user();
        let err = patch(
            &mut u,
            json!([{"op": "add", "path": "phoneNumbers[type co \"w\"].value", "value": "1"}]),
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), "noTarget");
    }

    #[test]
    fn errors_map_to_scim_types() {
        let mut u = user();
        let cases = [
            (
                json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "a.b.c", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "displayName.x", "value": "x"}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "displayName[x eq 1]", "value": "x"}]),
                "invalidPath",
            ),
            (json!([{"op": "remove"}]), "noTarget"),
            (
                json!([{"op": "replace", "path": "displayName"}]),
                "invalidValue",
            ),
            (
                json!([{"op": "replace", "value": "not an object"}]),
                "invalidValue",
            ),
            (
                json!([{"op": "replace", "path": "id", "value": "other"}]),
                "mutability",
            ),
            (json!([{"op": "remove", "path": "id"}]), "mutability"),
            (
                json!([{"op": "replace", "path": "meta.version", "value": "x"}]),
                "mutability",
            ),
            (
                json!([{"op": "replace", "value": {"id": "other"}}]),
                "mutability",
            ),
        ];
        for (ops, expected) in cases {
            let err = patch(&mut u, ops.clone()).unwrap_err();
            assert_eq!(err.scim_type(), expected, "{ops}: {err}");
            let body = ScimErrorBody::from(err);
            assert_eq!(
                (body.status, body.scim_type.as_deref()),
                (400, Some(expected))
            );
        }
        assert_eq!(u, user(), "failed patches leave the resource unchanged");
        // Echoing the current id is harmless.
        patch(
            &mut u,
            json!([{"op": "replace", "value": {"id": "u1", "title": "T"}}]),
        )
        .unwrap();
        assert_eq!(u["title"], "T");
    }

    #[test]
    fn atomic_on_later_failure() {
        let mut u = user();
        let err = patch(
            &mut u,
            json!([
                {"op": "replace", "path": "displayName", "value": "changed"},
                {"op": "replace", "path": "emails[type eq \"nope\"].value", "value": "x"}
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NoTarget(_)));
        assert_eq!(u, user());
    }
}
