"""URL normalisation (evasion table) and list lookups, text and compiled."""

from __future__ import annotations

import os
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.core.lists.compiled import CompiledDomainList, CompiledUrlList
from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.lookup import DomainList, ExpressionList, Match, UrlList
from squidguard_bloom.core.lists.store import compile_list, open_list
from squidguard_bloom.core.urlnorm import parse_target

# Every spelling must look up the host (and path) of its canonical URL.
EVASIONS = [
    ("http://DoubleClick.NET/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net./x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net../x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net.:80/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://user:pw@doubleclick.net/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://a@b@doubleclick.net/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net%2e/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://%64oubleclick.net/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick%252enet/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net%20/x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net?x", "doubleclick.net", "doubleclick.net/?x"),
    ("http://doubleclick.net#x", "doubleclick.net", "doubleclick.net/#x"),  # fragment kept
    ("http://doubleclick.net\\x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net//x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net/a/../x", "doubleclick.net", "doubleclick.net/x"),
    ("http://doubleclick.net/./x", "doubleclick.net", "doubleclick.net/x"),
    ("https://www.doubleclick.net/x", "www.doubleclick.net", "doubleclick.net/x"),
    ("ftp://ftp3.doubleclick.net/x", "ftp3.doubleclick.net", "doubleclick.net/x"),
    ("doubleclick.net/x", "doubleclick.net", "doubleclick.net/x"),
    ("doubleclick.net:443", "doubleclick.net", "doubleclick.net"),
    ("http://2130706433/x", "127.0.0.1", "127.0.0.1/x"),
    ("http://0x7f000001/x", "127.0.0.1", "127.0.0.1/x"),
    ("http://0177.0.0.1/x", "127.0.0.1", "127.0.0.1/x"),
    ("http://127.1/x", "127.0.0.1", "127.0.0.1/x"),
    ("http://127.0.0.1./x", "127.0.0.1", "127.0.0.1/x"),
    ("http://[::ffff:127.0.0.1]/x", "127.0.0.1", "127.0.0.1/x"),
    ("http://[2001:DB8:0:0::1]:8080/x", "2001:db8::1", "2001:db8::1/x"),
]


@pytest.mark.parametrize(("url", "host", "surl"), EVASIONS)
def test_evasion_table(url, host, surl):
    t = parse_target(url)
    assert t is not None
    assert (t.host, t.surl) == (host, surl)


def test_cosmetic_fields_follow_squidguard():
    t = parse_target("http://Www7.Example.com:8080/A%20b/%41?q=%2541")
    assert t.orig == "http://Www7.Example.com:8080/A%20b/A?q=%41"  # one pass, %20 kept
    assert t.furl == "www7.example.com:8080/a%20b/a?q=%41"
    assert t.surl == "example.com/a%20b/a?q=%41"
    assert parse_target("http://badsite.com%00.evil.com/").orig == "http://badsite.com"
    assert parse_target("http://1.2.3.4/").dotted and not parse_target("http://x.org/").dotted


@pytest.mark.parametrize("url", ["http:///x", "//x", "", "http://@/", "http://..."])
def test_no_host(url):
    assert parse_target(url) is None


@given(st.text(max_size=80))
def test_parse_target_never_raises(text):
    t = parse_target(text)
    assert t is None or t.host


LIST_TEXT = (
    "# comment\n"
    " # indented: an entry, as squidGuard reads it\n"
    "\n   \n"
    "Example.COM\r\n"
    "+plus.net\n"
    "-minus.org\n"
    ".leading.net\n"
    "sub.nested.com\n"
    "nested.com\n"
    "zzz.nested.com\n"
    "own.io http://per-entry/?u=%u\n"
    "10.9.8.7\n"
)


@pytest.fixture(params=["text", "compiled"])
def domains(request, tmp_path):
    path = tmp_path / "domains"
    path.write_text(LIST_TEXT)
    if request.param == "compiled":
        compile_list("domain", str(path))
    lst = open_list("domain", str(path))
    assert isinstance(lst, CompiledDomainList if request.param == "compiled" else DomainList)
    return lst


@pytest.mark.parametrize(("host", "entry"), [
    ("example.com", "example.com"), ("a.b.example.com", "example.com"),
    ("xexample.com", None), ("example.com.evil.org", None),
    ("plus.net", "plus.net"), ("minus.org", "minus.org"), ("x.leading.net", "leading.net"),
    # squidGuard's neighbour search lets these through; a suffix match does not
    ("www.nested.com", "nested.com"), ("aaa.nested.com", "nested.com"),
    ("y.zzz.nested.com", "zzz.nested.com"),
    ("10.9.8.7", "10.9.8.7"), ("1.10.9.8.7", None), ("#", "#"),
])
def test_domain_lookup(domains, host, entry):
    hit = domains.lookup(host)
    assert (hit.entry if hit else None) == entry


def test_per_entry_redirect(domains):
    assert domains.lookup("www.own.io").redirect == "http://per-entry/?u=%u"
    assert domains.lookup("example.com").redirect is None


@pytest.mark.parametrize("kind", ["text", "compiled"])
def test_url_lookup(tmp_path, kind):
    path = tmp_path / "urls"
    path.write_text("urlsite.com/blocked\nhttp://user@scheme.org:81/p\nwww.keep.net/w\n")
    if kind == "compiled":
        compile_list("url", str(path))
    lst = open_list("url", str(path))
    assert isinstance(lst, CompiledUrlList if kind == "compiled" else UrlList)
    hits = {"http://urlsite.com/blocked/deeper": "urlsite.com/blocked",
            "http://urlsite.com/blockedness": "urlsite.com/blocked",
            "http://www7.urlsite.com/blocked": "urlsite.com/blocked",
            "http://urlsite.com:81/BLOCKED": "urlsite.com/blocked",
            "http://u@urlsite.com//blocked": "urlsite.com/blocked",
            "https://urlsite.com/%62locked": "urlsite.com/blocked",
            "http://scheme.org/p": "scheme.org/p", "http://www.keep.net/w/x": "www.keep.net/w"}
    misses = ["http://urlsite.com/other", "http://wwwx.urlsite.com/blocked",
              "http://keep.net/w", "http://urlsite.com.evil/blocked"]
    for url, entry in hits.items():
        assert lst.lookup(parse_target(url)) == Match(entry, None), url
    for url in misses:
        assert lst.lookup(parse_target(url)) is None, url


