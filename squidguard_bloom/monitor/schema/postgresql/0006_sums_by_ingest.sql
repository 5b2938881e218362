-- squidguard-bloom monitor, schema 6 (PostgreSQL): ingest adds to the dashboard's sums itself.
-- The hourly, daily (schema 3) and fleet-wide (schema 5) sums of the rollups were kept by
-- triggers, one statement per rollup row changed: on PostgreSQL half of the server's ingest
-- CPU. Ingest now adds each batch's sums of its own buckets (monitor/rollup.py, SUMS) in the
-- same transaction as the rollups: as exact, and exactly once, as before. No data changes.

DROP TRIGGER IF EXISTS rollup_decisions_hourly_add ON rollup_decisions;
DROP FUNCTION IF EXISTS rollup_decisions_hourly_add();
DROP TRIGGER IF EXISTS rollup_cache_hourly_add ON rollup_cache;
DROP FUNCTION IF EXISTS rollup_cache_hourly_add();
DROP TRIGGER IF EXISTS rollup_blocked_hosts_daily_add ON rollup_blocked_hosts;
DROP FUNCTION IF EXISTS rollup_blocked_hosts_daily_add();
DROP TRIGGER IF EXISTS rollup_hosts_daily_add ON rollup_hosts;
DROP FUNCTION IF EXISTS rollup_hosts_daily_add();
DROP TRIGGER IF EXISTS rollup_clients_daily_add ON rollup_clients;
DROP FUNCTION IF EXISTS rollup_clients_daily_add();
DROP TRIGGER IF EXISTS rollup_blocked_hosts_fleet_add ON rollup_blocked_hosts;
DROP FUNCTION IF EXISTS rollup_blocked_hosts_fleet_add();
DROP TRIGGER IF EXISTS rollup_hosts_fleet_add ON rollup_hosts;
DROP FUNCTION IF EXISTS rollup_hosts_fleet_add();
DROP TRIGGER IF EXISTS rollup_clients_fleet_add ON rollup_clients;
DROP FUNCTION IF EXISTS rollup_clients_fleet_add();
