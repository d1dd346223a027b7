//! The breached-password index: the Pwned Passwords corpus (`SHA1-HEX:COUNT` lines, ordered by
//! hash) in a compact file beside the database, read with positioned reads so that a lookup costs
//! a handful of small reads and no memory beyond the fan-out table.
//!
//! The file, all integers little-endian:
//!
//! ```text
//! header   64 bytes: magic "RESETDBP", version u32 (1), suffix_len u32, records u64, zeros
//! records  records × (suffix_len + 4): bytes 2..2+suffix_len of the SHA-1, then the count u32,
//!          in hash order, one per distinct stored key
//! fan-out  (2^20 + 1) × u32: fanout[p] is the index of the first record whose first 20 bits
//!          are >= p, fanout[2^20] = records
//! ```
//!
//! The first 20 bits (the Have I Been Pwned range prefix) pick a bucket through the fan-out
//! table, so the stored suffix starts at byte 2 (its first nibble repeats the prefix: it keeps
//! records byte-aligned). With `suffix_len` 18 the whole hash is kept: no false positive, and the
//! range endpoint can list the bucket. A smaller `suffix_len` (at least 5) keeps 16 + 8 ×
//! `suffix_len` bits: for n hashes a lookup of an absent one is a false hit with probability
//! about n / 2^(16 + 8 × suffix_len) (1e9 hashes, 5 bytes: 1.5e-8), and such an index cannot
//! serve ranges. The file is written to a temporary name and renamed, so a reader never sees a
//! half-written index.

use std::fs::File;
use std::io::{BufRead, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use resetd_core::ports::{BreachError, BreachedPasswords, RangeEntry};

const MAGIC: &[u8; 8] = b"RESETDBP";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 64;
const PREFIX_BITS: u32 = 20;
const BUCKETS: usize = 1 << PREFIX_BITS;
const FANOUT_LEN: u64 = (BUCKETS as u64 + 1) * 4;
/// The whole hash after its first two bytes.
pub const FULL_SUFFIX: usize = 18;
/// Below this, false positives pass 1 in 10^6 at the corpus' size (see the module docs).
pub const MIN_SUFFIX: usize = 5;

/// Why the index could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The index file is not one, or is cut short.
    #[error("{path}: not a usable breached-password index: {reason}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A line of the corpus is not `SHA1-HEX:COUNT`, or is out of order.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based.
        line: u64,
        /// What is wrong (never the line's text beyond its shape).
        reason: String,
    },
    /// The options are out of range.
    #[error("{0}")]
    Options(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(f, buf, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        at += n as u64;
    }
    Ok(())
}

fn prefix_of(hash: &[u8; 20]) -> usize {
    (usize::from(hash[0]) << 12) | (usize::from(hash[1]) << 4) | (usize::from(hash[2]) >> 4)
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    /// Lines read.
    pub lines: u64,
    /// Records written (fewer than lines when truncation merged two hashes).
    pub records: u64,
    /// Size of the index file in bytes.
    pub bytes: u64,
}

/// Streams a corpus into a new index at `dest`. `progress` is called every `every` lines with
/// the count so far. Refuses the first bad or out-of-order line, leaving `dest` untouched.
pub fn import(
    input: impl BufRead,
    dest: &Path,
    suffix_len: usize,
    every: u64,
    mut progress: impl FnMut(u64),
) -> Result<ImportStats, IndexError> {
    if !(MIN_SUFFIX..=FULL_SUFFIX).contains(&suffix_len) {
        return Err(IndexError::Options(format!(
            "the stored suffix must be {MIN_SUFFIX} to {FULL_SUFFIX} bytes"
        )));
    }
    let file_name = dest
        .file_name()
        .ok_or_else(|| IndexError::Options("the index path names no file".into()))?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dest.with_file_name(tmp_name);
    let result = write_index(input, &tmp, suffix_len, every, &mut progress);
    match result {
        Ok(stats) => {
            std::fs::rename(&tmp, dest).map_err(io(dest))?;
            // The rename is durable only once the directory is.
            if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn parse_line(line: &[u8], n: u64) -> Result<([u8; 20], u32), IndexError> {
    let bad = |reason: &str| IndexError::BadLine {
        line: n,
        reason: reason.into(),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("expected SHA1-HEX:COUNT"))?;
    let (hex, count) = (&line[..colon], &line[colon + 1..]);
    if hex.len() == 32 {
        return Err(bad(
            "a 32-digit hash is the NTLM corpus; import the SHA-1 one (40 hex digits)",
        ));
    }
    if hex.len() != 40 {
        return Err(bad("the hash must be 40 hex digits (SHA-1)"));
    }
    let mut hash = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => hash[i] = (hi << 4) | lo,
            _ => return Err(bad("the hash must be 40 hex digits (SHA-1)")),
        }
    }
    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) || count.len() > 20 {
        return Err(bad("the count must be a decimal number"));
    }
    let count = std::str::from_utf8(count)
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| bad("the count must be a decimal number"))?;
    Ok((hash, u32::try_from(count).unwrap_or(u32::MAX)))
}

