"""The alerting service: evaluate the rules, step the engine, save, hand messages to channels.

:meth:`AlertService.tick` is cheap when nothing is due, so ``ingest`` calls it
after every pass (ingest then evaluates in its own thread, a few queries every
``evaluation_interval``); ``squidguard-bloom-monitor alerts run`` calls it in a
loop of its own. Probes and deliveries run in their own threads. The clock is
injected (``clock``) so tests and the benchmark can run a timeline fast.

The engine's state and every message decided are saved in one transaction per
evaluation, before any channel sees the message: a restarted monitor resumes
the same alerts and groups (no repeat before its time) and re-queues messages
that were decided but not yet delivered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from squidguard_bloom.monitor.alerts import store
from squidguard_bloom.monitor.alerts.channels import SENDERS, Dispatcher, Message, Sender
from squidguard_bloom.monitor.alerts.engine import Engine, Outgoing
from squidguard_bloom.monitor.alerts.messages import Clock, payload, render
from squidguard_bloom.monitor.alerts.probes import Prober
from squidguard_bloom.monitor.alerts.rules import RULES, Context, Finding
from squidguard_bloom.monitor.alerts.settings import AlertSettings
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorConfigError

log = logging.getLogger("squidguard_bloom.monitor.alerts")
SAVE_EVERY = 60.0  # seconds between saves when nothing changed (last_true moves on)
MIN_GAP = 1.0  # seconds between two evaluations brought forward by new data


def zone(name: str | None) -> tzinfo:
    """The zone messages show times in (default UTC)."""
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MonitorConfigError(f"tz '{name}' is not a known time zone") from exc


class AlertService:
    """Rules + engine + store + channels for one database."""

    def __init__(self, db: Database, settings: AlertSettings, *,
                 clock: Callable[[], float] = time.time, background: bool = True,
                 senders: list[Sender] | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        now = clock()
        self.watching_since = now
        self.engine = Engine(settings)
        store.load(db, self.engine, now)
        self.times = Clock(zone(settings.tz))
        self.prober = Prober(settings.probes, settings.probe_timeout, settings.probe_interval,
                             clock=clock)
        if senders is None:
            senders = [SENDERS[c.kind](c) for c in settings.channels]
        self.dispatcher = Dispatcher(senders, settings.queue_size, settings.max_attempts,
                                     settings.max_age)
        self.next_eval = now
        self._due: dict[str, float] = {}
        self._cached: dict[str, dict[str, Finding]] = {}
        self._last_save = float("-inf")
        self.evaluations = 0
        self._rounds_seen = 0
        self._news = False
        self._last_eval = float("-inf")
        if background:
            self.prober.start()
        self._requeue(now)

    def _requeue(self, now: float) -> None:
        """Messages decided by an earlier run and never delivered go out now."""
        for nid, channel, title, body, data in store.queued(self.db, now - self.settings.max_age):
            if channel in self.dispatcher.channels:
                self.dispatcher.submit(channel, Message(nid, title, body, json.loads(data),
                                                        time.time()))

    def tick(self, fresh: bool = False) -> list[Outgoing]:
        """Evaluate if evaluation_interval has passed, or a pending alert or a group is due
        (Engine.next_due), or, at most once a second, when something new came in: a probe
        round completed, or (fresh) ingest stored lines; the messages decided (often none)."""
        now = self.clock()
        self.collect()
        rounds = self.prober.rounds
        # news waits for its evaluation even when it came less than MIN_GAP after the last
        self._news = self._news or fresh or rounds != self._rounds_seen
        due = now >= self.next_eval or now >= self.engine.next_due()
        if not due and not (self._news and now >= self._last_eval + MIN_GAP):
            return []
        self._rounds_seen = rounds
        self._news = False
        self._last_eval = now
        self.next_eval = now + self.settings.evaluation_interval
        return self.evaluate(now)

    def findings(self, now: float) -> dict[str, dict[str, Finding]]:
        """Run the rules that are due; the slow ones (interval) keep their last findings."""
        ctx = Context(self.db, now, self.prober.latest(), self.watching_since,
                      frozenset((a.rule, a.proxy) for a in self.engine.alerts.values()))
        out: dict[str, dict[str, Finding]] = {}
        for name, rule in self.settings.rules.items():
            if not rule.enabled:
                continue
            if rule.interval and now < self._due.get(name, float("-inf")):
                out[name] = self._cached.get(name, {})
                continue
            found = RULES[name](ctx, rule)
            if rule.interval:
                self._due[name] = now + rule.interval
                self._cached[name] = found
            out[name] = found
        return out

    def evaluate(self, now: float) -> list[Outgoing]:
        """One evaluation at now: rules, engine, save, queue messages."""
        self.evaluations += 1
        store.load_silences(self.db, self.engine, now)  # the CLI may have added some
        changes, out = self.engine.step(now, self.findings(now))
        queued: list[tuple[str, Message]] = []
        if changes or out or now - self._last_save >= SAVE_EVERY:
            with self.db.transaction():
                store.save(self.db, self.engine, changes)
                for msg in out:
                    title, body = render(msg, self.times)
                    data = payload(msg, title, body)
                    log.warning("alert %s: %s", msg.kind, title)
                    channels = self.dispatcher.channels or ["log"]
                    for channel in channels:
                        nid = store.add_notification(
                            self.db, now, msg.group, msg.kind, channel, title, body, data,
                            "queued" if channel != "log" else "sent")
                        if channel != "log":
                            queued.append((channel, Message(nid, title, body, data,
                                                            time.time())))
            self._last_save = now
        for channel, m in queued:
            self.dispatcher.submit(channel, m)
        return out

    def collect(self) -> int:
        """Write the channels' results to the database; how many."""
        results = self.dispatcher.drain()
        if results:
            with self.db.transaction():
                for r in results:
                    if r.status != "queued":
                        store.finish_notification(self.db, r.id, r.status, r.attempts,
                                                  r.delivered, r.error)
        return len(results)

    def wait_delivered(self, timeout: float = 30.0) -> None:
        """Block until every queued message was tried to the end (tests, --once)."""
        deadline = time.monotonic() + timeout
        while not self.dispatcher.idle():
            if time.monotonic() > deadline:
                raise TimeoutError("messages still being delivered")
            time.sleep(0.01)
        self.collect()

    def close(self) -> None:
        """Stop probes and deliveries; record what came back."""
        self.prober.stop()
        self.dispatcher.stop()
        self.collect()