@settings(max_examples=30, deadline=None)
@given(st.lists(st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}\.(com|net)", fullmatch=True),
                min_size=1, max_size=40, unique=True),
       st.lists(st.from_regex(r"([a-z]{1,3}\.){0,2}[a-z]{1,6}\.(com|net)", fullmatch=True),
                max_size=40))
def test_compiled_answers_like_text(tmp_path_factory, listed, hosts):
    path = tmp_path_factory.mktemp("l") / "domains"
    path.write_text("\n".join(listed) + "\n")
    text = open_list("domain", str(path))
    compile_list("domain", str(path))
    comp = open_list("domain", str(path))
    assert isinstance(comp, CompiledDomainList)
    for host in hosts + listed + ["x." + h for h in listed]:
        a, b = text.lookup(host), comp.lookup(host)
        assert (a.entry if a else None) == (b.entry if b else None), host


def test_stale_or_damaged_compiled_list_is_never_misread(tmp_path):
    path = tmp_path / "domains"
    path.write_text("old.example\n")
    compile_list("domain", str(path))
    path.write_text("new.example\n")  # changed after compiling
    os.utime(path, ns=(1, 1))
    notes: list[str] = []
    lst = open_list("domain", str(path), notes)
    assert lst.lookup("new.example") and not lst.lookup("old.example")
    assert "changed since it was compiled" in notes[0] and "rebuilt" in notes[0]
    sgb = tmp_path / "domains.sgb"
    sgb.write_bytes(b"garbage" * 20)
    notes.clear()
    lst = open_list("domain", str(path), notes)
    assert lst.lookup("new.example") and "not a compiled squidguard-bloom list" in notes[0]
    sgb.write_bytes(sgb.read_bytes()[:30])
    lst = open_list("domain", str(path), notes)
    assert lst.lookup("new.example")


def test_expressions(tmp_path):
    path = tmp_path / "expressions"
    path.write_text("(^|[-./])sex[-./0-9]\r\n\r\n\\.(jpe?g|png)$\r\n[\\]x\n")
    lst = open_list("expression", str(path))
    assert isinstance(lst, ExpressionList)
    assert lst.lookup("www.sex.com/") == Match("(^|[-./])sex[-./0-9]", None)  # furl: lower-case
    assert lst.lookup("x.org/nude.jpg").entry == "\\.(jpe?g|png)$"
    assert lst.lookup("a\\x.org/") == Match("[\\]x", None)  # POSIX: a backslash in brackets
    assert lst.lookup("www.example.org/") is None  # the CRLF blank line matches nothing


def test_invalid_expression_names_file_and_line(tmp_path):
    path = tmp_path / "expressions"
    path.write_text("ok\n(unclosed\n")
    with pytest.raises(ListError, match=r"expressions:2: invalid regular expression"):
        open_list("expression", str(path))


def test_big_list_compiles_and_opens(tmp_path):
    rnd = random.Random(7)
    names = {"".join(rnd.choices(string.ascii_lowercase, k=10)) + ".com" for _ in range(50_000)}
    path = tmp_path / "domains"
    path.write_text("\n".join(sorted(names)) + "\n")
    compile_list("domain", str(path))
    lst = open_list("domain", str(path))
    assert len(lst) == len(names)
    assert all(lst.lookup("www." + n) for n in list(names)[:1000])


def test_fragments_are_kept_for_lookups_as_squidguard_keeps_them():
    """An expression or url entry naming a #fragment blocks a request carrying it."""
    t = parse_target("http://x.com/a//b/../c?q=1#frag")
    assert t is not None
    assert (t.furl, t.surl) == ("x.com/a/c?q=1#frag", "x.com/a/c?q=1#frag")
    assert ExpressionList("e", "frag$\n").lookup(t.furl) == Match("frag$", None)
    assert UrlList("u", "x.com/a/c?q=1#f\n").lookup(t) == Match("x.com/a/c?q=1#f", None)
    plain = parse_target("http://x.com/a/c?q=1")
    assert plain is not None
    assert ExpressionList("e", "frag$\n").lookup(plain.furl) is None


def test_www_url_entry_also_blocks_the_request_with_a_port(tmp_path):
    """squidGuard stores a url entry with its www.; looked up by surl (no www.) and
    furl (the port), www.x.com:8080/p slipped past both.  A third lookup closes it,
    text and compiled lists alike, and blocks nothing squidGuard would not."""
    text = tmp_path / "urls"
    text.write_text("www.x.com/p\n")
    compile_list("url", str(text))
    for urls in (UrlList("u", text.read_text()), open_list("url", str(text), [])):
        for url in ("http://www.x.com:8080/p", "http://WWW.x.com:81/p/q", "http://www.x.com/p"):
            t = parse_target(url)
            assert t is not None and urls.lookup(t) is not None, (type(urls), url)
        for url in ("http://x.com:8080/p", "http://x.com/p", "http://www.x.com:8080/q"):
            t = parse_target(url)
            assert t is not None and urls.lookup(t) is None, (type(urls), url)
    assert isinstance(open_list("url", str(text), []), CompiledUrlList)
