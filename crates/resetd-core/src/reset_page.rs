//! The reset page URL a caller names (Crafter's `resetPasswordUrl`), and the checks that make a
//! prefix match mean what it says.
//!
//! An allowed prefix such as `https://app.example.com/reset/` is only a promise if every server
//! between the browser and the application resolves the rest of the URL *below* it. So the path
//! is refused when any server could resolve it elsewhere: dot segments in any spelling (plain,
//! percent-encoded at any depth, with Java/Tomcat path parameters as in `..;`, or in Unicode
//! characters that normalise to dots such as U+2025 `‥`), empty segments (`//evil.com` reads as
//! a host to some routers), backslashes (a separator for Windows servers and browsers), and
//! control characters hidden behind percent-encoding.

use unicode_normalization::UnicodeNormalization;

use crate::types::InvalidInput;

/// A reset page URL named by the caller of a request (Crafter's `resetPasswordUrl`). It is only
/// ever used after it matched an allowed prefix of a registered client ([`crate::model::Client::allows`]).
///
/// It is kept with its origin spelled one way ([`normalise_origin`]): `HTTPS://APP.EXAMPLE/reset`
/// and `https://app.example:443/reset` are the page `https://app.example/reset` for every
/// browser, so they match the prefixes that page matches, and the emailed link is that spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPageUrl(String);

impl ResetPageUrl {
    /// Parses an absolute http(s) URL of at most 2048 characters without white space, control
    /// characters, backslashes, user information, or a path that could resolve outside its
    /// prefix (see the module notes), so that what a prefix matches is what a browser will open.
    /// The scheme may be in any letter case. A fragment is allowed (single-page apps route with
    /// `#/reset`); the token then follows inside it, as Crafter does.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let field = "resetPasswordUrl";
        let bad = |reason: &str| Err(InvalidInput::new(field, reason));
        let Some((_, rest)) = split_scheme(s) else {
            return bad("must start with https:// or http://");
        };
        if s.len() > 2048 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad("must be an absolute URL of at most 2048 characters");
        }
        if s.contains('\\') {
            return bad("must not contain a backslash");
        }
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return bad("must name a host and no user information");
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        if let Err(reason) = check_path(path) {
            return bad(reason);
        }
        Ok(Self(normalise_origin(s)))
    }

    /// Whether `prefix` allows this URL: the URL starts with it and the match ends at a boundary,
    /// that is the URL ends there or continues with `/`, `?` or `#`, or the prefix reaches past
    /// the host and ends in `/`, `?`, `&` or `=`. So `https://app.example.com/reset` does not
    /// allow `https://app.example.com/reset-evil`, and `https://app.example.com` does not allow
    /// `https://app.example.com.evil.com/`. Both sides are compared with their origin normalised
    /// ([`normalise_origin`]); the path, query and fragment are compared as written (a path is
    /// case-sensitive for most servers).
    pub fn allowed_by(&self, prefix: &str) -> bool {
        let prefix = normalise_origin(prefix);
        let Some(rest) = self.0.strip_prefix(prefix.as_str()) else {
            return false;
        };
        let Some((_, after_scheme)) = prefix.split_once("://") else {
            return false;
        };
        if after_scheme.is_empty() {
            return false;
        }
        let at_boundary = rest.is_empty() || rest.starts_with(['/', '?', '#']);
        let prefix_has_path = after_scheme.contains(['/', '?', '#']);
        at_boundary || (prefix_has_path && prefix.ends_with(['/', '?', '&', '=']))
    }

    /// The link for `token`: the URL (its origin normalised), then `?` (or `&` when it already
    /// has a query), then `param=token` (Crafter's rule).
    pub fn link(&self, param: &str, token: &str) -> String {
        let sep = if self.0.contains('?') { '&' } else { '?' };
        format!("{}{sep}{param}={token}", self.0)
    }

    /// The URL with its origin normalised.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The scheme of an http(s) URL in lower case and what follows `://`, whatever the scheme's
