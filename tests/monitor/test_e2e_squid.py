"""End to end: squid.conf.example under real Squid, the shipper over a real sshd, then ingest.

The helper is installed as an admin would (``./setup.sh system-install``).
Squid runs squid.conf.example with only the paths and the port replaced (and
lines that keep it off the network: its own hosts file, no DNS, no pinger).
A local origin on 127.0.0.1 serves a cacheable page; curl fetches it twice
(the second must be a cache hit in access.log) and a blacklisted page once.
The real shipper sends access.log and the helper's logs to a private sshd,
``squidguard-bloom-monitor ingest --once`` stores them, and the hit shows in
the database's hit ratio and in ``report --json``.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from squidguard_bloom.monitor.migrate import open_database
from tests.e2e.harness import ROOT, Squid, chown_tree, fetch, proxy_dir
from tests.servers import Server, free_port, need
from tests.shipper.servers import Sshd

PAGE = b"<html><body>" + b"cacheable " * 500 + b"</body></html>\n"

SGCONF = """\
dbhome {dir}/db
logdir {dir}/logs

dest adult {{
    domainlist adult/domains
    log        blocked.log
}}

acl {{
    default {{
        pass !adult all
        redirect 302:http://block.test:{origin}/blocked?url=%u
    }}
}}
"""

# Replaced in squid.conf.example (keyword -> line); nothing else changes.
ISOLATION = """
# test only: names resolve to the local origin, nothing leaves the machine
hosts_file {dir}/hosts
dns_nameservers 127.0.0.1
pinger_enable off
netdb_filename none
shutdown_lifetime 1 seconds
visible_hostname sgb-monitor-test
"""


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.send_header("Cache-Control", "public, max-age=3600")
        self.send_header("Last-Modified", "Mon, 01 Dec 2025 00:00:00 GMT")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def cacheable_origin() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def example_conf(work: Path, port: int, helper: Path, sgconf: Path) -> str:
    """squid.conf.example with this test's port and paths."""
    replace = {
        "http_port": f"http_port 127.0.0.1:{port}",
        "cache_dir": f"cache_dir aufs {work}/cache 100000 16 256",
        "access_log": f"access_log daemon:{work}/access.log squid",
        "cache_log": f"cache_log {work}/cache.log",
        "pid_filename": f"pid_filename {work}/squid.pid",
        "coredump_dir": f"coredump_dir {work}",
        "url_rewrite_program": f"url_rewrite_program {helper} -c {sgconf}",
    }
    out = []
    for line in (ROOT / "squid.conf.example").read_text().splitlines():
        keyword = line.split()[0] if line.strip() and not line.startswith("#") else ""
        out.append(replace.pop(keyword, line))
    assert not replace, f"squid.conf.example lacks {sorted(replace)}"
    return "\n".join(out) + ISOLATION.format(dir=work)


