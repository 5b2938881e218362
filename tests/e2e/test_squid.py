"""End to end: the real Squid 5.7 on 127.0.0.1 runs the installed helper as user proxy.

The helper is installed once per module with ``./setup.sh system-install``
under a temporary prefix and started by Squid exactly as in production
(the console script, user proxy, argv[0] rewritten).  Clients are curl
processes bound to distinct 127.x.y.z addresses; Squid resolves every test
host name to the local origin server through its own hosts_file.  Each
Squid configuration starts once per module; tests share it, so every test
uses client addresses of its own (the welcome state is per Squid).
"""

from __future__ import annotations

import os
import pwd
import random
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from .harness import (
    REWRITE_CONF,
    ROOT,
    Fetch,
    Squid,
    chown_tree,
    fetch,
    fetch_many,
    origin_server,
    process_cmdline,
    process_uid,
    proxy_dir,
    run_squid,
)

HOSTS = ["site.test", "other.test", "blocked.test", "www.blocked.test", "notblocked.test",
         "evil.test", "welcome.test", "block.test", "portal.test",
         "xn--bcher-kva.test", "www.xn--bcher-kva.test", "xn--mnchen-3ya.test"]
CHILDREN = 3

SGCONF = """\
dbhome {dir}/db
logdir {dir}/logs

dest adult {{
    domainlist adult/domains
    urllist    adult/urls
    log        adult.log
}}

# A redirect without a 30x: prefix is a rewrite-url (the client gets the block
# page under the blocked URL); to a CONNECT we answer a 302 instead, where
# squidGuard's rewrite-url leaves the client hanging.
dest malware {{
    domainlist malware/domains
    redirect   http://block.test:{origin}/malware?u=%u
}}

welcome {{
    redirect http://welcome.test:{origin}/hello?next=%u
    key      ip
    capacity 10000
    error    0.001
    state    welcome.bloom
    exempt   portal.test
    log      welcome.log
}}

acl {{
    default {{
        pass !adult !malware all
        redirect 302:http://block.test:{origin}/blocked?url=%u&client=%a&target=%t
    }}
}}
"""

# A syntax error squidGuard would also reject: a stray block inside the acl.
BROKEN_LINE = "        oops {{"
BROKEN_SGCONF = SGCONF.replace("        pass !adult !malware all\n",
                               f"        pass !adult !malware all\n{BROKEN_LINE}\n")


def welcome_url(origin: int, url: str) -> str:
    return f"http://welcome.test:{origin}/hello?next={url}"


def block_url(origin: int, url: str, client: str, target: str) -> str:
    return f"http://block.test:{origin}/blocked?url={url}&client={client}&target={target}"


def malware_url(origin: int, url: str) -> str:
    return f"http://block.test:{origin}/malware?u={url}"


def down_url(origin: int | str, url: str, client: str) -> str:
    return f"http://block.test:{origin}/down?u={url}&c={client}"


def is_welcome(r: Fetch, origin: int) -> bool:
    return r.code == 302 and r.location.startswith(welcome_url(origin, ""))


def origin_body(method: str, url: str, sent: int = 0) -> str:
    """What the origin answers for url (http://host:port/path), proof it was reached."""
    host, _, path = url.removeprefix("http://").partition("/")
    return f"origin {method} {host} /{path} {sent}\n"


def log_lines(sq: Squid, name: str) -> list[str]:
    path = sq.dir / "logs" / name
    return path.read_text().splitlines() if path.exists() else []


def access_lines(sq: Squid, client: str, count: int = 1, timeout: float = 60) -> list[str]:
    """access.log lines of one client (native format: time elapsed client code/status ...).

    Squid may write a request's line after the client already has its answer, so
    this waits until at least count lines of the client are there (or timeout),
    then returns all of them: a test asserting an exact number never races Squid.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in sq.access_log() if line.split()[2:3] == [client]]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], what: str, sq: Squid, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s; cache.log ends:\n"
                                 f"{sq.cache_log()[-2000:]}")
        time.sleep(0.05)


def example_rewrite_conf() -> str:
    """squid.conf.example's url_rewrite_* lines, with our helper and 3 children started."""
    ours = REWRITE_CONF.splitlines()
    replace = {"url_rewrite_program": ours[0], "url_rewrite_children": ours[1]}
    lines = []
    for line in (ROOT / "squid.conf.example").read_text().splitlines():
        if not line.startswith("url_rewrite_"):
            continue
        keyword = line.split()[0]
        lines.append(replace.pop(keyword, line.replace("{", "{{").replace("}", "}}")))
    assert not replace, f"squid.conf.example lacks {sorted(replace)}"
    return "\n".join(lines) + "\n"


