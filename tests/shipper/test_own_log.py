"""The shipper ships its own log (its status lines reach the monitor) whenever it logs to a file."""

from __future__ import annotations

from pathlib import Path

from squidguard_bloom.shipper.cli import build_parser, settings_from

BASE = 'host = "monitor"\nuser = "logship"\nkey = "k"\nknown_hosts = "kh"\n'


def files_for(tmp_path: Path, body: str, *flags: str) -> dict[str, Path]:
    cfg = tmp_path / "ship.toml"
    cfg.write_text(BASE + body)
    return settings_from(build_parser().parse_args(["-c", str(cfg), *flags]))[0].files


def test_own_log_is_shipped_as_ship(tmp_path: Path) -> None:
    body = 'log_file = "/var/log/sgb/ship.log"\n[files]\naccess = "/var/log/squid/access.log"\n'
    assert files_for(tmp_path, body) == {"access": Path("/var/log/squid/access.log"),
                                         "ship": Path("/var/log/sgb/ship.log")}
    assert files_for(tmp_path, body, "--no-ship-own-log") == {
        "access": Path("/var/log/squid/access.log")}


def test_own_log_beside_the_helpers_logs_and_never_twice(tmp_path: Path) -> None:
    conf = tmp_path / "squidGuard.conf"
    conf.write_text(f"logdir {tmp_path}\nacl {{ default {{ pass all }} }}\n")
    got = files_for(tmp_path, f'helper_config = "{conf}"\n', "--log-file", "/l/ship.log")
    assert got == {"squidGuard": tmp_path / "squidGuard.log", "ship": Path("/l/ship.log")}
    listed = files_for(tmp_path, '[files]\nmine = "/l/ship.log"\n', "--log-file", "/l/ship.log")
    assert listed == {"mine": Path("/l/ship.log")}
    taken = files_for(tmp_path, '[files]\nship = "/l/other.log"\n', "--log-file", "/l/ship.log")
    assert taken == {"ship": Path("/l/other.log"), "ship-log": Path("/l/ship.log")}
    assert files_for(tmp_path, '[files]\nx = "/l/x.log"\n') == {"x": Path("/l/x.log")}
