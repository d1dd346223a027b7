//! No account enumeration (design §4 invariant 3), on every anonymous request-reset endpoint at
//! once: the native API, the hosted page's forgot form, and the Alfresco, Unleash and Payabli
//! dialects. For each endpoint, requests for known, unknown and disabled accounts are sent in a
//! random interleaved order over one keep-alive connection; every answer must be byte-identical
//! (status, headers but `date` and `x-request-id`, body), and the latencies of known accounts
//! must be indistinguishable from those of unknown and of disabled ones by a two-sample
//! Kolmogorov-Smirnov test at p > 0.01.
//!
//! Crafter Profile and EmpowerID are left out on purpose: their callers are trusted applications
//! holding an API key, which name a profile by id and are told whether it exists (see
//! docs/security.md).
//!
//! `RESETD_ENUM_FULL=1` sends 2,000 requests per endpoint; the default (CI) run sends 600.
//!
//! `authenticate_answers_unknown_known_locked_and_disabled_logins_alike` does the same for
//! `POST /v1/{t}/authenticate` (2,000 requests of each kind per pair, always), with a
//! Mann-Whitney U test besides the KS test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unimplemented
)]

use crate::helpers;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::helpers::config::TestConfig;
use crate::helpers::page::forgot_csrf;
use crate::helpers::vendors::PEOPLE;
use crate::helpers::Server;
use serde_json::json;
/// Known (enabled) accounts; requests cycle through them, so the first requests of each are
/// fresh and the later ones fall within its email cool-down (a "rate-limited account").
const KNOWN: usize = 24;
const DISABLED: usize = 8;
/// Significance level of the latency test.
pub(crate) const ALPHA: f64 = 0.01;

/// Which kind of account a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Known,
    Unknown,
    Disabled,
}

/// The `i`-th account name of a kind; every name has the same length, so parsing costs the same.
fn login(kind: Kind, i: usize) -> String {
    match kind {
        Kind::Known => format!("kn-{:05}", i % KNOWN),
        Kind::Disabled => format!("dis{:05}", i % DISABLED),
        Kind::Unknown => format!("un-{:05}", i),
    }
}

/// A small deterministic PRNG (xorshift64*), seeded per run and printed, for the request order.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` kinds in blocks of three, each block one known, one unknown and one disabled account
    /// in random order: the load of the machine drifts, and blocks spread every drift evenly
    /// over the three kinds.
    fn order(&mut self, n: usize) -> Vec<Kind> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n / 3 {
            let mut block = [Kind::Known, Kind::Unknown, Kind::Disabled];
            for i in (1..3).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                block.swap(i, j);
            }
            v.extend(block);
        }
        v
    }
}

/// The two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value (the Kolmogorov
/// distribution with Stephens' small-sample correction, as in Numerical Recipes' `kstwo`).
fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    // Q_KS(λ) = 2 Σ_{k≥1} (-1)^{k-1} exp(-2 k² λ²)
    let mut p = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        p += term;
        if term.abs() < 1e-12 {
            return (d, p.clamp(0.0, 1.0));
        }
        sign = -sign;
    }
    // The series did not converge: λ is tiny, the distributions are alike.
    (d, 1.0)
}

/// One anonymous request-reset endpoint.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Native,
    Page,
    Alfresco,
    Unleash,
    Payabli,
}

/// What one endpoint needs besides the server: the page's CSRF value, Payabli's request token.
struct Ctx<'a> {
    s: &'a Server,
    /// One client with a single pooled connection, so every request reuses it.
    http: reqwest::Client,
    csrf: String,
    payabli_token: String,
}

/// Status, headers (but the per-response `date` and `x-request-id`) and body of an answer.
type Shape = (u16, Vec<(String, String)>, Vec<u8>);

