"""Internationalised domain names: Unicode and punycode spellings are one host.

A list entry written in Unicode blocks the punycode host browsers send, an
entry written in punycode blocks a host that arrives in Unicode, through
text and compiled lists, the Python engine and the C fast path alike.
Non-ASCII characters that ruff would flag as confusable are written as
escapes: FULLWIDTH FULL STOP U+FF0E, IDEOGRAPHIC FULL STOP U+3002,
HALFWIDTH IDEOGRAPHIC FULL STOP U+FF61, Cyrillic and Greek letters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.core.idn import MAX_NAME, ascii_host
from squidguard_bloom.core.lists.compiled import CompiledDomainList, CompiledUrlList
from squidguard_bloom.core.lists.lookup import DomainList, UrlList
from squidguard_bloom.core.lists.store import compile_list, open_list
from squidguard_bloom.core.urlnorm import parse_target
from squidguard_bloom.helper import runtime
from squidguard_bloom.helper.loop import Loop

FW_DOT = "\uff0e"  # FULLWIDTH FULL STOP
IDEO_DOT = "\u3002"  # IDEOGRAPHIC FULL STOP
HW_IDEO_DOT = "\uff61"  # HALFWIDTH IDEOGRAPHIC FULL STOP
PAYPAL_CYRILLIC = "\u0440\u0430\u0443\u0440\u0430l.com"  # Cyrillic "raypa" + Latin "l"
GREEK = ("\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1"  # example.test
         ".\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae")
GREEK_UPPER = GREEK.upper()

# (lower-cased name, its canonical ASCII form)
CANONICAL = [
    ("bücher.example", "xn--bcher-kva.example"),
    (f"bücher{FW_DOT}example", "xn--bcher-kva.example"),
    (f"bücher{IDEO_DOT}example", "xn--bcher-kva.example"),
    (f"bücher{HW_IDEO_DOT}example", "xn--bcher-kva.example"),
    ("www.bücher.example", "www.xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),  # ASCII: as it is
    (PAYPAL_CYRILLIC, "xn--l-7sba6dbr.com"),  # mixed scripts
    (GREEK, "xn--hxajbheg2az3al.xn--jxalpdlp"),
    (f"\u65e5\u672c\u8a9e{IDEO_DOT}jp", "xn--wgv71a119e.jp"),
    ("faß.de", "xn--fa-hia.de"),  # non-transitional, as browsers: not fass.de
    ("bü\u00adcher.example", "xn--bcher-kva.example"),  # a soft hyphen is ignored
    ("\uff42\uff41\uff44.example", "bad.example"),  # full-width letters
    ("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "127.0.0.1"),
    ("a_b.bücher.example", "a_b.xn--bcher-kva.example"),  # _ allowed, as in browsers
    ("-bücher.example", "xn---bcher-4ya.example"),  # hyphen checks off, as in browsers
    (f"bücher.example{IDEO_DOT}", "xn--bcher-kva.example."),
]

# Names that cannot be encoded: looked up as they are.
UNENCODABLE = [
    "caf\udce9.example",  # the Latin-1 byte 0xe9, not UTF-8 (surrogateescape)
    "bücher.example\uff1a8080",  # a full-width colon maps to ":"
    "bücher\uff0fx.example",  # a full-width solidus maps to "/"
    "xn--bü.example",  # an A-label prefix on a label that is not ASCII
    "\u0378.example",  # an unassigned code point
    IDEO_DOT,  # nothing but a dot
    "ü" * MAX_NAME + ".example",  # longer than any DNS name
]


@pytest.mark.parametrize(("name", "canonical"), CANONICAL)
def test_canonical_ascii_form(name: str, canonical: str) -> None:
    assert ascii_host(name) == canonical


@pytest.mark.parametrize(("name", "canonical"), [
    (n, c) for n, c in CANONICAL if "_" not in n and not n.startswith("-")
    and not n.endswith(IDEO_DOT)
])
def test_agrees_with_strict_uts46_on_valid_names(name: str, canonical: str) -> None:
    """Where a name is valid IDNA 2008, the strict encoder of the idna package agrees."""
    assert idna.encode(name, uts46=True).decode() == canonical


@pytest.mark.parametrize("name", UNENCODABLE)
def test_unencodable_name_is_kept_as_it_is(name: str) -> None:
    assert ascii_host(name) == name


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_never_raises_and_gives_ascii_or_the_name(name: str) -> None:
    out = ascii_host(name)
    assert out == name or out.isascii()


# ---------------------------------------------------------------- URL parsing

@pytest.mark.parametrize(("url", "host", "furl", "surl"), [
    ("http://BÜCHER.example/Katalog", "xn--bcher-kva.example", "xn--bcher-kva.example/katalog",
     "xn--bcher-kva.example/katalog"),
    ("http://b%C3%BCcher.example/", "xn--bcher-kva.example", "xn--bcher-kva.example/",
     "xn--bcher-kva.example/"),
    (f"http://www.bücher{FW_DOT}example:8080/x", "www.xn--bcher-kva.example",
     "www.xn--bcher-kva.example:8080/x", "xn--bcher-kva.example/x"),
    (f"http://bücher.example{IDEO_DOT}/", "xn--bcher-kva.example", "xn--bcher-kva.example/",
     "xn--bcher-kva.example/"),
    (f"http://{GREEK_UPPER}/", "xn--hxajbheg2az3al.xn--jxalpdlp",
     "xn--hxajbheg2az3al.xn--jxalpdlp/", "xn--hxajbheg2az3al.xn--jxalpdlp/"),
    ("http://XN--BCHER-KVA.example/", "xn--bcher-kva.example", "xn--bcher-kva.example/",
     "xn--bcher-kva.example/"),
    ("http://caf\udce9.example/", "caf\udce9.example", "caf\udce9.example/",
     "caf\udce9.example/"),
])
def test_request_hosts_are_looked_up_as_punycode(url: str, host: str, furl: str,
                                                 surl: str) -> None:
    t = parse_target(url)
    assert t is not None
    assert (t.host, t.furl, t.surl) == (host, furl, surl)
    assert t.orig == url.replace("%C3%BC", "ü")  # %u and logs show what was sent


def test_full_width_address_is_an_address() -> None:
    t = parse_target("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/x")
    assert t is not None and (t.host, t.dotted) == ("127.0.0.1", True)


# ---------------------------------------------------------------- lists

DOMAIN_LIST = "\n".join([
    "bücher.example",  # Unicode entry
    "XN--MNCHEN-3YA.example",  # punycode entry, upper case (münchen)
    GREEK_UPPER,  # Greek, upper case
    PAYPAL_CYRILLIC,  # mixed scripts
    f"\u65e5\u672c\u8a9e{IDEO_DOT}jp",  # ideographic full stop inside the entry
    "faß.example",
    f".dotted{FW_DOT}bücher-shop.example{FW_DOT}",  # full-width leading and trailing dots
]).encode() + b"\ncaf\xe9.example\n"  # a Latin-1 byte: cannot be encoded, kept

URL_LIST = "\n".join([
    "straße.example/sperre",  # IDN host + path
    "xn--zrich-kva.example/kurs http://entry.test/zuerich",  # punycode host + own redirect
    f"http://user@www.köln{IDEO_DOT}example:8080/dom",  # scheme, userinfo, dot, port
]).encode() + b"\n"


@pytest.fixture(params=["text", "compiled"])
def idn_lists(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[object, object]:
    (tmp_path / "domains").write_bytes(DOMAIN_LIST)
    (tmp_path / "urls").write_bytes(URL_LIST)
    if request.param == "compiled":
        compile_list("domain", str(tmp_path / "domains"))
        compile_list("url", str(tmp_path / "urls"))
    domains = open_list("domain", str(tmp_path / "domains"))
    urls = open_list("url", str(tmp_path / "urls"))
    compiled = request.param == "compiled"
    assert isinstance(domains, CompiledDomainList if compiled else DomainList)
    assert isinstance(urls, CompiledUrlList if compiled else UrlList)
    return domains, urls


@pytest.mark.parametrize(("url", "entry"), [
    ("http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
    ("http://www.BÜCHER.example/", "xn--bcher-kva.example"),
    (f"http://bücher{FW_DOT}example/", "xn--bcher-kva.example"),
    ("http://münchen.example/", "xn--mnchen-3ya.example"),
    ("http://MÜNCHEN.example/", "xn--mnchen-3ya.example"),
    ("http://xn--mnchen-3ya.example/", "xn--mnchen-3ya.example"),
    (f"http://{GREEK}/", "xn--hxajbheg2az3al.xn--jxalpdlp"),
    ("http://www.xn--hxajbheg2az3al.xn--jxalpdlp/", "xn--hxajbheg2az3al.xn--jxalpdlp"),
    ("http://xn--l-7sba6dbr.com/", "xn--l-7sba6dbr.com"),
    ("http://paypal.com/", None),  # the Latin name is another host
    ("http://xn--wgv71a119e.jp/", "xn--wgv71a119e.jp"),
    ("http://xn--fa-hia.example/", "xn--fa-hia.example"),
    ("http://fass.example/", None),
    ("http://a.dotted.xn--bcher-shop-9db.example/", "dotted.xn--bcher-shop-9db.example"),
    ("http://caf\udce9.example/", "caf\udce9.example"),  # as it is, on both sides
    ("http://xn--caf-dma.example/", None),
])
def test_domain_entries_match_every_spelling(idn_lists: tuple, url: str,
                                             entry: str | None) -> None:
    domains, _urls = idn_lists
    t = parse_target(url)
    assert t is not None
    hit = domains.lookup(t.host)
    assert (hit.entry if hit else None) == entry


@pytest.mark.parametrize(("url", "entry", "redirect"), [
    ("http://xn--strae-oqa.example/sperre/x", "xn--strae-oqa.example/sperre", None),
    ("http://STRAẞE.example/sperre", "xn--strae-oqa.example/sperre", None),
    ("http://xn--strae-oqa.example/frei", None, None),
    ("http://strasse.example/sperre", None, None),
    ("http://zürich.example/kurs/1", "xn--zrich-kva.example/kurs", "http://entry.test/zuerich"),
    (f"http://ZÜRICH{FW_DOT}example/kurs", "xn--zrich-kva.example/kurs",
     "http://entry.test/zuerich"),
    ("http://www.xn--kln-sna.example/dom", "www.xn--kln-sna.example/dom", None),
    ("http://www.köln.example:8080/dom/x", "www.xn--kln-sna.example/dom", None),
])
def test_url_entries_match_every_spelling(idn_lists: tuple, url: str, entry: str | None,
                                          redirect: str | None) -> None:
    _domains, urls = idn_lists
    t = parse_target(url)
    assert t is not None
    hit = urls.lookup(t)
    assert (hit.entry, hit.redirect) == (entry, redirect) if entry else hit is None


# ---------------------------------------------------------------- the helper, C and Python

CONF = """\
dbhome {db}
logdir {logs}
dest idn {{
    domainlist domains
    urllist urls
}}
acl {{
    default {{
        pass !idn all
        redirect http://block.test/?u=%u
    }}
}}
"""

# request line -> the exact reply (ERR: no change)
REPLIES = [
    ("http://xn--bcher-kva.example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://xn--bcher-kva.example/"'),
    ("http://www.BÜCHER.example/katalog 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://www.B%C3%9CCHER.example/katalog"'),
    (f"http://bücher{FW_DOT}example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://b%C3%BCcher%EF%BC%8Eexample/"'),
    (f"http://bücher{IDEO_DOT}example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://b%C3%BCcher%E3%80%82example/"'),
    ("http://b%C3%BCcher.example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://b%C3%BCcher.example/"'),
    ("http://münchen.example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://m%C3%BCnchen.example/"'),
    ("http://XN--MNCHEN-3YA.EXAMPLE/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://XN--MNCHEN-3YA.EXAMPLE/"'),
    ("http://www.xn--hxajbheg2az3al.xn--jxalpdlp/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://www.xn--hxajbheg2az3al.xn--jxalpdlp/"'),
    ("http://xn--l-7sba6dbr.com/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://xn--l-7sba6dbr.com/"'),
    ("http://paypal.com/ 10.0.0.1/- - GET", "ERR"),
    ("xn--bcher-kva.example:443 10.0.0.1/- - CONNECT",
     'OK status=302 url="http://block.test/?u=xn--bcher-kva.example:443"'),
    ("B\u00dcCHER.example:443 10.0.0.1/- - CONNECT",
     'OK status=302 url="http://block.test/?u=B%C3%9CCHER.example:443"'),
    ("http://xn--strae-oqa.example/sperre/x 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://xn--strae-oqa.example/sperre/x"'),
    ("http://xn--strae-oqa.example/frei 10.0.0.1/- - GET", "ERR"),
    ("http://zürich.example/kurs 10.0.0.1/- - GET",
     'OK rewrite-url="http://entry.test/zuerich"'),
    ("http://xn--zrich-kva.example/kurs 10.0.0.1/- - GET",
     'OK rewrite-url="http://entry.test/zuerich"'),
    ("http://caf\udce9.example/ 10.0.0.1/- - GET",
     'OK rewrite-url="http://block.test/?u=http://caf%E9.example/"'),
    ("http://xn--caf-dma.example/ 10.0.0.1/- - GET", "ERR"),
    # cannot be encoded (a full-width colon maps to ":"): looked up as it is
    ("http://bücher.example\uff1a8080/ 10.0.0.1/- - GET", "ERR"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["c-fast-path", "python"])
@pytest.mark.parametrize("kind", ["text", "compiled"])
def test_helper_replies(tmp_path: Path, fast: bool, kind: str) -> None:
    """Exact replies, whichever path answers and whichever form the lists are in."""
    db, logs = tmp_path / "db", tmp_path / "logs"
    db.mkdir()
    logs.mkdir()
    (db / "domains").write_bytes(DOMAIN_LIST)
    (db / "urls").write_bytes(URL_LIST)
    if kind == "compiled":
        compile_list("domain", str(db / "domains"))
        compile_list("url", str(db / "urls"))
    conf = tmp_path / "sg.conf"
    conf.write_text(CONF.format(db=db, logs=logs))
    helper = Loop(runtime.build(runtime.Options(config=str(conf), fast_path=fast)))
    try:
        lines = [line.encode("utf-8", "surrogateescape") for line, _ in REPLIES]
        got = helper.batch(lines).decode("utf-8", "surrogateescape").split("\n")
        assert got == [reply for _, reply in REPLIES] + [""]
        if fast and kind == "compiled":
            # C answers the lines that are ASCII once %-decoded, and hands the others
            # to Python.
            assert helper.rt.fast is not None
            python = sum(not unquote(line).isascii() for line, _ in REPLIES)
            assert (python, helper.rt.fast.python_lines) == (9, 9)
    finally:
        helper.rt.close()


def test_welcome_page_with_an_idn_host_is_never_welcomed(tmp_path: Path) -> None:
    """The welcome redirect and exempt hosts written in Unicode exempt the punycode host."""
    conf = tmp_path / "sg.conf"
    conf.write_text(
        f"dbhome {tmp_path}\nlogdir {tmp_path}\n"
        "acl {\n    default {\n        pass all\n    }\n}\n"
        "welcome {\n    redirect http://willkommen.bücher-portal.example/?next=%u\n"
        "    capacity 1000\n    exempt INFO.MÜNCHEN.example\n}\n", encoding="utf-8")
    rt = runtime.build(runtime.Options(config=str(conf)))
    helper = Loop(rt)
    try:
        assert rt.welcome is not None
        assert rt.welcome.settings.exempt_hosts == {
            "willkommen.xn--bcher-portal-dlb.example", "info.xn--mnchen-3ya.example"}
        lines = [b"http://willkommen.xn--bcher-portal-dlb.example/ 10.0.0.7/- - GET",
                 b"http://info.xn--mnchen-3ya.example/ 10.0.0.7/- - GET",
                 b"http://news.example/ 10.0.0.7/- - GET"]
        assert helper.batch(lines).decode().split("\n") == [
            "ERR", "ERR",
            # the welcome page as written in the configuration
            'OK status=302 url="http://willkommen.bücher-portal.example/'
            '?next=http://news.example/"', ""]
    finally:
        rt.close()


def test_idna_is_imported_only_for_a_name_that_is_not_ascii(tmp_path: Path) -> None:
    """ASCII lists and requests load neither core.idn nor the idna package (start-up
    cost); the first Unicode host does."""
    (tmp_path / "domains").write_text("xn--bcher-kva.example\nbad.example\n")
    conf = tmp_path / "sg.conf"
    conf.write_text(f"dbhome {tmp_path}\nlogdir {tmp_path}\n"
                    "dest bad {\n    domainlist domains\n}\n"
                    "acl {\n    default {\n        pass !bad all\n"
                    "        redirect http://block.test/\n    }\n}\n")
    probe = (
        "import sys\n"
        "from squidguard_bloom.helper import runtime\n"
        "from squidguard_bloom.helper.loop import Loop\n"
        "h = Loop(runtime.build(runtime.Options(config=sys.argv[1])))\n"
        "out = [h.batch([b'http://XN--BCHER-KVA.example/ 10.0.0.1/- - GET'])]\n"
        "out.append(sorted({'idna', 'squidguard_bloom.core.idn'} & set(sys.modules)))\n"
        "out.append(h.batch(['http://b\\u00fccher.example/ 10.0.0.1/- - GET'.encode()]))\n"
        "out.append(sorted({'idna', 'squidguard_bloom.core.idn'} & set(sys.modules)))\n"
        "print(out)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(conf)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    block = b'OK rewrite-url="http://block.test/"\n'
    assert done.stdout.strip() == repr(
        [block, [], block, ["idna", "squidguard_bloom.core.idn"]])


@pytest.mark.parametrize("fast", [True, False], ids=["c-fast-path", "python"])
def test_expressions_see_the_host_in_both_forms(tmp_path: Path, fast: bool) -> None:
    """An expression is not converted: it matches the host as sent (as in squidGuard)
    and the punycode host, so converting hosts never lets through what it blocked."""
    (tmp_path / "expressions").write_text("köln-expr\\.\n^xn--[a-z0-9-]+\\.example/punycode\n",
                                          encoding="utf-8")
    conf = tmp_path / "sg.conf"
    conf.write_text(f"dbhome {tmp_path}\nlogdir {tmp_path}\n"
                    "dest e {\n    expressionlist expressions\n}\n"
                    "acl {\n    default {\n        pass !e all\n"
                    "        redirect http://block.test/\n    }\n}\n")
    helper = Loop(runtime.build(runtime.Options(config=str(conf), fast_path=fast)))
    block = 'OK rewrite-url="http://block.test/"'
    try:
        cases = [("http://köln-expr.example/", block),
                 ("http://KÖLN-EXPR.example:8080/", block),
                 ("http://xn--kln-expr-n4a.example/", "ERR"),
                 ("http://bücher.example/punycode", block),
                 ("http://xn--bcher-kva.example/punycode", block),
                 ("http://buecher.example/punycode", "ERR")]
        lines = [f"{url} 10.0.0.1/- - GET".encode() for url, _ in cases]
        assert helper.batch(lines).decode().split("\n") == [r for _, r in cases] + [""]
    finally:
        helper.rt.close()


def test_ufurl_keeps_the_host_as_it_came_only_when_it_was_converted() -> None:
    t = parse_target(f"http://www.BÜCHER{FW_DOT}example:8080/x?y")
    assert t is not None
    assert (t.furl, t.ufurl) == ("www.xn--bcher-kva.example:8080/x?y",
                                 f"www.bücher{FW_DOT}example:8080/x?y")
    for url in ("http://xn--bcher-kva.example/x", "http://caf\udce9.example/"):
        t = parse_target(url)
        assert t is not None and t.ufurl == ""
