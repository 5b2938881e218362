"""A tiny progress bar for stderr (stdout carries the results)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws one stderr line: label, bar, done/total, elapsed seconds.

    Silent when ``enabled`` is false or the stream is not a terminal and
    ``force`` is not set, so piped runs and tests stay clean.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        force: bool = False,
        width: int = 30,
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = enabled and (force or isatty())
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def render(self) -> str:
        """The bar as text, e.g. ``fpr [#######-------]  3/12  4.1s``."""
        frac = min(self.done / self.total, 1.0)
        filled = round(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self._start
        return f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s"

    def advance(self, steps: int = 1, label: str | None = None) -> None:
        """Count steps as done and redraw (at most every 0.1 s, and at the end)."""
        self.done += steps
        if label is not None:
            self.label = label
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or self.done >= self.total:
            self._last = now
            self.stream.write("\r\x1b[K" + self.render())
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
