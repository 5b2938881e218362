"""Every query the dashboard runs: rollups for tiles, charts and top lists; index ranges for
search, CSV export and the live tail. None scans raw rows:

* tiles, charts: ``rollup_lines``/``rollup_cache``/``rollup_decisions`` by their primary key,
  which starts with the minute, or their ``_hourly`` sums (migration 3) for hour-long chart
  buckets; helper and shipper state: ``events (proxy_id, kind, ts)``;
* top lists: the hourly ``rollup_blocked_hosts``/``rollup_clients``/``rollup_hosts`` for one
  proxy, their fleet-wide ``_fleet`` sums (migration 5) for all proxies, or their ``_daily``
  sums over more than a day;
* search: ``(client, ts)`` or ``(host, ts)`` when a client or domain is given, else ``(ts)``;
  newest first, keyset paging on ``(ts, id)``, at most ``limit`` rows read past the filters;
* live tail: the primary key, ``id > last seen``.

Values come back as plain JSON-able dicts; nothing here formats for a page (the browser
renders everything as text).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from typing import Any

from squidguard_bloom.monitor import postings
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.report import STATE_KINDS

RANGES = {"15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000}
STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_POINTS = 180
TOP_CATEGORIES = 8
SHIPPER_KINDS = ("link_up", "link_down", "gave_up")
KINDS = ("access", "decision")

ACCESS_FIELDS = "id, proxy_id, ts, client, ident, method, url, host, result, status, bytes"
DECISION_FIELDS = "id, proxy_id, ts, client, ident, method, url, host, target, action, source"


def step_for(span: float) -> int:
    """Chart bucket (seconds, a whole number of minutes) giving at most MAX_POINTS points;
    whole hours from a day on, so that those charts read the hourly rollups."""
    for step in STEPS:
        if span / step <= MAX_POINTS and (span < 86400 or step % 3600 == 0):
            return step
    return STEPS[-1]


def proxy_names(db: Database) -> dict[int, str]:
    """id -> name of every proxy (a small table)."""
    return {int(pid): str(name) for pid, name in db.execute("SELECT id, name FROM proxies")}


def _proxy_id(db: Database, name: str | None) -> int | None:
    if not name:
        return None
    pid = db.scalar("SELECT id FROM proxies WHERE name = ?", (name,))
    return -1 if pid is None else int(pid)  # -1: a name that matches nothing


def _latest_event(db: Database, proxy_id: int, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The newest event of any of kinds for a proxy: one index seek per kind."""
    best: tuple[float, str] | None = None
    for kind in kinds:
        ts = db.scalar("SELECT max(ts) FROM events WHERE proxy_id = ? AND kind = ?",
                       (proxy_id, kind))
        if ts is not None and (best is None or ts > best[0]):
            best = (float(ts), kind)
    if best is None:
        return None
    message = db.scalar("SELECT message FROM events WHERE proxy_id = ? AND kind = ? AND ts = ? "
                        "ORDER BY id DESC LIMIT 1", (proxy_id, best[1], best[0]))
    return {"kind": best[1], "ts": best[0], "message": message}


