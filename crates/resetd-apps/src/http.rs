//! One HTTP call with the port's error semantics: what failed before anything reached the
//! application is `Unavailable`, what may have reached it is `Indeterminate` for a write.

use std::error::Error as _;

use reqwest::{RequestBuilder, StatusCode};
use resetd_core::ports::ExternalError;

/// The most of an answer's body that is read (an Unleash user list, a receiver's error text).
const BODY_CAP: usize = 1 << 20;
/// The longest reason taken from an application's refusal.
const REASON_CHARS: usize = 200;

/// Whether the call may change something, which decides what a lost answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// A lookup or a sign-in check: a lost answer changed nothing.
    Read,
    /// A password write: a lost answer may mean it happened.
    Write,
}

/// An answer that came back in full.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub json: bool,
    pub body: Vec<u8>,
}

/// Sends `request` and reads the answer (bounded in size, and in time by the client's timeout).
/// `what` names the system in error texts.
pub(crate) async fn send(
    request: RequestBuilder,
    call: Call,
    what: &str,
) -> Result<Answer, ExternalError> {
    let mut response = request.send().await.map_err(|e| lost(&e, call, what))?;
    let status = response.status();
    let json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > BODY_CAP {
                    if call == Call::Write {
                        break;
                    }
                    return Err(ExternalError::Failed(format!(
                        "{what} answered HTTP {} with a body over {BODY_CAP} bytes",
                        status.as_u16()
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            // A write's status line is its definite answer (a 2xx means the application took the
            // password); the body is only detail, so a broken one is cut short, not an error.
            Err(_) if call == Call::Write => break,
            Err(e) => {
                return Err(ExternalError::Unavailable(format!(
                    "{what}: the answer broke off: {}",
                    chain(&e)
                )))
            }
        }
    }
    Ok(Answer { status, json, body })
}

/// Maps a transport failure: nothing connected means nothing changed; anything later is unknown
/// for a write.
fn lost(e: &reqwest::Error, call: Call, what: &str) -> ExternalError {
    let text = format!("{what}: {}", chain(e));
    if e.is_connect() || e.is_builder() || call == Call::Read {
        ExternalError::Unavailable(text)
    } else {
        ExternalError::Indeterminate(text)
    }
}

/// The error and its causes, without the URL (a path may carry an id; keep texts short).
fn chain(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A short, printable reason from an application's error body: JSON's `message` (or `error`,
/// `detail`), else the text itself; its first line, control characters dropped, at most
/// [`REASON_CHARS`] characters. `None` when there is nothing usable, or when it repeats
/// `password` (an application echoing the password must not carry it into resetd's answers).
pub(crate) fn reason(answer: &Answer, password: Option<&str>) -> Option<String> {
    let text = String::from_utf8_lossy(&answer.body);
    let picked = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => ["message", "error", "detail"]
            .iter()
            .find_map(|k| map.get(*k).and_then(|v| v.as_str()).map(str::to_owned))?,
        Ok(serde_json::Value::String(s)) => s,
        Ok(_) => return None,
        Err(_) if answer.json => return None,
        Err(_) => text.into_owned(),
    };
    let line: String = picked
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())?
        .chars()
        .filter(|c| !c.is_control())
        .take(REASON_CHARS)
        .collect();
    let line = line.trim();
    if line.is_empty() || password.is_some_and(|p| !p.is_empty() && line.contains(p)) {
        return None;
    }
    Some(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: bool, body: &str) -> Answer {
        Answer {
            status: StatusCode::BAD_REQUEST,
            json,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reason_takes_the_json_message_or_the_first_text_line() {
        assert_eq!(
            reason(&answer(true, r#"{"message":"too short","x":1}"#), None).as_deref(),
            Some("too short")
        );
        assert_eq!(
            reason(&answer(false, "\n  weak password \u{7}\nsecond line"), None).as_deref(),
            Some("weak password")
        );
        assert_eq!(reason(&answer(true, "not json"), None), None);
        assert_eq!(reason(&answer(true, "[1,2]"), None), None);
        let long = "x".repeat(1000);
        assert_eq!(
            reason(&answer(false, &long), None).map(|r| r.chars().count()),
            Some(200)
        );
    }

    #[test]
    fn reason_is_dropped_when_it_repeats_the_password() {
        let a = answer(false, "hunter2-Hunter2 is a bad password");
        assert_eq!(reason(&a, Some("hunter2-Hunter2")), None);
        assert!(reason(&a, Some("something else")).is_some());
    }
}
