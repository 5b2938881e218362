"""The dashboard's queries on real SQLite and PostgreSQL, over rows stored by the real ingest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.web import queries

from .servers import ProxyLogs

NOW = time.time()
T0 = float(int((NOW - 1800) // 60 * 60))  # a minute start half an hour ago


def _fill(root: Path) -> None:
    a = ProxyLogs(root, "alpha")
    b = ProxyLogs(root, "beta")
    for i in range(7):
        a.decision(T0 + 60 + i, f"http://ads.example/{i}", client="10.0.0.7", target="ads")
    for i in range(3):
        a.decision(T0 + 120 + i, f"http://bad.example/{i}", client="10.0.0.8", target="malware")
    a.decision(T0 + 130, "http://www.example.com/", client="10.0.0.9", target="welcome",
               action="WELCOME", stream="welcome")
    for i, result in enumerate(("TCP_HIT", "TCP_MEM_HIT", "TCP_MISS", "TCP_MISS",
                                "TCP_REFRESH_UNMODIFIED")):
        a.access(T0 + 200 + i, f"http://cdn.example/{i}", client="10.0.0.7", result=result,
                 size=100)
    b.access(T0 + 300, "http://cdn.example/x", client="10.1.0.1", result="TCP_HIT", size=50)
    a.helper(T0 + 10, "squidguard-bloom 0.1.0 started (1.0)")
    a.helper(T0 + 11, "squidguard-bloom ready for requests (1.0)")


@pytest.fixture
def db(db_url: str, tmp_path: Path):
    root = tmp_path / "incoming"
    _fill(root)
    database = open_database(db_url)
    Ingest(database, roots=[root]).run(once=True)
    try:
        yield database
    finally:
        database.close()


def test_search_pages_through_every_match_once_newest_first(db) -> None:
    q = queries.Search(kind="decision", since=T0, until=NOW + 1, client="10.0.0.7", limit=3)
    urls: list[str] = []
    pages = []
    while True:
        rows, nxt = queries.search(db, q)
        pages.append(len(rows))
        urls += [r["url"] for r in rows]
        if nxt is None:
            break
        q.before = nxt
    assert pages == [3, 3, 1]
    assert urls == [f"http://ads.example/{i}" for i in reversed(range(7))]


def test_search_filters_by_category_action_domain_proxy_and_result(db) -> None:
    def urls(**kw: object) -> list[str]:
        rows, _ = queries.search(db, queries.Search(**{"since": T0, "until": NOW + 1, **kw}))
        return [r["url"] for r in rows]

    assert urls(category="malware") == [f"http://bad.example/{i}" for i in (2, 1, 0)]
    assert urls(action="WELCOME") == ["http://www.example.com/"]
    assert urls(domain="BAD.example", limit=1) == ["http://bad.example/2"]
    assert urls(kind="access", proxy="beta") == ["http://cdn.example/x"]
    assert urls(kind="access", result="TCP_MISS") == ["http://cdn.example/3",
                                                      "http://cdn.example/2"]
    assert urls(proxy="nosuchproxy") == []
    assert urls(kind="access", since=T0 + 203, until=T0 + 204) == ["http://cdn.example/3"]


def test_tiles_tops_and_series_come_from_the_rollups(db) -> None:
    tiles = {t["proxy"]: t for t in queries.tiles(db, NOW)}
    assert sorted(tiles) == ["alpha", "beta"]
    alpha = tiles["alpha"]
    # hits: TCP_HIT, TCP_MEM_HIT, TCP_REFRESH_UNMODIFIED of 5 requests (the last hour)
    assert (alpha["requests_hour"], alpha["hits_hour"], alpha["hit_ratio"]) == (5, 3, 0.6)
    assert (alpha["blocks_hour"], alpha["welcomes_hour"]) == (10, 1)
    assert alpha["helper"]["kind"] == "ready"
    assert alpha["helper"]["message"] == "squidguard-bloom ready for requests (1.0)"
    assert tiles["beta"]["helper"] is None and tiles["beta"]["hit_ratio"] == 1.0

    tops = queries.tops(db, T0, NOW, limit=2)
    assert tops["blocked"] == [{"host": "ads.example", "category": "ads", "blocks": 7},
                               {"host": "bad.example", "category": "malware", "blocks": 3}]
    assert tops["clients"][0] == {"client": "10.0.0.7", "requests": 5, "blocks": 7,
                                  "bytes": 500}
    assert tops["cached"] == [{"host": "cdn.example", "hits": 4, "requests": 6,
                               "hit_bytes": 350}]
    assert queries.tops(db, T0, NOW, proxy="beta")["cached"] == [
        {"host": "cdn.example", "hits": 1, "requests": 1, "hit_bytes": 50}]

    s = queries.series(db, T0, NOW)
    assert s["step"] == 60
    assert sum(s["totals"]["requests"]) == 6 and sum(s["totals"]["hits"]) == 4
    assert sum(s["totals"]["blocks"]) == 10 and sum(s["totals"]["welcomes"]) == 1
    assert {k: sum(v) for k, v in s["by_category"].items()} == {"ads": 7, "malware": 3}
    assert {k: sum(v["requests"]) for k, v in s["by_proxy"].items()} == {"alpha": 5, "beta": 1}
    i = s["times"].index(int(T0 + 60))
    assert s["totals"]["blocks"][i] == 7  # the seven ads blocks fall in one minute
    only_beta = queries.series(db, T0, NOW, proxy="beta")
    assert sum(only_beta["totals"]["requests"]) == 1 and sum(only_beta["totals"]["blocks"]) == 0


COARSE = (  # coarse table, fine table, its bucket column, the coarse bucket, keys, values
    ("rollup_decisions_hourly", "rollup_decisions", "minute", 3600, "proxy_id, target, action",
     "n"),
    ("rollup_cache_hourly", "rollup_cache", "minute", 3600, "proxy_id, hit", "n, bytes"),
    ("rollup_blocked_hosts_daily", "rollup_blocked_hosts", "hour", 86400,
     "proxy_id, target, host", "n"),
    ("rollup_hosts_daily", "rollup_hosts", "hour", 86400, "proxy_id, host",
     "n, hits, bytes, hit_bytes"),
    ("rollup_clients_daily", "rollup_clients", "hour", 86400, "proxy_id, client",
     "requests, bytes, blocks"),
)


def test_coarse_rollups_are_the_sums_of_the_fine_ones(db, tmp_path: Path) -> None:
    """Migration 3's triggers keep the hourly and daily sums exact, also when a later batch
    adds to buckets that exist (the rollups' ON CONFLICT updates)."""
    a = ProxyLogs(tmp_path / "incoming", "alpha")
    for i in range(4):
        a.decision(T0 + 61 + i, f"http://ads.example/again{i}", client="10.0.0.7", target="ads")
        a.access(T0 + 201 + i, "http://cdn.example/0", client="10.0.0.7", result="TCP_HIT",
                 size=10)
    Ingest(db, roots=[tmp_path / "incoming"]).run(once=True)
    for coarse, fine, col, size, keys, values in COARSE:
        bucket = f"{col} - {col} % {size}"
        sums = ", ".join(f"sum({v})" for v in values.split(", "))
        want = sorted(tuple(int(x) if not isinstance(x, str) else x for x in r)
                      for r in db.execute(f"SELECT {bucket}, {keys}, {sums} FROM {fine} "
                                          f"GROUP BY {bucket}, {keys}"))
        got = sorted(tuple(int(x) if not isinstance(x, str) else x for x in r)
                     for r in db.execute(f"SELECT * FROM {coarse}"))
        assert got == want and got, coarse
    assert queries.tops(db, T0 - 2 * 86400, NOW)["blocked"][0] == {
        "host": "ads.example", "category": "ads", "blocks": 11}
    week = queries.series(db, NOW - 7 * 86400, NOW)
    assert week["step"] == 3600
    assert sum(week["totals"]["blocks"]) == 14 and sum(week["totals"]["hits"]) == 8


def test_retention_prunes_the_coarse_rollups_too(db) -> None:
    """rollup_days applies to the hourly and daily sums as to the rollups they sum."""
    from squidguard_bloom.monitor.retention import prune

    def counts() -> dict[str, int]:
        return {c: int(db.scalar(f"SELECT count(*) FROM {c}")) for c, *_ in COARSE}

    before = counts()
    assert all(before.values())
    kept = prune(db, raw_days=1, rollup_days=1, now=NOW)  # everything is younger than a day
    assert all(kept[c] == 0 for c in before) and counts() == before
    removed = prune(db, raw_days=1, rollup_days=1, now=NOW + 3 * 86400)
    assert {c: removed[c] for c in before} == before
    assert all(n == 0 for n in counts().values())


def test_rows_after_gives_the_newest_rows_in_order(db) -> None:
    rows, access_id, decision_id = queries.rows_after(db, 0, 0, limit=2)
    assert [r["url"] for r in rows] == ["http://bad.example/2", "http://www.example.com/",
                                        "http://cdn.example/4", "http://cdn.example/x"]
    assert queries.rows_after(db, access_id, decision_id) == ([], access_id, decision_id)
    assert (access_id, decision_id) == queries.newest_ids(db)


@pytest.mark.parametrize("filters, expect", [
    ({"client": "10.0.0.7"}, ["decision_postings USING PRIMARY KEY",
                              "decisions USING INTEGER PRIMARY KEY"]),
    ({"domain": "ads.example"}, ["decision_postings USING PRIMARY KEY",
                                 "decisions USING INTEGER PRIMARY KEY"]),
    ({"category": "ads"}, ["decisions USING INDEX decisions_ts"]),
    ({"kind": "access", "client": "10.0.0.7"}, ["access_postings USING PRIMARY KEY",
                                                "access USING INTEGER PRIMARY KEY"]),
    ({"kind": "access", "domain": "cdn.example"}, ["access_postings USING PRIMARY KEY",
                                                       "access USING INTEGER PRIMARY KEY"]),
    ({"kind": "access", "result": "TCP_HIT"}, ["access USING INDEX access_ts"]),
])
def test_sqlite_search_reads_an_index_range(tmp_path: Path, filters: dict, expect: list[str]
                                            ) -> None:
    """Never a scan of raw rows: SQLite's plan for every statement of each search form
    searches an index (the postings' primary key, then rows by id; or the time index)."""
    _fill(tmp_path / "incoming")
    db = open_database(str(tmp_path / "m.db"))
    Ingest(db, roots=[tmp_path / "incoming"]).run(once=True)
    plans: list[str] = []
    real = db.execute

    def spy(sql: str, params=()):
        if sql.startswith("SELECT") and " FROM proxies" not in sql:
            plan = real("EXPLAIN QUERY PLAN " + sql, params)
            plans.append(" / ".join(str(r[-1]) for r in plan))
        return real(sql, params)

    db.execute = spy  # type: ignore[method-assign]
    first, cursor = queries.search(db, queries.Search(since=0, until=NOW, limit=1, **filters))
    assert first, "the fixture has rows for every form"
    queries.search(db, queries.Search(since=0, until=NOW, before=cursor or (NOW, 5), **filters))
    assert plans
    for plan in plans:
        assert not any(step.startswith("SCAN") for step in plan.split(" / ")), plan
    joined = "\n".join(plans)
    for step in expect:
        assert f"SEARCH {step}" in joined, joined
    db.close()


def test_csv_cells_cannot_start_a_formula() -> None:
    for bad in ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx", "|x"):
        assert queries.csv_cell(bad) == "'" + bad
    assert queries.csv_cell("-") == "-"
    assert queries.csv_cell("http://a/=b") == "http://a/=b"
    assert queries.csv_cell(None) == ""
