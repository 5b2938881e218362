"""Dashboard benchmark: API latency on 10,000,000 raw rows (SQLite and PostgreSQL side by side),
live-tail lag from a line written on the proxy to the browser's event stream, and the memory of
``serve`` with 10 open dashboards.

1. API: a database of each dialect gets ``--rows`` raw rows (60 % access.log, 40 % helper
   decisions; 3 proxies, 6,000 clients, about 3,000 hosts, 12 categories, spread over the last 7
   days), made by SQL (a recursive CTE in SQLite, generate_series in PostgreSQL) with the
   secondary indexes dropped and re-created afterwards; the rollups are then computed by the
   ingest's own rollup statements, and the search postings by monitor/postings.py's
   rebuild. ``serve`` runs on it (a real process, real HTTP, logged in) and each API call
   of the dashboard is timed ``--repeat`` times: p50/p95 per call, p95 over all. Then
   serve's RSS.
2. Lag: a private sshd on 127.0.0.1, the shipper (its default settings) following a local
   access.log, ``ingest`` (default settings) and ``serve`` (default settings) on a fresh SQLite
   database, and an SSE client on the live tail. A writer appends ``--rate`` lines/s for
   ``--seconds``, each carrying its write time; lag = arrival in the event stream - write.
   Meanwhile 10 dashboards are open (each: the event stream + /api/overview every 5 s, as the
   page does) and serve's RSS is sampled: its memory with 10 open dashboards.
3. What the dashboard's coarse rollups cost ingest: lines/s of one access.log into SQLite with
   the full schema, without migration 5's triggers (fleet-wide hourly top lists), and without
   those and migration 3's (hourly and daily rollups). (The search postings of migration 4
   are written by ingest itself; bench/monitor_ingest.py measures ingest as a whole.)

Usage: python bench/monitor_api.py [--rows 10000000] [--repeat 20] [--rate 1000] [--seconds 30]
       [--only api|lag|triggers] [--dialects sqlite,postgresql] [--reuse-sqlite FILE]
       [--trigger-lines 500000] [--trigger-rounds 3]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from squidguard_bloom.monitor import postings
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.migrate import open_database

PASSWORD = "bench password 1"
DAY = 86400
SPAN = 7 * DAY
CATEGORIES = ("ads", "adult", "malware", "gambling", "phishing", "tracking", "warez", "proxy",
              "drugs", "violence", "hacking", "dating")


# -- data -------------------------------------------------------------------------------------

def _access_sql(dialect: str) -> str:
    if dialect == "sqlite":
        series = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                  "SELECT i, (i * 2654435761) % 4000 AS x FROM n")
        div = "/"
    else:
        series = "SELECT i, (i * 2654435761) % 4000 AS x FROM generate_series(0::bigint, ?) i"
        div = "/"
    host = f"'h' || ((x * x) {div} 4000) || '.example'"
    return (
        "INSERT INTO access (proxy_id, ts, elapsed_ms, client, result, status, bytes, method, "
        "url, host, ident, hierarchy, peer, mime) "
        "SELECT (i % 3) + 1, ? + i * ?, i % 500, "
        f"'10.' || (i % 3) || '.' || (((i {div} 3) * 7919) % 20) || '.' || "
        f"(((i {div} 3) * 104729) % 100), "
        "CASE (i * 31) % 10 WHEN 0 THEN 'TCP_HIT' WHEN 1 THEN 'TCP_MEM_HIT' "
        "WHEN 2 THEN 'TCP_REFRESH_UNMODIFIED' WHEN 3 THEN 'TCP_TUNNEL' ELSE 'TCP_MISS' END, "
        f"200, (i * 37) % 100000, 'GET', 'http://' || {host} || '/p' || i, {host}, '-', "
        f"'HIER_DIRECT', '192.0.2.1', 'text/html' FROM ({series}) s")


def _decision_sql(dialect: str) -> str:
    if dialect == "sqlite":
        series = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                  "SELECT i, (i * 2654435761) % 500 AS x FROM n")
    else:
        series = "SELECT i, (i * 2654435761) % 500 AS x FROM generate_series(0::bigint, ?) i"
    cats = " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(CATEGORIES))
    host = "'blocked' || x || '.example'"
    return (
        "INSERT INTO decisions (proxy_id, ts, pid, source, target, rewrite, url, host, client, "
        "fqdn, ident, method, action) "
        "SELECT (i % 3) + 1, ? + i * ?, 4000 + i % 8, 'default', "
        f"CASE WHEN i % 10 = 0 THEN 'welcome' ELSE CASE x % 12 {cats} END END, '-', "
        f"'http://' || {host} || '/q' || i, {host}, "
        "'10.' || (i % 3) || '.' || (((i / 3) * 7919) % 20) || '.' || "
        "(((i / 3) * 104729) % 100), '-', '-', 'GET', "
        "CASE WHEN i % 10 = 0 THEN 'WELCOME' WHEN i % 10 = 1 THEN 'PASS' ELSE 'REDIRECT' END "
        f"FROM ({series}) s")


def _secondary_indexes(db: Database) -> list[tuple[str, str]]:
    if db.dialect == "sqlite":
        return [(n, s) for n, s in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('access', 'decisions')")]
    return [(n, s) for n, s in db.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('access', 'decisions') "
        "AND indexname NOT LIKE '%pkey'")]


HIT = ("(CASE WHEN result LIKE '%HIT%' OR result LIKE 'TCP_REFRESH_UNMODIFIED%' "
       "OR result LIKE 'TCP_REFRESH_FAIL_OLD%' THEN 1 ELSE 0 END)")  # as monitor/cache.py


def rollup_sql(db: Database) -> list[str]:
    """The ingest's rollups of every raw row, computed by SQL (the triggers of migrations 3 and
    5 sum them into the hourly, daily and fleet-wide tables as ingest's upserts would)."""
    minute, hour = db.bucket("ts", 60), db.bucket("ts", 3600)
    return [
        "INSERT INTO rollup_lines (minute, proxy_id, kind, lines, unparsed) "
        f"SELECT {minute}, proxy_id, 'access', count(*), 0 FROM access GROUP BY 1, 2",
        "INSERT INTO rollup_lines (minute, proxy_id, kind, lines, unparsed) "
        f"SELECT {minute}, proxy_id, 'helper', count(*), 0 FROM decisions GROUP BY 1, 2",
        "INSERT INTO rollup_decisions (minute, proxy_id, target, action, n) "
        f"SELECT {minute}, proxy_id, target, action, count(*) FROM decisions "
        "GROUP BY 1, 2, 3, 4",
        "INSERT INTO rollup_cache (minute, proxy_id, result, status, hit, n, bytes, elapsed_ms) "
        f"SELECT {minute}, proxy_id, result, status, {HIT}, count(*), sum(bytes), "
        "sum(elapsed_ms) FROM access GROUP BY 1, 2, 3, 4",
        "INSERT INTO rollup_blocked_hosts (hour, proxy_id, target, host, n) "
        f"SELECT {hour}, proxy_id, target, host, count(*) FROM decisions "
        "WHERE action = 'REDIRECT' GROUP BY 1, 2, 3, 4",
        "INSERT INTO rollup_hosts (hour, proxy_id, host, n, hits, bytes, hit_bytes) "
        f"SELECT {hour}, proxy_id, host, count(*), sum(h), sum(bytes), sum(h * bytes) FROM "
        f"(SELECT ts, proxy_id, host, bytes, {HIT} AS h FROM access) a GROUP BY 1, 2, 3",
        "INSERT INTO rollup_clients (hour, proxy_id, client, requests, bytes, blocks) "
        f"SELECT {hour}, proxy_id, client, count(*), sum(bytes), 0 FROM access "
        "GROUP BY 1, 2, 3",
        "INSERT INTO rollup_clients (hour, proxy_id, client, requests, bytes, blocks) "
        f"SELECT {hour}, proxy_id, client, 0, 0, count(*) FROM decisions "
        "WHERE action = 'REDIRECT' GROUP BY 1, 2, 3 "
        "ON CONFLICT (hour, proxy_id, client) DO UPDATE SET "
        "blocks = rollup_clients.blocks + excluded.blocks",
    ]


