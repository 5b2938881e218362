"""The dashboard's alerts page and API: alerts and history as JSON, silences added (by the
logged-in user, CSRF-checked) and expired; the page itself needs a login."""

from __future__ import annotations

import json

from squidguard_bloom.monitor.migrate import open_database

from .browser import Browser
from .servers import Client, Served


def test_alerts_api_and_silences(served: Served) -> None:
    with open_database(served.db) as db, db.transaction():
        db.execute("INSERT INTO alert_state (rule, proxy, state, active_since, since, "
                   "firing_since, last_true, summary) VALUES ('unreachable', 'edge-1', "
                   "'firing', 100, 100, 160, 200, 'squid 192.0.2.1:3128 refused')")
        db.execute("INSERT INTO alert_history (ts, rule, proxy, from_state, to_state, summary) "
                   "VALUES (160, 'unreachable', 'edge-1', 'pending', 'firing', 'x')")
    c = Client(served.url)
    assert c.request("/api/alerts")[0] == 401
    status, headers, _ = c.request("/alerts")
    assert (status, headers["Location"]) == (303, "/login")
    assert c.login(served.user, served.password)[0] == 303
    status, _h, page = c.request("/alerts")
    assert status == 200 and '<script src="/static/alerts.js" defer></script>' in page
    data = json.loads(c.request("/api/alerts")[2])
    assert [(a["rule"], a["proxy"], a["state"], a["summary"]) for a in data["alerts"]] == [
        ("unreachable", "edge-1", "firing", "squid 192.0.2.1:3128 refused")]
    assert [(h["from"], h["to"]) for h in data["history"]] == [("pending", "firing")]
    # adding a silence needs the CSRF token
    form = {"rule": "unreachable", "proxy": "edge-*", "for": "2h",
            "comment": "<script>alert(1)</script> router swap"}
    status, _h, body = c.request("/api/silences", form)
    assert (status, json.loads(body)) == (403, {"error": "missing or wrong CSRF token: "
                                                         "reload the page"})
    token = c.page_csrf()
    status, _h, body = c.request("/api/silences", form, {"X-CSRF-Token": token})
    assert status == 200
    sid = json.loads(body)["id"]
    (silence,) = json.loads(c.request("/api/alerts")[2])["silences"]
    assert (silence["id"], silence["rule"], silence["proxy"], silence["author"],
            silence["comment"]) == (sid, "unreachable", "edge-*", served.user,
                                    "<script>alert(1)</script> router swap")
    assert round(silence["ends"] - silence["starts"]) == 7200
    status, _h, body = c.request("/api/silences", {**form, "rule": "nope"},
                                 {"X-CSRF-Token": token})
    assert status == 400 and json.loads(body)["error"].startswith("rule must be * or one of")
    status, _h, body = c.request("/api/silences", {**form, "for": "soon"},
                                 {"X-CSRF-Token": token})
    assert status == 400 and "is not a duration" in json.loads(body)["error"]
    assert c.request(f"/api/silences/{sid}/expire", {}, {"X-CSRF-Token": token})[0] == 200
    assert json.loads(c.request("/api/alerts")[2])["silences"] == []
    status, _h, body = c.request(f"/api/silences/{sid}/expire", {}, {"X-CSRF-Token": token})
    assert (status, json.loads(body)) == (404, {"error": "no live silence with that id"})


def test_alerts_page_in_a_browser(served: Served, browser: Browser) -> None:
    """The form adds a silence whose hostile comment shows as text; Expire ends it."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    d = browser.driver
    browser.login(served.url, served.user, served.password)
    d.get(served.url + "/alerts")
    comment = "<img src=x onerror=window.__xss=1> maintenance"
    d.find_element(By.ID, "s-proxy").clear()
    d.find_element(By.ID, "s-proxy").send_keys("edge-*")
    d.find_element(By.ID, "s-comment").send_keys(comment)
    d.find_element(By.ID, "s-add").click()
    browser.wait(lambda _: d.find_elements(By.CSS_SELECTOR, "#silences tbody tr"),
                 what="the new silence in its table")
    cells = [e.get_attribute("textContent")
             for e in d.find_elements(By.CSS_SELECTOR, "#silences tbody tr td")]
    assert cells[1:3] == ["*", "edge-*"] and cells[4:6] == [served.user, comment]
    assert d.find_element(By.ID, "s-message").text == "silence #1 added"
    assert d.execute_script("return window.__xss === undefined") is True
    assert d.find_elements(By.CSS_SELECTOR, "#silences tbody img") == []
    try:
        raise AssertionError(f"an alert opened: {d.switch_to.alert.text!r}")
    except NoAlertPresentException:
        pass
    d.find_element(By.CSS_SELECTOR, "#silences tbody button").click()
    browser.wait(lambda _: not d.find_elements(By.CSS_SELECTOR, "#silences tbody tr"),
                 what="the silence gone after Expire")
    blocked = [m for m in browser.console() if "Content Security Policy" in m]
    assert blocked == []
