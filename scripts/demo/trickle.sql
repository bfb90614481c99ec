-- One small batch of live traffic for the demo; `scripts/dev run` runs it every 5 seconds:
--     psql -X -q -v ON_ERROR_STOP=1 -d rollupd_dev -f scripts/demo/trickle.sql
--
--   * 15-25 new events from the last few seconds,
--   * 1-2 late events whose created_at lies hours or days back,
--   * 7-13 analytics events in a handful of live sessions,
--   * verification of 1-3 recent, still unverified events (the reconciliation job).
--
-- Not seeded: every batch is different. Same shapes and prices as scripts/demo/seed.sql (the
-- analytics shapes are the functions of scripts/demo/shapes.sql, loaded before the seed).
-- Everything happens in one transaction, so rollupd sees a batch entirely or not at all.

\set ON_ERROR_STOP on

BEGIN;

-- New events (late = false) and late arrivals (late = true).
INSERT INTO events (trace_id, span_id, project_id, feature, user_id, provider, model,
                    input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd,
                    is_cache_hit, metadata, created_at)
WITH prices (model, provider, usd_in, usd_cached, usd_out, ttft_ms, ms_per_tok) AS (
    VALUES ('gpt-4o',            'openai',    2.50, 1.25,  10.00, 450, 12),
           ('gpt-4o-mini',       'openai',    0.15, 0.075,  0.60, 300,  7),
           ('claude-3-5-sonnet', 'anthropic', 3.00, 0.30,  15.00, 600, 14),
           ('claude-3-haiku',    'anthropic', 0.25, 0.03,   1.25, 250,  5)
),
batch AS MATERIALIZED (
    SELECT false AS late FROM generate_series(1, 15 + floor(random() * 11)::integer)
    UNION ALL
    SELECT true FROM generate_series(1, 1 + floor(random() * 2)::integer)
),
drawn AS MATERIALIZED (
    SELECT late,
           random() AS r_project, random() AS r_feature, random() AS r_user, random() AS r_user_id,
           random() AS r_model, random() AS r_in, random() AS r_out, random() AS r_cached,
           random() AS r_hit, random() AS r_lat, random() AS r_noise, random() AS r_when, random() AS r_late_kind
    FROM batch
),
shaped AS (
    SELECT d.*, p.project_id,
           f.feature,
           CASE WHEN r_user < .65 THEN 'u-' || lpad((1 + floor(400 * r_user_id ^ 2))::text, 4, '0') END AS user_id,
           CASE f.feature
               WHEN 'chat' THEN CASE WHEN r_model < .30 THEN 'gpt-4o' WHEN r_model < .60 THEN 'gpt-4o-mini'
                                     WHEN r_model < .90 THEN 'claude-3-5-sonnet' ELSE 'claude-3-haiku' END
               WHEN 'summarize' THEN CASE WHEN r_model < .35 THEN 'claude-3-5-sonnet' WHEN r_model < .70 THEN 'gpt-4o-mini'
                                          ELSE 'claude-3-haiku' END
               WHEN 'search' THEN CASE WHEN r_model < .60 THEN 'gpt-4o-mini' ELSE 'claude-3-haiku' END
               WHEN 'classify' THEN CASE WHEN r_model < .50 THEN 'gpt-4o-mini' ELSE 'claude-3-haiku' END
               ELSE CASE WHEN r_model < .40 THEN 'gpt-4o' WHEN r_model < .70 THEN 'claude-3-5-sonnet'
                         ELSE 'gpt-4o-mini' END
           END AS model,
           (CASE f.feature WHEN 'chat' THEN 300 + 3700 * r_in ^ 2 WHEN 'summarize' THEN 1500 + 12500 * r_in ^ 2
                           WHEN 'search' THEN 200 + 1300 * r_in ^ 2 WHEN 'classify' THEN 120 + 780 * r_in ^ 2
                           ELSE 800 + 6200 * r_in ^ 2 END)::integer AS input_tokens,
           (CASE f.feature WHEN 'chat' THEN 50 + 850 * r_out ^ 2 WHEN 'summarize' THEN 120 + 580 * r_out ^ 2
                           WHEN 'search' THEN 30 + 320 * r_out ^ 2 WHEN 'classify' THEN 1 + 24 * r_out
                           ELSE 80 + 1120 * r_out ^ 2 END)::integer AS output_tokens,
           r_hit < .05 AS is_cache_hit
    FROM drawn AS d
    CROSS JOIN LATERAL (
        SELECT CASE WHEN r_project < .50 THEN 'acme-web' WHEN r_project < .80 THEN 'acme-mobile'
                    ELSE 'internal-tools' END AS project_id
    ) AS p
    CROSS JOIN LATERAL (
        SELECT CASE WHEN r_feature < .30 THEN 'chat' WHEN r_feature < .50 THEN 'summarize'
                    WHEN r_feature < .70 THEN 'search' WHEN r_feature < .85 THEN 'classify'
                    ELSE 'extract' END AS feature
    ) AS f
),
costed AS (
    SELECT sh.*, m.provider, m.ttft_ms, m.ms_per_tok, m.usd_in, m.usd_cached, m.usd_out,
           CASE WHEN input_tokens > 1024 AND r_cached < .30
                THEN floor(input_tokens * (0.3 + 0.6 * r_cached))::integer ELSE 0 END AS cached_tokens
    FROM shaped AS sh
    JOIN prices AS m USING (model)
)
SELECT replace(gen_random_uuid()::text, '-', ''),
       left(replace(gen_random_uuid()::text, '-', ''), 16),
       project_id, feature, user_id, provider, model,
       input_tokens, output_tokens, cached_tokens,
       CASE WHEN is_cache_hit THEN 200 + (150 * r_lat)::integer
            ELSE greatest(200, (8000 * (1 - exp(-((ttft_ms + output_tokens * ms_per_tok + input_tokens * 0.03)
                                                  * (0.7 + 0.9 * r_lat ^ 2)) / 8000.0)))::integer)
       END,
       CASE WHEN is_cache_hit THEN 0
            ELSE round(((input_tokens - cached_tokens) * usd_in + cached_tokens * usd_cached
                        + output_tokens * usd_out) / 1e6 * (0.98 + 0.04 * r_noise)::numeric, 6)
       END,
       is_cache_hit,
       jsonb_build_object('environment', 'production',
                          'sdk', CASE project_id WHEN 'acme-mobile' THEN 'swift/2.3.1'
                                                 WHEN 'internal-tools' THEN 'python/0.9.4' ELSE 'node/1.8.0' END,
                          'stream', feature = 'chat'),
       CASE
           WHEN NOT late THEN now() - interval '5 seconds' * r_when
           -- Late: a client flushing an offline buffer, hours or days after the fact.
           WHEN r_late_kind < .6 THEN now() - interval '1 hour' - interval '22 hours' * r_when
           ELSE now() - interval '1 day' - interval '2 days' * r_when
       END
