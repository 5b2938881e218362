"""The dashboard in a real headless Chromium: log in, live data without reload, search, export,
and hostile log values shown as text on every page."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from . import payloads
from .browser import Browser
from .servers import Process, ProxyLogs, Served

CELLS = ("return [...document.querySelectorAll('#{} tbody tr')]"
         ".map(r => [...r.cells].map(c => c.textContent));")
TAIL_CELLS = CELLS.format("tail")
RESULT_CELLS = CELLS.format("results")


def _tiles(b: Browser) -> list[str]:
    return b.driver.execute_script(
        "return [...document.querySelectorAll('#tiles article')].map(t => t.dataset.proxy);")


def test_login_live_updates_search_and_export(served: Served, ingest: Process, incoming: Path,
                                              browser: Browser) -> None:
    now = time.time()
    north, south = ProxyLogs(incoming, "north"), ProxyLogs(incoming, "south")
    for i in range(30):
        north.decision(now - 100 + i, f"http://ads.example/{i:02d}", client="10.9.9.9")
    south.access(now - 50, "http://cdn.example/a", result="TCP_HIT")
    d = browser.driver
    browser.login(served.url, served.user, served.password)
    browser.wait(lambda _: _tiles(browser) == ["north", "south"], what="the two tiles")

    # live: a new proxy's tile and new tail rows appear on open pages, without a reload
    d.execute_script("window.__same_page = 'yes';")
    ProxyLogs(incoming, "west").access(time.time(), "http://w.example/")
    browser.wait(lambda _: _tiles(browser) == ["north", "south", "west"], what="west's tile")
    assert d.execute_script("return window.__same_page;") == "yes"

    d.get(served.url + "/tail")
    browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")
    d.execute_script("window.__same_page = 'tail';")
    stamp = time.time()
    south.access(stamp, "http://live.example/first", client="10.5.5.5", user="carol",
                 result="TCP_MEM_HIT")
    north.decision(stamp, "http://porn.example/x", client="10.5.5.6", target="adult")
    browser.wait(lambda _: len(d.execute_script(TAIL_CELLS)) == 2, what="two live rows")
    rows = sorted(r[1:] for r in d.execute_script(TAIL_CELLS))
    assert rows == [
        ["north", "10.5.5.6", "-", "REDIRECT", "adult", "GET", "http://porn.example/x"],
        ["south", "10.5.5.5", "carol", "TCP_MEM_HIT/200", "", "GET", "http://live.example/first"]]
    assert d.execute_script("return window.__same_page;") == "tail"

    # a filtered tail keeps only what matches
    d.find_element(By.ID, "clear").click()
    d.find_element(By.ID, "f-client").send_keys("10.5.5.7")
    d.find_element(By.ID, "apply").click()
    browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")
    south.access(time.time(), "http://live.example/other", client="10.5.5.8")
    south.access(time.time(), "http://live.example/mine", client="10.5.5.7")
    browser.wait(lambda _: len(d.execute_script(TAIL_CELLS)) == 1, what="the filtered row")
    time.sleep(0.5)  # the other row was stored in the same batch: it would be there by now
    assert [r[7] for r in d.execute_script(TAIL_CELLS)] == ["http://live.example/mine"]

    # search with paging
    d.get(served.url + "/search")
    d.find_element(By.ID, "s-client").send_keys("10.9.9.9")
    Select(d.find_element(By.ID, "s-limit")).select_by_visible_text("25")
    d.find_element(By.ID, "search").click()
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 25, what="page 1")
    page1 = [r[7] for r in d.execute_script(RESULT_CELLS)]
    assert page1 == [f"http://ads.example/{i:02d}" for i in range(29, 4, -1)]
    d.find_element(By.ID, "next").click()
    browser.wait(lambda _: d.find_element(By.ID, "page").text == "page 2")
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 5, what="page 2")
    assert [r[7] for r in d.execute_script(RESULT_CELLS)] == [
        f"http://ads.example/{i:02d}" for i in range(4, -1, -1)]
    assert d.find_element(By.ID, "next").get_attribute("disabled") == "true"

    # export: the link carries the search; the browser's session downloads it
    href = d.find_element(By.ID, "export").get_attribute("href")
    assert "client=10.9.9.9" in href and "before" not in href
    text = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text()).then(done);", href)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["time_utc", "proxy", "client", "user", "method", "action", "category",
                       "host", "url"]
    assert [r[8] for r in rows[1:]] == [f"http://ads.example/{i:02d}" for i in range(29, -1, -1)]
    assert {tuple(r[1:8]) for r in rows[1:]} == {
        ("north", "10.9.9.9", "-", "GET", "REDIRECT", "ads", "ads.example")}


def _check_page(b: Browser, where: str) -> None:
    d = b.driver
    try:
        alert = d.switch_to.alert
        raise AssertionError(f"{where}: an alert opened: {alert.text!r}")
    except NoAlertPresentException:
        pass
    assert d.execute_script(payloads.NO_SCRIPT_RAN) == [True, "undefined"], where
    assert d.execute_script(payloads.CELLS_WITH_ELEMENTS) == [], where
    blocked = [m for m in b.console() if "Content Security Policy" in m]
    assert blocked == [], f"{where}: something tried to run inline: {blocked}"


def test_hostile_values_show_as_text_everywhere(served: Served, ingest: Process,
                                                incoming: Path, browser: Browser) -> None:
    now = time.time()
    hostile = ProxyLogs(incoming, payloads.PROXY)
    for i, (url, user) in enumerate(zip(payloads.URLS, payloads.USERS * 2, strict=False)):
        hostile.access(now - 30 + i, url, user=user, client=f"10.6.6.{i}")
        hostile.decision(now - 30 + i, url, user=user, client=f"10.6.6.{i}",
                         target=payloads.CATEGORY)
    hostile.helper(now - 40, "going into emergency mode: <script>window.__xss=12</script>",
                   "ERROR")
    d = browser.driver
    browser.login(served.url, served.user, served.password)
    browser.wait(lambda _: _tiles(browser) == [payloads.PROXY], what="the hostile proxy's tile")
    # the top lists are filled from the same rows
    browser.wait(lambda _: d.find_elements(By.CSS_SELECTOR, "#top-blocked tbody tr"))
    _check_page(browser, "dashboard")
    tile = d.find_element(By.CSS_SELECTOR, "#tiles article h2").text
    assert tile == payloads.PROXY
    categories = {e.get_attribute("textContent") for e in
                  d.find_elements(By.CSS_SELECTOR, "#top-blocked tbody td:nth-child(2)")}
    assert categories == {payloads.shown(payloads.CATEGORY)}
    assert d.find_element(By.CSS_SELECTOR, "#tiles .helper-state").get_attribute(
        "title") == "going into emergency mode: <script>window.__xss=12</script>"

    expected = sorted(
        [payloads.shown(user), payloads.shown(url)]
        for url, user in zip(payloads.URLS, payloads.USERS * 2, strict=False))
    # the live tail, with the hostile lines arriving while it is open
    d.get(served.url + "/tail")
    browser.wait(lambda _: d.find_element(By.ID, "live-state").text == "live")
    again = time.time()
    for i, (url, user) in enumerate(zip(payloads.URLS, payloads.USERS * 2, strict=False)):
        hostile.access(again + i / 100, url, user=user, client=f"10.7.7.{i}")
    browser.wait(lambda _: len(d.execute_script(TAIL_CELLS)) == len(payloads.URLS))
    _check_page(browser, "live tail")
    assert sorted([r[3], r[7]] for r in d.execute_script(TAIL_CELLS)) == expected

    # search results, both logs
    for kind in ("decision", "access"):
        d.get(f"{served.url}/search?kind={kind}&from={now - 120:.0f}&client=10.6.6.0")
        browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 1)
        _check_page(browser, f"search {kind}")
        row = d.execute_script(RESULT_CELLS)[0]
        assert [row[1], row[3], row[7]] == [payloads.PROXY, payloads.shown(payloads.USERS[0]),
                                            payloads.shown(payloads.URLS[0])]
        if kind == "decision":
            assert row[5] == payloads.shown(payloads.CATEGORY)


def test_search_reaches_now_and_its_to_includes_the_second_shown(
        served: Served, ingest: Process, incoming: Path, browser: Browser) -> None:
    """Without a 'to', the search page leaves the field empty ("until now"), so rows of the
    very second it was opened are found (it used to send that second as an exclusive end,
    and lost them); a 'to' shown in whole seconds includes that second, and survives the
    page's own round trip through the address bar unchanged."""
    east = ProxyLogs(incoming, "east")
    whole = float(int(time.time()))
    east.decision(whole - 20, "http://edge.example/a", client="10.7.7.7")
    east.decision(whole - 10, "http://edge.example/b", client="10.7.7.7")
    east.access(time.time(), "http://edge.example/c", client="10.7.7.7")  # this very second
    d = browser.driver
    browser.login(served.url, served.user, served.password)

    d.get(f"{served.url}/search?kind=access&client=10.7.7.7&from={whole - 3600:.0f}")
    assert d.find_element(By.ID, "s-to").get_attribute("value") == ""
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 1, what="this second's row")
    assert [r[7] for r in d.execute_script(RESULT_CELLS)] == ["http://edge.example/c"]

    # to = the second of row b, as the page itself writes it into the address (its end)
    d.get(f"{served.url}/search?kind=decision&client=10.7.7.7&from={whole - 3600:.0f}"
          f"&to={whole - 10 + 1:.0f}")
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 2, what="rows a and b")
    assert [r[7] for r in d.execute_script(RESULT_CELLS)] == [
        "http://edge.example/b", "http://edge.example/a"]
    d.find_element(By.ID, "search").click()  # submitting again keeps the same range
    browser.wait(lambda _: "to=" in d.current_url)
    assert f"to={whole - 10 + 1:.0f}" in d.current_url
    browser.wait(lambda _: len(d.execute_script(RESULT_CELLS)) == 2, what="the same two rows")
