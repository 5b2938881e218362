"""Our helper next to squidGuard on one generated blacklist and request stream.

Steps: generate the lists and the stream (seeded; see :mod:`.gen`), stage
our helper as an installation runs it (see :mod:`.staged`; unless a
command is given), write a squidGuard.conf for each program (ours twice
more: with a ``welcome`` block), compile the lists with each program's
``-C all``, then for each setup measure

* startup: wall time of a run on empty stdin (median of ``startup_runs``),
  next to the floor of the interpreter ours runs on (``python -S -c pass``:
  no ``site``; ``python -c pass``: with the staged venv's ``site``);
* throughput: the whole stream on stdin, answers to a file; lines/s with
  and without the startup time, peak RSS (kernel, at exit) and peak PSS
  (sampled from /proc; shared mmapped pages split between processes);
* the same stream split in ``procs`` contiguous parts, one helper process
  per part, all at once (one shared filter and compiled list for ours);

and check the answers: every line answered, and every line the generator
marked as listed blocked, nothing else (welcome redirects aside).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from squidguard_bloom.bench import gen, staged
from squidguard_bloom.bench.procs import GroupResult, run_group
from squidguard_bloom.bench.table import Column, count, fixed, format_table, human, text

BLOCK_URL = "http://block.sgbench.invalid/blocked?url=%u"
WELCOME_HOST = "welcome.sgbench.invalid"
WELCOME_URL = f"http://{WELCOME_HOST}/?url=%u"


@dataclass
class HelperParams:
    """Sizes and programs (the command-line options of ``helper``)."""

    domains: int = 1_000_000
    urls: int = 50_000
    lines: int = 1_000_000
    clients: int = 3_000
    seed: int = 1234
    procs: int = 4
    startup_runs: int = 11  # ~60 ms each for ours: a median that holds on a busy machine
    welcome: bool = True
    ours: list[str] | None = None  # default: a staged install of this package (see .staged)
    squidguard: str | None = None  # default: squidGuard on PATH; "" = do not run it
    timeout: float = 1800.0
    pipes: bool = True  # requests and answers through pipes, as with Squid (else plain files)


@dataclass
class Setup:
    """One program + configuration under test."""

    name: str
    command: list[str]
    config: Path
    welcome_state: Path | None = None


@dataclass
class Row:
    """One measured setup: the table row and the JSON object."""

    setup: str
    procs: int
    lines: int
    startup_s: float | None = None
    wall_s: float | None = None
    lines_per_s: float | None = None
    lines_per_s_excl_startup: float | None = None
    peak_rss_kb: int | None = None
    peak_pss_kb: int | None = None
    answers: int | None = None
    expected_hits: int | None = None
    blocked_hits: int | None = None
    missed: int | None = None
    extra_blocks: int | None = None
    welcomed: int | None = None
    ok: bool = True
    note: str = ""


@dataclass
class HelperResult:
    """Everything ``helper`` measured."""

    params: HelperParams
    stats: gen.StreamStats | None = None
    compile_s: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    welcome_cost: list[dict[str, Any]] = field(default_factory=list)
    answer_diff: dict[str, Any] | None = None  # ours vs squidGuard, line by line
    floor: list[Row] = field(default_factory=list)  # the bare interpreter's startup
    ours_install: str = ""  # how ours was run


def default_ours() -> list[str]:
    """The ``squidguard-bloom`` console script installed next to this Python."""
    return [str(Path(sys.executable).with_name("squidguard-bloom"))]


FLOOR = (("python -S -c pass", ["-S", "-c", "pass"]), ("python -c pass", ["-c", "pass"]))


def default_squidguard() -> str | None:
    """squidGuard on PATH (or in /usr/bin), else None."""
    return shutil.which("squidGuard") or shutil.which("squidGuard", path="/usr/bin:/usr/sbin")


def config_text(dbhome: Path, logdir: Path, welcome_state: Path | None) -> str:
    """A squidGuard.conf blocking the generated ``bench`` category (plus a welcome block)."""
    out = [
        f"dbhome {dbhome}",
        f"logdir {logdir}",
        "",
        "src clients {",
        "    ip 10.0.0.0/8",
        "}",
        "",
        "dest bench {",
        "    domainlist bench/domains",
        "    urllist bench/urls",
        "    expressionlist bench/expressions",
        f"    redirect {BLOCK_URL}",
        "}",
        "",
    ]
    if welcome_state is not None:
        out += [
            "welcome {",
            f"    redirect {WELCOME_URL}",
            "    key ip",
            "    capacity 100000",
            "    error 0.001",
            f"    state {welcome_state}",
            "    log welcome.log",
            "}",
            "",
        ]
    out += [
        "acl {",
        "    clients {",
        "        pass !bench all",
        f"        redirect {BLOCK_URL}",
        "    }",
        "    default {",
        "        pass !bench all",
        f"        redirect {BLOCK_URL}",
        "    }",
        "}",
        "",
    ]
    return "\n".join(out)


def _link_lists(source: Path, dest: Path) -> None:
    """dest/bench/* as hard links (or copies) of the generated text lists."""
    target = dest / "bench"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("domains", "urls", "expressions"):
        d = target / name
        if d.exists():
            d.unlink()
        try:
            os.link(source / name, d)
        except OSError:
            shutil.copyfile(source / name, d)


def prepare(workdir: Path, params: HelperParams) -> tuple[gen.StreamStats, Path, Path]:
    """Generate (or reuse, when the stamp matches) lists, stream and expected verdicts."""
    stamp = workdir / "generated.json"
    wanted = {
        "domains": params.domains,
        "urls": params.urls,
        "lines": params.lines,
        "clients": params.clients,
        "seed": params.seed,
        "version": 1,
    }
    requests, expected = workdir / "requests.txt", workdir / "expected.txt"
    if stamp.exists():
        saved = json.loads(stamp.read_text(encoding="utf-8"))
        if saved.get("params") == wanted and requests.exists() and expected.exists():
            return gen.StreamStats(**saved["stats"]), requests, expected
    blacklist = gen.write_blacklist(workdir / "lists", params.domains, params.urls, params.seed)
    stats = gen.write_requests(
        requests, expected, blacklist, params.lines, params.clients, params.seed
    )
    stamp.write_text(json.dumps({"params": wanted, "stats": asdict(stats)}), encoding="utf-8")
    return stats, requests, expected


def make_setups(
    workdir: Path, params: HelperParams, squidguard: str | None, ours: list[str] | None = None
) -> list[Setup]:
    """Directories, configs and compiled-list homes of every setup."""
    setups = []
    ours = ours or params.ours or default_ours()
    variants: list[tuple[str, list[str], bool]] = []
    if squidguard:
        variants.append(("squidGuard", [squidguard], False))
    variants.append(("ours", list(ours), False))
    if params.welcome:
        variants.append(("ours+welcome", list(ours), True))
    for name, command, welcome in variants:
        home = workdir / ("sg" if name == "squidGuard" else "ours")
        db, logs = home / "db", home / ("logs-welcome" if welcome else "logs")
        logs.mkdir(parents=True, exist_ok=True)
        if not (db / "bench" / "domains").exists():
            _link_lists(workdir / "lists", db)
        state = (home / "welcome.bloom") if welcome else None
        conf = home / (f"{name.replace('+', '-')}.conf")
        conf.write_text(config_text(db, logs, state), encoding="utf-8")
        setups.append(Setup(name, command, conf, state))
    return setups


def compile_lists(setup: Setup, timeout: float) -> float:
    """Wall seconds of ``PROGRAM -c CONF -C all`` (stdin /dev/null); raises on failure."""
    out = setup.config.parent / "compile"
    res = run_group(
        [[*setup.command, "-c", str(setup.config), "-C", "all"]],
        [None],
        [None],
        stderr_dir=out,
        timeout=timeout,
    )
    if not res.ok:
        err = (out / "stderr.0").read_text(errors="replace").strip().splitlines()[-3:]
        msg = f"-C all exited {res.procs[0].returncode}: {' | '.join(err)}"
        raise RuntimeError(msg)
    return res.wall


def _reset_welcome(setup: Setup) -> None:
    if setup.welcome_state is None:
        return
    for p in setup.welcome_state.parent.glob(setup.welcome_state.name + "*"):
        p.unlink()


def measure_startup(setup: Setup, runs: int, timeout: float) -> tuple[float, int]:
    """Median wall seconds and peak RSS (kB) of runs on empty stdin."""
    return time_start(
        [*setup.command, "-c", str(setup.config)],
        runs,
        timeout,
        setup.config.parent / "startup",
        before=lambda: _reset_welcome(setup),
    )


def time_start(
    command: list[str],
    runs: int,
    timeout: float,
    where: Path,
    before: Callable[[], None] | None = None,
) -> tuple[float, int]:
    """Median wall seconds of runs of command on empty stdin, and its peak RSS (kB)."""
    walls = []
    for i in range(runs + 1):  # the last run, under GNU time, only for the RSS
        if before is not None:
            before()
        res = run_group(
            [command],
            [None],
            [None],
            stderr_dir=where.with_name(f"{where.name}.{i}"),
            timeout=timeout,
            measure_rss=i == runs,
        )
        if i < runs:
            walls.append(res.wall)
    return statistics.median(walls), res.procs[0].max_rss_kb


def split_stream(requests: Path, parts: int, directory: Path) -> list[tuple[Path, int, int]]:
    """The stream in parts contiguous files: (path, first line, line count) each."""
    lines = requests.read_bytes().splitlines(keepends=True)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(parts):
        lo, hi = len(lines) * k // parts, len(lines) * (k + 1) // parts
        path = directory / f"part.{k}"
        path.write_bytes(b"".join(lines[lo:hi]))
        out.append((path, lo, hi - lo))
    return out


@dataclass(frozen=True)
class Check:
    """Answers compared with the generator's verdicts."""

    answers: int
    expected_hits: int
    blocked_hits: int
    missed: int
    extra_blocks: int
    welcomed: int
    first_problem: str = ""


def check_answers(answers: Sequence[bytes], expected: bytes, lines: Sequence[bytes] = ()) -> Check:
    """Compare answers with expected (``1`` = must block); welcome redirects count as passes."""
    blocked_hits = missed = extra = welcomed = 0
    first = ""
    for i, verdict in enumerate(expected):
        answer = answers[i] if i < len(answers) else b""
        is_welcome = WELCOME_HOST.encode() in answer
        welcomed += is_welcome
        blocked = answer.startswith(b"OK") and not is_welcome
        must = verdict == 49
        if must and blocked:
            blocked_hits += 1
        elif must:
            missed += 1
        elif blocked:
            extra += 1
        if not first and (must != blocked or not answer):
            request = lines[i].decode(errors="replace").rstrip() if i < len(lines) else f"#{i}"
            first = (
                f"line {i + 1}: {request!r}: expected "
                f"{'a block' if must else 'a pass'}, got {answer.decode(errors='replace')!r}"
            )
    return Check(len(answers), expected.count(b"1"), blocked_hits, missed, extra, welcomed, first)


def measure_stream(
    setup: Setup,
    parts: list[tuple[Path, int, int]],
    expected: bytes,
    startup: float | None,
    timeout: float,
    pipes: bool = True,
) -> Row:
    """Run one process per part at once; the row with throughput, memory and the check."""
    _reset_welcome(setup)
    run_dir = setup.config.parent / f"run-{setup.name.replace('+', '-')}-{len(parts)}"
    outs = [run_dir / f"answers.{k}" for k in range(len(parts))]
    res: GroupResult = run_group(
        [[*setup.command, "-c", str(setup.config)] for _ in parts],
        [p for p, _, _ in parts],
        outs,
        stderr_dir=run_dir,
        timeout=timeout,
        pipes=pipes,
    )
    answers: list[bytes] = []
    lines: list[bytes] = []
    for out, (part, _, n) in zip(outs, parts, strict=True):
        got = out.read_bytes().splitlines()
        answers += got[:n] + [b""] * (n - len(got))  # keep alignment when answers are missing
        lines += part.read_bytes().splitlines()
    chk = check_answers(answers, expected, lines)
    total = sum(n for _, _, n in parts)
    answered = sum(
        min(len(o.read_bytes().splitlines()), n) for o, (_, _, n) in zip(outs, parts, strict=True)
    )
    notes = []
    if not res.ok:
        codes = ",".join(str(p.returncode) for p in res.procs)
        err = (run_dir / "stderr.0").read_text(errors="replace").strip().splitlines()[-3:]
        notes.append(f"exit {codes}: {' | '.join(err)}")
    if chk.first_problem:
        notes.append(chk.first_problem)
    excl = res.wall - startup if startup is not None and res.wall > startup else None
    return Row(
        setup=setup.name,
        procs=len(parts),
        lines=total,
        startup_s=startup,
        wall_s=res.wall,
        lines_per_s=total / res.wall,
        lines_per_s_excl_startup=total / excl if excl else None,
        peak_rss_kb=res.peak_rss_sum_kb,
        peak_pss_kb=res.peak_pss_kb,
        answers=answered,
        expected_hits=chk.expected_hits,
        blocked_hits=chk.blocked_hits,
        missed=chk.missed,
        extra_blocks=chk.extra_blocks,
        welcomed=chk.welcomed,
        ok=res.ok and chk.missed == 0 and chk.extra_blocks == 0 and answered == total,
        note="; ".join(notes),
    )


def _ours(
    params: HelperParams, workdir: Path, say: Callable[[str], None]
) -> tuple[list[str], str, str]:
    """Our helper's command, the Python it runs on, and how it was installed."""
    if params.ours:
        ours, python, how = params.ours, sys.executable, f"ours runs as {' '.join(params.ours)}"
    else:
        say("staging our helper")
        ours, python = staged.stage(workdir / "staged")
        how = staged.DESCRIPTION
    if not Path(ours[0]).exists() and shutil.which(ours[0]) is None:
        msg = f"{ours[0]}: not found; install the package (pip install -e .) or pass --ours COMMAND"
        raise FileNotFoundError(msg)
    return ours, python, how


def measure_floor(python: str, params: HelperParams, where: Path) -> list[Row]:
    """Startup and RSS of the bare interpreter, without and with ``site``."""
    rows = []
    for name, args in FLOOR:
        wall, rss = time_start(
            [python, *args], params.startup_runs, params.timeout, where / name.replace(" ", "_")
        )
        rows.append(Row(name, 1, 0, startup_s=wall, peak_rss_kb=rss, note="interpreter floor"))
    return rows


def run(
    params: HelperParams, workdir: Path, progress: Callable[[str], None] | None = None
) -> HelperResult:
    """Prepare, compile and measure every setup (see the module docstring)."""
    say = progress or (lambda _msg: None)
    result = HelperResult(params)
    squidguard = default_squidguard() if params.squidguard is None else params.squidguard
    if not squidguard:
        result.skipped["squidGuard"] = (
            "not installed (Debian: apt-get install squidguard)"
            if params.squidguard is None
            else "not requested"
        )
    elif not Path(squidguard).exists():
        result.skipped["squidGuard"] = f"{squidguard}: no such file"
        squidguard = None
    workdir.mkdir(parents=True, exist_ok=True)
    ours, python, result.ours_install = _ours(params, workdir, say)
    say("generating lists and requests")
    result.stats, requests, expected_file = prepare(workdir, params)
    expected = expected_file.read_bytes()
    setups = make_setups(workdir, params, squidguard, ours)
    whole = [(requests, 0, params.lines)]
    parts = split_stream(requests, params.procs, workdir / "parts") if params.procs > 1 else []
    compiled: set[Path] = set()
    for setup in setups:
        home = setup.config.parent
        if home not in compiled:
            say(f"{setup.name}: -C all")
            try:
                result.compile_s[setup.name] = compile_lists(setup, params.timeout)
            except (RuntimeError, TimeoutError, OSError) as exc:
                result.skipped[setup.name] = str(exc)
                continue
            compiled.add(home)
        say(f"{setup.name}: startup")
        try:
            startup, rss0 = measure_startup(setup, params.startup_runs, params.timeout)
            result.rows.append(
                Row(setup.name, 1, 0, startup_s=startup, peak_rss_kb=rss0, note="empty stdin")
            )
            say(f"{setup.name}: {params.lines:,} lines, 1 process")
            result.rows.append(
                measure_stream(setup, whole, expected, startup, params.timeout, params.pipes)
            )
            if parts:
                say(f"{setup.name}: {params.lines:,} lines, {params.procs} processes")
                result.rows.append(
                    measure_stream(setup, parts, expected, startup, params.timeout, params.pipes)
                )
        except (TimeoutError, OSError) as exc:
            result.skipped[setup.name] = str(exc)
    result.floor = measure_floor(python, params, workdir / "floor")
    sg_answers = workdir / "sg" / "run-squidGuard-1" / "answers.0"
    our_answers = workdir / "ours" / "run-ours-1" / "answers.0"
    if {"squidGuard", "ours"} <= {r.setup for r in result.rows if r.lines}:
        result.answer_diff = compare_answers(requests, sg_answers, our_answers)
    return result


def compare_answers(requests: Path, theirs: Path, ours: Path) -> dict[str, Any]:
    """Line-by-line comparison of two answer files to one stream.

    Blocked CONNECTs are counted apart: squidGuard answers them with
    ``rewrite-url``, which Squid cannot apply to a tunnel, ours with a
    ``status=302`` redirect (a deliberate difference).
    """
    lines = requests.read_bytes().splitlines()
    a, b = theirs.read_bytes().splitlines(), ours.read_bytes().splitlines()
    identical = connect = other = 0
    first = ""
    for i, line in enumerate(lines):
        x = a[i] if i < len(a) else b""
        y = b[i] if i < len(b) else b""
        if x == y:
            identical += 1
        elif b" CONNECT" in line:
            connect += 1
        else:
            other += 1
            if not first:
                first = (
                    f"line {i + 1}: {line.decode(errors='replace')!r}: squidGuard "
                    f"{x.decode(errors='replace')!r}, ours {y.decode(errors='replace')!r}"
                )
    return {
        "compared": len(lines),
        "identical": identical,
        "differ_connect": connect,
        "differ_other": other,
        "first_other": first,
    }


# ---------------------------------------------------------------- output

COLUMNS = (
    Column("setup", "setup", text, left=True),
    Column("procs", "procs", text),
    Column("lines", "lines", count),
    Column("startup_ms", "startup ms", fixed(1)),
    Column("wall_s", "wall s", fixed(2)),
    Column("lines_per_s", "lines/s", human),
    Column("lines_per_s_excl_startup", "excl.startup", human),
    Column("peak_rss_mb", "peak RSS MB", fixed(1)),
    Column("peak_pss_mb", "peak PSS MB", fixed(1)),
    Column("expected_hits", "hits", count),
    Column("blocked_hits", "blocked", count),
    Column("missed", "missed", count),
    Column("extra_blocks", "extra", count),
    Column("welcomed", "welcomed", count),
    Column("ok", "ok", lambda v: "yes" if v else "NO"),
)


def _row_view(row: Row) -> dict[str, Any]:
    d = asdict(row)
    d["startup_ms"] = row.startup_s * 1000 if row.startup_s is not None else None
    d["peak_rss_mb"] = row.peak_rss_kb / 1024 if row.peak_rss_kb is not None else None
    d["peak_pss_mb"] = row.peak_pss_kb / 1024 if row.peak_pss_kb is not None else None
    return d


def to_json(result: HelperResult, machine: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of ``helper --json``."""
    return {
        "benchmark": "helper",
        "machine": machine,
        "params": asdict(result.params),
        "stream": asdict(result.stats) if result.stats else None,
        "compile_s": result.compile_s,
        "skipped": result.skipped,
        "rows": [_row_view(r) for r in result.rows],
        "floor": [_row_view(r) for r in result.floor],
        "ours_install": result.ours_install,
        "welcome_cost": result.welcome_cost,
        "answer_diff": result.answer_diff,
    }


def render(result: HelperResult) -> str:
    """The side-by-side table with the stream summary, compile times and notes."""
    p, s = result.params, result.stats
    out = []
    if s is not None:
        out.append(
            f"lists: {p.domains:,} domains, {p.urls:,} urls, {len(gen.EXPRESSIONS)} expressions; "
            f"stream: {s.lines:,} lines from {s.clients:,} clients, {s.domain_hits:,} domain + "
            f"{s.url_hits:,} url + {s.expression_hits:,} expression hits, "
            f"{s.connects:,} CONNECT"
        )
    if result.compile_s:
        out.append(
            "compile (-C all): " + ", ".join(f"{k} {v:.2f} s" for k, v in result.compile_s.items())
        )
    out.append(format_table(COLUMNS, [_row_view(r) for r in result.rows + result.floor]))
    out += [
        f"note {r.setup} x{r.procs}: {r.note}"
        for r in result.rows
        if r.note and r.note != "empty stdin"
    ]
    out += [f"skipped {k}: {v}" for k, v in result.skipped.items()]
    d = result.answer_diff
    if d is not None:
        out.append(
            f"answers, ours vs squidGuard (1 process, no welcome): {d['identical']:,} of "
            f"{d['compared']:,} identical; {d['differ_connect']:,} blocked CONNECTs differ "
            f"(status=302 instead of rewrite-url, deliberate); {d['differ_other']:,} others differ"
            + (f"; first: {d['first_other']}" if d["first_other"] else "")
        )
    if result.ours_install:
        out.append(result.ours_install)
    out.append(
        "startup: median wall time on empty stdin; python rows: the interpreter ours runs on, "
        "without and with site; RSS: sum of each process's peak; "
        "PSS: peak of the sampled sum (shared pages split)"
    )
    return "\n".join(out)