def fill(db: Database, rows: int, now: float) -> dict[str, float]:
    """rows raw rows ending at now, their rollups, three proxies with a helper state line."""
    took: dict[str, float] = {}
    n_access = rows * 6 // 10
    n_dec = rows - n_access
    start = now - SPAN
    t = time.monotonic()
    indexes = _secondary_indexes(db)
    with db.transaction():
        for name, _sql in indexes:
            db.execute(f"DROP INDEX {name}")
        for i, name in enumerate(("proxy-a", "proxy-b", "proxy-c"), 1):
            db.execute("INSERT INTO proxies (name, first_seen, last_received, last_line_ts) "
                       "VALUES (?, ?, ?, ?)", (name, start, now, now))
            db.execute("INSERT INTO events (proxy_id, stream_id, ts, origin, pid, level, kind, "
                       "message) VALUES (?, NULL, ?, 'helper', 4000, 'INFO', 'ready', "
                       "'squidguard-bloom ready for requests')", (i, start))
        db.execute(_access_sql(db.dialect), (start, SPAN / n_access, n_access - 1))
        db.execute(_decision_sql(db.dialect), (start, SPAN / n_dec, n_dec - 1))
    took["insert"] = time.monotonic() - t
    t = time.monotonic()
    with db.transaction():
        for _name, sql in indexes:
            db.execute(sql)
    took["indexes"] = time.monotonic() - t
    t = time.monotonic()
    with db.transaction():
        for sql in rollup_sql(db):
            db.execute(sql)
    took["rollups"] = time.monotonic() - t
    t = time.monotonic()
    with db.transaction():
        for sql in postings.rebuild_sql(db):
            db.execute(sql)
    took["search postings"] = time.monotonic() - t
    if db.dialect == "postgresql":
        db.execute("VACUUM ANALYZE")
    else:
        db.execute("ANALYZE")
    return took


