-- squidguard-bloom monitor, schema 6 (SQLite): ingest adds to the dashboard's sums itself.
-- The hourly, daily (schema 3) and fleet-wide (schema 5) sums of the rollups were kept by
-- triggers, one statement per rollup row changed: on PostgreSQL half of the server's ingest
-- CPU. Ingest now adds each batch's sums of its own buckets (monitor/rollup.py, SUMS) in the
-- same transaction as the rollups: as exact, and exactly once, as before. No data changes.

DROP TRIGGER IF EXISTS rollup_decisions_hourly_insert;
DROP TRIGGER IF EXISTS rollup_decisions_hourly_update;
DROP TRIGGER IF EXISTS rollup_cache_hourly_insert;
DROP TRIGGER IF EXISTS rollup_cache_hourly_update;
DROP TRIGGER IF EXISTS rollup_blocked_hosts_daily_insert;
DROP TRIGGER IF EXISTS rollup_blocked_hosts_daily_update;
DROP TRIGGER IF EXISTS rollup_hosts_daily_insert;
DROP TRIGGER IF EXISTS rollup_hosts_daily_update;
DROP TRIGGER IF EXISTS rollup_clients_daily_insert;
DROP TRIGGER IF EXISTS rollup_clients_daily_update;
DROP TRIGGER IF EXISTS rollup_blocked_hosts_fleet_insert;
DROP TRIGGER IF EXISTS rollup_blocked_hosts_fleet_update;
DROP TRIGGER IF EXISTS rollup_hosts_fleet_insert;
DROP TRIGGER IF EXISTS rollup_hosts_fleet_update;
DROP TRIGGER IF EXISTS rollup_clients_fleet_insert;
DROP TRIGGER IF EXISTS rollup_clients_fleet_update;
