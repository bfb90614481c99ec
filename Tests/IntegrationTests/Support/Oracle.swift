import Postgres

/// Full recomputations of every rollup straight from the raw tables, written independently of
/// the engine's SQL (AT TIME ZONE arithmetic instead of date_trunc's zone argument, plain
/// GROUP BY instead of deltas and tallies). Each returns rows as comparable text.
enum Oracle {
    /// cost_aggregates as recomputed from events; day buckets in `timeZone`.
    static func costAggregates(timeZone: String, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH valid AS (
                SELECT project_id, feature, model, created_at,
                       input_tokens::bigint + output_tokens::bigint AS tokens, latency_ms,
                       coalesce(verified_cost_usd, estimated_cost_usd) AS cost
                FROM events
                WHERE input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0
                  AND coalesce(verified_cost_usd, estimated_cost_usd) >= 0
            ), bucketed AS (
                SELECT *, 'hour' AS period, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start FROM valid
                UNION ALL
                SELECT *, 'day', date_trunc('day', created_at AT TIME ZONE $1) AT TIME ZONE $1 FROM valid
            )
            SELECT concat_ws('|', project_id, feature, model, period, extract(epoch FROM period_start)::bigint,
                             sum(cost)::numeric(30, 6), sum(tokens), count(*), round(avg(latency_ms), 2)::numeric(14, 2))
            FROM bucketed GROUP BY project_id, feature, model, period, period_start
            ORDER BY 1
            """, [timeZone]).rows.map { try $0.string(0) }
    }

    static func actualCostAggregates(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT concat_ws('|', project_id, feature, model, period, extract(epoch FROM period_start)::bigint,
                             total_cost::numeric(30, 6), total_tokens, call_count, avg_latency::numeric(14, 2))
            FROM cost_aggregates ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    /// user_cost_aggregates (days) as recomputed from events that name a user.
    static func userCostAggregates(timeZone: String, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH valid AS (
                SELECT project_id, user_id, created_at, input_tokens::bigint + output_tokens::bigint AS tokens,
                       coalesce(verified_cost_usd, estimated_cost_usd) AS cost
                FROM events
                WHERE user_id IS NOT NULL AND input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0
                  AND coalesce(verified_cost_usd, estimated_cost_usd) >= 0
            ), bucketed AS (
                SELECT *, 'day' AS period, date_trunc('day', created_at AT TIME ZONE $1) AT TIME ZONE $1 AS period_start FROM valid
            )
            SELECT concat_ws('|', user_id, project_id, period, extract(epoch FROM period_start)::bigint,
                             sum(cost)::numeric(30, 6), sum(tokens), count(*))
            FROM bucketed GROUP BY user_id, project_id, period, period_start
            ORDER BY 1
            """, [timeZone]).rows.map { try $0.string(0) }
    }

    static func actualUserCostAggregates(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT concat_ws('|', user_id, project_id, period, extract(epoch FROM period_start)::bigint,
                             total_cost::numeric(30, 6), total_tokens, call_count)
            FROM user_cost_aggregates ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    /// hourly_rollups as recomputed from analytics_events.
    static func hourlyRollups(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH e AS (
                SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AS h, session_id, event_type,
                       CASE WHEN tool_name <> '' THEN tool_name END AS tool,
                       CASE WHEN properties ->> 'riskMode' <> '' THEN properties ->> 'riskMode' END AS risk
                FROM analytics_events
            ), hours AS (SELECT DISTINCT h FROM e)
            SELECT concat_ws('|', extract(epoch FROM hours.h AT TIME ZONE 'UTC')::bigint,
                (SELECT jsonb_object_agg(event_type, n) FROM (SELECT event_type, count(*) n FROM e WHERE e.h = hours.h GROUP BY 1) x),
                coalesce((SELECT jsonb_object_agg(tool, n) FROM (SELECT tool, count(*) n FROM e WHERE e.h = hours.h AND tool IS NOT NULL GROUP BY 1) x), '{}'),
                coalesce((SELECT jsonb_object_agg(risk, n) FROM (SELECT risk, count(*) n FROM e WHERE e.h = hours.h AND risk IS NOT NULL GROUP BY 1) x), '{}'),
                (SELECT count(DISTINCT session_id) FROM e WHERE e.h = hours.h),
                (SELECT count(*) FROM e WHERE e.h = hours.h))
            FROM hours ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    static func actualHourlyRollups(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT concat_ws('|', extract(epoch FROM hour)::bigint, event_counts, tool_usage, risk_distribution,
                             unique_sessions, total_events)
            FROM hourly_rollups ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    /// The first rows of `expected` missing from `actual` and of `actual` not expected.
    static func diff(_ name: String, expected: [String], actual: [String]) -> [String] {
        let missing = Set(expected).subtracting(actual).sorted().prefix(5).map { "\(name) missing/wrong: \($0)" }
        let extra = Set(actual).subtracting(expected).sorted().prefix(5).map { "\(name) unexpected: \($0)" }
        return missing + extra
    }

    /// Every comparison at once; the returned strings describe the first differences, empty when equal.
    static func differences(timeZone: String, on connection: PGConnection) throws -> [String] {
        return diff("cost_aggregates", expected: try costAggregates(timeZone: timeZone, on: connection),
                    actual: try actualCostAggregates(on: connection))
            + diff("user_cost_aggregates", expected: try userCostAggregates(timeZone: timeZone, on: connection),
                   actual: try actualUserCostAggregates(on: connection))
            + diff("hourly_rollups", expected: try hourlyRollups(on: connection), actual: try actualHourlyRollups(on: connection))
    }
}
