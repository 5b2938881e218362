"""The dashboard's top lists and the fleet-wide hourly sums they read (migration 5), on real
SQLite and PostgreSQL, over log files stored by the real ingest: the sums equal the per-proxy
rollups after every ingest and after retention, an older database gets them at migration,
and tops() gives what a count of the raw rows gives."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from squidguard_bloom.monitor.cache import is_hit
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import migrate, open_database
from squidguard_bloom.monitor.retention import prune
from squidguard_bloom.monitor.web import queries

from .servers import ProxyLogs

NOW = float(int(time.time()))
START = NOW - 30 * 3600  # 30 hours of lines: ranges of a day read hours, longer ones days
PROXIES = ("alpha", "beta", "gamma")
HOSTS = [f"h{i}.example" for i in range(12)]
RESULTS = ("TCP_HIT", "TCP_MEM_HIT", "TCP_MISS", "TCP_MISS", "TCP_REFRESH_UNMODIFIED",
           "TCP_TUNNEL")
TARGETS = ("ads", "malware", "porn")

# fleet-wide table, per-proxy table, keys but proxy_id, values
FLEET = (
    ("rollup_blocked_hosts_fleet", "rollup_blocked_hosts", "target, host", "n"),
    ("rollup_hosts_fleet", "rollup_hosts", "host", "n, hits, bytes, hit_bytes"),
    ("rollup_clients_fleet", "rollup_clients", "client", "requests, bytes, blocks"),
)


def _client(rng: random.Random, proxy: int) -> str:
    # clients 10.9.0.x go through any proxy (a balanced pair), the others through one
    if rng.random() < 0.3:
        return f"10.9.0.{rng.randrange(4)}"
    return f"10.{proxy}.0.{rng.randrange(5)}"


def _write(root: Path, seed: int, lines: int) -> None:
    """lines access.log lines and lines/2 helper decisions per proxy, over the 30 hours;
    few hosts and clients, so that counts tie and the lists' order rules matter."""
    rng = random.Random(seed)
    for p, name in enumerate(PROXIES):
        logs = ProxyLogs(root, name)
        for ts in sorted(START + rng.random() * (NOW - START - 60) for _ in range(lines)):
            logs.access(ts, f"http://{rng.choice(HOSTS[:9])}/{rng.randrange(1000)}",
                        client=_client(rng, p), result=rng.choice(RESULTS),
                        size=rng.randrange(1, 5000))
        for ts in sorted(START + rng.random() * (NOW - START - 60) for _ in range(lines // 2)):
            action = rng.choice(("REDIRECT", "REDIRECT", "PASS", "WELCOME"))
            target = "welcome" if action == "WELCOME" else rng.choice(TARGETS)
            logs.decision(ts, f"http://{rng.choice(HOSTS[4:])}/x", client=_client(rng, p),
                          target=target, action=action,
                          stream="welcome" if action == "WELCOME" else "blocked")


@pytest.fixture
def db(db_url: str, tmp_path: Path):
    """Two ingest runs: the second adds to buckets the first created (the rollups' updates)."""
    root = tmp_path / "incoming"
    database = open_database(db_url)
    try:
        for seed in (1, 2):
            _write(root, seed, 400)
            Ingest(database, roots=[root]).run(once=True)
        yield database
    finally:
        database.close()


def _rows(db: Database, sql: str) -> list[tuple]:
    return sorted(tuple(x if isinstance(x, str) else int(x) for x in r) for r in db.execute(sql))


def _assert_fleet_is_the_sum(db: Database) -> None:
    for fleet, table, keys, values in FLEET:
        sums = ", ".join(f"sum({v})" for v in values.split(", "))
        want = _rows(db, f"SELECT hour, {keys}, {sums} FROM {table} GROUP BY hour, {keys}")
        got = _rows(db, f"SELECT hour, {keys}, {values} FROM {fleet}")
        assert got == want, fleet


def test_fleet_sums_equal_the_per_proxy_rollups_after_ingest_and_retention(db) -> None:
    _assert_fleet_is_the_sum(db)
    # rows seen by several proxies really were merged into one
    merged = db.scalar("SELECT count(*) FROM rollup_hosts_fleet")
    assert merged < db.scalar("SELECT count(*) FROM rollup_hosts")
    assert (db.scalar("SELECT sum(requests) FROM rollup_clients_fleet")
            == db.scalar("SELECT count(*) FROM access") == 2 * 400 * len(PROXIES))

    cutoff_hour = int(START // 3600 * 3600) + 10 * 3600
    removed = prune(db, raw_days=2, rollup_days=(NOW - cutoff_hour) / 86400, now=NOW)
    old = {fleet: removed[fleet] for fleet, *_ in FLEET}
    assert all(old.values()), removed  # the first 10 hours went from every table
    for fleet, *_ in FLEET:
        assert db.scalar(f"SELECT min(hour) FROM {fleet}") == cutoff_hour
    _assert_fleet_is_the_sum(db)


def test_an_older_database_gets_the_fleet_sums_at_migration(db, tmp_path: Path) -> None:
    """A database from before migration 5 (its rollups filled, no fleet tables): migrating
    sums its rollups in, and the triggers take over from there."""
    with db.transaction():
        for fleet, table, *_ in FLEET:
            if db.dialect == "postgresql":  # schema 6's statement triggers add to them
                for event in ("inserted", "updated"):
                    db.execute(f"DROP TRIGGER {table}_sums_{event} ON {table}")
            else:
                db.execute(f"DROP TRIGGER {fleet}_insert")
                db.execute(f"DROP TRIGGER {fleet}_update")
            db.execute(f"DROP TABLE {fleet}")
        db.execute("DELETE FROM schema_migrations WHERE version IN (5, 6)")
    assert migrate(db) == [5, 6]
    _assert_fleet_is_the_sum(db)
    before = db.scalar("SELECT sum(n) FROM rollup_hosts_fleet")
    assert before == 2 * 400 * len(PROXIES)
    _write(tmp_path / "incoming", 3, 100)  # the fixture's directories: more lines
    Ingest(db, roots=[tmp_path / "incoming"]).run(once=True)
    assert db.scalar("SELECT sum(n) FROM rollup_hosts_fleet") == before + 100 * len(PROXIES)
    _assert_fleet_is_the_sum(db)


def _reference(db: Database, since: float, until: float, proxy: str | None
               ) -> dict[str, list[dict[str, Any]]]:
    """The three lists counted from the raw rows, with the rules tops() documents: the whole
    hours (a day or less) or UTC days (more) that [since, until) touches."""
    size = 86400 if until - since > 86400 else 3600
    first = since // size * size
    pid = None if proxy is None else db.scalar("SELECT id FROM proxies WHERE name = ?", (proxy,))

    def kept(p: int, ts: float) -> bool:
        bucket = int(ts) - int(ts) % size
        return first <= bucket < until and (pid is None or p == pid)

    blocked: Counter[tuple[str, str]] = Counter()
    clients: dict[str, list[int]] = {}
    hosts: dict[str, list[int]] = {}
    for p, ts, host, client, target, action in db.execute(
            "SELECT proxy_id, ts, host, client, target, action FROM decisions"):
        if kept(p, ts) and action == "REDIRECT":
            blocked[(host, target)] += 1
            clients.setdefault(client, [0, 0, 0])[1] += 1
    for p, ts, host, client, result, size_ in db.execute(
            "SELECT proxy_id, ts, host, client, result, bytes FROM access"):
        if kept(p, ts):
            c = clients.setdefault(client, [0, 0, 0])
            c[0] += 1
            c[2] += size_
            h = hosts.setdefault(host, [0, 0, 0])
            hit = is_hit(result)
            h[0] += hit
            h[1] += 1
            h[2] += size_ if hit else 0
    return {
        "blocked": [{"host": h, "category": t, "blocks": n} for (h, t), n in
                    sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))],
        "clients": [{"client": c, "requests": r, "blocks": b, "bytes": by} for c, (r, b, by) in
                    sorted(clients.items(), key=lambda kv: (-kv[1][0] - kv[1][1], kv[0]))],
        "cached": [{"host": h, "hits": hi, "requests": n, "hit_bytes": hb} for h, (hi, n, hb) in
                   sorted(hosts.items(), key=lambda kv: (-kv[1][0], -kv[1][2], kv[0]))
                   if hi > 0],
    }


@pytest.mark.parametrize("span", [3600, 6 * 3600, 86400, 7 * 86400])
@pytest.mark.parametrize("proxy", [None, "beta"])
def test_tops_equal_a_count_of_the_raw_rows(db, span: int, proxy: str | None) -> None:
    since, until = NOW - span, NOW
    want = _reference(db, since, until, proxy)
    assert all(want.values())  # every list has entries in every window
    assert queries.tops(db, since, until, proxy, limit=1000) == want
    top = queries.tops(db, since, until, proxy, limit=3)
    assert top == {k: v[:3] for k, v in want.items()}


@pytest.mark.parametrize("proxy, table", [(None, "_fleet"), ("beta", "")])
def test_sqlite_top_lists_read_the_fleet_sums_by_primary_key(tmp_path: Path, proxy: str | None,
                                                            table: str) -> None:
    """All proxies: the fleet-wide table's primary-key range; one proxy: the per-proxy one."""
    root = tmp_path / "incoming"
    _write(root, 3, 50)
    with open_database(str(tmp_path / "m.db")) as db:
        Ingest(db, roots=[root]).run(once=True)
        plans: dict[str, str] = {}
        real = db.execute

        def spy(sql: str, params=()):
            if sql.startswith("SELECT") and "FROM rollup_" in sql:
                name = sql.split("FROM ", 1)[1].split(maxsplit=1)[0]
                plan = real("EXPLAIN QUERY PLAN " + sql, params)
                plans[name] = " / ".join(str(r[-1]) for r in plan)
            return real(sql, params)

        db.execute = spy  # type: ignore[method-assign]
        queries.tops(db, NOW - 86400, NOW, proxy)
    assert sorted(plans) == sorted(f"{fine}{table}" for _f, fine, *_ in FLEET)
    for name, plan in plans.items():
        assert f"SEARCH {name} USING PRIMARY KEY (hour>? AND hour<?)" in plan, plan
        assert not any(step.startswith("SCAN") for step in plan.split(" / ")), plan
