"""The checkpoint file (atomic replace, interrupted tmp) and the config/flag surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from squidguard_bloom.shipper.checkpoint import Checkpoint, CheckpointFile, Segment
from squidguard_bloom.shipper.cli import build_parser, main, settings_from
from squidguard_bloom.shipper.errors import CheckpointError, ShipConfigError


def sample() -> Checkpoint:
    cp = Checkpoint()
    state = cp.stream("squidGuard", "/var/log/x.log")
    state.segments.append(Segment(1, "squidGuard/00000001-1-2.log", 1, 2, 10, "ab", acked=77))
    state.next_seq = 2
    return cp


def test_checkpoint_round_trip_and_no_tmp_left(tmp_path: Path) -> None:
    """save() then load() gives the same state; the tmp file is renamed away."""
    f = CheckpointFile(tmp_path / "checkpoint.json")
    f.save(sample())
    assert f.load() == sample()
    assert not f.tmp.exists()


def test_complete_tmp_wins_incomplete_tmp_is_ignored(tmp_path: Path) -> None:
    """A parseable left-over tmp is newer than the main file; a torn one is ignored."""
    f = CheckpointFile(tmp_path / "checkpoint.json")
    f.save(Checkpoint())
    newer = sample()
    f.tmp.write_text(newer.to_json())
    assert f.load() == newer
    assert CheckpointFile(f.path).load() == newer  # and it was made the main file
    f.tmp.write_text(newer.to_json()[:40])
    assert f.load() == newer


def test_corrupt_checkpoint_names_the_file_and_the_fix(tmp_path: Path) -> None:
    f = CheckpointFile(tmp_path / "checkpoint.json")
    f.path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"checkpoint.json: not a valid checkpoint.*move it"):
        f.load()
    f.path.write_text('{"version": 9, "streams": {}}')
    with pytest.raises(CheckpointError, match="unsupported checkpoint version 9"):
        f.load()


def write_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "ship.toml"
    p.write_text(body)
    return p


BASE = 'host = "monitor"\nuser = "logship"\nkey = "k"\nknown_hosts = "kh"\n'


def test_config_file_and_flags(tmp_path: Path) -> None:
    """Flags override the file; [files] names the remote directories."""
    cfg = write_config(
        tmp_path, BASE + 'port = 2222\nbatch_size = 65536\n[files]\nsquid = "/var/log/a.log"\n'
    )
    args = build_parser().parse_args(["-c", str(cfg), "--port", "2200", "--no-remote-fsync"])
    settings, _ = settings_from(args)
    assert settings.link.port == 2200 and settings.batch_size == 65536
    assert settings.files == {"squid": Path("/var/log/a.log")}
    assert settings.remote_fsync is False
    args = build_parser().parse_args(["-c", str(cfg), "-f", "/x/squidGuard.log"])
    assert settings_from(args)[0].files == {"squidGuard": Path("/x/squidGuard.log")}


def test_password_in_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, BASE + 'password = "secret"\n')
    assert main(["-c", str(cfg)]) == 78
    err = capsys.readouterr().err
    assert err.startswith("squidguard-bloom-ship: [fault=config] ") and "'password' is not" in err


def test_missing_and_unknown_settings(tmp_path: Path) -> None:
    with pytest.raises(ShipConfigError, match=r"missing setting.*host"):
        settings_from(build_parser().parse_args(["-c", str(write_config(tmp_path, ""))]))
    cfg = write_config(tmp_path, BASE + "hots = 1\n")
    with pytest.raises(ShipConfigError, match="unknown setting 'hots'"):
        settings_from(build_parser().parse_args(["-c", str(cfg)]))


def test_documented_config_example_loads(tmp_path: Path) -> None:
    """The TOML example of docs/shipper.md is a valid config as it stands."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "shipper.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    settings, _ = settings_from(
        build_parser().parse_args(["-c", str(write_config(tmp_path, example))])
    )
    assert settings.link.host == "monitor.example.org" and settings.link.remote_dir == "/incoming"
    assert set(settings.files) == {"squidGuard", "blocked", "access"}