@contextmanager
def site_squid(helper: Path, origin: int, conf: str, concurrency: int,
               rewrite: str = REWRITE_CONF) -> Iterator[Squid]:
    """A temp dir readable by proxy with UT1-style lists, squidGuard.conf and a running Squid."""
    work = proxy_dir("sgb-e2e-")
    try:
        # IDN entries: one in Unicode (bücher), one in punycode (münchen)
        lists = {"adult/domains": "blocked.test\nb\u00fccher.test\n",
                 "adult/urls": "site.test/forbidden\nxn--mnchen-3ya.test/verboten\n",
                 "malware/domains": "evil.test\n"}
        for name, text in lists.items():
            (work / "db" / name).parent.mkdir(parents=True, exist_ok=True)
            (work / "db" / name).write_text(text, encoding="utf-8")
        (work / "logs").mkdir()
        (work / "squidGuard.conf").write_text(conf.format(dir=work, origin=origin))
        chown_tree(work)
        with run_squid(work, helper, work / "squidGuard.conf", HOSTS, children=CHILDREN,
                       concurrency=concurrency, rewrite=rewrite) as sq:
            pids = sq.wait_for_helpers(CHILDREN)
            if conf is SGCONF:
                wait_until(lambda: all(f"[{pid}] INFO: squidguard-bloom ready for requests"
                                       in "\n".join(log_lines(sq, "squidGuard.log"))
                                       for pid in pids), f"helpers {pids} ready", sq)
            yield sq
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def origin() -> Iterator[int]:
    with origin_server() as port:
        yield port


@pytest.fixture(scope="module")
def serial_squid(installed: Path, origin: int) -> Iterator[Squid]:
    with site_squid(installed, origin, SGCONF, concurrency=0) as sq:
        yield sq


@pytest.fixture(scope="module")
def concurrent_squid(installed: Path, origin: int) -> Iterator[Squid]:
    """The url_rewrite settings of squid.conf.example, with concurrency=4."""
    with site_squid(installed, origin, SGCONF, concurrency=4, rewrite=example_rewrite_conf()) as sq:
        yield sq


@pytest.fixture(scope="module")
def broken_closed_squid(installed: Path, origin: int) -> Iterator[Squid]:
    """A broken configuration that fails closed, under concurrency (channel-IDs echoed)."""
    conf = f"emergency block 302:{down_url('{origin}', '%u', '%a')}\n{BROKEN_SGCONF}"
    with site_squid(installed, origin, conf, concurrency=4) as sq:
        yield sq


@pytest.fixture(scope="module")
def broken_squid(installed: Path, origin: int) -> Iterator[Squid]:
    with site_squid(installed, origin, BROKEN_SGCONF, concurrency=0) as sq:
        yield sq


