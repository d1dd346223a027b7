//! The adapter against a real OpenLDAP slapd (started per test on a free loopback port by
//! `resetd_ldap::testing::Slapd`): lookups, password writes checked with the real `ldapwhoami`,
//! the password policy, binds as the person, and a directory that is down, hung or loses an
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod directory;
mod helpers;
mod outages;
mod passwords;
mod samba_ad;
