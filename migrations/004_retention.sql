-- 004: what retention needs.
-- rollupd:replaces f0fc9e1ac31bc15912e6c9b7cc1506eac76b186ef2c3ed912ab64775c030a80a
--
-- Retention deletes rollups by bucket start in small batches; cost_aggregates' own indexes lead
-- with project_id, so it gets one on period_start. Each run's outcome per table is kept for
-- `rollupd status` and for operators.

DO $$
BEGIN
    IF to_regclass('@app_schema@.idx_cost_agg_period_start') IS NULL THEN
        CREATE INDEX idx_cost_agg_period_start ON @app_schema@.cost_aggregates (period_start);
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('index', 'idx_cost_agg_period_start');
    END IF;
END
$$;

CREATE TABLE rollupd.retention_runs (
    table_name         text PRIMARY KEY,
    last_run_at        timestamptz NOT NULL,
    cutoff             timestamptz,
    duration_ms        double precision NOT NULL,
    rows_deleted       bigint NOT NULL,
    partitions_dropped bigint NOT NULL,
    batches            bigint NOT NULL,
    -- Expired rows left for later runs (counted up to 1,000,000), and why, if a batch gave up.
    backlog            bigint NOT NULL,
    last_error         text
);