@pytest.mark.parametrize("which", ["serial_squid", "concurrent_squid"])
def test_squid_runs_the_installed_helper_as_proxy(which: str, installed: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """startup=3 helpers run as proxy, from the installed script, on the installed package."""
    sq: Squid = request.getfixturevalue(which)
    # squid.conf.example's lines (in concurrent_squid) raise no complaint either.
    complaints = [line for line in sq.cache_log().splitlines()
                  if re.search(r"WARNING|ERROR|FATAL|UPGRADE", line)]
    assert not complaints, complaints
    proxy_uid = pwd.getpwnam("proxy").pw_uid
    pids = sq.helper_pids()
    assert len(pids) == CHILDREN
    prefix = installed.parent.parent
    for pid in pids:
        assert process_uid(pid) == proxy_uid
        # Squid execs the script (its argv[0] "(squidguard-bloom)" is lost to the
        # kernel's #! handling, which puts the interpreter and script path first).
        argv = process_cmdline(pid)
        assert argv[1:] == [str(installed), "-c", str(sq.dir / "squidGuard.conf")], argv
        # The script's interpreter is the installed venv's (Debian's python3 underneath).
        assert Path(f"/proc/{pid}/exe").resolve() == (prefix / "venv/bin/python").resolve()
        maps = Path(f"/proc/{pid}/maps").read_text()
        bloom_libs = {line.split()[-1] for line in maps.splitlines() if "_bloom" in line}
        assert bloom_libs, "the helper did not load the compiled Bloom filter"
        assert all(lib.startswith(str(prefix)) for lib in bloom_libs), bloom_libs


def test_welcome_once_then_pass_and_blacklists_block(serial_squid: Squid, origin: int) -> None:
    """First GET → welcome with %u; next → origin; blacklisted domain/url → block page."""
    client = "127.0.0.2"
    page = f"http://site.test:{origin}/page?a=1"
    first = fetch(serial_squid.port, page, client)
    assert first.code == 302 and first.location == welcome_url(origin, page), first
    again = fetch(serial_squid.port, page, client)
    assert again.code == 200 and again.body == origin_body("GET", page), again

    for url in (f"http://www.blocked.test:{origin}/x", f"http://site.test:{origin}/forbidden/y"):
        r = fetch(serial_squid.port, url, client)
        assert r.code == 302 and r.location == block_url(origin, url, client, "adult"), r
    # rewrite-url: Squid fetches the block page itself and serves it for the blocked URL.
    evil = f"http://evil.test:{origin}/"
    r = fetch(serial_squid.port, evil, client)
    assert r.code == 200 and r.body == origin_body("GET", malware_url(origin, evil)), r
    # Neighbours of listed entries pass: domains match on label boundaries.
    for url in (f"http://notblocked.test:{origin}/x", f"http://site.test:{origin}/forbid"):
        r = fetch(serial_squid.port, url, client)
        assert r.code == 200 and r.body == origin_body("GET", url), r

    # Squid saw the client as 127.0.0.2 (curl --interface binding works).
    seen = access_lines(serial_squid, client, count=7)
    assert len(seen) == 7, serial_squid.access_log()
    # (Squid logs URLs without their query: strip_query_terms)
    assert "TCP_REDIRECT/302" in seen[0] and f"GET {page.partition('?')[0]}?" in seen[0], seen
    assert "/200 " in seen[1], seen
    assert sum("TCP_REDIRECT/302" in line for line in seen) == 3, seen
    welcomes = [line for line in log_lines(serial_squid, "welcome.log") if f" {client}/" in line]
    assert len(welcomes) == 1 and welcomes[0].endswith(f"Request(default/welcome/-) {page} "
                                                       f"{client}/{client} - GET WELCOME"), welcomes
    adult = "\n".join(log_lines(serial_squid, "adult.log"))
    assert f"Request(default/adult/-) http://www.blocked.test:{origin}/x {client}/" in adult


def test_blocked_first_request_does_not_use_up_the_welcome(serial_squid: Squid,
                                                           origin: int) -> None:
    """A client whose first request is blacklisted is blocked, then welcomed on its next GET."""
    client = "127.0.0.3"
    url = f"http://blocked.test:{origin}/first"
    r = fetch(serial_squid.port, url, client)
    assert r.location == block_url(origin, url, client, "adult"), r
    assert is_welcome(fetch(serial_squid.port, f"http://site.test:{origin}/", client), origin)


def test_idn_entries_block_the_punycode_host_squid_is_sent(serial_squid: Squid,
                                                         origin: int) -> None:
    """curl (libidn2), as a browser, sends an IDN host in punycode: a Unicode entry blocks
    it, and a punycode url entry blocks the Unicode spelling typed by the user."""
    client = "127.0.5.1"
    port = serial_squid.port
    for typed, sent in [
        (f"http://b\u00fccher.test:{origin}/x", f"http://xn--bcher-kva.test:{origin}/x"),
        (f"http://www.B\u00dcCHER.test:{origin}/y", f"http://www.xn--bcher-kva.test:{origin}/y"),
        (f"http://m\u00fcnchen.test:{origin}/verboten/z",
         f"http://xn--mnchen-3ya.test:{origin}/verboten/z"),
    ]:
        r = fetch(port, typed, client)
        assert r.code == 302 and r.location == block_url(origin, sent, client, "adult"), r
    allowed = f"http://xn--mnchen-3ya.test:{origin}/erlaubt"
    assert is_welcome(fetch(port, allowed, client), origin)
    r = fetch(port, allowed, client)
    assert r.code == 200 and r.body == origin_body("GET", allowed), r


@pytest.mark.parametrize("host", ["blocked.test", "evil.test"])
def test_blocked_connect_fails_at_once(serial_squid: Squid, origin: int, host: str) -> None:
    """CONNECT to a listed host:443 gets a 302 (never rewrite-url) and fails fast.

    evil.test's redirect has no 302: prefix: rewrite-url would leave Squid
    trying to open a tunnel to a host named "http" until the client gives up.
    """
    client = "127.0.0.4" if host == "blocked.test" else "127.0.0.5"
    r = fetch(serial_squid.port, f"https://{host}:443/", client, method="CONNECT", timeout=20)
    # Refused with the 302 (curl fails on it), not left waiting until curl gives up.
    assert r.connect_code == 302 and r.exit != 0 and not r.timed_out, r
    seen = access_lines(serial_squid, client)
    assert len(seen) == 1 and "TCP_REDIRECT/302" in seen[0] and \
        f"CONNECT {host}:443" in seen[0], seen
    if host == "blocked.test":
        adult = log_lines(serial_squid, "adult.log")
        assert any(f"blocked.test:443 {client}/{client} - CONNECT REDIRECT" in line
                   for line in adult), adult
    # The blocked CONNECT did not count as the client's first visit.
    assert is_welcome(fetch(serial_squid.port, f"http://site.test:{origin}/", client), origin)


def test_post_connect_and_exempt_hosts_are_never_welcomed(serial_squid: Squid,
                                                          origin: int) -> None:
    """A fresh client's POST, CONNECT, and exempt or welcome-page hosts pass untouched."""
    port = serial_squid.port
    page = f"http://site.test:{origin}/after"
    form = f"http://site.test:{origin}/form"
    for _ in range(2):
        r = fetch(port, form, "127.0.3.1", method="POST", data="a=1&b=2")
        assert r.code == 200 and r.body == origin_body("POST", form, sent=7), r
    assert is_welcome(fetch(port, page, "127.0.3.1"), origin)

    tunnelled = f"http://site.test:{origin}/tunnel"
    for _ in range(2):
        r = fetch(port, tunnelled, "127.0.3.2", method="CONNECT")
        assert r.connect_code == 200 and r.code == 200, r
        assert r.body == origin_body("GET", tunnelled), r
    assert any("TCP_TUNNEL/200" in line and f"CONNECT site.test:{origin}" in line
               for line in access_lines(serial_squid, "127.0.3.2", count=2))
    assert is_welcome(fetch(port, page, "127.0.3.2"), origin)

    for url in (f"http://portal.test:{origin}/", f"http://welcome.test:{origin}/hello"):
        r = fetch(port, url, "127.0.3.3")
        assert r.code == 200 and r.body == origin_body("GET", url), r
    assert is_welcome(fetch(port, page, "127.0.3.3"), origin)

    # HEAD counts as a visit like GET.
    head = fetch(port, page, "127.0.3.4", method="HEAD")
    assert head.code == 302 and head.location == welcome_url(origin, page), head
    assert fetch(port, page, "127.0.3.4").code == 200


def _answering(sq: Squid, clients: list[str]) -> set[int]:
    """PIDs of the helpers that logged a welcome or a block for one of clients."""
    mine = "|".join(re.escape(c) for c in clients)
    return {int(m) for name in ("welcome.log", "adult.log")
            for m in re.findall(rf"^\S+ \S+ \[(\d+)\] .* (?:{mine})/",
                                "\n".join(log_lines(sq, name)), re.M)}


def _welcome_burst(sq: Squid, origin: int, clients: list[str], seed: int,
                   hold: int | None = None) -> set[int]:
    """Every client at once, its URLs in turn; one welcome each.  The PIDs that answered.

    hold: a helper kept stopped (SIGSTOP) until another one has answered part of
    the burst, so that Squid must spread it over at least two children.
    """
    rng = random.Random(seed)
    bursts = {}
    for client in clients:
        urls = [f"http://other.test:{origin}/{client}/{n}" for n in range(6)]
        urls.insert(rng.randrange(7), f"http://blocked.test:{origin}/{client}")
        bursts[client] = urls
    # One curl per client, its URLs in turn, all clients at once.  (Simultaneous
    # first requests of one client on parallel connections are welcomed once
    # too: the filter's add lock, tests/native/test_bloom.py.)
    with ThreadPoolExecutor(len(clients)) as pool:
        if hold is not None:
            os.kill(hold, signal.SIGSTOP)
        try:
            fetched = pool.map(lambda c: fetch_many(sq.port, bursts[c], c), clients)
            if hold is not None:
                wait_until(lambda: bool(_answering(sq, clients) - {hold}),
                           f"a child other than the stopped {hold} answering", sq)
        finally:
            if hold is not None:
                os.kill(hold, signal.SIGCONT)
        answers = dict(zip(clients, fetched, strict=True))
    welcomed: Counter[str] = Counter()
    for client, results in answers.items():
        assert len(results) == 7, results
        for url, code, location in results:
            if "blocked" in url:
                assert code == 302 and location == block_url(origin, url, client, "adult"), url
            elif code == 302 and location == welcome_url(origin, url):
                welcomed[client] += 1
            else:
                assert code == 200, (client, url, code, location)
    assert welcomed == Counter(dict.fromkeys(clients, 1)), welcomed
    mine = "|".join(re.escape(c) for c in clients)
    logged = Counter(line.split()[-4].split("/")[0] for line in log_lines(sq, "welcome.log")
                     if re.search(rf" (?:{mine})/", line))
    assert logged == welcomed
    return _answering(sq, clients)


@pytest.mark.parametrize("which", ["serial_squid", "concurrent_squid"])
def test_each_client_welcomed_exactly_once_under_load(which: str, origin: int,
                                                      request: pytest.FixtureRequest) -> None:
    """Many clients at once over 3 children sharing one filter: one welcome per client.

    A helper answers in microseconds, so Squid may hand a whole burst to one
    child. Then a second burst of new clients runs with that child stopped
    (SIGSTOP) until another child has answered: Squid has to spread it, so the
    filter is shared whatever the timing.
    """
    sq: Squid = request.getfixturevalue(which)
    answering: set[int] = set()
    for burst in range(2):
        clients = [f"127.0.{10 + burst}.{i}" for i in range(1, 25)]
        hold = next(iter(answering)) if answering else None
        answering |= _welcome_burst(sq, origin, clients, seed=burst, hold=hold)
        assert answering <= set(sq.seen_helpers), (answering, sq.seen_helpers)
        if len(answering) >= 2:
            break
    assert len(answering) >= 2, f"only helper {answering} answered, with it stopped"


@pytest.mark.parametrize("which", ["serial_squid", "concurrent_squid"])
def test_reconfigure_restarts_helpers_but_keeps_who_was_welcomed(
        which: str, origin: int, request: pytest.FixtureRequest) -> None:
    """squid -k reconfigure starts new helpers; they know who was welcomed (the state file)."""
    sq: Squid = request.getfixturevalue(which)
    page = f"http://site.test:{origin}/reconf"
    assert is_welcome(fetch(sq.port, page, "127.0.2.1"), origin)
    assert fetch(sq.port, page, "127.0.2.1").code == 200
    before = sq.wait_for_helpers(CHILDREN)
    sq.reconfigure()
    after = sq.wait_for_helpers(CHILDREN, exclude=frozenset(before))
    assert not after & before
    r = fetch(sq.port, page, "127.0.2.1")
    assert r.code == 200 and r.body == origin_body("GET", page), \
        f"welcomed again after -k reconfigure: {r}"
    assert is_welcome(fetch(sq.port, page, "127.0.2.2"), origin)
    assert fetch(sq.port, page, "127.0.2.2").code == 200


@pytest.mark.parametrize("which", ["broken_squid", "broken_closed_squid"])
def test_broken_config_is_reported_and_helpers_stay_up(which: str, origin: int,
                                                       request: pytest.FixtureRequest) -> None:
    """cache.log names squidGuard.conf:LINE; the helpers answer in emergency mode, no respawns.

    Without an emergency line everything passes (squidGuard's behaviour);
    with "emergency block URL" everything is redirected there, CONNECTs too.
    """
    sq: Squid = request.getfixturevalue(which)
    conf = sq.dir / "squidGuard.conf"
    line = conf.read_text().splitlines().index(BROKEN_LINE.replace("{{", "{")) + 1
    where = f"{conf}:{line}:"
    wait_until(lambda: sq.cache_log().count("emergency mode") >= CHILDREN,
               "emergency mode line per helper", sq)
    log = sq.cache_log()
    pids = sq.helper_pids()
    assert len(pids) == CHILDREN
    for pid in pids:
        assert f"squidguard-bloom[{pid}]: {where}" in log, log[-3000:]
        assert re.search(rf"squidguard-bloom\[{pid}\]: .*emergency mode", log), log[-3000:]
    reports = log.count(where)

    client = "127.0.4.1"
    for n in range(6):
        url = f"http://blocked.test:{origin}/{n}"
        r = fetch(sq.port, url, client)
        if which == "broken_squid":
            # Everything passes, nobody is welcomed.
            assert r.code == 200 and r.body == origin_body("GET", url), r
        else:
            assert r.code == 302 and r.location == down_url(origin, url, client), r
    tunnel = fetch(sq.port, f"http://site.test:{origin}/t", client, method="CONNECT")
    if which == "broken_squid":
        assert tunnel.connect_code == 200 and tunnel.code == 200, tunnel
    else:
        assert tunnel.connect_code == 302 and tunnel.exit != 0 and not tunnel.timed_out, tunnel
    time.sleep(1)
    assert sq.server.running(), "Squid died"
    assert sq.helper_pids() == pids, "helpers were restarted"
    log = sq.cache_log()
    assert log.count(where) == reports, "helpers were respawned"
    assert "exited" not in log and "crashing" not in log, log[-3000:]
