-- squidguard-bloom monitor, schema 4 (SQLite): the search's client and domain indexes become
-- posting lists (docs/monitor.md, "Search postings").
--
-- A B-tree index on (client, ts) or (host, ts) takes one insert per row at a random place,
-- which was more than half of ingest's cost. A posting holds the ids of every row of one
-- ingest transaction that has one client (or host) in one hour of line time: one insert per
-- (value, hour, transaction) instead of one per row, and still an index range for the search
-- (docs/monitor.md). Ingest writes them in the transaction of their rows: exactly once.

DROP INDEX access_client_ts;
DROP INDEX access_host_ts;
DROP INDEX decisions_client_ts;
DROP INDEX decisions_host_ts;

CREATE TABLE access_postings (
    field    TEXT NOT NULL,        -- client | host
    value    TEXT NOT NULL,        -- the client address, or the lower-case host
    hour     INTEGER NOT NULL,     -- epoch seconds of the hour's start (line time)
    first_id INTEGER NOT NULL,     -- the smallest id in ids (keeps postings apart)
    ids      TEXT NOT NULL,        -- ascending row ids, comma-separated
    PRIMARY KEY (field, value, hour, first_id)
) WITHOUT ROWID;

CREATE TABLE decision_postings (
    field    TEXT NOT NULL,
    value    TEXT NOT NULL,
    hour     INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    ids      TEXT NOT NULL,
    PRIMARY KEY (field, value, hour, first_id)
) WITHOUT ROWID;

INSERT INTO access_postings (field, value, hour, first_id, ids)
SELECT 'client', client, hour, min(id), group_concat(id, ',')
FROM (SELECT id, client, CAST(ts / 3600 AS INTEGER) * 3600 AS hour FROM access ORDER BY id)
GROUP BY client, hour;
INSERT INTO access_postings (field, value, hour, first_id, ids)
SELECT 'host', host, hour, min(id), group_concat(id, ',')
FROM (SELECT id, host, CAST(ts / 3600 AS INTEGER) * 3600 AS hour FROM access ORDER BY id)
GROUP BY host, hour;
INSERT INTO decision_postings (field, value, hour, first_id, ids)
SELECT 'client', client, hour, min(id), group_concat(id, ',')
FROM (SELECT id, client, CAST(ts / 3600 AS INTEGER) * 3600 AS hour FROM decisions ORDER BY id)
GROUP BY client, hour;
INSERT INTO decision_postings (field, value, hour, first_id, ids)
SELECT 'host', host, hour, min(id), group_concat(id, ',')
FROM (SELECT id, host, CAST(ts / 3600 AS INTEGER) * 3600 AS hour FROM decisions ORDER BY id)
GROUP BY host, hour;
