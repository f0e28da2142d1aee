//! Reader for RFC 2849 LDIF files containing *content* records (directory
//! entries), as produced by `ldapsearch`, `slapcat`, `db2ldif` and similar
//! tools.
//!
//! Change records (`changetype:` / `control:`) and URL values (`name:< url`)
//! are rejected with a clear error. Every error carries the source name and the
//! 1-based physical line number where the offending (possibly folded) line
//! starts.
//!
//! Folded lines are joined at byte level before any UTF-8 validation, so a
//! value folded in the middle of a multi-byte UTF-8 sequence decodes correctly
//! when the input is given as bytes ([`parse_ldif_bytes`]). (Such a file is not
//! valid UTF-8 as a whole, so it cannot be passed to [`parse_ldif`] as `&str`.)

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 alphabet; padding accepted but not required.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest excerpt of input quoted in an error message.
const SNIPPET_CHARS: usize = 60;

/// An entry as the directory gave it, before the engine reads it as a `SourceEntry`: an LDIF
/// content record (RFC 2849's word) or an entry an LDAP search returned. Elsewhere "record"
/// means what the state store knows of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The distinguished name, as written (not normalised).
    pub dn: String,
    /// 1-based line of the `dn:` line.
    pub line: usize,
    /// Attribute values in file order (one entry per value).
    pub attributes: Vec<RawAttribute>,
}

/// One attribute value of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    /// Attribute description as written, including options such as `"cn;lang-de"`.
    pub name: String,
    /// The raw value (base64 values are decoded).
    pub value: Vec<u8>,
}

impl RawAttribute {
    /// The value as text; `Some` when the value is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

impl RawEntry {
    /// All values of an attribute, attribute name compared case-insensitively
    /// (ignoring no options: `"cn"` does not match `"cn;lang-de"`).
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // The returned iterator may not borrow `name`, so compare against the
        // first matching attribute's own name (case-insensitive equality is
        // transitive), which avoids allocating a copy of `name`.
        let start = self
            .attributes
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
            .unwrap_or(self.attributes.len());
        let rest = &self.attributes[start..];
        let wanted = rest.first().map_or("", |a| a.name.as_str());
        rest.iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(wanted))
            .map(|a| a.value.as_slice())
    }

    /// First UTF-8 value of the attribute, if any (values that are not valid
    /// UTF-8 are skipped).
    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.values(name).find_map(|v| std::str::from_utf8(v).ok())
    }
}

/// A parse error; displays as `source:line: reason`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{source_name}:{line}: {reason}")]
pub struct LdifError {
    /// Name of the input (usually the file path).
    pub source_name: String,
    /// 1-based physical line where the problem starts.
    pub line: usize,
    /// Human-readable description of the problem.
    pub reason: String,
}

/// Parses LDIF text containing content records.
///
/// `source_name` is used in errors (usually the file path).
pub fn parse_ldif(text: &str, source_name: &str) -> Result<Vec<RawEntry>, LdifError> {
    parse_ldif_bytes(text.as_bytes(), source_name)
}

/// Like [`parse_ldif`], but for raw bytes, e.g. a file read with
/// `std::fs::read`. Use this when a tool may have folded lines in the middle
/// of a multi-byte UTF-8 sequence (which makes the file as a whole invalid
/// UTF-8 although every unfolded value is valid). Plain values and the DN must
/// still be valid UTF-8 once unfolded.
pub fn parse_ldif_bytes(input: &[u8], source_name: &str) -> Result<Vec<RawEntry>, LdifError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut parser = Parser {
        source_name,
        records: Vec::new(),
        current: None,
        seen_content: false,
    };
    let mut pending: Option<LogicalLine<'_>> = None;

    for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);

        if line.is_empty() {
            if let Some(logical) = pending.take() {
                parser.logical_line(logical)?;
            }
            parser.end_record();
            continue;
        }

        if let Some(rest) = line.strip_prefix(b" ") {
            match pending.as_mut() {
                Some(logical) => {
                    if !logical.comment {
                        logical.text.to_mut().extend_from_slice(rest);
                    }
                }
                None => {
                    return Err(parser.error(
                        line_no,
                        "continuation line (starting with a space) has no preceding line to continue"
                            .to_owned(),
                    ));
                }
            }
            continue;
        }

        if let Some(logical) = pending.take() {
            parser.logical_line(logical)?;
        }
        pending = Some(LogicalLine {
            line: line_no,
            comment: line.starts_with(b"#"),
            text: Cow::Borrowed(line),
        });
    }

    if let Some(logical) = pending.take() {
        parser.logical_line(logical)?;
    }
    parser.end_record();
    Ok(parser.records)
}

