"""Seeded blacklists and Squid request streams for the helper benchmark.

Shaped after the squidGuard measurement (squidguard.md §16): random valid
domains with no entry nested under another (squidGuard's neighbour lookup
would otherwise under-block and blur the comparison), one url entry per
host, two regular expressions, and Squid 3.4+ request lines with
``myip=``/``myport=`` extras from a few thousand clients in 10.0.0.0/8:
about 10 % listed domains (half exact, half subdomains), 0.5 % listed
urls, 0.1 % expression hits and 5 % CONNECT.

The name spaces never overlap, so the expected verdict of every line is
known: listed domains use letters only, url hosts start with ``u`` and a
number, expression hits carry ``-sgbench``, and unlisted hosts always
contain a digit in their registered label.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TLDS = ("com", "net", "org", "info", "de", "fr", "nl", "io", "biz", "co.uk", "ru", "it")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
EXPRESSIONS = (
    r"(^|\.)(casino|poker|slots)[0-9]+-sgbench\.",
    r"/(warez|crack|keygen)-sgbench/",
)


@dataclass(frozen=True)
class Blacklist:
    """Where one generated category lives (``DIR/domains``, ``urls``, ``expressions``)."""

    directory: Path
    domains: list[str]
    urls: list[str]


@dataclass(frozen=True)
class StreamStats:
    """What a generated request stream holds; ``blocked`` are the lines a list must block."""

    lines: int
    domain_hits: int
    url_hits: int
    expression_hits: int
    connects: int
    clients: int

    @property
    def blocked(self) -> int:
        """Lines the blacklist must block (domain, url and expression hits)."""
        return self.domain_hits + self.url_hits + self.expression_hits


def _label(rng: random.Random, low: int = 5, high: int = 12) -> str:
    return "".join(rng.choices(LETTERS, k=rng.randint(low, high)))


def make_domains(count: int, rng: random.Random) -> list[str]:
    """count distinct domains, none a parent of another.

    Four in five are ``label.tld``; the rest ``label.label-N.tld``, whose
    parent (with its digit) can never be a two-label entry.
    """
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        tld = rng.choice(TLDS)
        if rng.random() < 0.8:
            name = f"{_label(rng)}.{tld}"
        else:
            name = f"{_label(rng, 3, 8)}.{_label(rng, 4, 9)}-{rng.randint(1, 99)}.{tld}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def make_urls(count: int, rng: random.Random) -> list[str]:
    """count url entries, one per host, so no entry is a prefix of another."""
    return [
        f"u{i}{_label(rng, 3, 6)}.{rng.choice(TLDS)}/{_label(rng, 3, 8)}/{i}.html"
        for i in range(count)
    ]


def write_blacklist(directory: Path, domains: int, urls: int, seed: int) -> Blacklist:
    """Write DIR/domains, DIR/urls and DIR/expressions (squidGuard list format)."""
    rng = random.Random(f"{seed}:blacklist")
    directory.mkdir(parents=True, exist_ok=True)
    dom = make_domains(domains, rng)
    url = make_urls(urls, rng)
    (directory / "domains").write_text("".join(f"{d}\n" for d in dom), encoding="ascii")
    (directory / "urls").write_text("".join(f"{u}\n" for u in url), encoding="ascii")
    (directory / "expressions").write_text("".join(f"{e}\n" for e in EXPRESSIONS), encoding="ascii")
    return Blacklist(directory, dom, url)


def clients(count: int, rng: random.Random) -> list[str]:
    """count distinct client addresses in 10.0.0.0/8."""
    return [
        f"10.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"
        for v in rng.sample(range(1, 2**24 - 1), count)
    ]


def _unlisted_host(rng: random.Random, popular: list[str]) -> str:
    if rng.random() < 0.7:  # most traffic goes to a few thousand popular sites, skewed
        return popular[int(len(popular) * rng.random() ** 4)]
    return (
        f"{rng.choice(('www.', 'cdn.', 'img.', ''))}{_label(rng, 3, 9)}{rng.randint(0, 9999)}"
        f".{rng.choice(TLDS)}"
    )


def _path(rng: random.Random) -> str:
    depth = rng.randint(0, 3)
    path = "/" + "/".join(_label(rng, 2, 8) for _ in range(depth))
    if rng.random() < 0.3:
        path += f"?id={rng.randint(0, 10**6)}&q={_label(rng, 1, 6)}"
    return path


def request_lines(
    blacklist: Blacklist,
    count: int,
    clients_n: int,
    seed: int,
    stats: list[StreamStats] | None = None,
) -> Iterator[tuple[str, bool]]:
    """count Squid request lines (with newline), each with whether the lists must block it.

    Appends the stream's totals to stats once the last line is out.
    """
    rng = random.Random(f"{seed}:requests")
    who = clients(clients_n, rng)
    popular = [f"www.{_label(rng, 3, 9)}{i}.{rng.choice(TLDS)}" for i in range(5000)]
    domains, urls = blacklist.domains, blacklist.urls
    d_hits = u_hits = e_hits = connects = 0
    for _ in range(count):
        client = rng.choice(who)
        r = rng.random()
        connect = rng.random() < 0.05
        path = _path(rng)
        blocked = True
        if r < 0.0997 and domains:
            host = rng.choice(domains)
            if rng.random() < 0.5:
                host = f"{rng.choice(('www', 'cdn', 'm', _label(rng, 2, 6)))}.{host}"
            d_hits += 1
        elif r < 0.1047 and urls and not connect:
            host, _, rest = rng.choice(urls).partition("/")
            path = f"/{rest}" + rng.choice(("", "", "?from=sgbench"))
            u_hits += 1
        elif r < 0.1057:
            if connect or rng.random() < 0.5:
                host = (
                    f"{rng.choice(('casino', 'poker', 'slots'))}{rng.randint(0, 999)}"
                    f"-sgbench.{rng.choice(TLDS)}"
                )
            else:
                host = _unlisted_host(rng, popular)
                path = f"/{rng.choice(('warez', 'crack', 'keygen'))}-sgbench/x.zip"
            e_hits += 1
        else:
            host = _unlisted_host(rng, popular)
            blocked = False
        if connect:
            connects += 1
            url, method = f"{host}:443", "CONNECT"
        else:
            url = f"{rng.choice(('http', 'http', 'https'))}://{host}{path}"
            method = rng.choice(("GET",) * 17 + ("POST", "HEAD", "OPTIONS"))
        yield f"{url} {client}/- - {method} myip=10.0.0.1 myport=3128\n", blocked
    if stats is not None:
        stats.append(StreamStats(count, d_hits, u_hits, e_hits, connects, clients_n))


def write_requests(
    path: Path, expected: Path, blacklist: Blacklist, count: int, clients_n: int, seed: int
) -> StreamStats:
    """Write the request stream to path and one ``1``/``0`` per line (must block?) to expected."""
    stats: list[StreamStats] = []
    verdicts = bytearray()
    with path.open("w", encoding="ascii") as f:
        for line, blocked in request_lines(blacklist, count, clients_n, seed, stats):
            f.write(line)
            verdicts.append(49 if blocked else 48)
    expected.write_bytes(bytes(verdicts))
    return stats[0]
