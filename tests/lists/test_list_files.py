"""List files: squidGuard's text format, and the lookups built from it.

The format rules are those of docs/squidguard.md §8 (observed from the real
squidGuard 1.6); the lookups are §7 with the deliberate fixes of
docs/differences.md (real suffix and prefix matches, leading-dot entries).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.lookup import DomainList, ExpressionList, Match, UrlList
from squidguard_bloom.core.lists.text import domain_key, entries, expression_lines, url_key
from squidguard_bloom.core.urlnorm import Target, parse_target


def _t(url: str) -> Target:
    t = parse_target(url)
    assert t is not None
    return t


def _keys(text: str) -> list[str]:
    return [key for _n, key, _r in entries(text)]


# ---------------------------------------------------------------- text format


def test_comments_only_in_column_one() -> None:
    """A '#' in column 1 is a comment; an indented '#' starts a (useless) key."""
    text = "#gone.com\n  #kept.com\n\t#tab.com\nreal.com\n"
    assert _keys(text) == ["#kept.com", "#tab.com", "real.com"]


def test_blank_and_whitespace_lines_are_skipped() -> None:
    """Empty lines and lines of blanks give no entry, wherever they are."""
    text = "\n   \n\t\t\na.com\n \t \n\nb.com\n\n"
    assert _keys(text) == ["a.com", "b.com"]


def test_line_numbers_count_every_line() -> None:
    """Line numbers are file lines (1-based), comments and blanks included."""
    text = "# head\n\na.com\n  \nb.com"
    assert [n for n, _k, _r in entries(text)] == [3, 5]


def test_crlf_lines_read_like_lf_lines() -> None:
    """A CRLF file gives the same keys and redirects as its LF twin."""
    lf = "# c\na.com\n\n  \nb.com http://r/\n+c.com\n"
    crlf = lf.replace("\n", "\r\n")
    assert list(entries(crlf)) == list(entries(lf))
    assert all("\r" not in k and (r is None or "\r" not in r) for _n, k, r in entries(crlf))


def test_plus_and_minus_prefixes_are_dropped_and_the_entry_added() -> None:
    """'+x' and '-x' both add x (the .diff meaning applies to -u only)."""
    assert _keys("+plus.com\n-minus.com\n  +indented.com\n") == [
        "plus.com", "minus.com", "indented.com"]


def test_keys_are_lower_cased_and_leading_blanks_skipped() -> None:
    """The key is the first word, lower-cased."""
    assert _keys("  MiXeD.CoM\n\tTAB.org\n") == ["mixed.com", "tab.org"]


@pytest.mark.parametrize(
    ("line", "redirect"),
    [
        ("tracker.io http://per-entry/?u=%u", "http://per-entry/?u=%u"),
        ("commented.net # trailing text", "# trailing text"),
        ("tab.com\textra", "extra"),
        ("two.com   a b  c  ", "a b  c"),
        ("bare.com", None),
        ("bare.com   ", None),
        ("crlf.com http://r/\r", "http://r/"),
    ],
)
def test_rest_of_line_is_the_entry_redirect(line: str, redirect: str | None) -> None:
    """Whatever follows the key (after blanks) is that entry's own redirect."""
    ((_n, _key, got),) = list(entries(line + "\n"))
    assert got == redirect


def test_duplicates_overwrite_earlier_entries() -> None:
    """A later line for the same key replaces the earlier one, redirect included."""
    d = DomainList("d", "dup.com http://first/\nDUP.com http://second/\nonce.com\n")
    assert len(d) == 2
    assert d.lookup("dup.com") == Match("dup.com", "http://second/")
    u = UrlList("u", "dup.com/p http://first/\ndup.com/p\n")
    assert u.lookup(_t("http://dup.com/p")) == Match("dup.com/p", None)


@pytest.mark.parametrize(
    ("raw", "key"),
    [(".leading-dot.net", "leading-dot.net"), ("trailing.net.", "trailing.net"),
     ("..two.net", "two.net"), ("plain.net", "plain.net")],
)
def test_domain_key_drops_leading_and_trailing_dots(raw: str, key: str) -> None:
    """Squid-style '.domain' entries are stored as 'domain'."""
    assert domain_key(raw) == key


