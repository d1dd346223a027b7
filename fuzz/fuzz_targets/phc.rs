//! Stored password hashes (PHC strings) from imports or a damaged database: parsing never panics
//! and never admits parameters beyond the work bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resetd_core::hash::{HashParams, MAX_STORED_M_COST, StoredHash};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some(h) = StoredHash::parse(s) {
        let p = h.params();
        assert!(p.m_cost <= MAX_STORED_M_COST && p.t_cost <= 64 && p.p_cost <= 16);
        let _ = h.weaker_than(HashParams::default());
    }
});
