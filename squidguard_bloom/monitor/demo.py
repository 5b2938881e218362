"""``demo``: generated traffic from three proxies, ingested and served on 127.0.0.1.

The traffic is written as the shipper would deliver it (one directory per
proxy, one per stream, segment files; see docs/shipper.md) in the formats the
proxies really write: Squid's native access.log, the helper's squidGuard.log
and its per-category and welcome logs. The monitor's own ingest stores it, so
the demo exercises the same parsers and rollups as production. After the
history (``hours`` of it), new lines keep arriving every second, so the tiles,
charts and live tail move.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database

PROXIES = ("proxy-north", "proxy-south", "proxy-east")
SEGMENT = "00000001-1-1.log"
SITES = ("www.example.com", "news.example.org", "cdn.example.net", "video.example.tv",
         "mail.example.com", "shop.example.net", "static.example.org", "img.example.com",
         "docs.example.org", "wiki.example.net", "maps.example.com", "api.example.io")
BLOCKED = (("ads", "ads.tracker.example"), ("ads", "banner.adnet.example"),
           ("adult", "adult.example.xxx"), ("malware", "evil-download.example"),
           ("gambling", "casino.example.bet"), ("phishing", "login-bank.example.top"),
           ("ads", "pixel.metrics.example"), ("malware", "c2.botnet.example"))
USERS = ("-", "-", "-", "-", "alice", "bob", "carol")
CACHE = (("TCP_MISS", 200, 0.40), ("TCP_HIT", 200, 0.22), ("TCP_MEM_HIT", 200, 0.18),
         ("TCP_REFRESH_UNMODIFIED", 200, 0.08), ("TCP_MISS", 404, 0.04),
         ("TCP_REFRESH_MODIFIED", 200, 0.05), ("TCP_MISS", 304, 0.03))
MIME = ("text/html", "image/png", "application/javascript", "text/css", "video/mp4")


@dataclass
class _Proxy:
    name: str
    root: Path
    rate: float  # requests per minute at the day's peak
    rng: random.Random
    seen: set[str] = field(default_factory=set)
    files: dict[str, TextIO] = field(default_factory=dict)

    def out(self, stream: str) -> TextIO:
        fh = self.files.get(stream)
        if fh is None:
            d = self.root / self.name / stream
            d.mkdir(parents=True, exist_ok=True)
            fh = self.files[stream] = open(d / SEGMENT, "a", encoding="utf-8")  # noqa: SIM115
        return fh


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _request(p: _Proxy, ts: float) -> None:
    rng = p.rng
    # subscribers: a few hundred regulars per proxy, and newcomers (welcomed) all day long
    if rng.random() < 0.97:
        client = f"10.{PROXIES.index(p.name)}.{rng.randint(0, 3)}.{rng.randint(2, 60)}"
    else:
        client = f"10.{PROXIES.index(p.name)}.{rng.randint(4, 255)}.{rng.randint(2, 254)}"
    user = rng.choice(USERS)
    pid = 4000 + PROXIES.index(p.name) * 10 + rng.randint(0, 2)
    access = p.out("access")
    elapsed = rng.randint(1, 400)
    if client not in p.seen:
        p.seen.add(client)
        url = f"http://{rng.choice(SITES)}/"
        p.out("welcome").write(
            f"{_stamp(ts)} [{pid}] Request(default/welcome/-) {url} {client}/- {user} GET "
            "WELCOME\n")
        access.write(f"{ts:.3f} {elapsed:6d} {client} TCP_REDIRECT/302 380 GET {url} {user} "
                     "HIER_NONE/- text/html\n")
        return
    if rng.random() < 0.06:
        category, host = rng.choice(BLOCKED)
        url = f"http://{host}/{rng.choice(('x.js', 'track', 'get', 'index.html'))}"
        p.out(category).write(
            f"{_stamp(ts)} [{pid}] Request(default/{category}/-) {url} {client}/- {user} GET "
            "REDIRECT\n")
        access.write(f"{ts:.3f} {elapsed:6d} {client} TCP_REDIRECT/302 380 GET {url} {user} "
                     "HIER_NONE/- text/html\n")
        return
    host = rng.choice(SITES)
    result, status, _share = rng.choices(CACHE, weights=[c[2] for c in CACHE])[0]
    size = rng.randint(300, 400_000) if status == 200 else 320
    hier = "HIER_NONE/-" if "HIT" in result else f"HIER_DIRECT/{host}"
    path = rng.choice(("", "index.html", "logo.png", "app.js", "style.css", "clip.mp4"))
    access.write(f"{ts:.3f} {elapsed:6d} {client} {result}/{status:03d} {size} GET "
                 f"http://{host}/{path} {user} {hier} {rng.choice(MIME)}\n")


def _minute_rate(p: _Proxy, ts: float) -> float:
    hour = time.localtime(ts).tm_hour + time.localtime(ts).tm_min / 60
    daylight = 0.25 + 0.75 * max(0.0, 1 - abs(hour - 15) / 10)
    return p.rate * daylight


def generate(root: Path, until: float, hours: float, seed: int = 7) -> list[_Proxy]:
    """Write hours of history ending at until into root/<proxy>/<stream>/."""
    proxies = [_Proxy(name, root, rate, random.Random(seed + i))
               for i, (name, rate) in enumerate(zip(PROXIES, (90.0, 60.0, 35.0), strict=True))]
    start = until - hours * 3600
    for p in proxies:
        helper = p.out("squidGuard")
        pid = 4000 + PROXIES.index(p.name) * 10
        helper.write(f"{_stamp(start)} [{pid}] INFO: squidguard-bloom 0.1.0 started "
                     f"({start:.3f})\n")
        helper.write(f"{_stamp(start + 1)} [{pid}] INFO: squidguard-bloom ready for requests "
                     f"({start + 1:.3f})\n")
        minute = start
        while minute < until:
            n = p.rng.random() * 2 * _minute_rate(p, minute)
            for ts in sorted(minute + p.rng.random() * 60 for _ in range(int(n))):
                if ts < until:
                    _request(p, ts)
            minute += 60
        if p.name == "proxy-east":  # one proxy whose helper fell into emergency mode
            ts = until - 600
            helper.write(f"{_stamp(ts)} [{pid}] ERROR: going into emergency mode: cannot read "
                         "/etc/squidguard/db/adult/domains\n")
    for p in proxies:
        for fh in p.files.values():
            fh.flush()
    return proxies


def live_traffic(proxies: list[_Proxy], stop: threading.Event, interval: float = 1.0) -> None:
    """Append about a second's worth of requests per proxy every interval until stop."""
    while not stop.wait(interval):
        now = time.time()
        for p in proxies:
            n = p.rng.random() * 2 * _minute_rate(p, now) / 60 * interval
            for ts in sorted(now - p.rng.random() * interval for _ in range(round(n))):
                _request(p, ts)
            for fh in p.files.values():
                fh.flush()


def fill(db_url: str, root: Path, hours: float = 24.0) -> list[_Proxy]:
    """Generate the history into root and ingest it into db_url; the proxies, for live_traffic."""
    proxies = generate(root, time.time(), hours)
    with open_database(db_url) as db:
        Ingest(db, roots=[root]).run(once=True)
    return proxies


def follow(db_url: str, root: Path, stop: threading.Event) -> None:
    """Ingest root until stop (the demo's own ingest)."""
    with open_database(db_url, migrate=False) as db:
        Ingest(db, roots=[root]).run(poll=0.2, stop=stop)


def default_paths(base: Path | None = None) -> tuple[Path, Path]:
    """(database file, log root) of a demo under base (default: a temp directory)."""
    if base is None:
        import tempfile  # noqa: PLC0415 - only the demo needs it

        base = Path(tempfile.mkdtemp(prefix="sgb-monitor-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return base / "demo.db", base / "incoming"
