"""Shipper benchmark over SSH on loopback: sustained lines/s, and write-to-monitor lag.

Starts a private sshd on 127.0.0.1 (the test suite's executor), then:

1. throughput: a file of N lines of 150 bytes is shipped by
   ``squidguard-bloom-ship --once`` (process start and connection included);
   the remote copy is checked byte for byte;
2. lag: the shipper runs continuously with its default flush interval while a
   writer appends R lines/s, each carrying its write time; a reader on the
   monitor side polls the segment every 5 ms and records when each line
   appears there. Prints p50/p99/max.

Usage: python bench/ship_throughput.py [--lines 1000000] [--rate 1000] [--seconds 15]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
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


def lag(sshd: Sshd, root: Path, rate: int, seconds: float) -> None:
    log = root / "lag.log"
    log.write_bytes(b"")
    shipper = subprocess.Popen(
        shipper_argv(sshd, root, "lag", log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    remote_dir = sshd.data / "incoming" / "lag"
    lags: list[float] = []
    done = threading.Event()

    def reader() -> None:
        offset, rest = 0, b""
        while not done.is_set() or offset < log.stat().st_size:
            segs = sorted(remote_dir.iterdir()) if remote_dir.exists() else []
            if segs:
                with open(segs[-1], "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                now = time.time()
                offset += len(data)
                *complete, rest = (rest + data).split(b"\n")
                lags.extend(now - float(line.split(b" ", 1)[0]) for line in complete)
            if done.is_set() and time.time() > deadline_after_done[0]:
                break
            time.sleep(0.005)

    deadline_after_done = [float("inf")]
    t = threading.Thread(target=reader)
    t.start()
    interval = 1.0 / rate
    next_at = time.time()
    written = 0
    with open(log, "ab", buffering=0) as fh:
        end = next_at + seconds
        while next_at < end:
            now = time.time()
            if now < next_at:
                time.sleep(next_at - now)
            stamp = b"%.6f " % time.time()
            fh.write(stamp + b"y" * (LINE - len(stamp) - 1) + b"\n")
            next_at += interval
            written += 1
    deadline_after_done[0] = time.time() + 10
    done.set()
    t.join()
    shipper.send_signal(signal.SIGTERM)
    shipper.wait(10)
    qs = statistics.quantiles(lags, n=100) if len(lags) > 1 else [float("nan")] * 99
    print(
        f"| lag at {rate} lines/s for {seconds:g} s | {len(lags):,}/{written:,} lines seen | "
        f"p50 {qs[49] * 1000:.0f} ms | p99 {qs[98] * 1000:.0f} ms | "
        f"max {max(lags) * 1000:.0f} ms |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=256 * 1024)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        root = Path(tmp)
        sshd = Sshd(root / "sshd")
        try:
            print(f"sshd on 127.0.0.1:{sshd.port}; {os.cpu_count()} CPUs; {LINE}-byte lines")
            throughput(sshd, root, args.lines, args.batch)
            lag(sshd, root, args.rate, args.seconds)
        finally:
            sshd.stop()


if __name__ == "__main__":
    main()
