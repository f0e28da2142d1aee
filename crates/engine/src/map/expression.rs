//! Mapping expressions: minijinja expressions (sandboxed, no I/O, fuel-limited) over a source
//! entry, with a function library named like Entra ID's provisioning functions.
//!
//! `Join(" ", [givenName], [sn])`, `ToLower(Append([uid], "@example.com"))`,
//! `IIF(departmentNumber == "sales", "Sales", "Staff")`. Attribute names are case-insensitive;
//! `[attr]` and `attr` both work in functions (a one-element list is flattened), and a
//! multi-valued attribute is a list. `Attribute("ds-pwp-account-disabled")` reads attributes
//! whose names are not identifiers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Object, Rest, Value as JinjaValue};
use minijinja::{Environment, Error, ErrorKind, Expression, State, UndefinedBehavior};
use scimbridge_model::{AttributeValue, SourceEntry};
use unicode_normalization::UnicodeNormalization;

/// Instructions an expression may run per entry: a realistic one takes under a hundred.
const FUEL: u64 = 2_000;

/// Longer expressions are refused: the parser recurses, and a huge one could exhaust the stack.
pub const MAX_EXPRESSION_LENGTH: usize = 2_000;

/// The functions of the library, by name.
pub const FUNCTIONS: &[&str] = &[
    "Append",
    "Attribute",
    "Coalesce",
    "IIF",
    "IsNullOrEmpty",
    "IsPresent",
    "Join",
    "Left",
    "Mid",
    "Not",
    "NormalizeDiacritics",
    "Replace",
    "Right",
    "SingleValue",
    "Split",
    "StripSpaces",
    "Switch",
    "ToLower",
    "ToUpper",
    "Trim",
];

/// An expression that cannot be compiled, with the position (1-based character) of the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", position.map(|p| format!(" at position {p}")).unwrap_or_default())]
pub struct ExpressionError {
    pub message: String,
    pub position: Option<usize>,
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        // The standard filters and tests stay (`sn | lower`, `x is defined`); there is no I/O.
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(50);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.add_function("Append", append);
        env.add_function("Attribute", attribute);
        env.add_function("Coalesce", coalesce);
        env.add_function("IIF", iif);
        env.add_function("IsNullOrEmpty", |v: JinjaValue| first_text(&v).is_none());
        env.add_function("IsPresent", |v: JinjaValue| first_text(&v).is_some());
        env.add_function("Join", join);
        env.add_function("Left", left);
        env.add_function("Mid", mid);
        env.add_function("Not", |v: JinjaValue| !truthy(&v));
        env.add_function("NormalizeDiacritics", |v: JinjaValue| {
            text_map(&v, normalize_diacritics)
        });
        env.add_function("Replace", replace);
        env.add_function("Right", right);
        env.add_function("SingleValue", |v: JinjaValue| {
            first_text(&v)
                .map(JinjaValue::from)
                .unwrap_or(JinjaValue::from(()))
        });
        env.add_function("Split", split);
        env.add_function("StripSpaces", |v: JinjaValue| {
            text_map(&v, |t| t.chars().filter(|c| !c.is_whitespace()).collect())
        });
        env.add_function("Switch", switch);
        env.add_function("ToLower", |v: JinjaValue, _culture: Option<JinjaValue>| {
            text_map(&v, |t| t.to_lowercase())
        });
        env.add_function("ToUpper", |v: JinjaValue, _culture: Option<JinjaValue>| {
            text_map(&v, |t| t.to_uppercase())
        });
        env.add_function("Trim", |v: JinjaValue| {
            text_map(&v, |t| t.trim().to_owned())
        });
        env
    })
}

type Compiled = Arc<Expression<'static, 'static>>;

