-- squidguard-bloom monitor, schema 3 (SQLite): coarse rollups for the dashboard's long ranges.
-- Hourly decisions and cache counts (charts over more than a day), daily hosts, clients and
-- blocked hosts (top lists over more than a day). Triggers keep them in step with the rollups
-- they summarise, in the same transaction as the ingest that changes those: exact, and
-- exactly once, without a change to ingest. Existing rollups are summed in at migration.

CREATE TABLE rollup_decisions_hourly (
    hour     INTEGER NOT NULL,
    proxy_id INTEGER NOT NULL,
    target   TEXT NOT NULL,
    action   TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (hour, proxy_id, target, action)
) WITHOUT ROWID;

CREATE TABLE rollup_cache_hourly (
    hour     INTEGER NOT NULL,
    proxy_id INTEGER NOT NULL,
    hit      INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    PRIMARY KEY (hour, proxy_id, hit)
) WITHOUT ROWID;

CREATE TABLE rollup_blocked_hosts_daily (
    day      INTEGER NOT NULL,     -- epoch seconds of the UTC day's start
    proxy_id INTEGER NOT NULL,
    target   TEXT NOT NULL,
    host     TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (day, proxy_id, target, host)
) WITHOUT ROWID;

CREATE TABLE rollup_hosts_daily (
    day       INTEGER NOT NULL,
    proxy_id  INTEGER NOT NULL,
    host      TEXT NOT NULL,
    n         INTEGER NOT NULL,
    hits      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    hit_bytes INTEGER NOT NULL,
    PRIMARY KEY (day, proxy_id, host)
) WITHOUT ROWID;

CREATE TABLE rollup_clients_daily (
    day      INTEGER NOT NULL,
    proxy_id INTEGER NOT NULL,
    client   TEXT NOT NULL,
    requests INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    blocks   INTEGER NOT NULL,
    PRIMARY KEY (day, proxy_id, client)
) WITHOUT ROWID;

INSERT INTO rollup_decisions_hourly (hour, proxy_id, target, action, n)
SELECT minute - minute % 3600, proxy_id, target, action, sum(n) FROM rollup_decisions
GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_cache_hourly (hour, proxy_id, hit, n, bytes)
SELECT minute - minute % 3600, proxy_id, hit, sum(n), sum(bytes) FROM rollup_cache
GROUP BY 1, 2, 3;
INSERT INTO rollup_blocked_hosts_daily (day, proxy_id, target, host, n)
SELECT hour - hour % 86400, proxy_id, target, host, sum(n) FROM rollup_blocked_hosts
GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_hosts_daily (day, proxy_id, host, n, hits, bytes, hit_bytes)
SELECT hour - hour % 86400, proxy_id, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes)
FROM rollup_hosts GROUP BY 1, 2, 3;
INSERT INTO rollup_clients_daily (day, proxy_id, client, requests, bytes, blocks)
SELECT hour - hour % 86400, proxy_id, client, sum(requests), sum(bytes), sum(blocks)
FROM rollup_clients GROUP BY 1, 2, 3;

