"""Hostile request lines for the helper, a configuration that uses everything, and a checker.

Shared by the fuzz test (tests/helper/test_fuzz.py, 50,000+ lines) and
``bench/fuzz_helper.py`` (1,000,000+ lines).  :func:`request_lines` mixes
random bytes with the URL pieces that broke helpers before (``%25``,
``%ff``, raw ``\\xff``, ``[::1]``, ``a@b@``, channel-IDs, tabs, CRs, NULs,
half UTF-8 sequences, quotes and backslashes) into lines shaped like
Squid's; :func:`write_setup` writes a ``squidGuard.conf`` with every source
kind, domain/url/expression lists (compiled and text), rewrites, every
template code, a welcome block and logs; :func:`check_replies` checks one
well-formed reply per line, in order, each echoing its line's channel-ID.

Everything is seeded: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

#: Dangerous shapes :func:`shapes` recognises; a corpus lacking one of them is too weak.
SHAPES = ("non-utf8 byte", "%ff in url", "%25 in url", "ipv6 literal", "several @",
          "channel-id", "tab", "cr inside", "nul", "control byte", "bad utf-8 user",
          "bad utf-8 client", "quote or backslash", "empty line", "no method",
          "listed domain", "listed url", "expression hit", "rewrite hit", "connect", "idn")


def _u(text: str) -> bytes:
    return text.encode("utf-8")


LISTED_DOMAINS = (b"bad.example", b"ads.example.net", b"tracker.example.org", b"10.6.6.6",
                  _u("b\u00fccher.example"), b"caf\xe9.example")
LISTED_URLS = (b"shop.example/ads", b"news.example/a/b", b"site.example:8080/p",
               b"site.example/q?x=1")
HOSTS = (*LISTED_DOMAINS, b"www.bad.example", b"sub.ads.example.net", b"shop.example",
         b"www.shop.example", b"news.example", b"site.example", b"good.example", b"old.example",
         b"white.example", b"casino12-x.example", b"[::1]", b"[2001:db8::7]",
         b"[::ffff:10.6.6.6]", b"[fe80::1%25eth0]", b"127.0.0.1", b"0x7f.1", b"2130706433",
         b"xn--bcher-kva.example", _u("B\u00dcCHER.example"), _u("b\u00fccher\uff0eexample"),
         b"welcome.example", b"block.example", b"exempt.example", b"BAD.EXAMPLE",
         b"bad.example.", b"b%61d.example", b"bad%2eexample", b"%62ad.example",
         b"bad.example%2f", b"x%2540bad.example", b"bad.example%ff", b"\xffbad.example",
         b"caf%e9.example", b"x\xff.example", b"")
#: Raw bytes (\xNN: not UTF-8 on their own) and text pieces (UTF-8) for paths and hosts.
PIECES = (b"%25", b"%2525", b"%ff", b"%FF", b"%fe%ff", b"%c3", b"%c3%bc", b"%00", b"%0a",
          b"%0d", b"%20", b"%22", b"%5c", b"%u", b"%", b"%%", b"%zz", b"@", b"a@b@", b":", b"::",
          b"[", b"]", b"[::1]", b"#", b"?", b"&", b"=", b"/", b"//", b"/./", b"/../", b"\\",
          b'"', b"'", b"<", b">", b"`", b"utm_source=", b"utm_x=1&", b"ads", b"warez", b"porn",
          b"shop", b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xc3\xbc",
          b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\t", b" ", b"\r", b"\x00", b"\x01",
          b"\x1b", b"\x7f", _u("\u00e9"), _u("\u2028"), _u("\ufeff"), _u("\U0001f600"),
          _u("\u0130"), _u("\u212a"))
CLIENTS = (b"10.0.0.5", b"10.9.9.9", b"10.9.8.1", b"192.168.1.20", b"192.168.1.200",
           b"172.16.3.4", b"10.2.2.2", b"10.3.3.3", b"10.0.1.5", b"8.8.8.8", b"::1",
           b"2001:db8::5", b"::ffff:10.0.0.5", b"010.0.0.5", b"10.1", b"-", b"", b"0.0.0.0",
           b"255.255.255.255", b"10.0.0.256", b"[::1]", b"fe80::1%eth0", b"1.2.3.4.5",
           b"\xff\xfe", b"10.0.0.\xff", _u("\u00e9"), _u("\uff11\uff10.0.0.5"))
FQDNS = (b"-", b"-", b"pc.lan.example", b"x.lan.example", b"other.example",
         b"\xff.lan.example", b"", b"LAN.EXAMPLE", _u("\u00e9.lan.example"))
USERS = (b"-", b"-", b"-", b"alice", b"ALICE", b"bob", b"carol", b"dave", b"eve",
         _u("\u00e9mile"), _u("\u00c9MILE"), b"j\xe9r\xf4me", b"J\xc9R\xd4ME", b"\xffuser",
         _u("m\u00fcller"), _u("M\u00dcLLER"), b"u s e r", b'"quoted"', b"back\\slash",
         b"%20x", b"x%ff", b"Eve", _u("\u0130stanbul"), b"\xc3")
METHODS = (b"GET", b"GET", b"GET", b"HEAD", b"POST", b"CONNECT", b"get", b"OPTIONS", b"PUT",
           b"G\xffT", _u("G\u00c9T"))
EXTRAS = (b"myip=10.0.0.1", b"myport=3128", b"clt_conn_tag=\xff", b"k=v\x01", b"a-b_c=%ff",
          b"x=")
WELCOME_TEMPLATE = "http://welcome.example/hello?next=%u&c=%a&n=%n&i=%i&s=%s&t=%t&p=%p&f=%f"

_ANY_BYTE = bytes(b for b in range(256) if b != 0x0A)


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.choice(_ANY_BYTE) for _ in range(n))


def _host(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.8:
        host = rng.choice(HOSTS)
    elif r < 0.93:
        host = rng.choice(HOSTS) + rng.choice(PIECES) + rng.choice(HOSTS)
    else:
        host = _random_bytes(rng, rng.randrange(1, 12))
    if rng.random() < 0.1:
        host = rng.choice((b"a@", b"a@b@", b"user:pw@", b"\xff@", b"%40@", b"@")) + host
    if rng.random() < 0.1:
        host += rng.choice((b":80", b":443", b":8080", b":", b":x", b":\xff", b":99999"))
    return host


def _path(rng: random.Random) -> bytes:
    parts = [b"/"] if rng.random() < 0.9 else []
    for _ in range(rng.choice((0, 1, 1, 2, 3, 5))):
        r = rng.random()
        if r < 0.35:
            parts.append(rng.choice(PIECES))
        elif r < 0.9:
            parts.append(rng.choice((b"ads", b"a/b", b"p", b"q?x=1", b"warez/", b"index.html",
                                     b"utm_source=x&y=1", b"shop", b"x", b"porn-site", b"?a=b",
                                     b"img/logo.png", b"%41")))
        else:
            parts.append(_random_bytes(rng, rng.randrange(1, 8)))
    return b"".join(parts)


_SCHEMES = (b"http://", b"http://", b"http://", b"https://", b"ftp://", b"HTTP://", b"",
            b"http:/", b"h%74tp://", b"\xff://")


def _url(rng: random.Random) -> tuple[bytes, bool]:
    """(url, is CONNECT-shaped)."""
    r = rng.random()
    if r < 0.08:
        return _host(rng) + rng.choice((b":443", b":8443", b"")), True
    if r < 0.11:
        return _random_bytes(rng, rng.randrange(0, 30)), False
    if r < 0.25:
        return rng.choice(_SCHEMES) + rng.choice(LISTED_URLS) + _path(rng)[1:], False
    return rng.choice(_SCHEMES) + _host(rng) + _path(rng), False


def _client(rng: random.Random) -> bytes:
    if rng.random() < 0.3:  # many clients: many first visits
        return b"10.%d.%d.%d" % (rng.choice((0, 0, 1, 2, 3, 4)), rng.randrange(256),
                                 rng.randrange(256))
    return _field(rng, CLIENTS)


def _field(rng: random.Random, values: tuple[bytes, ...]) -> bytes:
    if rng.random() < 0.04:
        return _random_bytes(rng, rng.randrange(1, 6)).replace(b" ", b"").replace(b"\t", b"")
    return rng.choice(values)


def request_line(rng: random.Random, channel: int | None) -> bytes:
    """One request line: Squid's shape, often hostile."""
    url, connect = _url(rng)
    method = b"CONNECT" if connect and rng.random() < 0.9 else _field(rng, METHODS)
    client = _client(rng)
    fields = [url, client + b"/" + _field(rng, FQDNS) if rng.random() < 0.95 else client,
              _field(rng, USERS), method]
    if rng.random() < 0.5:
        fields += [rng.choice(EXTRAS) for _ in range(rng.randrange(1, 3))]
    if channel is not None:
        fields.insert(0, str(channel).encode())
    if rng.random() < 0.03:  # cut short: no method, no user, no client...
        fields = fields[: rng.randrange(0, len(fields))]
    line = b" ".join(fields)
    r = rng.random()
    if r < 0.05:
        line = line.replace(b" ", b"\t", rng.randrange(1, 3))
    elif r < 0.08:
        line = line.replace(b" ", b"  ", 1)
    elif r < 0.10:
        line += b" "
    elif r < 0.12:
        line = b" " + line
    elif r < 0.17:  # random bytes anywhere
        at = rng.randrange(len(line) + 1)
        line = line[:at] + _random_bytes(rng, rng.randrange(1, 5)) + line[at:]
    elif r < 0.19:
        line += b"\r"
    return line


