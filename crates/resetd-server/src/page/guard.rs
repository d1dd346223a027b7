//! The page's defences: response headers, its two cookies, and the CSRF check.
//!
//! - Every page answer carries a strict Content-Security-Policy (no inline script or style),
//!   `Referrer-Policy: no-referrer`, `Cache-Control: no-store`, `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff` and `Cross-Origin-Opener-Policy: same-origin`.
//! - The reset token lives in an HttpOnly cookie scoped to `/reset/{tenant}` once the first
//!   request has moved it out of the address bar. It is `SameSite=Lax`, not `Strict`: the link
//!   is opened from a mail program or a webmail site, and browsers withhold `Strict` cookies on
//!   every request of a navigation another site started, redirects included, so the page would
//!   never see the token it just stored. `Lax` is still withheld from other sites' POSTs.
//! - CSRF: a random value in a `SameSite=Strict` HttpOnly cookie and a hidden form field must
//!   match (double submit, compared in constant time), and when the browser says where the
//!   request came from (`Sec-Fetch-Site`, `Origin`) that must be this site. `Origin: null`, which
//!   browsers send for forms on `no-referrer` pages, counts as not saying.
//! - Over https the cookies get `Secure` and the `__Host-`/`__Secure-` name prefixes, so another
//!   site on the same domain cannot plant them.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use resetd_core::secret::{hex, random_bytes, SecretHash};

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the page security headers to `res` (keeping a `Cache-Control` already set).
pub fn secure(res: &mut Response) {
    let h = res.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Cookie names and attributes for one deployment (plain http or https).
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    /// Whether the public URL is https (then cookies are `Secure` and prefixed).
    pub secure: bool,
}

/// Length of a CSRF value: 32 random bytes in hex.
const CSRF_LEN: usize = 64;

impl Cookies {
    /// Cookie settings for the service reachable at `public_url`.
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            secure: public_url.starts_with("https://"),
        }
    }

    /// The reset token cookie's name.
    pub fn token_name(&self) -> &'static str {
        if self.secure {
            "__Secure-resetd_reset"
        } else {
            "resetd_reset"
        }
    }

    /// The CSRF cookie's name.
    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-resetd_csrf"
        } else {
            "resetd_csrf"
        }
    }

    fn attributes(&self, path: &str, max_age: i64, same_site: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
    }

    /// Stores a reset token for the page at `path` for `max_age` seconds.
    pub fn set_token(&self, path: &str, value: &str, max_age: i64) -> HeaderValue {
        let v = format!(
            "{}={value}; {}",
            self.token_name(),
            self.attributes(path, max_age, "Lax")
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| self.clear_token(path))
    }

    /// Deletes the reset token cookie of the page at `path`.
    pub fn clear_token(&self, path: &str) -> HeaderValue {
        let v = format!(
            "{}=; {}",
            self.token_name(),
            self.attributes(path, 0, "Lax")
        );
        #[allow(
            clippy::expect_used,
            reason = "the name is a constant and the attributes are ASCII built here"
        )]
        HeaderValue::from_str(&v).expect("cookie attributes are ASCII")
    }

    /// Stores the CSRF value (for the browser session, on every page path).
    pub fn set_csrf(&self, value: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let v = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.csrf_name()
        );
        #[allow(
            clippy::expect_used,
            reason = "the name is a constant and the value hex (the caller's invariant)"
        )]
        HeaderValue::from_str(&v).expect("a CSRF value is hex")
    }

    /// The reset token cookie, if the browser sent one.
    pub fn token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookie(headers, self.token_name())
    }

    /// The browser's CSRF value if it has a well-formed one, else a fresh one; the bool says
    /// whether it is fresh (and must be set).
    pub fn csrf_value(&self, headers: &HeaderMap) -> (String, bool) {
        match cookie(headers, self.csrf_name()).filter(|v| is_csrf_value(v)) {
            Some(v) => (v.to_owned(), false),
            None => (hex(&random_bytes::<32>()), true),
        }
    }

    /// Whether a form post is the page's own: the CSRF cookie and field match, and the browser's
    /// own statement of the request's origin (when it makes one) is this site.
    pub fn form_is_genuine(&self, headers: &HeaderMap, field: &str, public_origin: &str) -> bool {
        let Some(cookie) = cookie(headers, self.csrf_name()).filter(|v| is_csrf_value(v)) else {
            return false;
        };
        // Hashing both sides makes the comparison constant-time whatever the field's length.
        let tokens_match = SecretHash::of(cookie).ct_eq(&SecretHash::of(field));
        tokens_match && same_origin(headers, public_origin)
    }
}

fn is_csrf_value(v: &str) -> bool {
    v.len() == CSRF_LEN && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the browser's `Sec-Fetch-Site` and `Origin` (when sent and meaningful) name this site.
fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        if site != "same-origin" {
            return false;
        }
    }
    match get("origin") {
        None | Some("null") => true,
        Some(origin) => origin.eq_ignore_ascii_case(public_origin),
    }
}

/// The `scheme://host[:port]` part of a URL.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn csrf_needs_matching_cookie_and_field_and_same_origin() {
        let c = Cookies::for_public_url("http://127.0.0.1:8080");
        let v = "a".repeat(64);
        let cookie = format!("other=1; resetd_csrf={v}");
        let origin = "http://127.0.0.1:8080";
        let ok = headers(&[("cookie", &cookie)]);
        assert!(c.form_is_genuine(&ok, &v, origin));
        assert!(!c.form_is_genuine(&ok, &"b".repeat(64), origin));
        assert!(!c.form_is_genuine(&ok, "", origin));
        assert!(!c.form_is_genuine(&headers(&[]), &v, origin));
        let short = headers(&[("cookie", "resetd_csrf=abc")]);
        assert!(!c.form_is_genuine(&short, "abc", origin));
        let null = headers(&[
            ("cookie", &cookie),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(c.form_is_genuine(&null, &v, origin));
        let foreign = headers(&[("cookie", &cookie), ("origin", "https://evil.test")]);
        assert!(!c.form_is_genuine(&foreign, &v, origin));
        let cross = headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]);
        assert!(!c.form_is_genuine(&cross, &v, origin));
    }

    #[test]
    fn https_cookies_are_secure_and_prefixed() {
        let c = Cookies::for_public_url("https://id.example.com");
        let set = c.set_token("/reset/acme", "tok", 60);
        let s = set.to_str().unwrap();
        assert!(s.starts_with("__Secure-resetd_reset=tok; Path=/reset/acme; Max-Age=60; HttpOnly; SameSite=Lax; Secure"), "{s}");
        assert!(c
            .set_csrf("ab")
            .to_str()
            .unwrap()
            .starts_with("__Host-resetd_csrf=ab; Path=/;"));
        let plain = Cookies::for_public_url("http://localhost:8080");
        assert!(!plain.set_csrf("ab").to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://id.example.com/base"),
            "https://id.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
