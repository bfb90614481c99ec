-- 002: the rollup tables rollupd writes and the product reads, in the product's schema.
-- rollupd:replaces 9dfb1a484855bea220858c26407864513427f57a56247b7a5014b1cc7ef4692f
--
-- cost_aggregates has seed 001's columns and unique key. Where the app already made it (seed 001's
-- Drizzle schema), `rollupd migrate` has checked its columns before this runs; here rollupd only
-- adds what it lacks (total_latency_ms: avg_latency alone cannot be updated exactly when events
-- arrive late, change or go away, a sum can) and never changes the app's column types. Rows the
-- app wrote itself are replaced by rollupd's first pass (see rollupd.sources.initialized in 003).
-- What rollupd creates is recorded in rollupd.installed_objects, so `rollupd uninstall --print`
-- removes exactly that.

DO $$
BEGIN
    IF to_regclass('@app_schema@.cost_aggregates') IS NULL THEN
        CREATE TABLE @app_schema@.cost_aggregates (
            id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            project_id       text NOT NULL DEFAULT 'default',
            feature          text NOT NULL,
            model            text NOT NULL,
            period           text NOT NULL,
            period_start     timestamptz NOT NULL,
            total_cost       numeric NOT NULL DEFAULT 0,
            total_tokens     bigint NOT NULL DEFAULT 0,
            call_count       bigint NOT NULL DEFAULT 0,
            avg_latency      numeric(14, 2) NOT NULL DEFAULT 0,
            total_latency_ms bigint NOT NULL DEFAULT 0
        );
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('table', 'cost_aggregates');
        COMMENT ON COLUMN @app_schema@.cost_aggregates.period IS 'hour (UTC hour) or day (calendar day in rollupd''s rollup.time_zone)';
        COMMENT ON COLUMN @app_schema@.cost_aggregates.total_cost IS 'sum of coalesce(verified_cost_usd, estimated_cost_usd), USD';
        COMMENT ON COLUMN @app_schema@.cost_aggregates.total_tokens IS 'sum of input_tokens + output_tokens';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '@app_schema@.cost_aggregates'::regclass
                   AND attname = 'total_latency_ms' AND NOT attisdropped) THEN
        ALTER TABLE @app_schema@.cost_aggregates ADD COLUMN total_latency_ms bigint NOT NULL DEFAULT 0;
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('column', 'cost_aggregates.total_latency_ms');
    END IF;
    COMMENT ON COLUMN @app_schema@.cost_aggregates.total_latency_ms IS 'sum of latency_ms; avg_latency = round(total_latency_ms / call_count, 2)';
    -- The key every upsert names. `rollupd migrate` has checked that an index of this name, if the
    -- app has one, is unique on exactly these columns.
    IF to_regclass('@app_schema@.idx_cost_agg_uniq') IS NULL THEN
        CREATE UNIQUE INDEX idx_cost_agg_uniq ON @app_schema@.cost_aggregates (project_id, feature, model, period, period_start);
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('index', 'idx_cost_agg_uniq');
    END IF;
    IF to_regclass('@app_schema@.idx_cost_agg_period') IS NULL THEN
        CREATE INDEX idx_cost_agg_period ON @app_schema@.cost_aggregates (project_id, period, period_start);
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('index', 'idx_cost_agg_period');
    END IF;

    IF to_regclass('@app_schema@.hourly_rollups') IS NULL THEN
        CREATE TABLE @app_schema@.hourly_rollups (
            id                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            hour              timestamptz NOT NULL UNIQUE,
            event_counts      jsonb NOT NULL DEFAULT '{}',
            tool_usage        jsonb NOT NULL DEFAULT '{}',
            risk_distribution jsonb NOT NULL DEFAULT '{}',
            unique_sessions   bigint NOT NULL DEFAULT 0,
            total_events      bigint NOT NULL DEFAULT 0
        );
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('table', 'hourly_rollups');
        COMMENT ON TABLE @app_schema@.hourly_rollups IS 'analytics_events per UTC hour of occurred_at, kept by rollupd';
        COMMENT ON COLUMN @app_schema@.hourly_rollups.tool_usage IS '{tool_name: n} over events with a non-empty tool_name';
        COMMENT ON COLUMN @app_schema@.hourly_rollups.risk_distribution IS '{properties->>riskMode: n} over events with a non-empty riskMode';
    END IF;
END
$$;
