"""End to end: real Squid 5.7 on 127.0.0.1 running the installed helper as user proxy.

Clients are curl processes bound to 127.0.0.x addresses, the origin is a
tiny HTTP server on 127.0.0.1, and Squid resolves the test host names to it
through its own hosts_file.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import Squid, chown_tree, fetch, origin_server, proxy_dir, run_squid, system_install

HOSTS = ["site.test", "other.test", "blocked.test", "welcome.test", "block.test"]

SGCONF = """\
dbhome {dir}/db
logdir {dir}/logs

dest bad {{
    domainlist bad/domains
    log blocked.log
}}

welcome {{
    redirect http://welcome.test/hello?next=%u
    state welcome.bloom
    capacity 10000
    error 0.001
    log welcome.log
}}

acl {{
    default {{
        pass !bad all
        redirect 302:http://block.test/blocked?u=%u
    }}
}}
"""


@pytest.fixture(scope="module")
def helper_cmd() -> Iterator[Path]:
    prefix = proxy_dir("sgb-install-")
    try:
        yield system_install(prefix)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def origin() -> Iterator[int]:
    with origin_server() as port:
        yield port


def make_site(conf_text: str = SGCONF) -> Path:
    work = proxy_dir("sgb-e2e-")
    (work / "db" / "bad").mkdir(parents=True)
    (work / "logs").mkdir()
    (work / "db" / "bad" / "domains").write_text("blocked.test\n")
    (work / "sg.conf").write_text(conf_text.format(dir=work))
    chown_tree(work)
    return work


@pytest.fixture
def squid(helper_cmd: Path, request: pytest.FixtureRequest) -> Iterator[Squid]:
    children, concurrency = request.param
    work = make_site()
    try:
        with run_squid(work, helper_cmd, work / "sg.conf", HOSTS, children=children,
                       concurrency=concurrency) as sq:
            yield sq
    finally:
        shutil.rmtree(work, ignore_errors=True)


def is_welcome(r) -> bool:
    return r.code == 302 and r.location.startswith("http://welcome.test/hello?next=")


def wait_for_new_helpers(sq: Squid, old: set[int], timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = sq.helper_pids()
        if pids and not pids & old:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"helpers were not restarted: before {old}, now {sq.helper_pids()}")


@pytest.mark.parametrize("squid", [(3, 0)], indirect=True)
def test_welcome_pass_block_and_reconfigure(squid: Squid, origin: int):
    site = f"http://site.test:{origin}/page"
    first = fetch(squid.port, site, "127.0.0.2")
    assert is_welcome(first), first
    assert f"next=http://site.test:{origin}/page" in first.location
    again = fetch(squid.port, site, "127.0.0.2")
    assert again.code == 200 and again.body.startswith("origin site.test"), again
    blocked = fetch(squid.port, f"http://www.blocked.test:{origin}/x", "127.0.0.2")
    assert blocked.code == 302 and blocked.location.startswith("http://block.test/blocked?u="), \
        blocked

    # A blocked CONNECT fails at once (a 302 to the tunnel), never hangs.
    tunnel = fetch(squid.port, "https://blocked.test:443/", "127.0.0.3", method="CONNECT")
    assert tunnel.exit != 0 and tunnel.seconds < 5, tunnel
    assert "302" in tunnel.error or tunnel.code == 302, tunnel
    # CONNECT and POST are never welcomed: the same clients' GETs still are, once.
    fetch(squid.port, f"http://site.test:{origin}/form", "127.0.0.4", method="POST")
    assert is_welcome(fetch(squid.port, site, "127.0.0.3"))
    assert is_welcome(fetch(squid.port, site, "127.0.0.4"))

    before = squid.helper_pids()
    assert len(before) >= 3, squid.cache_log()[-3000:]
    squid.reconfigure()
    wait_for_new_helpers(squid, before)
    after = fetch(squid.port, site, "127.0.0.2")
    assert after.code == 200, "a client welcomed before -k reconfigure was welcomed again"
    assert is_welcome(fetch(squid.port, site, "127.0.0.9"))
    log = (squid.dir / "logs" / "welcome.log").read_text()
    assert log.count(" 127.0.0.2/") == 1 and "WELCOME" in log
    assert "Request(default/bad/-) http://www.blocked.test" in \
        (squid.dir / "logs" / "blocked.log").read_text()


@pytest.mark.parametrize("squid", [(3, 0), (3, 4)], indirect=True, ids=["serial", "concurrent"])
def test_each_client_welcomed_once_across_children(squid: Squid, origin: int):
    clients = [f"127.0.1.{i}" for i in range(1, 13)]
    jobs = [(c, f"http://other.test:{origin}/{n}") for n in range(4) for c in clients]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda job: (job[0], fetch(squid.port, job[1], job[0])), jobs))
    welcomed = Counter(client for client, r in results if is_welcome(r))
    assert welcomed == Counter(dict.fromkeys(clients, 1)), welcomed
    others = [r for _c, r in results if not is_welcome(r)]
    assert all(r.code == 200 for r in others), [r for r in others if r.code != 200][:3]
    assert len(squid.helper_pids()) >= 3


@pytest.fixture
def broken_squid(helper_cmd: Path) -> Iterator[Squid]:
    work = make_site(SGCONF.replace("pass !bad all", "pass !bad all }}\n  oops {{"))
    try:
        with run_squid(work, helper_cmd, work / "sg.conf", HOSTS, children=2) as sq:
            yield sq
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_broken_config_is_reported_and_helper_keeps_answering(broken_squid: Squid, origin: int):
    for n in range(5):
        r = fetch(broken_squid.port, f"http://site.test:{origin}/{n}", "127.0.0.7")
        assert r.code == 200, r  # emergency mode: pass, as squidGuard
    log = broken_squid.cache_log()
    assert "sg.conf:" in log and "emergency mode" in log, log[-2000:]
    assert broken_squid.proc.poll() is None, "Squid died"
    assert "dying" not in log.lower(), "helpers were respawned in a loop"
