"""Rollups: per-minute and per-hour counters, summed in Python per batch, added in SQL.

Each ingest transaction sums its own rows into a :class:`Rollups` (a dict per
rollup table) and adds them to the tables with ``INSERT ... ON CONFLICT DO
UPDATE SET n = n + excluded.n`` in the same transaction as the rows and
checkpoints: exact and exactly-once. Summing in Python costs less than half
of a ``GROUP BY`` over the new rows in SQLite (measured: 1.8 vs 3.9 us a line).

The same pass collects the search postings (monitor/postings.py): for each
(hour, proxy, client) and (hour, proxy, host), the ids of its rows.
"""

from __future__ import annotations

from squidguard_bloom.monitor.cache import is_hit
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.postings import CLIENT, HOST, Postings

# table -> (key columns, value columns)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rollup_lines": (("minute", "proxy_id", "kind"), ("lines", "unparsed")),
    "rollup_decisions": (("minute", "proxy_id", "target", "action"), ("n",)),
    "rollup_cache": (("minute", "proxy_id", "result", "status"),
                     ("n", "bytes", "elapsed_ms")),
    "rollup_blocked_hosts": (("hour", "proxy_id", "target", "host"), ("n",)),
    "rollup_hosts": (("hour", "proxy_id", "host"), ("n", "hits", "bytes", "hit_bytes")),
    "rollup_clients": (("hour", "proxy_id", "client"), ("requests", "bytes", "blocks")),
}


