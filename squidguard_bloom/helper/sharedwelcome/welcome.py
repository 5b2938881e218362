"""SharedWelcome: first visits decided on Redis, with the local filter as a cache in front.

Per batch (:meth:`SharedWelcome.first_visits`):

1. keys the local filter knows (current or previous generation) are not new,
   and cost nothing more; a key repeated in the batch is asked about once;
2. the others go to Redis in one pipeline (one per cluster node), a command
   per key: BITFIELD SET of its k bits, whose old values say atomically
   whether any proxy had set them all before (with a window: a script that
   first reads the previous generation with BITFIELD_RO, the same semantics
   as the local ``window``);
3. what Redis confirmed (new, or known now, or known from the previous
   generation) is copied into the local filter, so the next request of the
   client is answered locally.

When Redis is unreachable or misses the deadline nothing is copied into the
local filter.  ``shared-fallback seen`` answers "not new" (no welcome);
``local`` lets an outage filter of this proxy (``STATE.outage``) decide, and
replays the keys it welcomed into Redis once it is back, so that the other
proxies do not welcome them again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from squidguard_bloom.errors import BloomError
from squidguard_bloom.helper.sharedwelcome.layout import Layout
from squidguard_bloom.helper.sharedwelcome.link import CONNECTING, DOWN, MISCONFIGURED, UP, Link
from squidguard_bloom.helper.sharedwelcome.settings import SharedSettings
from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings
from squidguard_bloom.native.bloom import BloomFilter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Keys an outage filter welcomed that wait to be written to Redis (per process).
JOURNAL_LIMIT = 100_000
_NEW, _KNOWN, _PREVIOUS = 1, 0, -1


class SharedWelcome(Welcome):
    """A Welcome whose state lives on Redis; its own filter files are the cache (see the
    module docstring)."""

    decides = False  # the fast path only checks the cache; misses come to first_visits

    def __init__(self, settings: WelcomeSettings, shared: SharedSettings,
                 say: Callable[[str], None], *, wait: float | None = None) -> None:
        probe = BloomFilter(settings.capacity, settings.error)
        info = probe.info()
        if shared.shards > 1 and shared.shards > info.bits // 2:
            probe.close()
            msg = (f"{shared.about('shared')}: shared-shards {shared.shards} splits a filter "
                   f"of {info.bits} bits too finely; use at most {info.bits // 2}, or fewer")
            raise BloomError(msg)
        super().__init__(settings)
        self.shared = shared
        self._probe = probe  # private memory: only computes bit positions
        self.bits = info.bits
        self.hashes = info.hashes
        shard_bits = info.bits if shared.shards == 1 else -(-info.bits // shared.shards)
        self.layout = Layout(shared.prefix, shared.shards, shard_bits, info.hashes, info.seed,
                             settings.window)
        self.outage: Welcome | None = None
        if shared.fallback == "local":
            self.outage = Welcome(WelcomeSettings(
                redirect=settings.redirect, key=settings.key, capacity=settings.capacity,
                error=settings.error, state=settings.state + ".outage", window=settings.window,
                status=settings.status, exempt_hosts=settings.exempt_hosts))
        self._journal: list[bytes] = []
        #: Keys Redis found new only after the deadline (answered "seen" then): welcomed
        #: at their next request that reaches Python (one per key; this process only).
        self._owed: set[bytes] = set()
        self._journal_lock = threading.Lock()
        self.dropped = 0  # journal entries lost to JOURNAL_LIMIT
        self.asked = 0  # keys sent to Redis
        self.faults = 0  # keys answered by the fallback
        self._say = say
        self.link = Link(shared, self.layout, say)
        self.link.on_up = self._replay
        # A helper waits for Redis no longer than a batch would; see settle() for longer.
        self.link.start(shared.deadline if wait is None else wait)

    # -- the Welcome interface ----------------------------------------------------------

    def first_visit_key(self, key: bytes, now: float) -> bool:
        """One filter key: True if Redis says it is new."""
        return self.first_visits([key], now)[0]

    def first_visits(self, keys: list[bytes], now: float) -> list[bool]:
        """Whether each key is new, in order; the unknown ones asked in one pipeline."""
        current, previous = self.filters(now)
        result = [False] * len(keys)
        todo: dict[bytes, int] = {}
        owed = self._owed
        for i, key in enumerate(keys):
            if key in todo or key in current or (previous is not None and key in previous):
                continue
            if owed and key in owed:  # Redis said "new" after the deadline: welcome now
                owed.discard(key)
                current.add(key)
                result[i] = True
                continue
            todo[key] = i
        if not todo:
            return result
        asking = list(todo)
        outage_welcomed: set[bytes] = set()
        decided = threading.Event()

        def late(answers: list[int | None]) -> None:
            """Redis's answers came after the deadline: the new ones are owed a welcome
            (unless the outage filter gave it meanwhile)."""
            decided.wait(5)
            new = 0
            for key, answer in zip(asking, answers, strict=True):
                if answer == _NEW and key not in outage_welcomed and len(owed) < JOURNAL_LIMIT:
                    owed.add(key)
                    new += 1
            self._say(f"welcome shared: Redis answered a batch after the deadline: {new} of "
                      f"{len(asking)} client(s) asked about were new; each is welcomed at its "
                      f"next request")

        answers = self._ask(asking, now, late=late)
        if answers is None:
            answers = [None] * len(asking)
        unanswered = [key for key, answer in zip(asking, answers, strict=True) if answer is None]
        if unanswered:  # Redis (or the master of their shard) could not say in time
            self.faults += len(unanswered)
            if self.outage is not None:
                fresh = self.outage.first_visits(unanswered, now)
                for key, new in zip(unanswered, fresh, strict=True):
                    if new:
                        result[todo[key]] = True
                        outage_welcomed.add(key)
                        self._remember(key)
        decided.set()
        for key, answer in zip(asking, answers, strict=True):
            if answer is None:
                continue
            if answer == _PREVIOUS:
                assert previous is not None
                previous.add(key)
            else:
                current.add(key)
                if answer == _NEW:
                    result[todo[key]] = True
        return result

    def _ask(self, keys: list[bytes], now: float,
             run: Callable[[dict[int, list[bytes]], int], dict[int, list[Any]] | None]
             | None = None, late: Callable[[list[int | None]], None] | None = None) \
            -> list[int | None] | None:
        """Redis's answer for each key (1 new, 0 known, -1 known from the previous
        generation), or None when it cannot be had in time (then late, if given, gets
        the answers should they come after the deadline)."""
        lay = self.layout
        gen = lay.generation(now)
        flat = self._probe.positions_many(keys, lay.shards)
        per_shard, where = lay.ask_many(flat, gen, self.link.sha)
        if run is not None:
            replies = run(per_shard, gen)
        elif not self.link.up:
            return None
        else:
            self.asked += len(keys)
            on_late = None
            if late is not None:
                def on_late(got: dict[int, list[Any]]) -> None:
                    late(self._decode(got, where))
            replies = self.link.pipeline(per_shard, gen, on_late)
        return None if replies is None else self._decode(replies, where)

    def _decode(self, replies: dict[int, list[Any]],
                where: list[tuple[int, int]]) -> list[int | None]:
        """1, 0 or -1 per key from its reply; None when its shard did not answer (an
        error reply in a late batch: 0)."""
        out: list[int | None] = []
        for s, i in where:
            got = replies.get(s)
            r = None if got is None else got[i]
            if r is None:
                out.append(None)
            elif self._window is None:
                out.append(_NEW if isinstance(r, list) and 0 in r else _KNOWN)
            else:
                out.append(r if isinstance(r, int) else _KNOWN)
        return out

    def _remember(self, key: bytes) -> None:
        with self._journal_lock:
            if len(self._journal) < JOURNAL_LIMIT:
                self._journal.append(key)
            else:
                self.dropped += 1

    def _replay(self, run: Callable[[dict[int, list[bytes]], int],
                                    dict[int, list[Any]] | None]) -> None:
        """Write the keys the outage filter welcomed into Redis (on reconnecting)."""
        with self._journal_lock:
            keys, self._journal = self._journal, []
        if not keys:
            return
        answers = self._ask(keys, time.time(), run)  # into the generation of now
        again = keys if answers is None else [k for k, a in zip(keys, answers, strict=True)
                                              if a is None]
        if again:  # not written: kept for the next connection
            with self._journal_lock:
                self._journal[:0] = again[: JOURNAL_LIMIT - len(self._journal)]

    # -- health ------------------------------------------------------------------------

    def fill(self, now: float) -> tuple[int, int] | None:
        """(bits set, bits) of the current generation on Redis, or None when down."""
        counts = self.link.bitcounts(self.layout.generation(now))
        if counts is None:
            return None
        return sum(counts), self.layout.shard_bits * self.layout.shards

    def describe(self, now: float | None = None) -> str:
        """The backend's state, fill and estimated false-positive rate, in one line."""
        now = time.time() if now is None else now
        link = self.link
        where = self.shared.target
        window = "" if self._window is None else f", window {self._window:g}s"
        head = (f"shared on Redis {where} ({self.layout.shards} shard(s) of "
                f"{self.layout.shard_bits} bits, k={self.hashes}{window}, deadline "
                f"{self.shared.deadline * 1000:g} ms, fallback {self.shared.fallback})")
        if link.state == MISCONFIGURED:
            return f"{head}: MISCONFIGURED: {link.detail}"
        if link.state == CONNECTING:
            return (f"{head}: CONNECTING (no answer yet; the fallback answers meanwhile); "
                    f"local cache {self._cache_line(now)}")
        if link.state == DOWN or not link.up:
            return f"{head}: UNREACHABLE ({link.detail}); local cache {self._cache_line(now)}"
        fill = self.fill(now)
        if fill is None:
            return f"{head}: UNREACHABLE ({link.detail}); local cache {self._cache_line(now)}"
        set_bits, bits = fill
        ratio = set_bits / bits
        fpr = ratio ** self.hashes
        count = math.inf if ratio >= 1 else -(bits / self.hashes) * math.log1p(-ratio)
        over = " [OVER CAPACITY]" if count > self.settings.capacity else ""
        return (f"{head}: {UP} ({link.detail}); {set_bits}/{bits} bits set, "
                f"~{count:.0f} clients{over}, false-positive rate now ~{fpr:.3g} "
                f"(target {self.settings.error:g}); local cache {self._cache_line(now)}")

    def _cache_line(self, now: float) -> str:
        current, _ = self.filters(now)
        info = current.info()
        return f"{info.entries} entries at {info.path}"

    def settle(self, wait: float) -> bool:
        """Wait up to `wait` seconds for the first connection attempt (--check)."""
        return self.link.settle(wait)

    @property
    def healthy(self) -> bool:
        """Not misconfigured (unreachable is a fault the helper rides out)."""
        return self.link.state != MISCONFIGURED

    def close(self) -> None:
        """Stop the link's thread, close connections and unmap the local filters."""
        self.link.close()
        super().close()
        if self.outage is not None:
            self.outage.close()
        self._probe.close()
