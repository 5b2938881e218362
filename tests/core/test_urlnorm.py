"""URL normalisation: every spelling of a URL looks up what its canonical form does.

squidGuard 1.6 lets a blacklisted host through when it is spelt
``a@b@host``, ``host..``, ``host.:80``, ``host%2520``... (docs/squidguard.md
§6, §14, §15).  parse_target must turn each such spelling into the host
(and path) of the canonical URL, while keeping squidGuard's cosmetic
fields (``orig``) as they were.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squidguard_bloom.core.urlnorm import Target, parse_target

# (spelling, host, surl or None when only the host is meant, dotted)
EVASIONS: list[tuple[str, str, str | None, bool]] = [
    # canonical forms
    ("http://badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/", "badsite.com", "badsite.com/", False),
    # case
    ("HTTP://BADSITE.COM/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://BadSite.Com/Path/X", "badsite.com", "badsite.com/path/x", False),
    # trailing dots, before a port too, two of them
    ("http://badsite.com./path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com../path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com.:80/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com..:8080/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%2e%2e/path/x", "badsite.com", "badsite.com/path/x", False),
    # userinfo: the host follows the last @
    ("http://user:pw@badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://evil.com@badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://a@b@badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://a@b@c@badsite.com:81/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com@evil.com/", "evil.com", "evil.com/", False),
    ("http://badsite.com:80@evil.com/", "evil.com", "evil.com/", False),
    # ports
    ("http://badsite.com:80/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com:8080/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com:/path/x", "badsite.com", "badsite.com/path/x", False),
    # %-encoding in the host, single and double
    ("http://badsite%2ecom/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite%2Ecom/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://%62adsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://%42ADSITE.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite%252ecom/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://%2562adsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%2e/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%20/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://bad%20site.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%2f/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%3a80/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com%252f/path/x", "badsite.com", None, False),
    ("http://badsite.com%253a80/path/x", "badsite.com", None, False),
    ("http://evil.com%2540badsite.com/path/x", "badsite.com", None, False),
    # ? # \ right after the host
    ("http://badsite.com?x=1", "badsite.com", "badsite.com/?x=1", False),
    ("http://badsite.com#frag", "badsite.com", None, False),
    ("http://badsite.com\\path\\x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com:81?x=1", "badsite.com", "badsite.com/?x=1", False),
    # repeated slashes (not in the query)
    ("http://badsite.com//path//x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com///path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/path/x?a=//b", "badsite.com", "badsite.com/path/x?a=//b", False),
    # dot segments
    ("http://badsite.com/./path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/path/./x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/other/../path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/../../path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/path/%2e%2e/path/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/a%2f..%2fpath/x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com\\z\\..\\path\\x", "badsite.com", "badsite.com/path/x", False),
    ("http://badsite.com/path/x/y/..", "badsite.com", "badsite.com/path/x/", False),
    # numeric IPv4 spellings
    ("http://127.0.0.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://2130706433/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://0x7f000001/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://0X7F000001/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://017700000001/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://0177.0.0.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://0x7f.0.0.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://127.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://0x7f.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://127.0.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://127.0.0.1./path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://127.0.0.1:8080/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://%31%32%37.0.0.1/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    # IPv6 literals, v4-mapped
    ("http://[::1]/path/x", "::1", "::1/path/x", True),
    ("http://[0:0:0:0:0:0:0:1]/path/x", "::1", "::1/path/x", True),
    ("http://[0000::0001]:8080/path/x", "::1", "::1/path/x", True),
    ("http://[2001:DB8::A]/path/x", "2001:db8::a", "2001:db8::a/path/x", True),
    ("http://[2001:db8:0:0:0:0:0:a]/path/x", "2001:db8::a", "2001:db8::a/path/x", True),
    ("http://[::ffff:127.0.0.1]/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://[::ffff:7f00:1]/path/x", "127.0.0.1", "127.0.0.1/path/x", True),
    ("http://[::1%25eth0]/path/x", "::1", "::1/path/x", True),
    # CONNECT host:port, scheme-less, other schemes
    ("badsite.com:443", "badsite.com", "badsite.com", False),
    ("BADSITE.COM.:443", "badsite.com", "badsite.com", False),
    ("www.badsite.com:443", "www.badsite.com", "badsite.com", False),
    ("127.0.0.1:443", "127.0.0.1", "127.0.0.1", True),
    ("[::1]:443", "::1", "::1", True),
    ("badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("https://badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("ftp://badsite.com/path/x", "badsite.com", "badsite.com/path/x", False),
    ("ftp://anonymous@badsite.com:21/path/x", "badsite.com", "badsite.com/path/x", False),
]


def _ids(rows: list[tuple[str, str, str | None, bool]]) -> list[str]:
    return [r[0] for r in rows]


@pytest.mark.parametrize(("url", "host", "surl", "dotted"), EVASIONS, ids=_ids(EVASIONS))
def test_spelling_looks_up_the_canonical_host_and_path(
    url: str, host: str, surl: str | None, dotted: bool
) -> None:
    """Each spelling gives the host (and stripped url) a browser or Squid would use."""
    t = parse_target(url)
    assert t is not None
    assert t.host == host
    assert t.dotted is dotted
    if surl is not None:
        assert t.surl == surl
        # furl is surl's path behind the full host and its port, nothing else
        path = surl[surl.find("/") :] if "/" in surl else ""
        assert t.furl.endswith(path)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://badsite.com:8080/x", 8080),
        ("http://badsite.com.:81/x", 81),
        ("http://u@badsite.com:82/x", 82),
        ("badsite.com:443", 443),
        ("http://[::1]:8443/x", 8443),
        ("http://badsite.com/x", None),
        ("http://badsite.com:/x", None),
    ],
)
def test_port(url: str, port: int | None) -> None:
    """The port is the number after the host, when there is one."""
    t = parse_target(url)
    assert t is not None
    assert t.port == port


# ---------------------------------------------------------------- cosmetic fields


@pytest.mark.parametrize(
    ("url", "orig"),
    [
        ("http://Bad%2Esite.com/A%20B%2541", "http://Bad.site.com/A%20B%41"),
        ("http://badsite.com/a%2fb", "http://badsite.com/a/b"),
        ("http://badsite.com/%7Euser/%20x", "http://badsite.com/~user/%20x"),
        ("HTTP://A@B@BadSite.COM./X", "HTTP://A@B@BadSite.COM./X"),
        ("http://badsite.com%00.evil.com/", "http://badsite.com"),
        ("http://evil.com/a%00b", "http://evil.com/a"),
        ("http://x.com/\u00e9t\u00e9", "http://x.com/\u00e9t\u00e9"),
    ],
)
def test_orig_is_decoded_once_like_squidguard(url: str, orig: str) -> None:
    """orig keeps case, decodes once, keeps %20 and ends at %00 (squidGuard's %u)."""
    t = parse_target(url)
    assert t is not None
    assert t.orig == orig


def test_nul_truncation_decides_the_host() -> None:
    """%00 ends the URL before the host is split, as in squidGuard."""
    a = parse_target("http://badsite.com%00.evil.com/")
    b = parse_target("http://evil.com%00.badsite.com/")
    assert a is not None and b is not None
    assert (a.host, b.host) == ("badsite.com", "evil.com")


@pytest.mark.parametrize(
    ("url", "surl"),
    [
        ("http://www.badsite.com/a", "badsite.com/a"),
        ("http://www7.badsite.com/a", "badsite.com/a"),
        ("http://web.badsite.com/a", "badsite.com/a"),
        ("http://ftp12.badsite.com/a", "badsite.com/a"),
        ("http://www.www.badsite.com/a", "www.badsite.com/a"),
        ("http://wwwx.badsite.com/a", "wwwx.badsite.com/a"),
        ("http://xwww.badsite.com/a", "xwww.badsite.com/a"),
        ("http://www.badsite.com:8080/a", "badsite.com/a"),
        ("http://www./a", "www/a"),
    ],
)
def test_surl_strips_one_www_web_ftp_prefix_and_the_port(url: str, surl: str) -> None:
    """surl drops one www/web/ftp(+digits) label and the port; host keeps them."""
    t = parse_target(url)
    assert t is not None
    assert t.surl == surl
    assert t.host.endswith(surl.split("/", 1)[0])


@pytest.mark.parametrize(
    ("url", "furl"),
    [
        ("http://www.badsite.com:8080/a/b?c", "www.badsite.com:8080/a/b?c"),
        ("http://u:p@badsite.com:81/a", "badsite.com:81/a"),
        ("badsite.com:443", "badsite.com:443"),
        ("http://badsite.com/a?q=%41", "badsite.com/a?q=a"),
    ],
)
def test_furl_keeps_www_and_port(url: str, furl: str) -> None:
    """furl is host, port, path and query, lower-cased, without scheme or userinfo."""
    t = parse_target(url)
    assert t is not None
    assert t.furl == furl


@pytest.mark.parametrize(
    "url", ["http:///x", "http:////badsite.com/", "//x", "//badsite.com/", "", "http://", "...",
            "http://%2e/", "http://user@/x"]
)
def test_no_host_is_none(url: str) -> None:
    """A URL without a host gives None (squidGuard answers BH)."""
    assert parse_target(url) is None


# ---------------------------------------------------------------- properties

_LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_HOST = st.lists(_LABEL, min_size=2, max_size=4).map(".".join)
_PATH = st.lists(st.from_regex(r"[a-z0-9_~-]{1,6}", fullmatch=True), max_size=3).map(
    lambda segs: "/" + "/".join(segs)
)


@st.composite
def _spelling(draw: st.DrawFn, host: str, path: str) -> str:
    """A random combination of the evasions above around host and path."""
    h = host
    if draw(st.booleans()):
        h = "".join(c.upper() if draw(st.booleans()) else c for c in h)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(h) - 1))
        c = h[i]
        enc = f"%{ord(c):02x}"
        if draw(st.booleans()):
            enc = "%25" + enc[1:]
        h = h[:i] + enc + h[i + 1 :]
    h += "." * draw(st.integers(0, 2))
    if draw(st.booleans()):
        h += f":{draw(st.integers(1, 65535))}"
    user = draw(st.sampled_from(["", "u@", "u:p@", "a@b@", "evil.com@"]))
    p = path
    if draw(st.booleans()):
        p = p.replace("/", draw(st.sampled_from(["//", "/./", "\\", "/x/../"])))
    scheme = draw(st.sampled_from(["http://", "HTTPS://", "ftp://", ""]))
    if not scheme and user:
        scheme = "http://"
    return scheme + user + h + p


