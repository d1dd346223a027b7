//! resetd's black-box suite as one test binary (one link instead of one per file): one module per
//! topic (a folder when it would pass ~800 lines, e.g. `dialects/crafter/`), and `helpers` is the
//! harness they share: `Server` (the real binary on a free port; `Drop` scans its log for
//! secrets), `TestConfig` for its config, and one typed call per endpoint the tests use.
// Tests may panic, unwrap and expect: the workspace denies these outside tests (issue 14), and
// this crate root covers every module of the suite, helpers included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

mod helpers;

mod abuse;
mod apps;
mod at_rest;
mod backlog;
mod bodies;
mod branding;
mod breached;
mod breached_common;
mod cli;
mod cooldown_notice;
mod crafter_urls;
mod credentials_frame;
mod dialects;
mod enumeration;
mod erasure;
mod fault_postgres;
mod faults;
mod flow;
mod import;
mod keys;
mod ldap;
mod lockout;
mod management;
mod outbox_keys;
mod page;
mod password_check;
mod people_admin;
mod ratelimit_ipv6;
mod ratelimit_surfaces;
mod scaleout;
mod secret_files;
mod secrets;
mod security;
mod slow_bodies;
mod smtp;
mod smtp_outage;
mod traces;
