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
checkpoints agreeing with the rows. It runs with everything in the ingest
process (``--workers 1``) and with two worker processes.

With workers, two more: a SIGKILL of the ingest process on a big backlog
leaves none of its workers running (Linux's parent-death signal), and SIGTERM
to a following ingest makes it exit 0 with its workers stopped; in both cases
a later ``--once`` run stores exactly the rest.
"""

from __future__ import annotations

import os
import random
import re
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


def _ingest(db_url: str, root: Path, *extra: str, crash_at: int = 0, workers: int = 1,
            batch_mb: float = 0.004, session: bool = False) -> subprocess.Popen[bytes]:
    """squidguard-bloom-monitor ingest (with session: in a process group of its own)."""
    env = dict(os.environ)
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = str(crash_at)
    return subprocess.Popen(
        [sys.executable, "-m", "squidguard_bloom.monitor", "--db", db_url, "ingest", "--root",
         str(root), "--poll-interval", "0.01", "--batch-mb", str(batch_mb), "--workers",
         str(workers), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=session)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "2-workers"])
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
        db_url: str, tmp_path: Path, seed: int, workers: int) -> None:
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
        proc = _ingest(db_url, root, crash_at=crash_at, workers=workers)
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
        proc = _ingest(db_url, root, "--once", workers=workers)
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


def _backlog(root: Path, first: int, count: int) -> list[str]:
    """Append count numbered access.log lines to one segment; their URLs."""
    d = root / "logship-p1" / "incoming" / "access"
    d.mkdir(parents=True, exist_ok=True)
    urls = [f"http://www.example.com/{n}" for n in range(first, first + count)]
    with (d / "00000001-fe01-1.log").open("a") as fh:
        fh.writelines(f"{1796320000 + n % 7200}.000     5 10.0.{n % 3}.{n % 7} TCP_MISS/200 {n} "
                      f"GET {url} - HIER_DIRECT/192.0.2.1 text/html\n"
                      for n, url in enumerate(urls, first))
    return urls


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ...
    return fields[0], int(fields[1]), int(fields[19])  # fields 3, 4 and 22 of proc(5)


def _children(parent: int) -> dict[tuple[int, int], str]:
    """(pid, start time) -> command line of every live process whose parent is parent."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is None or stat[1] != parent or stat[0] in ("Z", "X"):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        found[(int(entry), stat[2])] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _running(pid: int, start: int) -> bool:
    """Whether the process pid that started at start still runs (not gone, not a zombie)."""
    stat = _stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in ("Z", "X")


def _workers_of(proc: subprocess.Popen[bytes]) -> dict[tuple[int, int], str]:
    """The running ingest's children once its two workers are up (and its other helper
    processes, such as multiprocessing's resource tracker)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        children = _children(proc.pid)
        if sum("spawn_main" in cmd for cmd in children.values()) == 2:
            return children
        time.sleep(0.05)
    raise AssertionError(f"ingest's two workers did not start (exit status {proc.poll()})")


def _wait_committed(db_url: str) -> None:
    """Wait for ingest's first committed batch."""
    with open_database(db_url, migrate=False) as db:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if db.scalar("SELECT coalesce(sum(lines), 0) FROM segments"):
                return
            time.sleep(0.05)
    raise AssertionError("ingest committed nothing in 120 s")


def _assert_gone(children: dict[tuple[int, int], str]) -> None:
    """Every one of children ends within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = {k: cmd for k, cmd in children.items() if _running(*k)}
        if not left:
            return
        time.sleep(0.05)
    for pid, _start in left:  # leave no writer behind the failed test
        os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"still running 10 s after ingest ended: {left}")


def _once(db_url: str, root: Path) -> None:
    """One --once run with workers, to the end (after a previous session is gone)."""
    for _attempt in range(50):
        proc = _ingest(db_url, root, "--once", workers=2, batch_mb=0.5)
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != EXIT_BUSY:
            break
        time.sleep(0.2)
    assert proc.returncode == 0, err.decode()


def _assert_exactly(db_url: str, urls: list[str]) -> None:
    """The access table holds urls, once each, ids in file order; checkpoints and rollups
    count them once."""
    with open_database(db_url) as db:
        assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")] == urls
        assert db.execute("SELECT lines, unparsed FROM segments") == [(len(urls), 0)]
        assert db.scalar("SELECT sum(n) FROM rollup_cache") == len(urls)
        assert_postings_match_rows(db)


@pytest.mark.slow
def test_workers_die_with_a_killed_ingest(db_url: str, tmp_path: Path) -> None:
    """kill -9 of a busy ingest (a backlog of 200,000 lines): its worker processes end with it,
    none is left writing; a --once run afterwards stores every line exactly once."""
    root = tmp_path / "srv"
    urls = _backlog(root, 0, 200_000)
    open_database(db_url).close()
    proc = _ingest(db_url, root, workers=2, batch_mb=0.5)
    try:
        children = _workers_of(proc)
        _wait_committed(db_url)  # busy: batches committed, more in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    _assert_gone(children)
    _once(db_url, root)
    _assert_exactly(db_url, urls)


@pytest.mark.slow
def test_sigterm_stops_ingest_and_its_workers_cleanly(db_url: str, tmp_path: Path) -> None:
    """SIGTERM to a following ingest and its workers (as systemd stops a service: every
    process of it) while they store a backlog: the workers go on, ingest settles the batches
    handed out, stops its workers and exits 0; a --once run later stores exactly the lines
    it had not stored, and those written since."""
    root = tmp_path / "srv"
    urls = _backlog(root, 0, 50_000)
    open_database(db_url).close()
    proc = _ingest(db_url, root, workers=2, batch_mb=0.1, session=True)
    try:
        children = _workers_of(proc)
        _wait_committed(db_url)
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    _assert_gone(children)
    with open_database(db_url) as db:  # what it stored, it stored whole, in file order
        k = int(db.scalar("SELECT count(*) FROM access"))
        assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")] == urls[:k]
        assert db.execute("SELECT lines FROM segments") == [(k,)]
    urls += _backlog(root, 50_000, 1_000)
    _once(db_url, root)
    _assert_exactly(db_url, urls)


@pytest.mark.slow
def test_ingest_whose_workers_are_killed_exits_with_the_error(
        db_url: str, tmp_path: Path) -> None:
    """Both workers of a busy ingest are SIGKILLed (as by the OOM killer): ingest says so and
    exits 1, so that systemd starts it again, instead of hanging with batches nobody reads;
    a --once run afterwards stores every line exactly once."""
    root = tmp_path / "srv"
    urls = _backlog(root, 0, 200_000)
    open_database(db_url).close()
    proc = _ingest(db_url, root, workers=2, batch_mb=0.5)
    try:
        children = _workers_of(proc)
        _wait_committed(db_url)
        for (pid, _start), cmd in children.items():
            if "spawn_main" in cmd:
                os.kill(pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, err.decode()
    assert re.search(r"squidguard-bloom-monitor: ingest's ingest-worker-\d died \(exit status "
                     r"-9\)", err.decode()), err.decode()
    _assert_gone(children)
    _once(db_url, root)
    _assert_exactly(db_url, urls)


@pytest.mark.slow
def test_workers_starting_up_survive_sigterm(tmp_path: Path) -> None:
    """SIGTERM to the workers again and again from the moment they exist, while they are
    still starting up (before they could ignore it themselves), as when a stop follows a
    start: they live on (it is ingest's to answer); then a stop of all of them is a clean
    one, and a --once run afterwards stores every line once."""
    root = tmp_path / "srv"
    db_url = str(tmp_path / "monitor.db")
    urls = _backlog(root, 0, 20_000)
    open_database(db_url).close()
    proc = _ingest(db_url, root, workers=2, batch_mb=0.1, session=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[tuple[int, int]] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = [k for k, cmd in _children(proc.pid).items() if "spawn_main" in cmd]
            time.sleep(0.002)
        assert len(workers) == 2, proc.poll()
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            for pid, start in workers:
                if _running(pid, start):
                    os.kill(pid, signal.SIGTERM)
            time.sleep(0.002)
        assert [k for k in workers if _running(*k)] == workers
        children = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode()
    _assert_gone(children)
    _once(db_url, root)
    _assert_exactly(db_url, urls)