_CLEAN_HOSTS = (b"news.example", b"www.shop.example", b"good.example", b"white.example",
                b"bad.example", b"sub.ads.example.net", b"site.example", b"casino7-x.example",
                b"10.6.6.6", b"tracker.example.org", b"cdn.example.net")
_CLEAN_PATHS = (b"/", b"/a/b", b"/ads", b"/p?x=1", b"/img/logo.png", b"/warez/x", b"/q?x=1",
                b"/porn-site", b"")


def clean_line(rng: random.Random, channel: int | None) -> bytes:
    """A request line as Squid sends most of them: the fast path's work."""
    host = rng.choice(_CLEAN_HOSTS)
    if rng.random() < 0.06:
        url, method = host + b":443", b"CONNECT"
    else:
        url = rng.choice((b"http://", b"https://")) + host + rng.choice(_CLEAN_PATHS)
        method = rng.choice((b"GET", b"GET", b"GET", b"HEAD", b"POST"))
    client = b"10.%d.0.%d" % (rng.choice((0, 1, 2, 4, 4, 4, 9)), rng.randrange(1, 20))
    user = b"-" if rng.random() < 0.9 else rng.choice((b"alice", b"carol", b"zed"))
    line = b"%s %s/- %s %s myip=10.0.0.1 myport=3128" % (url, client, user, method)
    return line if channel is None else b"%d %s" % (channel, line)