impl Ctx<'_> {
    fn request(&self, e: Endpoint, name: &str) -> reqwest::RequestBuilder {
        let s = self.s;
        match e {
            Endpoint::Native => self
                .http
                .post(s.url("/v1/default/recovery"))
                .json(&json!({ "login": name })),
            Endpoint::Page => self
                .http
                .post(s.url("/forgot/default"))
                .header("cookie", format!("resetd_csrf={}", self.csrf))
                .header("origin", &s.base)
                .header("sec-fetch-site", "same-origin")
                .form(&[("login", name), ("csrf", &self.csrf)]),
            Endpoint::Alfresco => self
                .http
                .post(s.url(&format!("{PEOPLE}/{name}/request-password-reset")))
                .json(&json!({"client": "share"})),
            Endpoint::Unleash => self
                .http
                .post(s.url("/auth/reset/password-email"))
                .json(&json!({ "email": format!("{name}@example.com") })),
            Endpoint::Payabli => self
                .http
                .post(s.url("/api/User/authreset"))
                .header("requestToken", &self.payabli_token)
                .json(&json!({ "email": format!("{name}@example.com") })),
        }
    }

    /// Sends one request and returns its answer and the time from sending to the last body byte.
    async fn send(&self, e: Endpoint, name: &str) -> (Shape, Duration) {
        let req = self.request(e, name).build().unwrap();
        let t = Instant::now();
        let res = self.http.execute(req).await.unwrap();
        let status = res.status().as_u16();
        let mut headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        let body = res.bytes().await.unwrap().to_vec();
        let took = t.elapsed();
        headers.sort();
        ((status, headers, body), took)
    }
}

