"""The whole chain into a real browser: the real helper (alone, then under real Squid) writes
its logs, the real shipper carries them over SFTP to a real sshd, the monitor's ingest stores
them, serve pushes them to a headless Chromium's live tail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.harness import (
    chown_tree,
    fetch,
    origin_server,
    proxy_dir,
    run_squid,
)
from tests.shipper.harness import Harness
from tests.shipper.servers import Sshd

from . import payloads
from .browser import Browser
from .servers import Process, Served
from .test_browser import RESULT_CELLS, TAIL_CELLS, _check_page, _tiles

HELPER = Path(sys.executable).with_name("squidguard-bloom")
PROXY = "edge-1"


def helper_conf(root: Path, logdir: Path, welcome_host: str = "welcome.example.net") -> Path:
    """Blocks *.bad.example (log blocked.log) and welcomes first visits (log welcome.log)."""
    db = root / "db"
    (db / "bad").mkdir(parents=True, exist_ok=True)
    (db / "bad" / "domains").write_text("bad.example\nblocked.test\n")
    logdir.mkdir(exist_ok=True)
    conf = root / "squidGuard.conf"
    conf.write_text(
        f"dbhome {db}\nlogdir {logdir}\n"
        "dest bad {\n    domainlist bad/domains\n    log blocked.log\n}\n"
        f"welcome {{\n    redirect http://{welcome_host}/?next=%u\n"
        f"    state {root / 'welcome.bloom'}\n    log welcome.log\n}}\n"
        "acl {\n    default {\n        pass !bad all\n"
        f"        redirect 302:http://{welcome_host}/blocked?url=%u\n    }}\n}}\n")
    return conf


@pytest.fixture
def world(tmp_path: Path, served: Served) -> Iterator[tuple[Harness, Process]]:
    """sshd + shipper harness, and an ingest reading what the shipper delivers."""
    sshd = Sshd(tmp_path / "sshd")
    (tmp_path / "ship").mkdir()
    harness = Harness(tmp_path / "ship", sshd)
    harness.remote_root.mkdir(parents=True, exist_ok=True)
    ingest = Process(["--db", served.db, "ingest", "--proxy", f"{PROXY}={harness.remote_root}",
                      "--poll-interval", "0.1"], tmp_path / "ingest.log")
    try:
        yield harness, ingest
    finally:
        ingest.stop()
        harness.close()
        sshd.stop()


def _logged_fields(path: Path) -> list[tuple[str, str]]:
    """(user, url) of each Request line the helper wrote, as it wrote them."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        f = line.split(" ")
        if len(f) >= 9 and f[3].startswith("Request("):
            out.append((f[6], f[4]))
    return out


def test_hostile_requests_through_helper_shipper_and_ingest_show_as_text(
        served: Served, world: tuple[Harness, Process], browser: Browser) -> None:
    harness, _ingest = world
    conf = helper_conf(harness.root, harness.logs)
    d = browser.driver
    browser.login(served.url, served.user, served.password)
    d.get(served.url + "/tail")
    browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")

    # Squid's request lines: URL CLIENT/FQDN USER METHOD; every URL is on a blocked host
    lines = []
    for i, (url, user) in enumerate(zip(payloads.URLS, payloads.USERS * 2, strict=False)):
        path = url.split("://", 1)[-1].partition("/")[2]
        lines.append(f"http://x{i}.bad.example/{path} 10.8.8.{i}/- {user} GET\n")
    done = subprocess.run([str(HELPER), "-c", str(conf)], input="".join(lines), text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == len(lines), done.stderr
    logged = _logged_fields(harness.logs / "blocked.log")
    assert len(logged) == len(lines)
    shipped = harness.run_once(helper_config=conf)
    assert shipped.returncode == 0, shipped.stderr

    browser.wait(lambda _: len(d.execute_script(TAIL_CELLS)) == len(lines), 60,
                 "the helper's lines in the live tail")
    _check_page(browser, "live tail")
    shown = sorted([r[3], r[7]] for r in d.execute_script(TAIL_CELLS))
    assert shown == sorted([payloads.shown(u), payloads.shown(url)] for u, url in logged)
    assert {r[4] for r in d.execute_script(TAIL_CELLS)} == {"REDIRECT"}
    # the hostile user names went through untouched where the helper kept them as they were
    assert [payloads.USERS[0], payloads.USERS[1]] == [u for u, _ in logged[:2]]

    d.get(served.url + "/")
    browser.wait(lambda _: _tiles(browser) == [PROXY])
    browser.wait(lambda _: d.find_elements(By.CSS_SELECTOR, "#top-blocked tbody tr"))
    _check_page(browser, "dashboard")
    d.get(f"{served.url}/search?kind=decision&from={time.time() - 3600:.0f}&client=10.8.8.0")
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 1)
    _check_page(browser, "search")
    row = d.execute_script(RESULT_CELLS)[0]
    assert [row[3], row[7]] == [payloads.shown(logged[0][0]), payloads.shown(logged[0][1])]


