"""The shipping loop: follow -> batch -> positional write -> acknowledge -> checkpoint.

One SSH link serves every configured file. Up to ``window`` writes are in
flight; a file's acknowledged offset advances only over the contiguous prefix
of writes the monitor answered OK. Any link failure drops the connection,
forgets unacknowledged writes and reconnects after a capped, jittered
exponential back-off; on every (re)connect the size of each open remote
segment is checked and sending resumes from the acknowledged offset (or from
the remote size when the monitor lost bytes). Errors that waiting cannot fix
(host key, authentication, configuration) end the run with exit status 78.

State changes of the link are logged once each, tagged with a stable kind
(``[fault=KIND]``, ``[link=restored]``: ``squidguard_bloom.shipper.faults``):
a fault is warned about when its kind differs from the previous one, never
once per attempt; every attempt is a debug line. A status line (bytes and
lines shipped, lag, link state) is logged every ``status_interval`` seconds
and on SIGUSR1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from squidguard_bloom.shipper.checkpoint import CheckpointFile, lock_state_dir
from squidguard_bloom.shipper.errors import CheckpointError, ShipError
from squidguard_bloom.shipper.faults import LINK_RESTORED, LINK_UP, Fault, fault_tag
from squidguard_bloom.shipper.follow import Chunk, Follower
from squidguard_bloom.shipper.transport import Link, LinkSettings

log = logging.getLogger("squidguard_bloom.shipper")

EXIT_OK = 0
EXIT_TEMPFAIL = 75  # --once could not finish: the monitor stayed unreachable
EXIT_IOERR = 74  # the checkpoint cannot be written
EXIT_CONFIG = 78  # only an operator can fix it: host key, key, configuration
VERIFY = 4096  # bytes read back from the monitor before resuming a segment


@dataclass
class ShipSettings:
    """Everything the loop needs besides the link."""

    link: LinkSettings
    files: dict[str, Path]
    state_dir: Path
    batch_size: int = 256 * 1024
    flush_interval: float = 0.2
    window: int = 8
    rotate_wait: float = 5.0
    checkpoint_interval: float = 1.0
    status_interval: float = 60.0
    remote_check_interval: float = 60.0
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    remote_fsync: bool = True
    once: bool = False
    once_attempts: int = 5


@dataclass
class _Stats:
    bytes: int = 0
    lines: int = 0


@dataclass
class _Stream:
    follower: Follower
    stats: _Stats = field(default_factory=_Stats)


class Shipper:
    """Runs the shipping loop until stopped (or, with ``once``, until caught up)."""

    def __init__(self, settings: ShipSettings) -> None:
        self.settings = settings
        self._lock = lock_state_dir(settings.state_dir)
        self.cpfile = CheckpointFile(settings.state_dir / "checkpoint.json")
        self.cp = self.cpfile.load()
        self.streams = [
            _Stream(
                Follower(
                    name,
                    path,
                    self.cp.stream(name, str(path)),
                    rotate_wait=settings.rotate_wait,
                    persist=self.save,
                )
            )
            for name, path in settings.files.items()
        ]
        self.link_state = "starting"
        self._fault: Fault | None = None
        self._down_since: float | None = None
        self._stop = asyncio.Event()
        self._last_save = 0.0
        self._unsynced = False  # acknowledged bytes not yet fsynced and checkpointed
        self._failures = 0  # consecutive connections that failed before any progress
        self._healthy = False  # this connection has made progress
        self._last_status = time.monotonic()
        self._last_remote_check = time.monotonic()

    # -- persistence and reporting -------------------------------------

    def save(self) -> None:
        """Persist the checkpoint now."""
        self.cpfile.save(self.cp)
        self._last_save = time.monotonic()

    def status_line(self) -> str:
        """One line: link state, then per file shipped lines/bytes, bytes behind and lag."""
        now = time.monotonic()
        state = f"link {self.link_state}"
        if self._fault is not None and self.link_state != "up":
            state += f" {fault_tag(self._fault)}"
        parts = [state]
        for st in self.streams:
            f = st.follower
            lag = 0.0 if f.behind_since is None else now - f.behind_since
            parts.append(
                f"{f.name}: {st.stats.lines} lines / {st.stats.bytes} bytes shipped, "
                f"{f.lag_bytes()} bytes behind, lag {lag:.1f} s"
            )
        return "status: " + "; ".join(parts)

    def log_status(self) -> None:
        """Log the status line."""
        self._last_status = time.monotonic()
        log.info("%s", self.status_line())

    def stop(self) -> None:
        """Ask the loop to finish its in-flight writes, save and return."""
        self._stop.set()

    # -- the loop ------------------------------------------------------

    async def run(self) -> int:
        """Ship until stopped; return the process exit status."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_link_errors)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGUSR1, self.log_status)
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
        try:
            return await self._run()
        except CheckpointError as exc:
            _give_up(exc)
            return EXIT_IOERR
        finally:
            for st in self.streams:
                st.follower.close()
            os.close(self._lock)

    async def _run(self) -> int:
        s = self.settings
        while not self._stop.is_set():
            link = Link(s.link)
            self._healthy = False
            try:
                try:
                    self.link_state = "connecting"
                    await link.connect()
                    self.link_state = "up"
                    if await self._session(link):
                        self.log_status()
                        return EXIT_OK
                finally:
                    await self._drop(link)
            except CheckpointError:
                raise
            except ShipError as exc:
                if not exc.retryable:
                    self.link_state = "failed"
                    _give_up(exc)
                    return EXIT_CONFIG
                # A connection that delivered nothing does not reset the back-off: a full
                # disk fails right after every successful connect.
                self._failures = 1 if self._healthy else self._failures + 1
                if s.once and self._failures >= s.once_attempts:
                    log.error(
                        "%s giving up after %d attempts (--once): %s",
                        fault_tag(exc.fault),
                        self._failures,
                        exc,
                    )
                    return EXIT_TEMPFAIL
                delay = self._backoff(self._failures)
                self.link_failed(exc, delay)
                await self._sleep(delay)
        self.log_status()
        return EXIT_OK

    async def _drop(self, link: Link) -> None:
        await link.close()
        for st in self.streams:
            st.follower.rewind()
        self.save()

    def _made_progress(self) -> None:
        """The link works end to end: a write was acknowledged, or everything is shipped."""
        if not self._healthy:
            self._healthy = True
            self._link_up(self._failures)
            self._failures = 0

    def _backoff(self, failures: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_min * 2 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)

    def _link_up(self, failures: int) -> None:
        self.link_state = "up"
        if self._fault is None and self._down_since is None:
            log.info("%s link to %s up", LINK_UP, self.settings.link.target)
        else:
            down = time.monotonic() - (self._down_since or time.monotonic())
            log.info(
                "%s link to %s restored after %.1f s and %d failed attempts",
                LINK_RESTORED,
                self.settings.link.target,
                down,
                failures,
            )
        self._fault = None
        self._down_since = None

    def link_failed(self, exc: ShipError, delay: float) -> None:
        """Record one failed attempt; warn only when its fault kind differs from the last one
        (not once per attempt, nor per request that happened to be in flight)."""
        self.link_state = "down"
        if self._down_since is None:
            self._down_since = time.monotonic()
        tag = fault_tag(exc.fault)
        log.debug("%s attempt %d failed: %s; next in %.1f s", tag, self._failures, exc, delay)
        if exc.fault != self._fault:
            self._fault = exc.fault
            log.warning(
                "%s %s; retrying with back-off (next in %.1f s, at most every %g s)",
                tag,
                exc,
                delay,
                self.settings.backoff_max,
            )

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)

    async def _resume(self, link: Link) -> None:
        """Reconcile each open segment with what the monitor actually holds.

        The remote size says whether bytes are missing there; the last
        ``VERIFY`` bytes before the acknowledged offset, read back and compared
        with the local ones, say whether what is there is still ours. A stream
        the checkpoint does not know yet first looks at the monitor's listing
        (a lost checkpoint: continue the segment there instead of starting a
        second copy).
        """
        for st in self.streams:
            f = st.follower
            if not f.state.segments:
                await self._adopt(link, f)
            seg = f.current()
            if seg is None:
                continue
            size = await link.size(seg.remote)
            if size is not None and 0 < seg.acked <= size:
                n = min(VERIFY, seg.acked)
                local = f.local_bytes(seg.acked - n, n)
                if local is not None and await link.read(seg.remote, seg.acked - n, n) != local:
                    f.resend_all(
                        f"the monitor's {seg.remote} differs from the local file in the "
                        f"{n} bytes before offset {seg.acked} (altered on the monitor?)"
                    )
                    continue
            f.rewind(size, check=True)
        self.save()

    async def _adopt(self, link: Link, f: Follower) -> None:
        found = f.adopt(await link.listdir(f.name))
        if found is None:
            return
        seg, windows = found
        for offset, local in windows:
            if await link.read(seg.remote, offset, len(local)) != local:
                log.warning(
                    "%s: no checkpoint for %s, and the monitor's %s does not hold its bytes; "
                    "shipping it as a new segment",
                    f.name,
                    f.path,
                    seg.remote,
                )
                return
        f.take_over(seg)

    async def _session(self, link: Link) -> bool:
        """Ship over one connection. True: finished (--once or stopped). Raises on failure."""
        s = self.settings
        await self._resume(link)
        inflight: deque[tuple[_Stream, Chunk, asyncio.Task[None] | None]] = deque()
        try:
            while True:
                for st in self.streams:
                    while len(inflight) < s.window and not self._stop.is_set():
                        chunk = st.follower.poll(s.batch_size)
                        if chunk is None:
                            break
                        task = None
                        if chunk.data:
                            task = asyncio.ensure_future(
                                link.write(chunk.segment.remote, chunk.offset, chunk.data)
                            )
                        inflight.append((st, chunk, task))
                if inflight:
                    st, chunk, task = inflight[0]
                    if task is not None:
                        await task
                    inflight.popleft()
                    if chunk.closes and s.remote_fsync and chunk.end > 0:
                        # A finished segment is never looked at again: make it durable
                        # on the monitor before the checkpoint says it is done.
                        await link.sync(chunk.segment.remote)
                    st.follower.acknowledge(chunk)
                    self._unsynced = True
                    self._made_progress()
                    st.stats.bytes += len(chunk.data)
                    st.stats.lines += chunk.data.count(b"\n")
                    if chunk.closes:
                        await link.release(chunk.segment.remote)
                    await self._periodic(link)
                    continue
                link.check()
                await self._check_remote(link)
                await self._periodic(link, idle=True)
                self._made_progress()
                # --once still lets a rotated file settle: a writer may not have reopened yet.
                settling = s.once and any(st.follower.rotation_pending() for st in self.streams)
                if (s.once and not settling) or self._stop.is_set():
                    return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), s.flush_interval)
        finally:
            for _, _, task in inflight:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for _, _, t in inflight if t), return_exceptions=True)

    async def _check_remote(self, link: Link) -> None:
        """Every ``remote_check_interval`` s (when idle), verify the monitor still holds what
        was acknowledged; a segment deleted or shortened there is re-sent from the local file."""
        now = time.monotonic()
        if now - self._last_remote_check < self.settings.remote_check_interval:
            return
        self._last_remote_check = now
        for st in self.streams:
            seg = st.follower.current()
            if seg is not None and seg.acked > 0:
                size = await link.size(seg.remote)
                if size is None or size < seg.acked:
                    await link.release(seg.remote)  # its handle may name a deleted file
                    st.follower.rewind(size, check=True)

    async def _periodic(self, link: Link, *, idle: bool = False) -> None:
        """Make acknowledged bytes durable: remote fsync, then the checkpoint.

        Done as soon as the loop has caught up (so at light load a line is on
        the monitor's disk one flush interval after it was written), and every
        ``checkpoint_interval`` seconds while it keeps shipping.
        """
        s = self.settings
        now = time.monotonic()
        if self._unsynced and (idle or now - self._last_save >= s.checkpoint_interval):
            if s.remote_fsync:
                await link.sync()
            self._unsynced = False
            self.save()
        if now - self._last_status >= s.status_interval:
            self.log_status()


def _give_up(exc: ShipError) -> None:
    log.error("%s giving up: %s", fault_tag(exc.fault), exc)


def _quiet_link_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Keep asyncssh's orphaned sub-requests of a dropped link out of the log.

    A large write is split by asyncssh into parallel requests; when the link
    drops, the ones still pending fail after the write itself was abandoned,
    and asyncio would print each as "Task exception was never retrieved" with
    a traceback. The failure was already reported in one line.
    """
    exc = context.get("exception")
    if isinstance(exc, OSError | asyncssh.Error | asyncio.CancelledError):
        log.debug("after the link dropped: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


async def ship(settings: ShipSettings) -> int:
    """Run a shipper with ``settings``; return the exit status."""
    try:
        shipper = Shipper(settings)
    except CheckpointError as exc:
        _give_up(exc)
        return EXIT_IOERR
    return await shipper.run()
