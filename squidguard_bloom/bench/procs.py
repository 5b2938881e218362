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
) -> GroupResult:
    """Start every command at once (stdin/stdout from/to the files, None = /dev/null).

    Waits for all; kills the whole group (by pid) on timeout and raises
    TimeoutError naming the command.  stderr of process i goes to
    ``stderr_dir/stderr.<i>``.  With measure_rss false, nothing is put in
    front of the commands (the purest wall time) and RSS is what VmHWM
    sampling caught.
    """
    stderr_dir.mkdir(parents=True, exist_ok=True)
    wrapped = measure_rss and os.access(GNU_TIME, os.X_OK)
    rss_files = [stderr_dir / f"maxrss.{i}" for i in range(len(commands))]
    if wrapped:
        commands = [
            [GNU_TIME, "-f", "%M", "-o", str(f), *cmd]
            for f, cmd in zip(rss_files, commands, strict=True)
        ]
    handles = []
    procs: list[subprocess.Popen[bytes]] = []
    start = time.perf_counter()
    try:
        for i, (cmd, src, dst) in enumerate(zip(commands, stdins, stdouts, strict=True)):
            fin = open(src, "rb") if src is not None else open(os.devnull, "rb")  # noqa: SIM115
            fout = open(dst, "wb") if dst is not None else open(os.devnull, "wb")  # noqa: SIM115
            ferr = open(stderr_dir / f"stderr.{i}", "wb")  # noqa: SIM115
            handles += [fin, fout, ferr]
            procs.append(subprocess.Popen(list(cmd), stdin=fin, stdout=fout, stderr=ferr, env=env))
        sampler = _Sampler([p.pid for p in procs], sample_interval, wrapped)
        sampler.start()
        timed_out = threading.Event()

        def kill_all() -> None:
            timed_out.set()
            for p in procs:
                if p.returncode is None:
                    p.kill()

        watchdog = threading.Timer(timeout, kill_all)
        watchdog.start()
        ordered: list[ProcResult] = []
        for p in procs:  # blocking waits in turn: the last return is the last exit
            _, status = os.waitpid(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            ordered.append(ProcResult(p.returncode, 0))
        wall = time.perf_counter() - start
        watchdog.cancel()
        sampler.stop()
        if timed_out.is_set():
            msg = f"{' '.join(commands[0])} still running after {timeout:g} s; killed"
            raise TimeoutError(msg)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                p.wait()
        for h in handles:
            h.close()
    peaks = []
    for i, (p, r) in enumerate(zip(procs, ordered, strict=True)):
        kb = _read_kb(rss_files[i]) if wrapped else None
        peaks.append(ProcResult(r.returncode, kb if kb is not None else sampler.hwm.get(p.pid, 0)))
    return GroupResult(wall, peaks, sampler.peak, sum(r.max_rss_kb for r in peaks))


def _read_kb(path: Path) -> int | None:
    """The last number GNU time wrote (it may add a status line before it)."""
    try:
        words = path.read_text(encoding="ascii", errors="replace").split()
        return int(words[-1])
    except (OSError, ValueError, IndexError):
        return None