def tiles(db: Database, now: float | None = None) -> list[dict[str, Any]]:
    """One tile per proxy: freshness, lines/min (last 5 whole minutes), the helper's and the
    shipper's state from their logs, blocks, welcomes and the cache hit ratio (last hour)."""
    now = time.time() if now is None else now
    this_minute = int(now // 60 * 60)
    hour_ago = this_minute - 3600
    out: dict[int, dict[str, Any]] = {}
    for pid, name, last_received, last_line_ts in db.execute(
            "SELECT id, name, last_received, last_line_ts FROM proxies ORDER BY name"):
        out[int(pid)] = {
            "proxy": name, "last_received": last_received, "last_line_ts": last_line_ts,
            "lines_per_min": 0.0, "unparsed_hour": 0, "requests_hour": 0, "hits_hour": 0,
            "hit_ratio": None, "bytes_hour": 0, "hit_bytes_hour": 0, "byte_hit_ratio": None,
            "blocks_hour": 0, "welcomes_hour": 0, "helper": None, "shipper": None}
    for pid, lines in db.execute(
            "SELECT proxy_id, sum(lines) FROM rollup_lines WHERE minute >= ? AND minute < ? "
            "GROUP BY proxy_id", (this_minute - 300, this_minute)):
        if int(pid) in out:
            out[int(pid)]["lines_per_min"] = round(int(lines) / 5.0, 1)
    for pid, unparsed in db.execute(
            "SELECT proxy_id, sum(unparsed) FROM rollup_lines WHERE minute >= ? "
            "GROUP BY proxy_id", (hour_ago,)):
        if int(pid) in out:
            out[int(pid)]["unparsed_hour"] = int(unparsed)
    for pid, hit, n, size in db.execute(
            "SELECT proxy_id, hit, sum(n), sum(bytes) FROM rollup_cache WHERE minute >= ? "
            "GROUP BY proxy_id, hit", (hour_ago,)):
        t = out.get(int(pid))
        if t is None:
            continue
        t["requests_hour"] += int(n)
        t["bytes_hour"] += int(size)
        if hit:
            t["hits_hour"] += int(n)
            t["hit_bytes_hour"] += int(size)
    for pid, action, n in db.execute(
            "SELECT proxy_id, action, sum(n) FROM rollup_decisions WHERE minute >= ? "
            "AND action IN ('REDIRECT', 'WELCOME') GROUP BY proxy_id, action", (hour_ago,)):
        t = out.get(int(pid))
        if t is not None:
            t["blocks_hour" if action == "REDIRECT" else "welcomes_hour"] = int(n)
    for pid, t in out.items():
        if t["requests_hour"]:
            t["hit_ratio"] = t["hits_hour"] / t["requests_hour"]
        if t["bytes_hour"]:
            t["byte_hit_ratio"] = t["hit_bytes_hour"] / t["bytes_hour"]
        t["helper"] = _latest_event(db, pid, STATE_KINDS)
        t["shipper"] = _latest_event(db, pid, SHIPPER_KINDS)
    return list(out.values())


def series(db: Database, since: float, until: float, proxy: str | None = None
           ) -> dict[str, Any]:
    """Charts over [since, until): requests, cache hits, blocks and welcomes per bucket (all
    proxies, or one), blocks by category, and requests and blocks per proxy."""
    step = step_for(until - since)
    first = int(since // step * step)
    times = list(range(first, int(until), step))
    index = {t: i for i, t in enumerate(times)}
    n = len(times)
    only = _proxy_id(db, proxy)
    names = proxy_names(db)
    # a chart of hour-long (or longer) buckets reads the hourly rollups: 60 times fewer rows
    hourly = step % 3600 == 0
    col = "hour" if hourly else "minute"
    decisions, cache = (("rollup_decisions_hourly", "rollup_cache_hourly") if hourly
                        else ("rollup_decisions", "rollup_cache"))
    b = f"({col} / {step}) * {step}"

    def zeros() -> list[int]:
        return [0] * n

    totals = {"requests": zeros(), "hits": zeros(), "blocks": zeros(), "welcomes": zeros()}
    per_proxy: dict[str, dict[str, list[int]]] = {}

    def proxy_slot(pid: int) -> dict[str, list[int]]:
        name = names.get(pid, str(pid))
        slot = per_proxy.get(name)
        if slot is None:
            slot = per_proxy[name] = {"requests": zeros(), "blocks": zeros()}
        return slot

    for bucket, pid, hit, count in db.execute(
            f"SELECT {b}, proxy_id, hit, sum(n) FROM {cache} WHERE {col} >= ? "
            f"AND {col} < ? GROUP BY 1, 2, 3", (first, until)):
        i = index.get(int(bucket))
        if i is None:
            continue
        proxy_slot(int(pid))["requests"][i] += int(count)
        if only is None or only == pid:
            totals["requests"][i] += int(count)
            if hit:
                totals["hits"][i] += int(count)
    categories: dict[str, list[int]] = {}
    for bucket, pid, target, action, count in db.execute(
            f"SELECT {b}, proxy_id, target, action, sum(n) FROM {decisions} "
            f"WHERE {col} >= ? AND {col} < ? AND action IN ('REDIRECT', 'WELCOME') "
            "GROUP BY 1, 2, 3, 4", (first, until)):
        i = index.get(int(bucket))
        if i is None:
            continue
        if action == "REDIRECT":
            proxy_slot(int(pid))["blocks"][i] += int(count)
        if only is not None and only != pid:
            continue
        if action == "WELCOME":
            totals["welcomes"][i] += int(count)
        else:
            totals["blocks"][i] += int(count)
            categories.setdefault(str(target), zeros())[i] += int(count)
    ranked = sorted(categories, key=lambda c: (-sum(categories[c]), c))
    by_category = {c: categories[c] for c in ranked[:TOP_CATEGORIES]}
    if len(ranked) > TOP_CATEGORIES:
        rest = zeros()
        for c in ranked[TOP_CATEGORIES:]:
            for i, v in enumerate(categories[c]):
                rest[i] += v
        by_category["(other categories)"] = rest
    return {"step": step, "times": times, "totals": totals, "by_category": by_category,
            "by_proxy": dict(sorted(per_proxy.items()))}


def tops(db: Database, since: float, until: float, proxy: str | None = None, limit: int = 10
         ) -> dict[str, list[dict[str, Any]]]:
    """Top blocked domains, top clients and top cached domains from the hourly rollups (the
    whole hours that [since, until) touches) or, over more than a day, the daily ones (the
    whole UTC days it touches). Over all proxies and up to a day, the fleet-wide hourly sums
    (migration 5): the same numbers from one row per host or client and hour, instead of one
    per proxy that saw it."""
    daily = until - since > 86400
    col, size, suffix = ("day", 86400, "_daily") if daily else ("hour", 3600, "")
    first = int(since // size * size)
    where = f"{col} >= ? AND {col} < ?"
    params: list[Any] = [first, until]
    only = _proxy_id(db, proxy)
    if only is not None:
        where += " AND proxy_id = ?"
        params.append(only)
    elif not daily:
        suffix = "_fleet"
    blocked = [{"host": h, "category": c, "blocks": int(n)} for h, c, n in db.execute(
        f"SELECT host, target, sum(n) FROM rollup_blocked_hosts{suffix} WHERE {where} "
        "GROUP BY host, target ORDER BY 3 DESC, 1, 2 LIMIT ?", (*params, limit))]
    clients = [{"client": c, "requests": int(r), "blocks": int(bl), "bytes": int(by)}
               for c, r, bl, by in db.execute(
        f"SELECT client, sum(requests), sum(blocks), sum(bytes) FROM rollup_clients{suffix} "
        f"WHERE {where} GROUP BY client ORDER BY sum(requests) + sum(blocks) DESC, 1 LIMIT ?",
        (*params, limit))]
    cached = [{"host": h, "hits": int(hits), "requests": int(n), "hit_bytes": int(hb)}
              for h, hits, n, hb in db.execute(
        f"SELECT host, sum(hits), sum(n), sum(hit_bytes) FROM rollup_hosts{suffix} "
        f"WHERE {where} "
        "GROUP BY host HAVING sum(hits) > 0 ORDER BY 2 DESC, 4 DESC, 1 LIMIT ?",
        (*params, limit))]
    return {"blocked": blocked, "clients": clients, "cached": cached}


# -- rows: search, export, live tail ---------------------------------------------------------


@dataclass
class Search:
    """A search over raw rows; every filter is an exact match (domain: the lower-case host)."""

    kind: str = "decision"  # decision (helper log) | access (Squid access.log)
    since: float = 0.0
    until: float = 0.0
    proxy: str | None = None
    client: str | None = None
    domain: str | None = None
    category: str | None = None  # decisions only
    action: str | None = None  # decisions only: REDIRECT, PASS, REWRITE, WELCOME
    result: str | None = None  # access only: TCP_HIT, TCP_MISS ...
    before: tuple[float, int] | None = None  # keyset cursor: rows older than (ts, id)
    limit: int = 50
    errors: list[str] = field(default_factory=list)


def _row(kind: str, r: tuple, names: dict[int, str]) -> dict[str, Any]:
    if kind == "access":
        rid, pid, ts, client, ident, method, url, host, result, status, size = r
        return {"kind": kind, "id": int(rid), "proxy": names.get(int(pid), str(pid)),
                "ts": float(ts), "client": client, "user": ident, "method": method, "url": url,
                "host": host, "result": result, "status": int(status), "bytes": int(size),
                "action": None, "category": None}
    rid, pid, ts, client, ident, method, url, host, target, action, source = r
    return {"kind": kind, "id": int(rid), "proxy": names.get(int(pid), str(pid)),
            "ts": float(ts), "client": client, "user": ident, "method": method, "url": url,
            "host": host, "action": action, "category": target, "source": source,
            "result": None, "status": None, "bytes": None}


def search(db: Database, q: Search) -> tuple[list[dict[str, Any]], tuple[float, int] | None]:
    """One page of rows, newest first, and the cursor of the next page (None: last page).

    With a client or a domain, the rows come from that value's search postings, an hour at a
    time (monitor/postings.py); otherwise from the time index."""
    table, fields = (("access", ACCESS_FIELDS) if q.kind == "access"
                     else ("decisions", DECISION_FIELDS))
    where = ["ts >= ?", "ts < ?"]
    params: list[Any] = [q.since, q.until]
    pid = _proxy_id(db, q.proxy)
    if pid is not None:
        where.append("proxy_id = ?")
        params.append(pid)
    if q.client:
        where.append("client = ?")
        params.append(q.client)
    if q.domain:
        where.append("host = ?")
        params.append(q.domain.lower())
    if q.kind == "access":
        if q.result:
            where.append("result = ?")
            params.append(q.result)
    else:
        if q.category:
            where.append("target = ?")
            params.append(q.category)
        if q.action:
            where.append("action = ?")
            params.append(q.action)
    if q.before is not None:
        where.append("(ts < ? OR (ts = ? AND id < ?))")
        params += [q.before[0], q.before[0], q.before[1]]
    want = q.limit + 1
    if q.client or q.domain:
        indexed, value = ((postings.CLIENT, q.client) if q.client
                          else (postings.HOST, (q.domain or "").lower()))
        until = min(q.until, q.before[0] + 1) if q.before is not None else q.until
        rows: list[tuple] = []
        for ids in postings.hours_newest_first(db, table, indexed, value, q.since,
                                                    until):
            rows += postings.fetch(db, f"SELECT {fields} FROM {table}", where, params, ids)
            if len(rows) >= want:  # every older hour holds only older rows
                break
        rows.sort(key=lambda r: (r[2], r[0]), reverse=True)
        rows = rows[:want]
    else:
        rows = db.execute(f"SELECT {fields} FROM {table} WHERE {' AND '.join(where)} "
                          "ORDER BY ts DESC, id DESC LIMIT ?", (*params, want))
    names = proxy_names(db)
    out = [_row(q.kind, r, names) for r in rows[:q.limit]]
    nxt = (out[-1]["ts"], out[-1]["id"]) if len(rows) > q.limit and out else None
    return out, nxt


CSV_COLUMNS = {
    "decision": ("time_utc", "proxy", "client", "user", "method", "action", "category",
                 "host", "url"),
    "access": ("time_utc", "proxy", "client", "user", "method", "result", "status", "bytes",
               "host", "url"),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|")


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading ``= + - @``, tab, CR, LF or ``|`` (which
    would start a formula or a DDE call) gets a ``'`` before it; a lone ``-`` stays."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and text != "-":  # a lone "-" (no user) is no formula
        return "'" + text
    return text


def csv_header(kind: str) -> str:
    """The CSV header line of a search of kind."""
    return _csv_text([CSV_COLUMNS[kind]])


def csv_rows(kind: str, rows: list[dict[str, Any]]) -> str:
    """CSV lines of search rows of kind; every text cell through csv_cell."""
    columns = CSV_COLUMNS[kind]
    lines = []
    for r in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["ts"]))
        stamp += f".{round(r['ts'] % 1 * 1000) % 1000:03d}"
        values = {**r, "time_utc": stamp}
        lines.append([csv_cell(values.get(c)) for c in columns])
    return _csv_text(lines)


def _csv_text(lines: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(lines)
    return buf.getvalue()


def newest_ids(db: Database) -> tuple[int, int]:
    """The largest access and decisions ids now (the live tail starts after them)."""
    return (int(db.scalar("SELECT coalesce(max(id), 0) FROM access")),
            int(db.scalar("SELECT coalesce(max(id), 0) FROM decisions")))


def rows_after(db: Database, access_id: int, decision_id: int, limit: int = 2000
               ) -> tuple[list[dict[str, Any]], int, int]:
    """Rows stored since the given ids (at most the newest ``limit`` of each table), oldest
    first, and the new largest ids."""
    names = proxy_names(db)
    out: list[dict[str, Any]] = []
    for kind, table, fields, last in (("access", "access", ACCESS_FIELDS, access_id),
                                      ("decision", "decisions", DECISION_FIELDS, decision_id)):
        rows = db.execute(f"SELECT {fields} FROM {table} WHERE id > ? ORDER BY id DESC LIMIT ?",
                          (last, limit))
        if rows:
            newest = int(rows[0][0])
            if kind == "access":
                access_id = newest
            else:
                decision_id = newest
            out.extend(_row(kind, r, names) for r in reversed(rows))
    out.sort(key=lambda r: (r["ts"], r["id"]))
    return out, access_id, decision_id