def request_lines(seed: int, count: int) -> Iterator[bytes]:
    """count request lines (no newlines in them), the same for the same seed.

    Runs of plain lines (as Squid sends most; two lines in five) alternate
    with runs of hostile ones, so that whole batches reach the fast path;
    about half carry a channel-ID (concurrency), ids repeating as Squid
    reuses them.
    """
    rng = random.Random(seed)
    run, clean = 0, False
    for i in range(count):
        if run == 0:
            run, clean = rng.randrange(1, 200), rng.random() < 0.4
        run -= 1
        channel = i % 997 if rng.random() < 0.5 else None
        r = rng.random()
        if clean:
            yield clean_line(rng, channel)
        elif r < 0.01:
            yield b""
        elif r < 0.02:
            yield str(i % 1000).encode()  # a channel-ID with nothing after it
        else:
            yield request_line(rng, channel)


_PCT_FF = re.compile(rb"%[89a-fA-F][0-9a-fA-F]")
_V6 = re.compile(rb"\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\]")
_TOKENS = re.compile(rb"[^ \t]+")


def _valid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_CONTROL = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_SHAPES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("empty line", lambda line: not line.strip(b" \t")),
    ("non-utf8 byte", lambda line: not _valid_utf8(line)),
    ("tab", lambda line: b"\t" in line),
    ("cr inside", lambda line: b"\r" in line[:-1]),
    ("nul", lambda line: b"\x00" in line),
    ("control byte", lambda line: _CONTROL.search(line) is not None),
    ("quote or backslash", lambda line: b'"' in line or b"\\" in line),
)
_URL_SHAPES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("%ff in url", lambda url: _PCT_FF.search(url) is not None),
    ("%25 in url", lambda url: b"%25" in url),
    ("ipv6 literal", lambda url: _V6.search(url) is not None),
    ("several @", lambda url: url.count(b"@") >= 2),
    ("listed domain", lambda url: any(d in url.lower() for d in LISTED_DOMAINS[:3])),
    ("listed url", lambda url: any(u in url.lower() for u in LISTED_URLS)),
    ("expression hit", lambda url: b"casino" in url.lower() or b"warez" in url.lower()),
    ("rewrite hit", lambda url: b"utm_" in url.lower() or b"old.example" in url.lower()),
    ("idn", lambda url: any(x in url.lower() for x in (b"xn--", _u("\u00fc"), _u("\u00dc")))),
    ("connect", lambda url: b"://" not in url and b":" in url),
)


