-- 003: change capture, rollupd's bookkeeping, and the exact side tables behind hourly_rollups.
-- rollupd:replaces 9992a68ef9cfddd5a99ed0aa81bc0fa55f5aac3cb4979edde8c1785693dfeeb1
--
-- How a pass finds its work (docs/design.md has the whole argument):
--   * Every source row carries rollupd_xid, the id of the transaction that wrote it
--     (DEFAULT pg_current_xact_id(), so an app that inserts only its own columns keeps working).
--   * A pass takes its snapshot's xmin as the horizon H: every transaction below H has finished,
--     so the rows with watermark <= rollupd_xid < H are complete and final. It counts them, then
--     stores H as the new watermark, in the same transaction as the rollup upserts.
--   * UPDATE and DELETE save the old row in a *_changes table (and an UPDATE restamps rollupd_xid).
--     A pass consumes the visible change rows and subtracts an old row if it had been counted,
--     which is exactly when its rollupd_xid is below the watermark.
--   * Inserts, the product's hot path, pay only for the column default and one btree entry.
-- Rows that existed before this migration keep rollupd_xid NULL and are counted by the first pass.
--
-- The column, its default and its index are added to the product's tables before this runs, by
-- `rollupd migrate` itself: each ALTER with a short lock_timeout and retries, the index with
-- CREATE INDEX CONCURRENTLY (an INVALID one left by an interrupted build is rebuilt), so a large,
-- busy table is never locked against writes for more than a moment. Nothing here touches the
-- product's tables.

-- One row per source table: how far it is rolled up, and what the last pass did.
CREATE TABLE rollupd.sources (
    source                text PRIMARY KEY,
    watermark             xid8 NOT NULL DEFAULT '0',
    initialized           boolean NOT NULL DEFAULT false,
    day_time_zone         text,
    last_pass_started_at  timestamptz,
    last_pass_duration_ms double precision,
    last_pass_added       bigint NOT NULL DEFAULT 0,
    last_pass_removed     bigint NOT NULL DEFAULT 0,
    last_pass_rejected    bigint NOT NULL DEFAULT 0,
    caught_up_at          timestamptz,
    total_passes          bigint NOT NULL DEFAULT 0
);
INSERT INTO rollupd.sources (source) VALUES ('events'), ('analytics_events');

-- Old versions of updated or deleted rows, waiting to be subtracted by the next pass.
CREATE TABLE rollupd.event_changes (
    change_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    old_xid            xid8,
    row_id             text NOT NULL,
    project_id         text,
    feature            text,
    model              text,
    created_at         timestamptz,
    input_tokens       bigint,
    output_tokens      bigint,
    latency_ms         bigint,
    estimated_cost_usd numeric,
    verified_cost_usd  numeric
);

CREATE TABLE rollupd.analytics_changes (
    change_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    old_xid     xid8,
    row_id      text NOT NULL,
    session_id  text,
    event_type  text,
    tool_name   text,
    risk_mode   text,
    occurred_at timestamptz
);

-- rollupd's retention (a later migration) deletes already-counted rows with
-- SET LOCAL rollupd.capture = 'off', so expiring raw rows never changes a rollup.
CREATE FUNCTION rollupd.capture_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rollupd.capture', true) IS DISTINCT FROM 'off' THEN
        INSERT INTO rollupd.event_changes (old_xid, row_id, project_id, feature, model, created_at,
            input_tokens, output_tokens, latency_ms, estimated_cost_usd, verified_cost_usd)
        VALUES (OLD.rollupd_xid, OLD.id::text, OLD.project_id, OLD.feature, OLD.model, OLD.created_at,
            OLD.input_tokens, OLD.output_tokens, OLD.latency_ms, OLD.estimated_cost_usd, OLD.verified_cost_usd);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- The new version is counted again, as if inserted now.
        NEW.rollupd_xid := pg_current_xact_id();
        RETURN NEW;
    END IF;
    RETURN OLD;
END
$$;

CREATE FUNCTION rollupd.capture_analytics_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rollupd.capture', true) IS DISTINCT FROM 'off' THEN
        INSERT INTO rollupd.analytics_changes (old_xid, row_id, session_id, event_type, tool_name, risk_mode, occurred_at)
        VALUES (OLD.rollupd_xid, OLD.id::text, OLD.session_id, OLD.event_type, OLD.tool_name,
            OLD.properties ->> 'riskMode', OLD.occurred_at);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.rollupd_xid := pg_current_xact_id();
        RETURN NEW;
    END IF;
    RETURN OLD;
END
$$;

-- The triggers that call these functions on the product's tables are created by
-- R_capture_triggers.sql, which `rollupd migrate` runs after the numbered files (and again whenever
-- a table lost them): one definition of them, the current one. Only updates that change what a
-- rollup reads fire them; an update of metadata costs nothing extra.

-- Exact, incrementally maintained counts behind hourly_rollups: a distinct-session count cannot
-- be updated from a number alone, but a per-(hour, session) tally can.
CREATE TABLE rollupd.hourly_dimension_counts (
    hour      timestamptz NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('event_type', 'tool', 'risk')),
    key       text NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (hour, dimension, key)
);

CREATE TABLE rollupd.hourly_session_counts (
    hour       timestamptz NOT NULL,
    session_id text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (hour, session_id)
);

-- Rows a pass could not roll up (negative tokens, latency or cost), each recorded once.
CREATE TABLE rollupd.rejected_rows (
    source      text NOT NULL,
    row_id      text NOT NULL,
    reason      text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, row_id)
);

-- What makes an events row countable. One definition, used by every pass and every rebuild (and
-- inlined by the planner), so a row skipped when added is also skipped when subtracted.
CREATE FUNCTION rollupd.cost_row_is_valid(
    input_tokens bigint, output_tokens bigint, latency_ms bigint, cost numeric,
    project_id text, feature text, model text, created_at timestamptz
) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0 AND cost >= 0
        AND project_id IS NOT NULL AND feature IS NOT NULL AND model IS NOT NULL
        AND created_at IS NOT NULL) IS TRUE
$$;
