"""Exactly once under ``kill -9``: ingest is killed at random moments while files grow and rotate.

A writer thread appends uniquely numbered lines (access.log, helper decisions,
squidGuard.log events, garbage) for two proxies, in chunks that cut lines
anywhere, and rotates to new segments, sometimes right after a line without
its newline (a finished segment's tail). Meanwhile ``squidguard-bloom-monitor
ingest`` runs as a real process with tiny batches and is SIGKILLed after a
random delay, again and again; every other run also kills itself inside a
transaction, after writing its rows and before COMMIT (a fault-injection
setting of the ingest). Afterwards one ``--once`` run catches up, and
every table must hold each written line exactly once, with rollups and
checkpoints agreeing with the rows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from squidguard_bloom.monitor.ingest import CRASH_ENV
from squidguard_bloom.monitor.migrate import open_database

from .postings_check import assert_postings_match_rows

EXIT_BUSY = 75  # the previous process's PostgreSQL session is not gone yet


class Writer(threading.Thread):
    """Writes numbered lines into root/logship-P/incoming/STREAM/ segments, rotating."""

    def __init__(self, root: Path, seed: int, total: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.rng = random.Random(seed)
        self.total = total
        self.written: dict[str, list[str]] = {"access": [], "decisions": [], "events": [],
                                              "garbage": []}
        self.seq: dict[tuple[str, str], int] = {}
        self.pending: dict[tuple[str, str], bytes] = {}
        self.done = threading.Event()
        self.first = 0

    def _segment(self, proxy: str, stream: str) -> Path:
        seq = self.seq.setdefault((proxy, stream), 1)
        d = self.root / f"logship-{proxy}" / "incoming" / stream
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{seq:08d}-fe01-{seq:x}.log"

    def _append(self, proxy: str, stream: str, data: bytes) -> None:
        with self._segment(proxy, stream).open("ab") as fh:
            fh.write(data)

    def _line(self, n: int) -> tuple[str, str, bytes]:
        proxy = self.rng.choice(("p1", "p2"))
        pick = self.rng.random()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1796320000 + n))
        if pick < 0.55:
            key = f"http://www.example.com/{proxy}/{n}"
            self.written["access"].append(key)
            line = (f"{1796320000 + n}.000     5 10.0.0.{n % 7} TCP_MISS/200 {n} GET {key} - "
                    "HIER_DIRECT/192.0.2.1 text/html")
            return proxy, "access", line.encode()
        if pick < 0.85:
            key = f"http://bad.example/{proxy}/{n}"
            self.written["decisions"].append(key)
            line = f"{stamp} [77] Request(default/porn/-) {key} 10.0.0.1/- - GET REDIRECT"
            return proxy, "blocked", line.encode()
        if pick < 0.95:
            key = f"note {proxy} {n}"
            self.written["events"].append(key)
            return proxy, "squidGuard", f"{stamp} [77] INFO: {key}".encode()
        key = f"garbage {proxy} {n} \xff"
        self.written["garbage"].append(key)
        return proxy, "access", key.encode("latin-1")

    def prefill(self, lines: int) -> None:
        """Write a backlog first, so the first crash run has transactions to crash in."""
        self._write(0, lines, pace=0.0)
        self.first = lines

    def run(self) -> None:
        self._write(self.first, self.total, pace=0.03)  # ~1,500 lines/s: files grow during kills
        self.done.set()

    def _write(self, start: int, stop: int, pace: float) -> None:
        for n in range(start, stop):
            proxy, stream, line = self._line(n)
            key = (proxy, stream)
            if self.rng.random() < 0.01 and self.pending.get(key, b"") == b"":
                # rotate: the finished segment ends after this line, maybe without "\n"
                tail = b"" if self.rng.random() < 0.5 else b"\n"
                self._append(proxy, stream, line + tail)
                self.seq[key] += 1
                continue
            data = self.pending.get(key, b"") + line + b"\n"
            cut = self.rng.randrange(len(data) + 1)  # write part now, the rest with the next
            self._append(proxy, stream, data[:cut])
            self.pending[key] = data[cut:]
            if pace and n % 50 == 0:
                time.sleep(pace)
        for (proxy, stream), rest in self.pending.items():
            if rest:
                self._append(proxy, stream, rest)
        self.pending.clear()


def _ingest(db_url: str, root: Path, *extra: str, crash_at: int = 0
            ) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = str(crash_at)
    return subprocess.Popen(
        [sys.executable, "-m", "squidguard_bloom.monitor", "--db", db_url, "ingest", "--root",
         str(root), "--poll-interval", "0.01", "--batch-mb", "0.004", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
        db_url: str, tmp_path: Path, seed: int) -> None:
    root = tmp_path / "srv"
    root.mkdir()
    open_database(db_url).close()  # schema first, so kills do not all land in migration
    writer = Writer(root, seed, total=12000)
    rng = random.Random(seed)
    kills = inside = cycle = 0
    writer.prefill(2000)  # about 50 transactions of 4 KB
    writer.start()
    while not writer.done.is_set() or kills < 12:
        # even runs kill themselves inside transaction 1-4 (rows written, not committed);
        # the others are SIGKILLed from outside after a random delay
        crash_at = rng.randint(1, 4) if cycle % 2 == 0 and not writer.done.is_set() else 0
        cycle += 1
        proc = _ingest(db_url, root, crash_at=crash_at)
        deadline = time.monotonic() + (20.0 if crash_at else rng.uniform(0.05, 0.6))
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        elif proc.returncode == -signal.SIGKILL:
            inside += 1
        proc.wait(timeout=30)
        assert proc.returncode in (-signal.SIGKILL, EXIT_BUSY), proc.stderr.read() if \
            proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    writer.join()
    for _attempt in range(50):
        proc = _ingest(db_url, root, "--once")
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != EXIT_BUSY:
            break
        time.sleep(0.2)
    assert proc.returncode == 0, err.decode()

    with open_database(db_url) as db:
        urls = [u for (u,) in db.execute("SELECT url FROM access")]
        assert sorted(urls) == sorted(writer.written["access"])
        blocked = [u for (u,) in db.execute("SELECT url FROM decisions")]
        assert sorted(blocked) == sorted(writer.written["decisions"])
        notes = [m for (m,) in db.execute("SELECT message FROM events WHERE origin = 'helper'")]
        assert sorted(notes) == sorted(writer.written["events"])
        garbage = [bytes(b).decode("latin-1") for (b,) in db.execute(
            "SELECT line FROM unparsed")]
        assert sorted(garbage) == sorted(writer.written["garbage"])
        # rollups and checkpoints count the same rows, once
        assert db.scalar("SELECT sum(n) FROM rollup_cache") == len(urls)
        assert db.scalar("SELECT sum(n) FROM rollup_decisions") == len(blocked)
        assert db.scalar("SELECT sum(lines) FROM rollup_lines") == len(urls) + len(blocked) + \
            len(notes)
        assert db.scalar("SELECT sum(unparsed) FROM rollup_lines") == len(garbage)
        total = sum(len(v) for v in writer.written.values())
        assert db.scalar("SELECT sum(lines) FROM segments") == total
        assert db.scalar("SELECT sum(unparsed) FROM segments") == len(garbage)
        assert_postings_match_rows(db)  # the search index: each row once, too
    assert kills >= 12 and inside >= 1  # the first run had the backlog to crash in
