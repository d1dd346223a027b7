//! `GET /v1/{tenant}/breached/range/{prefix}`: the tenant's breach corpus in the Have I Been
//! Pwned range format, so that applications already speaking that API can ask resetd instead of
//! the internet. Who may call it is the tenant's `breached_range` setting.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use resetd_core::model::BreachedRange;
use resetd_core::ports::RangeEntry;
use resetd_core::secret::{hex, random_bytes};

use super::{admin, tenant, ApiResult, NATIVE};
use crate::problem::{Path, Problem};
use crate::surface::Limit;
use crate::{AppState, ClientIp};

/// Have I Been Pwned pads to at least 800 entries plus 0 to 200 more.
const PAD_MIN: usize = 800;
const PAD_SPREAD: usize = 200;

pub(super) async fn range(
    State(s): State<AppState>,
    ip: ClientIp,
    Path((t, prefix)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    // Public on some tenants and a few kilobytes per answer: limited per IP like the policy check.
    s.admit(NATIVE, Limit::PasswordCheck, ip)?;
    let t = tenant(&t)?;
    match s.service.tenant(&t).await?.settings.breached_range {
        BreachedRange::Off => return Err(unavailable()),
        BreachedRange::ApiKey => {
            admin(&s, &t, &headers).await?;
        }
        BreachedRange::Public => {}
    }
    let prefix = parse_prefix(&prefix).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-hash-prefix",
            "Bad Request",
            "The hash prefix must be 5 hexadecimal digits.",
        )
    })?;
    let mut entries = s
        .service
        .breached_range(&t, prefix)
        .await?
        .ok_or_else(unavailable)?;
    let padded = headers
        .get("add-padding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if padded {
        pad(&mut entries, prefix);
    }
    let body = entries
        .iter()
        .map(|e| format!("{}:{}", suffix_hex(&e.sha1), e.count))
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // The prefix reveals part of a password's hash: no shared cache keeps it.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn unavailable() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "breached-range-unavailable",
        "Not Found",
        "This tenant serves no breached-password ranges.",
    )
}

/// Five hex digits, either case, as Have I Been Pwned accepts them.
fn parse_prefix(raw: &str) -> Option<u32> {
    (raw.len() == 5 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(raw, 16).ok())
        .flatten()
}

/// The 35 hex digits after the prefix, upper case.
fn suffix_hex(sha1: &[u8; 20]) -> String {
    hex(sha1)[5..].to_ascii_uppercase()
}

/// Random suffixes with count 0 until the list has 800 to 1000 entries, kept in hash order so
/// that a padded answer looks like an unpadded one.
fn pad(entries: &mut Vec<RangeEntry>, prefix: u32) {
    let [spread] = random_bytes::<1>();
    let target = PAD_MIN + usize::from(spread) * PAD_SPREAD / 255;
    while entries.len() < target {
        let mut sha1: [u8; 20] = random_bytes();
        sha1[0] = (prefix >> 12) as u8;
        sha1[1] = (prefix >> 4) as u8;
        sha1[2] = ((prefix as u8 & 0x0f) << 4) | (sha1[2] & 0x0f);
        if entries.iter().all(|e| e.sha1 != sha1) {
            entries.push(RangeEntry { sha1, count: 0 });
        }
    }
    entries.sort_by_key(|e| e.sha1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_five_hex_digits() {
        assert_eq!(parse_prefix("21BD1"), Some(0x21bd1));
        assert_eq!(parse_prefix("21bd1"), Some(0x21bd1));
        for bad in ["21BD", "21BD12", "21BG1", "+21BD", " 21BD", ""] {
            assert_eq!(parse_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn padding_stays_in_the_prefix_and_in_order() {
        let mut e = vec![];
        pad(&mut e, 0x21bd1);
        assert!((PAD_MIN..=PAD_MIN + PAD_SPREAD).contains(&e.len()));
        assert!(e
            .iter()
            .all(|r| hex(&r.sha1).starts_with("21bd1") && r.count == 0));
        assert!(e.windows(2).all(|w| w[0].sha1 < w[1].sha1));
    }
}
