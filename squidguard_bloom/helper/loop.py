"""THE HOT PATH: read request lines, decide, welcome, reply, log, flush.

:func:`serve` is the loop Squid talks to; :meth:`Loop.respond` is all the
work one request costs.  Everything slow or fallible (parsing the config,
loading lists, opening the filter) happened before, in
:mod:`squidguard_bloom.helper.runtime`, which hands over a ready :class:`Runtime`.

Guarantees: exactly one reply line per request line, in order, with the
channel-ID echoed byte for byte; replies are written as soon as everything
read so far is answered (one write per batch Squid sent, so concurrency
costs no extra system calls); no exception escapes the per-line ``except``,
and a bug there is answered ``BH`` and reported by :class:`ErrorReport` in
one rate-limited line, so no client can flood Squid's cache.log; SIGHUP
reloads between two batches, so no line is lost; EOF ends cleanly.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable

from squidguard_bloom.core.engine.decision import PASS, REDIRECT, UNPARSABLE, Decision
from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.core.engine.template import TemplateValues
from squidguard_bloom.core.logline import request_line
from squidguard_bloom.helper.errorreport import ErrorReport
from squidguard_bloom.helper.health import Health
from squidguard_bloom.helper.protocol import (
    channel_of,
    parse_request,
    reply_error,
    reply_pass,
    reply_redirect,
    reply_rewrite,
    reply_unparsable,
)
from squidguard_bloom.helper.runtime import Runtime

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from typing import IO, BinaryIO

#: Longest request line kept whole; longer ones are answered as unparsable
#: (after reading through to their end, so the next reply stays in step).
MAX_LINE = 4 << 20
_CHUNK = 1 << 16


class Loop:
    """Answers request lines with a Runtime; swaps Runtimes on reload."""

    def __init__(
        self,
        runtime: Runtime,
        reload: Callable[[Runtime], Runtime] | None = None,
        explain: IO[str] | None = None,
        errors: ErrorReport | None = None,
    ) -> None:
        self.rt = runtime
        self._reload = reload
        self._explain = explain
        self.errors = ErrorReport() if errors is None else errors
        self.reload_requested = False
        self.now = time.time()
        self._pending: list[Pending] | None = None
        self.health = Health()
        self.status_requested = False  # SIGUSR1 or the timer, while a batch was running
        self.idle = False  # True only while serve() waits for input (see install_signal_handlers)

    def respond(self, line: bytes, welcomed: bool = False) -> bytes | Pending:
        """The reply line (with its newline) for one request line.

        welcomed: the fast path already found this a first visit (and added
        the client to the welcome filter).  Inside batch(), with a welcome
        state shared on Redis, a possible first visit is answered by a
        Pending that batch() resolves with the batch's others in one round trip.
        """
        try:
            req = parse_request(line)
            if isinstance(line, LongLine):
                return reply_unparsable(req.channel, "request line too long", self.rt.style)
            if not req.url:
                return reply_unparsable(req.channel, req.problem, self.rt.style)
            rt = self.rt
            decision = rt.emergency or rt.policy.decide(req, self.now)
            for path, text in decision.log:
                rt.sink.write(path, text)
            if decision.action == UNPARSABLE:
                self._say(req, decision.explanation)
                return reply_unparsable(req.channel, decision.url, rt.style)
            if decision.action == PASS:
                if rt.welcome is not None and rt.emergency is None:
                    welcome = self._welcome(req, decision, welcomed, line)
                    if welcome is not None:
                        return welcome
                self._say(req, decision.explanation)
                return reply_pass(req.channel, rt.style)
            self._say(req, decision.explanation)
            if decision.action == REDIRECT or req.method == "CONNECT":
                # A blocked CONNECT must fail at once: a rewrite-url to an
                # http URL would make Squid tunnel to a host named "http".
                return reply_redirect(req.channel, decision.url, decision.status, rt.style)
            return reply_rewrite(req.channel, decision.url, rt.style)
        except Exception as exc:  # the one place nothing may escape
            self.errors.report(exc, line)
            return reply_error(channel_of(line), f"internal error: {type(exc).__name__}",
                               self.rt.style)

    def _welcome(self, req: Request, decision: Decision, added: bool,
                 line: bytes) -> bytes | Pending | None:
        welcome = self.rt.welcome
        assert welcome is not None
        if self._pending is not None and not added:  # a shared state: ask with the batch
            key = welcome.candidate(req.method, decision.host, req.client, req.user)
            if key is None:
                return None
            pending = Pending(key, req, decision, line)
            self._pending.append(pending)
            return pending
        if not welcome.welcomes(req.method, decision.host, req.client, req.user, self.now,
                                added=added):
            return None
        return self._welcome_reply(req, decision)

    def _welcome_reply(self, req: Request, decision: Decision) -> bytes:
        welcome = self.rt.welcome
        assert welcome is not None
        self.health.welcomes += 1
        values = TemplateValues(req.client, req.fqdn, req.user, decision.source, "welcome",
                                req.url)
        status, url = welcome.redirect(values)
        if self.rt.welcome_log:
            text = request_line(decision.source, "welcome", "-", req.url, req.client, req.fqdn,
                                req.user, req.method, "WELCOME")
            self.rt.sink.write(self.rt.welcome_log, text)
        self._say(req, f"first visit of this client: welcome page {url}")
        return reply_redirect(req.channel, url, status, self.rt.style)

    def _resolve(self, replies: list[bytes | Pending]) -> list[bytes]:
        """replies with each Pending answered, the shared welcome state asked about all
        of them in one call (one network round trip)."""
        pending, self._pending = self._pending, None
        welcome = self.rt.welcome
        if not pending or welcome is None:
            return [r for r in replies if isinstance(r, bytes)]
        try:
            fresh = welcome.first_visits([p.key for p in pending], self.now)
        except Exception as exc:  # a bug must not cost the batch its replies
            self.errors.report(exc, None, "internal error asking the shared welcome state, "
                                          "its batch answered without welcome")
            fresh = [False] * len(pending)
        answers: dict[int, bytes] = {}
        for p, new in zip(pending, fresh, strict=True):
            try:
                if new:
                    answers[id(p)] = self._welcome_reply(p.req, p.decision)
                else:
                    self._say(p.req, p.decision.explanation)
                    answers[id(p)] = reply_pass(p.req.channel, self.rt.style)
            except Exception as exc:  # as in respond(): nothing may escape
                self.errors.report(exc, p.line)
                answers[id(p)] = reply_error(channel_of(p.line),
                                             f"internal error: {type(exc).__name__}",
                                             self.rt.style)
        return [r if isinstance(r, bytes) else answers[id(r)] for r in replies]

    def _say(self, req: Request, why: str) -> None:
        if self._explain is not None:
            self._explain.write(f"# {req.url} {req.client or '-'}: {why}\n")

    @property
    def explains(self) -> bool:
        """Whether --explain is on (serve then answers a line at a time)."""
        return self._explain is not None

    def batch(self, lines: list[bytes] | bytes) -> bytes:
        """Answer a batch of lines read together; reload first if asked to.

        lines: the lines, or (from serve) the bytes read, newline-separated,
        with their CRs still on.
        """
        if self.reload_requested and self._reload is not None:
            self.reload_requested = False
            self.rt = self._reload(self.rt)
        self.now = time.time() + self.rt.clock_offset
        rt = self.rt
        # With a shared state, possible first visits are asked about together at the end.
        self._pending = [] if rt.welcome is not None and not rt.welcome.decides else None
        before = self.health.welcomes
        fast = None
        if rt.fast is not None and rt.emergency is None and self._explain is None:
            try:
                if isinstance(lines, bytes):
                    fast = rt.fast.answer(lines, lines.count(b"\n") + 1, self.now,
                                          strip_cr=True)
                elif LongLine not in map(type, lines):
                    fast = rt.fast.answer(b"\n".join(lines), len(lines), self.now)
            except Exception as exc:  # a bug in C's wrapper: Python answers every line
                self.errors.report(exc, None, "internal error in the fast path, its batch "
                                   "answered in Python")
                fast = None
        if fast is None:
            if isinstance(lines, bytes):
                lines = [_strip(x) for x in lines.split(b"\n")]
            replies = [self.respond(line) for line in lines]
            out = b"".join(self._resolve(replies) if self._pending is not None
                           else replies)  # type: ignore[arg-type]
        else:
            # C answered the common lines; the rest go through respond() and
            # are spliced in where they belong.
            out, rest = fast
            if rest:
                parts: list[bytes | Pending] = []
                pos = 0
                for at, line, welcomed, log in rest:
                    parts.append(out[pos:at])
                    pos = at
                    if line is not None:
                        parts.append(self.respond(line, welcomed))
                    elif log is not None:  # answered in C, logged here, in line order
                        rt.sink.write(*log)
                parts.append(out[pos:])
                out = b"".join(self._resolve(parts) if self._pending is not None
                               else parts)  # type: ignore[arg-type]
        health = self.health
        welcomes = health.welcomes
        health.answered += out.count(b"\n")
        # Every reply that changes the request ("OK ..."; legacy: a non-empty
        # one) is a block or a rewrite; welcomes are counted apart.
        if rt.style == "squid34":
            health.blocks += out.count(b"OK ") - (welcomes - before)
        else:
            health.blocks += len(_LEGACY_CHANGED.findall(out)) - (welcomes - before)
        rt.sink.flush()
        if self._explain is not None:
            self._explain.flush()
        if self.errors.pending:
            self.errors.tick()
        if self.status_requested or time.monotonic() >= health.due:
            self.write_status()
        return out

    def status_line(self) -> str:
        """The health status message for now (see squidguard_bloom.helper.health)."""
        return self.health.status_line(self.rt.welcome, self.rt.emergency_mode,
                                       time.monotonic(), time.time() + self.rt.clock_offset)

    def write_status(self) -> None:
        """Append the status line to squidGuard.log now, and schedule the next one."""
        self.status_requested = False
        self.health.due = time.monotonic() + self.health.interval
        rt = self.rt
        if rt.main_log is not None:
            rt.sink.write(rt.main_log, "INFO: " + self.status_line())
            rt.sink.flush()


class Pending:
    """A pass that may be a first visit, waiting for its batch's shared-state answer."""

    __slots__ = ("decision", "key", "line", "req")

    def __init__(self, key: bytes, req: Request, decision: Decision, line: bytes) -> None:
        self.key = key
        self.req = req
        self.decision = decision
        self.line = line


