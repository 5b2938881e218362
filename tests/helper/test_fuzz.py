"""50,000 hostile request lines: one well-formed reply each, and never an internal error.

The corpus (squidguard_bloom/bench/fuzz.py, fixed seed) mixes random bytes
with the URL pieces that broke the helper in the outside audit (``%25``,
``%ff``, raw ``\\xff``, ``[::1]``, ``a@b@``, channel-IDs, tabs); the
configuration uses every source kind, list kind, rewrite flag, template
code, the welcome block and logs.  It runs through the C fast path and
through Python alone, with the welcome keyed by address and by user: the
answers and the log files of both must be the same, byte for byte.
``bench/fuzz_helper.py`` does the same at a million lines.
"""

from __future__ import annotations

import io
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from squidguard_bloom.bench import fuzz
from squidguard_bloom.helper import runtime
from squidguard_bloom.helper.errorreport import ErrorReport
from squidguard_bloom.helper.loop import Loop, serve

SEED = 20261203
LINES = 50_000
#: Log files the configuration names; each must get lines from the corpus.
LOGS = ("ads.log", "adult.log", "blocked.log", "rewrites.log", "sources.log", "welcome.log")
_STAMP = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\d+\] ", re.M)


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    """The fuzzed request lines."""
    return list(fuzz.request_lines(SEED, LINES))


def test_the_generator_makes_the_dangerous_shapes(corpus: list[bytes]) -> None:
    """Every dangerous shape is there, hundreds of times: the corpus cannot silently go weak."""
    counts = Counter(shape for line in corpus for shape in fuzz.shapes(line))
    assert {shape: counts[shape] for shape in fuzz.SHAPES if counts[shape] < 250} == {}
    assert counts["non-utf8 byte"] > LINES // 5
    assert len(set(corpus)) > LINES // 2  # not one line repeated
    assert all(b"\n" not in line for line in corpus)
    assert list(fuzz.request_lines(SEED, 100)) == corpus[:100]  # seeded


def test_shapes_are_recognised() -> None:
    """The classifier the check above relies on, on lines written by hand."""
    assert fuzz.shapes(b"7 http://a@b@[::1]/%25%ff 10.0.0.\xff/- \xffu GET") == {
        "channel-id", "several @", "ipv6 literal", "%25 in url", "%ff in url",
        "non-utf8 byte", "bad utf-8 client", "bad utf-8 user"}
    assert fuzz.shapes(b"bad.example:443\t10.0.0.1/-\t-\tCONNECT\r") == {
        "listed domain", "connect", "tab"}
    assert fuzz.shapes(b'http://x/"\x00\r\x01 1.2.3.4') == {
        "quote or backslash", "nul", "cr inside", "control byte", "no method"}
    assert fuzz.shapes(b"  ") == {"empty line", "no method"}
    assert fuzz.shapes(b"http://news.example/a/b?utm_x=1 1.2.3.4/- - GET") == {
        "listed url", "rewrite hit"}
    assert fuzz.shapes(b"http://xn--bcher-kva.example/warez/ a/- - GET") == {
        "idn", "expression hit"}


def _run(root: Path, corpus: list[bytes], key: str, fast: bool) -> tuple[bytes, dict[str, bytes],
                                                                         Loop]:
    conf = fuzz.write_setup(root, key=key)
    told = io.StringIO()
    helper = Loop(runtime.build(runtime.Options(config=str(conf), fast_path=fast)),
                    errors=ErrorReport(told))
    out = io.BytesIO()
    try:
        serve(helper, fuzz.Pipe(b"\n".join(corpus) + b"\n", random.Random(SEED)), out)
    finally:
        helper.rt.close()
    assert (helper.errors.count, told.getvalue()) == (0, "")
    logs = {p.name: _STAMP.sub(b"", p.read_bytes()) for p in sorted((root / "logs").iterdir())}
    return out.getvalue(), logs, helper


@pytest.mark.parametrize("key", ["ip", "user"])
def test_fuzzed_lines_fast_path_and_python(tmp_path: Path, corpus: list[bytes], key: str,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    """One well-formed reply per line, in order, channel-IDs echoed, no internal error;
    the C fast path answers as Python does, and takes a real share of the lines."""
    fast_out, fast_logs, fast = _run(tmp_path / "fast", corpus, key, True)
    slow_out, slow_logs, _ = _run(tmp_path / "python", corpus, key, False)
    kinds = fuzz.check_replies(corpus, slow_out)
    assert fast_out == slow_out
    assert fast_logs == slow_logs
    assert capfd.readouterr() == ("", "")  # nothing on stdout or stderr (Squid's cache.log)

    assert fast.rt.fast.lines == LINES
    assert fast.rt.fast.lines - fast.rt.fast.python_lines > LINES // 10
    assert "BH" not in kinds
    assert {k for k, n in kinds.items() if n >= 100} == {
        "ERR", "ERR message (unparsable)", "OK rewrite-url", "OK status=301", "OK status=302",
        "OK status=303"}
    replies = slow_out.split(b"\n")
    for sign in (b"/hello?next=", b"/blocked?a=", b"/ads?a=", b"&q=noquota", b"&z=%z&%%&%\"",
                 b"/warez?rest=", b"news.example/moved/", b".-.-shop.", b"utm_source=x", b"%FF",
                 b"/people?", b"/staff?", b"/listed/", b"/ranged?", b"/latin?u=", b"/text/",
                 b"/entry?u=", b"/u?"):
        assert sum(sign in r for r in replies) >= 5, sign  # each path of the config is taken
    assert {name for name, text in fast_logs.items() if text.count(b"\n") >= 20} == set(LOGS)
    assert b"%FF" in fast_logs["blocked.log"]  # a byte that was not UTF-8, as it came
