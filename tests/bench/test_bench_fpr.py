"""The ``fpr`` benchmark on tiny sizes: keys, rows, table, JSON, plot (numbers unasserted)."""

from __future__ import annotations

import ctypes.util
import importlib
import json
from typing import Any

import pytest

from squidguard_bloom.bench import cli, fpr
from squidguard_bloom.bench.progress import Progress

TINY = fpr.FprParams(
    capacities=(2000,),
    error_rates=(0.01,),
    kinds=fpr.KEY_KINDS,
    implementations=("ours", "ours-batch", "pybloom-live"),
    steps=4,
    queries=2000,
    seed=7,
)

ROW_KEYS = {
    "impl", "version", "kind", "capacity", "error_rate", "n", "fill", "queries",
    "false_positives", "fpr", "theory", "rel_err", "inserts_per_s", "lookups_per_s", "bits",
    "hashes", "bytes", "bits_per_entry", "note",
}  # fmt: skip


@pytest.mark.parametrize("kind", fpr.KEY_KINDS)
def test_keys_are_distinct_disjoint_and_reproducible(kind: str) -> None:
    """Each kind gives the asked counts, no key twice, and the same keys for the same seed."""
    ins, query = fpr.make_keys(kind, 700, 300, seed=3)
    assert len(ins) == 700
    assert len(query) == 300
    assert len(set(ins) | set(query)) == 1000
    assert (ins, query) == fpr.make_keys(kind, 700, 300, seed=3)
    assert ins != fpr.make_keys(kind, 700, 300, seed=4)[0]


def test_address_keys_are_packed_addresses() -> None:
    """IP kinds go through address_key: 4 bytes for IPv4, 16 for IPv6."""
    assert {len(k) for k in fpr.make_keys("ipv4-random", 50, 50, 1)[0]} == {4}
    assert {len(k) for k in fpr.make_keys("ipv6", 50, 50, 1)[0]} == {16}
    seq = fpr.make_keys("ipv4-seq", 512, 0, 1)[0]
    values = [int.from_bytes(k, "big") for k in seq]
    # handed out in /24 blocks, address after address
    assert values[1:256] == [values[0] + i for i in range(1, 256)]
    assert values[0] % 256 == 0


def test_unknown_kind_is_refused() -> None:
    """A typo in a key kind names the valid ones."""
    with pytest.raises(ValueError, match="ipv4-random"):
        fpr.make_keys("ipv5", 1, 1, 0)


def test_fill_points_reach_twice_capacity_through_capacity() -> None:
    """Steps are evenly spaced to 2x capacity, with n = capacity at an even step count."""
    assert fpr.fill_points(1000, 4) == [500, 1000, 1500, 2000]
    assert fpr.fill_points(1000, 1) == [2000]


def test_theory_formula() -> None:
    """(1 - e^(-kn/m))^k at the textbook point m/n = 9.585, k = 7 is about 1 %."""
    assert fpr.theory(9585, 7, 1000) == pytest.approx(0.01, rel=0.01)
    assert fpr.theory(9585, 7, 0) == 0.0


def _run_tiny() -> fpr.FprResult:
    return fpr.run(TINY)


def test_rows_cover_every_implementation_kind_and_step() -> None:
    """One row per implementation x kind x step, each with every field, FPR in [0, 1]."""
    result = _run_tiny()
    assert len(result.rows) == 3 * len(fpr.KEY_KINDS) * 4
    for row in result.rows:
        assert set(row) == ROW_KEYS
        assert 0.0 <= row["fpr"] <= 1.0
        assert row["inserts_per_s"] > 0
        assert row["lookups_per_s"] > 0
        assert row["bits"] > 0
        assert row["bytes"] >= row["bits"] // 8
    ours = [r for r in result.rows if r["impl"] == "ours" and r["kind"] == "string"]
    assert [r["n"] for r in ours] == [1000, 2000, 3000, 4000]
    # the same keys and the same filter: batch calls find exactly what single calls find
    batch = [r for r in result.rows if r["impl"] == "ours-batch" and r["kind"] == "string"]
    assert [r["false_positives"] for r in ours] == [r["false_positives"] for r in batch]


