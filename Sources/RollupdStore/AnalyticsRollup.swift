import Postgres

/// `analytics_events` -> `hourly_rollups`, through exact per-hour tallies
/// (rollupd.hourly_dimension_counts, rollupd.hourly_session_counts): a distinct-session count
/// cannot be adjusted from a number, but a per-(hour, session) tally can. Each touched hour's
/// hourly_rollups row is then rewritten from its tallies.
struct AnalyticsRollup: SourceRollup {
    let source = RollupSource.analyticsEvents
    let usesTimeZone = false

    func clearAll(on connection: PGConnection) throws {
        try connection.execute(script: """
            DELETE FROM hourly_rollups;
            DELETE FROM rollupd.hourly_dimension_counts;
            DELETE FROM rollupd.hourly_session_counts;
            """, context: "clear hourly_rollups")
        // The configured sources share these tallies; only analytics_events' share is recounted.
        let hours = try SourceContributions.restoreAnalytics(on: connection)
        if hours != "{}" { try connection.query(Self.refreshSQL, [hours], context: "refresh hourly_rollups") }
    }

    func apply(_ window: XidWindow, timeZone: String, on connection: PGConnection) throws -> ApplyCounts {
        let row = try connection.query(
            Self.applySQL(window.key), window.parameters, context: "roll up analytics_events"
        ).singleRow("roll up analytics_events")
        let touchedHours = try row.string(3)
        if touchedHours != "{}" {
            try connection.query(Self.refreshSQL, [touchedHours], context: "refresh hourly_rollups")
        }
        return ApplyCounts(added: try row.int64(0), removed: try row.int64(1), bucketsTouched: try row.int64(2))
    }

    func rebuild(_ range: RebuildRange, horizon: String, timeZone: String, key: AdoptionKey, on connection: PGConnection) throws -> Int64 {
        let hours = try connection.query(Self.rebuildSQL, [range.from, range.to], context: "rebuild hourly tallies: clear")
            .singleRow("rebuild hourly tallies").string(0)
        try connection.query(Self.retallySQL, [range.from, range.to, horizon], context: "rebuild hourly tallies")
        _ = try SourceContributions.restoreAnalytics(range: range, on: connection)
        return Int64(try connection.query(Self.refreshSQL, [hours], context: "refresh hourly_rollups").affectedRows)
    }

    /// `fine`'s deltas (per hour, session, event type, tool, risk) added to the exact tallies
    /// behind hourly_rollups; every analytics pass, built-in or configured, ends with these.
    static let tallySQL = """
        dimension_deltas AS (
            SELECT hour, 'event_type' AS dimension, event_type AS key, sum(n) AS n FROM fine GROUP BY 1, 3
            UNION ALL
            SELECT hour, 'tool', tool, sum(n) FROM fine WHERE tool IS NOT NULL GROUP BY 1, 3
            UNION ALL
            SELECT hour, 'risk', risk, sum(n) FROM fine WHERE risk IS NOT NULL GROUP BY 1, 3
        ), dimension_up AS (
            INSERT INTO rollupd.hourly_dimension_counts AS c (hour, dimension, key, n)
            SELECT hour, dimension, key, n FROM dimension_deltas WHERE n <> 0
            ON CONFLICT (hour, dimension, key) DO UPDATE SET n = c.n + excluded.n
            RETURNING 1
        ), session_up AS (
            INSERT INTO rollupd.hourly_session_counts AS s (hour, session_id, n)
            SELECT hour, session_id, sum(n) FROM fine GROUP BY 1, 2 HAVING sum(n) <> 0
            ON CONFLICT (hour, session_id) DO UPDATE SET n = s.n + excluded.n
            RETURNING 1
        )
        """

    /// The columns a row contributes, the same for live rows and saved old versions.
    /// Empty tool names and riskModes count as absent.
    /// $1 watermark, $2 horizon, $3 first pass. Returns added, removed, tallies touched, touched hours.
    static func applySQL(_ key: AdoptionKey) -> String { """
        WITH consumed AS (
            \(ChangeLog.consume("rollupd.analytics_changes", key: key))
        ), contributions AS (
            SELECT date_trunc('hour', occurred_at, 'UTC') AS hour, session_id, event_type,
                   nullif(tool_name, '') AS tool, nullif(properties ->> 'riskMode', '') AS risk, 1 AS sign
            FROM analytics_events
            WHERE \(XidWindow.predicate(key))
            UNION ALL
            SELECT date_trunc('hour', occurred_at, 'UTC'), session_id, event_type,
                   nullif(tool_name, ''), nullif(risk_mode, ''), -1
            FROM consumed
            WHERE \(key.counted())
        ), fine AS (
            SELECT hour, session_id, event_type, tool, risk, sum(sign) AS n,
                   count(*) FILTER (WHERE sign > 0) AS added, count(*) FILTER (WHERE sign < 0) AS removed
            FROM contributions
            GROUP BY 1, 2, 3, 4, 5
        ), \(tallySQL)
        SELECT coalesce((SELECT sum(added) FROM fine), 0)::bigint,
               coalesce((SELECT sum(removed) FROM fine), 0)::bigint,
               (SELECT count(*) FROM dimension_up) + (SELECT count(*) FROM session_up),
               ARRAY(SELECT DISTINCT hour FROM fine)::text
        """
    }

