"""Database.reserve_ids: blocks of ids that ingest gives its rows before it stores them."""

from __future__ import annotations

import itertools
import threading

from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import ACCESS_COLUMNS
from tests.monitor.pgserver import PostgresServer


def _access_row(row_id: int, proxy_id: int) -> tuple:
    return (row_id, proxy_id, 1796300000.0, 5, "10.0.0.1", "TCP_MISS", 200, 100, "GET",
            "http://example.com/", "example.com", "-", "HIER_DIRECT", "93.184.216.34",
            "text/html")


def _store(url: str, ids: list[int]) -> None:
    with open_database(url) as db:
        db.execute("INSERT INTO proxies (name, first_seen) VALUES ('p1', 0)")
        proxy_id = db.scalar("SELECT id FROM proxies WHERE name = 'p1'")
        with db.transaction():
            db.insert_rows("access", ACCESS_COLUMNS, [_access_row(i, proxy_id) for i in ids])


def test_blocks_follow_each_other_above_the_stored_ids(db_url: str) -> None:
    _store(db_url, [1, 2, 500])
    with open_database(db_url) as db:
        first = db.reserve_ids("access", 10)
        second = db.reserve_ids("access", 3)
        third = db.reserve_ids("access", 0)  # an empty piece still gets a distinct id
    assert first > 500
    assert second == first + 10
    assert third == second + 3


def test_a_connection_starts_past_ids_stored_before_its_first_block(db_url: str) -> None:
    with open_database(db_url) as db:
        early = db.reserve_ids("access", 5)
    _store(db_url, [early + 1000])  # copied in with an id of its own, past the sequence
    with open_database(db_url) as db:
        assert db.reserve_ids("access", 5) == early + 1001


def test_postgresql_blocks_of_two_connections_never_overlap(pg_server: PostgresServer) -> None:
    db_url = pg_server.new_database()
    with open_database(db_url) as probe:
        assert probe.ids_unique_across_connections  # what ingest's workers rely on
    blocks: list[tuple[int, int]] = []
    lock = threading.Lock()

    def reserve(size: int) -> None:
        with open_database(db_url, migrate=False) as db:
            for _ in range(500):
                first = db.reserve_ids("access", size)
                with lock:
                    blocks.append((first, first + size - 1))

    threads = [threading.Thread(target=reserve, args=(size,)) for size in (7, 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    blocks.sort()
    assert len(blocks) == 1000
    for (_, last), (first, _) in itertools.pairwise(blocks):
        assert first > last, f"block starting {first} overlaps one ending {last}"