def shapes(line: bytes) -> set[str]:
    """Which of :data:`SHAPES` one line shows."""
    found = {name for name, test in _LINE_SHAPES if test(line)}
    toks = _TOKENS.findall(line)
    first = 0
    if toks and toks[0].isdigit():
        found.add("channel-id")
        first = 1
    if len(toks) < first + 3:
        found.add("no method")
    if len(toks) > first:
        found.update(name for name, test in _URL_SHAPES if test(toks[first]))
    if len(toks) > first + 1 and not _valid_utf8(toks[first + 1]):
        found.add("bad utf-8 client")
    if len(toks) > first + 3 and not _valid_utf8(toks[first + 2]):
        found.add("bad utf-8 user")
    return found


CONF = """\
# squidguard-bloom fuzz configuration: every source kind, list kind, template code
dbhome {db}
logdir {logs}

time always {{ weekly * 00:00-24:00 }}
time never {{ date 2001.01.01 }}

src admins {{ ip 10.9.9.9 10.9.8.0/24 }}
src ranged {{
    ip 192.168.1.10-192.168.1.50 172.16.0.0/255.255.0.0 2001:db8::/32
    log verbose sources.log
}}
src listed {{ iplist clients.ips }}
src lan {{ domain lan.example }}
src staff {{ user alice bob \u00e9mile }}
src people {{
    userlist users.txt
    within always
}}
src chained {{
    ip 10.2.0.0/16
    continue
}}
src asleep {{
    ip 10.3.0.0/16
    within never
}}

rewrite tidy {{
    s@(utm_[a-z]+=)[^&]*@\\1x@g
    s@^http://old\\.example/(.*)$@http://new.example/\\1@
    s@shop(.)@&-\\1-\\0@i
    log rewrites.log
}}

rewrite fixwarez {{
    s@.*warez(.*)@http://block.example/warez?rest=\\1@r
}}

rewrite tostatus {{
    s@^(http://)?news\\.example/(.)@http://news.example/moved/\\2@R
}}

dest white {{ domainlist white/domains }}

dest ads {{
    domainlist ads/domains
    urllist ads/urls
    redirect 301:http://block.example/ads?a=%a&n=%n&i=%i&s=%s&t=%t&u=%u&p=%p&f=%f&q=%q&z=%z&%%&%
    log ads.log
}}

dest adult {{
    domainlist adult/domains
    urllist adult/urls
    expressionlist adult/expressions
    log anonymous adult.log
}}

dest latin {{
    expressionlist latin/expressions
    redirect http://block.example/latin?u=%u
}}

dest warez {{
    expressionlist warez/expressions
    rewrite fixwarez
}}

dest textual {{
    domainlist text/domains
    urllist text/urls
    redirect http://block.example/text/%u
}}

welcome {{
    redirect {welcome}
    key {key}
    capacity 100000
    state welcome.bloom
    window 30d
    exempt exempt.example
    log welcome.log
}}

acl {{
    admins {{ pass all }}
    ranged within always {{
        pass white !ads !adult !textual all
        redirect 303:http://block.example/ranged?u=%u&a=%a
    }} else {{
        pass none
    }}
    listed {{
        pass !in-addr !adult !latin all
        rewrite tostatus
        redirect http://block.example/listed/%f
    }}
    lan {{ pass !ads !warez all }}
    staff {{
        pass white !adult none
        redirect http://block.example/staff?%i&%n
    }}
    people {{
        pass !textual !adult !latin all
        rewrite tidy
        redirect http://block.example/people?%i
    }}
    chained {{ pass !warez all }}
    asleep {{ pass none }}
    default {{
        pass white !ads !adult !in-addr all
        redirect http://block.example/blocked?a=%a&n=%n&i=%i&s=%s&t=%t&u=%u&p=%p&f=%f
        log blocked.log
    }}
}}
"""


