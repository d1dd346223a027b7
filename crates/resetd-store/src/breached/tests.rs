//! The index: what goes in comes out, bad input is refused with its line, and a damaged file is
//! refused at open with a reason, never a panic.

use super::*;
use resetd_core::types::Password;

fn sha1_of(pw: &str) -> [u8; 20] {
    resetd_core::ports::password_sha1(&Password::parse(pw).unwrap())
}

fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02X}")).collect()
}

/// A sorted corpus of `n` pseudo-random hashes plus the given passwords.
fn corpus(n: u32, known: &[(&str, u32)]) -> (String, Vec<[u8; 20]>) {
    let mut hashes: Vec<([u8; 20], u32)> = (0..n)
        .map(|i| (sha1_of(&format!("filler-{i}")), i % 97 + 1))
        .collect();
    hashes.extend(known.iter().map(|(p, c)| (sha1_of(p), *c)));
    hashes.sort();
    let text = hashes
        .iter()
        .map(|(h, c)| format!("{}:{c}\r\n", hex(h)))
        .collect();
    (text, hashes.into_iter().map(|(h, _)| h).collect())
}

fn build(text: &str, suffix: usize) -> (tempfile::TempDir, PathBuf, ImportStats) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("breached.idx");
    let stats = import(text.as_bytes(), &path, suffix, 0, |_| {}).unwrap();
    (dir, path, stats)
}

#[test]
fn hits_misses_and_counts() {
    let (text, all) = corpus(
        20_000,
        &[("P@ssw0rd", 52579), ("amber kettle nocturne 58", 2)],
    );
    let (_d, path, stats) = build(&text, FULL_SUFFIX);
    assert_eq!(stats.lines, 20_002);
    assert_eq!(stats.records, 20_002);
    assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
    let idx = BreachIndex::open(&path).unwrap();
    assert_eq!(idx.lookup(&sha1_of("P@ssw0rd")).unwrap(), Some(52579));
    assert_eq!(
        idx.lookup(&sha1_of("amber kettle nocturne 58")).unwrap(),
        Some(2)
    );
    assert_eq!(idx.lookup(&sha1_of("not in the corpus 991")).unwrap(), None);
    for h in all.iter().step_by(97) {
        assert!(idx.lookup(h).unwrap().is_some());
    }
    // The extremes of the hash space have their own buckets.
    assert_eq!(idx.lookup(&[0u8; 20]).unwrap(), None);
    assert_eq!(idx.lookup(&[0xffu8; 20]).unwrap(), None);
}

#[test]
fn a_range_lists_its_bucket_in_order_with_whole_hashes() {
    let (text, all) = corpus(50_000, &[("P@ssw0rd", 52579)]);
    let (_d, path, _) = build(&text, FULL_SUFFIX);
    let idx = BreachIndex::open(&path).unwrap();
    let r = idx.list(0x21bd1).unwrap().unwrap();
    let expected: Vec<[u8; 20]> = all
        .iter()
        .filter(|h| prefix_of(h) == 0x21bd1)
        .copied()
        .collect();
    assert_eq!(r.iter().map(|e| e.sha1).collect::<Vec<_>>(), expected);
    assert!(r
        .iter()
        .any(|e| e.sha1 == sha1_of("P@ssw0rd") && e.count == 52579));
}

#[test]
fn a_truncated_index_still_answers_lookups_but_lists_no_range() {
    let (text, _) = corpus(5_000, &[("P@ssw0rd", 7)]);
    let (_d, path, stats) = build(&text, MIN_SUFFIX);
    assert_eq!(
        stats.bytes,
        HEADER_LEN + FANOUT_LEN + stats.records * (MIN_SUFFIX as u64 + 4)
    );
    let idx = BreachIndex::open(&path).unwrap();
    assert_eq!(idx.lookup(&sha1_of("P@ssw0rd")).unwrap(), Some(7));
    assert_eq!(idx.lookup(&sha1_of("absent")).unwrap(), None);
    assert_eq!(idx.list(0x21bd1).unwrap(), None);
}

