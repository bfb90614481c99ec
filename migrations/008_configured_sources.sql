-- 008: configured sources (`sources.<name>.*` in rollupd.yaml) and costs from model_pricing.
-- rollupd:replaces bd0d3ae335d032a13c6affc387f0ab9f0e73afe5bbb0c902ef8a043140e1c394
--
-- A configured source is an operator's own table (seed 000's cost_events, 002's token_usage,
-- 003's api_cost_tracking, 004's "AnalyticsEvent", ...) mapped onto rollupd's fields. It gets the
-- same change tracking as events: `rollupd prepare-source <name>` prints (or, with --apply, runs)
-- the DDL that adds rollupd_xid, its index and two triggers to that table. This migration adds
-- only rollupd's side: nothing here touches the operator's tables.
--
-- Several sources add into the same cost_aggregates, user_cost_aggregates and hourly_rollups.
-- Each configured source also keeps its own contribution (rollupd.source_*), so resetting or
-- rebuilding one source subtracts exactly what it added, and resetting a built-in source (which
-- empties the shared tables) can put the configured sources' contributions back.

-- Conversions that never raise: a value that does not convert becomes NULL, and the row is
-- rejected (counted, recorded in rejected_rows) instead of aborting the whole pass.
CREATE FUNCTION rollupd.to_numeric(value text) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN btrim(value) ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'
                THEN btrim(value)::numeric END
$$;

-- Text without an offset is taken as UTC (the function's own TimeZone setting), so the result
-- does not depend on the session's zone. timestamptz values reach here as text with an offset.
-- PostgreSQL's special inputs are refused: 'now', 'today', 'yesterday', 'tomorrow' would give
-- another instant at every pass (an old version subtracted from another bucket than it was
-- added to), 'epoch' and 'allballs' a made-up one, '[-]infinity' a bucket no one can read.
CREATE FUNCTION rollupd.to_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' AS $$
DECLARE
    result timestamptz;
BEGIN
    IF value IS NULL OR btrim(value) = ''
       OR value ~* '\m(infinity|now|today|tomorrow|yesterday|epoch|allballs)\M' THEN
        RETURN NULL;
    END IF;
    result := value::timestamptz;
    RETURN CASE WHEN isfinite(result) THEN result END;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Seed 001's price table (Drizzle schema), in the product's schema, created only when the app has
-- not made it already (`rollupd migrate` has checked the columns of one the app has).
DO $$
BEGIN
    IF to_regclass('@app_schema@.model_pricing') IS NULL THEN
        CREATE TABLE @app_schema@.model_pricing (
            id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            provider            text NOT NULL,
            model               text NOT NULL,
            input_price_per_1k  numeric(10, 6) NOT NULL,
            output_price_per_1k numeric(10, 6) NOT NULL,
            effective_date      timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX idx_model_pricing_uniq ON @app_schema@.model_pricing (provider, model, effective_date);
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('table', 'model_pricing');
    END IF;
    IF to_regclass('@app_schema@.idx_model_pricing_model_date') IS NULL THEN
        CREATE INDEX idx_model_pricing_model_date ON @app_schema@.model_pricing (model, effective_date);
        INSERT INTO rollupd.installed_objects (kind, name) VALUES ('index', 'idx_model_pricing_model_date');
    END IF;
END
$$;

-- Old versions of updated or deleted rows of every configured source, as jsonb of the whole row:
-- one generic trigger serves any table shape, and the pass reads them back with
-- jsonb_populate_record(NULL::<table>, old_row), through the same mapping as live rows.
CREATE TABLE rollupd.source_changes (
    change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source    text NOT NULL,
    old_xid   xid8,
    old_row   jsonb NOT NULL
);
CREATE INDEX source_changes_source_idx ON rollupd.source_changes (source);

-- TG_ARGV[0] is the source name. Honours rollupd.capture = 'off' like the built-in triggers.
CREATE FUNCTION rollupd.capture_source_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rollupd.capture', true) IS DISTINCT FROM 'off' THEN
        INSERT INTO rollupd.source_changes (source, old_xid, old_row)
        VALUES (TG_ARGV[0], OLD.rollupd_xid, to_jsonb(OLD));
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.rollupd_xid := pg_current_xact_id();
        RETURN NEW;
    END IF;
    RETURN OLD;
END
$$;

-- What each configured cost source has added to cost_aggregates / user_cost_aggregates.
CREATE TABLE rollupd.source_cost_buckets (
    source           text NOT NULL,
    project_id       text NOT NULL,
    feature          text NOT NULL,
    model            text NOT NULL,
    period           text NOT NULL,
    period_start     timestamptz NOT NULL,
    total_cost       numeric NOT NULL,
    total_tokens     bigint NOT NULL,
    call_count       bigint NOT NULL,
    total_latency_ms bigint NOT NULL,
    PRIMARY KEY (source, project_id, feature, model, period, period_start)
);
CREATE INDEX source_cost_buckets_period_start_idx ON rollupd.source_cost_buckets (period_start);

CREATE TABLE rollupd.source_user_cost_buckets (
    source       text NOT NULL,
    project_id   text NOT NULL,
    user_id      text NOT NULL,
    period       text NOT NULL,
    period_start timestamptz NOT NULL,
    total_cost   numeric NOT NULL,
    total_tokens bigint NOT NULL,
    call_count   bigint NOT NULL,
    PRIMARY KEY (source, user_id, period, period_start, project_id)
);
CREATE INDEX source_user_cost_buckets_period_start_idx ON rollupd.source_user_cost_buckets (period_start);

-- What each configured analytics source has added to the tallies behind hourly_rollups.
CREATE TABLE rollupd.source_hourly_dimension_counts (
    source    text NOT NULL,
    hour      timestamptz NOT NULL,
    dimension text NOT NULL,
    key       text NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (source, hour, dimension, key)
);
CREATE INDEX source_hourly_dimension_counts_hour_idx ON rollupd.source_hourly_dimension_counts (hour);

CREATE TABLE rollupd.source_hourly_session_counts (
    source     text NOT NULL,
    hour       timestamptz NOT NULL,
    session_id text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (source, hour, session_id)
);
CREATE INDEX source_hourly_session_counts_hour_idx ON rollupd.source_hourly_session_counts (hour);

-- Costs rollupd derived from model_pricing, fixed when the row was counted. Subtracting an
-- updated or deleted row takes its cost from here, so a later edit of model_pricing can never
-- make a subtraction differ from the addition it undoes. `rollupd rebuild` re-prices.
CREATE TABLE rollupd.derived_costs (
    source text NOT NULL,
    row_id text NOT NULL,
    cost   numeric NOT NULL,
    PRIMARY KEY (source, row_id)
);

-- Buckets a source's contribution has emptied are dropped after each pass; these find them fast.
CREATE INDEX source_cost_buckets_empty_idx ON rollupd.source_cost_buckets (source) WHERE call_count = 0;
CREATE INDEX source_user_cost_buckets_empty_idx ON rollupd.source_user_cost_buckets (source) WHERE call_count = 0;
CREATE INDEX source_hourly_dimension_counts_zero_idx ON rollupd.source_hourly_dimension_counts (source) WHERE n = 0;
CREATE INDEX source_hourly_session_counts_zero_idx ON rollupd.source_hourly_session_counts (source) WHERE n = 0;
