-- squidguard-bloom monitor, schema 1 (PostgreSQL). See docs/monitor.md.
-- Times are Unix epoch seconds (REAL for line times, INTEGER for rollup buckets).
-- Raw tables carry no foreign keys and one index each, for ingest speed.

CREATE TABLE proxies (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    first_seen    DOUBLE PRECISION NOT NULL,   -- monitor clock: when ingest first saw its directory
    last_received DOUBLE PRECISION,            -- monitor clock: when its newest lines were stored
    last_line_ts  DOUBLE PRECISION             -- the newest time written in any of its lines
);

CREATE TABLE streams (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proxy_id  INTEGER NOT NULL REFERENCES proxies (id),
    name      TEXT NOT NULL,       -- the shipper's subdirectory (squidGuard, blocked, access ...)
    kind      TEXT,                -- parser: access | helper | shipper; NULL until the first line
    UNIQUE (proxy_id, name)
);

-- Per-file checkpoints: read_to moves in the same transaction as the rows read.
CREATE TABLE segments (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    name      TEXT NOT NULL,       -- 00000001-fe01-1b3c2d.log
    seq       BIGINT NOT NULL,
    read_to   BIGINT NOT NULL DEFAULT 0,  -- bytes ingested, always just after a line end
    lines     BIGINT NOT NULL DEFAULT 0,  -- lines ingested (parsed or not)
    unparsed  BIGINT NOT NULL DEFAULT 0,
    finished  SMALLINT NOT NULL DEFAULT 0,  -- 1: a later segment exists and this one is read to its end
    updated   DOUBLE PRECISION NOT NULL,
    UNIQUE (stream_id, name)
);

-- Squid native access.log lines.
CREATE TABLE access (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proxy_id   INTEGER NOT NULL,
    ts         DOUBLE PRECISION NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    client     TEXT NOT NULL,
    result     TEXT NOT NULL,      -- TCP_HIT, TCP_MISS, TCP_REFRESH_UNMODIFIED ...
    status     INTEGER NOT NULL,   -- HTTP status sent to the client (0: none)
    bytes      BIGINT NOT NULL,
    method     TEXT NOT NULL,
    url        TEXT NOT NULL,
    host       TEXT NOT NULL,      -- lower-case host of url, without port
    ident      TEXT NOT NULL,
    hierarchy  TEXT NOT NULL,      -- HIER_DIRECT, HIER_NONE ...
    peer       TEXT NOT NULL,
    mime       TEXT NOT NULL
);
CREATE INDEX access_ts ON access (ts);

-- The helper's Request(...) lines (any squidGuard-format log: per-dest, source, welcome).
CREATE TABLE decisions (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proxy_id INTEGER NOT NULL,
    ts       DOUBLE PRECISION NOT NULL,
    pid      INTEGER NOT NULL,
    source   TEXT NOT NULL,        -- the acl/source that matched
    target   TEXT NOT NULL,        -- the dest (category), 'welcome', or what squidGuard wrote
    rewrite  TEXT NOT NULL,
    url      TEXT NOT NULL,
    host     TEXT NOT NULL,
    client   TEXT NOT NULL,
    fqdn     TEXT NOT NULL,
    ident    TEXT NOT NULL,
    method   TEXT NOT NULL,
    action   TEXT NOT NULL         -- REDIRECT (a block), PASS, REWRITE, WELCOME
);
CREATE INDEX decisions_ts ON decisions (ts);

-- Other lines of the helper's squidGuard.log and of the shipper's own log.
CREATE TABLE events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proxy_id  INTEGER NOT NULL,
    stream_id INTEGER,             -- NULL for the monitor's own events
    ts        DOUBLE PRECISION NOT NULL,
    origin    TEXT NOT NULL,       -- helper | shipper | monitor
    pid       INTEGER,
    level     TEXT NOT NULL,
    kind      TEXT NOT NULL,       -- started, ready, stopped, reload, reload_failed, emergency,
                                   -- status, link, refused, other
    message   TEXT NOT NULL
);
CREATE INDEX events_ts ON events (ts);

-- Lines no parser took: kept with their place, so nothing is lost.
CREATE TABLE unparsed (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proxy_id   INTEGER NOT NULL,
    stream_id  INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    at         BIGINT NOT NULL,   -- byte offset of the line in its segment
    length     BIGINT NOT NULL,   -- the line's length in bytes, without its newline
    received   DOUBLE PRECISION NOT NULL,      -- monitor clock
    reason     TEXT NOT NULL,
    line       BYTEA NOT NULL       -- the line's bytes (the first 65536 of a longer one)
);
CREATE INDEX unparsed_received ON unparsed (received);

-- Per-minute rollups (minute = epoch seconds of the minute's start, line time).
CREATE TABLE rollup_lines (
    minute   BIGINT NOT NULL,
    proxy_id INTEGER NOT NULL,
    kind     TEXT NOT NULL,        -- access | helper | shipper (stream kind)
    lines    BIGINT NOT NULL,     -- parsed lines
    unparsed BIGINT NOT NULL,     -- unparsed lines, by the minute they were received
    PRIMARY KEY (minute, proxy_id, kind)
);

CREATE TABLE rollup_decisions (
    minute   BIGINT NOT NULL,
    proxy_id INTEGER NOT NULL,
    target   TEXT NOT NULL,
    action   TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (minute, proxy_id, target, action)
);

CREATE TABLE rollup_cache (
    minute     BIGINT NOT NULL,
    proxy_id   INTEGER NOT NULL,
    result     TEXT NOT NULL,
    status     INTEGER NOT NULL,
    hit        SMALLINT NOT NULL,   -- 1: served from the cache (see monitor/cache.py)
    n          BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    PRIMARY KEY (minute, proxy_id, result, status)
);

-- Hourly rollups for "top" lists (hour = epoch seconds of the hour's start).
CREATE TABLE rollup_blocked_hosts (
    hour     BIGINT NOT NULL,
    proxy_id INTEGER NOT NULL,
    target   TEXT NOT NULL,
    host     TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (hour, proxy_id, target, host)
);

CREATE TABLE rollup_hosts (
    hour      BIGINT NOT NULL,
    proxy_id  INTEGER NOT NULL,
    host      TEXT NOT NULL,
    n         BIGINT NOT NULL,
    hits      BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    hit_bytes BIGINT NOT NULL,
    PRIMARY KEY (hour, proxy_id, host)
);

CREATE TABLE rollup_clients (
    hour     BIGINT NOT NULL,
    proxy_id INTEGER NOT NULL,
    client   TEXT NOT NULL,
    requests BIGINT NOT NULL,     -- access.log lines
    bytes    BIGINT NOT NULL,
    blocks   BIGINT NOT NULL,     -- REDIRECT decisions
    PRIMARY KEY (hour, proxy_id, client)
);