class Rollups:
    """The buckets of one batch; ``write`` adds them to the database."""

    def __init__(self) -> None:
        self.lines: dict[tuple, list[int]] = {}
        self.decisions: dict[tuple, int] = {}
        self.cache: dict[tuple, list[int]] = {}
        self.blocked: dict[tuple, int] = {}
        self.hosts: dict[tuple, list[int]] = {}
        self.clients: dict[tuple, list[int]] = {}
        self.newest: dict[int, float] = {}  # proxy id -> newest line time
        # search postings: (hour, proxy, value) -> positions in the batch's rows
        self.access_hosts: dict[tuple, list[int]] = {}
        self.access_clients: dict[tuple, list[int]] = {}
        self.decision_hosts: dict[tuple, list[int]] = {}
        self.decision_clients: dict[tuple, list[int]] = {}
        self._hit: dict[str, int] = {}

    def count_lines(self, ts: float, proxy_id: int, kind: str, lines: int, unparsed: int
                    ) -> None:
        """Add parsed and unparsed lines of a stream kind to ts's minute."""
        sec = int(ts)
        key = (sec - sec % 60, proxy_id, kind)
        slot = self.lines.get(key)
        if slot is None:
            self.lines[key] = [lines, unparsed]
        else:
            slot[0] += lines
            slot[1] += unparsed

    def _seen(self, proxy_id: int, ts: float) -> None:
        if ts > self.newest.get(proxy_id, 0.0):
            self.newest[proxy_id] = ts

    def add_access(self, rows: list[tuple], first: int = 0) -> None:
        """Count access rows (parse.ACCESS_COLUMNS order, one proxy) from index first on."""
        if first >= len(rows):
            return
        cache, hosts, clients, hit_of = self.cache, self.hosts, self.clients, self._hit
        by_host, by_client = self.access_hosts, self.access_clients
        top = 0.0
        proxy = rows[first][1]
        for i in range(first, len(rows)):
            r = rows[i]
            ts, result, size = r[2], r[5], r[7]
            if ts > top:  # noqa: PLR1730 - a comparison costs less than a max() call
                top = ts
            sec = int(ts)
            hour = sec - sec % 3600
            key: tuple = (sec - sec % 60, proxy, result, r[6])
            c = cache.get(key)
            if c is None:
                cache[key] = [1, size, r[3]]
            else:
                c[0] += 1
                c[1] += size
                c[2] += r[3]
            h = hit_of.get(result)
            if h is None:
                h = hit_of[result] = int(is_hit(result))
            key = (hour, proxy, r[10])
            c = hosts.get(key)
            if c is None:
                hosts[key] = [1, h, size, size * h]
                by_host[key] = [r[0]]
            else:
                c[0] += 1
                c[1] += h
                c[2] += size
                c[3] += size * h
                by_host[key].append(r[0])
            key = (hour, proxy, r[4])
            c = clients.get(key)
            if c is None:
                clients[key] = [1, size, 0]
            else:
                c[0] += 1
                c[1] += size
            ids = by_client.get(key)
            if ids is None:
                by_client[key] = [r[0]]
            else:
                ids.append(r[0])
        self._seen(proxy, top)
        self._access_lines()

    def _access_lines(self) -> None:
        # access lines per minute: the cache buckets hold every access row of the batch
        per_minute: dict[tuple, int] = {}
        for (minute, pid, _result, _status), c in self.cache.items():
            k = (minute, pid, "access")
            per_minute[k] = per_minute.get(k, 0) + c[0]
        for k, n in per_minute.items():
            slot = self.lines.setdefault(k, [0, 0])
            slot[0] = n

    def add_decisions(self, rows: list[tuple], first: int = 0) -> None:
        """Count decision rows (parse.DECISION_COLUMNS order) from index first on."""
        decisions, blocked, clients = self.decisions, self.blocked, self.clients
        by_host, by_client = self.decision_hosts, self.decision_clients
        for i in range(first, len(rows)):
            r = rows[i]
            proxy, ts, target, action = r[1], r[2], r[5], r[13]
            sec = int(ts)
            minute = sec - sec % 60
            key: tuple = (minute, proxy, target, action)
            decisions[key] = decisions.get(key, 0) + 1
            self.count_lines(ts, proxy, "helper", 1, 0)
            self._seen(proxy, ts)
            hour = sec - sec % 3600
            key = (hour, proxy, r[8])
            ids = by_host.get(key)
            if ids is None:
                by_host[key] = [r[0]]
            else:
                ids.append(r[0])
            key = (hour, proxy, r[9])
            ids = by_client.get(key)
            if ids is None:
                by_client[key] = [r[0]]
            else:
                ids.append(r[0])
            if action == "REDIRECT":
                key = (hour, proxy, target, r[8])
                blocked[key] = blocked.get(key, 0) + 1
                key = (hour, proxy, r[9])
                c = clients.get(key)
                if c is None:
                    clients[key] = [0, 0, 1]
                else:
                    c[2] += 1

    def add_events(self, rows: list[tuple], kind: str, first: int = 0) -> None:
        """Count event rows (parse.EVENT_COLUMNS order) of a stream kind."""
        for i in range(first, len(rows)):
            r = rows[i]
            self.count_lines(r[2], r[0], kind, 1, 0)
            self._seen(r[0], r[2])

    def postings(self) -> Postings:
        """The batch's search postings."""
        out = Postings()
        out.add("access", HOST, self.access_hosts)
        out.add("access", CLIENT, self.access_clients)
        out.add("decisions", HOST, self.decision_hosts)
        out.add("decisions", CLIENT, self.decision_clients)
        return out

    def write(self, db: Database) -> None:
        """Add every bucket to its table (inside the caller's transaction)."""
        for table, buckets in (
                ("rollup_lines", self.lines), ("rollup_decisions", self.decisions),
                ("rollup_blocked_hosts", self.blocked), ("rollup_hosts", self.hosts),
                ("rollup_clients", self.clients)):
            keys, values = TABLES[table]
            db.add_to(table, keys, values, [
                (*k, *v) if isinstance(v, list) else (*k, v) for k, v in buckets.items()])
        keys, values = TABLES["rollup_cache"]
        hit_of = self._hit
        db.add_to("rollup_cache", keys, values,
                  [(*k, hit_of[k[2]], *v) for k, v in self.cache.items()], fixed=("hit",))
