"""Issue 19 item 7, "cost as the data grows": the `scale` and `soak` scenarios of bench/run.py.

scale: request-reset, complete-reset and authenticate p50/p99 with 1,000 people, then again with
       --scale-people people and --scale-rows historical recovery rows inside their retention
       window; the database's size per person and per thousand recoveries.
soak:  a backlog of --scale-rows rows already past their window, purged by the retention worker
       while a paced client holds --soak-rate requests/s for --soak-seconds; per-minute size,
       rows left, latency and RSS.

`scenarios(h)` takes the harness module and reads its helpers (h.BIN above all, which --bin
reassigns) when a scenario runs, never at import.
"""

import collections
import http.client
import json
import math
import os
import sqlite3
import statistics
import threading
import time

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
KNOWN = 1000  # logins the request-reset load cycles over, the same in every database


def db_file(data):
    return os.path.join(data, "resetd.db")


def db_size(data):
    """resetd.db + its WAL: what the disk holds for the database."""
    p = db_file(data)
    return sum(os.path.getsize(p + ext) for ext in ("", "-wal") if os.path.exists(p + ext))


def checkpoint(data):
    """Moves the WAL into the main file (server stopped), so the main file's size is what counts."""
    c = sqlite3.connect(db_file(data))
    try:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        c.close()
    return db_size(data)


def mib(n):
    return n / 2**20


def import_people(h, data, n, work):
    """n people user0..user{n-1} through `resetd person import` (server stopped); seconds taken."""
    path = os.path.join(work, f"people-{n}.jsonl")
    # Written in a scrambled order (a stride coprime with n): the KNOWN logins the load asks for
    # then sit all over the person table, not in its first pages.
    step = next(s for s in range(7919, 10**6) if math.gcd(s, n) == 1) if n > 1 else 1
    t0 = time.perf_counter()
    with open(path, "w") as f:
        for j in range(n):
            i = j * step % n
            f.write(f'{{"login":"user{i}","email":"user{i}@bench.example","display_name":"User {i}",'
                    f'"roles":["staff"],"attributes":{{"dept":"d{i % 50}"}}}}\n')
    written = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = h.sh([h.BIN, "--data-dir", data, "person", "import", "--tenant", "default", path])
    took = time.perf_counter() - t0
    assert f"imported {n}," in out, out[-500:]
    os.unlink(path)
    return written, took


def add_history(data, tokens, audits, outbox, oldest_ms, newest_ms):
    """Rows of recoveries long finished, written straight into the file with the server stopped:
    one INSERT ... SELECT over a recursive CTE per table, so SQLite's C code does the loop. The
    rows are shaped as crates/resetd-store/src/sqlite/{recovery,audit,outbox}.rs write them.
    Times run from `oldest_ms` to `newest_ms` ago, ascending with the row number. Returns the
    seconds the inserts took and the seconds the close took (it checkpoints the WAL into the file)."""
    now = int(time.time() * 1000)
    c = sqlite3.connect(db_file(data), isolation_level=None)
    try:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # This connection only (not the file's settings): the token hash index is filled at
        # random and must stay in memory; without fsyncs a crash loses only a bench database.
        c.execute("PRAGMA cache_size = -2000000")
        c.execute("PRAGMA synchronous = OFF")
        people = c.execute("SELECT MAX(number) FROM person WHERE tenant = 'default'").fetchone()[0]
        t0 = time.perf_counter()
        c.execute("BEGIN")

        def run(sql, n):
            if n <= 0:
                return
            # at(x): the row's time; who(x): an existing person, scattered over the table.
            span = oldest_ms - newest_ms
            sql = (sql.replace("AT(x)", f"({now - oldest_ms} + x * {span} / {n})")
                   .replace("WHO(x)", f"(SELECT id FROM person WHERE tenant = 'default' AND number = 1 + (x * 7919) % {people})"))
            c.execute("WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < ?) " + sql, (n - 1,))

        # A token lived 30 minutes (token_ttl_secs); a third were used, a third superseded by a
        # newer one (revoked), a third simply expired.
        run("INSERT INTO reset_token (hash, tenant, person, client, created_at, expires_at, used_at, revoked_at, ip, purpose) "
            "SELECT randomblob(32), 'default', WHO(x), NULL, AT(x) - 1800000, AT(x), "
            "CASE x % 3 WHEN 0 THEN AT(x) - 1500000 END, CASE x % 3 WHEN 1 THEN AT(x) - 900000 END, "
            "'192.0.2.' || (x % 250), 'reset' FROM s", tokens)
        # Audit and outbox ids grow with time and retention takes the lowest first, so the old rows
        # get ids below every existing one (the bootstrap's and the import's events), as they
        # would in a database that really is this old.
        base = min(c.execute("SELECT COALESCE(MIN(id), 1) FROM audit_event").fetchone()[0], 1) - audits
        run(f"INSERT INTO audit_event (id, tenant, person, kind, actor, ip, at, detail) "
            f"SELECT {base} + x, 'default', WHO(x), 'reset_requested', 'anonymous', '192.0.2.' || (x % 250), "
            f"AT(x) - 1800000, '{{\"by\":\"login\",\"outcome\":\"token_issued\"}}' FROM s", audits)
        # Sent reset emails: the body is erased once sent (text '', html NULL).
        base = min(c.execute("SELECT COALESCE(MIN(id), 1) FROM outbox").fetchone()[0], 1) - outbox
        run(f"INSERT INTO outbox (id, tenant, kind, recipient, subject, text, html, message_id, attempts, next_attempt_at, "
            f"status, last_error, created_at, sent_at, deliver_by) SELECT {base} + x, 'default', 'reset_link', "
            f"'user' || ((x * 7919) % {people}) || '@bench.example', 'Reset your resetd password', '', NULL, "
            f"'<' || lower(hex(randomblob(16))) || '@resetd.localhost>', 1, AT(x) - 1740000, 'sent', NULL, "
            f"AT(x) - 1800000, AT(x) - 1799000, AT(x) FROM s", outbox)
        c.execute("COMMIT")
    except BaseException:
        c.close()
        raise
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.close()
    return took, time.perf_counter() - t0


