-- squidguard-bloom monitor, schema 6 (PostgreSQL): the dashboard's sums kept by statement
-- triggers. Migrations 3 and 5 keep the hourly, daily and fleet-wide sums of the rollups with
-- row triggers: one plpgsql call and one upsert per rollup row an ingest batch writes, about
-- half of the server's CPU during ingest. Here each rollup statement (ingest's one
-- INSERT ... SELECT ... ON CONFLICT DO UPDATE per rollup table) runs one trigger per event,
-- which adds its rows' sums with one grouped upsert per sum table, from the statement's
-- transition tables (new rows; for updates, new minus old). Same transaction as before:
-- exact and exactly once. No data changes.


DROP TRIGGER IF EXISTS rollup_decisions_hourly_add ON rollup_decisions;
DROP FUNCTION IF EXISTS rollup_decisions_hourly_add();
DROP TRIGGER IF EXISTS rollup_cache_hourly_add ON rollup_cache;
DROP FUNCTION IF EXISTS rollup_cache_hourly_add();
DROP TRIGGER IF EXISTS rollup_blocked_hosts_daily_add ON rollup_blocked_hosts;
DROP FUNCTION IF EXISTS rollup_blocked_hosts_daily_add();
DROP TRIGGER IF EXISTS rollup_blocked_hosts_fleet_add ON rollup_blocked_hosts;
DROP FUNCTION IF EXISTS rollup_blocked_hosts_fleet_add();
DROP TRIGGER IF EXISTS rollup_hosts_daily_add ON rollup_hosts;
DROP FUNCTION IF EXISTS rollup_hosts_daily_add();
DROP TRIGGER IF EXISTS rollup_hosts_fleet_add ON rollup_hosts;
DROP FUNCTION IF EXISTS rollup_hosts_fleet_add();
DROP TRIGGER IF EXISTS rollup_clients_daily_add ON rollup_clients;
DROP FUNCTION IF EXISTS rollup_clients_daily_add();
DROP TRIGGER IF EXISTS rollup_clients_fleet_add ON rollup_clients;
DROP FUNCTION IF EXISTS rollup_clients_fleet_add();

CREATE OR REPLACE FUNCTION rollup_decisions_sums_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_decisions_hourly AS t (hour, proxy_id, target, action, n)
    SELECT minute - minute % 3600, proxy_id, target, action, sum(n)
    FROM new_rows
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (hour, proxy_id, target, action) DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION rollup_decisions_sums_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_decisions_hourly AS t (hour, proxy_id, target, action, n)
    SELECT minute - minute % 3600, proxy_id, target, action, sum(n)
    FROM (SELECT minute, proxy_id, target, action, n FROM new_rows
          UNION ALL SELECT minute, proxy_id, target, action, -n FROM old_rows) d
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (hour, proxy_id, target, action) DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rollup_decisions_sums_inserted ON rollup_decisions;
CREATE TRIGGER rollup_decisions_sums_inserted AFTER INSERT ON rollup_decisions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_decisions_sums_inserted();
DROP TRIGGER IF EXISTS rollup_decisions_sums_updated ON rollup_decisions;
CREATE TRIGGER rollup_decisions_sums_updated AFTER UPDATE ON rollup_decisions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_decisions_sums_updated();

CREATE OR REPLACE FUNCTION rollup_cache_sums_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_cache_hourly AS t (hour, proxy_id, hit, n, bytes)
    SELECT minute - minute % 3600, proxy_id, hit, sum(n), sum(bytes)
    FROM new_rows
    GROUP BY 1, 2, 3
    ON CONFLICT (hour, proxy_id, hit) DO UPDATE SET n = t.n + excluded.n, bytes = t.bytes + excluded.bytes;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION rollup_cache_sums_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_cache_hourly AS t (hour, proxy_id, hit, n, bytes)
    SELECT minute - minute % 3600, proxy_id, hit, sum(n), sum(bytes)
    FROM (SELECT minute, proxy_id, hit, n, bytes FROM new_rows
          UNION ALL SELECT minute, proxy_id, hit, -n, -bytes FROM old_rows) d
    GROUP BY 1, 2, 3
    ON CONFLICT (hour, proxy_id, hit) DO UPDATE SET n = t.n + excluded.n, bytes = t.bytes + excluded.bytes;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rollup_cache_sums_inserted ON rollup_cache;
CREATE TRIGGER rollup_cache_sums_inserted AFTER INSERT ON rollup_cache
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_cache_sums_inserted();
DROP TRIGGER IF EXISTS rollup_cache_sums_updated ON rollup_cache;
CREATE TRIGGER rollup_cache_sums_updated AFTER UPDATE ON rollup_cache
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_cache_sums_updated();

CREATE OR REPLACE FUNCTION rollup_blocked_hosts_sums_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_blocked_hosts_daily AS t (day, proxy_id, target, host, n)
    SELECT hour - hour % 86400, proxy_id, target, host, sum(n)
    FROM new_rows
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, proxy_id, target, host) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO rollup_blocked_hosts_fleet AS t (hour, target, host, n)
    SELECT hour, target, host, sum(n)
    FROM new_rows
    GROUP BY 1, 2, 3
    ON CONFLICT (hour, target, host) DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION rollup_blocked_hosts_sums_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_blocked_hosts_daily AS t (day, proxy_id, target, host, n)
    SELECT hour - hour % 86400, proxy_id, target, host, sum(n)
    FROM (SELECT hour, proxy_id, target, host, n FROM new_rows
          UNION ALL SELECT hour, proxy_id, target, host, -n FROM old_rows) d
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, proxy_id, target, host) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO rollup_blocked_hosts_fleet AS t (hour, target, host, n)
    SELECT hour, target, host, sum(n)
    FROM (SELECT hour, target, host, n FROM new_rows
          UNION ALL SELECT hour, target, host, -n FROM old_rows) d
    GROUP BY 1, 2, 3
    ON CONFLICT (hour, target, host) DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rollup_blocked_hosts_sums_inserted ON rollup_blocked_hosts;
