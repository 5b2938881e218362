"""Internal errors of the helper, told to Squid's cache.log without flooding it."""

from __future__ import annotations

import contextlib
import sys
import time

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO


class ErrorReport:
    """Internal errors (bugs) as Squid's cache.log sees them: few lines, never a flood.

    The first :attr:`FIRST` errors are each told in one line (with the
    traceback after it only in debug mode, ``-d``); later ones are counted
    and told as one summary line at most every :attr:`INTERVAL` seconds, and
    once more when the helper stops.  A hostile client that found a bug can
    then add at most one line a minute to cache.log.
    """

    FIRST = 5
    INTERVAL = 60.0

    def __init__(self, stream: IO[str] | None = None, *, traceback: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._traceback = traceback
        self._clock = clock
        self.count = 0  # every internal error so far
        self.pending = 0  # counted since the last line about them
        self._last = ""  # the latest pending one, for the summary
        self._since = 0.0

    def _say(self, text: str) -> None:
        stream = sys.stderr if self._stream is None else self._stream
        with contextlib.suppress(OSError, ValueError):  # stderr gone: the reply still goes out
            stream.write(f"squidguard-bloom: {text}\n")
            stream.flush()

    def report(self, exc: BaseException, line: bytes | None,
               outcome: str = "internal error, answered BH") -> None:
        """Count one error (on a request line); tell it if among the first, else maybe sum up."""
        self.count += 1
        what = f"{type(exc).__name__}: {str(exc)[:200]!r}"
        if line is not None:
            what += f" on request {bytes(line[:200])!r}"
        if self.count <= self.FIRST:
            more = "" if self._traceback else " (-d shows the traceback)"
            last = (f"; later ones are counted, one line every {self.INTERVAL:g} s"
                    if self.count == self.FIRST else "")
            self._say(f"{outcome}: {what}{more}{last}")
            if self._traceback:
                import traceback  # noqa: PLC0415 - only after a bug, not at every start

                text = "".join(traceback.format_exception(exc))
                stream = sys.stderr if self._stream is None else self._stream
                with contextlib.suppress(OSError, ValueError):
                    stream.write(text)
                    stream.flush()
            self._since = self._clock()
            return
        self.pending += 1
        self._last = what
        self.tick()

    def tick(self, *, final: bool = False) -> None:
        """Tell the pending count if a summary is due (or final: the helper stops)."""
        if not self.pending or not (final or self._clock() - self._since >= self.INTERVAL):
            return
        self._say(f"{self.pending} more internal error(s) ({self.count} since start); "
                  f"the latest: {self._last}")
        self.pending = 0
        self._since = self._clock()
