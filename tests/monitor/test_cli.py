"""The monitor's command line, configuration file and example systemd unit."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from squidguard_bloom.monitor import config
from squidguard_bloom.monitor.cli import build_parser
from squidguard_bloom.monitor.errors import MonitorConfigError
from squidguard_bloom.monitor.report import parse_duration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "squidguard_bloom" / "monitor" / "squidguard-bloom-monitor-ingest.service"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", *argv],
                          capture_output=True, text=True, check=False, timeout=60)


def test_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('db = "x.db"\nroots = ["/srv/logship"]\ntz = "UTC"\nraw_days = 7\n'
                    'rollup_days = 90\n[proxies]\nproxy-x = "/srv/x"\n')
    cfg = config.load(path)
    assert (cfg.db, cfg.roots, cfg.tz, cfg.raw_days, cfg.rollup_days, cfg.proxies) == (
        "x.db", [Path("/srv/logship")], "UTC", 7.0, 90.0, {"proxy-x": Path("/srv/x")})


@pytest.mark.parametrize(("text", "message"), [
    ('rots = ["/srv"]\n', "unknown setting 'rots'; see docs/monitor.md"),
    ('raw_days = "30"\n', "'raw_days' must be a float"),
    ('roots = "/srv"\n', "'roots' must be a list of directories"),
    ('tz = "Mars/Olympus"\n', "tz 'Mars/Olympus' is not a known time zone; use a name such as "
                             "Europe/Berlin or UTC"),
    ("raw_days = 60\nrollup_days = 30\n", "rollup_days must be at least raw_days (rollups "
                                          "summarise the raw rows and outlive them)"),
    ("raw_days = [\n", None),
])
def test_bad_config_names_the_file_and_the_fix(tmp_path: Path, text: str,
                                               message: str | None) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    with pytest.raises(MonitorConfigError) as err:
        config.load(path)
    if message is not None:
        assert str(err.value) in (f"{path}: {message}", message)
    else:
        assert str(err.value).startswith(f"{path}: ")


def test_config_error_exits_78_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text("colour = 1\n")
    out = run("--config", str(path), "report")
    assert (out.returncode, out.stdout) == (78, "")
    assert out.stderr == (f"squidguard-bloom-monitor: {path}: unknown setting 'colour'; see "
                          "docs/monitor.md\n")


def test_ingest_without_directories_says_what_to_give(tmp_path: Path) -> None:
    out = run("--db", str(tmp_path / "m.db"), "ingest", "--once")
    assert out.returncode == 78
    assert out.stderr.endswith("squidguard-bloom-monitor: nothing to ingest: give --root DIR "
                               "(one directory per proxy inside) or --proxy NAME=DIR, or "
                               "'roots' in the config\n")
    bad = run("--db", str(tmp_path / "m.db"), "ingest", "--proxy", "nodir")
    assert (bad.returncode, bad.stderr) == (
        78, "squidguard-bloom-monitor: --proxy 'nodir': write NAME=DIR\n")


def test_second_ingest_on_one_database_exits_75(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    db = str(tmp_path / "m.db")
    first = subprocess.Popen([sys.executable, "-m", "squidguard_bloom.monitor", "--db", db,
                              "ingest", "--proxy", f"p={tmp_path / 'p'}"],
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None
        assert "ingesting" in first.stderr.readline()  # it holds the lock from here on
        second = run("--db", db, "ingest", "--once", "--proxy", f"p={tmp_path / 'p'}")
        assert second.returncode == 75
        assert second.stderr.endswith(f"another ingest is running on {db}; only one may "
                                      "write a database\n")
    finally:
        first.terminate()
        assert first.wait(30) == 0  # SIGTERM: finishes its pass and exits cleanly
        if first.stderr:
            first.stderr.close()


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900),
                                               ("1h", 3600), ("2d", 172800), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(MonitorConfigError, match="'an hour' is not a duration"):
        parse_duration("an hour")


def test_systemd_unit_runs_a_command_the_cli_accepts() -> None:
    lines = UNIT.read_text().splitlines()
    (start,) = [x for x in lines if x.startswith("ExecStart=")]
    argv = shlex.split(start.split("=", 1)[1])
    assert argv[0] == "/usr/bin/squidguard-bloom-monitor"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "ingest" and not args.once
    assert "RestartPreventExitStatus=78 75" in lines
    assert "User=sgb-monitor" in lines
