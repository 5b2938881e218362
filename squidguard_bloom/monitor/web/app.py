"""``serve``: the dashboard's web server (aiohttp), its pages, JSON API and live channel.

Security model (docs/monitor.md, "The dashboard"):

* every page and API needs a session, except ``/healthz``, ``/login`` and ``/static/``;
* state-changing requests are POST and carry the session's CSRF token (form field
  ``csrf`` or header ``X-CSRF-Token``), and a foreign ``Origin`` is refused; the login
  form has its own double-submit token;
* the pages hold no logged value: the browser fetches JSON and renders it with
  ``textContent`` only; the one value in a template (the user name) is HTML-escaped;
* a Content-Security-Policy allows scripts and styles from this origin only (no inline
  script, no inline style); cookies are HttpOnly and SameSite=Strict;
* failed logins are rate-limited per address and per user name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import ipaddress
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from aiohttp import web

from squidguard_bloom.monitor.alerts import store as alert_store
from squidguard_bloom.monitor.alerts.settings import RULE_DEFAULTS, duration
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorConfigError
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.web import auth, queries
from squidguard_bloom.monitor.web.live import Hub, Listener, TailFilter

log = logging.getLogger("squidguard_bloom.monitor")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
OPEN_PATHS = ("/healthz", "/login", "/static/", "/favicon.ico")
LOGIN_COOKIE = "sgbm_login"
HEARTBEAT = 15.0
SEARCH_MAX_LIMIT = 500
CSV_MAX_ROWS = 100_000
# Top lists over 6 h and more read tens of thousands of rollup rows (every host of every hour
# or day, fleet-wide sums over all proxies); they change little within seconds, so pages
# share them for cache_seconds.
TOPS_CACHE_SPAN = 6 * 3600
CSV_CHUNK = 5000
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{32}$")


class Dashboard:
    """The server's shared state: database threads, the live hub, the login limiter."""

    def __init__(self, db_url: str, *, secure_cookies: bool = False,
                 trust_forwarded: bool = False, poll_interval: float = 0.25,
                 db_threads: int = 4, cache_seconds: float = 30.0) -> None:
        self.db_url = db_url
        self.secure_cookies = secure_cookies
        self.trust_forwarded = trust_forwarded
        self.cookie = "__Host-sgbm_session" if secure_cookies else "sgbm_session"
        self.pool = ThreadPoolExecutor(db_threads, thread_name_prefix="sgbm-db")
        self._local = threading.local()
        self._opened: list[Database] = []
        self._lock = threading.Lock()
        self.limiter = auth.LoginLimiter()
        self.cache_seconds = cache_seconds
        self._tops: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}
        self.hub = Hub(self.run_db, interval=poll_interval)
        self.templates = resources.files("squidguard_bloom.monitor.web").joinpath("templates")

    def _db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_database(self.db_url, migrate=False)
            with self._lock:
                self._opened.append(db)
        return db

    def run_db(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Run fn(db, *args) on a database thread."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.pool, lambda: fn(self._db(), *args))

    def tops_cached(self, key: tuple[str, str | None], span: float
                    ) -> dict[str, Any] | None:
        """The top lists of a long range computed less than cache_seconds ago, or None."""
        if span < TOPS_CACHE_SPAN or self.cache_seconds <= 0:
            return None
        with self._lock:
            hit = self._tops.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def tops_store(self, key: tuple[str, str | None], span: float, tops: dict[str, Any]
                   ) -> dict[str, Any]:
        """Keep the top lists of a long range for cache_seconds (shared by every page)."""
        if span >= TOPS_CACHE_SPAN and self.cache_seconds > 0:
            with self._lock:
                self._tops[key] = (time.monotonic() + self.cache_seconds, tops)
        return tops

    async def close(self) -> None:
        await self.hub.close()
        self.pool.shutdown(wait=True)
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()

    # -- pages -------------------------------------------------------------------------------

    def render(self, page: str, title: str, **values: str) -> str:
        """A page: layout + body template; every value HTML-escaped, substituted once."""
        body = self.templates.joinpath(f"{page}.html").read_text(encoding="utf-8")
        layout = "login_layout" if page == "login" else "layout"
        text = self.templates.joinpath(f"{layout}.html").read_text(encoding="utf-8")
        text = text.replace("{{body}}", body)
        escaped = {k: html.escape(v, quote=True) for k, v in
                   {"title": title, "page": page, **values}.items()}
        return _PLACEHOLDER.sub(lambda m: escaped.get(m.group(1), ""), text)

    def client_address(self, request: web.Request) -> str:
        """The browser's address (X-Forwarded-For from a loopback reverse proxy if trusted)."""
        remote = request.remote or "?"
        if self.trust_forwarded and _is_loopback(remote):
            forwarded = request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last
        return remote


STATE_KEY = web.AppKey("dashboard", Dashboard)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _state(request: web.Request) -> Dashboard:
    return request.app[STATE_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


# -- middlewares ------------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Callable[[web.Request],
                           Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Headers on every response, errors included."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        resp = web.Response(status=500, text="internal error; the server's log says more")
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        resp.headers.setdefault("Cache-Control", "private, max-age=3600")
    else:
        resp.headers.setdefault("Cache-Control", "no-store")
    if isinstance(resp, web.HTTPException):
        raise resp
    return resp


@web.middleware
async def require_login(request: web.Request, handler: Callable[[web.Request],
                        Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """A session for everything but the open paths; CSRF and Origin checks on POST."""
    state = _state(request)
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    token = request.cookies.get(state.cookie, "")
    session = await state.run_db(auth.find_session, token) if token else None
    if session is None:
        if request.path.startswith("/api/"):
            return _error("log in first", 401)
        raise web.HTTPSeeOther("/login")
    request["session"] = session
    request["session_token"] = token
    if request.method not in ("GET", "HEAD"):
        if not _same_origin(request):
            return _error("cross-site request refused", 403)
        given = request.headers.get("X-CSRF-Token")
        if given is None and request.content_type == "application/x-www-form-urlencoded":
            given = str((await request.post()).get("csrf", ""))
        if not auth.same_token(given, session.csrf):
            return _error("missing or wrong CSRF token: reload the page", 403)
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    host = origin.split("://", 1)[-1]
    return host == request.headers.get("Host", request.host)


# -- handlers ---------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Open to all: whether the database answers; nothing about its contents."""
    try:
        await _state(request).run_db(lambda db: db.scalar("SELECT 1"))
    except Exception:
        return _json({"status": "database unavailable"}, 503)
    return _json({"status": "ok"})


async def favicon(_request: web.Request) -> web.Response:
    """No icon (and no redirect to the login page for the browser's automatic request)."""
    return web.Response(status=204)


def _login_page(request: web.Request, message: str = "", status: int = 200) -> web.Response:
    state = _state(request)
    # One nonce per browser while it lasts: a second GET /login (another tab, a redirect)
    # must not invalidate the form already shown.
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not _NONCE.match(nonce):
        nonce = secrets.token_urlsafe(24)
    resp = web.Response(text=state.render("login", "Log in", csrf=nonce, message=message),
                        content_type="text/html", status=status)
    resp.set_cookie(LOGIN_COOKIE, nonce, path="/login", httponly=True, samesite="Strict",
                    secure=state.secure_cookies, max_age=3600)
    return resp


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    """Check the form's token, the rate limit, then the password; a session cookie."""
    state = _state(request)
    form = await request.post()
    if not auth.same_token(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "x")):
        return _login_page(request, "The login form expired; please try again.", 403)
    name = str(form.get("user", ""))[:auth.USER_NAME_MAX + 1]
    password = str(form.get("password", ""))[:1024]
    keys = [f"addr:{state.client_address(request)}", f"user:{name}"]
    wait = state.limiter.retry_after(keys)
    if wait > 0:
        resp = _login_page(request, f"Too many failed logins; try again in {int(wait) + 1} s.",
                           429)
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    uid = await state.run_db(auth.verify_user, name, password)
    if uid is None:
        state.limiter.failed(keys)
        log.warning("failed login for %r from %s", name, state.client_address(request))
        return _login_page(request, "Wrong user name or password.", 401)
    state.limiter.succeeded(keys)
    token, _session = await state.run_db(auth.new_session, uid)
    resp = web.HTTPSeeOther("/")
    resp.set_cookie(state.cookie, token, path="/", httponly=True, samesite="Strict",
                    secure=state.secure_cookies)
    resp.del_cookie(LOGIN_COOKIE, path="/login")
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    await state.run_db(auth.end_session, request["session_token"])
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(state.cookie, path="/")
    raise resp


def _page(name: str, title: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        session: auth.Session = request["session"]
        text = _state(request).render(name, title, user=session.user, csrf=session.csrf)
        return web.Response(text=text, content_type="text/html")
    return handler


def _window(request: web.Request) -> tuple[float, float]:
    now = time.time()
    span = queries.RANGES.get(request.query.get("range", "1h"))
    if span is None:
        raise MonitorConfigError(f"range must be one of {', '.join(queries.RANGES)}")
    return now - span, now


async def overview(request: web.Request) -> web.Response:
    """Tiles, charts and top lists for ?range=1h&proxy=NAME."""
    try:
        since, until = _window(request)
    except MonitorConfigError as exc:
        return _error(str(exc))
    proxy = request.query.get("proxy") or None
    state = _state(request)

    key = (request.query.get("range", "1h"), proxy)

    def top_lists(db: Database) -> dict[str, Any]:
        return (state.tops_cached(key, until - since)
                or state.tops_store(key, until - since, queries.tops(db, since, until, proxy)))

    # three database threads at once: the answer takes the longest part, not the sum
    tiles, series, tops = await asyncio.gather(
        state.run_db(queries.tiles, until), state.run_db(queries.series, since, until, proxy),
        state.run_db(top_lists))
    return _json({"now": until, "since": since, "until": until, "proxy": proxy,
                  "tiles": tiles, "series": series, "tops": tops})


def _number(text: str | None, what: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise MonitorConfigError(f"{what} must be a number of seconds since 1970") from None
    if not (0 <= value < 1e11):
        raise MonitorConfigError(f"{what} is out of range")
    return value


def parse_search(query: Any, now: float | None = None) -> queries.Search:
    """A Search from the query string (MonitorConfigError names the bad field)."""
    now = time.time() if now is None else now
    kind = query.get("kind", "decision")
    if kind not in queries.KINDS:
        raise MonitorConfigError("kind must be decision or access")
    until = _number(query.get("to"), "to") or now + 1
    since = _number(query.get("from"), "from")
    since = until - 86400 if since is None else since
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise MonitorConfigError("limit must be a whole number") from None
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise MonitorConfigError(f"limit must be 1 to {SEARCH_MAX_LIMIT}")
    before = None
    if query.get("before"):
        ts, _, rid = str(query["before"]).partition(":")
        try:
            before = (float(ts), int(rid))
        except ValueError:
            raise MonitorConfigError("before must be TS:ID, as the previous page gave") from None

    def text(name: str) -> str | None:
        value = str(query.get(name, "")).strip()
        return value[:2048] or None

    return queries.Search(kind=kind, since=since, until=until, proxy=text("proxy"),
                          client=text("client"), domain=text("domain"),
                          category=text("category"), action=text("action"),
                          result=text("result"), before=before, limit=limit)


async def search(request: web.Request) -> web.Response:
    try:
        q = parse_search(request.query)
    except MonitorConfigError as exc:
        return _error(str(exc))
    rows, nxt = await _state(request).run_db(queries.search, q)
    return _json({"rows": rows, "next": f"{nxt[0]!r}:{nxt[1]}" if nxt else None})


async def search_csv(request: web.Request) -> web.StreamResponse:
    """The whole search (up to 100,000 rows) as CSV, safe to open in a spreadsheet."""
    try:
        q = parse_search(request.query)
    except MonitorConfigError as exc:
        return _error(str(exc))
    state = _state(request)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="squidguard-{q.kind}-{stamp}.csv"'})
    await resp.prepare(request)
    await resp.write(queries.csv_header(q.kind).encode("utf-8"))
    page = dataclasses.replace(q, limit=CSV_CHUNK)
    sent = 0
    while sent < CSV_MAX_ROWS:
        page.limit = min(CSV_CHUNK, CSV_MAX_ROWS - sent)
        rows, nxt = await state.run_db(queries.search, page)
        await resp.write(queries.csv_rows(q.kind, rows).encode("utf-8"))
        sent += len(rows)
        if nxt is None:
            break
        page.before = nxt
    await resp.write_eof()
    return resp


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``tiles`` every few seconds, and ``rows`` of the live tail
    (with ?tail=1 and its filters) or ``tick`` (new rows exist: charts may refresh)."""
    state = _state(request)
    q = request.query
    tail = None
    if q.get("tail"):
        tail = TailFilter(**{k: str(q.get(k, ""))[:256] for k in (
            "proxy", "kind", "client", "domain", "category", "action", "result")})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    listener = Listener(tail)
    state.hub.add(listener)
    try:
        await resp.write(b"retry: 2000\n\n")
        while True:
            try:
                event = await asyncio.wait_for(listener.queue.get(), HEARTBEAT)
            except TimeoutError:
                event = ": keep-alive\n\n"
            await resp.write(event.encode("utf-8"))
    except ConnectionResetError:  # the page was closed
        pass
    finally:
        state.hub.remove(listener)
    return resp


SILENCE_MAX = 90 * 86400.0  # the longest silence the page accepts


async def alerts_api(request: web.Request) -> web.Response:
    """Alerts now, live silences, the latest state changes and messages (docs/alerts.md)."""
    data = await _state(request).run_db(alert_store.overview, time.time(), 100)
    return _json(data)


async def silence_add(request: web.Request) -> web.Response:
    """POST rule, proxy (glob), for (duration), comment: a silence by the logged-in user."""
    session: auth.Session = request["session"]
    form = await request.post()
    rule = str(form.get("rule", "*")).strip() or "*"
    proxy = str(form.get("proxy", "*")).strip()[:256] or "*"
    comment = str(form.get("comment", "")).strip()[:500]
    if rule != "*" and rule not in RULE_DEFAULTS:
        return _error(f"rule must be * or one of {', '.join(RULE_DEFAULTS)}")
    try:
        seconds = duration(str(form.get("for", "2h")), "for")
    except MonitorConfigError as exc:
        return _error(str(exc))
    if not 0 < seconds <= SILENCE_MAX:
        return _error("for must be more than 0 and at most 90 days")
    now = time.time()
    sid = await _state(request).run_db(alert_store.add_silence, rule, proxy, now,
                                       now + seconds, now, session.user, comment)
    log.info("silence #%d (%s on %s for %.0f s) by %s", sid, rule, proxy, seconds, session.user)
    return _json({"id": sid, "ends": now + seconds})


async def silence_expire(request: web.Request) -> web.Response:
    """POST /api/silences/ID/expire: end a live silence now."""
    try:
        sid = int(request.match_info["sid"])
    except ValueError:
        return _error("no such silence", 404)
    done = await _state(request).run_db(alert_store.expire_silence, sid, time.time())
    return _json({"id": sid}) if done else _error("no live silence with that id", 404)


def build_app(state: Dashboard) -> web.Application:
    """The aiohttp application over a Dashboard."""
    app = web.Application(middlewares=[security_headers, require_login],
                          client_max_size=64 * 1024)
    app[STATE_KEY] = state
    static = resources.files("squidguard_bloom.monitor.web").joinpath("static")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", _page("dashboard", "Dashboard"))
    app.router.add_get("/tail", _page("tail", "Live tail"))
    app.router.add_get("/search", _page("search", "Search"))
    app.router.add_get("/alerts", _page("alerts", "Alerts"))
    app.router.add_get("/api/alerts", alerts_api)
    app.router.add_post("/api/silences", silence_add)
    app.router.add_post("/api/silences/{sid}/expire", silence_expire)
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/search", search)
    app.router.add_get("/api/search.csv", search_csv)
    app.router.add_get("/api/live", live)
    app.router.add_static("/static/", str(static), show_index=False, follow_symlinks=False)

    async def on_cleanup(_app: web.Application) -> None:
        await state.close()

    async def on_shutdown(_app: web.Application) -> None:
        await state.hub.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def serve(db_url: str, host: str = "127.0.0.1", port: int = 8080, *,
          secure_cookies: bool = False, trust_forwarded: bool = False,
          poll_interval: float = 0.25, cache_seconds: float = 30.0,
          ready: Callable[[str], None] | None = None) -> None:
    """Run the dashboard until SIGINT/SIGTERM."""
    state = Dashboard(db_url, secure_cookies=secure_cookies, trust_forwarded=trust_forwarded,
                      poll_interval=poll_interval, cache_seconds=cache_seconds)
    url_host = f"[{host}]" if ":" in host else host

    def announce(_text: str) -> None:
        message = f"dashboard on http://{url_host}:{port}/"
        log.info("%s", message)
        if ready is not None:
            ready(message)

    web.run_app(build_app(state), host=host, port=port, access_log=None, print=announce,
                shutdown_timeout=3.0, handle_signals=True)
