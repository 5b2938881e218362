"""Peak memory and time of ``-C all``: ours next to squidGuard 1.6 on the same lists.

Usage: python bench/compile_memory.py [--domains N] [--urls N] [--seed N] [--runs N]
                                      [--workdir DIR] [--squidguard PATH|""]

Generates a seeded blacklist (by default 1,000,000 domains and 50,000 urls,
squidguard_bloom/bench/gen.py), links it into one list directory per
program, and runs ``PROGRAM -c CONF -C all`` on it ``--runs`` times each,
alternating the programs, every run from text lists without a compiled file.
Prints, side by side, the median wall time, the median CPU time (user +
system, from the kernel's accounting of the finished child: steadier than
wall time on a shared machine), the largest peak RSS (the kernel's
``ru_maxrss`` of the compiling process, through GNU ``time``; ``VmHWM``
sampled from /proc without it) of each program, and the size of what each
wrote.  Exit status 1 if a compile failed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from squidguard_bloom.bench import gen, machine
from squidguard_bloom.bench.procs import run_group
from squidguard_bloom.bench.sidebyside import (
    HelperParams,
    Setup,
    default_ours,
    default_squidguard,
    make_setups,
)
from squidguard_bloom.bench.table import Column, count, fixed, format_table, text

COMPILED = {"squidGuard": ".db", "ours": ".sgb"}


def _clear(setup: Setup) -> list[Path]:
    """Remove the setup's compiled lists; return where they will be written."""
    lists = setup.config.parent / "db" / "bench"
    out = [lists / f"{name}{COMPILED[setup.name]}" for name in ("domains", "urls")]
    for p in out:
        p.unlink(missing_ok=True)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _one(setup: Setup, where: Path, timeout: float) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS kB, bytes written) of one ``-C all`` from
    text lists."""
    written = _clear(setup)
    cpu = _cpu()
    res = run_group(
        [[*setup.command, "-c", str(setup.config), "-C", "all"]],
        [None],
        [None],
        stderr_dir=where,
        timeout=timeout,
    )
    if not res.ok:
        tail = (where / "stderr.0").read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{setup.name}: -C all exited {res.procs[0].returncode}: {tail}")
    size = sum(p.stat().st_size for p in written if p.exists())
    return res.wall, _cpu() - cpu, res.procs[0].max_rss_kb, size


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--domains", type=int, default=1_000_000)
    ap.add_argument("--urls", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--workdir", type=Path, help="keep the generated lists here (reused)")
    ap.add_argument("--squidguard", help='squidGuard binary ("" = ours only)')
    args = ap.parse_args(argv)
    sg = default_squidguard() if args.squidguard is None else args.squidguard or None
    info = machine.describe()
    with tempfile.TemporaryDirectory(prefix="sgb-compile-") as tmp:
        work = args.workdir or Path(tmp)
        stamp = work / "lists" / f"generated-{args.domains}-{args.urls}-{args.seed}"
        if not stamp.exists():
            print(f"generating {args.domains:,} domains, {args.urls:,} urls", file=sys.stderr)
            gen.write_blacklist(work / "lists", args.domains, args.urls, args.seed)
            for old in (work / "lists").glob("generated-*"):
                old.unlink()
            stamp.touch()
            for home in ("sg", "ours"):  # relink the new lists
                for name in ("domains", "urls", "expressions"):
                    (work / home / "db" / "bench" / name).unlink(missing_ok=True)
        params = HelperParams(domains=args.domains, urls=args.urls, welcome=False)
        setups = make_setups(work, params, sg, default_ours())
        runs: dict[str, list[tuple[float, float, int, int]]] = {s.name: [] for s in setups}
        for i in range(args.runs):
            for s in setups:
                print(f"run {i + 1}/{args.runs}: {s.name} -C all", file=sys.stderr)
                try:
                    runs[s.name].append(_one(s, work / "compile" / s.name, args.timeout))
                except (RuntimeError, TimeoutError) as exc:
                    print(f"compile_memory: {exc}", file=sys.stderr)
                    return 1
    rows = []
    for name, got in runs.items():
        rows.append({
            "program": name,
            "wall": statistics.median(r[0] for r in got),
            "walls": " ".join(f"{r[0]:.2f}" for r in got),
            "cpu": statistics.median(r[1] for r in got),
            "rss": max(r[2] for r in got) / 1024,
            "written": got[-1][3],
        })
    columns = [
        Column("program", "-C all", text, left=True),
        Column("wall", "median s", fixed(2)),
        Column("walls", "each run s", text),
        Column("cpu", "median CPU s", fixed(2)),
        Column("rss", "peak RSS MB", fixed(1)),
        Column("written", "compiled bytes", count),
    ]
    print(machine.heading(info))
    skipped = "" if sg else "; squidGuard not run (not found, or --squidguard '')"
    print(f"{args.domains:,} domains + {args.urls:,} urls (seed {args.seed}), "
          f"{args.runs} runs each{skipped}")
    print(format_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
