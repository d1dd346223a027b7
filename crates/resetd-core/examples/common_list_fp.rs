//! Measures the bundled common-password list (issue 16, item 1): how often diceware-style
//! passphrases are refused by it (its false-positive rate), how often the whole policy calls them
//! `common`, and what one lookup costs.
//!
//! `cargo run --release -p resetd-core --example common_list_fp -- WORDLIST [PHRASES] [SEED]`
//!
//! WORDLIST is one word a line, optionally after a dice number and a tab (the EFF long list as
//! Debian's `diceware` package ships it: /usr/lib/python3/dist-packages/diceware/wordlists/
//! wordlist_en_eff.txt). Passphrases of 4 to 6 words are drawn with a seeded generator, so a run
//! is repeatable, in three shapes: lower case with spaces, Capitalised-With-Hyphens and a digit,
//! and run together.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use std::time::Instant;

use resetd_core::policy::{common_list, PasswordPolicy, PersonalContext};
use resetd_core::types::Password;

/// SplitMix64: repeatable, and good enough to pick words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn capitalised(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: common_list_fp WORDLIST [PHRASES] [SEED]");
        std::process::exit(2);
    };
    let phrases: usize = args.get(1).map_or(100_000, |n| n.parse().unwrap());
    let seed: u64 = args.get(2).map_or(16, |n| n.parse().unwrap());
    let text = std::fs::read_to_string(path).unwrap();
    let words: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().trim())
        .filter(|w| !w.is_empty())
        .collect();

    let t = Instant::now();
    common_list::warm();
    println!(
        "list: {} distinct entries, built in {:.1} ms",
        common_list::len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let alone = words.iter().filter(|w| common_list::contains(w)).count();
    println!(
        "single words of the list refused: {alone} of {} ({:.1} %)",
        words.len(),
        100.0 * alone as f64 / words.len() as f64
    );

    let mut rng = Rng(seed);
    let mut shapes: [(&str, usize, Vec<String>); 3] = [
        ("lower case, spaces", 0, Vec::new()),
        ("Capitalised-Hyphens-7", 0, Vec::new()),
        ("runtogether", 0, Vec::new()),
    ];
    for _ in 0..phrases {
        let n = 4 + rng.below(3);
        let pick: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        let digit = rng.below(10);
        let forms = [
            pick.join(" "),
            format!(
                "{}-{digit}",
                pick.iter()
                    .map(|w| capitalised(w))
                    .collect::<Vec<_>>()
                    .join("-")
            ),
            pick.concat(),
        ];
        for (shape, form) in shapes.iter_mut().zip(forms) {
            if common_list::contains(&form) {
                shape.1 += 1;
                if shape.2.len() < 5 {
                    shape.2.push(form);
                }
            }
        }
    }
    for (name, hits, examples) in &shapes {
        println!(
            "passphrases ({name}) refused by the list: {hits} of {phrases} ({:.4} %) {examples:?}",
            100.0 * *hits as f64 / phrases as f64
        );
    }

    // Shorter than the issue asks, to show where the list starts to bite: two words.
    let mut rng = Rng(seed ^ 0x2222);
    let (mut spaced, mut joined) = (0, 0);
    for _ in 0..phrases {
        let (a, b) = (words[rng.below(words.len())], words[rng.below(words.len())]);
        spaced += usize::from(common_list::contains(&format!("{a} {b}")));
        joined += usize::from(common_list::contains(&format!("{a}{b}")));
    }
    println!(
        "two words refused by the list: spaced {spaced}, run together {joined}, of {phrases} each"
    );

    // The whole policy (zxcvbn included) costs milliseconds per password: a sample.
    let sample = phrases.min(2_000);
    let policy = PasswordPolicy::default();
    let mut rng = Rng(seed ^ 0xA5A5);
    let mut common = 0;
    for _ in 0..sample {
        let n = 4 + rng.below(3);
        let pick: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        let pw = Password::parse(&pick.join(" ")).unwrap();
        let v = policy.check(&pw, &PersonalContext::default());
        if v.violations.iter().any(|v| v.code == "common") {
            common += 1;
        }
    }
    println!(
        "passphrases (lower case, spaces) the whole policy calls common: {common} of {sample}"
    );

    // One lookup's cost, over the eleven and the first passphrases.
    let mut probes: Vec<String> = [
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
        "1!1!1!1!1!1!1!1!1!1!",
        "8675309867530986",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rng = Rng(seed ^ 0x5A5A);
    while probes.len() < 1_000 {
        let n = 4 + rng.below(3);
        let pick: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        probes.push(pick.join(" "));
    }
    let mut samples = Vec::with_capacity(100 * probes.len());
    let start = Instant::now();
    for _ in 0..100 {
        for p in &probes {
            let t = Instant::now();
            std::hint::black_box(common_list::contains(std::hint::black_box(p)));
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    let total = start.elapsed().as_secs_f64();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    println!(
        "lookup: {:.0} per second, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        samples.len() as f64 / total,
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
