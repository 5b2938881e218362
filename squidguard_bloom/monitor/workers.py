"""Worker processes that parse and store the batches one ingest process reads.

Ingest's own work per line (reading, finding line ends) is small next to
parsing, summing and writing it; one Python process uses one core. With
``--workers N`` the ingest process (the coordinator) keeps discovery, reading
and the checkpoints' bookkeeping, and hands each batch, its raw lines
included, to one of N worker processes. A worker parses it and stores it in
its own transaction with the checkpoints, exactly as a single process does
(monitor/batch.py).

Batches are committed in the order they were read: a worker waits for the
batch before its own to be settled (the *turn*) before it begins its
transaction, so checkpoints advance in order and row ids rise with them.
Parsing, the bulk of the work, overlaps with the writing of the batch before.

Workers die with the coordinator (Linux's parent-death signal, which follows
the thread that started them: start the pool from a thread that lives as long
as it, as the command's main thread does), so a kill -9 of ingest leaves no
writer behind; they ignore SIGINT and SIGTERM, which the
coordinator answers by finishing the batches it handed out and closing them.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import queue
import signal
from datetime import tzinfo
from multiprocessing.process import BaseProcess
from typing import Any

from squidguard_bloom.monitor.batch import (
    FAILED,
    MOVED,
    OK,
    Batch,
    BatchStore,
    CheckpointMoved,
    Outcome,
)
from squidguard_bloom.monitor.errors import MonitorError
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import Clock

_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # the coordinator's to answer, not a worker's


class WorkerPool:
    """size worker processes storing batches for one coordinator, in the order handed out."""

    def __init__(self, url: str, tz: tzinfo | None, size: int, *, crash_at: int = 0) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
        self.size = size
        self._tasks: Any = ctx.Queue()
        self._results: Any = ctx.Queue()
        self._turn: Any = ctx.Condition()
        self._settled: Any = ctx.Value("q", 0, lock=False)  # number of the last settled batch
        self._next = 0
        self.in_flight = 0
        self._procs: list[BaseProcess] = [
            ctx.Process(target=_serve, name=f"ingest-worker-{i + 1}", daemon=True,
                        args=(url, tz, crash_at, os.getpid(), self._tasks, self._results,
                              self._turn, self._settled))
            for i in range(size)]
        # A terminal's Ctrl-C and systemd's stop reach the workers too: they start with
        # SIGINT and SIGTERM blocked until _serve ignores them, else one arriving while a
        # worker starts up kills it (and ingest exits 1 saying a worker died)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for proc in self._procs:
                proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def submit(self, batch: Batch) -> int:
        """Hand batch to the next free worker; its number (outcomes name it)."""
        self._next += 1
        self._tasks.put((self._next, batch))
        self.in_flight += 1
        return self._next

    def collect(self, keep: int) -> list[Outcome]:
        """The outcomes reported so far, waiting until at most keep batches are in flight."""
        out: list[Outcome] = []
        self._check_alive()  # also an idle one: ingest would go on with fewer workers
        while self._procs:
            try:
                outcome = self._results.get(block=self.in_flight > keep, timeout=1.0)
            except queue.Empty:
                if self.in_flight <= keep:
                    return out
                self._check_alive()
                continue
            out.append(outcome)
            self.in_flight -= 1
        return out  # closed: nothing more will be reported

    def _check_alive(self) -> None:
        for proc in self._procs:
            if not proc.is_alive():
                self.close(wait=False)  # the others may wait for its turn forever
                self.in_flight = 0
                raise MonitorError(f"ingest's {proc.name} died (exit status {proc.exitcode});"
                                   " what it did not commit is read again when ingest starts "
                                   "again")

    @property
    def closed(self) -> bool:
        """Whether the workers are stopped (closed, or one of them died)."""
        return not self._procs

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers: after the batches handed out, or (wait=False) at once."""
        if not self._procs:
            return
        for proc in self._procs:
            if proc.is_alive():
                self._tasks.put(None)
        for proc in self._procs:
            proc.join(timeout=30 if wait else 0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._procs = []
        # What no worker took (a worker died) stays unread: at exit, the queue's feeder
        # thread must not wait to write it into a full pipe (ingest would hang, not exit).
        self._tasks.cancel_join_thread()
        self._tasks.close()
        self._results.close()


def _serve(url: str, tz: tzinfo | None, crash_at: int, parent: int, tasks: Any, results: Any,
           turn: Any, settled: Any) -> None:
    """A worker's life: store each batch handed to it, in its turn."""
    _die_with(parent)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by WorkerPool
    gc.set_threshold(100000, 50, 100)  # as in Ingest.run: a tuple per line, no cycles
    db = open_database(url, migrate=False)
    db.defer_checkpoints()  # the coordinator does them, while the next batch is written
    store = BatchStore(db, Clock(tz), crash_at=crash_at, kill_parent=True)
    try:
        for number, batch in iter(tasks.get, None):
            results.put(_store(store, number, batch, turn, settled))
    finally:
        db.close()


def _store(store: BatchStore, number: int, batch: Batch, turn: Any, settled: Any) -> Outcome:
    waited = []

    def wait_turn() -> None:
        _wait_turn(turn, settled, number)
        waited.append(True)

    try:
        lines, unparsed = store.store(batch, number, wait_turn)
        return number, OK, lines, unparsed, ""
    except CheckpointMoved as exc:
        return number, MOVED, 0, 0, str(exc)
    except Exception as exc:  # reported to the coordinator, which raises it
        return number, FAILED, 0, 0, f"{type(exc).__name__}: {exc}"
    finally:
        if not waited:  # the batches after this one wait for it, even when it failed
            _wait_turn(turn, settled, number)
        with turn:
            settled.value = number
            turn.notify_all()


def _wait_turn(turn: Any, settled: Any, number: int) -> None:
    with turn:
        while settled.value < number - 1:
            turn.wait(1.0)


def _die_with(parent: int) -> None:
    """Be killed when the coordinator dies, even by SIGKILL (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
