-- The benchmarks' data generators (bench/catchup.sh, bench/lib.sh): deterministic rows for a
-- given seed and first row number. Loaded into schema bench, apart from rollupd's.
CREATE SCHEMA IF NOT EXISTS bench;

-- Events first_i .. first_i + n - 1: 3 projects, 6 features, 5 models (skewed), created_at
-- spread evenly over [start, start + span) in insertion order with jitter, ~10% verified cost.
-- Deterministic for a given setseed() and first_i (ids are md5 of the row number).
CREATE OR REPLACE FUNCTION bench.load_events(first_i bigint, n bigint, start timestamptz, span interval, seed float8)
RETURNS void LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO events (id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model,
        input_tokens, output_tokens, cached_tokens, latency_ms, estimated_cost_usd, verified_cost_usd,
        is_cache_hit, metadata, created_at)
    SELECT md5('event-' || i)::uuid, 'trace-' || (i / 4), 'span-' || i,
           CASE WHEN i % 4 <> 0 THEN 'span-' || (i - 1) END,
           (ARRAY['acme', 'globex', 'initech'])[1 + floor(r_project * 3)::int],
           (ARRAY['chat', 'search', 'summarize', 'classify', 'extract', 'translate'])[1 + floor(r_feature * 6)::int],
           'user-' || floor(r_user * 500)::int,
           m.provider, m.model, tin, tout, floor(tin * r_cache * 0.5)::int,
           40 + floor(-ln(1 - r_latency) * 900)::int,
           round((tin * m.in_price + tout * m.out_price) / 1e6, 6),
           CASE WHEN r_verified < 0.1 THEN round((tin * m.in_price + tout * m.out_price) / 1e6 * (0.9 + 0.2 * r_cache)::numeric, 6) END,
           r_cache < 0.15, jsonb_build_object('sdk', 'bench', 'attempt', 1 + floor(r_user * 3)::int),
           start + span * ((i - first_i + r_time) / n)
    FROM (SELECT i, random() AS r_project, random() AS r_feature, random() AS r_user, random() AS r_model,
                 50 + floor(power(random(), 2) * 4000)::int AS tin, 10 + floor(random() * 1500)::int AS tout,
                 random() AS r_cache, random() AS r_latency, random() AS r_verified, random() AS r_time
          FROM generate_series(first_i, first_i + n - 1) AS i) AS r
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            (0.00, 0.35, 'openai', 'gpt-4o-mini', 0.15, 0.60),
            (0.35, 0.60, 'openai', 'gpt-4o', 2.50, 10.00),
            (0.60, 0.80, 'anthropic', 'claude-3-5-haiku', 0.80, 4.00),
            (0.80, 0.95, 'anthropic', 'claude-3-5-sonnet', 3.00, 15.00),
            (0.95, 1.01, 'google', 'gemini-1.5-pro', 1.25, 5.00)
        ) AS v(lo, hi, provider, model, in_price, out_price)
        WHERE r.r_model >= v.lo AND r.r_model < v.hi
    ) AS m;
$$;

-- analytics_events first_i .. first_i + n - 1: sessions of ~20 consecutive events, 7 event types,
-- 6 tools on tool events, riskMode in ~70% of properties.
CREATE OR REPLACE FUNCTION bench.load_analytics(first_i bigint, n bigint, start timestamptz, span interval, seed float8)
RETURNS void LANGUAGE sql AS $$
    SELECT setseed(seed);
    INSERT INTO analytics_events (id, user_id, session_id, event_type, tool_name, action, properties,
        demo_mode, occurred_at, received_at)
    SELECT md5('analytics-' || i), 'user-' || (i / 20 % 500), 'session-' || (i / 20), t.event_type,
           CASE WHEN t.event_type IN ('tool_call', 'tool_result')
                THEN (ARRAY['search', 'calculator', 'code_interpreter', 'browser', 'file_reader', 'sql'])[1 + floor(r_tool * 6)::int] END,
           CASE WHEN t.event_type = 'tool_call' THEN 'invoke' END,
           CASE WHEN r_risk < 0.7 THEN jsonb_build_object('riskMode', (ARRAY['safe', 'balanced', 'aggressive'])[1 + floor(r_risk / 0.7 * 3)::int])
                WHEN r_risk < 0.85 THEN '{}'::jsonb END,
           r_tool < 0.1, at, at + interval '150 milliseconds'
    FROM (SELECT i, random() AS r_type, random() AS r_tool, random() AS r_risk,
                 start + span * ((i - first_i + random()) / n) AS at
          FROM generate_series(first_i, first_i + n - 1) AS i) AS r
    CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
            (0.00, 0.30, 'page_view'), (0.30, 0.55, 'tool_call'), (0.55, 0.78, 'tool_result'),
            (0.78, 0.85, 'session_start'), (0.85, 0.92, 'session_end'), (0.92, 0.97, 'feedback'),
            (0.97, 1.01, 'error')
        ) AS v(lo, hi, event_type)
        WHERE r.r_type >= v.lo AND r.r_type < v.hi
    ) AS t;
$$;
