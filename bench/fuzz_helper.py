"""A million hostile request lines through the real helper, C fast path and Python alone.

The lines and the configuration are those of the fuzz test
(squidguard_bloom/bench/fuzz.py: random bytes mixed with ``%25``, ``%ff``,
``\\xff``, ``[::1]``, ``a@b@``, channel-IDs and tabs, two lines in five
plain; every source kind, list kind, rewrite, template code, welcome and
logs).  Each mode runs ``squidguard-bloom -c CONF`` as Squid runs it, a
child process on pipes, fed the way Squid feeds a child with concurrency:
a few lines (1 to 64) at a time, the next ones once their replies are in.

Every reply is checked (one per line, in order, well-formed, channel-ID
echoed); the two modes must answer byte for byte the same.  Prints, side
by side, the count of each reply kind, the internal errors the helper
reported on stderr (Squid's cache.log; the goal is 0) and any other stderr
line, and lines/s.  Exit status 1 if a check failed or an internal error
was reported.

Usage: python bench/fuzz_helper.py [--lines 1000000] [--seed 20261203] [--key ip|user]
       [--workdir DIR]
Not part of the test suite (tests/helper/test_fuzz.py runs 50,000 lines).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from squidguard_bloom.bench import fuzz


class Result:
    """What one mode gave."""

    def __init__(self, kinds: Counter[str], stderr: list[str], status: int, digest: str,
                 rate: float, stderr_path: Path) -> None:
        self.kinds = kinds
        self.internal = sum("internal error" in x for x in stderr)
        self.other_stderr = len(stderr) - self.internal
        self.status = status
        self.digest = digest
        self.rate = rate
        self.stderr_path = stderr_path


def run_mode(conf: Path, seed: int, lines: int, fast: bool, workdir: Path) -> Result:
    """Feed the corpus to one helper process; its reply kinds, stderr, digest and speed."""
    cmd = [sys.executable, "-m", "squidguard_bloom.helper.cli", "-c", str(conf)]
    if not fast:
        cmd.append("--no-fast-path")
    errpath = workdir / ("stderr-fast.txt" if fast else "stderr-python.txt")
    rng = random.Random(seed + 1)
    kinds: Counter[str] = Counter()
    digest = hashlib.sha256()
    with errpath.open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdin is not None and proc.stdout is not None
        out_fd = proc.stdout.fileno()
        corpus = fuzz.request_lines(seed, lines)
        done = 0
        start = time.perf_counter()
        while done < lines:
            chunk = [line for _, line in zip(range(rng.randrange(1, 65)), corpus, strict=False)]
            proc.stdin.write(b"".join(x + b"\n" for x in chunk))
            proc.stdin.flush()
            got = b""
            while got.count(b"\n") < len(chunk):
                piece = os.read(out_fd, 1 << 16)
                if not piece:
                    raise SystemExit(f"the helper closed its output after {done} lines "
                                     f"(stderr in {errpath})")
                got += piece
            kinds += fuzz.check_replies(chunk, got)
            digest.update(got)
            done += len(chunk)
        proc.stdin.close()
        rest = proc.stdout.read()
        status = proc.wait()
        seconds = time.perf_counter() - start
    if rest:
        raise SystemExit(f"{len(rest)} bytes of output after the last reply: {rest[:200]!r}")
    stderr = errpath.read_bytes().decode("utf-8", "replace").splitlines()
    return Result(kinds, stderr, status, digest.hexdigest(), lines / seconds, errpath)


def main(argv: list[str] | None = None) -> int:
    """Run both modes and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--key", choices=("ip", "user"), default="ip", help="the welcome key")
    ap.add_argument("--workdir", help="keep configuration, lists, logs and stderr here")
    args = ap.parse_args(argv)
    base = Path(args.workdir or tempfile.mkdtemp(prefix="sgb-fuzz-"))
    shapes: Counter[str] = Counter()
    for line in fuzz.request_lines(args.seed, min(args.lines, 100_000)):
        shapes.update(fuzz.shapes(line))
    results = {}
    for name, fast in (("C fast path", True), ("Python only", False)):
        root = base / ("fast" if fast else "python")
        conf = fuzz.write_setup(root, key=args.key)
        print(f"{name}: {args.lines:,} lines ...", file=sys.stderr, flush=True)
        results[name] = run_mode(conf, args.seed, args.lines, fast, root)
    a, b = results.values()
    print(f"\n{args.lines:,} fuzzed request lines, seed {args.seed}, welcome key {args.key}")
    print(f"shapes in the first {min(args.lines, 100_000):,} lines: "
          + ", ".join(f"{s} {shapes[s]:,}" for s in fuzz.SHAPES))
    print(f"\n{'reply kind':<30}{'C fast path':>14}{'Python only':>14}")
    for kind in sorted(set(a.kinds) | set(b.kinds)):
        print(f"{kind:<30}{a.kinds[kind]:>14,}{b.kinds[kind]:>14,}")
    print(f"{'internal errors (stderr)':<30}{a.internal:>14}{b.internal:>14}")
    print(f"{'other stderr (start-up notes)':<30}{a.other_stderr:>14}{b.other_stderr:>14}")
    print(f"{'exit status':<30}{a.status:>14}{b.status:>14}")
    print(f"{'lines/s':<30}{a.rate:>14,.0f}{b.rate:>14,.0f}")
    same = a.digest == b.digest
    print(f"\nreplies identical in both modes: {'yes' if same else 'NO'}; "
          f"every reply well-formed, in order, channel-ID echoed: yes")
    print(f"stderr kept in {a.stderr_path} and {b.stderr_path}")
    bad = not same or a.internal or b.internal or a.status or b.status
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
