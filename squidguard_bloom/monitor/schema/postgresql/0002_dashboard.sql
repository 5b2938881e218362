-- squidguard-bloom monitor, schema 2 (PostgreSQL): the dashboard's accounts and sessions, and
-- the indexes its search and tiles read (docs/monitor.md, "The dashboard").

CREATE TABLE users (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,        -- scrypt$N$r$p$salt$hash (base64), never the password
    created  DOUBLE PRECISION NOT NULL
);

-- A session is found by the SHA-256 of its cookie: a stolen database holds no usable cookie.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,      -- the token every state-changing request must carry
    created    DOUBLE PRECISION NOT NULL,
    seen       DOUBLE PRECISION NOT NULL,      -- last request; idle sessions expire
    expires    DOUBLE PRECISION NOT NULL       -- absolute end
);
CREATE INDEX sessions_expires ON sessions (expires);

-- Search by client or domain within a time range: an index range, never a scan.
CREATE INDEX access_client_ts ON access (client, ts);
CREATE INDEX access_host_ts ON access (host, ts);
CREATE INDEX decisions_client_ts ON decisions (client, ts);
CREATE INDEX decisions_host_ts ON decisions (host, ts);
-- The tiles' helper state: the newest event of each kind per proxy.
CREATE INDEX events_proxy_kind_ts ON events (proxy_id, kind, ts);
