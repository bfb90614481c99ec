-- Demo data for `scripts/dev run`: about three days of activity ending now.
--
-- Load it into a freshly migrated, empty database (it only inserts; running it twice
-- doubles the data):
--     psql -X -v ON_ERROR_STOP=1 -d rollupd_dev -f scripts/demo/seed.sql
--
-- Deterministic: setseed() fixes every random() below and ids are derived from row numbers,
-- so every load produces the same rows; only their timestamps follow now() (and with them,
-- marginally, which rows the age-dependent verification step picks).
--
--   events            ~30,000 LLM calls: traces of 1-5 spans over 3 projects, 5 features and
--                     4 models, with token counts, costs and latencies that fit the model;
--                     a few hundred late arrivals (created_at 1-10 days ago, inserted last);
--                     then ~20% get a verified_cost_usd, as the reconciliation job would.
--   analytics_events  ~20,000 product analytics events in sessions of 1-16 events.
--
-- Activity follows a daily cycle (busiest around 16:00 UTC, quietest around 04:00 UTC).
-- Loading takes a few seconds.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

SELECT setseed(0.42) \gset

-- List prices in USD per million tokens (input, cached input, output) and a rough speed
-- profile (time to first token, ms per output token).
CREATE TEMP TABLE seed_models (
    model      text PRIMARY KEY,
    provider   text NOT NULL,
    usd_in     numeric NOT NULL,
    usd_cached numeric NOT NULL,
    usd_out    numeric NOT NULL,
    ttft_ms    integer NOT NULL,
    ms_per_tok numeric NOT NULL
);

INSERT INTO seed_models VALUES
    ('gpt-4o',            'openai',    2.50, 1.25,  10.00, 450, 12),
    ('gpt-4o-mini',       'openai',    0.15, 0.075,  0.60, 300,  7),
    ('claude-3-5-sonnet', 'anthropic', 3.00, 0.30,  15.00, 600, 14),
    ('claude-3-haiku',    'anthropic', 0.25, 0.03,   1.25, 250,  5);

-- The clock: the last 3 days cut into hours, each weighted by its length and by a daily
-- cycle (busiest around 16:00 UTC, a quarter of that around 04:00 UTC). clock_at(u) maps a
-- uniform u in [0, 1) to a moment in the window with that density, so every row is
-- generated the same way whenever the seed is loaded; only the timestamps move with now().
CREATE TEMP TABLE seed_clock AS
SELECT lo, hi, w,
       sum(w) OVER (ORDER BY lo) - w AS cum_lo,
       sum(w) OVER (ORDER BY lo) AS cum_hi
FROM (
    SELECT lo, hi,
           extract(epoch FROM hi - lo)
           * (0.25 + 0.75 * (0.5 - 0.5 * cos(2 * pi() * (extract(hour FROM lo AT TIME ZONE 'UTC') - 4) / 24))) AS w
    FROM (
        SELECT greatest(h, now() - interval '3 days') AS lo,
               least(h + interval '1 hour', now()) AS hi
        FROM generate_series(date_trunc('hour', now() - interval '3 days'), now(), interval '1 hour') AS h
    ) AS hours
    WHERE hi > lo
) AS weighted;

CREATE FUNCTION pg_temp.clock_at(u double precision) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT c.lo + (c.hi - c.lo) * ((t.target - c.cum_lo) / c.w)
    FROM (SELECT u * max(cum_hi) AS target FROM seed_clock) AS t
    JOIN seed_clock AS c ON t.target >= c.cum_lo AND t.target < c.cum_hi
$$;

-- ---------------------------------------------------------------------------------------
-- events: build every row in a temp table first, then insert in created_at order (as
-- production would have), the late arrivals last.
-- ---------------------------------------------------------------------------------------