/// letter case (RFC 3986 §3.1: schemes are case-insensitive).
fn split_scheme(s: &str) -> Option<(&'static str, &str)> {
    ["https", "http"].into_iter().find_map(|scheme| {
        let head = s.get(..scheme.len() + 3)?;
        let (name, sep) = head.split_at(scheme.len());
        (name.eq_ignore_ascii_case(scheme) && sep == "://").then(|| (scheme, &s[head.len()..]))
    })
}

/// `url` (a URL or a prefix of one) with its origin spelled as browsers resolve it: scheme and
/// host in lower case and the scheme's default port (`:443`, `:80`) dropped, the rest verbatim.
/// Only ASCII letters are folded: browsers fold nothing else before IDNA, and IDNA mapping
/// (`ＡＰＰ` → `app`, `K` Kelvin → `k`) is not done here, so such a host never equals an
/// allowed ASCII one and stays refused. Any other port, an empty port (`host:`) or a
/// zero-padded one (`:0443`) is left as it is, so it matches only a prefix spelled the same
/// way. Text that does not start with an http(s) scheme is returned unchanged.
fn normalise_origin(url: &str) -> String {
    let Some((scheme, rest)) = split_scheme(url) else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if let Some(host) = authority.strip_suffix(default_port) {
        // Only a bracketed IPv6 host has colons of its own (`[::1]:443`); anything else with
        // two colons is no host and port, so it is left for the prefix match to refuse.
        if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) {
            authority.truncate(host.len());
        }
    }
    format!("{scheme}://{authority}{tail}")
}

/// Checks the path (from the first `/` up to `?` or `#`); the error is the reason shown to the
/// caller.
fn check_path(path: &str) -> Result<(), &'static str> {
    // Decoded until nothing changes: a proxy that decodes once and an application that decodes
    // again see `%252e` as `.`, so every depth counts. Each round that changes anything removes
    // at least two bytes, so this ends.
    let mut decoded = path.as_bytes().to_vec();
    loop {
        let next = percent_decode(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    let decoded = String::from_utf8_lossy(&decoded);
    if decoded.contains('\\') {
        return Err("must not contain a backslash");
    }
    if decoded.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters");
    }
    if decoded.chars().any(looks_like_a_dot) {
        return Err("must not contain characters that look like dots");
    }
    // `/` alone (or nothing) is the root; otherwise the segments after the leading `/`.
    let Some(below_root) = decoded.strip_prefix('/') else {
        return Ok(()); // empty: the URL is just the origin
    };
    let segments: Vec<&str> = below_root.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        // Java servlet containers (Tomcat, Jetty: where Crafter apps run) drop path parameters
        // after `;` before resolving, so `..;x` is `..` there.
        let name = segment.split(';').next().unwrap_or("");
        // Windows servers also ignore trailing dots and spaces: `.. ` and `...` resolve up too.
        let trimmed = name.trim_end_matches([' ', '.']);
        if !name.is_empty() && trimmed.is_empty() {
            return Err("must not contain dot segments");
        }
        // A trailing `/` is an ordinary directory URL; an empty segment anywhere else (`//`)
        // turns the rest into a host name for some routers and proxies.
        if name.is_empty() && !(i == last && segment.is_empty()) {
            return Err("must not contain empty path segments (//)");
        }
    }
    Ok(())
}

