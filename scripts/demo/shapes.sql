-- The shape of a demo analytics event, shared by scripts/demo/seed.sql and trickle.sql so the
-- seeded history and the live trickle look alike. Loaded by `scripts/dev run` before the seed,
-- into schema demo of the demo database (not rollupd's, not the product's).

CREATE SCHEMA IF NOT EXISTS demo;

-- The tool an event is about, if any; `may_have_tool` is false for a session's opening page view.
CREATE OR REPLACE FUNCTION demo.analytics_tool(event_type text, main_tool text, r double precision, may_have_tool boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE event_type
        WHEN 'page_view' THEN CASE WHEN may_have_tool AND r < .50 THEN main_tool END
        WHEN 'tool_used' THEN CASE WHEN r < .70 THEN main_tool WHEN r < .85 THEN 'Start/Sit'
                                   WHEN r < .93 THEN 'FAAB' ELSE 'Decisions' END
        WHEN 'feature_interaction' THEN CASE WHEN r < .70 THEN main_tool END
        WHEN 'cache_hit' THEN CASE WHEN r < .60 THEN 'Start/Sit' WHEN r < .90 THEN 'Decisions' ELSE 'FAAB' END
        ELSE CASE WHEN r < .55 THEN 'Start/Sit' WHEN r < .85 THEN 'Decisions' END
    END
$$;

CREATE OR REPLACE FUNCTION demo.analytics_action(event_type text, r double precision)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE event_type
        WHEN 'page_view' THEN 'view'
        WHEN 'tool_used' THEN CASE WHEN r < .60 THEN 'run' WHEN r < .85 THEN 'compare' ELSE 'export' END
        WHEN 'feature_interaction' THEN CASE WHEN r < .35 THEN 'open_details' WHEN r < .60 THEN 'toggle_view'
                                             WHEN r < .80 THEN 'sort' ELSE 'filter' END
        WHEN 'cache_hit' THEN 'cached_result'
        ELSE 'set_risk_mode'
    END
$$;

-- properties, with a riskMode on most tool events and on every risk_mode_changed.
CREATE OR REPLACE FUNCTION demo.analytics_properties(event_type text, tool_name text, risk_mode text,
                                                     new_risk_mode text, r_num double precision, r_prop double precision)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE event_type
        WHEN 'page_view' THEN jsonb_build_object(
            'path', CASE tool_name WHEN 'Start/Sit' THEN '/tools/start-sit' WHEN 'FAAB' THEN '/tools/faab'
                                   WHEN 'Decisions' THEN '/tools/decisions' ELSE '/' END)
        WHEN 'tool_used' THEN jsonb_build_object('durationMs', 120 + floor(2400 * r_num ^ 2)::integer,
                                                 'week', 1 + floor(18 * r_prop)::integer)
            || CASE WHEN r_prop < .60 THEN jsonb_build_object('riskMode', risk_mode) ELSE '{}' END
        WHEN 'feature_interaction' THEN jsonb_build_object('element',
                CASE WHEN r_num < .40 THEN 'player_card' WHEN r_num < .70 THEN 'matchup_table' ELSE 'projection_chart' END)
            || CASE WHEN r_prop < .30 THEN jsonb_build_object('riskMode', risk_mode) ELSE '{}' END
        WHEN 'cache_hit' THEN jsonb_build_object('ageSeconds', floor(3600 * r_num)::integer)
        ELSE jsonb_build_object('riskMode', new_risk_mode, 'previousRiskMode', risk_mode)
    END
$$;
