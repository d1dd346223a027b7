//! Tenants whose passwords land in an application (issue 17 items 2 and 3), against the real
//! counterparts from `resetd_apps::testing`: a running unleash-server 8.2.0 behind resetd's
//! Unleash dialect, and the Standard Webhooks receiver behind the native API.

mod unleash;
mod webhook;

use crate::helpers::Server;

/// Asserts that none of `secrets` reached the server's log so far (the harness's own scan knows
/// the suite's usual passwords, not these tests' admin tokens and signing secrets), outside the
/// demo file transport's line, which logs the link on purpose.
pub fn assert_log_free_of(s: &Server, secrets: &[&str]) {
    let log = s.log();
    for line in log.lines().filter(|l| !l.contains("file transport, demo")) {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret reached the server's log: {secret:.6}…"
            );
        }
    }
}
