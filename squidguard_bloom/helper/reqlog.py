"""squidGuard-format log files: buffered writes, reopened after logrotate.

Every line starts ``YYYY-MM-DD HH:MM:SS [PID] `` in local time, as
squidGuard's do; request lines then read
``Request(SRC/TARGET/REWRITE) URL CLIENT/FQDN IDENT METHOD ACTION``
(:mod:`squidguard_bloom.core.logline`, the contract with the log shipper
and the monitor).

Writes go to a user-space buffer and reach the file when the helper has
answered everything it had read (:meth:`LogSink.flush`), so logging costs
no system call per request.  A file renamed or deleted by logrotate is
noticed within a second (or at once on SIGHUP) and reopened by name.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from typing import IO

_CHECK_INTERVAL = 1.0  # seconds between "was my file rotated?" checks


class _File:
    __slots__ = ("buf", "fh", "ident", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.buf: list[str] = []
        self.fh: IO[str] | None = None
        self.ident: tuple[int, int] | None = None


class LogSink:
    """Appends timestamped lines to files by path (or all to one stream)."""

    def __init__(self, stream: IO[str] | None = None, *, clock_offset: float = 0.0) -> None:
        """With ``stream`` (``-d`` mode) every line goes there instead of files."""
        self._stream = stream
        self._files: dict[str, _File] = {}
        self._offset = clock_offset
        self._pid = os.getpid()
        self._stamp_second = -1
        self._stamp = ""
        self._last_check = 0.0
        self.errors: list[str] = []  # open/write failures, reported once each

    def _prefix(self) -> str:
        now = time.time() + self._offset
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            clock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._stamp = f"{clock} [{self._pid}] "
        return self._stamp

    def write(self, path: str, text: str) -> None:
        """Queue one line for path (created on first use)."""
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = _File(path)
        f.buf.append(self._prefix() + text + "\n")

    def flush(self) -> None:
        """Write queued lines; reopen files that logrotate moved away."""
        now = time.monotonic()
        check = now - self._last_check >= _CHECK_INTERVAL
        if check:
            self._last_check = now
        for f in self._files.values():
            if not f.buf:
                continue
            data = "".join(f.buf)
            f.buf.clear()
            if self._stream is not None:
                self._stream.write(data)
                continue
            if check or f.fh is None:
                self._ensure_open(f)
            if f.fh is None:
                continue
            try:
                f.fh.write(data)
                f.fh.flush()
            except OSError as exc:
                self._report(f"cannot write log file {f.path}: {exc.strerror}")
        if self._stream is not None:
            self._stream.flush()

    def _ensure_open(self, f: _File) -> None:
        try:
            st = os.stat(f.path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        if f.fh is not None and ident == f.ident:
            return
        if f.fh is not None:
            f.fh.close()
            f.fh = None
        try:
            f.fh = open(f.path, "a", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            st = os.fstat(f.fh.fileno())
            f.ident = (st.st_dev, st.st_ino)
        except OSError as exc:
            self._report(f"cannot open log file {f.path}: {exc.strerror}; its lines are dropped")

    def _report(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            print(f"squidguard-bloom: {message}", file=sys.stderr, flush=True)

    def reopen(self) -> None:
        """Close every file so the next flush opens them by name (SIGHUP)."""
        self.flush()
        for f in self._files.values():
            if f.fh is not None:
                f.fh.close()
                f.fh = None

    def close(self) -> None:
        """Flush and close everything."""
        self.reopen()