def test_leading_dot_entry_blocks_domain_and_subdomains() -> None:
    """'.leading-dot.net' blocks itself and below (squidGuard: nothing at all)."""
    d = DomainList("d", ".leading-dot.net\n")
    assert d.lookup("leading-dot.net") == Match("leading-dot.net", None)
    assert d.lookup("www.leading-dot.net") == Match("leading-dot.net", None)
    assert d.lookup("xleading-dot.net") is None


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("urlsite.com/blocked", "urlsite.com/blocked"),
        ("http://urlsite.com/blocked", "urlsite.com/blocked"),
        ("https://u:p@urlsite.com:8443/blocked", "urlsite.com/blocked"),
        ("user@urlsite.com/blocked", "urlsite.com/blocked"),
        ("urlsite.com:81/blocked", "urlsite.com/blocked"),
        ("urlsite.com./blocked", "urlsite.com/blocked"),
        (".urlsite.com/blocked", "urlsite.com/blocked"),
        ("urlsite.com/a:b@c", "urlsite.com/a:b@c"),
        ("urlsite.com", "urlsite.com"),
    ],
)
def test_url_key_strips_scheme_userinfo_port(raw: str, key: str) -> None:
    """Url entries keep host and path only; ':' and '@' in the path stay."""
    assert url_key(raw) == key


@pytest.mark.parametrize(
    "url",
    ["http://urlsite.com/blocked", "https://www.urlsite.com/blocked/x", "urlsite.com:443/blocked"],
)
@pytest.mark.parametrize(
    "entry",
    ["http://urlsite.com/blocked", "user:pw@urlsite.com:8080/blocked", ".urlsite.com/blocked"],
)
def test_url_entries_with_scheme_userinfo_port_block(entry: str, url: str) -> None:
    """An entry written as a full URL blocks (squidGuard: never matches, or strips only some)."""
    u = UrlList("u", entry + "\n")
    assert u.lookup(_t(url)) == Match("urlsite.com/blocked", None)


# ---------------------------------------------------------------- domain lookups

NESTED = "a.com\nb.a.com\nc.com\naa.c.com\nzz.c.com\nd.net\nbadsite.com\nzzz.badsite.com\n"


@pytest.mark.parametrize(
    ("host", "entry"),
    [
        ("a.com", "a.com"),
        ("x.a.com", "a.com"),  # squidGuard: passes
        ("b.a.com", "b.a.com"),
        ("x.b.a.com", "b.a.com"),
        ("x.c.com", "c.com"),  # squidGuard: passes
        ("ab.c.com", "c.com"),  # squidGuard: passes
        ("zzz.c.com", "c.com"),  # squidGuard: passes
        ("aa.c.com", "aa.c.com"),
        ("y.zz.c.com", "zz.c.com"),
        ("x.d.net", "d.net"),
        ("www.badsite.com", "badsite.com"),  # squidGuard: passes (§14)
        ("aaa.badsite.com", "badsite.com"),  # squidGuard: passes
        ("zzzz.badsite.com", "badsite.com"),  # squidGuard: passes
        ("zzz.badsite.com", "zzz.badsite.com"),
    ],
)
def test_nested_entries_block_every_subdomain(host: str, entry: str) -> None:
    """The deepest listed suffix of the host is the match, nested entries or not."""
    assert DomainList("d", NESTED).lookup(host) == Match(entry, None)


@pytest.mark.parametrize(
    "host",
    ["com", "xa.com", "a.com.evil.org", "badsite.com.evil.com", "c.co", "net", "evil.com",
     "aa.c.com.x"],
)
def test_domain_match_is_on_label_boundaries(host: str) -> None:
    """A listed name inside or at the start of another name does not match it."""
    assert DomainList("d", NESTED).lookup(host) is None