    /// $1 touched hours (timestamptz[] literal). Drops zero tallies and rewrites each hour's
    /// hourly_rollups row from its tallies, or deletes it when the hour has no events left.
    static let refreshSQL = """
        WITH touched AS (
            SELECT DISTINCT unnest($1::timestamptz[]) AS hour
        ), cleared_dimensions AS (
            DELETE FROM rollupd.hourly_dimension_counts c USING touched t WHERE c.hour = t.hour AND c.n = 0
        ), cleared_sessions AS (
            DELETE FROM rollupd.hourly_session_counts s USING touched t WHERE s.hour = t.hour AND s.n = 0
        ), summary AS (
            SELECT t.hour,
                   (SELECT jsonb_object_agg(c.key, c.n) FROM rollupd.hourly_dimension_counts c
                     WHERE c.hour = t.hour AND c.dimension = 'event_type' AND c.n > 0) AS event_counts,
                   coalesce((SELECT jsonb_object_agg(c.key, c.n) FROM rollupd.hourly_dimension_counts c
                     WHERE c.hour = t.hour AND c.dimension = 'tool' AND c.n > 0), '{}') AS tool_usage,
                   coalesce((SELECT jsonb_object_agg(c.key, c.n) FROM rollupd.hourly_dimension_counts c
                     WHERE c.hour = t.hour AND c.dimension = 'risk' AND c.n > 0), '{}') AS risk_distribution,
                   (SELECT count(*) FROM rollupd.hourly_session_counts s
                     WHERE s.hour = t.hour AND s.n > 0) AS unique_sessions,
                   (SELECT sum(c.n) FROM rollupd.hourly_dimension_counts c
                     WHERE c.hour = t.hour AND c.dimension = 'event_type' AND c.n > 0) AS total_events
            FROM touched t
        ), emptied AS (
            DELETE FROM hourly_rollups h USING summary s WHERE h.hour = s.hour AND s.total_events IS NULL
        )
        INSERT INTO hourly_rollups AS h (hour, event_counts, tool_usage, risk_distribution, unique_sessions, total_events)
        SELECT hour, event_counts, tool_usage, risk_distribution, unique_sessions, total_events
        FROM summary WHERE total_events IS NOT NULL
        ON CONFLICT (hour) DO UPDATE SET
            event_counts = excluded.event_counts,
            tool_usage = excluded.tool_usage,
            risk_distribution = excluded.risk_distribution,
            unique_sessions = excluded.unique_sessions,
            total_events = excluded.total_events
        """

    /// $1 from, $2 to (epoch seconds). Clears the tallies of every UTC hour overlapping [from, to)
    /// and returns those hours.
    static let rebuildSQL = """
        WITH bounds AS (
            SELECT date_trunc('hour', to_timestamp($1::float8), 'UTC') AS hour_from,
                   date_trunc('hour', to_timestamp($2::float8) - interval '1 microsecond', 'UTC') + interval '1 hour' AS hour_to
        ), cleared_dimensions AS (
            DELETE FROM rollupd.hourly_dimension_counts c USING bounds b WHERE c.hour >= b.hour_from AND c.hour < b.hour_to
        ), cleared_sessions AS (
            DELETE FROM rollupd.hourly_session_counts s USING bounds b WHERE s.hour >= b.hour_from AND s.hour < b.hour_to
        )
        SELECT ARRAY(SELECT generate_series(hour_from, hour_to - interval '1 hour', interval '1 hour') FROM bounds)::text
        """

    /// $1 from, $2 to, $3 horizon: recomputes the cleared tallies from the rows counted below the
    /// horizon. A separate statement from the clearing, so its inserts never meet deleted rows.
    static let retallySQL = """
        WITH bounds AS (
            SELECT date_trunc('hour', to_timestamp($1::float8), 'UTC') AS hour_from,
                   date_trunc('hour', to_timestamp($2::float8) - interval '1 microsecond', 'UTC') + interval '1 hour' AS hour_to
        ), counted AS (
            SELECT date_trunc('hour', a.occurred_at, 'UTC') AS hour, a.session_id, a.event_type,
                   nullif(a.tool_name, '') AS tool, nullif(a.properties ->> 'riskMode', '') AS risk
            FROM analytics_events a, bounds b
            WHERE a.occurred_at >= b.hour_from AND a.occurred_at < b.hour_to
              AND coalesce(a.rollupd_xid, '0'::xid8) < $3::xid8
        ), sessions AS (
            INSERT INTO rollupd.hourly_session_counts (hour, session_id, n)
            SELECT hour, session_id, count(*) FROM counted GROUP BY 1, 2
        )
        INSERT INTO rollupd.hourly_dimension_counts (hour, dimension, key, n)
        SELECT hour, 'event_type', event_type, count(*) FROM counted GROUP BY 1, 3
        UNION ALL
        SELECT hour, 'tool', tool, count(*) FROM counted WHERE tool IS NOT NULL GROUP BY 1, 3
        UNION ALL
        SELECT hour, 'risk', risk, count(*) FROM counted WHERE risk IS NOT NULL GROUP BY 1, 3
        """
}