#: A legacy-style reply that changes the request: "[channel ]302:URL" or "[channel ]URL".
_LEGACY_CHANGED = re.compile(rb"^(?:\d+ )?\S", re.M)


class LongLine(bytes):
    """The first bytes of a request line longer than MAX_LINE (rest dropped)."""


def _strip(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _send(outstream: BinaryIO, data: bytes) -> bool:
    try:
        outstream.write(data)
        outstream.flush()
    except BrokenPipeError:
        return False
    return True


def serve(helper: Loop, instream: BinaryIO | None = None,
          outstream: BinaryIO | None = None) -> int:
    """Answer lines from instream (binary) on outstream until EOF; return 0.

    Reads whatever is available (``read1``), answers every complete line in
    it, writes all those replies at once and flushes.  A partial line waits
    for its end; one longer than MAX_LINE is dropped through to its end and
    answered once, as unparsable, with its channel-ID.  Internal errors not
    yet told (see :class:`ErrorReport`) are told at the end.
    """
    instream = sys.stdin.buffer if instream is None else instream
    outstream = sys.stdout.buffer if outstream is None else outstream
    try:
        if helper.explains:  # an admin at a terminal: each answer right after its "# why"
            return _serve_lines(helper, instream, outstream)
        return _serve_blocks(helper, instream, outstream)
    finally:
        helper.errors.tick(final=True)


def _serve_blocks(helper: Loop, instream: BinaryIO, outstream: BinaryIO) -> int:
    raw_read = getattr(instream, "read1", instream.read)

    def read(size: int) -> bytes:
        if helper.status_requested:  # asked for after the last batch had checked
            helper.write_status()
        helper.idle = True  # a status timer firing now may write at once
        try:
            return raw_read(size)
        finally:
            helper.idle = False

    buf = b""  # the unfinished line so far
    long_head: bytes | None = None  # set while dropping an over-long line
    while chunk := read(_CHUNK):
        end = chunk.rfind(b"\n")
        if end >= 0 and long_head is None and len(buf) + end <= MAX_LINE:
            # The usual read: complete lines, none too long, answered as one block.
            data = buf + chunk[:end] if buf else chunk[:end]
            buf = chunk[end + 1 :]
            if not _send(outstream, helper.batch(data)):
                return 0
            continue
        parts = chunk.split(b"\n")
        lines: list[bytes] = []
        if len(parts) > 1:
            first = buf + parts[0] if long_head is None else LongLine(long_head)
            lines.append(first if len(first) <= MAX_LINE else LongLine(first[:64]))
            lines.extend(parts[1:-1])
            buf, long_head = b"", None
        if long_head is None:
            buf += parts[-1]
            if len(buf) > MAX_LINE:
                buf, long_head = b"", buf[:64]
        if lines and (b"\r" in chunk or lines[0][-1:] == b"\r"):
            lines = [_strip(x) for x in lines]
        if lines and not _send(outstream, helper.batch(lines)):
            return 0
    if buf or long_head is not None:  # a last line without its newline is answered too
        last = _strip(buf) if long_head is None else LongLine(long_head)
        _send(outstream, helper.batch([last]))
    return 0


def _serve_lines(helper: Loop, instream: BinaryIO, outstream: BinaryIO) -> int:
    """serve() one line at a time (--explain): slow, but the output reads in order."""
    for raw in instream:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if len(line) > MAX_LINE:
            line = LongLine(line[:64])
        if not _send(outstream, helper.batch([_strip(line)])):
            return 0
    return 0


def install_signal_handlers(helper: Loop, sink_reopen: Callable[[], None]) -> None:
    """SIGHUP: reload config and lists before the next batch; SIGUSR1: reopen logs and
    write a status line; SIGALRM every status interval: a status line while idle.

    A status line is written from the handler only while the loop waits for
    input (nothing is half-written then); during a batch the handler just sets
    a flag and the batch writes it when it ends.  No thread is involved.
    """

    def status_now_or_after_batch() -> None:
        if helper.idle:
            helper.write_status()
        else:
            helper.status_requested = True

    def on_hup(_sig: int, _frame: object) -> None:
        helper.reload_requested = True

    def on_usr1(_sig: int, _frame: object) -> None:
        sink_reopen()
        status_now_or_after_batch()

    def on_alarm(_sig: int, _frame: object) -> None:
        left = helper.health.due - time.monotonic()
        if left <= 0.5:  # due (or a batch is about to write it)
            status_now_or_after_batch()
            left = helper.health.interval
        signal.setitimer(signal.ITIMER_REAL, left)  # one shot, re-armed each time

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, helper.health.interval)


def stop_status_timer() -> None:
    """Disarm the status timer of install_signal_handlers (the helper is done serving)."""
    signal.setitimer(signal.ITIMER_REAL, 0)
