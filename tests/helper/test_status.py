"""The helper's status line in squidGuard.log: at start, on SIGUSR1, on its timer, idle or busy;
emergency mode announced in one fixed form; and the monitor's parser reads both."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from squidguard_bloom.monitor.parse import helper_event_kind, parse_helper_status

COMMAND = str(Path(sys.executable).parent / "squidguard-bloom")

CONFIG = """\
dbhome {db}
logdir {logs}
dest ads {{
    domainlist ads/domains
    redirect 302:http://block.example/?u=%u
}}
welcome {{
    redirect 302:http://welcome.example/?u=%u
    capacity 1000
    error 0.01
    state {db}/welcome.bloom
}}
acl {{
    default {{
        pass !ads all
    }}
}}
"""
PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(\d+)\] (.*)$")


def main_log(logs: Path, pid: int) -> list[str]:
    """The messages (after 'YYYY-MM-DD HH:MM:SS [PID] ') this process wrote to squidGuard.log."""
    path = logs / "squidGuard.log"
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        m = PREFIX.match(line)
        assert m, f"not in squidGuard's log style: {line!r}"
        if int(m.group(1)) == pid:
            out.append(m.group(2))
    return out


def statuses(logs: Path, pid: int) -> list[str]:
    return [m for m in main_log(logs, pid) if m.startswith("INFO: status: ")]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Helper:
    def __init__(self, conf: Path, *extra: str) -> None:
        self.proc = subprocess.Popen([COMMAND, "-c", str(conf), *extra], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None

    def ask(self, url: str, client: str = "10.0.0.1") -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{url} {client}/- - GET\n".encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, f"no answer to {url}"
        return self.proc.stdout.readline().decode().rstrip("\n")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    db, logs = tmp_path / "db", tmp_path / "logs"
    (db / "ads").mkdir(parents=True)
    logs.mkdir()
    (db / "ads" / "domains").write_text("ads.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(CONFIG.format(db=db, logs=logs))
    yield conf, logs


def test_status_at_start_and_on_sigusr1_counts_exactly(setup: tuple[Path, Path]) -> None:
    conf, logs = setup
    h = Helper(conf)
    try:
        pid = h.proc.pid
        wait_for(lambda: len(statuses(logs, pid)) == 1, "the status line at start")
        assert statuses(logs, pid) == [
            "INFO: status: answered=0 blocks=0 welcomes=0 filter=0/1000 fpr=0 target=0.01 "
            "over_capacity=no emergency=no uptime=0 interval=60"]
        assert h.ask("http://www.example.com/") == 'OK status=302 url="http://welcome.example/?u=http://www.example.com/"'
        assert h.ask("http://www.example.com/a") == "ERR"
        assert h.ask("http://ads.example/x") == 'OK status=302 url="http://block.example/?u=http://ads.example/x"'
        assert h.ask("http://ads.example/y", "10.0.0.2") == 'OK status=302 url="http://block.example/?u=http://ads.example/y"'
        assert h.ask("http://www.example.com/", "10.0.0.3") == 'OK status=302 url="http://welcome.example/?u=http://www.example.com/"'
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: len(statuses(logs, pid)) >= 2, "the status line after SIGUSR1")
        assert len(statuses(logs, pid)) == 2, statuses(logs, pid)
        line = statuses(logs, pid)[1]
        fields = parse_helper_status(line.removeprefix("INFO: "))
        assert fields is not None
        # two clients in a 1000-entry filter: its fill implies a tiny false-positive rate
        assert 0 < float(fields["fpr"]) < 1e-6
        assert {k: v for k, v in fields.items() if k not in ("fpr", "uptime")} == {
            "answered": "5", "blocks": "2", "welcomes": "2", "filter": "2/1000",
            "target": "0.01", "over_capacity": "no", "emergency": "no", "interval": "60"}
        assert helper_event_kind(line.removeprefix("INFO: ")) == "status"
    finally:
        h.stop()


def test_status_every_interval_while_idle_and_busy(setup: tuple[Path, Path]) -> None:
    """With --status-interval 1 the timer writes lines although no request comes;
    requests in between push the next line back, never doubling it."""
    conf, logs = setup
    h = Helper(conf, "--status-interval", "1")
    try:
        pid = h.proc.pid
        wait_for(lambda: len(statuses(logs, pid)) >= 3, "three status lines while idle")
        for i in range(30):  # busy for about 1.5 s
            assert h.ask(f"http://ads.example/{i}") == (
                f'OK status=302 url="http://block.example/?u=http://ads.example/{i}"')
            time.sleep(0.05)
        before = len(statuses(logs, pid))
        wait_for(lambda: len(statuses(logs, pid)) >= before + 2, "status lines after work")
        last = parse_helper_status(statuses(logs, pid)[-1].removeprefix("INFO: "))
        assert last is not None
        assert (last["answered"], last["blocks"], last["interval"]) == ("30", "30", "1")
        stamps = [int(parse_helper_status(s.removeprefix("INFO: "))["uptime"])  # type: ignore[index]
                  for s in statuses(logs, pid)]
        assert stamps == sorted(stamps)
    finally:
        h.stop()


def test_emergency_mode_is_logged_in_its_fixed_form(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    conf = tmp_path / "broken.conf"
    conf.write_text(f"logdir {logs}\nemergency block 302:http://down.example/\ndest x {{\n")
    h = Helper(conf)
    try:
        pid = h.proc.pid
        assert h.ask("http://www.example.com/") == 'OK status=302 url="http://down.example/"'
        wait_for(lambda: len(statuses(logs, pid)) == 1, "the status line")
        messages = main_log(logs, pid)
        assert messages[0].startswith("INFO: squidguard-bloom ")
        h.stop()
        assert h.proc.stderr is not None
        problems = [line.split(": ", 1)[1] for line in h.proc.stderr.read().decode().splitlines()
                    if line.startswith(f"squidguard-bloom[{pid}]: {conf}:")]
        assert len(problems) == 2 and problems[0].startswith(f"{conf}:4:1: error: ")
        assert messages[1] == (
            f"ERROR: emergency mode: block 302:http://down.example/: 2 problem(s) in {conf}, "
            f"see above; first: {problems[0]}")
        assert helper_event_kind(messages[1].removeprefix("ERROR: ")) == "emergency"
        assert messages[2].startswith("INFO: squidguard-bloom ready for requests")
        assert messages[3] == ("INFO: status: answered=0 blocks=0 welcomes=0 filter=- fpr=- "
                               "target=- over_capacity=no emergency=block uptime=0 interval=60")
    finally:
        h.stop()


def test_bad_status_interval_is_a_usage_error(setup: tuple[Path, Path]) -> None:
    conf, _logs = setup
    r = subprocess.run([COMMAND, "-c", str(conf), "--status-interval", "0"], input=b"",
                       capture_output=True, timeout=30, check=False)
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[0] == (
        "squidguard-bloom: --status-interval '0': expected seconds from 1 to 86400")