def test_addresses_match_exactly() -> None:
    """IP hosts match listed addresses only, never by a partial suffix."""
    d = DomainList("d", "10.9.8.7\n9.8.7\n2001:db8::1\n")
    assert d.lookup("10.9.8.7") == Match("10.9.8.7", None)
    assert d.lookup("2001:db8::1") == Match("2001:db8::1", None)
    assert d.lookup("1.10.9.8.7") is None
    assert d.lookup("11.9.8.7") is None


def test_per_entry_redirect_comes_with_the_match() -> None:
    """The match of a subdomain carries its listed parent's redirect."""
    d = DomainList("d", "tracker.io http://per-entry/?u=%u\n")
    assert d.lookup("a.b.tracker.io") == Match("tracker.io", "http://per-entry/?u=%u")


# ---------------------------------------------------------------- url lookups

URLS = ("urlsite.com/blocked\nq.com/a?b=1\nwww.wsite.com/p\nnested.com/a\nnested.com/a/z\n"
        "p.com/x\np.com/x/y\n")


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        *((url, "urlsite.com/blocked") for url in (
            "http://urlsite.com/blocked", "http://urlsite.com/blocked/deeper",
            "http://urlsite.com/blockedness", "http://www.urlsite.com/blocked",
            "http://www7.urlsite.com/blocked", "http://web.urlsite.com/blocked",
            "ftp://ftp.urlsite.com/blocked", "http://urlsite.com:81/blocked",
            "http://user@urlsite.com/blocked", "http://urlsite.com//blocked",
            "http://urlsite.com/BLOCKED", "http://urlsite.com/%62locked",
            "https://urlsite.com/blocked", "http://urlsite.com/./blocked",
            "http://urlsite.com/x/../blocked")),
        ("http://q.com/a?b=1", "q.com/a?b=1"), ("http://q.com/a?b=10", "q.com/a?b=1"),
        ("http://www.wsite.com/p", "www.wsite.com/p"),
        ("http://www.wsite.com/p2", "www.wsite.com/p"),
        ("http://nested.com/a/b", "nested.com/a"), ("http://nested.com/a/z/1", "nested.com/a"),
        ("http://p.com/x/1", "p.com/x"), ("http://p.com/x/", "p.com/x"),
    ],
)
def test_url_entry_is_a_prefix_of_the_request(url: str, entry: str) -> None:
    """An entry matches every request whose surl or furl starts with it."""
    assert UrlList("u", URLS).lookup(_t(url)) == Match(entry, None)


@pytest.mark.parametrize(
    "url",
    [
        "http://urlsite.com/", "http://urlsite.com/block", "http://wwwx.urlsite.com/blocked",
        "http://www.www.urlsite.com/blocked", "urlsite.com:443", "http://q.com/a?b=2",
        "http://wsite.com/p", "http://web.wsite.com/p", "http://nested.com/b",
        "http://xurlsite.com/blocked", "http://sub.urlsite.com/blocked",
    ],
)
def test_url_entry_does_not_match_elsewhere(url: str) -> None:
    """Other hosts, shorter paths and other queries are not matched."""
    assert UrlList("u", URLS).lookup(_t(url)) is None


def test_url_nested_entries_give_the_shorter_prefix() -> None:
    """With 'nested.com/a' and 'nested.com/a/z' listed, a request under both gets the shorter."""
    u = UrlList("u", URLS)
    assert u.lookup(_t("http://nested.com/a/b")) == Match("nested.com/a", None)
    assert u.lookup(_t("http://nested.com/a/z/q")) == Match("nested.com/a", None)


# ---------------------------------------------------------------- expressions


def test_expressions_are_case_insensitive_and_searched_in_furl() -> None:
    """Patterns match the lower-cased furl anywhere; '^' anchors at the host."""
    e = ExpressionList("e", "(^|[-./])sex[-./0-9]\n\\.(jpe?g|png)$\n^www\\.\n")
    assert e.lookup(_t("http://SEX.com/").furl) == Match("(^|[-./])sex[-./0-9]", None)
    assert e.lookup(_t("http://x.org/nude.JPG").furl) == Match("\\.(jpe?g|png)$", None)
    assert e.lookup(_t("http://www.x.org/").furl) == Match("^www\\.", None)
    assert e.lookup(_t("http://x.org/?q=www.").furl) is None
    assert e.lookup(_t("http://essex.com/").furl) is None
    assert ExpressionList("e", "SEX\n").lookup("sex.com/") == Match("SEX", None)