CREATE TEMP TABLE seed_events AS
WITH traces AS MATERIALIZED (
    -- Regular traces over the last 3 days ...
    SELECT t, false AS is_late, random() AS r_at,
           random() AS r_project, random() AS r_feature, random() AS r_user,
           random() AS r_user_id, random() AS r_spans, random() AS r_meta
    FROM generate_series(1, 14600) AS t
    UNION ALL
    -- ... and late arrivals: traces that happened 1-10 days ago and show up only now.
    SELECT t, true, random(),
           random(), random(), random(), random(), random(), random()
    FROM generate_series(100001, 100140) AS t
),
trace_attrs AS MATERIALIZED (
    SELECT t, is_late, r_at, r_meta, p.project_id,
           CASE p.project_id
               WHEN 'acme-web' THEN CASE WHEN r_feature < .35 THEN 'chat' WHEN r_feature < .55 THEN 'summarize'
                                         WHEN r_feature < .80 THEN 'search' WHEN r_feature < .90 THEN 'classify'
                                         ELSE 'extract' END
               WHEN 'acme-mobile' THEN CASE WHEN r_feature < .50 THEN 'chat' WHEN r_feature < .80 THEN 'search'
                                            WHEN r_feature < .90 THEN 'summarize' WHEN r_feature < .95 THEN 'classify'
                                            ELSE 'extract' END
               ELSE CASE WHEN r_feature < .30 THEN 'classify' WHEN r_feature < .65 THEN 'extract'
                         WHEN r_feature < .90 THEN 'summarize' ELSE 'chat' END
           END AS feature,
           CASE
               WHEN p.project_id = 'internal-tools' THEN
                   CASE WHEN r_user < .40 THEN 'emp-' || lpad((1 + floor(40 * r_user_id))::text, 3, '0') END
               WHEN r_user < CASE p.project_id WHEN 'acme-mobile' THEN .90 ELSE .65 END THEN
                   -- A few heavy users, a long tail of light ones.
                   'u-' || lpad((1 + floor(400 * r_user_id ^ 2))::text, 4, '0')
           END AS user_id,
           CASE WHEN r_spans < .45 THEN 1 WHEN r_spans < .70 THEN 2 WHEN r_spans < .85 THEN 3
                WHEN r_spans < .95 THEN 4 ELSE 5 END AS n_spans
    FROM traces
    CROSS JOIN LATERAL (
        SELECT CASE WHEN r_project < .50 THEN 'acme-web' WHEN r_project < .80 THEN 'acme-mobile'
                    ELSE 'internal-tools' END AS project_id
    ) AS p
),
placed AS MATERIALIZED (
    SELECT ta.*,
           CASE WHEN is_late THEN now() - interval '1 day' - interval '9 days' * r_at
                ELSE pg_temp.clock_at(r_at) - (n_spans - 1) * interval '4 seconds' END AS started_at
    FROM trace_attrs AS ta
),
spans AS MATERIALIZED (
    SELECT ta.*, s,
           random() AS r_model, random() AS r_in, random() AS r_out, random() AS r_cached,
           random() AS r_cached_share, random() AS r_hit, random() AS r_lat, random() AS r_slow,
           random() AS r_noise, random() AS r_gap
    FROM placed AS ta
    CROSS JOIN LATERAL generate_series(1, ta.n_spans) AS s
),
shaped AS (
    SELECT sp.*,
           CASE feature
               WHEN 'chat' THEN CASE WHEN r_model < .30 THEN 'gpt-4o' WHEN r_model < .60 THEN 'gpt-4o-mini'
                                     WHEN r_model < .90 THEN 'claude-3-5-sonnet' ELSE 'claude-3-haiku' END
               WHEN 'summarize' THEN CASE WHEN r_model < .35 THEN 'claude-3-5-sonnet' WHEN r_model < .70 THEN 'gpt-4o-mini'
                                          ELSE 'claude-3-haiku' END
               WHEN 'search' THEN CASE WHEN r_model < .60 THEN 'gpt-4o-mini' ELSE 'claude-3-haiku' END
               WHEN 'classify' THEN CASE WHEN r_model < .50 THEN 'gpt-4o-mini' ELSE 'claude-3-haiku' END
               ELSE CASE WHEN r_model < .40 THEN 'gpt-4o' WHEN r_model < .70 THEN 'claude-3-5-sonnet'
                         ELSE 'gpt-4o-mini' END
           END AS model,
           -- Token ranges per feature, skewed towards the low end.
           (CASE feature WHEN 'chat' THEN 300 + 3700 * r_in ^ 2 WHEN 'summarize' THEN 1500 + 12500 * r_in ^ 2
                         WHEN 'search' THEN 200 + 1300 * r_in ^ 2 WHEN 'classify' THEN 120 + 780 * r_in ^ 2
                         ELSE 800 + 6200 * r_in ^ 2 END)::integer AS input_tokens,
           (CASE feature WHEN 'chat' THEN 50 + 850 * r_out ^ 2 WHEN 'summarize' THEN 120 + 580 * r_out ^ 2
                         WHEN 'search' THEN 30 + 320 * r_out ^ 2 WHEN 'classify' THEN 1 + 24 * r_out
                         ELSE 80 + 1120 * r_out ^ 2 END)::integer AS output_tokens,
           r_hit < .05 AS is_cache_hit
    FROM spans AS sp
),
costed AS (
    SELECT sh.*, m.provider, m.ttft_ms, m.ms_per_tok, m.usd_in, m.usd_cached, m.usd_out,
           -- Prompt caching: a share of longer prompts is served from the provider's cache.
           CASE WHEN input_tokens > 1024 AND r_cached < .30
                THEN floor(input_tokens * (0.3 + 0.6 * r_cached_share))::integer ELSE 0 END AS cached_tokens
    FROM shaped AS sh
    JOIN seed_models AS m USING (model)
)
SELECT md5('seed-event-' || t || '-' || s)::uuid AS id,
       md5('seed-trace-' || t) AS trace_id,
       left(md5('seed-span-' || t || '-' || s), 16) AS span_id,
       CASE WHEN s > 1 THEN left(md5('seed-span-' || t || '-1'), 16) END AS parent_span_id,
       project_id, feature, user_id, provider, model,
       input_tokens, output_tokens, cached_tokens,
       CASE
           -- Served from the product's own response cache: fast and free.
           WHEN is_cache_hit THEN 200 + (150 * r_lat)::integer
           -- Time to first token + generation time, with a long tail; then squeezed smoothly
           -- into 200-8000 ms (8000 * (1 - e^(-x/8000)) is ~x for small x).
           ELSE greatest(200, (8000 * (1 - exp(-(
               (ttft_ms + output_tokens * ms_per_tok + input_tokens * 0.03)
               * (0.7 + 0.9 * r_lat ^ 2)
               * CASE WHEN r_slow < .03 THEN 2.5 ELSE 1 END) / 8000.0)))::integer)
       END AS latency_ms,
       CASE WHEN is_cache_hit THEN 0
            ELSE round(((input_tokens - cached_tokens) * usd_in + cached_tokens * usd_cached
                        + output_tokens * usd_out) / 1e6 * (0.98 + 0.04 * r_noise)::numeric, 6)
       END AS estimated_cost_usd,
       is_cache_hit,
       CASE WHEN r_meta < .10 THEN NULL
            ELSE jsonb_build_object(
                'environment', CASE WHEN r_meta < .92 THEN 'production' ELSE 'staging' END,
                'sdk', CASE project_id WHEN 'acme-mobile' THEN 'swift/2.3.1' WHEN 'internal-tools' THEN 'python/0.9.4'
                                       ELSE 'node/1.8.0' END,
                'stream', feature = 'chat')
       END AS metadata,
       -- Spans of one trace follow each other by 1-4 seconds.
       started_at + (s - 1) * interval '1 second' * (1 + 3 * r_gap) AS created_at,
       is_late
