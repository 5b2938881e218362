"""``report --since 1h``: per proxy, what the rollups say about a recent window.

Per proxy: lines received (and unparsed), when its newest line was stored and
the newest time written in it, the helper's last state line, blocks by
category, welcomes, access.log requests with the cache hit ratio by requests
and by bytes, bytes served from the cache, status codes, and the top blocked
domains. Everything comes from the rollups (per-minute buckets; the top lists
from per-hour buckets, so they count the whole hours the window touches) and
from the small ``proxies``/``events`` tables: a report never scans raw rows.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
STATE_KINDS = ("started", "ready", "stopped", "reload", "reload_failed", "emergency")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h``, ``2d``, ``1w``."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise MonitorConfigError(f"'{text}' is not a duration: write a number with s, m, h, d "
                                 "or w (for example 15m or 1h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def collect(db: Database, since: float, now: float | None = None, top: int = 5
            ) -> dict[str, Any]:
    """The report's data: {since, until, proxies: [...]}, one entry per known proxy."""
    now = time.time() if now is None else now
    minute = int(since // 60 * 60)
    hour = int(since // 3600 * 3600)
    proxies: dict[int, dict[str, Any]] = {}
    for pid, name, last_received, last_line_ts in db.execute(
            "SELECT id, name, last_received, last_line_ts FROM proxies ORDER BY name"):
        proxies[pid] = {
            "proxy": name, "lines": 0, "unparsed": 0, "last_received": last_received,
            "last_line_ts": last_line_ts, "helper_state": None, "blocks": 0,
            "blocks_by_category": {}, "welcomes": 0, "requests": 0, "hits": 0,
            "hit_ratio": None, "bytes": 0, "hit_bytes": 0, "byte_hit_ratio": None,
            "status_codes": {}, "top_blocked_domains": [],
        }
    for pid, lines, unparsed in db.execute(
            "SELECT proxy_id, sum(lines), sum(unparsed) FROM rollup_lines WHERE minute >= ? "
            "GROUP BY proxy_id", (minute,)):
        proxies[pid]["lines"] = int(lines) + int(unparsed)
        proxies[pid]["unparsed"] = int(unparsed)
    for pid, target, action, n in db.execute(
            "SELECT proxy_id, target, action, sum(n) FROM rollup_decisions WHERE minute >= ? "
            "AND action IN ('REDIRECT', 'WELCOME') GROUP BY proxy_id, target, action "
            "ORDER BY proxy_id, 4 DESC, target", (minute,)):
        p = proxies[pid]
        if action == "WELCOME":
            p["welcomes"] += int(n)
        else:
            p["blocks"] += int(n)
            p["blocks_by_category"][target] = int(n)
    for pid, hit, n, size in db.execute(
            "SELECT proxy_id, hit, sum(n), sum(bytes) FROM rollup_cache WHERE minute >= ? "
            "GROUP BY proxy_id, hit", (minute,)):
        p = proxies[pid]
        p["requests"] += int(n)
        p["bytes"] += int(size)
        if hit:
            p["hits"] += int(n)
            p["hit_bytes"] += int(size)
    for pid, status, n in db.execute(
            "SELECT proxy_id, status, sum(n) FROM rollup_cache WHERE minute >= ? "
            "GROUP BY proxy_id, status ORDER BY proxy_id, status", (minute,)):
        proxies[pid]["status_codes"][str(status)] = int(n)
    for pid, host, n in db.execute(
            "SELECT proxy_id, host, sum(n) FROM rollup_blocked_hosts WHERE hour >= ? "
            "GROUP BY proxy_id, host ORDER BY proxy_id, 3 DESC, host", (hour,)):
        tops = proxies[pid]["top_blocked_domains"]
        if len(tops) < top:
            tops.append([host, int(n)])
    marks = ",".join("?" * len(STATE_KINDS))
    for pid, ts, kind, message in db.execute(
            "SELECT e.proxy_id, e.ts, e.kind, e.message FROM events e JOIN ("
            f"  SELECT proxy_id, max(id) AS id FROM events WHERE origin = 'helper' AND kind IN "
            f"({marks}) GROUP BY proxy_id) last ON last.id = e.id", STATE_KINDS):
        proxies[pid]["helper_state"] = {"kind": kind, "ts": ts, "message": message}
    for p in proxies.values():
        if p["requests"]:
            p["hit_ratio"] = p["hits"] / p["requests"]
        if p["bytes"]:
            p["byte_hit_ratio"] = p["hit_bytes"] / p["bytes"]
    return {"since": since, "until": now, "proxies": list(proxies.values())}


def as_json(data: dict[str, Any]) -> str:
    """The report as one JSON document."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    secs = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs / size:.0f}{unit} ago"
    return f"{secs:.0f}s ago"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def as_table(data: dict[str, Any]) -> str:
    """The report as an aligned text table, then one detail line per proxy."""
    now = data["until"]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["since"]))
    out = [f"since {stamp} ({_ago(data['since'], now).removesuffix(' ago')})", ""]
    head = ("proxy", "lines", "unparsed", "last line", "helper", "blocks", "welcomes",
            "requests", "hit req", "hit bytes", "from cache")
    rows = [head]
    for p in data["proxies"]:
        state = p["helper_state"]["kind"] if p["helper_state"] else "-"
        rows.append((p["proxy"], str(p["lines"]), str(p["unparsed"]),
                     _ago(p["last_received"], now), state, str(p["blocks"]), str(p["welcomes"]),
                     str(p["requests"]), _pct(p["hit_ratio"]), _pct(p["byte_hit_ratio"]),
                     _size(p["hit_bytes"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    if not data["proxies"]:
        out.append("(no proxy has sent anything yet)")
    for p in data["proxies"]:
        details = []
        if p["blocks_by_category"]:
            details.append("blocks: " + ", ".join(
                f"{k} {v}" for k, v in p["blocks_by_category"].items()))
        if p["top_blocked_domains"]:
            details.append("top blocked: " + ", ".join(
                f"{h} {n}" for h, n in p["top_blocked_domains"]))
        if p["status_codes"]:
            details.append("status: " + ", ".join(
                f"{k} {v}" for k, v in p["status_codes"].items()))
        if details:
            out.append("")
            out.append(f"{p['proxy']}:")
            out.extend(f"  {_printable(d)}" for d in details)
    return "\n".join(out) + "\n"


def _printable(text: str) -> str:
    # Hosts and categories come from the proxies' logs: never let them drive the terminal.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
