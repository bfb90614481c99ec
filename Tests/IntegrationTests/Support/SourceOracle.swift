import Postgres

/// Full recomputations of the shared rollups from the built-in tables plus configured sources.
/// Each test writes its source's rows as plain SQL over the seed table (casts and joins of its
/// own, none of rollupd's functions): `cost` queries yield project_id, feature, model, user_id,
/// created_at, tokens, latency_ms, cost for the rows that must count; `analytics` queries yield
/// occurred_at, session_id, event_type, tool, risk.
enum SourceOracle {
    static let builtInCost = """
        SELECT project_id, feature, model, user_id, created_at, input_tokens::bigint + output_tokens::bigint,
               latency_ms::bigint, coalesce(verified_cost_usd, estimated_cost_usd)::numeric
        FROM events
        WHERE input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0 AND coalesce(verified_cost_usd, estimated_cost_usd) >= 0
        """

    static let builtInAnalytics = "SELECT occurred_at, session_id, event_type, tool_name, properties ->> 'riskMode' FROM analytics_events"

    /// The price in effect at `time` for `model`, per 1k tokens, as a plain lateral join.
    static func priced(tokensIn: String, tokensOut: String, model: String, time: String) -> String {
        """
        (SELECT \(tokensIn)::numeric / 1000 * p.input_price_per_1k + \(tokensOut)::numeric / 1000 * p.output_price_per_1k
         FROM model_pricing p WHERE p.model = \(model) AND p.effective_date <= \(time)
         ORDER BY p.effective_date DESC LIMIT 1)
        """
    }

    static func differences(cost: [String], analytics: [String] = [], timeZone: String = "UTC", on connection: PGConnection) throws -> [String] {
        let costRows = ([builtInCost] + cost).map { "(\($0))" }.joined(separator: " UNION ALL ")
        let expectedCost = try connection.query("""
            WITH valid (project_id, feature, model, user_id, created_at, tokens, latency_ms, cost) AS (\(costRows)),
            bucketed AS (
                SELECT *, 'hour' AS period, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start FROM valid
                UNION ALL
                SELECT *, 'day', date_trunc('day', created_at AT TIME ZONE $1) AT TIME ZONE $1 FROM valid
            )
            SELECT concat_ws('|', project_id, feature, model, period, extract(epoch FROM period_start)::bigint,
                             sum(cost)::numeric(30, 6), sum(tokens), count(*), round(avg(latency_ms), 2)::numeric(14, 2))
            FROM bucketed GROUP BY project_id, feature, model, period, period_start
            """, [timeZone]).rows.map { try $0.string(0) }
        let expectedUsers = try connection.query("""
            WITH valid (project_id, feature, model, user_id, created_at, tokens, latency_ms, cost) AS (\(costRows)),
            bucketed AS (
                SELECT *, 'day' AS period, date_trunc('day', created_at AT TIME ZONE $1) AT TIME ZONE $1 AS period_start FROM valid
            )
            SELECT concat_ws('|', user_id, project_id, period, extract(epoch FROM period_start)::bigint,
                             sum(cost)::numeric(30, 6), sum(tokens), count(*))
            FROM bucketed WHERE user_id IS NOT NULL GROUP BY user_id, project_id, period, period_start
            """, [timeZone]).rows.map { try $0.string(0) }
        let analyticsRows = ([builtInAnalytics] + analytics).map { "(\($0))" }.joined(separator: " UNION ALL ")
        let expectedHours = try connection.query("""
            WITH raw (occurred_at, session_id, event_type, tool, risk) AS (\(analyticsRows)),
            e AS (
                SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AS h, session_id, event_type,
                       CASE WHEN tool <> '' THEN tool END AS tool, CASE WHEN risk <> '' THEN risk END AS risk
                FROM raw
            ), hours AS (SELECT DISTINCT h FROM e)
            SELECT concat_ws('|', extract(epoch FROM hours.h AT TIME ZONE 'UTC')::bigint,
                (SELECT jsonb_object_agg(event_type, n) FROM (SELECT event_type, count(*) n FROM e WHERE e.h = hours.h GROUP BY 1) x),
                coalesce((SELECT jsonb_object_agg(tool, n) FROM (SELECT tool, count(*) n FROM e WHERE e.h = hours.h AND tool IS NOT NULL GROUP BY 1) x), '{}'),
                coalesce((SELECT jsonb_object_agg(risk, n) FROM (SELECT risk, count(*) n FROM e WHERE e.h = hours.h AND risk IS NOT NULL GROUP BY 1) x), '{}'),
                (SELECT count(DISTINCT session_id) FROM e WHERE e.h = hours.h),
                (SELECT count(*) FROM e WHERE e.h = hours.h))
            FROM hours
            """).rows.map { try $0.string(0) }

        return Oracle.diff("cost_aggregates", expected: expectedCost, actual: try Oracle.actualCostAggregates(on: connection))
            + Oracle.diff("user_cost_aggregates", expected: expectedUsers, actual: try Oracle.actualUserCostAggregates(on: connection))
            + Oracle.diff("hourly_rollups", expected: expectedHours, actual: try Oracle.actualHourlyRollups(on: connection))
    }
}
