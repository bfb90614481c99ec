-- 007: user_cost_aggregates for the rows the rollups already count (see 006).
-- rollupd:replaces 7e3f26c345a0d5ef61437efc699a88c162dce4d52480cbba8b0f076608fea95f
--
-- Counted are the events rows below the watermark (and pre-existing rows, once initialized) and
-- the saved old versions below it, which the next pass will subtract. The table is recomputed
-- whole, so a pass that ran between 006 and 007 is not counted twice. The row lock makes passes
-- wait until this commits; the product's writes are not blocked. Rows retention already
-- expired are gone and are not counted.

SELECT 1 FROM rollupd.sources WHERE source = 'events' FOR UPDATE;

DELETE FROM rollupd.user_cost_aggregates;

INSERT INTO rollupd.user_cost_aggregates (project_id, user_id, period, period_start, total_cost, total_tokens, call_count)
WITH state AS (
    SELECT watermark, coalesce(day_time_zone, 'UTC') AS zone FROM rollupd.sources
    WHERE source = 'events' AND initialized
), counted AS (
    SELECT e.project_id, e.user_id, e.created_at, e.input_tokens::bigint + e.output_tokens AS tokens,
           coalesce(e.verified_cost_usd, e.estimated_cost_usd)::numeric AS cost
    FROM @app_schema@.events e, state s
    WHERE e.user_id IS NOT NULL AND coalesce(e.rollupd_xid, '0'::xid8) < s.watermark
      AND rollupd.cost_row_is_valid(e.input_tokens, e.output_tokens, e.latency_ms,
          coalesce(e.verified_cost_usd, e.estimated_cost_usd), e.project_id, e.feature, e.model, e.created_at)
    UNION ALL
    SELECT c.project_id, c.user_id, c.created_at, c.input_tokens + c.output_tokens,
           coalesce(c.verified_cost_usd, c.estimated_cost_usd)
    FROM rollupd.event_changes c, state s
    WHERE c.user_id IS NOT NULL AND coalesce(c.old_xid, '0'::xid8) < s.watermark
      AND rollupd.cost_row_is_valid(c.input_tokens, c.output_tokens, c.latency_ms,
          coalesce(c.verified_cost_usd, c.estimated_cost_usd), c.project_id, c.feature, c.model, c.created_at)
)
SELECT project_id, user_id, 'day', date_trunc('day', created_at, (SELECT zone FROM state)), sum(cost), sum(tokens), count(*)
FROM counted GROUP BY 1, 2, 4;