/// One round of percent-decoding; a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Whether `c` is a non-ASCII character that is, or normalises (NFKC) to something containing,
/// a full stop: `‥` (U+2025) becomes `..`, `．` (U+FF0E) becomes `.`. Also the full stops of other
/// scripts and dot-like punctuation that do not normalise to `.` but that a lenient server or a
/// reader may take for one.
fn looks_like_a_dot(c: char) -> bool {
    const LOOK_ALIKES: &[char] = &[
        '\u{00B7}',  // middle dot
        '\u{0387}',  // Greek ano teleia
        '\u{06D4}',  // Arabic full stop
        '\u{0701}',  // Syriac supralinear full stop
        '\u{0702}',  // Syriac sublinear full stop
        '\u{2027}',  // hyphenation point
        '\u{2219}',  // bullet operator
        '\u{22C5}',  // dot operator
        '\u{3002}',  // ideographic full stop
        '\u{FF61}',  // halfwidth ideographic full stop
        '\u{A4F8}',  // Lisu letter tone mya ti
        '\u{A60E}',  // Vai full stop
        '\u{10A50}', // Kharoshthi punctuation dot
        '\u{1D16D}', // musical symbol combining augmentation dot
    ];
    !c.is_ascii() && (LOOK_ALIKES.contains(&c) || std::iter::once(c).nfkc().any(|n| n == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_page_urls_are_checked_and_matched_at_boundaries() {
        let u = |s: &str| ResetPageUrl::parse(s).unwrap();
        let url = u("https://app.example.com/reset");
        assert!(url.allowed_by("https://app.example.com/"));
        assert!(url.allowed_by("https://app.example.com/reset"));
        assert!(!url.allowed_by("https://app.example.com/res"));
        assert!(!url.allowed_by("https://other.example.com/"));
        assert!(!url.allowed_by(""));
        assert!(u("https://app.example.com/reset?x=1").allowed_by("https://app.example.com/reset"));
        assert!(u("https://app.example.com/reset/page").allowed_by("https://app.example.com/reset"));
        // A prefix without a path must not let another host through.
        assert!(!u("https://app.example.com.evil.com/").allowed_by("https://app.example.com"));
        assert!(u("https://app.example.com/").allowed_by("https://app.example.com"));
        assert!(
            !u("https://app.example.com/reset-evil").allowed_by("https://app.example.com/reset")
        );
        assert!(!u("http://app.example.com/reset").allowed_by("https://app.example.com/"));

        assert_eq!(
            url.link("tokenId", "abc"),
            "https://app.example.com/reset?tokenId=abc"
        );
        let spa = u("https://app.example.com/#/reset");
        assert!(spa.allowed_by("https://app.example.com/"));
        assert!(!u("https://app.example.com#x").allowed_by("https://app.example.com/"));
        // The host ends at `#`: this is app.example.com, whatever follows.
        assert!(u("https://app.example.com#@evil.com/").allowed_by("https://app.example.com"));
        assert!(!u("https://evil.com#app.example.com/").allowed_by("https://app.example.com/"));
        assert_eq!(
            spa.link("tokenId", "abc"),
            "https://app.example.com/#/reset?tokenId=abc"
        );
        assert_eq!(
            u("https://app.example.com/reset?lang=de").link("tokenId", "abc"),
            "https://app.example.com/reset?lang=de&tokenId=abc"
        );
        for bad in [
            "app.example.com/reset",
            "javascript:alert(1)",
            "https:///reset",
            "https://user@app.example.com/",
            "https://app.example.com/a b",
            "https://app.example.com/reset/../admin",
            "https://app.example.com/reset/%2E%2E/admin",
            "https://app.example.com\\@evil.com/",
            "https://app.example.com/\r\n",
        ] {
            assert!(ResetPageUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(
            ResetPageUrl::parse(&format!("https://a.example.com/{}", "x".repeat(2048))).is_err()
        );
    }

    #[test]
    fn paths_that_resolve_outside_their_prefix_are_refused_in_every_spelling() {
        for (bad, why) in [
            ("https://app.example.com/reset/..;/admin", "dot segments"),
            (
                "https://app.example.com/reset/..;jsessionid=1/admin",
                "dot segments",
            ),
            ("https://app.example.com/reset/.;/admin", "dot segments"),
            ("https://app.example.com/reset/%252e%252e/x", "dot segments"),
            (
                "https://app.example.com/reset/%25252E%25252e/x",
                "dot segments",
            ),
            ("https://app.example.com/reset/.%2e/x", "dot segments"),
            ("https://app.example.com/reset/%2e%2e%3b/x", "dot segments"),
            ("https://app.example.com/reset/...", "dot segments"),
            ("https://app.example.com/reset/..%20/x", "dot segments"),
            ("https://app.example.com/reset/..", "dot segments"),
            ("https://app.example.com/reset/\u{2025}/x", "look like dots"),
            (
                "https://app.example.com/reset/%E2%80%A5/x",
                "look like dots",
            ),
            (
                "https://app.example.com/reset/%25E2%2580%25A5/x",
                "look like dots",
            ),
            (
                "https://app.example.com/reset/\u{FF0E}\u{FF0E}/x",
                "look like dots",
            ),
            (
                "https://app.example.com/reset/\u{3002}\u{3002}/x",
                "look like dots",
            ),
            (
                "https://app.example.com/reset/\u{2024}\u{2024}/x",
                "look like dots",
            ),
            ("https://app.example.com//evil.com/", "empty path segments"),
            ("https://app.example.com/reset//x", "empty path segments"),
            (
                "https://app.example.com/reset/%2F%2Fevil.com/",
                "empty path segments",
            ),
            ("https://app.example.com/reset/;/x", "empty path segments"),
            ("https://app.example.com/reset%5C..%5Cadmin", "backslash"),
            ("https://app.example.com/reset%255C/x", "backslash"),
            ("https://app.example.com/reset/%00/x", "control characters"),
            ("https://app.example.com/reset/%0d%0a", "control characters"),
        ] {
            let e = ResetPageUrl::parse(bad).expect_err(bad);
            assert_eq!(e.field, "resetPasswordUrl");
            assert!(e.reason.contains(why), "{bad}: {}", e.reason);
        }
        // Ordinary URLs stay allowed: dots inside names, a trailing slash, path parameters,
        // encoded characters that are no separators, non-ASCII letters, a `%` that encodes
        // nothing, SPA fragments and queries with anything in them.
        for good in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/reset/",
            "https://app.example.com/.well-known/reset",
            "https://app.example.com/v1.2/reset.html",
            "https://app.example.com/reset;jsessionid=abc",
            "https://app.example.com/reset%20page/",
            "https://app.example.com/passwort-zur%C3%BCcksetzen",
            "https://app.example.com/zurücksetzen",
            "https://app.example.com/100%/x",
            "https://app.example.com/#/reset",
            "https://app.example.com/reset?next=../x//y",
            "https://app.example.com:8443/reset",
        ] {
            assert!(ResetPageUrl::parse(good).is_ok(), "{good}");
        }
    }

    /// Issue 15 item 4: spellings of the same origin match; everything else the allow-list
    /// refused before is still refused.
    #[test]
    fn same_origin_spellings_match_and_nothing_else_does() {
        let u = |s: &str| ResetPageUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.reason));
        let prefix = "https://app.example.com/reset";
        for same in [
            "HTTPS://APP.EXAMPLE.COM/reset",
            "Https://App.Example.Com/reset",
            "https://app.example.com:443/reset",
            "HTTPS://APP.EXAMPLE.COM:443/reset/page?x=1",
            "https://app.example.com:443/reset#/step",
        ] {
            assert!(u(same).allowed_by(prefix), "{same}");
        }
        assert_eq!(
            u("HTTPS://APP.Example.COM:443/reset?Lang=DE").link("tokenId", "abc"),
            "https://app.example.com/reset?Lang=DE&tokenId=abc"
        );
        assert!(u("HTTP://APP.EXAMPLE.COM:80/").allowed_by("http://app.example.com/"));
        // The operator's prefix is read the same way.
        assert!(u("https://app.example.com/reset").allowed_by("HTTPS://App.Example.com:443/"));
        assert!(u("https://app.example.com/").allowed_by("https://app.example.com:443"));
        assert!(u("https://[::1]:443/reset").allowed_by("https://[::1]/"));

        for other in [
            // Another port, the default port of the other scheme, or another scheme.
            "https://app.example.com:8443/reset",
            "https://app.example.com:80/reset",
            "http://app.example.com/reset",
            "http://app.example.com:443/reset",
            "HTTP://APP.EXAMPLE.COM/reset",
            // Ports that browsers also read as 443 or as none, but that a prefix must spell out.
            "https://app.example.com:0443/reset",
            "https://app.example.com:/reset",
            // The path, query and fragment stay case-sensitive.
            "https://app.example.com/RESET",
            "https://app.example.com/Reset/page",
            // Other hosts that look alike: a trailing dot, IDN and punycode look-alikes (Cyrillic
            // `а`), full-width letters, the Kelvin sign (`K` folds to `k` only in Unicode), a
            // longer host, a host hidden after the prefix's host.
            "https://app.example.com./reset",
            "https://\u{430}pp.example.com/reset",
            "https://xn--pp-6kc.example.com/reset",
            "https://\u{FF41}pp.example.com/reset",
            "https://APP.EXAMPLE.COM.evil.com/reset",
            "https://app.example.com.evil.com:443/reset",
            "https://evil.com/?https://app.example.com/reset",
        ] {
            assert!(!u(other).allowed_by(prefix), "{other}");
        }
        assert!(!u("https://\u{212A}it.example.com/").allowed_by("https://kit.example.com/"));
        assert!(!u("https://[::443]/").allowed_by("https://[::]/"));

        // Refused at parsing, whatever the letter case: user information (also in upper case,
        // or with a default port), a backslash, no host, or another scheme.
        for (bad, why) in [
            ("HTTPS://USER@APP.EXAMPLE.COM/reset", "no user information"),
            (
                "https://user:pw@app.example.com:443/reset",
                "no user information",
            ),
            (
                "HTTPS://app.example.com:443@evil.com/reset",
                "no user information",
            ),
            ("HTTPS://", "no user information"),
            ("HTTPS://app.example.com\\@evil.com/", "backslash"),
            (
                "HTTPS:/app.example.com/reset",
                "must start with https:// or http://",
            ),
            (
                "FTP://app.example.com/reset",
                "must start with https:// or http://",
            ),
            ("JAVASCRIPT:alert(1)", "must start with https:// or http://"),
            ("HTTPS://APP.EXAMPLE.COM/reset/../admin", "dot segments"),
        ] {
            let e = ResetPageUrl::parse(bad).expect_err(bad);
            assert!(e.reason.contains(why), "{bad}: {}", e.reason);
        }
    }

    #[test]
    fn origins_are_normalised_only_in_scheme_host_and_default_port() {
        for (raw, normal) in [
            ("HTTPS://A.EXAMPLE/P?Q#F", "https://a.example/P?Q#F"),
            ("https://a.example:443", "https://a.example"),
            ("http://a.example:80?x", "http://a.example?x"),
            ("http://a.example:443/", "http://a.example:443/"),
            ("https://a.example:80/", "https://a.example:80/"),
            ("https://a.example:8443/", "https://a.example:8443/"),
            ("https://[::1]:443/", "https://[::1]/"),
            ("https://:443/", "https://:443/"),
            ("https://a:b:443/", "https://a:b:443/"),
            ("https://\u{C4}PP.example/", "https://\u{C4}pp.example/"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(normalise_origin(raw), normal, "{raw}");
        }
    }

    #[test]
    fn percent_decoding_leaves_stray_percent_signs() {
        assert_eq!(percent_decode(b"%2e%2E%zz%4"), b"..%zz%4");
        assert_eq!(percent_decode(b"%"), b"%");
        assert_eq!(percent_decode(b"a%41"), b"aA");
    }
}