def test_missing_implementation_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libbloom.so (or an importable peer) the run goes on and says why."""
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    real = importlib.import_module

    def no_rbloom(name: str, *args: Any) -> Any:
        if name == "rbloom":
            raise ModuleNotFoundError("No module named 'rbloom'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_rbloom)
    params = fpr.FprParams(
        capacities=(2000,), error_rates=(0.01,), kinds=("string",),
        implementations=("ours", "libbloom", "rbloom"), steps=2, queries=100,
    )  # fmt: skip
    result = fpr.run(params)
    assert {r["impl"] for r in result.rows} == {"ours"}
    assert "libbloom-dev" in result.skipped["libbloom"]
    assert "rbloom" in result.skipped["rbloom"]
    assert "skipped libbloom:" in fpr.render(result)


def test_table_has_the_documented_columns() -> None:
    """Header names every measured quantity; one line per row plus header and rule."""
    result = _run_tiny()
    lines = fpr.render(result).splitlines()
    for header in (
        "implementation",
        "keys",
        "capacity",
        "FPR",
        "theory",
        "inserts/s",
        "lookups/s",
        "bits/entry",
        "bytes",
        "k",
    ):
        assert header in lines[0].split()
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert sum(1 for line in lines if line.startswith(("ours ", "ours-batch", "pybloom"))) == len(
        result.rows
    )


def test_cli_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """``fpr --json`` prints one JSON document: machine, params, skipped, rows."""
    rc = cli.main([
        "fpr", "--capacity", "1500", "--error-rate", "0.01,0.001", "--kinds", "ipv6",
        "--impl", "ours,pybloom-live", "--steps", "2", "--queries", "500", "--json", "--quiet",
    ])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "fpr"
    assert {"date", "cpu", "cpus", "python"} <= set(doc["machine"])
    assert doc["params"]["error_rates"] == [0.01, 0.001]
    assert doc["params"]["kinds"] == ["ipv6"]
    assert len(doc["rows"]) == 2 * 2 * 2
    assert all(set(r) == ROW_KEYS for r in doc["rows"])


def test_cli_table_on_stdout_progress_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """The table goes to stdout under a machine line; the forced bar goes to stderr only."""
    rc = cli.main(
        [
            "fpr",
            "--capacity",
            "1000",
            "--error-rate",
            "0.01",
            "--kinds",
            "string",
            "--impl",
            "ours",
            "--steps",
            "2",
            "--queries",
            "200",
            "--progress",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0
    assert out.startswith("# ")
    assert "implementation" in out.splitlines()[1]
    assert "[" in err
    assert "#" * 30 in err
    assert "implementation" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["fpr", "--kinds", "ipv5"],
        ["fpr", "--impl", "nosuch"],
        ["fpr", "--steps", "0"],
        ["fpr", "--capacity", "ten"],
    ],
)
def test_cli_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad option values exit 2 with a message naming the option."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_cli_error_rate_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    """An error rate outside (0, 1) is refused before any work."""
    assert cli.main(["fpr", "--error-rate", "1.5", "--quiet"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """--plot without matplotlib exits 2 before measuring, naming the install command."""
    real = importlib.import_module

    def no_mpl(name: str, *args: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ModuleNotFoundError("No module named 'matplotlib'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_mpl)
    out = tmp_path / "fpr.png"
    assert cli.main(["fpr", "--plot", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "pip install" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_plot_writes_a_png(tmp_path: Any) -> None:
    """With matplotlib (a test dependency), --plot draws every implementation into a PNG."""
    out = tmp_path / "fpr.png"
    fpr.plot(_run_tiny(), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_rendering() -> None:
    """The bar fills in proportion and stays silent on a non-terminal unless forced."""
    import io

    quiet = io.StringIO()
    bar = Progress(4, "x", stream=quiet)
    bar.advance(2)
    assert quiet.getvalue() == ""
    assert "[" + "#" * 15 + "-" * 15 + "] 2/4" in bar.render()
    loud = io.StringIO()
    bar = Progress(2, "y", stream=loud, force=True, width=4)
    bar.advance(2)
    bar.close()
    assert "y [####] 2/2" in loud.getvalue()
    assert loud.getvalue().endswith("\n")