/// A line after unfolding its continuation lines.
struct LogicalLine<'i> {
    /// 1-based physical line where it starts.
    line: usize,
    comment: bool,
    text: Cow<'i, [u8]>,
}

struct Parser<'s> {
    source_name: &'s str,
    records: Vec<RawEntry>,
    current: Option<RawEntry>,
    /// Whether any non-comment line has been seen (the version line must be first).
    seen_content: bool,
}

impl Parser<'_> {
    fn error(&self, line: usize, reason: String) -> LdifError {
        LdifError {
            source_name: self.source_name.to_owned(),
            line,
            reason,
        }
    }

    fn end_record(&mut self) {
        if let Some(record) = self.current.take() {
            self.records.push(record);
        }
    }

    fn logical_line(&mut self, logical: LogicalLine<'_>) -> Result<(), LdifError> {
        if logical.comment {
            return Ok(());
        }
        let line = logical.line;
        let text: &[u8] = &logical.text;

        let Some(colon) = text.iter().position(|&b| b == b':') else {
            return Err(self.error(
                line,
                format!("expected \"name: value\", found \"{}\"", snippet(text)),
            ));
        };
        let name = self.attribute_description(&text[..colon], line)?;
        let raw_value = &text[colon + 1..];

        let first_in_file = !self.seen_content;
        self.seen_content = true;
        if first_in_file && name.eq_ignore_ascii_case("version") {
            let value = self.value(name, raw_value, line)?;
            let version = String::from_utf8_lossy(&value);
            let version = version.trim();
            if version != "1" {
                return Err(self.error(
                    line,
                    format!(
                        "unsupported LDIF version \"{}\" (only version 1 is supported)",
                        truncate(version)
                    ),
                ));
            }
            return Ok(());
        }

        if self.current.is_none() {
            if !name.eq_ignore_ascii_case("dn") {
                return Err(self.error(
                    line,
                    format!("record does not start with dn: (found \"{name}:\")"),
                ));
            }
            let value = self.value(name, raw_value, line)?;
            let dn = match String::from_utf8(value) {
                Ok(dn) => dn,
                Err(_) => {
                    return Err(self.error(line, "dn is not valid UTF-8".to_owned()));
                }
            };
            // A DN names the entry in scope checks, logs and the audit trail; RFC 4514 writes
            // a NUL in a DN escaped, as \00.
            if dn.contains('\0') {
                return Err(self.error(
                    line,
                    "dn contains a NUL character; write it escaped in the DN, as \\00".to_owned(),
                ));
            }
            self.current = Some(RawEntry {
                dn,
                line,
                attributes: Vec::new(),
            });
            return Ok(());
        }

        if name.eq_ignore_ascii_case("dn") {
            return Err(self.error(
                line,
                "unexpected dn: line inside a record (records must be separated by a blank line)"
                    .to_owned(),
            ));
        }
        if name.eq_ignore_ascii_case("changetype") || name.eq_ignore_ascii_case("control") {
            let value = self.value(name, raw_value, line)?;
            let value = String::from_utf8_lossy(&value);
            return Err(self.error(
                line,
                format!(
                    "change records are not supported; only content records ({}: {})",
                    name.to_ascii_lowercase(),
                    truncate(value.trim())
                ),
            ));
        }

        let value = self.value(name, raw_value, line)?;
        let attribute = RawAttribute {
            name: name.to_owned(),
            value,
        };
        if let Some(record) = self.current.as_mut() {
            record.attributes.push(attribute);
        }
        Ok(())
    }

    /// Validates an attribute description: `(keystring | numericoid) *(";" option)`.
    fn attribute_description<'t>(&self, name: &'t [u8], line: usize) -> Result<&'t str, LdifError> {
        let invalid = || {
            self.error(
                line,
                format!("invalid attribute description \"{}\"", snippet(name)),
            )
        };
        let mut parts = name.split(|&b| b == b';');
        let attr_type = parts.next().unwrap_or_default();
        if !(is_keystring(attr_type) || is_numeric_oid(attr_type)) {
            return Err(invalid());
        }
        for option in parts {
            if option.is_empty()
                || !option
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid());
            }
        }
        // All bytes were checked to be ASCII above.
        std::str::from_utf8(name).map_err(|_| invalid())
    }

    /// Decodes the part of a line after `name:`.
    fn value(&self, name: &str, raw: &[u8], line: usize) -> Result<Vec<u8>, LdifError> {
        match raw.first() {
            Some(b':') => {
                let encoded = raw[1..].trim_ascii();
                BASE64.decode(encoded).map_err(|e| {
                    self.error(
                        line,
                        format!("invalid base64 value for attribute {name} ({e})"),
                    )
                })
            }
            Some(b'<') => Err(self.error(
                line,
                format!("URL values (\":<\") are not supported: attribute {name}"),
            )),
            _ => {
                let start = raw.iter().position(|&b| b != b' ').unwrap_or(raw.len());
                let value = &raw[start..];
                if let Some(&first @ (b':' | b'<')) = value.first() {
                    return Err(self.error(
                        line,
                        format!(
                            "plain value of attribute {name} must not start with '{}'; \
                             use base64 (\"{name}:: ...\") instead",
                            char::from(first)
                        ),
                    ));
                }
                if std::str::from_utf8(value).is_err() {
                    return Err(self.error(
                        line,
                        format!(
                            "plain value of attribute {name} is not valid UTF-8; \
                             use base64 (\"{name}:: ...\") instead"
                        ),
                    ));
                }
                // RFC 2849 leaves NUL and CR out of SAFE-CHAR: a NUL would reach the target
                // unseen, and a CR is the remnant of a broken line ending.
                if let Some(unsafe_char) = value.iter().find(|&&b| b == 0 || b == b'\r') {
                    let shown = if *unsafe_char == 0 {
                        "NUL"
                    } else {
                        "carriage return (CR)"
                    };
                    return Err(self.error(
                        line,
                        format!(
                            "plain value of attribute {name} contains a {shown} character, \
                             which LDIF allows only in base64 values; \
                             use base64 (\"{name}:: ...\") instead"
                        ),
                    ));
                }
                Ok(value.to_vec())
            }
        }
    }
}

