"""The one executor for the real programs the tests drive: Squid, sshd, squidGuard.

Servers (Squid, sshd, and next Redis and PostgreSQL) run through
:class:`Server`, a thin layer over mirakuru's ``TCPExecutor`` (the executor
behind pytest-redis and pytest-postgresql): started in a session of their
own on a free 127.0.0.1 port, waited for until the port accepts (failing
early, with the program's log, if it exits first), stopped by signalling
their process group and escalating to SIGKILL.  squidGuard is not a server
but a filter over stdin: :func:`run_squidguard` is its one runner.  A
missing binary fails naming the setup command, never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from mirakuru import TCPExecutor
from mirakuru.exceptions import ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

SETUP_HINT = "run ./setup.sh test (it installs squid, squidguard, openssh-server and curl)"


def need(binary: str, hint: str = SETUP_HINT) -> str:
    """Absolute path of binary (also looked for in the sbin directories), or a test failure."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        raise AssertionError(f"{binary} is not installed: {hint}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent PID, start time in ticks) of a process; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")"
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def children_of(pid: int) -> list[int]:
    """PIDs of the live (non-zombie) processes whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry))
    return found


class Server:
    """A real server listening on 127.0.0.1:port, its output in log.

    ``start()`` returns once the port accepts connections; a program that
    exits first, or does not listen within timeout seconds, fails the test
    with the end of its log.  ``stop()`` sends SIGTERM to its process group,
    waits up to timeout seconds, then sends SIGKILL.  Startable again after
    a stop (a restart keeps the port).
    """

    def __init__(self, command: Sequence[str], port: int, log: Path, *,
                 timeout: float = 30.0, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.command = list(command)
        self.port = port
        self.log = log
        self._timeout = timeout
        self._env = dict(env or {})
        self._cwd = str(cwd) if cwd is not None else None
        self._executor: TCPExecutor | None = None

    @property
    def pid(self) -> int:
        """PID of the running server (its process group leader)."""
        process = self._executor.process if self._executor is not None else None
        if process is None:
            raise AssertionError(f"{self.command[0]} is not running")
        return process.pid

    def running(self) -> bool:
        """True while the server process runs."""
        return self._executor is not None and self._executor.running()

    def start(self) -> None:
        """Start the server and wait until its port accepts connections."""
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self._executor = TCPExecutor(self.command, host="127.0.0.1", port=self.port,
                                         timeout=self._timeout, sleep=0.05, envvars=self._env,
                                         cwd=self._cwd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
            try:
                self._executor.start()
            except (ProcessExitedWithError, TimeoutExpired) as exc:
                raise AssertionError(f"{self.command[0]} did not start ({exc}); its log ends:\n"
                                     f"{self.tail()}") from None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after the timeout; no-op when stopped."""
        if self._executor is None:
            return
        # A server stopped by a signal may exit with any status: it is gone all the same.
        with contextlib.suppress(ProcessFinishedWithError):
            self._executor.stop()
        self._executor = None

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the server's main process and wait for it (its port is closed then), then
        SIGKILL the rest of its process group and what inherited the executor's environment
        marker, as in a crash (a child that re-exec'd with a clean environment and left the
        group is the caller's to kill)."""
        process = self._executor.process if self._executor is not None else None
        if self._executor is None or process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout)
        self._executor.kill()  # the rest of its group and whatever it started
        self._executor = None

    def tail(self, size: int = 3000) -> str:
        """The end of the server's log."""
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


def run_squidguard(conf: Path, lines: bytes, *extra: str, timeout: float = 600,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run squidGuard 1.6 with conf over request lines (``-d``: messages on stderr)."""
    return subprocess.run([need("squidGuard"), "-c", str(conf), "-d", *extra], input=lines,
                          capture_output=True, timeout=timeout, check=False, cwd=cwd)
