"""Bytes that are not UTF-8, through every path: the rule of squidguard_bloom/core/rawtext.py.

In: UTF-8 with surrogateescape; out: the same bytes back; RE2 sees each
stray byte as one private-use character, so ``.`` matches it (no bypass),
a Latin-1 pattern matches exactly its byte, and rewrites keep the bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import RewriteRule
from squidguard_bloom.core.engine.decision import REDIRECT, REWRITE
from squidguard_bloom.core.engine.engine import Engine
from squidguard_bloom.core.engine.rewrite import RewriteBlock
from squidguard_bloom.core.engine.template import TemplateValues, expand
from squidguard_bloom.core.lists.lookup import ExpressionList
from squidguard_bloom.core.logline import request_line
from squidguard_bloom.core.rawtext import for_regex, raw, text
from squidguard_bloom.helper.protocol import parse_request, reply_redirect, reply_rewrite

ALL_BYTES = bytes(range(256))


def test_text_and_raw_round_trip_every_byte() -> None:
    """Every byte, every half UTF-8 sequence, comes back exactly."""
    for data in (ALL_BYTES, b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", "b\u00fccher".encode(),
                 b"\xff\xfe\x00%ff"):
        assert raw(text(data)) == data


def test_for_regex_is_index_for_index() -> None:
    """One private-use character per stray byte; valid text and ASCII unchanged."""
    s = text(b"a\xff\xc3\xa9\x80z")
    assert s == "a\udcff\u00e9\udc80z"
    assert for_regex(s) == "a\U0010ffff\u00e9\U0010ff80z"
    assert for_regex("plain/ascii") == "plain/ascii"
    assert len(for_regex(text(ALL_BYTES))) == len(text(ALL_BYTES))


def _rule(pattern: bytes, replacement: str, flags: str = "") -> RewriteBlock:
    return RewriteBlock("rw", [RewriteRule(text(pattern), replacement, flags, None)])


def test_rewrite_keeps_the_bytes_it_moves() -> None:
    """Groups, & and the untouched text carry stray bytes through unchanged."""
    block = _rule(rb"^http://([^/]*)/(.*)$", r"http://new.example/\2?from=\1")
    url = text(b"http://h\xffst/p\xfe\xc3/%ff")
    assert raw(block.apply(url)) == b"http://new.example/p\xfe\xc3/%ff?from=h\xffst"
    every = _rule(b"(.)", r"[\1]", "g")
    assert raw(every.apply(text(b"a\xffb"))) == b"[a][\xff][b]"


def test_rewrite_rule_in_latin1_matches_its_byte_only() -> None:
    """A rule written in Latin-1 (caf\\xe9) rewrites that byte, not U+00E9 nor 0xe8."""
    block = _rule(b"caf\xe9", "cafe")
    assert block.apply(text(b"http://x/caf\xe9")) == "http://x/cafe"
    assert block.apply("http://x/caf\u00e9") is None
    assert block.apply(text(b"http://x/caf\xe8")) is None


def test_group_beyond_the_regex_inserts_nothing() -> None:
    """\\5 with one group inserts nothing (it used to raise IndexError: BH)."""
    assert _rule(b"(a)b", r"<\1\5>").apply("xab") == "x<a>"


def test_expressions_see_through_stray_bytes(tmp_path: Path) -> None:
    """``.*`` crosses a stray byte (no bypass with %ff); a Latin-1 pattern hits its byte."""
    exprs = ExpressionList("e", text(b"porn.*site\nx[^/]y\ncaf\xe9\n"))
    assert exprs.lookup(text(b"h/porn\xffsite")).entry == "porn.*site"
    assert exprs.lookup(text(b"h/x\x80y")).entry == "x[^/]y"
    assert exprs.lookup(text(b"h/caf\xe9/")).entry == text(b"caf\xe9")
    assert exprs.lookup("h/caf\u00e9/") is None
    single = ExpressionList("e", "porn.*site\n")  # one pattern: no combined prefilter
    assert single.lookup(text(b"porn\xff\xfe\xfdsite")).entry == "porn.*site"


CONF = """
dest porn { expressionlist porn/expressions
            redirect 302:http://block.example/?u=%u&i=%i }
rewrite rw { s@^(http://old\\.example/)(.*)$@http://new.example/\\2@ }
acl { default { pass !porn all
                rewrite rw } }
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """An engine with one expression dest and one rewrite."""
    db = tmp_path / "db"
    (db / "porn").mkdir(parents=True)
    (db / "porn" / "expressions").write_bytes(b"porn.*site\n")
    (tmp_path / "sg.conf").write_text(f"dbhome {db}\nlogdir {tmp_path}\n{CONF}")
    return Engine(load_config(tmp_path / "sg.conf"))


def test_request_with_stray_bytes_is_blocked_and_rewritten(engine: Engine) -> None:
    """The audit's crash: %ff in a URL met a rewrite (UnicodeEncodeError, answered BH)."""
    d = engine.decide(parse_request(b"http://old.example/%ff\xfe 10.0.0.1/- \xe9mile GET"), 0)
    assert (d.action, raw(d.url)) == (REWRITE, b"http://new.example/\xff\xfe")
    assert reply_rewrite(b"4", d.url) == b'4 OK rewrite-url="http://new.example/\xff\xfe"\n'
    d = engine.decide(parse_request(b"http://x.example/porn%ffsite 10.0.0.1/- \xe9mile GET"), 0)
    assert d.action == REDIRECT
    assert reply_redirect(None, d.url, d.status) == (
        b'OK status=302 url="http://block.example/?u=http://x.example/porn%FFsite&i=%E9mile"\n')


def test_templates_and_logs_show_a_stray_byte_as_itself() -> None:
    """%-encoded byte for byte: 0xff is %FF (never %DCFF, the surrogate's number)."""
    values = TemplateValues(text(b"10.0.0.\xff"), "", text(b"J\xc9R\xd4ME"), "s", "t",
                            text(b"http://h/\xff") + "\u2028")
    assert expand("http://b/?a=%a&i=%i&u=%u", values) == (
        None, "http://b/?a=10.0.0.%FF&i=j%C9r%D4me&u=http://h/%FF%E2%80%A8")
    line = request_line("s", "t", "-", text(b"http://h/\xff\t\xc3\xa9"), text(b"1.2.3.\xff"), "",
                        text(b"u \xe9"), text(b"G\xffT"), "PASS")
    assert line == "Request(s/t/-) http://h/%FF%09\u00e9 1.2.3.%FF/- u%20%E9 G%FFT PASS"
