"""Run helper processes on files and measure wall time, peak RSS and peak PSS.

Peak RSS is the kernel's ``ru_maxrss`` of the helper.  A child forked from
this (large) Python process would inherit this process's high-water mark,
so each command runs under GNU ``time -f %M``, a small program that forks
the helper and reports its own child's peak; without /usr/bin/time the
peak falls back to ``VmHWM`` sampled from /proc.  PSS is sampled from
``/proc/PID/smaps_rollup`` while the processes run, because memory shared
between helpers (mmapped compiled lists, the shared filter) is charged to
each of them in full by RSS but split between them by PSS.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcResult:
    """One process: exit status and its peak resident set (kB)."""

    returncode: int
    max_rss_kb: int


@dataclass(frozen=True)
class GroupResult:
    """Processes started together: the wall time until the last one exited."""

    wall: float
    procs: list[ProcResult]
    peak_pss_kb: int | None  # of all of them together, sampled
    peak_rss_sum_kb: int  # sum of each one's own peak

    @property
    def ok(self) -> bool:
        """Every process exited with status 0."""
        return all(p.returncode == 0 for p in self.procs)


GNU_TIME = "/usr/bin/time"


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _vm_hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _smaps_rollup(pid: int) -> tuple[int, int] | None:
    """(Rss kB, Pss kB) of a live process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            rss = pss = 0
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
            return rss, pss
    except (OSError, ValueError, IndexError):
        return None


class _Sampler(threading.Thread):
    """Polls the summed PSS of some pids until stopped; keeps the maximum."""

    def __init__(self, pids: Sequence[int], interval: float, wrapped: bool) -> None:
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.wrapped = wrapped
        self.interval = interval
        self.peak: int | None = None
        self.hwm: dict[int, int] = {}  # per started pid: the helper's VmHWM seen last
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        total, seen = 0, False
        for pid in self.pids:
            targets = _children(pid) if self.wrapped else [pid]
            for target in targets:
                got = _smaps_rollup(target)
                if got is not None:
                    seen = True
                    total += got[1]
                hwm = _vm_hwm(target)
                if hwm is not None:
                    self.hwm[pid] = max(hwm, self.hwm.get(pid, 0))
        if seen and (self.peak is None or total > self.peak):
            self.peak = total

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class _Launch:
    """Processes and files of one run_group call, so they can all be released together."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.helpers: list[subprocess.Popen[bytes]] = []  # cat feeders and collectors
        self.handles: list[Any] = []

    def start(
        self,
        cmd: Sequence[str],
        src: Path | None,
        dst: Path | None,
        err: Path,
        pipes: bool,
        env: dict[str, str] | None,
    ) -> None:
        """Start cmd with src on stdin and stdout into dst, through cat pipes if asked."""
        ferr = open(err, "wb")  # noqa: SIM115 - closed in release()
        self.handles.append(ferr)
        feeder = None
        fin: Any
        if pipes and src is not None:
            feeder = subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE)
            self.helpers.append(feeder)
            fin = feeder.stdout
        else:
            fin = open(src if src is not None else os.devnull, "rb")  # noqa: SIM115
            self.handles.append(fin)
        fout = open(dst if dst is not None else os.devnull, "wb")  # noqa: SIM115
        self.handles.append(fout)
        out: Any = subprocess.PIPE if pipes and dst is not None else fout
        proc = subprocess.Popen(list(cmd), stdin=fin, stdout=out, stderr=ferr, env=env)
        if proc.stdout is not None:
            self.helpers.append(subprocess.Popen(["cat"], stdin=proc.stdout, stdout=fout))
            proc.stdout.close()  # the collector holds the read end now
        if feeder is not None and feeder.stdout is not None:
            feeder.stdout.close()
        self.procs.append(proc)

    def kill(self) -> None:
        """Kill every process still running (by its own pid)."""
        for p in self.procs + self.helpers:
            if p.returncode is None:
                p.kill()

    def release(self) -> None:
        """Kill and reap what is left; close the files."""
        for p in self.procs + self.helpers:
            if p.returncode is None:
                p.kill()
                p.wait()
        for h in self.handles:
            h.close()


def run_group(
    commands: Sequence[Sequence[str]],
    stdins: Sequence[Path | None],
    stdouts: Sequence[Path | None],
    *,
    stderr_dir: Path,
    timeout: float,
    sample_interval: float = 0.02,
    env: dict[str, str] | None = None,
    measure_rss: bool = True,
    pipes: bool = False,
) -> GroupResult:
    """Start every command at once (stdin/stdout from/to the files, None = /dev/null).

    Waits for all; kills the whole group (by pid) on timeout and raises
    TimeoutError naming the command.  stderr of process i goes to
    ``stderr_dir/stderr.<i>``.  With measure_rss false, nothing is put in
    front of the commands (the purest wall time) and RSS is what VmHWM
    sampling caught.  With pipes, each helper reads its file through a
    pipe from ``cat`` and writes its answers into a pipe read by another
    ``cat``, as it would talk to Squid; the wall time ends when the last
    answer is out.
    """
    stderr_dir.mkdir(parents=True, exist_ok=True)
    wrapped = measure_rss and os.access(GNU_TIME, os.X_OK)
    rss_files = [stderr_dir / f"maxrss.{i}" for i in range(len(commands))]
    if wrapped:
        commands = [
            [GNU_TIME, "-f", "%M", "-o", str(f), *cmd]
            for f, cmd in zip(rss_files, commands, strict=True)
        ]
    launch = _Launch()
    start = time.perf_counter()
    try:
        for i, (cmd, src, dst) in enumerate(zip(commands, stdins, stdouts, strict=True)):
            launch.start(cmd, src, dst, stderr_dir / f"stderr.{i}", pipes, env)
        sampler = _Sampler([p.pid for p in launch.procs], sample_interval, wrapped)
        sampler.start()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            launch.kill()

        watchdog = threading.Timer(timeout, on_timeout)
        watchdog.start()
        codes: list[int] = []
        for p in launch.procs:  # blocking waits in turn: the last return is the last exit
            _, status = os.waitpid(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            codes.append(p.returncode)
        for h in launch.helpers:  # every answer delivered through its pipe
            h.wait()
        wall = time.perf_counter() - start
        watchdog.cancel()
        sampler.stop()
        if timed_out.is_set():
            msg = f"{' '.join(commands[0])} still running after {timeout:g} s; killed"
            raise TimeoutError(msg)
    finally:
        launch.release()
    peaks = []
    for i, (p, code) in enumerate(zip(launch.procs, codes, strict=True)):
        kb = _read_kb(rss_files[i]) if wrapped else None
        peaks.append(ProcResult(code, kb if kb is not None else sampler.hwm.get(p.pid, 0)))
    return GroupResult(wall, peaks, sampler.peak, sum(r.max_rss_kb for r in peaks))


def _read_kb(path: Path) -> int | None:
    """The last number GNU time wrote (it may add a status line before it)."""
    try:
        words = path.read_text(encoding="ascii", errors="replace").split()
        return int(words[-1])
    except (OSError, ValueError, IndexError):
        return None