# Both databases' servers run side by side and every measurement alternates between them in
# ABBA order: this machine is shared, and other work (builds, other benches) coming and going
# between a "small" block and a "big" block would otherwise pass for the data's cost.
ORDER = ("small", "big", "big", "small")


def measure(h, srvs, args):
    """p50/p99 of the three endpoints on both servers: {name: {endpoint: [wrk figures, ...]}}."""
    out = {name: collections.defaultdict(list) for name in srvs}
    # Argon2-bound: 2 connections (one per wrk thread, as LUA_COMPLETE splits its tokens between
    # 2 threads by id) keep the hashing pool from queueing, so p99 is the request's own cost.
    for srv in srvs.values():
        h.add_people(srv, "auth", 1, password=True)
    for name in ORDER:
        out[name]["authenticate"].append(h.wrk(srvs[name].base + "/v1/default/authenticate",
                                               h.LUA_AUTH % ("auth0", h.GOOD.format(0)), args.seconds, conns=2, threads=2))
    # One fresh token per request, for each of a server's two complete-reset rounds. Complete-
    # reset runs faster than authenticate (one hash each, but less around it), and the machine may
    # be quieter by then: a wrk thread out of tokens fires fast 404s, so twice the best
    # authenticate rate, and at least the 150 hashes/s this machine can reach.
    n = int(max(2 * max(r["rps"] for o in out.values() for r in o["authenticate"]), 150) * args.seconds) + 50
    files = {}
    for name, srv in srvs.items():
        h.add_people(srv, "cr", 2 * n)
        tokens = [tok for _, tok in h.collect_tokens(srv, "cr", 2 * n)]
        assert len(tokens) == 2 * n, (name, len(tokens), 2 * n)
        files[name] = []
        for half in (tokens[:n], tokens[n:]):
            files[name].append(os.path.join(srv.data_dir, f"tokens-{len(files[name])}.txt"))
            with open(files[name][-1], "w") as f:
                f.write("\n".join(half) + "\n")
    # A drain before each round, as run.py's reset_runs: the queue a round leaves behind would
    # otherwise land in the next one. wrk's own default of 10 connections: both cores busy, few
    # enough that p99 is not mostly queue.
    for kind, prefix in (("known", "user"), ("unknown", "ghost")):
        for name in ORDER:
            h.drain(srvs[name])
            out[name][f"request reset, {kind}"].append(h.wrk(srvs[name].base + "/", h.LUA_RESET % (prefix, KNOWN),
                                                             args.seconds, conns=10, threads=2))
    for name in ORDER:
        h.drain(srvs[name])
        out[name]["complete reset"].append(h.wrk(srvs[name].base + "/", h.LUA_COMPLETE % files[name].pop(0),
                                                 args.seconds, conns=2, threads=2))
    return out


