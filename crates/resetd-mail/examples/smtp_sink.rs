//! A minimal SMTP server that accepts and discards every message, for the bench harness
//! (`bench/run.py --only pipeline`): it must never be the bottleneck of what it measures, which
//! the Python test server (about 2,200 messages/s) is. It speaks just enough SMTP for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and no TLS or AUTH.
//!
//! `smtp_sink serve [PORT]`: prints `listening PORT`, then on standard input's end (or SIGTERM
//! of the harness) the number of messages accepted.
//! `smtp_sink blast PORT COUNT CONNECTIONS`: sends COUNT small messages over CONNECTIONS
//! connections as fast as it can and prints the rate: the sink's own ceiling on this machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn session(stream: TcpStream, accepted: Arc<AtomicU64>) -> Result<(), Error> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                write.write_all(b"354 end with .\r\n").await?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                b"250 accepted\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
}

async fn serve(port: u16) -> Result<(), Error> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening {}", listener.local_addr()?.port());
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(session(stream, counter.clone()));
        }
    });
    // Until the harness closes standard input.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    println!("accepted {}", accepted.load(Ordering::Relaxed));
    Ok(())
}

async fn expect(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    code: &str,
) -> Result<(), Error> {
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Err("closed".into());
        }
        if !line.starts_with(code) {
            return Err(format!("wanted {code}, got {line:?}").into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

async fn client(port: u16, count: u64) -> Result<(), Error> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    expect(&mut lines, "220").await?;
    write.write_all(b"EHLO blast\r\n").await?;
    expect(&mut lines, "250").await?;
    for i in 0..count {
        write.write_all(b"MAIL FROM:<bench@sink.test>\r\n").await?;
        expect(&mut lines, "250").await?;
        write.write_all(b"RCPT TO:<someone@sink.test>\r\n").await?;
        expect(&mut lines, "250").await?;
        write.write_all(b"DATA\r\n").await?;
        expect(&mut lines, "354").await?;
        let body = format!(
            "Subject: blast {i}\r\nFrom: bench@sink.test\r\nTo: someone@sink.test\r\n\r\n{}\r\n.\r\n",
            "a line of a reset email about as long as one ".repeat(30)
        );
        write.write_all(body.as_bytes()).await?;
        expect(&mut lines, "250").await?;
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

async fn blast(port: u16, count: u64, connections: u64) -> Result<(), Error> {
    let started = Instant::now();
    let per = count / connections.max(1);
    let tasks: Vec<_> = (0..connections.max(1))
        .map(|_| tokio::spawn(client(port, per)))
        .collect();
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let sent = per * connections.max(1);
    println!(
        "sent {sent} in {secs:.3} s: {:.0} messages/s",
        sent as f64 / secs
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> Result<u64, Error> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(serve(arg(1, 0)? as u16)),
        Some("blast") => rt.block_on(blast(arg(1, 25)? as u16, arg(2, 20_000)?, arg(3, 4)?)),
        _ => Err("usage: smtp_sink serve [PORT] | blast PORT COUNT CONNECTIONS".into()),
    }
}