# -- serve and its client ---------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def monitor_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "squidguard_bloom.monitor", *args]


class Serve:
    def __init__(self, db: str, log: Path, *extra: str) -> None:
        subprocess.run(monitor_cmd("--db", db, "createuser", "bench", "--password-stdin"),
                       input=PASSWORD + "\n", text=True, check=True, capture_output=True)
        self.port = free_port()
        self.out = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(monitor_cmd("--db", db, "serve", "--port", str(self.port),
                                                 *extra),
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request(
                    "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        self.cookie = self.login()

    def login(self) -> str:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/login")
        r = c.getresponse()
        page = r.read().decode()
        nonce = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        jar = r.getheader("Set-Cookie").split(";")[0]
        body = urllib.parse.urlencode({"csrf": nonce, "user": "bench", "password": PASSWORD})
        c.request("POST", "/login", body, {"Cookie": jar,
                                           "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        cookie = [h for k, h in r.getheaders() if k == "Set-Cookie" and "sgbm_session" in h]
        return cookie[0].split(";")[0]

    def get(self, path: str) -> tuple[float, int, int]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        t = time.perf_counter()
        c.request("GET", path, headers={"Cookie": self.cookie})
        r = c.getresponse()
        body = r.read()
        return time.perf_counter() - t, r.status, len(body)

    def rss(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        get = lambda k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1))  # noqa: E731
        return get("VmRSS"), get("VmHWM")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def api_calls(now: float) -> list[tuple[str, str]]:
    day = now - DAY
    week = now - SPAN
    return [
        ("overview 1h", "/api/overview?range=1h"),
        ("overview 6h", "/api/overview?range=6h"),
        ("overview 24h", "/api/overview?range=24h"),
        ("overview 7d", "/api/overview?range=7d"),
        ("overview 30d", "/api/overview?range=30d"),
        ("overview 24h, one proxy", "/api/overview?range=24h&proxy=proxy-b"),
        ("search decisions, 24h, first page", f"/api/search?from={day}"),
        ("search decisions, 24h, page after 10,000 rows", None),  # filled in below
        ("search decisions by client, 7d", f"/api/search?from={week}&client=10.1.7.42"),
        ("search decisions by domain, 7d", f"/api/search?from={week}&domain=blocked42.example"),
        ("search decisions by category, 24h", f"/api/search?from={day}&category=malware"),
        ("search decisions by action, 24h", f"/api/search?from={day}&action=WELCOME"),
        ("search access by cache result, 24h",
         f"/api/search?kind=access&from={day}&result=TCP_HIT"),
        ("search access by client, 7d", f"/api/search?kind=access&from={week}&client=10.2.3.4"),
        ("search access by domain, 1h", f"/api/search?kind=access&from={now - 3600}"
                                        "&domain=h10.example"),
        ("CSV export, one client, 7d", f"/api/search.csv?from={week}&client=10.1.7.42"),
    ]


def bench_api(dialect: str, url: str, rows: int, repeat: int, work: Path,
              filled: bool = False) -> dict:
    now = time.time()
    with open_database(url) as db:
        took = {"insert": 0.0, "indexes": 0.0, "rollups": 0.0} if filled else fill(db, rows, now)
        if filled:
            now = float(db.scalar("SELECT max(ts) FROM access"))
        counts = (db.scalar("SELECT count(*) FROM access"),
                  db.scalar("SELECT count(*) FROM decisions"))
        sizes = db.table_bytes()
    print(f"  {dialect}: {counts[0]:,} access + {counts[1]:,} decisions rows; insert "
          f"{took['insert']:.0f} s, indexes {took['indexes']:.0f} s, rollups "
          f"{took['rollups']:.0f} s; database {sum(sizes.values()) / 1e9:.2f} GB", flush=True)
    # cold: every call computes (no shared top lists); the cached figures follow
    serve = Serve(url, work / f"serve-{dialect}.log", "--cache-seconds", "0")
    results: dict[str, list[float]] = {}
    try:
        calls = api_calls(now)
        # the deep page: follow the cursor 200 pages of 50 once, then time that page
        cursor = None
        for _ in range(200):
            c = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=120)
            path = f"/api/search?from={now - DAY}" + (f"&before={cursor}" if cursor else "")
            c.request("GET", path, headers={"Cookie": serve.cookie})
            cursor = json.loads(c.getresponse().read())["next"]
        deep = next(i for i, (_n, p) in enumerate(calls) if p is None)
        calls[deep] = (calls[deep][0], f"/api/search?from={now - DAY}&before={cursor}")
        for name, path in calls:
            serve.get(path)  # warm
            times = []
            for _ in range(repeat):
                seconds, status, _size = serve.get(path)
                assert status == 200, (name, status)
                times.append(seconds)
            results[name] = times
        rss = serve.rss()
    finally:
        serve.stop()
    # as served (top lists of 6 h and more shared for 30 s): each page's call, the first
    # computing, the next ones within 30 s reading what it computed
    serve = Serve(url, work / f"serve-{dialect}.log")
    try:
        for name in ("overview 6h", "overview 24h", "overview 7d", "overview 30d"):
            path = dict(calls)[name]
            results[f"{name}, as served (30 s shared top lists)"] = [
                serve.get(path)[0] for _ in range(repeat)]
    finally:
        serve.stop()
    return {"results": results, "rss": rss, "took": took, "rows": counts}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


# -- lag and memory ---------------------------------------------------------------------------

class SSE(threading.Thread):
    """An event-stream client; records (arrival time, row) of the live tail."""

    def __init__(self, port: int, cookie: str, query: str) -> None:
        super().__init__(daemon=True)
        self.port, self.cookie, self.query = port, cookie, query
        self.rows: list[tuple[float, dict]] = []
        self.events = 0
        self.stop = threading.Event()

    def run(self) -> None:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", "/api/live?" + self.query, headers={"Cookie": self.cookie})
        r = c.getresponse()
        event = ""
        while not self.stop.is_set():
            line = r.fp.readline()
            if not line:
                break
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: "):
                self.events += 1
                if event == "rows":
                    now = time.time()
                    self.rows.extend((now, row) for row in json.loads(text[6:])["rows"])


def bench_lag(rate: int, seconds: float, work: Path) -> dict:
    from tests.shipper.servers import Sshd

    sshd = Sshd(work / "sshd")
    local = work / "proxy"
    local.mkdir()
    access = local / "access.log"
    access.touch()
    remote = sshd.data / "incoming"
    remote.mkdir()
    db = str(work / "lag.db")
    procs: list[subprocess.Popen] = []
    logs = []

    def start(argv: list[str], name: str) -> subprocess.Popen:
        out = open(work / f"{name}.log", "wb")  # noqa: SIM115
        logs.append(out)
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    start([sys.executable, "-m", "squidguard_bloom.shipper", "--host", "127.0.0.1", "--port",
           str(sshd.port), "--user", sshd.user, "--key", str(sshd.client_key), "--known-hosts",
           str(sshd.known_hosts), "--remote-dir", str(remote), "--state-dir",
           str(work / "state"), "--file", f"access={access}"], "shipper")
    subprocess.run(monitor_cmd("--db", db, "migrate"), check=True, capture_output=True)
    start(monitor_cmd("--db", db, "ingest", "--proxy", f"lagproxy={remote}"), "ingest")
    serve = Serve(db, work / "serve-lag.log")
    rss_idle = serve.rss()
    try:
        tail = SSE(serve.port, serve.cookie, "tail=1&kind=access")
        dashboards = [SSE(serve.port, serve.cookie, "") for _ in range(10)]
        for t in (tail, *dashboards):
            t.start()
        stop = threading.Event()
        samples: list[int] = []

        def overview_loop() -> None:  # what each open dashboard page fetches
            while not stop.wait(5.0):
                for _ in dashboards:
                    serve.get("/api/overview?range=1h")
                samples.append(serve.rss()[0])

        poller = threading.Thread(target=overview_loop, daemon=True)
        poller.start()
        time.sleep(2.0)
        written = 0
        began = time.monotonic()
        with open(access, "a", encoding="ascii") as fh:
            while (elapsed := time.monotonic() - began) < seconds:
                due = int(elapsed * rate) - written
                if due > 0:
                    now = time.time()
                    fh.write("".join(
                        f"{now:.3f}      5 10.0.0.{(written + k) % 250} TCP_MISS/200 512 GET "
                        f"http://lag.example/{written + k}/{now!r} - HIER_DIRECT/192.0.2.1 "
                        "text/html\n" for k in range(due)))
                    fh.flush()
                    written += due
                time.sleep(0.002)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(tail.rows) < written:
            time.sleep(0.1)
        stop.set()
        poller.join()
        rss_busy = serve.rss()
        lags = []
        for arrived, row in tail.rows:
            sent = float(row["url"].rsplit("/", 1)[1])
            lags.append(arrived - sent)
        for t in (tail, *dashboards):
            t.stop.set()
        return {"written": written, "received": len(tail.rows), "lags": lags,
                "rss_idle": rss_idle, "rss_busy": rss_busy, "rss_samples": samples,
                "dashboard_events": min(d.events for d in dashboards)}
    finally:
        serve.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
        sshd.stop()


def bench_triggers(lines: int, work: Path, rounds: int = 3) -> dict[str, list[float]]:
    """Ingest lines/s of one access.log into SQLite with the full schema, without migration 5's
    triggers, and without those and migration 3's: rounds rounds, the three in turn (so that a
    busy spell of the machine hits them alike); every round's figure per configuration."""
    from squidguard_bloom.monitor.ingest import Ingest

    src = work / "triggers"
    seg = src / "p" / "access"
    seg.mkdir(parents=True)
    start = time.time() - 86400
    with open(seg / "00000001-1-1.log", "w", encoding="ascii") as fh:
        for i in range(lines):
            x = (i * 2654435761) % 4000
            fh.write(f"{start + i * 86400 / lines:.3f}     12 10.{i % 3}.{i % 20}.{i % 100} "
                     f"TCP_{'HIT' if i % 3 == 0 else 'MISS'}/200 {i % 9000} GET "
                     f"http://h{x * x // 4000}.example/p{i} - HIER_DIRECT/192.0.2.1 "
                     "text/html\n")
    out: dict[str, list[float]] = {}
    configs = ("full schema", "without migration 5's triggers (fleet-wide)",
               "without the triggers")
    for r in range(rounds):
        for k, name in enumerate(configs):
            path = work / f"triggers-{r}-{k}.db"
            with open_database(str(path)) as db:
                if k >= 1:
                    for (trigger,) in db.execute(
                            "SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                        if k >= 2 or "_fleet_" in trigger:
                            db.execute(f"DROP TRIGGER {trigger}")
                t = time.perf_counter()
                Ingest(db, roots=[src]).run(once=True)
                out.setdefault(name, []).append(lines / (time.perf_counter() - t))
            path.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--only", choices=("api", "lag", "triggers"))
    ap.add_argument("--trigger-lines", type=int, default=500_000)
    ap.add_argument("--trigger-rounds", type=int, default=3)
    ap.add_argument("--dialects", default="sqlite,postgresql")
    ap.add_argument("--reuse-sqlite", type=Path, metavar="FILE",
                    help="a SQLite file this script filled before (skips the fill); "
                         "filled and kept if it does not exist")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sgb-bench-api-"))
    print(f"bench/monitor_api.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs", flush=True)
    try:
        if args.only in (None, "api"):
            runs = {}
            for dialect in args.dialects.split(","):
                if dialect == "sqlite":
                    reuse = args.reuse_sqlite
                    runs[dialect] = bench_api(dialect, str(reuse or work / "api.db"), args.rows,
                                              args.repeat, work,
                                              filled=reuse is not None and reuse.exists())
                else:
                    from tests.monitor.pgserver import PostgresServer

                    server = PostgresServer()
                    try:
                        runs[dialect] = bench_api(dialect, server.new_database(), args.rows,
                                                  args.repeat, work)
                    finally:
                        server.stop()
            names = list(next(iter(runs.values()))["results"])
            width = max(len(n) for n in names)
            print(f"\nAPI latency, ms (p50 / p95 of {args.repeat} calls each, after one warm-up; "
                  "cold: nothing cached in serve)")
            print(f"  {'call':<{width}}  " + "  ".join(f"{d:>17}" for d in runs))
            for name in names:
                cells = []
                for run in runs.values():
                    t = run["results"][name]
                    cells.append(f"{1000 * statistics.median(t):7.1f} / "
                                 f"{1000 * pct(t, 95):7.1f}")
                print(f"  {name:<{width}}  " + "  ".join(f"{c:>17}" for c in cells))
            for d, run in runs.items():
                every = [x for n, t in run["results"].items() if "as served" not in n for x in t]
                print(f"  {d}: p95 over all cold calls {1000 * pct(every, 95):.1f} ms; serve RSS "
                      f"{run['rss'][0] / 1024:.0f} MB (peak {run['rss'][1] / 1024:.0f} MB)")
        if args.only in (None, "lag"):
            lag = bench_lag(args.rate, args.seconds, work)
            lags = lag["lags"]
            print(f"\nLive-tail lag, {args.rate} lines/s for {args.seconds:g} s: proxy's "
                  "access.log -> shipper -> sshd -> ingest -> serve -> event stream")
            print(f"  lines written {lag['written']:,}, received in the tail "
                  f"{lag['received']:,}")
            if lags:
                print(f"  lag p50 {1000 * statistics.median(lags):.0f} ms, p95 "
                      f"{1000 * pct(lags, 95):.0f} ms, p99 {1000 * pct(lags, 99):.0f} ms, "
                      f"max {1000 * max(lags):.0f} ms")
            busy = lag["rss_busy"]
            print(f"\nserve memory: {lag['rss_idle'][0] / 1024:.0f} MB after start; with 10 "
                  f"open dashboards (each: event stream + /api/overview every 5 s) and the tail "
                  f"at {args.rate} lines/s: {busy[0] / 1024:.0f} MB "
                  f"(peak {busy[1] / 1024:.0f} MB); each dashboard got "
                  f">= {lag['dashboard_events']} events")
        if args.only in (None, "triggers"):
            cost = bench_triggers(args.trigger_lines, work, args.trigger_rounds)
            print(f"\nIngest of {args.trigger_lines:,} access.log lines into SQLite, lines/s "
                  f"(best and median of {args.trigger_rounds} rounds; us/line: what the "
                  "configuration costs over the next one, from the best figures)")
            names = list(cost)
            for i, name in enumerate(names):
                best = max(cost[name])
                extra = ""
                if i + 1 < len(names):
                    extra = f"  +{1e6 / best - 1e6 / max(cost[names[i + 1]]):5.2f} us/line"
                print(f"  {name:<45} {best:>9,.0f} {statistics.median(cost[name]):>9,.0f}"
                      f"{extra}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
