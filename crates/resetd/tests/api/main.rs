//! resetd's black-box suite as one test binary (one link instead of one per file): each module is
//! a former `tests/<name>.rs`, and `helpers` is the harness they share.
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
mod at_rest;
mod bodies;
mod breached;
mod dialect_alfresco;
mod dialect_crafter;
mod dialect_empowerid;
mod dialect_payabli;
mod dialect_unleash;
mod enumeration;
mod fault_postgres;
mod faults;
mod flow;
mod import;
mod lockout;
mod management;
mod outbox_keys;
mod page;
mod password_check;
mod ratelimit_ipv6;
mod scaleout;
mod secrets;
mod security;
mod slow_bodies;
mod smtp;
mod smtp_outage;