CREATE TRIGGER rollup_decisions_hourly_insert AFTER INSERT ON rollup_decisions BEGIN
    INSERT INTO rollup_decisions_hourly (hour, proxy_id, target, action, n)
    VALUES (NEW.minute - NEW.minute % 3600, NEW.proxy_id, NEW.target, NEW.action, NEW.n)
    ON CONFLICT (hour, proxy_id, target, action) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER rollup_decisions_hourly_update AFTER UPDATE OF n ON rollup_decisions BEGIN
    INSERT INTO rollup_decisions_hourly (hour, proxy_id, target, action, n)
    VALUES (NEW.minute - NEW.minute % 3600, NEW.proxy_id, NEW.target, NEW.action,
            NEW.n - OLD.n)
    ON CONFLICT (hour, proxy_id, target, action) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER rollup_cache_hourly_insert AFTER INSERT ON rollup_cache BEGIN
    INSERT INTO rollup_cache_hourly (hour, proxy_id, hit, n, bytes)
    VALUES (NEW.minute - NEW.minute % 3600, NEW.proxy_id, NEW.hit, NEW.n, NEW.bytes)
    ON CONFLICT (hour, proxy_id, hit) DO UPDATE SET n = n + excluded.n,
        bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER rollup_cache_hourly_update AFTER UPDATE OF n, bytes ON rollup_cache BEGIN
    INSERT INTO rollup_cache_hourly (hour, proxy_id, hit, n, bytes)
    VALUES (NEW.minute - NEW.minute % 3600, NEW.proxy_id, NEW.hit, NEW.n - OLD.n,
            NEW.bytes - OLD.bytes)
    ON CONFLICT (hour, proxy_id, hit) DO UPDATE SET n = n + excluded.n,
        bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER rollup_blocked_hosts_daily_insert AFTER INSERT ON rollup_blocked_hosts BEGIN
    INSERT INTO rollup_blocked_hosts_daily (day, proxy_id, target, host, n)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.target, NEW.host, NEW.n)
    ON CONFLICT (day, proxy_id, target, host) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER rollup_blocked_hosts_daily_update AFTER UPDATE OF n ON rollup_blocked_hosts BEGIN
    INSERT INTO rollup_blocked_hosts_daily (day, proxy_id, target, host, n)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.target, NEW.host, NEW.n - OLD.n)
    ON CONFLICT (day, proxy_id, target, host) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER rollup_hosts_daily_insert AFTER INSERT ON rollup_hosts BEGIN
    INSERT INTO rollup_hosts_daily (day, proxy_id, host, n, hits, bytes, hit_bytes)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.host, NEW.n, NEW.hits, NEW.bytes,
            NEW.hit_bytes)
    ON CONFLICT (day, proxy_id, host) DO UPDATE SET n = n + excluded.n,
        hits = hits + excluded.hits, bytes = bytes + excluded.bytes,
        hit_bytes = hit_bytes + excluded.hit_bytes;
END;
CREATE TRIGGER rollup_hosts_daily_update AFTER UPDATE ON rollup_hosts BEGIN
    INSERT INTO rollup_hosts_daily (day, proxy_id, host, n, hits, bytes, hit_bytes)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.host, NEW.n - OLD.n,
            NEW.hits - OLD.hits, NEW.bytes - OLD.bytes, NEW.hit_bytes - OLD.hit_bytes)
    ON CONFLICT (day, proxy_id, host) DO UPDATE SET n = n + excluded.n,
        hits = hits + excluded.hits, bytes = bytes + excluded.bytes,
        hit_bytes = hit_bytes + excluded.hit_bytes;
END;

CREATE TRIGGER rollup_clients_daily_insert AFTER INSERT ON rollup_clients BEGIN
    INSERT INTO rollup_clients_daily (day, proxy_id, client, requests, bytes, blocks)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.client, NEW.requests, NEW.bytes,
            NEW.blocks)
    ON CONFLICT (day, proxy_id, client) DO UPDATE SET requests = requests + excluded.requests,
        bytes = bytes + excluded.bytes, blocks = blocks + excluded.blocks;
END;
CREATE TRIGGER rollup_clients_daily_update AFTER UPDATE ON rollup_clients BEGIN
    INSERT INTO rollup_clients_daily (day, proxy_id, client, requests, bytes, blocks)
    VALUES (NEW.hour - NEW.hour % 86400, NEW.proxy_id, NEW.client, NEW.requests - OLD.requests,
            NEW.bytes - OLD.bytes, NEW.blocks - OLD.blocks)
    ON CONFLICT (day, proxy_id, client) DO UPDATE SET requests = requests + excluded.requests,
        bytes = bytes + excluded.bytes, blocks = blocks + excluded.blocks;
END;