fn write_index(
    mut input: impl BufRead,
    tmp: &Path,
    suffix_len: usize,
    every: u64,
    progress: &mut impl FnMut(u64),
) -> Result<ImportStats, IndexError> {
    let file = File::create(tmp).map_err(io(tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0u8; HEADER_LEN as usize])
        .map_err(io(tmp))?;
    let mut bucket_counts = vec![0u32; BUCKETS];
    let mut line = Vec::with_capacity(64);
    let (mut n, mut records) = (0u64, 0u64);
    // The previous record, held back so that truncation can merge equal keys.
    let mut pending: Option<([u8; 20], u32)> = None;
    let mut previous: Option<[u8; 20]> = None;
    loop {
        line.clear();
        let read = std::io::Read::take(&mut input, 128)
            .read_until(b'\n', &mut line)
            .map_err(|e| IndexError::BadLine {
                line: n + 1,
                reason: format!("cannot read: {e}"),
            })?;
        if read == 0 {
            break;
        }
        n += 1;
        let body = match line.strip_suffix(b"\n") {
            Some(b) => b,
            None if read == 128 => {
                return Err(IndexError::BadLine {
                    line: n,
                    reason: "too long for SHA1-HEX:COUNT".into(),
                })
            }
            None => &line[..],
        };
        let (hash, count) = parse_line(body, n)?;
        if previous.is_some_and(|p| p >= hash) {
            return Err(IndexError::BadLine {
                line: n,
                reason: "out of order: the corpus must be sorted by hash, each hash once".into(),
            });
        }
        previous = Some(hash);
        match &mut pending {
            Some((p, c)) if p[..2 + suffix_len] == hash[..2 + suffix_len] => *c = (*c).max(count),
            _ => {
                if let Some((p, c)) = pending.replace((hash, count)) {
                    write_record(&mut out, &p, c, suffix_len, &mut bucket_counts, tmp)?;
                    records += 1;
                }
            }
        }
        if every > 0 && n % every == 0 {
            progress(n);
        }
    }
    if let Some((p, c)) = pending {
        write_record(&mut out, &p, c, suffix_len, &mut bucket_counts, tmp)?;
        records += 1;
    }
    if u32::try_from(records).is_err() {
        return Err(IndexError::Options(
            "more than 2^32 hashes: the format's counters are 32 bits".into(),
        ));
    }
    let mut at = 0u32;
    let mut fanout = Vec::with_capacity(FANOUT_LEN as usize);
    for c in &bucket_counts {
        fanout.extend_from_slice(&at.to_le_bytes());
        at += c;
    }
    fanout.extend_from_slice(&at.to_le_bytes());
    out.write_all(&fanout).map_err(io(tmp))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(suffix_len as u32).to_le_bytes());
    header[16..24].copy_from_slice(&records.to_le_bytes());
    let mut file = out.into_inner().map_err(|e| io(tmp)(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io(tmp))?;
    file.write_all(&header).map_err(io(tmp))?;
    file.sync_all().map_err(io(tmp))?;
    let bytes = file.metadata().map_err(io(tmp))?.len();
    Ok(ImportStats {
        lines: n,
        records,
        bytes,
    })
}

fn write_record(
    out: &mut impl Write,
    hash: &[u8; 20],
    count: u32,
    suffix_len: usize,
    bucket_counts: &mut [u32],
    tmp: &Path,
) -> Result<(), IndexError> {
    out.write_all(&hash[2..2 + suffix_len]).map_err(io(tmp))?;
    out.write_all(&count.to_le_bytes()).map_err(io(tmp))?;
    bucket_counts[prefix_of(hash)] += 1;
    Ok(())
}

/// An open index: the file and its fan-out table (4 MiB), shared by every lookup.
pub struct BreachIndex {
    file: File,
    path: PathBuf,
    suffix_len: usize,
    records: u64,
    fanout: Vec<u32>,
}

impl std::fmt::Debug for BreachIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreachIndex")
            .field("path", &self.path)
            .field("records", &self.records)
            .field("suffix_len", &self.suffix_len)
            .finish()
    }
}

