-- 005: how fresh each source's rollups are.
--
-- A pass counts every transaction below its horizon, which an open transaction holds back. So
-- "everything committed before fresh_as_of is rolled up" holds for the pass's start time, or
-- the start of the oldest transaction still open then, whichever is earlier. Rollup lag is
-- now() - fresh_as_of (rollupd status, the rollupd_rollup_lag_seconds metric).
-- Seeing other roles' transactions in pg_stat_activity needs pg_read_all_stats; without it,
-- fresh_as_of is the pass's start and lag is understated while another role holds the horizon.

ALTER TABLE rollupd.sources ADD COLUMN fresh_as_of timestamptz;
