"""The rules: what the database (and the probes) say about each proxy right now.

Each rule is a function ``(Context, Rule) -> {proxy name: Finding}`` listing the
proxies for which its condition holds at ``ctx.now``. Rules read only the
``proxies`` table, recent ``events`` (an index range on ``ts``) and the
per-minute rollups, never raw rows. Times written by the proxies (status
lines) are compared with the monitor's clock: keep the hosts' clocks in sync
(NTP), as for any log-based monitoring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from squidguard_bloom.monitor.alerts.probes import ProbeResult
from squidguard_bloom.monitor.alerts.settings import Rule
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.parse import parse_helper_status, parse_shipper_status


@dataclass(frozen=True)
class Finding:
    """The condition holds for one proxy: what was found; since when the fault began, if the
    rule knows (shown in messages); when it was observed, if earlier than the evaluation (a
    probe round): a new alert's pending period counts from then."""

    summary: str
    since: float | None = None
    observed: float | None = None


class Context:
    """What one evaluation reads, fetched once and shared by the rules."""

    def __init__(self, db: Database, now: float, probes: dict[str, ProbeResult],
                 watching_since: float, active: frozenset[tuple[str, str]] = frozenset()
                 ) -> None:
        self.db = db
        self.now = now
        self.probes = probes
        self.watching_since = watching_since  # when this monitor process started to watch
        self.active = active  # (rule, proxy) of the alerts the engine holds now
        self._proxies: dict[int, tuple[str, float | None]] | None = None
        self._helper: dict[tuple[int, int], tuple[float, dict[str, str] | None]] | None = None
        self._shipper: dict[int, tuple[float, str]] | None = None

    @property
    def proxies(self) -> dict[int, tuple[str, float | None]]:
        """proxy id -> (name, last_received)."""
        if self._proxies is None:
            self._proxies = {pid: (name, last) for pid, name, last in self.db.execute(
                "SELECT id, name, last_received FROM proxies")}
        return self._proxies

    def name(self, proxy_id: int) -> str:
        return self.proxies.get(proxy_id, (f"#{proxy_id}", None))[0]

    def helper_status(self, stale: float) -> dict[tuple[int, int], tuple[float, dict[str, str]]]:
        """(proxy id, pid) -> (ts, fields) of each helper process's newest status line in
        the last `stale` seconds, for processes that have not logged their stop since."""
        if self._helper is None:
            latest: dict[tuple[int, int], tuple[float, str, str]] = {}
            for proxy_id, pid, ts, kind, message in self.db.execute(
                    "SELECT proxy_id, pid, ts, kind, message FROM events WHERE ts >= ? "
                    "AND origin = 'helper' AND kind IN ('status', 'stopped') ORDER BY ts, id",
                    (self.now - stale,)):
                latest[(proxy_id, pid)] = (ts, kind, message)
            self._helper = {key: (ts, parse_helper_status(message) if kind == "status"
                                  else None) for key, (ts, kind, message) in latest.items()}
        return {k: (ts, f) for k, (ts, f) in self._helper.items() if f is not None}

    def shipper_status(self, stale: float) -> dict[int, tuple[float, str]]:
        """proxy id -> (ts, message) of its shipper's newest status line in the last `stale` s."""
        if self._shipper is None:
            self._shipper = {}
            for proxy_id, ts, message in self.db.execute(
                    "SELECT proxy_id, ts, message FROM events WHERE ts >= ? AND "
                    "origin = 'shipper' AND kind = 'status' ORDER BY ts, id",
                    (self.now - stale,)):
                self._shipper[proxy_id] = (ts, message)
        return self._shipper


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def silent(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """No line from a proxy for `after` seconds (counted from when this monitor started
    watching, so a restarted monitor does not call every proxy silent; an alert it already
    holds goes on)."""
    out = {}
    for name, last in ctx.proxies.values():
        if last is None:
            continue
        known = ("silent", name) in ctx.active  # already alerting before a restart: go on
        quiet = ctx.now - (last if known else max(last, ctx.watching_since))
        if rule["after"] < quiet and ctx.now - last < rule["forget_after"]:
            out[name] = Finding(f"no line received for more than {_span(rule['after'])}",
                                since=last)
    return out


def unreachable(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """The newest probe round failed to reach Squid's port, sshd or (where allowed) ping."""
    out = {}
    for name, result in ctx.probes.items():
        if result.failed:
            out[name] = Finding(result.describe(), since=result.at, observed=result.at)
    return out


def shipper_lag(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """The shipper's newest status line says its link is not up, or a file lags behind."""
    out = {}
    for proxy_id, (_ts, message) in ctx.shipper_status(rule["stale"]).items():
        parsed = parse_shipper_status(message)
        if parsed is None:
            continue
        link, files = parsed
        late = [f"{name} {lag:.0f} s behind ({behind} bytes)"
                for name, (_l, _b, behind, lag) in files.items() if lag > rule["lag"]]
        up = link.split(" ", 1)[0] == "up"
        if not up or late:
            what = [] if up else [f"link {link}"]
            out[ctx.name(proxy_id)] = Finding("shipper " + ", ".join(what + late))
    return out


def emergency(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """A helper process's newest status line says emergency=pass or block."""
    modes: dict[int, dict[str, int]] = {}
    for (proxy_id, _pid), (_ts, fields) in ctx.helper_status(rule["stale"]).items():
        mode = fields.get("emergency", "no")
        if mode != "no":
            counts = modes.setdefault(proxy_id, {})
            counts[mode] = counts.get(mode, 0) + 1
    out = {}
    for proxy_id, counts in modes.items():
        parts = []
        for mode, n in sorted(counts.items()):
            doing = "passing everything unfiltered" if mode == "pass" else "blocking everything"
            parts.append(f"{n} helper process{'es' if n > 1 else ''} in emergency mode "
                         f"({mode}: {doing})")
        out[ctx.name(proxy_id)] = Finding("; ".join(parts))
    return out


def welcome_filter(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """The shared welcome filter is over capacity, or its estimated FPR is above target."""
    newest: dict[int, tuple[float, dict[str, str]]] = {}
    for (proxy_id, _pid), (ts, fields) in ctx.helper_status(rule["stale"]).items():
        if fields.get("filter", "-") != "-" and (proxy_id not in newest
                                                 or newest[proxy_id][0] < ts):
            newest[proxy_id] = (ts, fields)
    out = {}
    for proxy_id, (_ts, f) in newest.items():
        try:
            fpr, target = float(f["fpr"]), float(f["target"])
        except (KeyError, ValueError):
            continue
        over = f.get("over_capacity") == "yes"
        if over or fpr > target * rule["fpr_factor"]:
            out[ctx.name(proxy_id)] = Finding(
                f"welcome filter {f['filter']} entries{' (OVER CAPACITY)' if over else ''}, "
                f"estimated false-positive rate {fpr:.3g} (target {target:g})")
    return out


def _sums(db: Database, sql: str, start: float, end: float) -> dict[int, int]:
    return {pid: int(n or 0) for pid, n in db.execute(sql, (int(start), int(end)))}


_BLOCKS = ("SELECT proxy_id, SUM(n) FROM rollup_decisions WHERE minute >= ? AND minute < ? "
           "AND action = 'REDIRECT' GROUP BY proxy_id")
_LINES = ("SELECT proxy_id, SUM(lines) FROM rollup_lines WHERE minute >= ? AND minute < ? "
          "GROUP BY proxy_id")
WEEK = 7 * 86400


def blocks_spike(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """Blocks in the last `window` above `factor` x their mean over the same window of the
    last `weeks` weeks (weeks in which the proxy sent lines), and at least `min_blocks`."""
    end = ctx.now - ctx.now % 60  # whole minutes: the rollups' buckets
    start = end - rule["window"]
    now_blocks = _sums(ctx.db, _BLOCKS, start, end)
    if not now_blocks:
        return {}
    past: dict[int, list[int]] = {}
    for k in range(1, rule["weeks"] + 1):
        lines = _sums(ctx.db, _LINES, start - k * WEEK, end - k * WEEK)
        blocks = _sums(ctx.db, _BLOCKS, start - k * WEEK, end - k * WEEK)
        for proxy_id in lines:
            past.setdefault(proxy_id, []).append(blocks.get(proxy_id, 0))
    out = {}
    for proxy_id, n in now_blocks.items():
        weeks = past.get(proxy_id)
        if not weeks or n < rule["min_blocks"]:
            continue
        baseline = sum(weeks) / len(weeks)
        if n > rule["factor"] * baseline:
            out[ctx.name(proxy_id)] = Finding(
                f"{n} blocks in the last {_span(rule['window'])}, baseline {baseline:.0f} "
                f"(same time, {len(weeks)} previous week{'s' if len(weeks) > 1 else ''})")
    return out


def unparsed(ctx: Context, rule: Rule) -> dict[str, Finding]:
    """Unparsed lines in the last `window`: at least `min_lines` and `ratio` of all lines."""
    end = ctx.now - ctx.now % 60 + 60
    out = {}
    for proxy_id, good_sum, bad_sum in ctx.db.execute(
            "SELECT proxy_id, SUM(lines), SUM(unparsed) FROM rollup_lines WHERE minute >= ? "
            "AND minute < ? GROUP BY proxy_id", (int(end - rule["window"]), int(end))):
        lines, bad = int(good_sum or 0), int(bad_sum or 0)
        if bad >= rule["min_lines"] and bad >= rule["ratio"] * (lines + bad):
            out[ctx.name(proxy_id)] = Finding(
                f"{bad} unparsed lines of {lines + bad} in the last {_span(rule['window'])}")
    return out


RULES: dict[str, Callable[[Context, Rule], dict[str, Finding]]] = {
    "silent": silent,
    "unreachable": unreachable,
    "shipper_lag": shipper_lag,
    "emergency": emergency,
    "welcome_filter": welcome_filter,
    "blocks_spike": blocks_spike,
    "unparsed": unparsed,
}

TITLES = {
    "silent": "Proxy silent",
    "unreachable": "Proxy unreachable",
    "shipper_lag": "Shipper lagging",
    "emergency": "Helper in emergency mode",
    "welcome_filter": "Welcome filter full",
    "blocks_spike": "Blocks above baseline",
    "unparsed": "Unparsed log lines",
}

WHAT_TO_DO = {
    "silent": "check the shipper on the proxy (systemctl status squidguard-bloom-ship) and "
              "its link to the monitor; the proxy itself may be down.",
    "unreachable": "check that the proxy is up and Squid runs (systemctl status squid); "
                   "check the network path from the monitor.",
    "shipper_lag": "check the link to the monitor and the shipper's log on the proxy "
                   "(journalctl -u squidguard-bloom-ship); a full monitor disk stops it too.",
    "emergency": "the helper could not load its configuration: run squidguard-bloom --check "
                 "on the proxy, fix what it names, then squid -k reconfigure.",
    "welcome_filter": "raise capacity in the welcome block (or set a window) and restart "
                      "the helpers; new clients may miss their welcome meanwhile.",
    "blocks_spike": "look at the top blocked domains in the report (squidguard-bloom-monitor "
                    "report --since 1h): a new malware domain, or a broken list.",
    "unparsed": "a log format changed or a file is not what its name says: see the unparsed "
                "table (file and offset of each line).",
}
