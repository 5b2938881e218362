-- squidguard-bloom monitor, schema 5 (SQLite): fleet-wide hourly sums for the top lists.
-- The dashboard's top lists over all proxies and up to a day read these instead of the
-- per-proxy hourly rollups: one row per host (or client) and hour instead of one per proxy,
-- host and hour, so a 24-hour list groups about a third of the rows (docs/dashboard.md).
-- Triggers keep them in step with the per-proxy rollups, in the same transaction as the
-- ingest that changes those (exact, exactly once, as migration 3's); existing rollups are
-- summed in here. Per-proxy lists keep reading the per-proxy tables.

CREATE TABLE rollup_blocked_hosts_fleet (
    hour     INTEGER NOT NULL,
    target   TEXT NOT NULL,
    host     TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (hour, target, host)
) WITHOUT ROWID;

CREATE TABLE rollup_hosts_fleet (
    hour      INTEGER NOT NULL,
    host      TEXT NOT NULL,
    n         INTEGER NOT NULL,
    hits      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    hit_bytes INTEGER NOT NULL,
    PRIMARY KEY (hour, host)
) WITHOUT ROWID;

CREATE TABLE rollup_clients_fleet (
    hour     INTEGER NOT NULL,
    client   TEXT NOT NULL,
    requests INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    blocks   INTEGER NOT NULL,
    PRIMARY KEY (hour, client)
) WITHOUT ROWID;

INSERT INTO rollup_blocked_hosts_fleet (hour, target, host, n)
SELECT hour, target, host, sum(n) FROM rollup_blocked_hosts GROUP BY 1, 2, 3;
INSERT INTO rollup_hosts_fleet (hour, host, n, hits, bytes, hit_bytes)
SELECT hour, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes) FROM rollup_hosts
GROUP BY 1, 2;
INSERT INTO rollup_clients_fleet (hour, client, requests, bytes, blocks)
SELECT hour, client, sum(requests), sum(bytes), sum(blocks) FROM rollup_clients
GROUP BY 1, 2;

CREATE TRIGGER rollup_blocked_hosts_fleet_insert AFTER INSERT ON rollup_blocked_hosts BEGIN
    INSERT INTO rollup_blocked_hosts_fleet (hour, target, host, n)
    VALUES (NEW.hour, NEW.target, NEW.host, NEW.n)
    ON CONFLICT (hour, target, host) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER rollup_blocked_hosts_fleet_update AFTER UPDATE OF n ON rollup_blocked_hosts BEGIN
    INSERT INTO rollup_blocked_hosts_fleet (hour, target, host, n)
    VALUES (NEW.hour, NEW.target, NEW.host, NEW.n - OLD.n)
    ON CONFLICT (hour, target, host) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER rollup_hosts_fleet_insert AFTER INSERT ON rollup_hosts BEGIN
    INSERT INTO rollup_hosts_fleet (hour, host, n, hits, bytes, hit_bytes)
    VALUES (NEW.hour, NEW.host, NEW.n, NEW.hits, NEW.bytes, NEW.hit_bytes)
    ON CONFLICT (hour, host) DO UPDATE SET n = n + excluded.n, hits = hits + excluded.hits,
        bytes = bytes + excluded.bytes, hit_bytes = hit_bytes + excluded.hit_bytes;
END;
CREATE TRIGGER rollup_hosts_fleet_update AFTER UPDATE ON rollup_hosts BEGIN
    INSERT INTO rollup_hosts_fleet (hour, host, n, hits, bytes, hit_bytes)
    VALUES (NEW.hour, NEW.host, NEW.n - OLD.n, NEW.hits - OLD.hits, NEW.bytes - OLD.bytes,
            NEW.hit_bytes - OLD.hit_bytes)
    ON CONFLICT (hour, host) DO UPDATE SET n = n + excluded.n, hits = hits + excluded.hits,
        bytes = bytes + excluded.bytes, hit_bytes = hit_bytes + excluded.hit_bytes;
END;

CREATE TRIGGER rollup_clients_fleet_insert AFTER INSERT ON rollup_clients BEGIN
    INSERT INTO rollup_clients_fleet (hour, client, requests, bytes, blocks)
    VALUES (NEW.hour, NEW.client, NEW.requests, NEW.bytes, NEW.blocks)
    ON CONFLICT (hour, client) DO UPDATE SET requests = requests + excluded.requests,
        bytes = bytes + excluded.bytes, blocks = blocks + excluded.blocks;
END;
CREATE TRIGGER rollup_clients_fleet_update AFTER UPDATE ON rollup_clients BEGIN
    INSERT INTO rollup_clients_fleet (hour, client, requests, bytes, blocks)
    VALUES (NEW.hour, NEW.client, NEW.requests - OLD.requests, NEW.bytes - OLD.bytes,
            NEW.blocks - OLD.blocks)
    ON CONFLICT (hour, client) DO UPDATE SET requests = requests + excluded.requests,
        bytes = bytes + excluded.bytes, blocks = blocks + excluded.blocks;
END;
