"""The live channel: one poller reads new rows and tiles, every open dashboard gets them by SSE.

The poller runs only while at least one browser listens. Every ``interval``
seconds it reads the rows stored since the last look (primary-key ranges, see
queries.rows_after) and hands each listener the rows its filters keep; every
``tiles_every`` seconds it reads the tiles once for all listeners. A listener
that does not keep up loses rows (its queue is bounded) and is told so, rather
than growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from squidguard_bloom.monitor.web import queries

log = logging.getLogger("squidguard_bloom.monitor")

QUEUE_EVENTS = 64
TAIL_ROWS = 1000  # rows at most in one event (the page keeps 500)


@dataclass(frozen=True)
class TailFilter:
    """What a live tail keeps: exact matches, except domain (a part of the host)."""

    proxy: str = ""
    kind: str = ""  # "", "access" or "decision"
    client: str = ""
    domain: str = ""
    category: str = ""
    action: str = ""
    result: str = ""

    def keeps(self, row: dict[str, Any]) -> bool:
        """Whether row passes every filter that is set."""
        return not (
            (self.proxy and row["proxy"] != self.proxy)
            or (self.kind and row["kind"] != self.kind)
            or (self.client and row["client"] != self.client)
            or (self.domain and self.domain.lower() not in row["host"])
            or (self.category and row.get("category") != self.category)
            or (self.action and row.get("action") != self.action)
            or (self.result and row.get("result") != self.result))


class Listener:
    """One open dashboard's SSE stream."""

    def __init__(self, tail: TailFilter | None) -> None:
        self.tail = tail
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_EVENTS)
        self.dropped = 0

    def send(self, event: str, data: Any) -> None:
        """Queue one SSE event (dropped if this listener is too far behind)."""
        try:
            self.queue.put_nowait(format_event(event, data))
        except asyncio.QueueFull:
            self.dropped += 1


def format_event(event: str, data: Any) -> str:
    """One SSE event; JSON on one line (json.dumps escapes newlines inside strings)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Hub:
    """The poller and its listeners."""

    def __init__(self, run_db: Callable[..., Awaitable[Any]], *, interval: float = 0.25,
                 tiles_every: float = 2.0) -> None:
        self.run_db = run_db
        self.interval = interval
        self.tiles_every = tiles_every
        self.listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.last_tiles: list[dict[str, Any]] | None = None

    def add(self, listener: Listener) -> None:
        """Start sending to listener (and start the poller if it was idle)."""
        self.listeners.add(listener)  # (its page fetched fresh tiles; the next come here)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, listener: Listener) -> None:
        """Stop sending to listener."""
        self.listeners.discard(listener)

    async def close(self) -> None:
        """Stop the poller."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        access_id, decision_id = await self.run_db(queries.newest_ids)
        next_tiles = 0.0
        while True:
            if not self.listeners:
                self._wake.clear()
                await self._wake.wait()
                # rows stored while nobody listened are not a tail any more
                access_id, decision_id = await self.run_db(queries.newest_ids)
            started = time.monotonic()
            try:
                rows, access_id, decision_id = await self.run_db(
                    queries.rows_after, access_id, decision_id)
                if rows:
                    self._fan_out(rows)
                if started >= next_tiles:
                    next_tiles = started + self.tiles_every
                    self.last_tiles = await self.run_db(queries.tiles)
                    for listener in list(self.listeners):
                        listener.send("tiles", self.last_tiles)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the live channel
                log.exception("live update failed; retrying")
                await asyncio.sleep(2.0)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _fan_out(self, rows: list[dict[str, Any]]) -> None:
        now = time.time()
        for listener in list(self.listeners):
            if listener.tail is None:
                listener.send("tick", {"now": now, "rows": len(rows)})
                continue
            kept = [r for r in rows if listener.tail.keeps(r)]
            if kept:
                listener.send("rows", {"now": now, "rows": kept[-TAIL_ROWS:],
                                       "skipped": max(0, len(kept) - TAIL_ROWS)})
