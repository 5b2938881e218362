"""The ``helper`` and ``welcome`` benchmarks on tiny sizes, against the real squidGuard."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from squidguard_bloom.bench import cli, firstvisit, gen, sidebyside, staged, table

SQUIDGUARD = shutil.which("squidGuard") or "/usr/bin/squidGuard"
OURS = Path(sys.executable).with_name("squidguard-bloom")
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "engine_vs_squidguard.py"

# Answers ERR to every line; "-C all" succeeds: a helper that blocks nothing.
FAKE_HELPER = """\
import sys
if "-C" in sys.argv:
    sys.exit(0)
for line in sys.stdin:
    sys.stdout.write("ERR\\n")
    sys.stdout.flush()
"""


def need_squidguard() -> str:
    if not Path(SQUIDGUARD).exists():
        pytest.fail("squidGuard is not installed: apt-get install squidguard")
    return SQUIDGUARD


def _is_nested(domains: list[str]) -> bool:
    listed = set(domains)
    for d in domains:
        labels = d.split(".")
        if any(".".join(labels[i:]) in listed for i in range(1, len(labels))):
            return True
    return False


def test_blacklist_has_no_nested_domains_and_one_url_per_host(tmp_path: Path) -> None:
    """No listed domain sits under another; url entries neither repeat a host nor nest."""
    bl = gen.write_blacklist(tmp_path / "bench", 5000, 500, seed=11)
    assert len(set(bl.domains)) == 5000
    assert not _is_nested(bl.domains)
    assert len({u.split("/", 1)[0] for u in bl.urls}) == 500
    assert (tmp_path / "bench" / "domains").read_text().splitlines() == bl.domains
    assert (tmp_path / "bench" / "urls").read_text().splitlines() == bl.urls
    expressions = (tmp_path / "bench" / "expressions").read_text().splitlines()
    assert expressions == list(gen.EXPRESSIONS)
    for e in expressions:
        re.compile(e)
    # _is_nested itself notices nesting
    assert _is_nested(["a.com", "x.a.com"])


def test_request_stream_shape(tmp_path: Path) -> None:
    """Squid 3.4 lines with extras; hit, CONNECT and client mix near the §16 shares."""
    bl = gen.write_blacklist(tmp_path / "bench", 2000, 200, seed=5)
    stats = gen.write_requests(tmp_path / "req", tmp_path / "exp", bl, 20_000, 300, seed=5)
    lines = (tmp_path / "req").read_text().splitlines()
    expected = (tmp_path / "exp").read_bytes()
    assert len(lines) == len(expected) == stats.lines == 20_000
    assert expected.count(b"1") == stats.blocked
    assert set(expected) <= {ord("0"), ord("1")}
    clients = set()
    for line in lines:
        url, client, ident, method, myip, myport = line.split(" ")
        assert (ident, myip, myport) == ("-", "myip=10.0.0.1", "myport=3128")
        assert client.startswith("10.")
        assert client.endswith("/-")
        clients.add(client)
        assert (method == "CONNECT") == (not url.startswith("http"))
    assert len(clients) <= 300
    assert 0.08 < stats.domain_hits / stats.lines < 0.12
    assert 0.002 < stats.url_hits / stats.lines < 0.008
    assert 0.03 < stats.connects / stats.lines < 0.07
    again = list(gen.request_lines(bl, 50, 300, seed=5))
    assert [line for line, _ in again] == [f"{x}\n" for x in lines[:50]]


def test_check_answers_counts_misses_extras_and_welcomes() -> None:
    """Blocked = an OK answer that is not the welcome page; a missing answer is a miss."""
    answers = [
        b'OK status=302 url="http://block.sgbench.invalid/blocked?url=x"',
        b"ERR",
        b'OK rewrite-url="http://block.sgbench.invalid/"',
        f'OK status=302 url="http://{sidebyside.WELCOME_HOST}/?url=y"'.encode(),
    ]
    chk = sidebyside.check_answers(answers, b"10011", [b"a", b"b", b"c", b"d", b"e"])
    assert (chk.answers, chk.expected_hits, chk.blocked_hits) == (4, 3, 1)
    assert (chk.missed, chk.extra_blocks, chk.welcomed) == (2, 1, 1)
    assert chk.first_problem.startswith("line 3: 'c': expected a pass")


def test_config_text_is_squidguard_syntax(tmp_path: Path) -> None:
    """squidGuard itself accepts the generated configuration (welcome block aside)."""
    sg = need_squidguard()
    db = tmp_path / "db"
    gen.write_blacklist(db / "bench", 100, 10, seed=1)
    conf = tmp_path / "sg.conf"
    (tmp_path / "logs").mkdir()
    conf.write_text(sidebyside.config_text(db, tmp_path / "logs", None))
    proc = subprocess.run(
        [sg, "-P", "-c", str(conf)], input=b"http://www.example.com/ 10.0.0.1/- - GET\n",
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"ERR\n"
    with_welcome = sidebyside.config_text(db, tmp_path / "logs", tmp_path / "w.bloom")
    assert "welcome {" in with_welcome
    assert f"state {tmp_path / 'w.bloom'}" in with_welcome


@pytest.mark.parametrize("pipes", [True, False], ids=["pipes", "files"])
def test_side_by_side_with_squidguard_and_a_broken_helper(tmp_path: Path, pipes: bool) -> None:
    """squidGuard blocks every generated hit; a helper that blocks nothing is caught."""
    sg = need_squidguard()
    fake = tmp_path / "fake_helper.py"
    fake.write_text(FAKE_HELPER)
    params = sidebyside.HelperParams(
        domains=3000, urls=300, lines=3000, clients=100, procs=2, startup_runs=1,
        welcome=False, ours=[sys.executable, str(fake)], squidguard=sg, timeout=120,
        pipes=pipes,
    )  # fmt: skip
    result = sidebyside.run(params, tmp_path / "work")
    assert result.stats is not None
    by = {(r.setup, r.procs, r.lines): r for r in result.rows}
    assert set(by) == {
        (s, p, n) for s in ("squidGuard", "ours") for p, n in ((1, 0), (1, 3000), (2, 3000))
    }
    for procs in (1, 2):
        sgrow = by["squidGuard", procs, 3000]
        assert sgrow.ok, sgrow.note
        assert sgrow.answers == 3000
        assert sgrow.expected_hits == sgrow.blocked_hits == result.stats.blocked
        assert sgrow.missed == sgrow.extra_blocks == 0
        assert sgrow.peak_rss_kb > 0
        assert sgrow.lines_per_s > 0
        bad = by["ours", procs, 3000]
        assert not bad.ok
        assert bad.missed == result.stats.blocked
        assert "expected a block" in bad.note
    diff = result.answer_diff
    assert diff is not None
    assert diff["compared"] == 3000
    assert diff["identical"] + diff["differ_connect"] + diff["differ_other"] == 3000
    assert diff["differ_connect"] + diff["differ_other"] == result.stats.blocked
    assert "squidGuard 'OK" in diff["first_other"]
    assert by["squidGuard", 1, 0].startup_s > 0
    assert [r.setup for r in result.floor] == ["python -S -c pass", "python -c pass"]
    assert all(r.startup_s > 0 and r.peak_rss_kb > 0 for r in result.floor)
    assert result.ours_install == f"ours runs as {sys.executable} {fake}"
    assert set(result.compile_s) == {"squidGuard", "ours"}
    assert list((tmp_path / "work" / "sg" / "db" / "bench").glob("*.db"))
    text = sidebyside.render(result)
    header = text.splitlines()[2].split()
    for column in ("setup", "procs", "lines/s", "startup", "RSS", "PSS", "blocked", "missed"):
        assert column in header
    doc = sidebyside.to_json(result, {"date": "x"})
    assert doc["benchmark"] == "helper"
    assert doc["stream"]["lines"] == 3000
    assert {
        "setup",
        "procs",
        "lines_per_s",
        "peak_rss_mb",
        "peak_pss_mb",
        "blocked_hits",
        "missed",
        "extra_blocks",
        "welcomed",
        "ok",
    } <= set(doc["rows"][0])
    json.dumps(doc)


def test_generated_data_is_reused_when_sizes_match(tmp_path: Path) -> None:
    """A kept --workdir is not regenerated for the same sizes, and is for others."""
    params = sidebyside.HelperParams(domains=500, urls=50, lines=500, clients=10)
    first = sidebyside.prepare(tmp_path, params)
    stamp = (tmp_path / "requests.txt").stat().st_mtime_ns
    assert sidebyside.prepare(tmp_path, params) == first
    assert (tmp_path / "requests.txt").stat().st_mtime_ns == stamp
    params.lines = 600
    assert sidebyside.prepare(tmp_path, params)[0].lines == 600


def test_split_stream_keeps_every_line_in_order(tmp_path: Path) -> None:
    """Parts are contiguous and together are the stream."""
    req = tmp_path / "req"
    req.write_text("".join(f"line {i}\n" for i in range(10)))
    parts = sidebyside.split_stream(req, 3, tmp_path / "parts")
    assert [(lo, n) for _, lo, n in parts] == [(0, 3), (3, 3), (6, 4)]
    assert b"".join(p.read_bytes() for p, _, _ in parts) == req.read_bytes()


def test_missing_helper_command_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ours naming nothing runnable exits 2 and says what to do."""
    rc = cli.main(
        [
            "helper",
            "--ours",
            str(tmp_path / "nope"),
            "--squidguard",
            "none",
            "--lines",
            "10",
            "--domains",
            "10",
            "--urls",
            "1",
            "--quiet",
        ]
    )
    assert rc == 2
    assert "pip install -e ." in capsys.readouterr().err


