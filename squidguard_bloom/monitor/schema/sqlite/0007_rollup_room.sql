-- squidguard-bloom monitor, schema 7 (SQLite): nothing to do. On PostgreSQL this version
-- leaves room on the rollups' pages so that their updates stay on the page (see its twin);
-- SQLite updates a row in place in its B-tree and has no such setting.
SELECT 1;
