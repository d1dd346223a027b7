//! What Active Directory does differently: the password is the `unicodePwd` attribute, written as
//! the UTF-16LE encoding of the password in double quotes (over an encrypted connection only); the
//! stable id `objectGUID` is 16 bytes in Microsoft's mixed-endian GUID layout; an account is
//! disabled by bit 2 (`ACCOUNTDISABLE`) of `userAccountControl`.

/// `unicodePwd`'s value for a password.
pub(crate) fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// An `objectGUID` as AD's tools show it (`{3F2504E0-4F89-11D3-9A0C-0305E82C3301}` without the
/// braces, lower case): the first three groups are little-endian on the wire.
pub(crate) fn guid_string(raw: &[u8]) -> Option<String> {
    let b: &[u8; 16] = raw.try_into().ok()?;
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        hex(&b[8..10]),
        hex(&b[10..16])
    ))
}

const ACCOUNTDISABLE: u32 = 0x2;

/// Whether `userAccountControl` (a decimal string) marks the account disabled. An unreadable
/// value counts as disabled: no link goes to an account whose state is unknown.
pub(crate) fn uac_disabled(value: &str) -> bool {
    value
        .trim()
        .parse::<i64>()
        .map(|v| (v as u32) & ACCOUNTDISABLE != 0)
        .unwrap_or(true)
}

/// AD's error text for a password its policy refuses carries this code (ERROR_PASSWORD_RESTRICTION,
/// 0x52D) even when the result code is not constraintViolation.
pub(crate) fn is_password_restriction(text: &str) -> bool {
    text.contains("0000052D")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(
            unicode_pwd("Ab1"),
            vec![b'"', 0, b'A', 0, b'b', 0, b'1', 0, b'"', 0]
        );
        // Outside the BMP: a surrogate pair, each half little-endian.
        assert_eq!(
            unicode_pwd("é😀"),
            vec![b'"', 0, 0xe9, 0x00, 0x3d, 0xd8, 0x00, 0xde, b'"', 0]
        );
    }

    #[test]
    fn guid_layout() {
        // The GUID 3f2504e0-4f89-11d3-9a0c-0305e82c3301 as AD stores it.
        let raw = [
            0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c,
            0x33, 0x01,
        ];
        assert_eq!(
            guid_string(&raw).unwrap(),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
        );
        assert_eq!(guid_string(&raw[..15]), None);
    }

    #[test]
    fn disabled_bit() {
        assert!(!uac_disabled("512")); // NORMAL_ACCOUNT
        assert!(uac_disabled("514")); // NORMAL_ACCOUNT | ACCOUNTDISABLE
        assert!(!uac_disabled("66048")); // DONT_EXPIRE_PASSWORD | NORMAL_ACCOUNT
        assert!(uac_disabled("junk"));
    }
}