def test_welcome_cost_rows() -> None:
    """The first-visit table names each variant with a positive µs/call."""
    rows = firstvisit.measure(calls=3000, clients=50, seed=2, capacity=1000)
    assert [r["what"] for r in rows] == [
        "empty loop (baseline)", "address_key only", "filter lookup only (packed key)",
        "first_visit, warm", "first_visit, warm, window 1d", "first_visit, cold (every client new)",
    ]  # fmt: skip
    assert all(r["us_per_call"] > 0 for r in rows)
    assert rows[0]["minus_loop_us"] is None
    assert all(r["minus_loop_us"] >= 0 for r in rows[1:])
    table = firstvisit.render(rows).splitlines()
    assert table[0].split()[:2] == ["measured", "calls"]
    assert len(table) == 2 + len(rows)


def test_welcome_subcommand_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``welcome --json``: machine, params and rows; --save writes the same document."""
    saved = tmp_path / "w.json"
    argv = ["welcome", "--calls", "2000", "--clients", "20", "--json", "--save", str(saved)]
    assert cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert json.loads(saved.read_text()).keys() == doc.keys()
    assert doc["benchmark"] == "welcome"
    assert doc["params"] == {"calls": 2000, "clients": 20, "seed": 1234}
    assert len(doc["rows"]) == 6


def test_engine_vs_squidguard_script_uses_section_16_sizes() -> None:
    """The script's arguments are the §16 data set, and a later option wins."""
    namespace: dict[str, Any] = {}
    exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), namespace)  # no __main__ run
    args = cli.build_parser().parse_args([*namespace["SECTION_16"], "--lines", "10"])
    assert (args.command, args.domains, args.urls, args.clients) == (
        "helper",
        996_920,
        50_000,
        3_000,
    )
    assert args.lines == 10
    assert namespace["SECTION_16"][namespace["SECTION_16"].index("--lines") + 1] == "1000000"


