//! The mapping expression compiler and evaluator on arbitrary text: a value or an error, never
//! a panic, a stack overflow or a hang.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use scimbridge_engine::map::expression::{compile, evaluate};
use scimbridge_model::{AttributeValue, SourceEntry};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if compile(source).is_err() {
        return;
    }
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "givenname".to_owned(),
        vec![AttributeValue::Text("Zoë".into())],
    );
    attributes.insert(
        "mail".to_owned(),
        vec![
            AttributeValue::Text("a@example.com".into()),
            AttributeValue::Text("b@example.com".into()),
        ],
    );
    let entry = SourceEntry {
        dn: "uid=zoe,ou=people,dc=example,dc=com".into(),
        guid: "g".into(),
        attributes,
    };
    let _ = evaluate(source, &entry);
});
