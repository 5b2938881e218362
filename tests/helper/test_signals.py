"""The running command and its signals: SIGHUP reloads, logrotate's rename, SIGUSR1.

Each test starts the installed ``squidguard-bloom`` on a real config, talks
to it through pipes as Squid does, and signals it by PID.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).parent / "squidguard-bloom")

CONFIG = """\
dbhome {db}
logdir {logs}
dest ads {{
    domainlist ads/domains
    redirect 302:http://block.example/?u=%u
    log blocked.log
}}
acl {{
    default {{
        pass !ads all
    }}
}}
"""


class Running:
    """One helper process on pipes, answering a line at a time."""

    def __init__(self, conf: Path) -> None:
        self.proc = subprocess.Popen([COMMAND, "-c", str(conf)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout

    def ask(self, url: str, timeout: float = 10.0) -> str:
        self.stdin.write(f"{url} 10.0.0.1/- - GET\n".encode())
        self.stdin.flush()
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        assert ready, f"no answer to {url} within {timeout} s"
        return self.stdout.readline().decode().rstrip("\n")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> str:
        """Close stdin (Squid's way of stopping a helper); the stderr it wrote."""
        self.stdin.close()
        try:
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    db, logs = tmp_path / "db", tmp_path / "logs"
    (db / "ads").mkdir(parents=True)
    logs.mkdir()
    (db / "ads" / "domains").write_text("ads.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(CONFIG.format(db=db, logs=logs))
    running = Running(conf)
    yield running, tmp_path
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


BLOCK = 'OK status=302 url="http://block.example/?u=http://{host}/"'


def blocked(url: str) -> str:
    """The whole reply to a blocked request for url."""
    return f'OK status=302 url="http://block.example/?u={url}"'


def test_sighup_reloads_lists_and_a_bad_config_keeps_the_old_one(helper) -> None:
    run, root = helper
    assert run.ask("http://ads.example/") == BLOCK.format(host="ads.example")
    assert run.ask("http://new.example/") == "ERR"
    (root / "db" / "ads" / "domains").write_text("ads.example\nnew.example\n")
    run.signal(signal.SIGHUP)
    assert run.ask("http://new.example/") == BLOCK.format(host="new.example")
    conf = root / "sg.conf"
    good = conf.read_text()
    conf.write_text(good.replace("pass !ads all", "pass !nosuchdest all"))
    run.signal(signal.SIGHUP)
    # The broken file is refused: the lists of the last good load still decide.
    assert run.ask("http://new.example/") == BLOCK.format(host="new.example")
    assert run.ask("http://other.example/") == "ERR"
    conf.write_text(good)
    (root / "db" / "ads" / "domains").write_text("ads.example\n")
    run.signal(signal.SIGHUP)
    assert run.ask("http://new.example/") == "ERR"
    err = run.stop()
    assert run.proc.returncode == 0
    assert f"{conf}:10:14: error: dest 'nosuchdest' is not defined" in err, err
    assert "keeping the one in use" in err, err
    main_log = (root / "logs" / "squidGuard.log").read_text()
    assert main_log.count("reloaded configuration") == 2, main_log
    assert "reload failed, configuration unchanged" in main_log


def test_log_renamed_by_logrotate_is_reopened_by_name(helper) -> None:
    run, root = helper
    log = root / "logs" / "blocked.log"
    assert run.ask("http://ads.example/one") == blocked("http://ads.example/one")
    assert "ads.example/one" in log.read_text()
    log.rename(log.with_suffix(".log.1"))
    time.sleep(1.2)  # the helper looks for a moved file at most once a second
    assert run.ask("http://ads.example/two") == blocked("http://ads.example/two")
    run.stop()
    old, new = log.with_suffix(".log.1").read_text(), log.read_text()
    assert "ads.example/one" in old and "ads.example/two" not in old
    assert "ads.example/two" in new and "ads.example/one" not in new


def test_sigusr1_reopens_logs_at_once(helper) -> None:
    run, root = helper
    log = root / "logs" / "blocked.log"
    assert run.ask("http://ads.example/one") == blocked("http://ads.example/one")
    log.rename(log.with_suffix(".log.1"))
    run.signal(signal.SIGUSR1)
    for n in range(3):  # within the second: only the signal can make it reopen
        assert run.ask(f"http://ads.example/after{n}") == blocked(f"http://ads.example/after{n}")
    run.stop()
    new = log.read_text()
    assert [line.split()[4] for line in new.splitlines()] == [
        f"http://ads.example/after{n}" for n in range(3)]
    assert "after" not in log.with_suffix(".log.1").read_text()


def test_explain_puts_each_answer_right_after_its_reason(tmp_path: Path) -> None:
    """An admin piping lines in with --explain reads reason, answer, reason, answer."""
    db = tmp_path / "db"
    (db / "ads").mkdir(parents=True)
    (db / "ads" / "domains").write_text("ads.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(CONFIG.format(db=db, logs=tmp_path))
    lines = [f"http://{h}/ 10.0.0.1/- - GET" for h in ("a.example", "ads.example", "b.example")]
    out = subprocess.run([COMMAND, "-c", str(conf), "--explain"], input="\n".join(lines) + "\n",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30,
                         check=True).stdout.splitlines()
    talk = [x for x in out if x.startswith(("# ", "OK", "ERR"))]
    assert [x if x[0] != "#" else "#" for x in talk] == [
        "#", "ERR", "#", BLOCK.format(host="ads.example"), "#", "ERR"], out
    assert talk[2].startswith("# http://ads.example/ 10.0.0.1: ") and "-> block" in talk[2]
