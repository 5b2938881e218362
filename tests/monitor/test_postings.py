"""The search postings (monitor/postings.py) on real SQLite and PostgreSQL: written by ingest in
the transaction of their rows, read by the dashboard's search, migrated from older databases,
pruned with the raw rows."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from squidguard_bloom.monitor import postings
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import available, migrate, open_database
from squidguard_bloom.monitor.retention import prune
from squidguard_bloom.monitor.web import queries

from .postings_check import assert_postings_match_rows, listed
from .web.servers import ProxyLogs

T0 = 1796299200.0  # an hour's start
CLIENTS = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.7.7")
HOSTS = ("ads.example", "cdn.example", "www.example.org")
SPAN = 4 * 3600


def _traffic(root: Path, seed: int = 5, lines: int = 600) -> None:
    """Two proxies sharing clients and hosts over four hours, times a little out of order,
    several lines in one second (ties broken by id)."""
    rng = random.Random(seed)
    proxies = [ProxyLogs(root, "alpha"), ProxyLogs(root, "beta")]
    ts = T0
    for i in range(lines):
        if i % 3 != 1:  # else the time of the line before: equal times, ordered by id
            ts = T0 + i * SPAN / lines + rng.choice((0.0, 0.0, -90.0, 0.5))
        proxy = rng.choice(proxies)
        client, host = rng.choice(CLIENTS), rng.choice(HOSTS)
        if rng.random() < 0.5:
            proxy.access(ts, f"http://{host}/a{i}", client=client,
                         result=rng.choice(("TCP_HIT", "TCP_MISS")))
        else:
            proxy.decision(ts, f"http://{host}/d{i}", client=client,
                           target=rng.choice(("ads", "porn")),
                           action=rng.choice(("REDIRECT", "PASS")))


def _reference(db, kind: str, since: float, until: float, **eq: str) -> list[int]:
    table = "access" if kind == "access" else "decisions"
    where = " ".join(f"AND {col} = ?" for col in eq)
    return [int(r[0]) for r in db.execute(
        f"SELECT id FROM {table} WHERE ts >= ? AND ts < ? {where} ORDER BY ts DESC, id DESC",
        (since, until, *eq.values()))]


def _paged(db, q: queries.Search) -> list[int]:
    ids: list[int] = []
    while True:
        rows, nxt = queries.search(db, q)
        ids += [r["id"] for r in rows]
        if nxt is None:
            return ids
        q.before = nxt


def test_ingest_lists_each_row_once_and_search_pages_match_the_rows(db_url: str,
                                                                     tmp_path: Path) -> None:
    _traffic(tmp_path / "in")
    with open_database(db_url) as db:
        # tiny transactions: many postings per (value, hour), as with a live feed
        Ingest(db, roots=[tmp_path / "in"], batch_bytes=3000).run(once=True)
        assert_postings_match_rows(db)
        assert db.scalar("SELECT count(*) FROM access_postings") > 2 * len(CLIENTS) * 4
        checked = 0
        for kind, extra in (("access", {"result": "TCP_HIT"}), ("decision", {"action": "PASS"})):
            for since, until in ((T0 - 3600, T0 + SPAN + 3600), (T0 + 1800, T0 + 7300)):
                for client in CLIENTS:
                    for more in ({}, extra):
                        want = _reference(db, kind, since, until, client=client, **more)
                        got = _paged(db, queries.Search(kind=kind, since=since, until=until,
                                                        client=client, limit=7, **more))
                        assert got == want, (kind, client, more)
                        checked += len(got)
                for host in HOSTS:
                    want = _reference(db, kind, since, until, host=host)
                    got = _paged(db, queries.Search(kind=kind, since=since, until=until,
                                                    domain=host.upper(), limit=9))
                    assert got == want, (kind, host)
                    both = _reference(db, kind, since, until, host=host, client=CLIENTS[0])
                    assert _paged(db, queries.Search(
                        kind=kind, since=since, until=until, domain=host, client=CLIENTS[0],
                        limit=5)) == both
                    checked += len(got)
        assert checked > 1000
        assert queries.search(db, queries.Search(since=T0, until=T0 + SPAN,
                                                 client="10.9.9.9")) == ([], None)


def test_a_database_from_before_the_postings_gets_them_at_migration(db_url: str,
                                                                    tmp_path: Path) -> None:
    _traffic(tmp_path / "in", lines=200)
    with open_database(db_url) as full:  # rows as the schema-4 ingest stores them
        Ingest(full, roots=[tmp_path / "in"]).run(once=True)
        rows = {t: full.execute(f"SELECT * FROM {t} ORDER BY id")
                for t in ("proxies", "access", "decisions")}
        columns = {t: [c for (c,) in full.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", (t,))] if full.dialect == "postgresql" else
            [r[1] for r in full.execute(f"PRAGMA table_info({t})")] for t in rows}
    old_url = db_url + "-old" if full.dialect == "sqlite" else db_url.rsplit("/", 1)[0] + \
        "/postgres"
    if full.dialect == "postgresql":  # a second database on the same server
        with open_database(old_url, migrate=False) as admin:
            name = f"before_postings_{uuid.uuid4().hex}"
            admin.execute(f"CREATE DATABASE {name}")
        old_url = db_url.rsplit("/", 1)[0] + "/" + name
    with open_database(old_url, migrate=False) as old:
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)")
        for version, name, sql in available(old.dialect):
            if version < 4:
                with old.transaction():
                    old.script(sql)
                    old.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)",
                                (version, name))
        with old.transaction():
            for table, data in rows.items():
                cols = ", ".join(columns[table])
                marks = ", ".join("?" * len(columns[table]))
                override = " OVERRIDING SYSTEM VALUE" if old.dialect == "postgresql" else ""
                old.executemany(f"INSERT INTO {table} ({cols}){override} VALUES ({marks})",
                                data)
        assert 4 in migrate(old)
        assert_postings_match_rows(old)
        assert old.scalar("SELECT count(*) FROM decision_postings") > 0
        # and ingest goes on after the migrated ids, on both dialects
        ProxyLogs(tmp_path / "more", "alpha").access(T0 + 10, "http://new.example/",
                                                       client="10.0.0.1")
        Ingest(old, roots=[tmp_path / "more"]).run(once=True)
        assert_postings_match_rows(old)
        newest = old.scalar("SELECT max(id) FROM access")
        assert newest > max(r[0] for r in rows["access"])


def test_retention_drops_postings_with_their_hours(db_url: str, tmp_path: Path) -> None:
    _traffic(tmp_path / "in", lines=300)
    with open_database(db_url) as db:
        Ingest(db, roots=[tmp_path / "in"]).run(once=True)
        cutoff = T0 + 2 * 3600 + 1200  # inside the third hour
        before = listed(db, "access", postings.CLIENT)
        removed = prune(db, raw_days=1, rollup_days=30, now=cutoff + 86400)
        after = listed(db, "access", postings.CLIENT)
        # whole hours before the cutoff's hour are gone; that hour and later ones stay
        assert {h for _v, h, _i in after} == {h for _v, h, _i in before
                                              if h >= T0 + 2 * 3600}
        assert removed["access_postings"] > 0
        kept = {int(i) for (i,) in db.execute("SELECT id FROM access")}
        assert kept <= {i for _v, _h, i in after}  # every kept row is still found
        for client in CLIENTS:
            want = _reference(db, "access", 0, T0 + SPAN + 3600, client=client)
            assert _paged(db, queries.Search(kind="access", since=0, until=T0 + SPAN + 3600,
                                             client=client, limit=4)) == want