def test_generators_are_seeded() -> None:
    """Same seed, same data; the client pool has the asked size inside 10.0.0.0/8."""
    a = gen.clients(200, random.Random(1))
    assert a == gen.clients(200, random.Random(1))
    assert len(set(a)) == 200
    assert all(c.startswith("10.") for c in a)


@pytest.mark.skipif(not OURS.exists(), reason="squidguard-bloom console script not installed")
def test_our_helper_blocks_what_squidguard_blocks(tmp_path: Path) -> None:
    """The real engine, with and without welcome, blocks exactly the generated hits."""
    sg = need_squidguard()
    params = sidebyside.HelperParams(
        domains=3000, urls=300, lines=3000, clients=100, procs=2, startup_runs=1,
        welcome=True, squidguard=sg, timeout=120,
    )  # fmt: skip
    result = sidebyside.run(params, tmp_path / "work")
    assert result.skipped == {}
    streams = [r for r in result.rows if r.lines]
    assert {r.setup for r in streams} == {"squidGuard", "ours", "ours+welcome"}
    for row in streams:
        assert row.ok, f"{row.setup} x{row.procs}: {row.note}"
        assert row.blocked_hits == result.stats.blocked
    # byte for byte like squidGuard, but for blocked CONNECTs (status=302, deliberately)
    assert result.answer_diff is not None
    assert result.answer_diff["differ_other"] == 0, result.answer_diff["first_other"]
    assert result.answer_diff["identical"] > 0.9 * params.lines
    welcomed = [r.welcomed for r in streams if r.setup == "ours+welcome"]
    assert all(0 < w <= params.clients for w in welcomed)
    assert result.ours_install.startswith("ours runs from a staged install")
    assert "python -S -c pass" in sidebyside.render(result)


