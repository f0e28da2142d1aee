//! The LDIF reader on arbitrary bytes: a result or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = scimbridge_ldap::ldif::parse_ldif_bytes(data, "fuzz") {
        for record in records {
            // Every record the reader accepts has a DN and a line.
            assert!(record.line >= 1);
        }
    }
});
