//! Properties of the LDIF reader: what a writer produces reads back unchanged, and no input
//! makes it panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use scimbridge_ldap::ldif::parse_ldif_bytes;

/// A value that RFC 2849 allows written plainly: safe characters, no leading space, colon or
/// '<', no trailing space.
fn is_safe(value: &[u8]) -> bool {
    let Some(first) = value.first() else {
        return true;
    };
    value
        .iter()
        .all(|b| (0x01..=0x7f).contains(b) && *b != b'\n' && *b != b'\r')
        && !matches!(first, b' ' | b':' | b'<')
        && value.last() != Some(&b' ')
}

/// Writes a record the way a directory export would, folding long lines at 76 columns.
fn write_record(dn: &str, attributes: &[(String, Vec<u8>)]) -> String {
    let mut lines = vec![format!("dn:: {}", BASE64.encode(dn))];
    for (name, value) in attributes {
        if is_safe(value) {
            lines.push(format!("{name}: {}", String::from_utf8_lossy(value)));
        } else {
            lines.push(format!("{name}:: {}", BASE64.encode(value)));
        }
    }
    let mut out = String::new();
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        let mut first = true;
        for chunk in chars.chunks(76) {
            if !first {
                out.push(' ');
            }
            out.extend(chunk);
            out.push('\n');
            first = false;
        }
    }
    out.push('\n');
    out
}

fn attribute_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,15}".prop_filter("dn is the record's name", |n| {
        !n.eq_ignore_ascii_case("dn") && !n.eq_ignore_ascii_case("changetype")
    })
}

fn record() -> impl Strategy<Value = (String, Vec<(String, Vec<u8>)>)> {
    (
        "[a-z]{1,8}=[^\u{0}\n\r]{1,30}(,[a-z]{1,8}=[a-zA-Z0-9 ]{1,10}){0,3}",
        prop::collection::vec(
            (attribute_name(), prop::collection::vec(any::<u8>(), 0..200)),
            1..8,
        ),
    )
}

proptest! {
    #[test]
    fn written_records_read_back_unchanged(records in prop::collection::vec(record(), 1..5)) {
        let text: String = records.iter().map(|(dn, attrs)| write_record(dn, attrs)).collect();
        let parsed = parse_ldif_bytes(text.as_bytes(), "generated").unwrap();
        prop_assert_eq!(parsed.len(), records.len());
        for (read, (dn, attributes)) in parsed.iter().zip(&records) {
            prop_assert_eq!(&read.dn, dn);
            let read_attributes: Vec<(String, Vec<u8>)> = read
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect();
            prop_assert_eq!(&read_attributes, attributes);
        }
    }

    #[test]
    fn no_input_makes_the_reader_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_ldif_bytes(&bytes, "random");
    }

    #[test]
    fn ldif_like_noise_gives_a_result_or_a_located_error(
        lines in prop::collection::vec("(dn|cn|#|-| |[a-z]{1,5})(:|::|:<)? ?[ -~]{0,40}", 0..40)
    ) {
        let text = lines.join("\n");
        if let Err(e) = parse_ldif_bytes(text.as_bytes(), "noise") {
            prop_assert!(e.line >= 1);
        }
    }
}
