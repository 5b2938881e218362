"""Shipper benchmark over SSH on loopback: sustained lines/s, and write-to-monitor lag.

Starts a private sshd on 127.0.0.1 (the test suite's executor), then:

1. throughput, ``--once``: a file of N lines of 150 bytes is shipped by
   ``squidguard-bloom-ship --once`` (process start and connection included);
   the remote copy is checked byte for byte;
2. throughput, following: the shipper runs continuously on an empty file; N
   lines are appended as fast as a writer can, in 1.5 MB writes; timed from
   the first write until the monitor's copy is complete and byte-exact;
3. lag: the shipper runs continuously with its default settings while a
   writer appends R lines/s, each carrying its write time. Two lags per line:
   *on the monitor* (a reader polls the remote segment every 5 ms and notes
   when the line appears there: written by the monitor's SFTP server) and
   *durable* (the shipper's checkpoint, polled every 5 ms, covers the line:
   the monitor fsynced it and acknowledged it). Prints p50/p99/max of both.
   (While a new file's first 4 KiB arrive, the checkpoint is also saved
   each time its identity grows, without a remote fsync: about the first 27
   lines are counted durable a few milliseconds early.)

Usage: python bench/ship_throughput.py [--lines 1000000] [--rate 1000] [--seconds 15]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.shipper.servers import Sshd

LINE = 150


def shipper_argv(sshd: Sshd, root: Path, name: str, log: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "squidguard_bloom.shipper",
        "--host",
        "127.0.0.1",
        "--port",
        str(sshd.port),
        "--user",
        sshd.user,
        "--key",
        str(sshd.client_key),
        "--known-hosts",
        str(sshd.known_hosts),
        "--remote-dir",
        str(sshd.data / "incoming"),
        "--state-dir",
        str(root / f"state-{name}"),
        "--file",
        f"{name}={log}",
        *extra,
    ]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def throughput(sshd: Sshd, root: Path, n: int, batch: int) -> None:
    log = root / "throughput.log"
    pad = b"x" * (LINE - 14)
    with open(log, "wb") as fh:
        for start in range(0, n, 10_000):
            stop = min(n, start + 10_000)
            fh.write(b"".join(b"%012d %s\n" % (i, pad) for i in range(start, stop)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        shipper_argv(sshd, root, "bench", log, "--once", "--batch-size", str(batch)),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"shipper failed ({proc.returncode}):\n{proc.stderr}")
    [segment] = sorted((sshd.data / "incoming" / "bench").iterdir())
    exact = sha256(segment) == sha256(log)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    size = log.stat().st_size
    print(
        f"| throughput, --once, batch {batch // 1024} KiB | {n:,} lines | {elapsed:.2f} s | "
        f"{n / elapsed:,.0f} lines/s | {size / elapsed / 1e6:.1f} MB/s | "
        f"shipper CPU {cpu:.2f} s | {'byte-exact' if exact else 'MISMATCH'} |"
    )
    log.unlink()


def _ident(path: Path) -> str:
    st = path.stat()
    return f"{st.st_dev:x}-{st.st_ino:x}"


def follow_throughput(sshd: Sshd, root: Path, n: int) -> None:
    log = root / "follow.log"
    log.write_bytes(b"")
    shipper = subprocess.Popen(
        shipper_argv(sshd, root, "follow", log),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    segment = sshd.data / "incoming" / "follow" / f"00000001-{_ident(log)}.log"
    time.sleep(1.0)  # started and connected
    pad = b"x" * (LINE - 14)
    t0 = time.perf_counter()
    with open(log, "ab", buffering=0) as fh:
        for start in range(0, n, 10_000):
            stop = min(n, start + 10_000)
            fh.write(b"".join(b"%012d %s\n" % (i, pad) for i in range(start, stop)))
    written = time.perf_counter() - t0
    size = log.stat().st_size
    while not segment.exists() or segment.stat().st_size < size:
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    shipper.send_signal(signal.SIGTERM)
    shipper.wait(10)
    exact = sha256(segment) == sha256(log)
    print(
        f"| throughput, following, writer done after {written:.2f} s | {n:,} lines | "
        f"{elapsed:.2f} s | {n / elapsed:,.0f} lines/s | {size / elapsed / 1e6:.1f} MB/s | "
        f"{'byte-exact' if exact else 'MISMATCH'} |"
    )
    log.unlink()


def _quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    qs = statistics.quantiles(values, n=100)
    return (
        f"p50 {qs[49] * 1000:.0f} ms, p99 {qs[98] * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def lag(sshd: Sshd, root: Path, rate: int, seconds: float) -> None:
    log = root / "lag.log"
    log.write_bytes(b"")
    shipper = subprocess.Popen(
        shipper_argv(sshd, root, "lag", log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    remote_dir = sshd.data / "incoming" / "lag"
    checkpoint = root / "state-lag" / "checkpoint.json"
    seen: list[float] = []  # per line, in order: when it appeared on the monitor
    synced: list[tuple[int, float]] = []  # (acked offset, first time the checkpoint said so)
    done = threading.Event()

    def reader() -> None:
        offset = 0
        while not done.is_set():
            segs = sorted(remote_dir.iterdir()) if remote_dir.exists() else []
            if segs:
                with open(segs[-1], "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                now = time.time()
                cut = data.rfind(b"\n") + 1
                offset += cut
                seen.extend([now] * data[:cut].count(b"\n"))
            time.sleep(0.005)

    def durable() -> None:
        last = -1
        while not done.is_set():
            try:
                doc = json.loads(checkpoint.read_text())
                acked = max(seg["acked"] for seg in doc["streams"]["lag"]["segments"])
            except (OSError, ValueError, KeyError):
                acked = -1
            if acked > last:
                synced.append((acked, time.time()))
                last = acked
            time.sleep(0.005)

    threads = [threading.Thread(target=reader), threading.Thread(target=durable)]
    for t in threads:
        t.start()
    interval = 1.0 / rate
    next_at = time.time()
    writes: list[tuple[float, int]] = []  # (write time, offset just past the line)
    offset = 0
    with open(log, "ab", buffering=0) as fh:
        end = next_at + seconds
        while next_at < end:
            now = time.time()
            if now < next_at:
                time.sleep(next_at - now)
            stamp = b"%.6f " % time.time()
            line = stamp + b"y" * (LINE - len(stamp) - 1) + b"\n"
            fh.write(line)
            offset += len(line)
            writes.append((float(stamp), offset))
            next_at += interval
    settle = time.time() + 10
    while time.time() < settle and (len(seen) < len(writes) or synced[-1][0] < offset):
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join()
    shipper.send_signal(signal.SIGTERM)
    shipper.wait(10)
    visible = [t_seen - t_w for (t_w, _), t_seen in zip(writes, seen, strict=False)]
    durable_lags, i = [], 0
    for t_w, end_off in writes:
        while i < len(synced) and synced[i][0] < end_off:
            i += 1
        if i < len(synced):
            durable_lags.append(synced[i][1] - t_w)
    print(
        f"| lag at {rate} lines/s for {seconds:g} s | {len(writes):,} lines written | "
        f"on the monitor ({len(visible):,} seen): {_quantiles(visible)} | "
        f"durable, fsynced + checkpointed ({len(durable_lags):,}): {_quantiles(durable_lags)} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000, help="lines for the throughput runs")
    p.add_argument("--batch", type=int, default=256 * 1024, help="--batch-size of the --once run")
    p.add_argument("--rate", type=int, default=1000, help="lines/s written in the lag run")
    p.add_argument("--seconds", type=float, default=15, help="length of the lag run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        root = Path(tmp)
        sshd = Sshd(root / "sshd")
        try:
            print(f"sshd on 127.0.0.1:{sshd.port}; {os.cpu_count()} CPUs; {LINE}-byte lines")
            throughput(sshd, root, args.lines, args.batch)
            follow_throughput(sshd, root, args.lines)
            lag(sshd, root, args.rate, args.seconds)
        finally:
            sshd.stop()


if __name__ == "__main__":
    main()
