"""``squidguard-bloom-bench``: measure the filter, the helper and the welcome check.

    squidguard-bloom-bench fpr     [--capacity N,..] [--error-rate P,..] [--kinds K,..]
                                   [--impl NAME,..] [--steps S] [--queries Q] [--seed N]
                                   [--json] [--plot FILE.png]
    squidguard-bloom-bench helper  [--domains N] [--urls N] [--lines N] [--clients N]
                                   [--procs N] [--ours CMD] [--squidguard PATH|none]
                                   [--workdir DIR] [--no-welcome] [--json]
    squidguard-bloom-bench welcome [--calls N] [--clients N] [--json]

Tables go to stdout, a progress bar to stderr (when it is a terminal, or
with --progress).  Exit status: 0 done, 1 a measured helper answered
wrongly or could not run (compile or start failure), 2 bad usage or a
missing program.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from squidguard_bloom.bench import firstvisit, fpr, machine, sidebyside
from squidguard_bloom.bench.progress import Progress

EXIT_WRONG = 1
EXIT_USAGE = 2

T = TypeVar("T")


def _list_of(kind: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    def parse(value: str) -> list[T]:
        try:
            items = [kind(v.strip().replace("_", "")) for v in value.split(",") if v.strip()]
        except ValueError:
            msg = f"{what}: expected a comma-separated list, got {value!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if not items:
            msg = f"{what}: empty list"
            raise argparse.ArgumentTypeError(msg)
        return items

    return parse


def _names(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if bad or not items:
            got = ", ".join(bad) or "empty list"
            msg = f"{what}: unknown {got}; choose from {', '.join(choices)}"
            raise argparse.ArgumentTypeError(msg)
        return items

    return parse


def _positive(value: str) -> int:
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        n = 0
    if n < 1:
        msg = f"expected a positive whole number, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return n


def _non_negative(value: str) -> int:
    return 0 if value.strip() == "0" else _positive(value)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``squidguard-bloom-bench``."""
    p = argparse.ArgumentParser(
        prog="squidguard-bloom-bench", description="Benchmarks of squidguard-bloom."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{fpr,helper,welcome}")

    f = sub.add_parser(
        "fpr",
        help="false-positive rate and speed while the filter fills",
        description=fpr.__doc__.splitlines()[0] if fpr.__doc__ else None,
    )
    f.add_argument(
        "--capacity",
        type=_list_of(int, "--capacity"),
        default=[1_000_000],
        help="filter capacities, comma-separated (default 1000000)",
    )
    f.add_argument(
        "--error-rate",
        type=_list_of(float, "--error-rate"),
        default=[0.01, 0.001],
        help="target error rates (default 0.01,0.001)",
    )
    f.add_argument(
        "--kinds",
        type=_names(fpr.KEY_KINDS, "--kinds"),
        default=list(fpr.KEY_KINDS),
        help=f"key kinds (default all: {','.join(fpr.KEY_KINDS)})",
    )
    f.add_argument(
        "--impl",
        type=_names(fpr.IMPLEMENTATIONS, "--impl"),
        default=list(fpr.IMPLEMENTATIONS),
        help="implementations (default all that are installed)",
    )
    f.add_argument(
        "--steps",
        type=_positive,
        default=8,
        help="fill steps up to 2x capacity (default 8; even includes n = capacity)",
    )
    f.add_argument(
        "--queries",
        type=_positive,
        default=200_000,
        help="absent keys probed after each step (default 200000)",
    )
    f.add_argument("--seed", type=int, default=1234)
    f.add_argument("--plot", metavar="FILE.png", help="also draw FPR against fill (matplotlib)")
    _common(f)

    h = sub.add_parser(
        "helper",
        help="our helper next to squidGuard on a generated blacklist",
        description=(sidebyside.__doc__ or "").splitlines()[0],
    )
    d = sidebyside.HelperParams()
    h.add_argument("--domains", type=_positive, default=d.domains)
    h.add_argument("--urls", type=_positive, default=d.urls)
    h.add_argument("--lines", type=_positive, default=d.lines, help="request lines")
    h.add_argument("--clients", type=_positive, default=d.clients)
    h.add_argument("--seed", type=int, default=d.seed)
    h.add_argument(
        "--procs",
        type=_positive,
        default=d.procs,
        help="helper processes sharing the stream in the parallel run (1: skip it)",
    )
    h.add_argument("--startup-runs", type=_positive, default=d.startup_runs)
    h.add_argument(
        "--io",
        choices=("pipe", "file"),
        default="pipe",
        help="feed requests and collect answers through pipes, as Squid does (default), "
        "or read and write plain files",
    )
    h.add_argument("--no-welcome", action="store_true", help="skip the run with a welcome block")
    h.add_argument(
        "--ours",
        help="command of our helper (default: this package staged as an installation runs it,"
        " byte-compiled, without an editable finder)",
    )
    h.add_argument("--squidguard", help="squidGuard binary (default: on PATH); 'none' to skip")
    h.add_argument(
        "--workdir",
        help="keep lists, configs and answers here (reused when the "
        "sizes match); default: a temporary directory",
    )
    h.add_argument(
        "--timeout", type=_positive, default=int(d.timeout), help="seconds allowed per helper run"
    )
    h.add_argument(
        "--welcome-calls",
        type=_non_negative,
        default=200_000,
        help="calls for the first-visit cost table (0: skip it)",
    )
    _common(h)

    w = sub.add_parser(
        "welcome",
        help="µs per request of the first-visit check",
        description=(firstvisit.__doc__ or "").splitlines()[0],
    )
    w.add_argument("--calls", type=_positive, default=1_000_000)
    w.add_argument("--clients", type=_positive, default=3_000)
    w.add_argument("--seed", type=int, default=1234)
    _common(w)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--save", metavar="FILE.json", help="also write the JSON document to FILE")
    p.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar even when stderr is not a terminal",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _emit(args: argparse.Namespace, doc: dict[str, Any], table: str) -> None:
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(machine.heading(doc["machine"]) + "\n" + table + "\n")
    sys.stdout.flush()
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


def cmd_fpr(args: argparse.Namespace) -> int:
    """``fpr``: see :mod:`squidguard_bloom.bench.fpr`."""
    params = fpr.FprParams(
        capacities=args.capacity,
        error_rates=args.error_rate,
        kinds=args.kinds,
        implementations=args.impl,
        steps=args.steps,
        queries=args.queries,
        seed=args.seed,
    )
    for p in params.error_rates:
        if not 0 < p < 1:
            sys.stderr.write(f"squidguard-bloom-bench: --error-rate {p}: must be between 0 and 1\n")
            return EXIT_USAGE
    if args.plot:
        try:
            fpr.require_matplotlib()
        except ImportError as exc:
            sys.stderr.write(f"squidguard-bloom-bench: {exc}\n")
            return EXIT_USAGE
    info = machine.describe()
    total = (
        len(params.capacities)
        * len(params.kinds)
        * len(params.error_rates)
        * len(params.implementations)
    )
    bar = Progress(total, "fpr", enabled=not args.quiet, force=args.progress)
    result = fpr.run(params, bar)
    bar.close()
    _emit(args, fpr.to_json(result, info), fpr.render(result))
    if args.plot:
        try:
            fpr.plot(result, args.plot)
        except ValueError as exc:
            sys.stderr.write(f"squidguard-bloom-bench: {exc}\n")
            return EXIT_USAGE
        sys.stderr.write(f"squidguard-bloom-bench: plot written to {args.plot}\n")
    return 0


def cmd_helper(args: argparse.Namespace) -> int:
    """``helper``: see :mod:`squidguard_bloom.bench.sidebyside`."""
    squidguard = args.squidguard
    if squidguard is not None and squidguard.lower() == "none":
        squidguard = ""
    params = sidebyside.HelperParams(
        domains=args.domains,
        urls=args.urls,
        lines=args.lines,
        clients=args.clients,
        seed=args.seed,
        procs=args.procs,
        startup_runs=args.startup_runs,
        welcome=not args.no_welcome,
        ours=shlex.split(args.ours) if args.ours else None,
        squidguard=squidguard,
        timeout=float(args.timeout),
        pipes=args.io == "pipe",
    )
    info = machine.describe()
    setups = 1 + (squidguard != "") + (not args.no_welcome)
    steps = 1 + setups * 4 + (params.ours is None)  # + staging our helper
    bar = Progress(steps, "helper", enabled=not args.quiet, force=args.progress)
    tmp = None
    try:
        if args.workdir:
            workdir = Path(args.workdir)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="sgb-helper-bench-")
            workdir = Path(tmp.name)
        try:
            result = sidebyside.run(params, workdir, lambda msg: bar.advance(label=msg))
        except FileNotFoundError as exc:
            bar.close()
            sys.stderr.write(f"squidguard-bloom-bench: {exc}\n")
            return EXIT_USAGE
        if args.welcome_calls:
            bar.advance(label="first-visit cost")
            result.welcome_cost = firstvisit.measure(
                args.welcome_calls, params.clients, params.seed
            )
        bar.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    table = sidebyside.render(result)
    if result.welcome_cost:
        table += "\n\nadded cost of the first-visit check per request:\n" + firstvisit.render(
            result.welcome_cost
        )
    _emit(args, sidebyside.to_json(result, info), table)
    ours_failed = any(name.startswith("ours") for name in result.skipped)
    return 0 if all(r.ok for r in result.rows) and not ours_failed else EXIT_WRONG


def cmd_welcome(args: argparse.Namespace) -> int:
    """``welcome``: see :mod:`squidguard_bloom.bench.firstvisit`."""
    info = machine.describe()
    rows = firstvisit.measure(args.calls, args.clients, args.seed)
    doc = {
        "benchmark": "welcome",
        "machine": info,
        "params": {"calls": args.calls, "clients": args.clients, "seed": args.seed},
        "rows": rows,
    }
    _emit(args, doc, firstvisit.render(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``squidguard-bloom-bench`` console script."""
    args = build_parser().parse_args(argv)
    handler = {"fpr": cmd_fpr, "helper": cmd_helper, "welcome": cmd_welcome}[args.command]
    try:
        return handler(args)
    except ValueError as exc:
        sys.stderr.write(f"squidguard-bloom-bench: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:  # stdout closed early (| head): nothing left to say
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("\nsquidguard-bloom-bench: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
