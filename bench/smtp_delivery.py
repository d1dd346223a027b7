#!/usr/bin/env python3
"""Outbox-to-SMTP delivery rate: the real release binary with `transport = "smtp"` against the
aiosmtpd test server (scripts/smtp-test-server.py) on loopback.

    cargo build --release -p resetd
    python3 bench/smtp_delivery.py [--count 1000] [--pool-size 4] [--concurrency 8]

It creates COUNT people, then requests one reset for each as fast as one keep-alive connection
allows, and measures from the first request until the SMTP server has stored every message (each
one resolved, rendered, queued in the outbox, claimed, sent over SMTP and stored by aiosmtpd).
The SMTP server is single-threaded Python and is usually the bottleneck; the figure is the whole
pipeline's, not resetd's alone.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "resetd")
SMTP = os.path.join(ROOT, "scripts", "smtp-test-server.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_secs(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--pool-size", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    a = p.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: cargo build --release -p resetd")

    work = tempfile.mkdtemp(prefix="resetd-smtp-bench-")
    mail_dir = os.path.join(work, "received")
    smtp = subprocess.Popen(
        [sys.executable, SMTP, "--dir", mail_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    smtp_port = int(smtp.stdout.readline().strip().split("=")[1])
    http_port = free_port()
    cfg = os.path.join(work, "bench.toml")
    with open(cfg, "w") as f:
        f.write(
            "[http]\nrecovery_per_minute = 0\nauth_per_minute = 0\n"
            f'[mail]\ntransport = "smtp"\nfrom = "resetd <bench@resetd.localhost>"\n'
            f'[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\ntls = "none"\n'
            f"pool_size = {a.pool_size}\n"
            f"[mail.worker]\nconcurrency = {a.concurrency}\n"
        )
    server = subprocess.Popen(
        [BIN, "--config", cfg, "--data-dir", work, "serve", "--listen", f"127.0.0.1:{http_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        # Any free management port, so a resetd already on the default one does not stop this.
        env=dict(os.environ, RESETD_LOG="warn", RESETD_MANAGEMENT_LISTEN="127.0.0.1:0"),
        text=True,
    )
    try:
        key = None
        for line in server.stdout:
            if "(shown only once): " in line:
                key = line.split("(shown only once): ")[1].strip()
            if line.startswith("resetd listening on"):
                break
        conn = http.client.HTTPConnection("127.0.0.1", http_port)

        def post(path, body, auth=None):
            headers = {"content-type": "application/json"}
            if auth:
                headers["authorization"] = f"Bearer {auth}"
            conn.request("POST", path, json.dumps(body), headers)
            res = conn.getresponse()
            res.read()
            return res.status

        for i in range(a.count):
            assert post("/v1/default/people", {"login": f"u{i}", "email": f"u{i}@example.com"}, key) == 201

        cpu0 = (cpu_secs(server.pid), cpu_secs(smtp.pid))
        started = time.perf_counter()
        for i in range(a.count):
            assert post("/v1/default/recovery", {"login": f"u{i}"}) == 202
        accepted = time.perf_counter() - started
        while True:
            n = sum(1 for name in os.listdir(mail_dir) if name.endswith(".eml"))
            if n >= a.count:
                break
            time.sleep(0.01)
        took = time.perf_counter() - started
        cpu = (cpu_secs(server.pid) - cpu0[0], cpu_secs(smtp.pid) - cpu0[1])
        print(f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
        print(f"{a.count} reset emails, pool_size {a.pool_size}, worker concurrency {a.concurrency}")
        print(f"  requests accepted in {accepted:.2f} s")
        print(f"  all delivered to the SMTP server in {took:.2f} s: {a.count / took:.0f} emails/s end to end")
        print(f"  CPU time meanwhile: resetd {cpu[0]:.2f} s, SMTP server (aiosmtpd) {cpu[1]:.2f} s")
        ceiling = smtp_ceiling(smtp_port, a.count, a.pool_size, mail_dir)
        print(f"  the SMTP server's own ceiling: {ceiling:.0f} emails/s (Python smtplib, {a.pool_size} connections, no resetd)")
    finally:
        server.terminate()
        smtp.terminate()
        server.wait()
        smtp.wait()


def smtp_ceiling(port, count, connections, mail_dir):
    """How fast the same SMTP server stores messages sent straight to it, with the same number of
    connections: the ceiling resetd's delivery rate is measured against."""
    import smtplib
    import threading
    before = sum(1 for n in os.listdir(mail_dir) if n.endswith(".eml"))
    body = ("From: bench@bench.example\r\nTo: x@bench.example\r\nSubject: ceiling\r\n"
            "Message-ID: <{}@bench.example>\r\n\r\n" + ("x" * 76 + "\r\n") * 20)

    def blast(k):
        with smtplib.SMTP("127.0.0.1", port) as c:
            for i in range(k, count, connections):
                c.sendmail("bench@bench.example", ["x@bench.example"], body.format(f"c{i}"))
    started = time.perf_counter()
    threads = [threading.Thread(target=blast, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while sum(1 for n in os.listdir(mail_dir) if n.endswith(".eml")) < before + count:
        time.sleep(0.01)
    return count / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