CREATE TRIGGER rollup_blocked_hosts_sums_inserted AFTER INSERT ON rollup_blocked_hosts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_blocked_hosts_sums_inserted();
DROP TRIGGER IF EXISTS rollup_blocked_hosts_sums_updated ON rollup_blocked_hosts;
CREATE TRIGGER rollup_blocked_hosts_sums_updated AFTER UPDATE ON rollup_blocked_hosts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_blocked_hosts_sums_updated();

CREATE OR REPLACE FUNCTION rollup_hosts_sums_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_hosts_daily AS t (day, proxy_id, host, n, hits, bytes, hit_bytes)
    SELECT hour - hour % 86400, proxy_id, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes)
    FROM new_rows
    GROUP BY 1, 2, 3
    ON CONFLICT (day, proxy_id, host) DO UPDATE SET n = t.n + excluded.n, hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes, hit_bytes = t.hit_bytes + excluded.hit_bytes;
    INSERT INTO rollup_hosts_fleet AS t (hour, host, n, hits, bytes, hit_bytes)
    SELECT hour, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes)
    FROM new_rows
    GROUP BY 1, 2
    ON CONFLICT (hour, host) DO UPDATE SET n = t.n + excluded.n, hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes, hit_bytes = t.hit_bytes + excluded.hit_bytes;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION rollup_hosts_sums_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_hosts_daily AS t (day, proxy_id, host, n, hits, bytes, hit_bytes)
    SELECT hour - hour % 86400, proxy_id, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes)
    FROM (SELECT hour, proxy_id, host, n, hits, bytes, hit_bytes FROM new_rows
          UNION ALL SELECT hour, proxy_id, host, -n, -hits, -bytes, -hit_bytes FROM old_rows) d
    GROUP BY 1, 2, 3
    ON CONFLICT (day, proxy_id, host) DO UPDATE SET n = t.n + excluded.n, hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes, hit_bytes = t.hit_bytes + excluded.hit_bytes;
    INSERT INTO rollup_hosts_fleet AS t (hour, host, n, hits, bytes, hit_bytes)
    SELECT hour, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes)
    FROM (SELECT hour, host, n, hits, bytes, hit_bytes FROM new_rows
          UNION ALL SELECT hour, host, -n, -hits, -bytes, -hit_bytes FROM old_rows) d
    GROUP BY 1, 2
    ON CONFLICT (hour, host) DO UPDATE SET n = t.n + excluded.n, hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes, hit_bytes = t.hit_bytes + excluded.hit_bytes;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rollup_hosts_sums_inserted ON rollup_hosts;
CREATE TRIGGER rollup_hosts_sums_inserted AFTER INSERT ON rollup_hosts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_hosts_sums_inserted();
DROP TRIGGER IF EXISTS rollup_hosts_sums_updated ON rollup_hosts;
CREATE TRIGGER rollup_hosts_sums_updated AFTER UPDATE ON rollup_hosts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_hosts_sums_updated();

CREATE OR REPLACE FUNCTION rollup_clients_sums_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_clients_daily AS t (day, proxy_id, client, requests, bytes, blocks)
    SELECT hour - hour % 86400, proxy_id, client, sum(requests), sum(bytes), sum(blocks)
    FROM new_rows
    GROUP BY 1, 2, 3
    ON CONFLICT (day, proxy_id, client) DO UPDATE SET requests = t.requests + excluded.requests, bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    INSERT INTO rollup_clients_fleet AS t (hour, client, requests, bytes, blocks)
    SELECT hour, client, sum(requests), sum(bytes), sum(blocks)
    FROM new_rows
    GROUP BY 1, 2
    ON CONFLICT (hour, client) DO UPDATE SET requests = t.requests + excluded.requests, bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION rollup_clients_sums_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_clients_daily AS t (day, proxy_id, client, requests, bytes, blocks)
    SELECT hour - hour % 86400, proxy_id, client, sum(requests), sum(bytes), sum(blocks)
    FROM (SELECT hour, proxy_id, client, requests, bytes, blocks FROM new_rows
          UNION ALL SELECT hour, proxy_id, client, -requests, -bytes, -blocks FROM old_rows) d
    GROUP BY 1, 2, 3
    ON CONFLICT (day, proxy_id, client) DO UPDATE SET requests = t.requests + excluded.requests, bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    INSERT INTO rollup_clients_fleet AS t (hour, client, requests, bytes, blocks)
    SELECT hour, client, sum(requests), sum(bytes), sum(blocks)
    FROM (SELECT hour, client, requests, bytes, blocks FROM new_rows
          UNION ALL SELECT hour, client, -requests, -bytes, -blocks FROM old_rows) d
    GROUP BY 1, 2
    ON CONFLICT (hour, client) DO UPDATE SET requests = t.requests + excluded.requests, bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rollup_clients_sums_inserted ON rollup_clients;
CREATE TRIGGER rollup_clients_sums_inserted AFTER INSERT ON rollup_clients
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_clients_sums_inserted();
DROP TRIGGER IF EXISTS rollup_clients_sums_updated ON rollup_clients;
CREATE TRIGGER rollup_clients_sums_updated AFTER UPDATE ON rollup_clients
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollup_clients_sums_updated();
