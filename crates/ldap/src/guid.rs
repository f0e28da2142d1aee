//! The one printer of binary GUIDs: 16 bytes become the usual `8-4-4-4-12` hex form, in the
//! byte order of the directory that sent them. Other lengths print as plain hex.

/// The order of a binary GUID's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuidLayout {
    /// RFC 4122 network order, as OpenLDAP sends `entryUUID` in content sync controls.
    Rfc4122,
    /// Microsoft's: the first three fields little-endian, as Active Directory's `objectGUID`.
    Microsoft,
}

/// `bytes` as text: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` for 16 bytes, hex otherwise.
pub fn print_guid(bytes: &[u8], layout: GuidLayout) -> String {
    let Ok(bytes) = <[u8; 16]>::try_from(bytes) else {
        return hex(bytes);
    };
    let mut ordered = bytes;
    if layout == GuidLayout::Microsoft {
        ordered[0..4].reverse();
        ordered[4..6].reverse();
        ordered[6..8].reverse();
    }
    format!(
        "{}-{}-{}-{}-{}",
        hex(&ordered[0..4]),
        hex(&ordered[4..6]),
        hex(&ordered[6..8]),
        hex(&ordered[8..10]),
        hex(&ordered[10..16])
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: [u8; 16] = [
        0xa6, 0xe2, 0xf8, 0xe4, 0x2c, 0x1d, 0x5f, 0x4b, 0x9a, 0x3e, 0x01, 0x23, 0x45, 0x67, 0x89,
        0xab,
    ];

    #[test]
    fn rfc_4122_guids_print_in_byte_order() {
        assert_eq!(
            print_guid(&BYTES, GuidLayout::Rfc4122),
            "a6e2f8e4-2c1d-5f4b-9a3e-0123456789ab"
        );
    }

    #[test]
    fn microsoft_guids_print_as_active_directory_does() {
        // objectGUID bytes of {e4f8e2a6-1d2c-4b5f-9a3e-0123456789ab}.
        assert_eq!(
            print_guid(&BYTES, GuidLayout::Microsoft),
            "e4f8e2a6-1d2c-4b5f-9a3e-0123456789ab"
        );
    }

    #[test]
    fn other_lengths_print_as_hex() {
        assert_eq!(print_guid(&[0xab, 0xcd], GuidLayout::Rfc4122), "abcd");
        assert_eq!(print_guid(&[0xab, 0xcd], GuidLayout::Microsoft), "abcd");
    }
}
