-- squidguard-bloom monitor, schema 5 (PostgreSQL): fleet-wide hourly sums for the top lists.
-- The dashboard's top lists over all proxies and up to a day read these instead of the
-- per-proxy hourly rollups: one row per host (or client) and hour instead of one per proxy,
-- host and hour, so a 24-hour list groups about a third of the rows (docs/dashboard.md).
-- Triggers keep them in step with the per-proxy rollups, in the same transaction as the
-- ingest that changes those (exact, exactly once, as migration 3's); existing rollups are
-- summed in here. Per-proxy lists keep reading the per-proxy tables.

-- No ingest may commit between the sums below and the triggers: it would be in neither.
LOCK TABLE rollup_blocked_hosts, rollup_hosts, rollup_clients IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE rollup_blocked_hosts_fleet (
    hour     BIGINT NOT NULL,
    target   TEXT NOT NULL,
    host     TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (hour, target, host)
);

CREATE TABLE rollup_hosts_fleet (
    hour      BIGINT NOT NULL,
    host      TEXT NOT NULL,
    n         BIGINT NOT NULL,
    hits      BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    hit_bytes BIGINT NOT NULL,
    PRIMARY KEY (hour, host)
);

CREATE TABLE rollup_clients_fleet (
    hour     BIGINT NOT NULL,
    client   TEXT NOT NULL,
    requests BIGINT NOT NULL,
    bytes    BIGINT NOT NULL,
    blocks   BIGINT NOT NULL,
    PRIMARY KEY (hour, client)
);

INSERT INTO rollup_blocked_hosts_fleet (hour, target, host, n)
SELECT hour, target, host, sum(n) FROM rollup_blocked_hosts GROUP BY 1, 2, 3;
INSERT INTO rollup_hosts_fleet (hour, host, n, hits, bytes, hit_bytes)
SELECT hour, host, sum(n), sum(hits), sum(bytes), sum(hit_bytes) FROM rollup_hosts
GROUP BY 1, 2;
INSERT INTO rollup_clients_fleet (hour, client, requests, bytes, blocks)
SELECT hour, client, sum(requests), sum(bytes), sum(blocks) FROM rollup_clients
GROUP BY 1, 2;

CREATE FUNCTION rollup_blocked_hosts_fleet_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO rollup_blocked_hosts_fleet AS t (hour, target, host, n)
        VALUES (NEW.hour, NEW.target, NEW.host, NEW.n - OLD.n)
        ON CONFLICT (hour, target, host) DO UPDATE SET n = t.n + excluded.n;
    ELSE
        INSERT INTO rollup_blocked_hosts_fleet AS t (hour, target, host, n)
        VALUES (NEW.hour, NEW.target, NEW.host, NEW.n)
        ON CONFLICT (hour, target, host) DO UPDATE SET n = t.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_blocked_hosts_fleet_add AFTER INSERT OR UPDATE ON rollup_blocked_hosts
    FOR EACH ROW EXECUTE FUNCTION rollup_blocked_hosts_fleet_add();

CREATE FUNCTION rollup_hosts_fleet_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO rollup_hosts_fleet AS t (hour, host, n, hits, bytes, hit_bytes)
        VALUES (NEW.hour, NEW.host, NEW.n - OLD.n, NEW.hits - OLD.hits, NEW.bytes - OLD.bytes,
                NEW.hit_bytes - OLD.hit_bytes)
        ON CONFLICT (hour, host) DO UPDATE SET n = t.n + excluded.n,
            hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes,
            hit_bytes = t.hit_bytes + excluded.hit_bytes;
    ELSE
        INSERT INTO rollup_hosts_fleet AS t (hour, host, n, hits, bytes, hit_bytes)
        VALUES (NEW.hour, NEW.host, NEW.n, NEW.hits, NEW.bytes, NEW.hit_bytes)
        ON CONFLICT (hour, host) DO UPDATE SET n = t.n + excluded.n,
            hits = t.hits + excluded.hits, bytes = t.bytes + excluded.bytes,
            hit_bytes = t.hit_bytes + excluded.hit_bytes;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_hosts_fleet_add AFTER INSERT OR UPDATE ON rollup_hosts
    FOR EACH ROW EXECUTE FUNCTION rollup_hosts_fleet_add();

CREATE FUNCTION rollup_clients_fleet_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO rollup_clients_fleet AS t (hour, client, requests, bytes, blocks)
        VALUES (NEW.hour, NEW.client, NEW.requests - OLD.requests, NEW.bytes - OLD.bytes,
                NEW.blocks - OLD.blocks)
        ON CONFLICT (hour, client) DO UPDATE SET requests = t.requests + excluded.requests,
            bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    ELSE
        INSERT INTO rollup_clients_fleet AS t (hour, client, requests, bytes, blocks)
        VALUES (NEW.hour, NEW.client, NEW.requests, NEW.bytes, NEW.blocks)
        ON CONFLICT (hour, client) DO UPDATE SET requests = t.requests + excluded.requests,
            bytes = t.bytes + excluded.bytes, blocks = t.blocks + excluded.blocks;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_clients_fleet_add AFTER INSERT OR UPDATE ON rollup_clients
    FOR EACH ROW EXECUTE FUNCTION rollup_clients_fleet_add();