/// Sends `n` interleaved requests to `e` after a warm-up; asserts identical answers and returns
/// the latencies (µs) of known, unknown and disabled accounts.
async fn sample(ctx: &Ctx<'_>, e: Endpoint, n: usize, rng: &mut Rng) -> [Vec<f64>; 3] {
    // Warm-up: connection, caches, the first emails of some known accounts; not measured.
    for i in 0..30 {
        ctx.send(e, &login([Kind::Known, Kind::Unknown][i % 2], i + 900_000))
            .await;
    }
    let (reference, _) = ctx.send(e, &login(Kind::Unknown, 999_999)).await;
    assert!(
        (200..300).contains(&reference.0) || reference.0 == 303,
        "{e:?}: {reference:?}"
    );
    let mut lat: [Vec<f64>; 3] = Default::default();
    for (i, kind) in rng.order(n).into_iter().enumerate() {
        let (shape, took) = ctx.send(e, &login(kind, i)).await;
        assert_eq!(
            shape, reference,
            "{e:?}: {kind:?} account answered differently"
        );
        lat[kind as usize].push(took.as_nanos() as f64 / 1000.0);
    }
    lat
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starts one server with every dialect that has an anonymous request-reset endpoint, and the
/// accounts: `KNOWN` enabled people and `DISABLED` disabled ones.
async fn server() -> (Server, String) {
    let base = TestConfig::fast();
    let first = Server::spawn(&base);
    let (key_id, key) = first.api_key("payhub").await;
    for i in 0..KNOWN {
        let name = login(Kind::Known, i);
        first
            .add_person(&name, &format!("{name}@example.com"), None)
            .await;
    }
    for i in 0..DISABLED {
        let name = login(Kind::Disabled, i);
        let id = first
            .add_person(&name, &format!("{name}@example.com"), None)
            .await;
        assert_eq!(first.disable_person(&id).await.status(), 200);
    }
    // Without limits, as `fast()` means: Payabli's key is limited per key, not per IP.
    let config = base
        .anonymous_dialects(&key_id)
        .dialect("payabli", "key_per_minute", 0u32);
    (first.restart(&config), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn every_request_reset_endpoint_answers_known_unknown_and_disabled_accounts_alike() {
    let full = std::env::var("RESETD_ENUM_FULL").is_ok_and(|v| v == "1");
    let n = if full { 2_000 } else { 600 };
    let (s, payabli_token) = server().await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The page's CSRF cookie, read once from the forgot form.
    let csrf = forgot_csrf(&http, &s).await;
    let ctx = Ctx {
        s: &s,
        http,
        csrf,
        payabli_token,
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("request order seed {seed}, {n} requests per endpoint");
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    for e in [
        Endpoint::Native,
        Endpoint::Page,
        Endpoint::Alfresco,
        Endpoint::Unleash,
        Endpoint::Payabli,
    ] {
        // A real difference fails every sample; chance alone fails one at p ≤ 0.01 in a hundred
        // runs per comparison, so a failed test is repeated once on a fresh sample and must fail
        // again (both at p ≤ 0.01: a false alarm then happens once in 10,000).
        let mut verdict = Vec::new();
        for attempt in 1..=2 {
            let lat = sample(&ctx, e, n, &mut rng).await;
            verdict.clear();
            for (other, name) in [(Kind::Unknown, "unknown"), (Kind::Disabled, "disabled")] {
                let (d, p) = kolmogorov_smirnov(&lat[Kind::Known as usize], &lat[other as usize]);
                let line = format!(
                    "{e:?} attempt {attempt}: known (median {:.0} µs) vs {name} (median {:.0} µs): D = {d:.3}, p = {p:.4}",
                    median(&lat[Kind::Known as usize]),
                    median(&lat[other as usize]),
                );
                println!("{line}");
                if p <= ALPHA {
                    verdict.push(line);
                }
            }
            if verdict.is_empty() {
                break;
            }
        }
        failures.extend(verdict);
    }
    assert!(
        failures.is_empty(),
        "latency distinguishes accounts:\n{}",
        failures.join("\n")
    );
    // Only known, enabled accounts got mail: at most one per account (the rest cooled down).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mails = s.mails();
    assert!(!mails.is_empty());
    for (name, body) in &mails {
        assert!(
            body.contains("To: kn-"),
            "mail {name} to someone not known and enabled"
        );
    }
}

// ---- authenticate ------------------------------------------------------------------------------

/// What an authentication names: the logins of a pair are told apart only by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// A login nobody has, never tried before (tenant `default`).
    Unknown,
    /// A known, enabled person with a wrong password (tenant `default`).
    KnownWrong,
    /// A disabled person, with their (right) password (tenant `default`).
    Disabled,
    /// A known person whose login is locked, with the right password (tenant `locks`).
    KnownLocked,
    /// A login nobody has, locked by the same failures (tenant `locks`).
    UnknownLocked,
}

/// Known people per kind of the authenticate pairs; requests cycle through them.
const AUTH_PEOPLE: usize = 24;
const RIGHT: &str = "violet tangerine orbit 7";
/// A wrong password of the same length as the right one.
const WRONG: &str = "violet tangerine orbit 8";

impl Auth {
    /// The login and password of the `i`-th request of this kind; all logins have one length.
    fn credentials(self, i: usize) -> (String, &'static str) {
        match self {
            Auth::Unknown => (format!("un-{:05}", i), WRONG),
            Auth::KnownWrong => (format!("kn-{:05}", i % AUTH_PEOPLE), WRONG),
            Auth::Disabled => (format!("di-{:05}", i % AUTH_PEOPLE), RIGHT),
            Auth::KnownLocked => (format!("lk-{:05}", i % AUTH_PEOPLE), RIGHT),
            Auth::UnknownLocked => (format!("ul-{:05}", i % AUTH_PEOPLE), RIGHT),
        }
    }

    fn tenant(self) -> &'static str {
        match self {
            Auth::KnownLocked | Auth::UnknownLocked => "locks",
            Auth::Unknown | Auth::KnownWrong | Auth::Disabled => "default",
        }
    }
}

/// Sends one authentication; returns its answer (without `date`, `x-request-id` and, for a lock,
/// the `retry-after` seconds, which count down with the clock) and its latency.
async fn authenticate(
    s: &Server,
    http: &reqwest::Client,
    kind: Auth,
    i: usize,
) -> (Shape, Duration) {
    let (login, password) = kind.credentials(i);
    let req = http
        .post(s.url(&format!("/v1/{}/authenticate", kind.tenant())))
        .json(&json!({"login": login, "password": password}))
        .build()
        .unwrap();
    let t = Instant::now();
    let res = http.execute(req).await.unwrap();
    let status = res.status().as_u16();
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in res.headers() {
        let v = v.to_str().unwrap_or("?").to_owned();
        match k.as_str() {
            "date" | "x-request-id" => {}
            "retry-after" => {
                let secs: i64 = v.parse().expect("Retry-After in seconds");
                assert!((1..=86_400).contains(&secs), "{kind:?}: Retry-After {secs}");
                headers.push(("retry-after".into(), "(seconds)".into()));
            }
            _ => headers.push((k.to_string(), v)),
        }
    }
    let body = res.bytes().await.unwrap().to_vec();
    let took = t.elapsed();
    headers.sort();
    ((status, headers, body), took)
}

/// `n` requests of kinds `a` and `b` in random order within blocks of two, after a warm-up;
/// asserts every answer equals the first and returns the latencies (µs) of `a` and of `b`.
async fn sample_pair(
    s: &Server,
    http: &reqwest::Client,
    (a, b): (Auth, Auth),
    n: usize,
    offset: usize,
    rng: &mut Rng,
) -> [Vec<f64>; 2] {
    for i in 0..20 {
        authenticate(s, http, [a, b][i % 2], offset + 900_000 + i).await;
    }
    let (reference, _) = authenticate(s, http, a, offset + 999_999).await;
    let mut lat: [Vec<f64>; 2] = Default::default();
    for i in 0..n / 2 {
        let first = (rng.next() % 2) as usize;
        for side in [first, 1 - first] {
            let kind = [a, b][side];
            let (shape, took) = authenticate(s, http, kind, offset + i).await;
            assert_eq!(
                shape,
                reference,
                "authenticate: {kind:?} answered differently from {a:?}:\n{}\nvs\n{}",
                String::from_utf8_lossy(&shape.2),
                String::from_utf8_lossy(&reference.2)
            );
            lat[side].push(took.as_nanos() as f64 / 1000.0);
        }
    }
    lat
}

/// The two-sided Mann-Whitney U test with its normal approximation (tie-corrected variance and a
/// continuity correction, as scipy's `mannwhitneyu(method="asymptotic")`): returns U of `a` and
/// the p-value.
pub(crate) fn mann_whitney_u(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|x| (*x, true))
        .chain(b.iter().map(|x| (*x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Mid-ranks for ties, and Σ(t³ - t) over tie groups for the variance.
    let (mut rank_a, mut ties, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_a += mid * all[i..=j].iter().filter(|x| x.1).count() as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return (u, 1.0);
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (u, erfc(z / std::f64::consts::SQRT_2).clamp(0.0, 1.0))
}

/// The complementary error function (Numerical Recipes' `erfcc`, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// One server for the authenticate pairs: in `default` (which never locks: threshold 10⁶)
/// `AUTH_PEOPLE` enabled and as many disabled people; in `locks` (3 failures lock for a day)
/// `AUTH_PEOPLE` people, whose logins are then locked, and as many unknown logins locked alike.
async fn auth_server() -> Server {
    let base = TestConfig::fast();
    let first = Server::spawn(&base);
    let admin = first.key.clone();
    let dir = first.stop();
    let data = dir.path().to_owned();
    helpers::cli(
        &data,
        None,
        &["tenant", "set", "default", "--lockout-threshold", "1000000"],
        None,
    );
    helpers::cli(
        &data,
        None,
        &[
            "tenant",
            "add",
            "locks",
            "--lockout-threshold",
            "3",
            "--lockout-secs",
            "86400",
        ],
        None,
    );
    let locks_key = helpers::cli(
        &data,
        None,
        &["apikey", "create", "--tenant", "locks"],
        None,
    )
    .trim()
    .to_owned();
    let mut s = Server::spawn_in(dir, &base);
    s.key = admin;
    let locks = s.tenant("locks", &locks_key);
    for i in 0..AUTH_PEOPLE {
        for (kind, enabled) in [(Auth::KnownWrong, true), (Auth::Disabled, false)] {
            let (name, _) = kind.credentials(i);
            let id = s
                .add_person(&name, &format!("{name}@example.com"), Some(RIGHT))
                .await;
            if !enabled {
                assert_eq!(s.disable_person(&id).await.status(), 200);
            }
        }
        let (name, _) = Auth::KnownLocked.credentials(i);
        let res = locks
            .create_person(
                json!({"login": name, "email": format!("{name}@example.com"), "password": RIGHT}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // Lock both kinds in `locks` by the same three failures, interleaved.
    for i in 0..AUTH_PEOPLE {
        for kind in [Auth::KnownLocked, Auth::UnknownLocked] {
            let (login, _) = kind.credentials(i);
            for attempt in 0..4 {
                let res = locks.authenticate(&login, WRONG).await;
                let want = if attempt < 3 { 401 } else { 423 };
                assert_eq!(res.status(), want, "{kind:?} {login} attempt {attempt}");
            }
        }
    }
    s
}

/// Unknown, known-wrong, known-locked and disabled logins look alike on `authenticate`: for each
/// pair, interleaved samples must give byte-identical answers, and neither a Kolmogorov-Smirnov
/// nor a Mann-Whitney U test may tell their latencies apart at p ≤ 0.01 (with the repeat-once
/// rule of the request-reset test). A lock is the login's, whoever has it, so a locked known
/// login is compared with an unknown one locked by the same failures; a fresh unknown login
/// answers like a known one with a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn authenticate_answers_unknown_known_locked_and_disabled_logins_alike() {
    let n = 4_000; // 2,000 of each kind per pair
    let started = Instant::now();
    let s = auth_server().await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!(
        "authenticate: request order seed {seed}, {} requests per kind and pair",
        n / 2
    );
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut offset = 0;
    for pair in [
        (Auth::Unknown, Auth::KnownWrong),
        (Auth::UnknownLocked, Auth::KnownLocked),
        (Auth::Unknown, Auth::Disabled),
    ] {
        let mut verdict = Vec::new();
        for attempt in 1..=2 {
            let [a, b] = sample_pair(&s, &http, pair, n, offset, &mut rng).await;
            offset += 1_000_000; // fresh unknown logins for every sample
            let (d, p_ks) = kolmogorov_smirnov(&a, &b);
            let (u, p_u) = mann_whitney_u(&a, &b);
            let line = format!(
                "{:?} (median {:.0} µs) vs {:?} (median {:.0} µs), attempt {attempt}: \
                 KS D = {d:.3}, p = {p_ks:.4}; Mann-Whitney U = {u:.0}, p = {p_u:.4}",
                pair.0,
                median(&a),
                pair.1,
                median(&b),
            );
            println!("{line}");
            verdict.clear();
            if p_ks <= ALPHA || p_u <= ALPHA {
                verdict.push(line);
            }
            if verdict.is_empty() {
                break;
            }
        }
        failures.extend(verdict);
    }
    println!("authenticate pairs took {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "latency distinguishes logins:\n{}",
        failures.join("\n")
    );
}

#[test]
fn mann_whitney_u_matches_scipy_and_separates_shifted_samples() {
    // By hand (and scipy.stats.mannwhitneyu(range(1, 11), range(11, 21), method="asymptotic")):
    // U = 0, σ² = 175, z = 49.5 / √175, p = erfc(z / √2) = 1.8267e-4.
    let a: Vec<f64> = (1..=10).map(f64::from).collect();
    let b: Vec<f64> = (11..=20).map(f64::from).collect();
    let (u, p) = mann_whitney_u(&a, &b);
    assert_eq!(u, 0.0);
    assert!((p - 1.8267e-4).abs() < 1e-6, "{p}");
    // Ties, by hand: mid-ranks 1, 3, 3 | 3, 5.5, 5.5, so U = 1; Σ(t³ - t) = 30, so
    // σ² = 9/12 · (7 - 30/30) = 4.5; z = (3.5 - 0.5) / √4.5, p = erfc(1) = 0.15730.
    let (u, p) = mann_whitney_u(&[1.0, 2.0, 2.0], &[2.0, 3.0, 3.0]);
    assert_eq!(u, 1.0);
    assert!((p - 0.157_30).abs() < 1e-4, "{p}");
    let same: Vec<f64> = (0..300).map(|i| f64::from((i * 7) % 100)).collect();
    let other: Vec<f64> = (0..300).map(|i| f64::from(i % 100)).collect();
    let (_, p) = mann_whitney_u(&same, &other);
    assert!(p > 0.9, "{p}");
    let shifted: Vec<f64> = other.iter().map(|x| x + 10.0).collect();
    let (_, p) = mann_whitney_u(&other, &shifted);
    assert!(p < 1e-3, "{p}");
}

#[test]
fn kolmogorov_smirnov_separates_shifted_samples_and_not_equal_ones() {
    let a: Vec<f64> = (0..300).map(|i| f64::from(i % 100)).collect();
    let same: Vec<f64> = (0..300).map(|i| f64::from((i * 7) % 100)).collect();
    let shifted: Vec<f64> = a.iter().map(|x| x + 20.0).collect();
    let (d, p) = kolmogorov_smirnov(&a, &same);
    assert!(d < 0.02 && p > 0.99, "{d} {p}");
    let (d, p) = kolmogorov_smirnov(&a, &shifted);
    assert!((d - 0.2).abs() < 1e-9 && p < 1e-4, "{d} {p}");
}
