//! What a directory's answer means for the port ([`ExternalError`]'s semantics): a definite
//! refusal, a server that cannot serve now, an outcome unknown, a missing entry.

use ldap3::controls::{Control, RawControl};
use ldap3::{LdapError, LdapResult};
use resetd_core::ports::ExternalError;

use crate::ad;

/// The password policy control (draft-behera-ldap-password-policy), request and response.
pub(crate) const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

pub(crate) fn ppolicy_request() -> RawControl {
    RawControl {
        ctype: PPOLICY_OID.to_owned(),
        crit: false,
        val: None,
    }
}

// Result codes (RFC 4511 A.1) this adapter tells apart.
pub(crate) const SUCCESS: u32 = 0;
pub(crate) const SIZE_LIMIT_EXCEEDED: u32 = 4;
const CONSTRAINT_VIOLATION: u32 = 19;
pub(crate) const NO_SUCH_OBJECT: u32 = 32;
pub(crate) const INVALID_CREDENTIALS: u32 = 49;
const INSUFFICIENT_ACCESS: u32 = 50;
const BUSY: u32 = 51;
const UNAVAILABLE: u32 = 52;
const UNWILLING_TO_PERFORM: u32 = 53;

/// The `error` field of the password policy response control, when the server sent one.
pub(crate) fn ppolicy_error(ctrls: &[Control]) -> Option<u8> {
    let value = ctrls
        .iter()
        .find(|c| c.1.ctype == PPOLICY_OID)?
        .1
        .val
        .as_deref()?;
    // PasswordPolicyResponseValue ::= SEQUENCE { warning [0] ... OPTIONAL,
    //                                            error [1] ENUMERATED OPTIONAL }
    let (tag, body, _) = tlv(value)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (tag, content, next) = tlv(rest)?;
        if tag == 0x81 && content.len() == 1 {
            return Some(content[0]);
        }
        rest = next;
    }
    None
}

/// One BER element: (tag, content, what follows). Definite lengths only, as LDAP requires.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn ppolicy_reason(code: u8) -> &'static str {
    match code {
        0 => "password expired",
        1 => "account locked",
        2 => "password must be changed after reset",
        3 => "password modifications not allowed",
        4 => "old password required",
        5 => "password quality is insufficient",
        6 => "password is too short",
        7 => "password was changed too recently",
        8 => "password is in the history of old passwords",
        9 => "password is too long",
        _ => "password policy violation",
    }
}

/// The answer to a password write. `Ok(())` only for success.
pub(crate) fn write_result(result: &LdapResult) -> Result<(), ExternalError> {
    if result.rc == SUCCESS {
        return Ok(());
    }
    let policy = ppolicy_error(&result.ctrls);
    let refused = result.rc == CONSTRAINT_VIOLATION
        || policy.is_some()
        || ad::is_password_restriction(&result.text);
    if refused {
        return Err(ExternalError::Refused(refusal_text(&result.text, policy)));
    }
    Err(match result.rc {
        NO_SUCH_OBJECT => ExternalError::NoAccount,
        BUSY | UNAVAILABLE => ExternalError::Unavailable(describe(result)),
        INSUFFICIENT_ACCESS => ExternalError::Failed(format!(
            "the service account may not write the password ({})",
            describe(result)
        )),
        UNWILLING_TO_PERFORM => ExternalError::Failed(format!(
            "the directory will not write the password ({})",
            describe(result)
        )),
        _ => ExternalError::Failed(describe(result)),
    })
}

/// The directory's own words, with the policy control's reason when it adds one.
fn refusal_text(text: &str, policy: Option<u8>) -> String {
    let text = text.trim();
    match (text.is_empty(), policy) {
        (false, Some(code)) => format!("{text} ({})", ppolicy_reason(code)),
        (false, None) => text.to_owned(),
        (true, Some(code)) => ppolicy_reason(code).to_owned(),
        (true, None) => "the directory's password policy refused the password".to_owned(),
    }
}

/// A result for logs and errors: the code's name and the server's text (never a value we sent).
pub(crate) fn describe(result: &LdapResult) -> String {
    let text = result.text.trim();
    if text.is_empty() {
        format!("result code {}", result.rc)
    } else {
        format!("result code {}: {text}", result.rc)
    }
}

/// A library error before anything was sent (connecting, TLS, StartTLS): nothing changed.
pub(crate) fn unreachable(step: &str, e: &LdapError) -> ExternalError {
    ExternalError::Unavailable(format!("{step}: {}", library_error(e)))
}

/// A library error while a write was on its way: the password may have changed.
pub(crate) fn in_flight(step: &str, e: &LdapError) -> ExternalError {
    match e {
        // The request never left: the connection's task was already gone.
        LdapError::OpSend { .. } => unreachable(step, e),
        _ => ExternalError::Indeterminate(format!("{step}: {}", library_error(e))),
    }
}

/// The library's error text, without the LdapResult dump (whose Display lists every field).
fn library_error(e: &LdapError) -> String {
    match e {
        LdapError::LdapResult { result } => describe(result),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::controls::RawControl;

    fn result(rc: u32, text: &str, ctrl: Option<Vec<u8>>) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.to_owned(),
            refs: vec![],
            ctrls: ctrl
                .map(|val| {
                    vec![Control(
                        None,
                        RawControl {
                            ctype: PPOLICY_OID.to_owned(),
                            crit: false,
                            val: Some(val),
                        },
                    )]
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn ppolicy_control_is_read() {
        // What slapd 2.5 sends for pwdMinLength (error 6, passwordTooShort).
        let too_short = vec![0x30, 0x03, 0x81, 0x01, 0x06];
        assert_eq!(
            ppolicy_error(&result(19, "", Some(too_short.clone())).ctrls),
            Some(6)
        );
        // A warning first ([0] { timeBeforeExpiration [0] 100 }), then the error.
        let with_warning = vec![0x30, 0x07, 0xa0, 0x02, 0x80, 0x00, 0x81, 0x01, 0x08];
        assert_eq!(
            ppolicy_error(&result(19, "", Some(with_warning)).ctrls),
            Some(8)
        );
        assert_eq!(
            ppolicy_error(&result(19, "", Some(vec![0x30, 0x05])).ctrls),
            None
        );
        assert_eq!(
            write_result(&result(
                19,
                "Password fails quality checking policy",
                Some(too_short)
            )),
            Err(ExternalError::Refused(
                "Password fails quality checking policy (password is too short)".to_owned()
            ))
        );
    }

    #[test]
    fn result_codes() {
        assert_eq!(write_result(&result(0, "", None)), Ok(()));
        assert_eq!(
            write_result(&result(19, "Password fails quality checking policy", None)),
            Err(ExternalError::Refused(
                "Password fails quality checking policy".to_owned()
            ))
        );
        assert_eq!(
            write_result(&result(32, "", None)),
            Err(ExternalError::NoAccount)
        );
        assert!(matches!(
            write_result(&result(52, "", None)),
            Err(ExternalError::Unavailable(_))
        ));
        assert!(matches!(
            write_result(&result(50, "", None)),
            Err(ExternalError::Failed(_))
        ));
        // AD's policy refusal by its error code.
        assert!(matches!(
            write_result(&result(
                53,
                "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)",
                None
            )),
            Err(ExternalError::Refused(_))
        ));
    }
}
