import Postgres

/// Full recomputations of every rollup straight from the raw tables, written independently of
/// the engine's SQL (AT TIME ZONE arithmetic instead of date_trunc's zone argument, plain
/// GROUP BY instead of deltas and tallies). Each returns rows as comparable text.
enum Oracle {
    /// The rows of `events` that must count, as the rows queries below take them: project_id,
    /// feature, model, user_id, created_at, tokens, latency_ms, cost.
    static let eventRows = """
        SELECT project_id, feature, model, user_id, created_at, input_tokens::bigint + output_tokens::bigint,
               latency_ms::bigint, coalesce(verified_cost_usd, estimated_cost_usd)::numeric
        FROM events
        WHERE input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0 AND coalesce(verified_cost_usd, estimated_cost_usd) >= 0
        """

    /// The rows of `analytics_events`: occurred_at, session_id, event_type, tool, risk.
    static let analyticsRows = "SELECT occurred_at, session_id, event_type, tool_name, properties ->> 'riskMode' FROM analytics_events"

    /// cost_aggregates as recomputed from `rows` (a query shaped like `eventRows`); day buckets in `timeZone`.
    static func costAggregates(rows: String = eventRows, timeZone: String, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH valid (project_id, feature, model, user_id, created_at, tokens, latency_ms, cost) AS (\(rows)),
            bucketed AS (
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

    /// user_cost_aggregates (days) as recomputed from the rows of `rows` that name a user.
    static func userCostAggregates(rows: String = eventRows, timeZone: String, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH valid (project_id, feature, model, user_id, created_at, tokens, latency_ms, cost) AS (\(rows)),
            bucketed AS (
                SELECT *, 'day' AS period, date_trunc('day', created_at AT TIME ZONE $1) AT TIME ZONE $1 AS period_start
                FROM valid WHERE user_id IS NOT NULL
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
            FROM rollupd.user_cost_aggregates ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    /// hourly_rollups as recomputed from `rows` (a query shaped like `analyticsRows`).
    static func hourlyRollups(rows: String = analyticsRows, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            WITH raw (occurred_at, session_id, event_type, tool, risk) AS (\(rows)),
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

    /// Every comparison at once; the returned strings describe the first differences, empty when
    /// equal. `cost` and `analytics` are rows queries of other tables that feed the same rollups
    /// (configured sources, see SourceOracle), counted beside the built-in tables.
    static func differences(timeZone: String, cost: [String] = [], analytics: [String] = [],
                            on connection: PGConnection) throws -> [String] {
        let costUnion = ([eventRows] + cost).map { "(\($0))" }.joined(separator: " UNION ALL ")
        let analyticsUnion = ([analyticsRows] + analytics).map { "(\($0))" }.joined(separator: " UNION ALL ")
        return diff("cost_aggregates", expected: try costAggregates(rows: costUnion, timeZone: timeZone, on: connection),
                    actual: try actualCostAggregates(on: connection))
            + diff("user_cost_aggregates", expected: try userCostAggregates(rows: costUnion, timeZone: timeZone, on: connection),
                   actual: try actualUserCostAggregates(on: connection))
            + diff("hourly_rollups", expected: try hourlyRollups(rows: analyticsUnion, on: connection),
                   actual: try actualHourlyRollups(on: connection))
    }
}