@given(data=st.data(), host=_HOST, path=_PATH)
def test_random_spellings_agree_with_the_canonical_url(
    data: st.DataObject, host: str, path: str
) -> None:
    """Any mix of the evasions looks up the canonical host and path."""
    url = data.draw(_spelling(host, path))
    t = parse_target(url)
    assert t is not None, url
    assert t.host == host, url
    canon = parse_target(f"http://{host}{path}")
    assert canon is not None
    assert t.surl == canon.surl, url


@given(st.text())
def test_parse_target_never_raises_on_text(text: str) -> None:
    """Any text gives a Target or None, never an exception."""
    t = parse_target(text)
    assert t is None or isinstance(t, Target)


@given(st.text(alphabet="%:/@.?#\\[]0123456789abcdefxABCDEF \t\x00"))
def test_parse_target_never_raises_on_url_characters(text: str) -> None:
    """URL-ish garbage (escapes, brackets, ports, dots) gives a Target or None."""
    t = parse_target(text)
    assert t is None or (isinstance(t, Target) and t.host != "")


@given(st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_parse_target_never_raises_on_raw_bytes(text: str) -> None:
    """Lines Squid passes through as bytes (decoded with surrogateescape) never crash it."""
    t = parse_target(text)
    assert t is None or isinstance(t, Target)
