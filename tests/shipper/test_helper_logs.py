"""The default: the helper's own logs, where the real helper writes them; and the helper never
waits for the shipper.

The helper is the installed console script, run on a squidGuard.conf with its
own logdir; the shipper is given only that configuration (no ``--file``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from squidguard_bloom.helper import cli as helper_cli
from squidguard_bloom.helper import runtime
from squidguard_bloom.shipper.cli import build_parser, settings_from
from squidguard_bloom.shipper.errors import ShipConfigError
from squidguard_bloom.shipper.helperlogs import HELPER_CONFIG, MAIN_LOG, helper_logs

from .harness import Harness

HELPER = Path(sys.executable).with_name("squidguard-bloom")


def helper_config(root: Path, logdir: Path) -> Path:
    """A squidGuard.conf whose blocked requests go to blocked.log and welcomes to welcome.log."""
    db = root / "db"
    (db / "bad").mkdir(parents=True)
    (db / "bad" / "domains").write_text("bad.example\n")
    logdir.mkdir(exist_ok=True)
    conf = root / "squidGuard.conf"
    conf.write_text(
        f"dbhome {db}\nlogdir {logdir}\n"
        "dest bad {\n    domainlist bad/domains\n    log blocked.log\n}\n"
        "welcome {\n    redirect http://welcome.example.net/?next=%u\n"
        f"    state {root / 'welcome.bloom'}\n    log welcome.log\n}}\n"
        "acl {\n    default {\n        pass !bad all\n"
        "        redirect http://block.example.net/?url=%u\n    }\n}\n"
    )
    return conf


def run_helper(conf: Path, requests: int) -> None:
    """Feed ``requests`` request lines (every third blocked) to the helper; one answer each."""
    body = "".join(
        f"http://{'bad' if i % 3 == 0 else 'ok'}.example/{i} 10.0.{i // 250}.{i % 250}/- - GET\n"
        for i in range(requests)
    )
    done = subprocess.run(
        [str(HELPER), "-c", str(conf)],
        input=body,
        capture_output=True,
        text=True,
        timeout=300,  # a helper waiting for the (frozen) shipper would never finish
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == requests


def test_defaults_match_the_helper() -> None:
    """The shipper looks where the helper writes: its -c default, its main log's name."""
    assert str(HELPER_CONFIG) == helper_cli.DEFAULT_CONFIG
    assert MAIN_LOG == runtime.MAIN_LOG
    assert helper_logs(Path("/nonexistent/squidGuard.conf")) == {
        "squidGuard": Path(runtime.DEBIAN_LOGDIR) / runtime.MAIN_LOG
    }


def test_helper_config_names_every_log(tmp_path: Path) -> None:
    """logdir, relative and absolute log lines, the welcome block; errors say what to do."""
    conf = helper_config(tmp_path, tmp_path / "log")
    with open(conf, "a") as fh:
        fh.write(f"src lan {{\n    ip 10.0.0.0/8\n    log {tmp_path}/other/lan.log\n}}\n")
    assert helper_logs(conf) == {
        "squidGuard": tmp_path / "log" / "squidGuard.log",
        "blocked": tmp_path / "log" / "blocked.log",
        "welcome": tmp_path / "log" / "welcome.log",
        "lan": tmp_path / "other" / "lan.log",
    }
    flags = ["--host", "m", "--user", "u", "--key", "k", "--known-hosts", "kh"]
    args = build_parser().parse_args([*flags, "--helper-config", str(conf)])
    assert settings_from(args)[0].files == helper_logs(conf)
    with open(conf, "a") as fh:
        fh.write("dest more {\n    domainlist bad/domains\n    log sub/blocked.log\n}\n")
    with pytest.raises(ShipConfigError, match=r"share the name 'blocked'.*\[files\]"):
        helper_logs(conf)
    if os.geteuid() != 0:  # root reads anything
        conf.chmod(0)
        with pytest.raises(ShipConfigError, match=r"make it readable.*\[files\]"):
            helper_logs(conf)


def test_ships_the_real_helpers_logs_by_default(harness: Harness) -> None:
    """The installed helper answers requests and writes its logs; the shipper, given only the
    helper's configuration, ships squidGuard.log, blocked.log and welcome.log byte for byte."""
    conf = helper_config(harness.root, harness.logs)
    run_helper(conf, 300)
    done = harness.run_once(helper_config=conf)  # no --file
    assert done.returncode == 0, done.stderr
    for stream in ("squidGuard", "blocked", "welcome"):
        local = (harness.logs / f"{stream}.log").read_bytes()
        assert local, f"the helper wrote nothing to {stream}.log"
        assert harness.remote_bytes(stream) == local, stream
    assert b"Request(default/bad/-) http://bad.example/0 " in harness.remote_bytes("blocked")
    assert b"squidguard-bloom stopped" in harness.remote_bytes("squidGuard")


def test_a_frozen_shipper_never_holds_the_helper_up(harness: Harness) -> None:
    """With the shipper stopped dead (SIGSTOP) the helper answers every line and loses no log
    line (it shares nothing with the shipper but the files: it cannot wait for it); thawed,
    the shipper catches up byte for byte. The helper never imports the shipper or asyncssh."""
    conf = helper_config(harness.root, harness.logs)
    run_helper(conf, 3000)
    proc = harness.start(str(harness.logs / "blocked.log"))
    harness.wait_for(
        lambda: harness.remote_bytes("blocked") == (harness.logs / "blocked.log").read_bytes(),
        60,
        "first shipment",
    )
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        run_helper(conf, 3000)  # the shipper is frozen until it has finished
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    local = harness.logs / "blocked.log"
    assert local.read_bytes().count(b"\n") == 2000
    harness.wait_for(lambda: harness.remote_bytes("blocked") == local.read_bytes(), 60, "catch-up")
    assert harness.stop(proc) == 0
    probe = (
        "import sys, squidguard_bloom.helper.cli, squidguard_bloom.helper.runtime\n"
        "import squidguard_bloom.helper.loop\n"
        "bad = [m for m in sys.modules if 'shipper' in m or m.startswith('asyncssh')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=30)
