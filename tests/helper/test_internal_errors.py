"""A bug meets a request: BH with the channel-ID, one line in cache.log, never a flood."""

from __future__ import annotations

import io
import re

import pytest

from squidguard_bloom.helper import loop as loop_module
from squidguard_bloom.helper.errorreport import ErrorReport
from squidguard_bloom.helper.loop import Loop, serve

BH = b'BH message="internal error: RuntimeError"'


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _booms(first: int, count: int) -> bytes:
    # The toy policy (conftest.py) raises RuntimeError for hosts holding "boom".
    return b"".join(b"%d http://boom.example/%d 10.0.0.1/- - GET\n" % (first + i, i)
                    for i in range(count))


def test_first_errors_one_line_each_then_one_summary_a_minute(make_helper) -> None:
    """5 lines for the first 5 errors, then a count at most once a minute, and at the end."""
    helper: Loop = make_helper(welcome=False)
    told, clock = io.StringIO(), Clock()
    helper.errors = ErrorReport(told, clock=clock)
    replies = helper.batch(_booms(0, 1000).rstrip(b"\n"))
    assert replies.split(b"\n")[:-1] == [b"%d %s" % (i, BH) for i in range(1000)]
    lines = told.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("squidguard-bloom: internal error, answered BH: RuntimeError: "
                               "'engine failure' on request b'0 http://boom.example/0 10.0.0.1")
    assert lines[0].endswith(" (-d shows the traceback)")
    assert lines[4].endswith("later ones are counted, one line every 60 s")

    clock.now += 59  # 995 pending, then 1000 more within the minute: nothing more told
    helper.batch(_booms(1000, 1000).rstrip(b"\n"))
    assert len(told.getvalue().splitlines()) == 5
    clock.now += 1  # a minute after the last line: the next error brings the summary
    helper.batch(_booms(2000, 10).rstrip(b"\n"))
    lines = told.getvalue().splitlines()
    assert len(lines) == 6
    assert re.fullmatch(r"squidguard-bloom: 1996 more internal error\(s\) "
                        r"\(2001 since start\); the latest: RuntimeError: 'engine failure' on "
                        r"request b'2000 http://boom\.example/0 10\.0\.0\.1/- - GET'", lines[5])

    # serve() ends with the errors still pending (9 since the summary): told once more
    out = io.BytesIO()
    serve(helper, io.BytesIO(b"7 http://ok.example/ 10.0.0.1/- - GET\n"), out)
    assert out.getvalue() == b"7 ERR\n"
    lines = told.getvalue().splitlines()
    assert len(lines) == 7
    assert lines[6].startswith("squidguard-bloom: 9 more internal error(s) (2010 since start)")
    assert helper.errors.count == 2010


def test_debug_adds_the_traceback(make_helper) -> None:
    """-d: the one line, then the traceback of that error."""
    helper: Loop = make_helper(welcome=False)
    told = io.StringIO()
    helper.errors = ErrorReport(told, traceback=True)
    assert helper.batch([b"http://boom.example/ 10.0.0.1/- - GET"]) == BH + b"\n"
    text = told.getvalue()
    assert text.startswith("squidguard-bloom: internal error, answered BH: RuntimeError: ")
    assert "\nTraceback (most recent call last):\n" in text
    assert text.endswith("RuntimeError: engine failure\n")


def test_a_line_the_parser_chokes_on_keeps_its_channel_id(make_helper,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when parsing itself fails, the BH goes out with the line's channel-ID."""
    helper: Loop = make_helper(welcome=False)
    helper.errors = ErrorReport(io.StringIO())

    def choke(line: bytes) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(loop_module, "parse_request", choke)
    out = helper.batch([b"12 http://x.example/ 10.0.0.1/- - GET", b"\t 0034\tx", b"noid y"])
    assert out == b"12 " + BH + b"\n0034 " + BH + b"\n" + BH + b"\n"
    assert helper.errors.count == 3


class _BrokenFastPath:
    lines = python_lines = 0

    def answer(self, data: bytes, count: int, now: float, *, strip_cr: bool = False) -> None:
        raise MemoryError("no room for the batch")


def test_a_failing_fast_path_leaves_every_line_to_python(make_helper) -> None:
    """A batch the C wrapper fails on is answered line by line, and the failure told once."""
    helper: Loop = make_helper(welcome=False)
    told = io.StringIO()
    helper.errors = ErrorReport(told)
    helper.rt.fast = _BrokenFastPath()
    out = helper.batch(b"1 http://ok.example/ 10.0.0.1/- - GET\n"
                       b"2 http://bad.example/ 10.0.0.1/- - GET")
    assert out == (b'1 ERR\n2 OK status=302 url="http://block.example/?u=http://bad.example/"\n')
    assert told.getvalue() == ("squidguard-bloom: internal error in the fast path, its batch "
                               "answered in Python: MemoryError: 'no room for the batch' "
                               "(-d shows the traceback)\n")