def test_staged_install_runs_compiled_without_the_editable_finder(tmp_path: Path) -> None:
    """The staged helper imports its byte-compiled copy, not the development tree."""
    command, python = staged.stage(tmp_path)
    assert Path(python).parent == Path(command[0]).parent
    probe = (
        "import sys, squidguard_bloom.helper.cli as c; "
        "print(c.__file__, c.__cached__, any('editable' in repr(f) for f in sys.meta_path))"
    )
    out = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    source, cached, editable = out.stdout.split()
    assert source.startswith(str(tmp_path))
    assert Path(cached).exists()
    assert editable == "False"
    version = subprocess.run([*command, "-v"], capture_output=True, text=True, check=False)
    assert version.returncode == 0
    assert "squidguard-bloom" in version.stderr


def test_helper_exit_status_when_our_helper_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A helper whose -C fails is reported as skipped, with exit status 1."""
    rc = cli.main([
        "helper", "--ours", "/bin/false", "--squidguard", "none", "--domains", "50",
        "--urls", "5", "--lines", "50", "--clients", "5", "--no-welcome",
        "--welcome-calls", "0", "--workdir", str(tmp_path), "--quiet",
    ])  # fmt: skip
    assert rc == 1
    out = capsys.readouterr().out
    assert "skipped ours: -C all exited 1" in out
    assert "skipped squidGuard: not requested" in out


def test_compare_answers_counts_connects_apart(tmp_path: Path) -> None:
    """Differences on CONNECT lines are counted apart from all others."""
    (tmp_path / "req").write_bytes(
        b"a.com:443 10.0.0.1/- - CONNECT\nhttp://b/ 10.0.0.1/- - GET\nhttp://c/ 10.0.0.1/- - GET\n"
    )
    (tmp_path / "sg").write_bytes(b'OK rewrite-url="x"\nERR\nERR\n')
    (tmp_path / "ours").write_bytes(b'OK status=302 url="x"\nERR\nOK status=302 url="y"\n')
    diff = sidebyside.compare_answers(tmp_path / "req", tmp_path / "sg", tmp_path / "ours")
    assert {k: diff[k] for k in ("compared", "identical", "differ_connect", "differ_other")} == {
        "compared": 3, "identical": 1, "differ_connect": 1, "differ_other": 1,
    }  # fmt: skip
    assert diff["first_other"].startswith("line 3: 'http://c/")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (999.4, "999"), (999.7, "1k"), (45_600, "45.6k"), (999_700, "1M"),
     (1_234_567, "1.23M"), (2.5e9, "2.5G")],
)  # fmt: skip
def test_human_rounds_before_choosing_the_unit(value: float | None, shown: str) -> None:
    """Three significant digits, and the unit of the rounded value."""
    assert table.human(value) == shown