def write_setup(root: Path, *, key: str = "ip") -> Path:
    """Write lists (some compiled) and the configuration under root; its path.

    Lists hold Unicode, Latin-1 (not UTF-8) and punycode entries, per-entry
    redirects, and expressions both the fast path's literal prefilter reads
    and one it cannot (so Python decides those dests).
    """
    from squidguard_bloom.core.lists.store import compile_list  # noqa: PLC0415 - the lists package is heavy

    db, logs = root / "db", root / "logs"
    for d in ("white", "ads", "adult", "latin", "warez", "text"):
        (db / d).mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)

    def write(rel: str, lines: list[bytes]) -> None:
        (db / rel).write_bytes(b"\n".join(lines) + b"\n")

    write("white/domains", [b"white.example", b"good.example"])
    write("ads/domains", [b"bad.example", b"ads.example.net http://block.example/entry?u=%u",
                          b"10.6.6.6", _u("b\u00fccher.example"), b"xn--caf-dma.example"])
    write("ads/urls", [b"shop.example/ads", b"site.example:8080/p 302:http://block.example/u?%p"])
    write("adult/domains", [b"tracker.example.org", b"caf\xe9.example", b"x\xff.example"])
    write("adult/urls", [b"news.example/a/b", b"site.example/q?x=1"])
    write("adult/expressions", [b"(^|\\.)casino[0-9]+-", b"porn.*site"])
    write("latin/expressions", [b"\xff\xfe", b"caf\xe9", b"/[^/]*\xe9t\xe9"])
    write("warez/expressions", [b"/warez/", b"(a|b)*[^/]warez"])
    write("text/domains", [b"old.example", b"\xe9t\xe9.example"])
    write("text/urls", [b"white.example/blocked/", b"a\xff.example/x"])
    for rel, kind in (("white/domains", "domain"), ("ads/domains", "domain"),
                      ("ads/urls", "url"), ("adult/domains", "domain"),
                      ("adult/urls", "url")):
        compile_list(kind, str(db / rel))
    (db / "clients.ips").write_text("# clients\n10.0.0.0/24, 10.0.1.1-10.0.1.9\n::1\n")
    write("users.txt", [b"# users", b"carol, dave", b"eve:x:1000:1000::/home/eve:/bin/sh",
                        _u("m\u00fcller") + b" \xffuser j\xe9r\xf4me"])
    conf = CONF.format(db=db, logs=logs, welcome=WELCOME_TEMPLATE, key=key)
    path = root / "squidGuard.conf"
    path.write_text(conf, encoding="utf-8")
    return path