/// Compiles an expression, or says where it is broken. Compiled expressions are cached by text.
pub fn compile(source: &str) -> Result<Compiled, ExpressionError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(cache) = cache.lock()
        && let Some(compiled) = cache.get(source)
    {
        return Ok(compiled.clone());
    }
    let length = source.chars().count();
    if length > MAX_EXPRESSION_LENGTH {
        return Err(ExpressionError {
            message: format!(
                "the expression is {length} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
            ),
            position: Some(MAX_EXPRESSION_LENGTH + 1),
        });
    }
    check_function_names(source)?;
    let compiled = environment()
        .compile_expression_owned(source.to_owned())
        .map_err(|e| ExpressionError {
            message: e.detail().unwrap_or("syntax error").to_owned(),
            position: e
                .range()
                .and_then(|r| source.get(..r.start))
                .map(|before| before.chars().count() + 1),
        })?;
    let compiled = Arc::new(compiled);
    if let Ok(mut cache) = cache.lock() {
        cache.insert(source.to_owned(), compiled.clone());
    }
    Ok(compiled)
}

/// The directory attributes an expression reads: its variables, and the names given to
/// `Attribute("…")`. Names of functions and of Jinja's globals are left out.
pub fn referenced_attributes(source: &str) -> Vec<String> {
    let Ok(compiled) = compile(source) else {
        return Vec::new();
    };
    let globals: Vec<&str> = environment().globals().map(|(name, _)| name).collect();
    let mut names: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !FUNCTIONS.contains(&name.as_str()) && !globals.contains(&name.as_str()))
        .filter(|name| !name.eq_ignore_ascii_case("dn"))
        .collect();
    let mut rest = source;
    while let Some(at) = rest.find("Attribute(") {
        rest = &rest[at + "Attribute(".len()..];
        let trimmed = rest.trim_start();
        if let Some(quote) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'')
            && let Some(end) = trimmed[1..].find(quote)
        {
            names.push(trimmed[1..1 + end].to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Every expression of a channel's mapping that does not compile, with its field and position.
pub fn mapping_problems(
    at: &str,
    mapping: &scimbridge_model::AttributeMapping,
    extensions: &scimbridge_model::ExtensionMapping,
) -> Vec<String> {
    let fields = mapping
        .iter()
        .map(|(field, m)| (format!("attribute_mapping.{field}"), m))
        .chain(
            extensions
                .iter()
                .map(|(path, m)| (format!("extension_mapping.\"{path}\""), m)),
        );
    fields
        .filter_map(|(key, m)| {
            let source = m.expression.as_deref()?;
            compile(source)
                .err()
                .map(|e| format!("{at}: {key}.expression {source:?}: {e}"))
        })
        .collect()
}

/// The values an expression gives for an entry: none (nothing to send), one, or several.
pub fn evaluate(source: &str, entry: &SourceEntry) -> Result<Vec<String>, ExpressionError> {
    let compiled = compile(source)?;
    let context = JinjaValue::from_object(EntryContext {
        entry: entry.clone(),
    });
    let value = compiled.eval(context).map_err(|e| ExpressionError {
        message: match e.kind() {
            ErrorKind::OutOfFuel => "the expression ran too long (out of fuel)".to_owned(),
            _ => e
                .detail()
                .map(str::to_owned)
                .unwrap_or_else(|| e.to_string()),
        },
        position: None,
    })?;
    Ok(texts(&value))
}

/// A called name that is not a function of the library is a mistake worth reporting at apply
/// time, not on the first entry. Names inside string literals are skipped.
fn check_function_names(source: &str) -> Result<(), ExpressionError> {
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == '\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            // A method (`x.upper()`), a filter (`x | replace(…)`), a test (`x is
            // divisibleby(3)`) or a keyword before parentheses (`not (…)`) is not a call.
            let before = chars[..start].iter().rev().find(|c| !c.is_whitespace());
            let previous_word: String = chars[..start]
                .iter()
                .rev()
                .skip_while(|c| c.is_whitespace())
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let keyword = matches!(
                name.as_str(),
                "not" | "and" | "or" | "in" | "if" | "else" | "is" | "true" | "false" | "none"
            );
            let method_or_filter =
                matches!(before, Some('.') | Some('|')) || previous_word == "is" || keyword;
            let global = environment().globals().any(|(g, _)| g == name);
            if next < chars.len()
                && chars[next] == '('
                && !method_or_filter
                && !global
                && !FUNCTIONS.contains(&name.as_str())
            {
                let known = FUNCTIONS
                    .iter()
                    .find(|f| f.eq_ignore_ascii_case(&name))
                    .map(|f| format!(" (did you mean {f}?)"))
                    .unwrap_or_default();
                return Err(ExpressionError {
                    message: format!("unknown function {name}{known}"),
                    position: Some(start + 1),
                });
            }
            continue;
        }
        i += 1;
    }
    Ok(())
}

