"""The dashboard's server over real HTTP: login, sessions, CSRF, rate limit, headers, CSV."""

from __future__ import annotations

import csv
import io
import re
import time
from importlib import resources
from pathlib import Path

from squidguard_bloom.monitor.web import auth
from squidguard_bloom.monitor.web.app import CSP

from .servers import Client, Process, ProxyLogs, Served, monitor

PAGES = ("/", "/tail", "/search")
APIS = ("/api/overview?range=1h", "/api/search", "/api/search.csv", "/api/live")


def test_password_hashes_are_salted_scrypt() -> None:
    one, two = auth.hash_password("secret pass"), auth.hash_password("secret pass")
    assert one != two and one.startswith("scrypt$16384$8$1$")
    assert auth.check_password("secret pass", one)
    assert not auth.check_password("secret pasS", one)
    assert not auth.check_password("secret pass", "md5$x")


def test_serve_listens_on_loopback_only(served: Served) -> None:
    other = served.url.replace("127.0.0.1", "127.0.0.2")
    try:
        Client(other).request("/healthz")
    except OSError as exc:
        assert "Connection refused" in str(exc)
    else:
        raise AssertionError(f"{other} answered: serve must bind 127.0.0.1 by default")


def test_everything_but_health_and_login_needs_a_session(served: Served) -> None:
    c = Client(served.url)
    assert c.request("/healthz")[::2] == (200, '{"status": "ok"}')
    for path in PAGES:
        status, headers, _ = c.request(path)
        assert (status, headers["Location"]) == (303, "/login"), path
    for path in APIS:
        assert c.request(path)[::2] == (401, '{"error": "log in first"}'), path
    assert c.request("/logout", {"csrf": "x"})[:2] == (303, c.request("/")[1])
    assert c.request("/static/app.css")[0] == 200


def test_login_sessions_and_logout(served: Served) -> None:
    c = Client(served.url)
    status, headers, _ = c.login(served.user, served.password)
    assert (status, headers["Location"]) == (303, "/")
    cookie = next(k for k in c.jar if k.name == "sgbm_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    for path in PAGES:
        status, headers, page = c.request(path)
        assert status == 200 and headers["Content-Security-Policy"] == CSP, path
        assert f'<span class="user" id="user">{served.user}</span>' in page
    csrf = c.page_csrf()
    # logging out needs the session's CSRF token
    assert c.request("/logout", {"csrf": "forged"})[::2] == (
        403, '{"error": "missing or wrong CSRF token: reload the page"}')
    assert c.request("/logout", {})[0] == 403
    assert c.request("/logout", {"csrf": csrf}, {"Origin": "http://evil.example"})[::2] == (
        403, '{"error": "cross-site request refused"}')
    assert c.request("/", None)[0] == 200  # still logged in after the refused attempts
    status, headers, _ = c.request("/logout", {"csrf": csrf})
    assert (status, headers["Location"]) == (303, "/login")
    fresh = Client(served.url)
    fresh.jar.set_cookie(cookie)  # the old cookie is dead on the server, not just forgotten
    assert fresh.request("/")[0] == 303


def test_login_form_needs_its_own_token(served: Served) -> None:
    c = Client(served.url)
    status, _, page = c.request("/login", {"csrf": "x" * 32, "user": served.user,
                                           "password": served.password})
    assert status == 403 and "The login form expired; please try again." in page


def test_failed_logins_are_rate_limited(served: Served) -> None:
    c = Client(served.url)
    for _ in range(5):
        status, _, page = c.login(served.user, "wrong password")
        assert status == 401 and "Wrong user name or password." in page
    # the sixth attempt is refused without checking, even with the right password
    status, headers, page = c.login(served.user, served.password)
    assert status == 429 and "Too many failed logins; try again in " in page
    assert 800 < int(headers["Retry-After"]) <= 901
    # a fresh browser (new cookies) from the same address is limited too, for any name
    other = Client(served.url)
    assert other.login("someone-else", "whatever")[0] == 429


def test_user_names_are_escaped_in_the_page(served: Served) -> None:
    name = '<script>alert(1)</script>"onmouseover="x'
    out = monitor("createuser", name, "--password-stdin", db=served.db, stdin="long password\n")
    assert (out.returncode, out.stdout) == (0, f"created user {name}\n")
    c = Client(served.url)
    assert c.login(name, "long password")[0] == 303
    page = c.request("/")[2]
    assert "<script>alert(1)" not in page and 'onmouseover="' not in page
    assert ('<span class="user" id="user">&lt;script&gt;alert(1)&lt;/script&gt;&quot;'
            'onmouseover=&quot;x</span>') in page


def test_createuser_refuses_short_passwords_and_resets_sessions(served: Served) -> None:
    out = monitor("createuser", "bob", "--password-stdin", db=served.db, stdin="short\n")
    assert (out.returncode, out.stderr) == (
        78, "squidguard-bloom-monitor: the password must have at least 10 characters\n")
    c = Client(served.url)
    assert c.login(served.user, served.password)[0] == 303
    out = monitor("createuser", served.user, "--password-stdin", db=served.db,
                  stdin="another long one\n")
    assert out.stdout == f"new password for user {served.user} (their sessions are ended)\n"
    assert c.request("/")[0] == 303


def test_templates_hold_no_inline_script_or_style() -> None:
    folder = resources.files("squidguard_bloom.monitor.web").joinpath("templates")
    for entry in folder.iterdir():
        text = entry.read_text(encoding="utf-8")
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == [], entry.name
        assert re.findall(r"\sstyle=|<style|\son[a-z]+=", text) == [], entry.name
    js = resources.files("squidguard_bloom.monitor.web").joinpath("static")
    for entry in js.iterdir():
        if entry.name.endswith(".js"):
            assert "innerHTML" not in entry.read_text() and "insertAdjacentHTML" not in \
                entry.read_text(), entry.name


def test_csv_export_is_formula_safe(served: Served, ingest: Process, incoming: Path) -> None:
    now = time.time()
    logs = ProxyLogs(incoming, "p1")
    logs.access(now - 5, "http://a.example/x", user="=cmd|'/C_calc'!A0", client="@1")
    logs.access(now - 4, "http://a.example/y", user="+SUM(1)", client="10.0.0.2")
    c = Client(served.url)
    c.login(served.user, served.password)
    deadline = time.monotonic() + 60
    rows: list[list[str]] = []
    while time.monotonic() < deadline and len(rows) < 3:
        status, headers, text = c.request(f"/api/search.csv?kind=access&from={now - 60}")
        rows = list(csv.reader(io.StringIO(text)))
        time.sleep(0.2)
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"].startswith('attachment; filename="squidguard-access-')
    assert rows[0] == ["time_utc", "proxy", "client", "user", "method", "result", "status",
                       "bytes", "host", "url"]
    assert [r[1:] for r in rows[1:]] == [
        ["p1", "10.0.0.2", "'+SUM(1)", "GET", "TCP_MISS", "200", "1000", "a.example",
         "http://a.example/y"],
        ["p1", "'@1", "'=cmd|'/C_calc'!A0", "GET", "TCP_MISS", "200", "1000", "a.example",
         "http://a.example/x"]]