/// `ALPHA *(ALPHA / DIGIT / "-")`
fn is_keystring(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

/// `number 1*("." number)` where `number = DIGIT / (LDIGIT 1*DIGIT)`.
fn is_numeric_oid(s: &[u8]) -> bool {
    let mut count = 0;
    for number in s.split(|&b| b == b'.') {
        let valid = !number.is_empty()
            && number.iter().all(u8::is_ascii_digit)
            && (number.len() == 1 || number[0] != b'0');
        if !valid {
            return false;
        }
        count += 1;
    }
    count >= 2
}

/// Lossy, length-limited excerpt of input for error messages.
fn snippet(bytes: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(bytes)).into_owned()
}

fn truncate(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(SNIPPET_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &s[..end])),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<RawEntry> {
        parse_ldif(text, "test.ldif").unwrap()
    }

    fn err(text: &str) -> LdifError {
        parse_ldif(text, "test.ldif").unwrap_err()
    }

    fn attr(name: &str, value: &[u8]) -> RawAttribute {
        RawAttribute {
            name: name.to_owned(),
            value: value.to_vec(),
        }
    }

    #[track_caller]
    fn assert_err(text: &str, line: usize, needle: &str) {
        let e = err(text);
        assert_eq!(e.line, line, "wrong line for error: {e}");
        assert_eq!(e.source_name, "test.ldif");
        assert!(
            e.reason.contains(needle),
            "reason {:?} does not mention {needle:?}",
            e.reason
        );
    }

    #[test]
    fn simple_records() {
        let recs = parse(
            "dn: cn=a,dc=example\ncn: a\nobjectClass: person\n\n\
             dn: cn=b,dc=example\ncn: b\n",
        );
        assert_eq!(
            recs,
            vec![
                RawEntry {
                    dn: "cn=a,dc=example".into(),
                    line: 1,
                    attributes: vec![attr("cn", b"a"), attr("objectClass", b"person")],
                },
                RawEntry {
                    dn: "cn=b,dc=example".into(),
                    line: 5,
                    attributes: vec![attr("cn", b"b")],
                },
            ]
        );
    }

    #[test]
    fn empty_input() {
        assert!(parse("").is_empty());
        assert!(parse("\n\n\n").is_empty());
        assert!(parse("# only a comment\n").is_empty());
        assert!(parse("version: 1\n").is_empty());
    }

    #[test]
    fn version_line() {
        let recs = parse("version: 1\n\ndn: cn=a\ncn: a\n");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].line, 3);
        // Also accepted without a blank line after it, and after comments.
        let recs = parse("# header\nversion:1\ndn: cn=a\n");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].dn, "cn=a");
    }

    #[test]
    fn bad_version() {
        assert_err("version: 2\n\ndn: cn=a\n", 1, "version \"2\"");
        assert_err("\n# c\nversion: x\n", 3, "unsupported LDIF version");
    }

    #[test]
    fn version_not_first_is_not_special() {
        assert_err(
            "dn: cn=a\n\nversion: 1\n",
            3,
            "record does not start with dn:",
        );
    }

    #[test]
    fn crlf_line_endings() {
        let recs = parse("version: 1\r\n\r\ndn: cn=a\r\ncn: a\r\n b\r\nsn: c\r\n\r\ndn: cn=b\r\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0].attributes,
            vec![attr("cn", b"ab"), attr("sn", b"c")]
        );
        assert_eq!(recs[1].dn, "cn=b");
        assert_eq!(recs[1].line, 8);
    }

    #[test]
    fn bom_is_skipped() {
        let recs = parse("\u{feff}version: 1\n\ndn: cn=a\ncn: a\n");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].line, 3);
        let recs = parse("\u{feff}dn: cn=a\n");
        assert_eq!(recs[0].dn, "cn=a");
        assert_eq!(recs[0].line, 1);
    }

    #[test]
    fn blank_lines_separate_records() {
        let recs = parse("\n\n\ndn: cn=a\ncn: a\n\n\n\ndn: cn=b\n\n\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].line, 4);
        assert_eq!(recs[1].line, 9);
        // No trailing newline at all.
        let recs = parse("dn: cn=a\ncn: a");
        assert_eq!(recs[0].attributes, vec![attr("cn", b"a")]);
    }

    #[test]
    fn comments_are_ignored() {
        let recs = parse(
            "# leading comment\n\
             dn: cn=a\n\
             # comment inside a record\n\
             cn: a\n\
             #folded comment\n  continues here\n with: a colon\n\
             sn: b\n",
        );
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].attributes, vec![attr("cn", b"a"), attr("sn", b"b")]);
    }

    #[test]
    fn folded_lines() {
        let recs = parse(
            "dn: cn=a very long na\n me,dc=exam\n ple\n\
             description: first\n  second\n\n",
        );
        assert_eq!(recs[0].dn, "cn=a very long name,dc=example");
        // Only the single leading space is removed.
        assert_eq!(recs[0].first_text("description"), Some("first second"));
    }

    #[test]
    fn folded_attribute_name() {
        let recs = parse("dn: cn=a\ndescrip\n tion: x\n");
        assert_eq!(recs[0].attributes, vec![attr("description", b"x")]);
    }

    #[test]
    fn folded_utf8_at_char_boundary() {
        let recs = parse("dn: cn=a\ncn: Zo\n ë Mü\n ller\n");
        assert_eq!(recs[0].first_text("cn"), Some("Zoë Müller"));
    }

    #[test]
    fn fold_inside_multibyte_utf8_sequence() {
        // "ë" is C3 AB and "龙" is E9 BE 99; fold in the middle of both. The
        // file as a whole is not valid UTF-8, so use the bytes entry point.
        let input: &[u8] = b"dn: cn=Zo\xC3\n \xABe\ncn: \xE9\n \xBE\n \x99\n";
        let recs = parse_ldif_bytes(input, "test.ldif").unwrap();
        assert_eq!(recs[0].dn, "cn=Zoëe");
        assert_eq!(recs[0].first_text("cn"), Some("龙"));
    }

    #[test]
    fn invalid_utf8_plain_value_in_bytes() {
        let e = parse_ldif_bytes(b"dn: cn=a\n\ncn: x\n", "f").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_ldif_bytes(b"dn: cn=a\ncn: caf\xE9\n", "f").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("not valid UTF-8"), "{}", e.reason);
        let e = parse_ldif_bytes(b"dn: cn=caf\xE9\n", "f").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("UTF-8"), "{}", e.reason);
    }

    #[test]
    fn base64_values() {
        // "Zoë Müller" and the binary bytes 00 FF FE 80.
        let recs = parse(
            "dn: cn=a\n\
             cn:: Wm/DqyBNw7xsbGVy\n\
             jpegPhoto:: AP/+gA==\n\
             description::   aGVsbG8=  \n",
        );
        let rec = &recs[0];
        assert_eq!(rec.first_text("cn"), Some("Zoë Müller"));
        assert_eq!(
            rec.attributes[1],
            attr("jpegPhoto", &[0x00, 0xFF, 0xFE, 0x80])
        );
        assert_eq!(rec.attributes[1].text(), None);
        assert_eq!(rec.first_text("jpegPhoto"), None);
        assert_eq!(rec.first_text("description"), Some("hello"));
    }

    #[test]
    fn base64_without_padding_and_empty() {
        let recs = parse("dn: cn=a\ndescription:: aGVsbG8\ncn::\n");
        assert_eq!(recs[0].first_text("description"), Some("hello"));
        assert_eq!(recs[0].first_text("cn"), Some(""));
    }

    #[test]
    fn folded_base64() {
        // "李小龙" = 5p2O5bCP6b6Z; fold splits base64 quads and the decoded
        // multibyte characters.
        let recs = parse("dn: cn=a\ncn:: 5p\n 2O5b\n CP6b6Z\n");
        assert_eq!(recs[0].first_text("cn"), Some("李小龙"));
    }

    #[test]
    fn base64_dn() {
        // "cn=Zoë,dc=example"
        let recs = parse("dn:: Y249Wm/DqyxkYz1leGFtcGxl\ncn: x\n");
        assert_eq!(recs[0].dn, "cn=Zoë,dc=example");
    }

    #[test]
    fn base64_dn_must_be_utf8() {
        assert_err("\ndn:: AP/+gA==\n", 2, "UTF-8");
    }

    #[test]
    fn nul_in_a_plain_value_is_refused_with_its_line_and_attribute() {
        let e = parse_ldif_bytes(b"dn: cn=a\ncn: a\ndescription: x\0y\n", "f").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.reason,
            "plain value of attribute description contains a NUL character, which LDIF allows \
             only in base64 values; use base64 (\"description:: ...\") instead"
        );
        // Folded in, it is reported on the line where the value starts.
        let e = parse_ldif_bytes(b"dn: cn=a\ncn: a\n b\0\n", "f").unwrap_err();
        assert_eq!(
            (e.line, e.reason.contains("attribute cn contains a NUL")),
            (2, true)
        );
        // In a plain DN too.
        let e = parse_ldif_bytes(b"dn: cn=a\0b\ncn: a\n", "f").unwrap_err();
        assert_eq!(
            (e.line, e.reason.contains("attribute dn contains a NUL")),
            (1, true)
        );
    }

    #[test]
    fn bare_carriage_return_in_a_plain_value_is_refused() {
        assert_err(
            "dn: cn=a\ncn: a\rb\n",
            2,
            "attribute cn contains a carriage return (CR)",
        );
        // The line ending's own CR is not part of the value, a second one is.
        assert_err("dn: cn=a\r\ncn: ab\r\r\n", 2, "carriage return");
        assert_eq!(
            parse("dn: cn=a\r\ncn: ab\r\n")[0].first_text("cn"),
            Some("ab")
        );
    }

    #[test]
    fn base64_values_keep_nul_and_cr_bytes() {
        // "a\0b" and "a\rb"
        let recs = parse("dn: cn=a\ndescription:: YQBi\nsn:: YQ1i\n");
        assert_eq!(
            recs[0].attributes,
            vec![attr("description", b"a\0b"), attr("sn", b"a\rb")]
        );
    }

    #[test]
    fn dn_with_nul_is_refused_even_in_base64() {
        // "cn=a\0b"
        assert_err("dn:: Y249YQBi\ncn: x\n", 1, "dn contains a NUL character");
    }

    #[test]
    fn multiple_values() {
        let recs = parse(
            "dn: cn=a\nobjectClass: top\nobjectClass: person\ncn: a\nobjectclass: inetOrgPerson\n",
        );
        let classes: Vec<&[u8]> = recs[0].values("objectClass").collect();
        assert_eq!(
            classes,
            vec![&b"top"[..], &b"person"[..], &b"inetOrgPerson"[..]]
        );
        // Attribute names are kept as written.
        assert_eq!(recs[0].attributes[3].name, "objectclass");
    }

    #[test]
    fn empty_values() {
        let recs = parse("dn: cn=a\ndescription:\nsn:   \ncn: x\n");
        assert_eq!(
            recs[0].attributes,
            vec![attr("description", b""), attr("sn", b""), attr("cn", b"x")]
        );
        // Empty DN (root DSE) is allowed too.
        assert_eq!(parse("dn:\n")[0].dn, "");
    }

    #[test]
    fn record_without_attributes() {
        let recs = parse("dn: cn=a\n\ndn: cn=b\ncn: b\n");
        assert_eq!(recs[0].attributes, vec![]);
        assert_eq!(recs[1].attributes.len(), 1);
    }

    #[test]
    fn utf8_plain_values() {
        let recs = parse("dn: cn=Zoë Müller,dc=example\ncn: Zoë Müller\nsn: 李小龙\n");
        assert_eq!(recs[0].dn, "cn=Zoë Müller,dc=example");
        assert_eq!(recs[0].first_text("cn"), Some("Zoë Müller"));
        assert_eq!(recs[0].first_text("SN"), Some("李小龙"));
    }

    #[test]
    fn value_spacing() {
        let recs = parse("dn:cn=a\ncn:x\nsn:    y  \n");
        assert_eq!(recs[0].dn, "cn=a");
        assert_eq!(recs[0].first_text("cn"), Some("x"));
        // Trailing spaces are part of the value.
        assert_eq!(recs[0].first_text("sn"), Some("y  "));
    }

    #[test]
    fn values_case_insensitive_and_options() {
        let recs = parse(
            "dn: cn=a\ncn: plain\nCN;lang-de: deutsch\nCn: second\n1.2.840.113556.1.4.221: oid\nuserCertificate;binary:: AQI=\n",
        );
        let rec = &recs[0];
        let cn: Vec<&[u8]> = rec.values("CN").collect();
        assert_eq!(cn, vec![&b"plain"[..], &b"second"[..]]);
        let de: Vec<&[u8]> = rec.values("cn;LANG-DE").collect();
        assert_eq!(de, vec![&b"deutsch"[..]]);
        assert_eq!(rec.values("cn;lang").count(), 0);
        assert_eq!(rec.first_text("1.2.840.113556.1.4.221"), Some("oid"));
        assert_eq!(
            rec.values("usercertificate;binary").next(),
            Some(&[1u8, 2][..])
        );
        assert_eq!(rec.values("missing").count(), 0);
        assert_eq!(rec.first_text("missing"), None);
        assert_eq!(rec.attributes[1].name, "CN;lang-de");
    }

    #[test]
    fn first_text_skips_binary_values() {
        let recs = parse("dn: cn=a\nx:: /w==\nx: text\n");
        assert_eq!(recs[0].first_text("x"), Some("text"));
    }

    #[test]
    fn url_values_rejected() {
        assert_err(
            "dn: cn=a\ncn: a\njpegPhoto:< file:///tmp/a.jpg\n",
            3,
            "URL values (\":<\") are not supported: attribute jpegPhoto",
        );
    }

    #[test]
    fn plain_value_starting_with_colon_or_lt_rejected() {
        assert_err("dn: cn=a\ncn: :x\n", 2, "must not start with ':'");
        assert_err(
            "dn: cn=a\n\ndn: cn=b\ncn:  <x\n",
            4,
            "must not start with '<'",
        );
    }

    #[test]
    fn missing_dn() {
        assert_err("version: 1\n\ncn: a\n", 3, "record does not start with dn:");
        assert_err(
            "dn: cn=a\n\n\n# c\nobjectClass: top\n",
            5,
            "record does not start with dn:",
        );
    }

    #[test]
    fn dn_inside_record_rejected() {
        assert_err("dn: cn=a\ncn: a\ndn: cn=b\n", 3, "blank line");
    }

    #[test]
    fn change_records_rejected() {
        assert_err(
            "dn: cn=a\nchangetype: modify\nreplace: cn\n",
            2,
            "change records are not supported; only content records (changetype: modify)",
        );
        assert_err(
            "dn: cn=a\n\ndn: cn=b\nChangeType: add\n",
            4,
            "change records are not supported",
        );
        assert_err(
            "dn: cn=a\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n",
            2,
            "change records are not supported",
        );
    }

    #[test]
    fn bad_base64() {
        assert_err(
            "dn: cn=a\ncn: a\ndescription:: not*base64!\n",
            3,
            "invalid base64 value for attribute description",
        );
        assert_err("dn:: %%%\n", 1, "invalid base64 value for attribute dn");
    }

    #[test]
    fn bad_base64_folded_reports_start_line() {
        assert_err("dn: cn=a\ncn:: aGVs\n bG8=!\n", 2, "invalid base64");
    }

    #[test]
    fn bad_attribute_names() {
        for (name, line) in [
            ("c n", 2),
            ("cn ", 2),
            ("1cn", 2),
            ("-cn", 2),
            ("cn;", 2),
            ("cn;lang_de", 2),
            ("1.2.", 2),
            ("1", 2),
            ("01.2", 2),
            ("c_n", 2),
            ("", 2),
        ] {
            let text = format!("dn: cn=a\n{name}: x\n");
            let e = err(&text);
            assert_eq!(e.line, line, "{name:?}: {e}");
            assert_eq!(
                e.reason,
                format!("invalid attribute description \"{name}\""),
                "{name:?}"
            );
        }
        for ok in [
            "a",
            "a-1",
            "cn;lang-de;x-foo",
            "2.5.4.3",
            "0.9.2342",
            "2.5.4.3;binary",
        ] {
            parse(&format!("dn: cn=a\n{ok}: x\n"));
        }
    }

    #[test]
    fn no_colon() {
        assert_err("dn: cn=a\ncn a\n", 2, "expected \"name: value\"");
        assert_err("dn: cn=a\n-\n", 2, "expected \"name: value\"");
        assert_err("garbage\n", 1, "expected \"name: value\"");
    }

    #[test]
    fn continuation_at_start() {
        assert_err(" dn: cn=a\n", 1, "continuation line");
        assert_err("\u{feff} dn: cn=a\n", 1, "continuation line");
        assert_err("dn: cn=a\ncn: a\n\n continued\n", 4, "continuation line");
    }

    #[test]
    fn tab_is_not_a_continuation() {
        assert_err("dn: cn=a\n\tcn: a\n", 2, "invalid attribute description");
    }

    #[test]
    fn error_display() {
        let e = parse_ldif("dn: cn=a\ncn a\n", "/data/export.ldif").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/data/export.ldif:2: expected \"name: value\", found \"cn a\""
        );
    }

    #[test]
    fn error_on_line_after_folded_line() {
        assert_err("dn: cn=a\ncn: a\n b\n c\nbad line\n", 5, "expected");
    }

    #[test]
    fn long_snippets_are_truncated() {
        let long = "x".repeat(500);
        let e = err(&format!("dn: cn=a\n{long}\n"));
        assert!(e.reason.len() < 120, "{}", e.reason);
        assert!(e.reason.ends_with("…\""), "{}", e.reason);
    }

    #[test]
    fn many_records() {
        let mut text = String::from("version: 1\n\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "dn: uid=user{i},ou=people,dc=example\nobjectClass: inetOrgPerson\nuid: user{i}\n\
                 cn:: Wm/DqyBNw7xsbGVy\ndescription: a long description that has been fol\n ded\n\n"
            ));
        }
        let recs = parse(&text);
        assert_eq!(recs.len(), 20_000);
        assert_eq!(recs[19_999].dn, "uid=user19999,ou=people,dc=example");
        assert_eq!(recs[19_999].line, 3 + 19_999 * 7);
        assert_eq!(
            recs[5].first_text("description"),
            Some("a long description that has been folded")
        );
    }
}