impl BreachIndex {
    /// Opens and checks an index written by [`import`]: its header, its size and its fan-out
    /// table, so that a cut or foreign file is refused here, not at a lookup.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let corrupt = |reason: String| IndexError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len < HEADER_LEN {
            return Err(corrupt(format!("{len} bytes, shorter than the header")));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        read_at(&file, &mut header, 0).map_err(io(path))?;
        if &header[..8] != MAGIC {
            return Err(corrupt(
                "wrong magic (import the corpus with `resetd breached import`)".into(),
            ));
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        if word(8) != VERSION {
            return Err(corrupt(format!(
                "format version {} is not {VERSION}",
                word(8)
            )));
        }
        let suffix_len = word(12) as usize;
        if !(MIN_SUFFIX..=FULL_SUFFIX).contains(&suffix_len) {
            return Err(corrupt(format!("suffix length {suffix_len} out of range")));
        }
        let mut r = [0u8; 8];
        r.copy_from_slice(&header[16..24]);
        let records = u64::from_le_bytes(r);
        let expected = records
            .checked_mul(suffix_len as u64 + 4)
            .and_then(|b| b.checked_add(HEADER_LEN + FANOUT_LEN));
        if expected != Some(len) {
            return Err(corrupt(format!(
                "{len} bytes where {records} records need {} (cut short or altered)",
                expected.map_or("more".into(), |e| e.to_string())
            )));
        }
        let mut raw = vec![0u8; FANOUT_LEN as usize];
        read_at(&file, &mut raw, len - FANOUT_LEN).map_err(io(path))?;
        let fanout: Vec<u32> = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ordered = fanout.first() == Some(&0)
            && fanout.last().map(|&l| u64::from(l)) == Some(records)
            && fanout.windows(2).all(|w| w[0] <= w[1]);
        if !ordered {
            return Err(corrupt("the fan-out table is out of order".into()));
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            suffix_len,
            records,
            fanout,
        })
    }

    /// How many hashes the index holds.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether it keeps whole hashes (and so can list ranges).
    pub fn full(&self) -> bool {
        self.suffix_len == FULL_SUFFIX
    }

    fn record_len(&self) -> u64 {
        self.suffix_len as u64 + 4
    }

    fn bucket(&self, prefix: usize) -> (u64, u64) {
        let lo = self.fanout.get(prefix).copied().unwrap_or(0);
        let hi = self.fanout.get(prefix + 1).copied().unwrap_or(lo);
        (u64::from(lo), u64::from(hi))
    }

    fn read_err(&self, e: std::io::Error) -> BreachError {
        BreachError(format!("{}: {e}", self.path.display()))
    }

    /// The count stored for `sha1`, by binary search within its bucket.
    pub fn lookup(&self, sha1: &[u8; 20]) -> Result<Option<u32>, BreachError> {
        let key = &sha1[2..2 + self.suffix_len];
        let (mut lo, mut hi) = self.bucket(prefix_of(sha1));
        let mut rec = [0u8; FULL_SUFFIX + 4];
        let rec = &mut rec[..self.suffix_len + 4];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            read_at(&self.file, rec, HEADER_LEN + mid * self.record_len())
                .map_err(|e| self.read_err(e))?;
            match rec[..self.suffix_len].cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let c = &rec[self.suffix_len..];
                    return Ok(Some(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                }
            }
        }
        Ok(None)
    }

    /// Every record of the 20-bit `prefix`, if the index keeps whole hashes.
    pub fn list(&self, prefix: u32) -> Result<Option<Vec<RangeEntry>>, BreachError> {
        if !self.full() {
            return Ok(None);
        }
        let prefix = prefix as usize & (BUCKETS - 1);
        let (lo, hi) = self.bucket(prefix);
        let mut buf = vec![0u8; ((hi - lo) * self.record_len()) as usize];
        read_at(&self.file, &mut buf, HEADER_LEN + lo * self.record_len())
            .map_err(|e| self.read_err(e))?;
        let first = [(prefix >> 12) as u8, (prefix >> 4) as u8];
        Ok(Some(
            buf.chunks_exact(self.suffix_len + 4)
                .map(|r| {
                    let mut sha1 = [0u8; 20];
                    sha1[..2].copy_from_slice(&first);
                    sha1[2..].copy_from_slice(&r[..FULL_SUFFIX]);
                    let c = &r[FULL_SUFFIX..];
                    RangeEntry {
                        sha1,
                        count: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    }
                })
                .collect(),
        ))
    }
}

impl BreachedPasswords for BreachIndex {
    fn count(&self, sha1: &[u8; 20]) -> Result<Option<u32>, BreachError> {
        self.lookup(sha1)
    }

    fn range(&self, prefix: u32) -> Result<Option<Vec<RangeEntry>>, BreachError> {
        self.list(prefix)
    }
}

#[cfg(test)]
#[path = "breached/tests.rs"]
mod tests;