def build(h, args, work, name, people, rows):
    """A data directory with `people` imported and `rows` historical rows; the sizes and times."""
    data = os.path.join(work, name)
    os.makedirs(data)
    h.Server(data).stop()  # the first serve migrates and creates the tenant "default" and the key
    f = {"empty": checkpoint(data)}
    f["jsonl_s"], f["import_s"] = import_people(h, data, people, work)
    f["people"] = checkpoint(data)
    f["history_s"] = f["checkpoint_s"] = 0.0
    if rows:
        # Inside every retention window, so they stay for the measurement: tokens expired 1 to 20
        # hours ago (deleted a day after expiry), audit events as old (kept a year).
        f["history_s"], f["checkpoint_s"] = add_history(data, rows // 2, rows - rows // 2, 0, 20 * HOUR_MS, HOUR_MS)
    f["history"] = checkpoint(data)
    return data, f


def scenario_scale(h, args, work):
    t_start = time.perf_counter()
    built, srvs = {}, {}
    for name, people, rows in (("small", 1000, 0), ("big", args.scale_people, args.scale_rows)):
        data, f = build(h, args, work + "/scale", name, people, rows)
        print(f"  ({name}: {people:,} people imported in {f['import_s']:.1f} s (JSONL written in {f['jsonl_s']:.1f} s), "
              f"{rows:,} rows in {f['history_s']:.1f} s, checkpoint {f['checkpoint_s']:.1f} s, {mib(f['history']):.1f} MiB)", flush=True)
        built[name] = f
    # The generated gigabytes are still being written back to the disk; the servers' fsyncs
    # would queue behind that and their first rounds pass it off as the data's cost (seen: a
    # first-round p99 of 329 ms against 29 ms in the second).
    t0 = time.perf_counter()
    os.sync()
    print(f"  (sync {time.perf_counter() - t0:.1f} s)", flush=True)
    for name in built:
        srvs[name] = h.Server(os.path.join(work, "scale", name))
    try:
        got = measure(h, srvs, args)
    finally:
        for srv in srvs.values():
            srv.stop()
    label = f"{args.scale_people:,} people + {args.scale_rows:,} rows"
    for ep in got["small"]:
        # Each figure is the mean over a database's two rounds; errors are summed.
        s, b = ({k: statistics.mean(r[k] for r in got[n][ep]) for k in ("p50", "p99", "rps")} for n in ("small", "big"))
        errs = [sum(r["errors"] for r in got[n][ep]) for n in ("small", "big")]
        ratio = b["p99"] / s["p99"]
        rounds = ", ".join(n + " " + "/".join(f"{r['p99']:.1f}" for r in got[n][ep]) for n in ("small", "big"))
        h.row(f"scale, {ep}, c={10 if ep.startswith('request') else 2}, 1,000 people vs {label}",
              f"p99 {s['p99']:.2f} -> {b['p99']:.2f} ms ({ratio:.2f} x), p50 {s['p50']:.2f} -> {b['p50']:.2f} ms, "
              f"{s['rps']:,.0f} / {b['rps']:,.0f} req/s, err {errs[0]}/{errs[1]} (p99 per round: {rounds})", "<= 1.20 x", ratio <= 1.2 and errs == [0, 0])
    fs, fb = built["small"], built["big"]
    per_person = (fb["people"] - fb["empty"]) / args.scale_people
    small_pp = (fs["people"] - fs["empty"]) / 1000
    h.row(f"scale, database per person ({args.scale_people:,} imported)",
          f"{per_person:,.0f} bytes ({mib(fb['people']):,.1f} MiB in all; {small_pp:,.0f} bytes at 1,000)", "")
    if args.scale_rows:
        grown = fb["history"] - fb["people"]
        h.row(f"scale, database per thousand recoveries ({args.scale_rows // 2:,} tokens + {args.scale_rows - args.scale_rows // 2:,} audit events)",
              f"{grown / args.scale_rows * 1000 / 1024:,.1f} KiB per 1,000 rows = {grown / (args.scale_rows / 2) * 1000 / 1024:,.1f} KiB "
              f"per 1,000 recoveries (token + its audit event); {mib(fb['history']):,.1f} MiB in all", "")
    h.row("scale, generation", f"import {fb['import_s']:.1f} s ({args.scale_people / fb['import_s']:,.0f} rows/s), history "
          f"{fb['history_s']:.1f} s ({args.scale_rows / max(fb['history_s'], 1e-9):,.0f} rows/s), checkpoint {fb['checkpoint_s']:.1f} s; "
          f"scenario {time.perf_counter() - t_start:.0f} s", "")


class Paced:
    """A fixed-rate client: slot i is due at t0 + i/rate and goes out on keep-alive connection
    i % threads. Latency is counted from the slot, not from the send, so a request held up
    behind a stalled one counts its wait too (no coordinated omission)."""

    def __init__(self, port, rate, seconds, pick, threads=16):
        self.port, self.rate, self.pick, self.threads = port, rate, pick, threads
        self.t0 = time.perf_counter() + 0.5
        self.end = self.t0 + seconds
        self.lock = threading.Lock()
        self.minutes = collections.defaultdict(list)  # minute -> [(kind, ms, ok)]
        self.workers = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(threads)]
        for w in self.workers:
            w.start()

    def run(self, k):
        conn, i = None, k
        while True:
            due = self.t0 + i / self.rate
            if due >= self.end:
                break
            time.sleep(max(0.0, due - time.perf_counter()))
            kind, path, body = self.pick(i)
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", path, body, {"content-type": "application/json"})
                res = conn.getresponse()
                res.read()
                ok = 200 <= res.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = None
            done = time.perf_counter()
            with self.lock:
                self.minutes[int((done - self.t0) // 60)].append((kind, (done - due) * 1000, ok))
            i += self.threads
        if conn:
            conn.close()

    def minute(self, m):
        with self.lock:
            return list(self.minutes.get(m, []))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def census(data, backlog_only=False):
    """Read-only look at the live database (WAL lets it read while the server writes). The counts
    scan an index, a second or so at the full backlog: the same cost in every minute's sample."""
    c = sqlite3.connect(f"file:{db_file(data)}?mode=ro", uri=True, timeout=30)
    try:
        now = int(time.time() * 1000)
        # The backlog: tokens expired over a day ago, the old audit and email rows (ids < 0).
        left = c.execute("SELECT EXISTS (SELECT 1 FROM reset_token WHERE expires_at < ?) "
                         "OR EXISTS (SELECT 1 FROM audit_event WHERE id < 0) OR EXISTS (SELECT 1 FROM outbox WHERE id < 0)",
                         (now - DAY_MS,)).fetchone()[0]
        if backlog_only:
            return {"backlog": bool(left)}
        q = lambda sql: c.execute(sql).fetchone()[0]
        size, free = q("PRAGMA page_size"), q("PRAGMA freelist_count")
        return {"backlog": bool(left), "tokens": q("SELECT count(*) FROM reset_token"),
                "audit": q("SELECT count(*) FROM audit_event"), "outbox": q("SELECT count(*) FROM outbox"),
                "live": (q("PRAGMA page_count") - free) * size}
    finally:
        c.close()


def scenario_soak(h, args, work):
    data = os.path.join(work, "soak")
    os.makedirs(data)
    # The minimum windows (config/retention.rs enforces them): a backlog made older than these
    # is deleted at once, and a short interval shows the worker going back to it.
    cfg = "[retention]\ntokens_after_secs = 86400\noutbox_after_secs = 3600\naudit_after_secs = 86400\ninterval_secs = 10\n"
    h.Server(data, cfg).stop()
    people = 10_000
    import_people(h, data, people, work)
    rows = args.scale_rows
    tokens, outbox = rows * 2 // 5, rows // 5
    # Past every window: tokens expired 2 to 30 days ago, the audit events and sent emails with them.
    took = sum(add_history(data, tokens, rows - tokens - outbox, outbox, 30 * DAY_MS, 2 * DAY_MS))
    start = checkpoint(data)
    os.sync()  # as in scale: no write-back of the generated rows under the load's fsyncs
    h.row(f"soak, backlog past its window ({tokens:,} tokens, {rows - tokens - outbox:,} audit events, {outbox:,} sent emails; {people:,} people)",
          f"written in {took:.1f} s; database {mib(start):,.1f} MiB", "")
    srv = h.Server(data, cfg)  # the retention worker starts on the backlog at once
    h.add_people(srv, "auth", 1, password=True)
    auth_body = json.dumps({"login": "auth0", "password": h.GOOD.format(0)})

    def pick(i):
        # 1 in 100 an authenticate (Argon2: kept few so it does not set the rate); the rest half
        # known logins (a token and an email once per person per 60 s cool-down), half unknown.
        if i % 100 == 0:
            return "auth", "/v1/default/authenticate", auth_body
        who = f"user{i // 2 % KNOWN}" if i % 2 else f"ghost{i // 2 % KNOWN}"
        return "reset", "/v1/default/recovery", '{"login":"%s"}' % who

    load = Paced(srv.port, args.soak_rate, args.soak_seconds, pick)
    print(f"  {'min':>4} {'db MiB':>8} {'live MiB':>8} {'tokens':>10} {'audit':>10} {'outbox':>9} {'reqs':>6} "
          f"{'non2xx':>6} {'reset p50':>9} {'p99 ms':>7} {'auth p99':>8} {'RSS MiB':>7}", flush=True)
    samples, purged = [], None  # purged: (seconds after start, size) when the backlog was gone

    def sample(m):
        c = census(data)
        got = load.minute(m - 1) if m else []
        reset = [ms for k, ms, _ in got if k == "reset"]
        s = dict(c, minute=m, size=db_size(data), n=len(got), bad=sum(1 for *_, ok in got if not ok),
                 p50=pct(reset, 50), p99=pct(reset, 99), auth=pct([ms for k, ms, _ in got if k == "auth"], 99),
                 rss=h.rss_kib(srv.proc.pid, "VmRSS") / 1024)
        samples.append(s)
        print(f"  {m:>4} {mib(s['size']):>8.1f} {mib(s['live']):>8.1f} {s['tokens']:>10,} {s['audit']:>10,} {s['outbox']:>9,} "
              f"{s['n']:>6} {s['bad']:>6} {s['p50']:>9.2f} {s['p99']:>7.2f} {s['auth']:>8.1f} {s['rss']:>7.1f}", flush=True)

    sample(0)
    minutes = math.ceil(args.soak_seconds / 60)
    for m in range(1, minutes + 1):
        # Between the minute samples, a cheap EXISTS look every 5 s catches the end of the purge.
        while time.perf_counter() < min(load.t0 + m * 60, load.end + 1):
            time.sleep(5)
            if purged is None and not census(data, backlog_only=True)["backlog"]:
                purged = (time.perf_counter() - load.t0, db_size(data))
                print(f"  backlog purged after {purged[0]:.0f} s: {mib(purged[1]):.1f} MiB", flush=True)
        for w in load.workers if m == minutes else ():
            w.join()
        sample(m)
    srv.stop()

    end = samples[-1]
    every = [x for m in range(max(load.minutes, default=0) + 1) for x in load.minute(m)]
    h.row(f"soak, fixed load {args.soak_rate}/s for {args.soak_seconds} s (1 % authenticate, the rest reset known/unknown)",
          f"{len(every):,} requests, non-2xx or failed {sum(1 for *_, ok in every if not ok):,}, RSS {samples[0]['rss']:.0f} -> {end['rss']:.0f} MiB",
          f"{args.soak_rate * args.soak_seconds:,} due")
    h.row("soak, database size at start (before the purge)", f"{mib(start):,.1f} MiB", "")
    if purged is None:
        h.row("soak, backlog purged", "not purged by the end", "purged", False)
    else:
        h.row("soak, backlog purged while the load ran", f"after {purged[0]:.0f} s ({rows / purged[0]:,.0f} rows/s); "
              f"{mib(purged[1]):,.1f} MiB (the file keeps its freed pages)", "")
        grew = (end["size"] - purged[1]) / purged[1] * 100
        h.row("soak, size at the end vs when the purge finished",
              f"{mib(end['size']):,.1f} MiB ({grew:+.1f} %); live data {mib(end['live']):,.1f} MiB, tokens {end['tokens']:,}, audit {end['audit']:,}",
              "flat: <= +5 %", grew <= 5)
    p99s = [s["p99"] for s in samples[1:] if s["n"]]
    if p99s:
        med, worst = statistics.median(p99s), max(p99s)
        # Minute m covers [m - 1, m) minutes of load: it saw the purge if that began before it ended.
        during = [s["p99"] for s in samples[1:] if s["n"] and (purged is None or (s["minute"] - 1) * 60 < purged[0])]
        h.row("soak, request-reset p99 per minute", f"max {worst:.2f} ms (minute {p99s.index(worst) + 1}), median minute {med:.2f} ms, "
              f"first minute {p99s[0]:.2f} ms, worst while purging {max(during, default=float('nan')):.2f} ms",
              "no minute > 2 x the median minute", worst <= 2 * med)


def scenarios(h):
    """run.py's scenarios `fn(args, work)`, bound to the harness module `h`."""
    return {"scale": lambda args, work: scenario_scale(h, args, work),
            "soak": lambda args, work: scenario_soak(h, args, work)}