_REPLY = re.compile(
    rb'(?:ERR(?: message="[^"\\\x00-\x1f\x7f]*(?:\\.[^"\\\x00-\x1f\x7f]*)*")?'
    rb'|OK status=30[12378] url="[^"\\\x00-\x1f\x7f]*(?:\\.[^"\\\x00-\x1f\x7f]*)*"'
    rb'|OK rewrite-url="[^"\\\x00-\x1f\x7f]*(?:\\.[^"\\\x00-\x1f\x7f]*)*"'
    rb'|BH message="[^"\\\x00-\x1f\x7f]*(?:\\.[^"\\\x00-\x1f\x7f]*)*")')


def channel_of(line: bytes) -> bytes | None:
    """The channel-ID Squid put on a line: its first word when all digits.

    A CR ending the line is not part of it (a CRLF line end).
    """
    toks = _TOKENS.findall(line.removesuffix(b"\r"))
    return toks[0] if toks and toks[0].isdigit() else None


def reply_kind(reply: bytes) -> str:
    """OK status=NNN, OK rewrite-url, ERR, ERR message, BH (without the channel-ID)."""
    if reply.startswith(b"OK status="):
        return reply[:13].decode()
    if reply.startswith(b"OK rewrite-url="):
        return "OK rewrite-url"
    if reply.startswith(b"ERR message="):
        return "ERR message (unparsable)"
    return reply.split(b" ", 1)[0].decode("ascii", "replace")


def check_replies(lines: list[bytes], out: bytes) -> Counter[str]:
    """Count reply kinds; AssertionError unless out is one well-formed reply per line, in order.

    Each reply must start with its line's channel-ID (and a space) when the
    line had one, and be ``ERR``, ``OK status=30x url="…"``, ``OK
    rewrite-url="…"`` or ``BH message="…"`` with nothing that could end or
    split it inside the quotes.
    """
    replies = out.split(b"\n")
    if replies[-1] != b"":
        raise AssertionError(f"the output does not end with a newline: {replies[-1][:200]!r}")
    replies.pop()
    if len(replies) != len(lines):
        raise AssertionError(f"{len(lines)} request lines but {len(replies)} replies")
    kinds: Counter[str] = Counter()
    for number, (line, reply) in enumerate(zip(lines, replies, strict=True), 1):
        chan = channel_of(line)
        body = reply
        if chan is not None:
            if not reply.startswith(chan + b" "):
                raise AssertionError(f"line {number} {line!r}: channel-ID {chan!r} not echoed "
                                     f"in {reply!r}")
            body = reply[len(chan) + 1 :]
        if not _REPLY.fullmatch(body):
            raise AssertionError(f"line {number} {line!r}: malformed reply {reply!r}")
        kinds[reply_kind(body)] += 1
    return kinds


class Pipe:
    """A binary stream handing out pieces of data the way a pipe from Squid does.

    Squid writes a few request lines at a time (one per concurrent request),
    so a read returns from one line to a few kilobytes, often cutting a
    line in two.
    """

    def __init__(self, data: bytes, rng: random.Random) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._rng = rng

    def read1(self, n: int = -1) -> bytes:
        """The next piece, at most n bytes (b"" at the end)."""
        size = self._rng.choice((60, 200, 500, 1500, 4000, 16000))
        if n >= 0:
            size = min(size, n)
        piece = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(piece)
        return piece

    read = read1