def test_expressions_are_tried_in_file_order() -> None:
    """When several patterns match, the first line's pattern is reported."""
    e = ExpressionList("e", "b\na\nab\n")
    assert e.lookup("xab") == Match("b", None)
    assert e.lookup("xa") == Match("a", None)


@pytest.mark.parametrize(
    ("pattern", "hits", "misses"),
    [
        ("ad[\\d]s", ["adds.com/", "ad\\s.com/"], ["ad5s.com/", "ads.com/"]),
        ("x[\\w]y", ["xwy", "x\\y"], ["xay", "x_y"]),
        ("a[[:digit:]]b", ["a5b"], ["adb", "a:b"]),
        ("a\\.b", ["a.b"], ["axb"]),
    ],
)
def test_backslash_in_brackets_is_literal(pattern: str, hits: list[str], misses: list[str]) -> None:
    """POSIX brackets: '\\' is an ordinary character there, not an escape."""
    e = ExpressionList("e", pattern + "\n")
    assert [h for h in hits if e.lookup(h) is None] == []
    assert [m for m in misses if e.lookup(m) is not None] == []


def test_hash_lines_are_patterns() -> None:
    """Expression lists have no comments: '#x' is the regex '#x'."""
    e = ExpressionList("e", "#comment\n")
    assert len(e) == 1
    assert e.lookup("x.com/?q=#comment") == Match("#comment", None)
    assert e.lookup("x.com/comment") is None


@pytest.mark.parametrize(
    "text", ["zq\n\nqz\n", "zq\r\n\r\nqz\r\n", "zq\r\n \r\n\tqz\r\n", "\r\n"]
)
def test_blank_lines_do_not_match_everything(text: str) -> None:
    """A blank line (LF or CRLF) is no pattern; squidGuard's CRLF blank matches every URL."""
    e = ExpressionList("e", text)
    assert e.lookup("innocent.org/page") is None


def test_crlf_patterns_lose_their_cr() -> None:
    """'a$\\r\\n' is the pattern 'a$', anchored at the end of the URL."""
    e = ExpressionList("e", "\\.exe$\r\n")
    assert e.lookup("x.com/setup.exe") == Match("\\.exe$", None)
    assert [p for _n, p in expression_lines("\\.exe$\r\n")] == ["\\.exe$"]


@pytest.mark.parametrize(
    ("text", "line"),
    [("ok\n(unclosed\n", 2), ("a\n\nb\n[z-a]\n", 4), ("*x\n", 1), ("ok\r\n(a)\\1\r\n", 2)],
)
def test_invalid_regex_names_file_and_line(text: str, line: int) -> None:
    """A bad pattern is a ListError naming file:line and what to do (squidGuard crashes)."""
    with pytest.raises(ListError) as err:
        ExpressionList("lists/porn/expressions", text)
    msg = str(err.value)
    assert msg.startswith(f"lists/porn/expressions:{line}: ")
    assert "fix or delete" in msg


def _entries_by_regex(text: str) -> list[tuple[int, str, str | None]]:
    """entries() as it read every line before its shortcut for blank-free lines."""
    out = []
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw or raw[0] == "#":
            continue
        line = raw.removesuffix("\r").lstrip(" \t")
        if not line:
            continue
        if line[0] in "+-":
            line = line[1:]
        parts = re.split(r"[ \t]+", line, maxsplit=1)
        key = parts[0].lower()
        if key:
            redirect = parts[1].strip(" \t") if len(parts) > 1 else ""
            out.append((number, key, redirect or None))
    return out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aB.-+# \t\r\n/:", max_size=120))
def test_entries_shortcut_reads_like_the_regex(text: str) -> None:
    """The shortcut for lines without blanks changes no entry the list has."""
    assert list(entries(text)) == _entries_by_regex(text)
