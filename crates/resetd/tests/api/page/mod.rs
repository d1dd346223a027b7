//! Black-box tests of the hosted reset page over real HTTP: security headers, the token leaving the
//! address bar, CSRF refusals, bad input, the forgot-password confirmation and the page's limits.
//! (The browser tests in tests/browser drive the same pages in Chromium.) The page's client,
//! [`Browser`], is in the harness.

use std::time::Duration;

use crate::helpers::config::TestConfig;
use crate::helpers::page::{Browser, Page};
use crate::helpers::{cli, token_from_mail, Server};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

const STRONG: &str = "purple elephants juggle quietly";

fn assert_page_headers(p: &Page, what: &str) {
    let h = |n: &str| {
        p.headers
            .get(n)
            .unwrap_or_else(|| panic!("{what}: no {n}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    let csp = h("content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}");
    if p.status != StatusCode::SEE_OTHER {
        assert_eq!(h("content-type"), "text/html; charset=utf-8", "{what}");
        assert!(p.body.starts_with("<!DOCTYPE html>"), "{what}: {}", p.body);
        // No inline script or style anywhere (the CSP would block it anyway).
        assert!(
            !p.body.contains("<script>") && !p.body.contains("style="),
            "{what}"
        );
    }
}

fn config() -> TestConfig {
    TestConfig::fast()
}

/// Requests a reset for `login` through the API and returns the emailed link (the n-th mail).
async fn emailed_link(s: &Server, login: &str, email: &str, nth: usize) -> String {
    let token = s.reset_token(login, email, nth).await;
    format!("{}/reset/default?token={token}", s.base)
}

mod defences;
mod forgot;
mod reset;