FROM costed;

-- Analytics: three live sessions at a time, each lasting about two minutes (so a session
-- spans several batches). Session numbers start at 1,000,000, clear of the seed's.
INSERT INTO analytics_events (user_id, session_id, event_type, tool_name, action, properties,
                              demo_mode, occurred_at, received_at)
WITH drawn AS MATERIALIZED (
    SELECT 1000000 + (extract(epoch FROM now())::bigint / 120) * 3 + floor(random() * 3)::bigint AS sess,
           random() AS r_type, random() AS r_tool, random() AS r_action, random() AS r_prop,
           random() AS r_risk, random() AS r_new_risk, random() AS r_num, random() AS r_when
    FROM generate_series(1, 7 + floor(random() * 7)::integer)
),
typed AS (
    SELECT d.*,
           -- Per-session traits derived from the session number, so they stay put across batches.
           CASE WHEN sess % 4 <> 0 THEN 'u-' || lpad((1 + (sess * 7919) % 400)::text, 4, '0') END AS user_id,
           (ARRAY['Start/Sit', 'FAAB', 'Decisions'])[1 + sess % 3] AS main_tool,
           (ARRAY['protect', 'neutral', 'chase'])[1 + floor(r_risk * 3)::integer] AS risk_mode,
           (ARRAY['protect', 'neutral', 'chase'])[1 + floor(r_new_risk * 3)::integer] AS new_risk_mode,
           CASE WHEN r_type < .30 THEN 'page_view' WHEN r_type < .55 THEN 'tool_used'
                WHEN r_type < .80 THEN 'feature_interaction' WHEN r_type < .92 THEN 'cache_hit'
                ELSE 'risk_mode_changed' END AS event_type,
           now() - interval '1 second' - interval '4 seconds' * r_when AS occurred_at
    FROM drawn AS d
),
tooled AS (
    SELECT ty.*,
           demo.analytics_tool(event_type, main_tool, r_tool, true) AS tool_name
    FROM typed AS ty
)
SELECT user_id,
       's-' || sess,
       event_type,
       tool_name,
       demo.analytics_action(event_type, r_action),
       demo.analytics_properties(event_type, tool_name, risk_mode, new_risk_mode, r_num, r_prop),
       user_id IS NULL,
       occurred_at,
       occurred_at + interval '50 milliseconds' + interval '900 milliseconds' * r_num
FROM tooled;

-- Reconciliation: 1-3 events from the last three hours get their verified cost.
WITH picked AS MATERIALIZED (
    SELECT id
    FROM events
    WHERE verified_cost_usd IS NULL
      AND created_at > now() - interval '3 hours'
      AND created_at < now() - interval '1 minute'
    ORDER BY random()
    LIMIT 1 + floor(random() * 3)::integer
)
UPDATE events AS e
SET verified_cost_usd = round(e.estimated_cost_usd * (0.93 + 0.12 * random())::numeric, 6)
FROM picked
WHERE e.id = picked.id;

COMMIT;