#[test]
fn bad_lines_are_refused_with_their_number_and_nothing_is_written() {
    let good = format!("{}:3\n", hex(&[0x10; 20]));
    let cases: Vec<(String, u64, &str)> = vec![
        (format!("{good}nonsense\n"), 2, "SHA1-HEX:COUNT"),
        (format!("{good}{}:1\n", "ab".repeat(16)), 2, "NTLM"),
        (format!("{good}{}:1\n", "zz".repeat(20)), 2, "40 hex"),
        (format!("{good}{}:x1\n", "ab".repeat(20)), 2, "decimal"),
        (format!("{good}{}:\n", "ab".repeat(20)), 2, "decimal"),
        // Out of order, and a duplicate.
        (format!("{good}{}:1\n", "01".repeat(20)), 2, "out of order"),
        (format!("{good}{good}"), 2, "out of order"),
        (
            format!("{}:1{}\n", "ab".repeat(20), "0".repeat(200)),
            1,
            "too long",
        ),
    ];
    for (text, line, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("breached.idx");
        match import(text.as_bytes(), &path, FULL_SUFFIX, 0, |_| {}) {
            Err(IndexError::BadLine { line: l, reason }) => {
                assert_eq!(l, line, "{reason}");
                assert!(reason.contains(words), "{reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file left"
        );
    }
}

#[test]
fn lower_case_hex_and_huge_counts_are_accepted() {
    let text = format!("{}:99999999999\n", "ab".repeat(20));
    let (_d, path, _) = build(&text, FULL_SUFFIX);
    let idx = BreachIndex::open(&path).unwrap();
    assert_eq!(idx.lookup(&[0xab; 20]).unwrap(), Some(u32::MAX));
}

#[test]
fn a_cut_or_foreign_file_is_refused_at_open() {
    let (text, _) = corpus(1_000, &[]);
    let (d, path, _) = build(&text, FULL_SUFFIX);
    let bytes = std::fs::read(&path).unwrap();
    let reasons = |data: &[u8]| {
        let p = d.path().join("damaged.idx");
        std::fs::write(&p, data).unwrap();
        match BreachIndex::open(&p) {
            Err(e @ IndexError::Corrupt { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert!(reasons(&bytes[..bytes.len() - 1]).contains("cut short"));
    assert!(reasons(&bytes[..10]).contains("shorter than the header"));
    assert!(reasons(
        b"SQLite format 3\0 and then some more bytes to pass the header length ........."
    )
    .contains("magic"));
    let mut bad_version = bytes.clone();
    bad_version[8] = 9;
    assert!(reasons(&bad_version).contains("version"));
    let mut bad_fanout = bytes.clone();
    let n = bad_fanout.len();
    bad_fanout[n - 4..].copy_from_slice(&7u32.to_le_bytes());
    assert!(reasons(&bad_fanout).contains("fan-out"));
    assert!(matches!(
        BreachIndex::open(&d.path().join("missing.idx")),
        Err(IndexError::Io { .. })
    ));
}

#[test]
fn an_empty_corpus_makes_an_empty_index() {
    let (_d, path, stats) = build("", FULL_SUFFIX);
    assert_eq!(stats.records, 0);
    let idx = BreachIndex::open(&path).unwrap();
    assert_eq!(idx.lookup(&sha1_of("anything")).unwrap(), None);
    assert_eq!(idx.list(0).unwrap(), Some(vec![]));
}

#[test]
fn out_of_range_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.idx");
    assert!(matches!(
        import(&b""[..], &p, 4, 0, |_| {}),
        Err(IndexError::Options(_))
    ));
    assert!(matches!(
        import(&b""[..], &p, 19, 0, |_| {}),
        Err(IndexError::Options(_))
    ));
}

#[test]
fn progress_is_reported_every_n_lines() {
    let (text, _) = corpus(2_500, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut seen = vec![];
    import(
        text.as_bytes(),
        &dir.path().join("p.idx"),
        FULL_SUFFIX,
        1_000,
        |n| seen.push(n),
    )
    .unwrap();
    assert_eq!(seen, [1_000, 2_000]);
}