@pytest.mark.slow
def test_squid_helper_shipper_ingest_dashboard(served: Served, world: tuple[Harness, Process],
                                               browser: Browser, installed: Path) -> None:
    """Requests through real Squid: the welcome, the block and the pass reach the browser's
    live tail (helper logs and Squid's access.log), and the proxy's tile shows the helper."""
    harness, _ingest = world
    work = proxy_dir("sgb-dash-squid-")
    try:
        with origin_server() as origin:
            conf = helper_conf(work, work / "logs", welcome_host=f"welcome.test:{origin}")
            chown_tree(work)
            with run_squid(work, installed, conf, ["site.test", "blocked.test", "welcome.test"],
                           children=1) as squid:
                logs = work / "logs"
                files = [f"squidGuard={logs / 'squidGuard.log'}",
                         f"blocked={logs / 'blocked.log'}", f"welcome={logs / 'welcome.log'}",
                         f"access={work / 'access.log'}"]
                shipper = harness.start(*files)
                d = browser.driver
                browser.login(served.url, served.user, served.password)
                d.get(served.url + "/tail")
                browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")
                client = "127.0.0.1"
                first = fetch(squid.port, f"http://site.test:{origin}/page", client)
                assert first.code == 302 and first.location.startswith(
                    f"http://welcome.test:{origin}/?next="), first
                assert fetch(squid.port, f"http://site.test:{origin}/again", client).code == 200
                blocked = fetch(squid.port, f"http://blocked.test:{origin}/x", client)
                assert blocked.code == 302, blocked

                def seen() -> set[tuple[str, str]]:
                    return {(r[4], r[7]) for r in d.execute_script(TAIL_CELLS)}

                want = {("WELCOME", f"http://site.test:{origin}/page"),
                        ("REDIRECT", f"http://blocked.test:{origin}/x"),
                        ("TCP_MISS/200", f"http://site.test:{origin}/again")}
                try:
                    browser.wait(lambda _: want <= seen(), 90, "the three requests")
                except Exception:
                    raise AssertionError(f"tail shows {seen()}; {harness.postmortem()}") from None
                assert shipper.poll() is None
                d.get(served.url + "/")
                browser.wait(lambda _: _tiles(browser) == [PROXY])
                browser.wait(lambda _: re.match(r"(ready|started) \(", d.find_element(
                    By.CSS_SELECTOR, "#tiles .helper-state").text), 60, "the helper's state")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_cache_hit_under_the_example_squid_conf_reaches_the_tile(
        served: Served, world: tuple[Harness, Process], browser: Browser,
        installed: Path) -> None:
    """squid.conf.example under real Squid (the monitor's own e2e set-up): a page fetched
    twice is a miss then a hit; live through the shipper and ingest, the tail shows both and
    the proxy's tile shows the hit ratio, by requests, of the last hour."""
    from tests.monitor.test_e2e_squid import cacheable_origin, example_squid

    harness, _ingest = world
    work = proxy_dir("sgb-dash-example-")
    try:
        with cacheable_origin() as origin, example_squid(work, installed, origin) as squid:
            harness.start(f"access={work / 'access.log'}",
                          f"squidGuard={work / 'logs' / 'squidGuard.log'}")
            d = browser.driver
            browser.login(served.url, served.user, served.password)
            d.get(served.url + "/tail?kind=access")
            browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")
            page = f"http://cache.test:{origin}/page.html"
            assert fetch(squid.port, page, "127.0.0.1").code == 200
            assert fetch(squid.port, page, "127.0.0.1").code == 200

            def results() -> list[str]:
                return [r[4] for r in d.execute_script(TAIL_CELLS) if r[7] == page]

            browser.wait(lambda _: len(results()) == 2, 90, "both fetches in the tail")
            assert sorted(results()) in (["TCP_MEM_HIT/200", "TCP_MISS/200"],
                                         ["TCP_HIT/200", "TCP_MISS/200"])
            d.get(served.url + "/")
            browser.wait(lambda _: _tiles(browser) == [PROXY])
            # every access.log line counts: the two fetches (one hit) and Squid's own probes
            requests = len([x for x in squid.access_log() if x.strip()])
            want = f"{100 / requests:.1f} % req"

            def ratio() -> str:
                return d.find_element(By.CSS_SELECTOR, "#tiles .hit-ratio").text

            try:
                browser.wait(lambda _: ratio().startswith(want), 30, want)
            except Exception:
                raise AssertionError(f"the tile shows {ratio()!r}, not {want}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