FROM costed;

INSERT INTO events (id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model,
                    input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd,
                    is_cache_hit, metadata, created_at)
SELECT id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model,
       input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd,
       is_cache_hit, metadata, created_at
FROM seed_events
WHERE NOT is_late
ORDER BY created_at, span_id;

-- The late arrivals, inserted after everything else.
INSERT INTO events (id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model,
                    input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd,
                    is_cache_hit, metadata, created_at)
SELECT id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model,
       input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd,
       is_cache_hit, metadata, created_at
FROM seed_events
WHERE is_late
ORDER BY id;

-- Reconciliation: the provider's invoice has come in for part of the traffic. Older events
-- are more likely to be verified; the last two hours not at all. The verified cost differs
-- from the estimate by a few percent either way.
UPDATE events
SET verified_cost_usd = round(estimated_cost_usd * (0.93 + 0.12 * random())::numeric, 6)
WHERE random() < CASE WHEN created_at < now() - interval '24 hours' THEN 0.27
                      WHEN created_at < now() - interval '2 hours' THEN 0.08
                      ELSE 0 END;

DROP TABLE seed_events;

-- ---------------------------------------------------------------------------------------
-- analytics_events: sessions of a fantasy-football assistant (Start/Sit, FAAB, Decisions).
-- ---------------------------------------------------------------------------------------