/// The entry as the expression's variables, looked up case-insensitively.
#[derive(Debug)]
struct EntryContext {
    entry: SourceEntry,
}

impl Object for EntryContext {
    fn get_value(self: &Arc<Self>, key: &JinjaValue) -> Option<JinjaValue> {
        let name = key.as_str()?;
        if name.eq_ignore_ascii_case("dn") && self.entry.values("dn").is_empty() {
            return Some(JinjaValue::from(self.entry.dn.clone()));
        }
        attribute_value(&self.entry, name)
    }
}

fn attribute_value(entry: &SourceEntry, name: &str) -> Option<JinjaValue> {
    let values: Vec<JinjaValue> = entry
        .values(name)
        .iter()
        .filter_map(|v| match v {
            AttributeValue::Text(text) => Some(JinjaValue::from(text.clone())),
            AttributeValue::Binary(_) => None,
        })
        .collect();
    match values.len() {
        0 => None,
        1 => values.into_iter().next(),
        _ => Some(JinjaValue::from(values)),
    }
}

/// Every text in a value, lists flattened; none, undefined and empty strings left out.
fn texts(value: &JinjaValue) -> Vec<String> {
    let mut found = Vec::new();
    collect_texts(value, &mut found);
    found
}

fn collect_texts(value: &JinjaValue, found: &mut Vec<String>) {
    if value.is_undefined() || value.is_none() {
        return;
    }
    if let Some(text) = value.as_str() {
        if !text.is_empty() {
            found.push(text.to_owned());
        }
        return;
    }
    // SCIM booleans are lower case; Jinja prints Python's True and False.
    if value.kind() == minijinja::value::ValueKind::Bool {
        found.push(value.is_true().to_string());
        return;
    }
    if matches!(
        value.kind(),
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable
    ) && let Ok(items) = value.try_iter()
    {
        for item in items {
            collect_texts(&item, found);
        }
        return;
    }
    let text = value.to_string();
    if !text.is_empty() {
        found.push(text);
    }
}

fn first_text(value: &JinjaValue) -> Option<String> {
    texts(value).into_iter().next()
}

fn text_value(text: Option<String>) -> JinjaValue {
    text.map(JinjaValue::from).unwrap_or(JinjaValue::from(()))
}

/// Applies `f` to every text of the value (a multi-valued attribute stays multi-valued).
fn text_map(value: &JinjaValue, f: impl Fn(&str) -> String) -> JinjaValue {
    let all = texts(value);
    match all.len() {
        0 => JinjaValue::from(()),
        1 => JinjaValue::from(f(&all[0])),
        _ => JinjaValue::from(all.iter().map(|t| f(t)).collect::<Vec<_>>()),
    }
}

fn truthy(value: &JinjaValue) -> bool {
    if let Some(text) = value.as_str() {
        return !matches!(
            text.to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "no"
        );
    }
    value.is_true()
}

fn count(value: &JinjaValue, function: &str) -> Result<usize, Error> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|t| t.trim().parse().ok()))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{function} needs a whole number, not {value}"),
            )
        })
}

