"""End to end: two real Squid instances whose helpers share one welcome state on Redis.

Each Squid runs the helper installed with ``EXTRAS=redis ./setup.sh system-install``
(as user proxy, 3 children) with its own squidGuard.conf and local state file; both
name the same redis-server on 127.0.0.1.  A client that browses through both proxies
is welcomed exactly once.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.sharedwelcome.servers import RedisServer

from .harness import (
    Squid,
    chown_tree,
    fetch,
    fetch_many,
    origin_server,
    proxy_dir,
    run_squid,
    system_install,
)

HOSTS = ["site.test", "other.test", "blocked.test", "welcome.test"]

SGCONF = """\
dbhome {dir}/db
logdir {dir}/logs

dest adult {{
    domainlist adult/domains
}}

welcome {{
    redirect http://welcome.test:{origin}/hello?next=%u
    capacity 10000
    state    welcome.bloom
    shared   {redis}
    log      welcome.log
}}

acl {{
    default {{
        pass !adult all
        redirect 302:http://blocked.test:{origin}/blocked?url=%u
    }}
}}
"""


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    prefix = proxy_dir("sgb-install-redis-")
    try:
        yield system_install(prefix, extras="redis")
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def two_squids(installed: Path, tmp_path_factory: pytest.TempPathFactory) \
        -> Iterator[tuple[list[Squid], int]]:
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    works = []
    try:
        with origin_server() as origin, ExitStack() as stack:
            squids = []
            for name in ("a", "b"):
                work = proxy_dir(f"sgb-e2e-shared-{name}-")
                works.append(work)
                (work / "db" / "adult").mkdir(parents=True)
                (work / "db" / "adult" / "domains").write_text("blocked.test\n")
                (work / "logs").mkdir()
                (work / "squidGuard.conf").write_text(
                    SGCONF.format(dir=work, origin=origin, redis=redis.url))
                chown_tree(work)
                sq = stack.enter_context(run_squid(work, installed, work / "squidGuard.conf",
                                                   HOSTS, children=3))
                sq.wait_for_helpers(3)
                # each child serves at once and connects to Redis in the background
                deadline = time.monotonic() + 30
                while sq.cache_log().count("welcome shared: Redis reachable") < 3:
                    assert time.monotonic() < deadline, sq.cache_log()[-2000:]
                    time.sleep(0.05)
                squids.append(sq)
            yield squids, origin
    finally:
        redis.stop()
        for work in works:
            shutil.rmtree(work, ignore_errors=True)


def welcome_location(origin: int, url: str) -> str:
    return f"http://welcome.test:{origin}/hello?next={url}"


def test_a_client_browsing_through_both_proxies_is_welcomed_once(two_squids) -> None:
    (a, b), origin = two_squids
    page = f"http://site.test:{origin}/index.html"
    first = fetch(a.port, page, "127.0.5.1")
    assert (first.code, first.location) == (302, welcome_location(origin, page))
    for sq in (b, a, b):
        again = fetch(sq.port, page, "127.0.5.1")
        assert (again.code, again.location) == (200, ""), again
    # A client starting on the other proxy: welcomed there, then never on the first.
    other = fetch(b.port, page, "127.0.5.2")
    assert (other.code, other.location) == (302, welcome_location(origin, page))
    assert fetch(a.port, page, "127.0.5.2").code == 200
    # Blocked stays blocked; a blocked request welcomes nobody.
    blocked = fetch(a.port, f"http://blocked.test:{origin}/x", "127.0.5.3")
    assert blocked.code == 302 and blocked.location.startswith(
        f"http://blocked.test:{origin}/blocked?url=")
    nxt = fetch(b.port, page, "127.0.5.3")
    assert (nxt.code, nxt.location) == (302, welcome_location(origin, page))
    for sq in (a, b):
        complaints = [x for x in sq.cache_log().splitlines()
                      if "ERROR" in x or "unreachable" in x or "Traceback" in x]
        assert not complaints, complaints


def test_parallel_browsing_through_both_proxies_gives_one_welcome(two_squids) -> None:
    """Each client opens 12 pages at once on each proxy (24 requests racing over 6 helper
    children in two Squids): one welcome per client in all."""
    (a, b), origin = two_squids
    urls = [f"http://other.test:{origin}/p{i}" for i in range(12)]
    clients = [f"127.0.6.{i}" for i in range(1, 9)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        jobs = [(c, pool.submit(fetch_many, sq.port, urls, c, parallel=True))
                for c in clients for sq in (a, b)]
        results: dict[str, list[tuple[str, int, str]]] = {c: [] for c in clients}
        for c, job in jobs:
            results[c] += job.result()
    for c in clients:
        codes = sorted(code for _url, code, _loc in results[c])
        assert codes == [200] * 23 + [302], (c, results[c])
        welcomed = [(u, loc) for u, code, loc in results[c] if code == 302]
        assert welcomed == [(welcomed[0][0], welcome_location(origin, welcomed[0][0]))]
    logged = [line for sq in (a, b) if (sq.dir / "logs" / "welcome.log").exists()
              for line in (sq.dir / "logs" / "welcome.log").read_text().splitlines()
              if " 127.0.6." in line]
    assert sorted(line.split()[5].split("/")[0] for line in logged) == clients