-- Seed again: how many random() calls the UPDATE above made depends on the time of day.
SELECT setseed(0.43) \gset

INSERT INTO analytics_events (id, user_id, session_id, event_type, tool_name, action, properties,
                              demo_mode, occurred_at, received_at)
WITH sessions AS MATERIALIZED (
    SELECT n, random() AS r_start,
           random() AS r_user, random() AS r_user_id, random() AS r_len, random() AS r_risk,
           random() AS r_tool, random() AS r_demo, random() AS r_offline
    FROM generate_series(1, 2700) AS n
),
session_attrs AS MATERIALIZED (
    SELECT n, r_start, r_offline,
           CASE WHEN r_user < .70 THEN 'u-' || lpad((1 + floor(400 * r_user_id ^ 2))::text, 4, '0') END AS user_id,
           1 + floor(16 * r_len ^ 1.3)::integer AS n_events,
           CASE WHEN r_risk < .30 THEN 'protect' WHEN r_risk < .80 THEN 'neutral' ELSE 'chase' END AS risk_mode,
           CASE WHEN r_tool < .45 THEN 'Start/Sit' WHEN r_tool < .70 THEN 'FAAB' ELSE 'Decisions' END AS main_tool,
           r_demo
    FROM sessions
),
session_placed AS MATERIALIZED (
    -- A session lasts up to 30 s per event; it starts early enough to be over by now.
    SELECT sa.*, pg_temp.clock_at(r_start) - n_events * interval '30 seconds' AS started_at
    FROM session_attrs AS sa
),
session_events AS MATERIALIZED (
    SELECT sa.*, k,
           random() AS r_type, random() AS r_tool_ev, random() AS r_action, random() AS r_prop,
           random() AS r_at, random() AS r_recv, random() AS r_new_risk, random() AS r_num
    FROM session_placed AS sa
    CROSS JOIN LATERAL generate_series(1, sa.n_events) AS k
),
typed AS (
    SELECT se.*,
           CASE WHEN k = 1 THEN 'page_view'
                WHEN r_type < .30 THEN 'page_view'
                WHEN r_type < .55 THEN 'tool_used'
                WHEN r_type < .80 THEN 'feature_interaction'
                WHEN r_type < .92 THEN 'cache_hit'
                ELSE 'risk_mode_changed' END AS event_type,
           -- Events about 30 s apart (5-55 s), in order.
           started_at + (k - 1) * interval '30 seconds' + interval '25 seconds' * r_at AS occurred_at,
           -- A different risk mode than the session's current one.
           CASE risk_mode
               WHEN 'protect' THEN CASE WHEN r_new_risk < .5 THEN 'neutral' ELSE 'chase' END
               WHEN 'neutral' THEN CASE WHEN r_new_risk < .5 THEN 'protect' ELSE 'chase' END
               ELSE CASE WHEN r_new_risk < .5 THEN 'protect' ELSE 'neutral' END
           END AS new_risk_mode
    FROM session_events AS se
),
tooled AS (
    SELECT ty.*,
           demo.analytics_tool(event_type, main_tool, r_tool_ev, k > 1) AS tool_name
    FROM typed AS ty
)
SELECT md5('seed-analytics-' || n || '-' || k)::uuid::text,
       user_id,
       's-' || n,
       event_type,
       tool_name,
       demo.analytics_action(event_type, r_action),
       demo.analytics_properties(event_type, tool_name, risk_mode, new_risk_mode, r_num, r_prop),
       user_id IS NULL OR r_demo < .10,
       occurred_at,
       -- Usually received within a second or two; offline mobile sessions sync hours later.
       least(now(), occurred_at + CASE WHEN r_offline < .02 THEN interval '1 hour' + interval '5 hours' * r_recv
                                       ELSE interval '50 milliseconds' + interval '2 seconds' * r_recv END)
FROM tooled
ORDER BY occurred_at, n, k;

DROP FUNCTION pg_temp.clock_at(double precision);
DROP TABLE seed_clock, seed_models;

ANALYZE events;
ANALYZE analytics_events;