fn append(source: JinjaValue, suffix: JinjaValue) -> JinjaValue {
    match (first_text(&source), first_text(&suffix)) {
        (None, None) => JinjaValue::from(()),
        (a, b) => JinjaValue::from(format!(
            "{}{}",
            a.unwrap_or_default(),
            b.unwrap_or_default()
        )),
    }
}

fn attribute(state: &State, name: &str) -> JinjaValue {
    state.lookup(name).unwrap_or(JinjaValue::from(()))
}

fn coalesce(values: Rest<JinjaValue>) -> JinjaValue {
    text_value(values.iter().find_map(first_text))
}

fn iif(condition: JinjaValue, if_true: JinjaValue, if_false: JinjaValue) -> JinjaValue {
    if truthy(&condition) {
        if_true
    } else {
        if_false
    }
}

fn join(separator: JinjaValue, values: Rest<JinjaValue>) -> JinjaValue {
    let separator = first_text(&separator).unwrap_or_default();
    let all: Vec<String> = values.iter().flat_map(texts).collect();
    if all.is_empty() {
        JinjaValue::from(())
    } else {
        JinjaValue::from(all.join(&separator))
    }
}

fn left(source: JinjaValue, length: JinjaValue) -> Result<JinjaValue, Error> {
    let length = count(&length, "Left")?;
    Ok(text_map(&source, |t| t.chars().take(length).collect()))
}

fn right(source: JinjaValue, length: JinjaValue) -> Result<JinjaValue, Error> {
    let length = count(&length, "Right")?;
    Ok(text_map(&source, |t| {
        let chars: Vec<char> = t.chars().collect();
        chars[chars.len().saturating_sub(length)..].iter().collect()
    }))
}

/// Entra's Mid: `start` counts from 1.
fn mid(source: JinjaValue, start: JinjaValue, length: JinjaValue) -> Result<JinjaValue, Error> {
    let start = count(&start, "Mid")?.max(1) - 1;
    let length = count(&length, "Mid")?;
    Ok(text_map(&source, |t| {
        t.chars().skip(start).take(length).collect()
    }))
}

fn replace(source: JinjaValue, old: JinjaValue, new: JinjaValue) -> JinjaValue {
    let old = first_text(&old).unwrap_or_default();
    let new = first_text(&new).unwrap_or_default();
    if old.is_empty() {
        return source;
    }
    text_map(&source, |t| t.replace(&old, &new))
}

fn split(source: JinjaValue, delimiter: JinjaValue) -> JinjaValue {
    let delimiter = first_text(&delimiter).unwrap_or_else(|| ",".into());
    let parts: Vec<String> = texts(&source)
        .iter()
        .flat_map(|t| {
            t.split(delimiter.as_str())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect();
    JinjaValue::from(parts)
}

/// `Switch(source, default, key1, value1, key2, value2, …)`.
fn switch(
    source: JinjaValue,
    default: JinjaValue,
    pairs: Rest<JinjaValue>,
) -> Result<JinjaValue, Error> {
    if !pairs.len().is_multiple_of(2) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "Switch needs key and value pairs after the default value",
        ));
    }
    let source = first_text(&source).unwrap_or_default();
    Ok(pairs
        .chunks(2)
        .find(|pair| first_text(&pair[0]).unwrap_or_default() == source)
        .map_or(default, |pair| pair[1].clone()))
}

