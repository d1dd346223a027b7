//! `resetd person import`: streams a CSV or JSON Lines file (or standard input) into the store in
//! batches, printing each rejected line, a progress line when stderr is a terminal, and a summary.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Instant;

use resetd_core::import::{Format, Importer, MAX_LINE};
use resetd_core::service::Actor;
use resetd_core::types::TenantId;
use resetd_core::Service;

/// Imports `file` (`-` for standard input) into `tenant`. Rejected rows are reported, not errors;
/// an `Err` means the input or the database failed.
pub async fn run(
    service: &Service,
    tenant: TenantId,
    format: Option<String>,
    dry_run: bool,
    file: &Path,
) -> Result<(), String> {
    let format = match format.as_deref() {
        Some(f) => Format::parse(f).ok_or_else(|| format!("unknown format {f:?} (csv, jsonl)"))?,
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => return Err("name the format with --format csv|jsonl".into()),
        },
    };
    let input: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut importer = Importer::new(service, tenant, Actor::Cli, format, dry_run);
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let (n, too_long) =
            read_line(&mut reader, &mut buf).map_err(|e| format!("reading: {e}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if too_long {
            importer.reject(line_no, format!("line longer than {MAX_LINE} bytes"));
        } else {
            match std::str::from_utf8(&buf) {
                Ok(text) => importer
                    .line(line_no, text)
                    .await
                    .map_err(|e| e.to_string())?,
                Err(_) => importer.reject(line_no, "not UTF-8"),
            }
        }
        for r in importer.take_rejections() {
            if progress {
                eprint!("\r\x1b[K");
            }
            println!("line {}: {}", r.line, r.reason);
        }
        if progress && line_no.is_multiple_of(5000) {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r\x1b[K{line_no} lines, {:.0} lines/s",
                line_no as f64 / secs
            );
            let _ = std::io::stderr().flush();
        }
    }
    let summary = importer.finish().await.map_err(|e| e.to_string())?;
    if progress {
        eprintln!(
            "\r\x1b[K{line_no} lines in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "{}imported {}, updated {}, rejected {}",
        if dry_run { "dry run: " } else { "" },
        summary.imported,
        summary.updated,
        summary.rejected
    );
    Ok(())
}

/// Reads one line into `buf` (without the line break), keeping at most `MAX_LINE` bytes; returns
/// the bytes consumed and whether the line was cut.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, too_long));
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if buf.len() + part.len() > MAX_LINE {
            too_long = true;
            buf.clear();
        } else if !too_long {
            buf.extend_from_slice(part);
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        consumed += used;
        if done.is_some() {
            return Ok((consumed, too_long));
        }
    }
}
