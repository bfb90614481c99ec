-- 001: the product's source tables.
--
-- The product writes these; rollupd only reads them. They are created only when absent, so on an
-- app database that already has them (seed 001's Drizzle schema, seed 004's AnalyticsEvent in
-- snake_case) nothing about them changes here. Index names match the app's own, so IF NOT EXISTS
-- finds them.

CREATE TABLE IF NOT EXISTS events (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trace_id           text NOT NULL,
    span_id            text NOT NULL,
    parent_span_id     text,
    project_id         text NOT NULL DEFAULT 'default',
    feature            text NOT NULL,
    user_id            text,
    provider           text NOT NULL,
    model              text NOT NULL,
    input_tokens       integer NOT NULL,
    output_tokens      integer NOT NULL,
    cached_tokens      integer NOT NULL DEFAULT 0,
    latency_ms         integer NOT NULL,
    estimated_cost_usd numeric(12, 6) NOT NULL,
    verified_cost_usd  numeric(12, 6),
    is_cache_hit       boolean NOT NULL DEFAULT false,
    metadata           jsonb,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_events_feature_time ON events (project_id, feature, created_at);
CREATE INDEX IF NOT EXISTS idx_events_user_time ON events (project_id, user_id, created_at);
CREATE INDEX IF NOT EXISTS idx_events_created_at ON events (created_at);
CREATE INDEX IF NOT EXISTS idx_events_trace ON events (trace_id);

CREATE TABLE IF NOT EXISTS analytics_events (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id     text,
    session_id  text NOT NULL,
    event_type  text NOT NULL,
    tool_name   text,
    action      text,
    properties  jsonb,
    demo_mode   boolean NOT NULL DEFAULT true,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_analytics_events_user_type ON analytics_events (user_id, event_type);
CREATE INDEX IF NOT EXISTS idx_analytics_events_occurred_at ON analytics_events (occurred_at);
CREATE INDEX IF NOT EXISTS idx_analytics_events_session ON analytics_events (session_id);
CREATE INDEX IF NOT EXISTS idx_analytics_events_type_time ON analytics_events (event_type, occurred_at);
CREATE INDEX IF NOT EXISTS idx_analytics_events_tool_time ON analytics_events (tool_name, occurred_at);