@contextmanager
def example_squid(work: Path, helper: Path, origin: int) -> Iterator[Squid]:
    """Squid on squid.conf.example in work (owned by proxy); stopped by process group."""
    squid_bin = need("squid")
    (work / "db" / "adult").mkdir(parents=True)
    (work / "db" / "adult" / "domains").write_text("blocked.test\n")
    (work / "logs").mkdir()
    (work / "squidGuard.conf").write_text(SGCONF.format(dir=work, origin=origin))
    (work / "hosts").write_text("127.0.0.1 cache.test blocked.test block.test\n")
    port = free_port()
    conf = work / "squid.conf"
    conf.write_text(example_conf(work, port, helper, work / "squidGuard.conf"))
    (work / "cache").mkdir()
    chown_tree(work)
    made = subprocess.run([squid_bin, "-N", "-z", "-f", str(conf)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    server = Server([squid_bin, "-N", "-f", str(conf)], port, work / "squid.out", timeout=60)
    squid = Squid(server, port, work, conf)
    try:
        server.start()
        yield squid
    finally:
        squid.stop()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_a_cache_hit_travels_from_squid_to_the_monitors_hit_ratio(
        installed: Path, db_url: str, tmp_path: Path) -> None:
    work = proxy_dir("sgb-monitor-e2e-")
    sshd = Sshd(tmp_path / "sshd")
    try:
        with cacheable_origin() as origin, example_squid(work, installed, origin) as sq:
            page = f"http://cache.test:{origin}/page.html"
            first = fetch(sq.port, page, "127.0.0.1")
            second = fetch(sq.port, page, "127.0.0.1")
            blocked = fetch(sq.port, f"http://blocked.test:{origin}/x", "127.0.0.1")
            assert (first.code, second.code, blocked.code) == (200, 200, 302)
            assert first.body.encode() == PAGE == second.body.encode()
            # (Squid also logs the executor's port probe: NONE_NONE/000, no request)
            wait_until(lambda: sum(".test:" in x for x in sq.access_log()) == 3,
                       "3 requests in access.log")
            wait_until((work / "logs" / "blocked.log").exists, "blocked.log")
            results = [f[3] for f in map(str.split, sq.access_log()) if ".test:" in f[6]]
            assert results[0] == "TCP_MISS/200"
            assert results[1] in ("TCP_MEM_HIT/200", "TCP_HIT/200")
            assert results[2] == "TCP_REDIRECT/302"
        # Squid is stopped: its logs are complete. Ship them as a proxy would.
        ship = subprocess.run(
            [sys.executable, "-m", "squidguard_bloom.shipper", "--once",
             "--host", "127.0.0.1", "--port", str(sshd.port), "--user", sshd.user,
             "--key", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts),
             "--remote-dir", str(sshd.data / "incoming"), "--state-dir", str(tmp_path / "st"),
             "--rotate-wait", "0.2",
             "--file", f"access={work / 'access.log'}",
             "--file", f"blocked={work / 'logs' / 'blocked.log'}",
             "--file", f"squidGuard={work / 'logs' / 'squidGuard.log'}"],
            capture_output=True, text=True, timeout=120, check=False)
        assert ship.returncode == 0, ship.stderr
        monitor = [sys.executable, "-m", "squidguard_bloom.monitor", "--db", db_url]
        ingest = subprocess.run(
            [*monitor, "ingest", "--once", "--proxy", f"proxy-a={sshd.data / 'incoming'}"],
            capture_output=True, text=True, timeout=120, check=False)
        assert ingest.returncode == 0, ingest.stderr
        with open_database(db_url) as db:
            assert db.execute("SELECT host, result, status, bytes > ? FROM access "
                              "WHERE host LIKE '%.test' ORDER BY ts, id", (len(PAGE),)) == [
                ("cache.test", "TCP_MISS", 200, True),
                ("cache.test", results[1].split("/")[0], 200, True),
                ("blocked.test", "TCP_REDIRECT", 302, False)]
            requests = db.scalar("SELECT count(*) FROM access")
            assert db.execute("SELECT sum(n), sum(hit * n) FROM rollup_cache") == [(requests, 1)]
            assert db.execute("SELECT sum(n), sum(hit * n) FROM rollup_cache WHERE status > 0"
                              ) == [(3, 1)]
            assert db.execute("SELECT host, n, hits FROM rollup_hosts WHERE host = 'cache.test'"
                              ) == [("cache.test", 2, 1)]
            assert db.execute("SELECT target, host, action FROM decisions") == [
                ("adult", "blocked.test", "REDIRECT")]
            assert db.scalar("SELECT count(*) FROM unparsed") == 0
        report = subprocess.run([*monitor, "report", "--since", "1h", "--json"],
                                capture_output=True, text=True, timeout=60, check=True)
        (proxy,) = json.loads(report.stdout)["proxies"]
        assert (proxy["proxy"], proxy["requests"], proxy["hits"], proxy["blocks"]) == (
            "proxy-a", requests, 1, 1)
        assert proxy["hit_ratio"] == pytest.approx(1 / requests)
        assert proxy["helper_state"]["kind"] in ("ready", "stopped")
        assert proxy["top_blocked_domains"] == [["blocked.test", 1]]
    finally:
        sshd.stop()
        shutil.rmtree(work, ignore_errors=True)