/// Letters without their accents: "Zoë Müller" → "Zoe Muller"; letters that do not decompose
/// get their usual Latin spelling.
pub fn normalize_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        match c {
            '\u{300}'..='\u{36f}' => {}
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(pairs: &[(&str, &[&str])]) -> SourceEntry {
        let mut attributes = BTreeMap::new();
        for (name, values) in pairs {
            attributes.insert(
                name.to_ascii_lowercase(),
                values
                    .iter()
                    .map(|v| AttributeValue::Text((*v).into()))
                    .collect(),
            );
        }
        SourceEntry {
            dn: "uid=ann,ou=people,dc=example,dc=com".into(),
            guid: "g".into(),
            attributes,
        }
    }

    fn eval(source: &str) -> Vec<String> {
        let e = entry(&[
            ("givenName", &["Zoë"]),
            ("sn", &["Müller"]),
            ("uid", &["zmuller"]),
            ("mail", &["Zoe.Mueller@Example.com"]),
            ("departmentNumber", &["sales"]),
            ("telephoneNumber", &["+1 555 0100", "+1 555 0199"]),
            ("ds-pwp-account-disabled", &["true"]),
        ]);
        evaluate(source, &e).unwrap_or_else(|err| panic!("{source}: {err}"))
    }

    #[test]
    fn entra_style_functions() {
        assert_eq!(eval(r#"Join(" ", [givenName], [sn])"#), ["Zoë Müller"]);
        assert_eq!(
            eval(r#"ToLower(Append([uid], "@example.com"))"#),
            ["zmuller@example.com"]
        );
        assert_eq!(eval(r#"ToUpper(sn)"#), ["MÜLLER"]);
        assert_eq!(
            eval(r#"NormalizeDiacritics(Join(".", [givenName], [sn]))"#),
            ["Zoe.Muller"]
        );
        assert_eq!(eval(r#"Coalesce([nickName], [givenName])"#), ["Zoë"]);
        assert_eq!(
            eval(r#"IIF(departmentNumber == "sales", "Sales", "Staff")"#),
            ["Sales"]
        );
        assert_eq!(
            eval(r#"Switch([departmentNumber], "Other", "hr", "People", "sales", "Revenue")"#),
            ["Revenue"]
        );
        assert_eq!(
            eval(r#"Switch([departmentNumber], "Other", "hr", "People")"#),
            ["Other"]
        );
        assert_eq!(eval(r#"Left([givenName], 1) ~ sn"#), ["ZMüller"]);
        assert_eq!(eval(r#"Mid("abcdef", 2, 3)"#), ["bcd"]);
        assert_eq!(eval(r#"Right("abcdef", 2)"#), ["ef"]);
        assert_eq!(
            eval(r#"Replace([mail], "Example", "example")"#),
            ["Zoe.Mueller@example.com"]
        );
        assert_eq!(eval(r#"SingleValue([telephoneNumber])"#), ["+1 555 0100"]);
        assert_eq!(eval(r#"telephoneNumber"#), ["+1 555 0100", "+1 555 0199"]);
        assert_eq!(
            eval(r#"StripSpaces(SingleValue(telephoneNumber))"#),
            ["+15550100"]
        );
        assert_eq!(eval(r#"Split("a,b,,c", ",")"#), ["a", "b", "c"]);
        assert_eq!(eval(r#"Attribute("ds-pwp-account-disabled")"#), ["true"]);
        assert_eq!(eval(r#"Not(IsPresent([nickName]))"#), ["true"]);
        assert_eq!(eval(r#"IsNullOrEmpty(SN)"#), ["false"]);
        assert_eq!(eval(r#"dn"#), ["uid=ann,ou=people,dc=example,dc=com"]);
        assert!(eval(r#"[nickName]"#).is_empty());
    }

    #[test]
    fn the_attributes_an_expression_reads() {
        assert_eq!(
            referenced_attributes(
                r#"Join(" ", [givenName], sn) ~ Attribute("ds-pwp-account-disabled") ~ dn ~ range(2) | join"#
            ),
            ["ds-pwp-account-disabled", "givenName", "sn"]
        );
        assert!(referenced_attributes("Join(").is_empty());
    }

    #[test]
    fn broken_expressions_say_where() {
        let err = compile(r#"Join(" ", [givenName], [sn]"#).unwrap_err();
        assert!(err.position.is_some(), "{err}");
        let err = compile(r#"ToLower(Apend([uid], "@x"))"#).unwrap_err();
        assert_eq!(err.position, Some(9));
        assert!(err.to_string().contains("unknown function Apend"), "{err}");
        let err = compile(r#"tolower(uid)"#).unwrap_err();
        assert!(err.to_string().contains("did you mean ToLower?"), "{err}");
        // A name in a string is not a call, nor is a keyword or a test before parentheses.
        assert!(compile(r#"Append(uid, " Foo(bar)")"#).is_ok());
        for valid in [
            r#"not (uid == "x")"#,
            r#"uid in ("a", "b")"#,
            r#""A" if (uid) else "B""#,
            r#"uid is divisibleby(3)"#,
        ] {
            assert!(
                compile(valid).is_ok(),
                "{valid}: {:?}",
                compile(valid).err()
            );
        }
    }

    #[test]
    fn runaway_and_failing_expressions_fail_alone() {
        let e = entry(&[("uid", &["x"])]);
        let err = evaluate(r#"Left(uid, "many")"#, &e).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
        // Within the length limit, but more work than any mapping needs.
        let busy = vec!["uid"; 490].join("~");
        let err = evaluate(&busy, &e).unwrap_err();
        assert!(err.to_string().contains("out of fuel"), "{err}");
        let huge = vec!["uid"; 20_000].join("~");
        let err = compile(&huge).unwrap_err();
        assert!(err.to_string().contains("the limit is 2000"), "{err}");
        // Filters and tests of Jinja work too.
        assert_eq!(
            evaluate("uid | upper ~ (sn is defined) | string", &e).unwrap(),
            ["XFalse"]
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn with_value(value: &str) -> SourceEntry {
            entry(&[("v", &[value]), ("w", &["other"])])
        }

        proptest! {
            #[test]
            fn normalize_diacritics_leaves_no_marks_and_is_idempotent(text in "\\PC{0,40}") {
                let once = normalize_diacritics(&text);
                let marks = '\u{300}'..='\u{36f}';
                let clean = once.nfd().all(|c| !marks.contains(&c));
                prop_assert!(clean, "marks left in {:?}", once);
                prop_assert_eq!(normalize_diacritics(&once), once);
            }

            #[test]
            fn left_mid_and_right_take_characters(text in "[^\\x00]{1,30}", n in 0usize..40) {
                let e = with_value(&text);
                let left = evaluate(&format!("Left(v, {n})"), &e).unwrap();
                let expected: String = text.chars().take(n).collect();
                prop_assert_eq!(left.first().cloned().unwrap_or_default(), expected);
                let right = evaluate(&format!("Right(v, {n})"), &e).unwrap();
                let chars: Vec<char> = text.chars().collect();
                let expected: String = chars[chars.len().saturating_sub(n)..].iter().collect();
                prop_assert_eq!(right.first().cloned().unwrap_or_default(), expected);
                let mid = evaluate(&format!("Mid(v, 1, {n})"), &e).unwrap();
                prop_assert_eq!(mid, left);
            }

            #[test]
            fn join_then_split_gives_the_parts_back(parts in prop::collection::vec("[a-z]{1,8}", 1..6)) {
                let list = parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
                let joined = evaluate(&format!("Join(\"|\", [{list}])"), &with_value("x")).unwrap();
                prop_assert_eq!(joined.len(), 1);
                let split = evaluate(&format!("Split(\"{}\", \"|\")", joined[0]), &with_value("x")).unwrap();
                prop_assert_eq!(split, parts);
            }

            #[test]
            fn case_functions_are_idempotent(text in "\\PC{1,30}") {
                let e = with_value(&text);
                let lower = evaluate("ToLower(v)", &e).unwrap();
                let again = evaluate("ToLower(ToLower(v))", &e).unwrap();
                prop_assert_eq!(lower, again);
            }

            #[test]
            fn no_expression_text_makes_compile_or_evaluate_panic(source in "\\PC{0,80}") {
                if compile(&source).is_ok() {
                    let _ = evaluate(&source, &with_value("x"));
                }
            }
        }
    }
}
