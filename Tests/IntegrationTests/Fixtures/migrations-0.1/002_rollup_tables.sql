-- 002: the rollup tables rollupd writes and the product reads.
--
-- cost_aggregates has seed 001's columns and unique key. On an app database where Drizzle already
-- made it with integer counters, the counters are widened so they cannot overflow, and
-- total_latency_ms is added: avg_latency alone cannot be updated exactly when events arrive late,
-- change or go away, a sum can. Rows the app wrote itself are replaced by rollupd's first pass
-- (see rollupd.sources.initialized in 003).

CREATE TABLE IF NOT EXISTS cost_aggregates (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   text NOT NULL DEFAULT 'default',
    feature      text NOT NULL,
    model        text NOT NULL,
    period       text NOT NULL,
    period_start timestamptz NOT NULL,
    total_cost   numeric NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    call_count   bigint NOT NULL DEFAULT 0,
    avg_latency  numeric(14, 2) NOT NULL DEFAULT 0
);

ALTER TABLE cost_aggregates
    ALTER COLUMN total_cost TYPE numeric,
    ALTER COLUMN total_tokens TYPE bigint,
    ALTER COLUMN call_count TYPE bigint,
    ALTER COLUMN avg_latency TYPE numeric(14, 2),
    ADD COLUMN IF NOT EXISTS total_latency_ms bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN cost_aggregates.period IS 'hour (UTC hour) or day (calendar day in rollupd''s rollup.time_zone)';
COMMENT ON COLUMN cost_aggregates.total_cost IS 'sum of coalesce(verified_cost_usd, estimated_cost_usd), USD';
COMMENT ON COLUMN cost_aggregates.total_tokens IS 'sum of input_tokens + output_tokens';
COMMENT ON COLUMN cost_aggregates.total_latency_ms IS 'sum of latency_ms; avg_latency = round(total_latency_ms / call_count, 2)';

CREATE UNIQUE INDEX IF NOT EXISTS idx_cost_agg_uniq
    ON cost_aggregates (project_id, feature, model, period, period_start);
CREATE INDEX IF NOT EXISTS idx_cost_agg_period
    ON cost_aggregates (project_id, period, period_start);

CREATE TABLE IF NOT EXISTS hourly_rollups (
    id                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    hour              timestamptz NOT NULL UNIQUE,
    event_counts      jsonb NOT NULL DEFAULT '{}',
    tool_usage        jsonb NOT NULL DEFAULT '{}',
    risk_distribution jsonb NOT NULL DEFAULT '{}',
    unique_sessions   bigint NOT NULL DEFAULT 0,
    total_events      bigint NOT NULL DEFAULT 0
);

COMMENT ON TABLE hourly_rollups IS 'analytics_events per UTC hour of occurred_at, kept by rollupd';
COMMENT ON COLUMN hourly_rollups.tool_usage IS '{tool_name: n} over events with a non-empty tool_name';
COMMENT ON COLUMN hourly_rollups.risk_distribution IS '{properties->>riskMode: n} over events with a non-empty riskMode';
