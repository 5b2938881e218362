"""The shipper tests' world: an sshd, local log files, a state dir, the shipper's command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from squidguard_bloom.shipper.faults import LINK_RESTORED, Fault

from .servers import Sshd

# The stable tag that starts the shipper's fault and link lines (docs/shipper.md, "Faults").
TAGGED = re.compile(r" (DEBUG|INFO|WARNING|ERROR): (\[(?:fault|link)=[a-z-]+\]) ")


def tagged(text: str, level: str) -> list[str]:
    """The tags (``[fault=lost]``, ``[link=restored]``) of the log's lines at ``level``."""
    return [m[2] for m in TAGGED.finditer(text) if m[1] == level]


def warned_faults(text: str) -> list[Fault]:
    """The fault kinds the shipper warned about, in order: one per change of fault."""
    return [Fault(tag[7:-1]) for tag in tagged(text, "WARNING") if tag.startswith("[fault=")]


def failed_attempts(text: str, fault: Fault) -> int:
    """How many attempts failed with ``fault`` (one debug line each; the harness runs -v)."""
    return tagged(text, "DEBUG").count(f"[fault={fault}]")


def restorations(text: str) -> int:
    """How many times the link came back after a fault."""
    return tagged(text, "INFO").count(LINK_RESTORED)


def lines(start: int, count: int, width: int = 150) -> bytes:
    """``count`` distinct lines of ``width`` bytes each (newline included)."""
    pad = b"x" * (width - 14)
    return b"".join(b"%012d %s\n" % (i, pad) for i in range(start, start + count))


class Harness:
    """One test's world: an sshd, local log files, a state dir, the shipper's command line."""

    def __init__(self, root: Path, sshd: Sshd) -> None:
        self.root = root
        self.sshd = sshd
        self.logs = root / "logs"
        self.logs.mkdir()
        self.state = root / "state"
        self.remote_dir = "incoming"
        self.port = sshd.port
        self.procs: list[subprocess.Popen[bytes]] = []
        self.runs = 0

    @property
    def remote_root(self) -> Path:
        return self.sshd.data / self.remote_dir

    def args(self, *files: str, **overrides: object) -> list[str]:
        opts: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.sshd.user,
            "key": self.sshd.client_key,
            "known-hosts": self.sshd.known_hosts,
            "remote-dir": str(self.sshd.data / self.remote_dir),
            "state-dir": self.state,
            "flush-interval": 0.05,
            "rotate-wait": 0.5,
            # Generous: a loaded machine must not produce faults of its own. The
            # tests that inject a stall or a hang shorten the one they test.
            "keepalive-interval": 5,
            "keepalive-count-max": 3,
            "connect-timeout": 30,
            "write-timeout": 30,
            "backoff-min": 0.1,
            "backoff-max": 0.5,
            "status-interval": 60,
        }
        opts.update({k.replace("_", "-"): v for k, v in overrides.items()})
        argv = [sys.executable, "-m", "squidguard_bloom.shipper", "-v"]
        for k, v in opts.items():
            if isinstance(v, bool):
                argv.append(f"--{k}" if v else f"--no-{k}")
            else:
                argv += [f"--{k}", str(v)]
        for f in files:
            argv += ["--file", f]
        return argv

    def run_once(
        self, *files: str, timeout: float = 60, **overrides: object
    ) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        log = self.root / f"once-{self.runs}.log"
        proc = subprocess.run(
            [*self.args(*files, **overrides), "--once"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        log.write_text(proc.stderr)
        return proc

    def start(self, *files: str, **overrides: object) -> subprocess.Popen[bytes]:
        self.runs += 1
        log = self.root / f"ship-{self.runs}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                self.args(*files, **overrides), stdout=fh, stderr=fh, start_new_session=True
            )
        proc.log_path = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        return proc.wait(15)

    def remote_segments(self, stream: str) -> list[Path]:
        d = self.remote_root / stream
        return sorted(d.iterdir()) if d.exists() else []

    def remote_bytes(self, stream: str) -> bytes:
        return b"".join(p.read_bytes() for p in self.remote_segments(stream))

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            dead = [p for p in self.procs if p.poll() is not None and p.returncode != -9]
            if dead:
                raise AssertionError(f"shipper exited ({dead[0].returncode}); {self.postmortem()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; {self.postmortem()}")

    def postmortem(self) -> str:
        out = []
        for p in sorted(self.root.glob("*.log")):
            out.append(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}")
        out.append(f"--- sshd.log\n{self.sshd.log.read_text(errors='replace')[-2000:]}")
        return "\n".join(out)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
