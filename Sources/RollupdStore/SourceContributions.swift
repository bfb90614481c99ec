import Postgres

/// What each configured source has added to the shared rollup tables (migration 008), and the
/// statements that keep the shared tables right when one source is reset or rebuilt:
///
/// - a configured source's reset subtracts exactly its own share and leaves the others';
/// - a built-in source's reset empties the shared tables (as it always did, replacing an app's
///   own aggregates) and then puts every configured source's share back.
enum SourceContributions {
    // MARK: cost

    /// Inside a configured cost pass: adds `fine`'s deltas to this source's ($4) own buckets.
    static let costUpsert = """
            INSERT INTO rollupd.source_cost_buckets AS b (source, project_id, feature, model, period, period_start,
                total_cost, total_tokens, call_count, total_latency_ms)
            SELECT $4, project_id, feature, model, 'hour', hour, sum(cost), sum(tokens), sum(calls), sum(latency)
            FROM fine WHERE NOT per_user GROUP BY project_id, feature, model, hour
            UNION ALL
            SELECT $4, project_id, feature, model, 'day', day, sum(cost), sum(tokens), sum(calls), sum(latency)
            FROM fine WHERE NOT per_user GROUP BY project_id, feature, model, day
            ON CONFLICT (source, project_id, feature, model, period, period_start) DO UPDATE SET
                total_cost = b.total_cost + excluded.total_cost,
                total_tokens = b.total_tokens + excluded.total_tokens,
                call_count = b.call_count + excluded.call_count,
                total_latency_ms = b.total_latency_ms + excluded.total_latency_ms
    """

    static let userCostUpsert = """
            INSERT INTO rollupd.source_user_cost_buckets AS b (source, project_id, user_id, period, period_start,
                total_cost, total_tokens, call_count)
            SELECT $4, project_id, user_id, 'day', day, sum(cost), sum(tokens), sum(calls)
            FROM fine WHERE per_user AND user_id IS NOT NULL GROUP BY project_id, user_id, day
            ON CONFLICT (source, user_id, period, period_start, project_id) DO UPDATE SET
                total_cost = b.total_cost + excluded.total_cost,
                total_tokens = b.total_tokens + excluded.total_tokens,
                call_count = b.call_count + excluded.call_count
    """

    static func dropEmptiedCost(source: String, on connection: PGConnection) throws {
        try connection.query("""
            WITH users AS (DELETE FROM rollupd.source_user_cost_buckets WHERE source = $1 AND call_count = 0)
            DELETE FROM rollupd.source_cost_buckets WHERE source = $1 AND call_count = 0
            """, [source], context: "drop emptied buckets of \(source)")
    }

    /// Takes one configured source's share out of the shared tables and forgets it, with its
    /// derived costs and rejected rows (a recount records them again).
    static func clearCost(source: String, on connection: PGConnection) throws {
        let emptied = try connection.query("""
            WITH mine AS (
                DELETE FROM rollupd.source_cost_buckets WHERE source = $1 RETURNING *
            ), mine_users AS (
                DELETE FROM rollupd.source_user_cost_buckets WHERE source = $1 RETURNING *
            ), shared AS (
                UPDATE cost_aggregates ca SET
                    total_cost = ca.total_cost - m.total_cost, total_tokens = ca.total_tokens - m.total_tokens,
                    call_count = ca.call_count - m.call_count, total_latency_ms = ca.total_latency_ms - m.total_latency_ms,
                    avg_latency = coalesce(round((ca.total_latency_ms - m.total_latency_ms)::numeric
                        / nullif(ca.call_count - m.call_count, 0), 2), 0)
                FROM mine m
                WHERE ca.project_id = m.project_id AND ca.feature = m.feature AND ca.model = m.model
                  AND ca.period = m.period AND ca.period_start = m.period_start
                RETURNING ca.id, ca.call_count
            ), shared_users AS (
                UPDATE rollupd.user_cost_aggregates u SET
                    total_cost = u.total_cost - m.total_cost, total_tokens = u.total_tokens - m.total_tokens,
                    call_count = u.call_count - m.call_count
                FROM mine_users m
                WHERE u.user_id = m.user_id AND u.period = m.period AND u.period_start = m.period_start AND u.project_id = m.project_id
                RETURNING u.id, u.call_count
            ), ledger AS (
                DELETE FROM rollupd.derived_costs WHERE source = $1
            ), rejected AS (
                DELETE FROM rollupd.rejected_rows WHERE source = $1
            )
            SELECT ARRAY(SELECT id FROM shared WHERE call_count = 0)::text,
                   ARRAY(SELECT id FROM shared_users WHERE call_count = 0)::text
            """, [source], context: "clear the rollups of \(source)").singleRow("clear \(source)")
        try CostRollup.dropEmptied(costIDs: try emptied.string(0), userIDs: try emptied.string(1), on: connection)
    }

    /// After `events` emptied the shared cost tables: every configured source's share, back.
    /// With `range` ($1 from, $2 to, $3 time zone, as CostRollup.boundsSQL), only the buckets a
    /// rebuild of that range recomputed.
    static func restoreCost(range: RebuildRange? = nil, timeZone: String = "UTC", on connection: PGConnection) throws {
        let bounds = range == nil ? "" : """
            , bounds b WHERE (s.period = 'hour' AND s.period_start >= b.hour_from AND s.period_start < b.hour_to)
               OR (s.period = 'day' AND s.period_start >= b.day_from AND s.period_start < b.day_to)
            """
        let with = range == nil ? "" : "WITH bounds AS (\(CostRollup.boundsSQL))"
        let parameters: [any PGParameter] = range.map { [$0.from, $0.to, timeZone] } ?? []
        try connection.query("""
            \(with)
            INSERT INTO cost_aggregates AS ca (project_id, feature, model, period, period_start,
                total_cost, total_tokens, call_count, total_latency_ms, avg_latency)
            SELECT s.project_id, s.feature, s.model, s.period, s.period_start, sum(s.total_cost), sum(s.total_tokens),
                   sum(s.call_count), sum(s.total_latency_ms),
                   coalesce(round(sum(s.total_latency_ms)::numeric / nullif(sum(s.call_count), 0), 2), 0)
            FROM rollupd.source_cost_buckets s\(bounds)
            GROUP BY 1, 2, 3, 4, 5
            \(CostRollup.addToCostBucket)
            """, parameters, context: "restore configured sources' cost buckets")
        try connection.query("""
            \(with)
            INSERT INTO rollupd.user_cost_aggregates AS u (project_id, user_id, period, period_start, total_cost, total_tokens, call_count)
            SELECT s.project_id, s.user_id, s.period, s.period_start, sum(s.total_cost), sum(s.total_tokens), sum(s.call_count)
            FROM rollupd.source_user_cost_buckets s\(bounds)
            GROUP BY 1, 2, 3, 4
            \(CostRollup.addToUserBucket)
            """, parameters, context: "restore configured sources' user buckets")
    }

    // MARK: analytics

    /// Inside a configured analytics pass: this source's ($4) own tallies.
    static let tallyUpserts = """
        own_dimension_up AS (
            INSERT INTO rollupd.source_hourly_dimension_counts AS c (source, hour, dimension, key, n)
            SELECT $4, hour, dimension, key, n FROM dimension_deltas WHERE n <> 0
            ON CONFLICT (source, hour, dimension, key) DO UPDATE SET n = c.n + excluded.n
        ), own_session_up AS (
            INSERT INTO rollupd.source_hourly_session_counts AS s (source, hour, session_id, n)
            SELECT $4, hour, session_id, sum(n) FROM fine GROUP BY 2, 3 HAVING sum(n) <> 0
            ON CONFLICT (source, hour, session_id) DO UPDATE SET n = s.n + excluded.n
        )
        """

    static func dropZeroTallies(source: String, on connection: PGConnection) throws {
        try connection.query("""
            WITH sessions AS (DELETE FROM rollupd.source_hourly_session_counts WHERE source = $1 AND n = 0)
            DELETE FROM rollupd.source_hourly_dimension_counts WHERE source = $1 AND n = 0
            """, [source], context: "drop zero tallies of \(source)")
    }

    /// Takes one configured source's tallies out of the shared ones and rewrites the hours they touched.
    static func clearAnalytics(source: String, on connection: PGConnection) throws {
        let hours = try connection.query("""
            WITH mine_dimensions AS (
                DELETE FROM rollupd.source_hourly_dimension_counts WHERE source = $1 RETURNING *
            ), mine_sessions AS (
                DELETE FROM rollupd.source_hourly_session_counts WHERE source = $1 RETURNING *
            ), dimensions AS (
                UPDATE rollupd.hourly_dimension_counts c SET n = c.n - m.n FROM mine_dimensions m
                WHERE c.hour = m.hour AND c.dimension = m.dimension AND c.key = m.key
            ), sessions AS (
                UPDATE rollupd.hourly_session_counts s SET n = s.n - m.n FROM mine_sessions m
                WHERE s.hour = m.hour AND s.session_id = m.session_id
            ), rejected AS (
                DELETE FROM rollupd.rejected_rows WHERE source = $1
            )
            SELECT ARRAY(SELECT hour FROM mine_dimensions UNION SELECT hour FROM mine_sessions)::text
            """, [source], context: "clear the rollups of \(source)").singleRow("clear \(source)").string(0)
        if hours != "{}" {
            try connection.query(AnalyticsRollup.refreshSQL, [hours], context: "refresh hourly_rollups")
        }
    }

    /// After `analytics_events` emptied (or, with `range`, cleared some hours of) the shared
    /// tallies: every configured source's share back. Returns the hours to refresh.
    static func restoreAnalytics(range: RebuildRange? = nil, on connection: PGConnection) throws -> String {
        let filter = range == nil ? "" : """
             WHERE hour >= date_trunc('hour', to_timestamp($1::float8), 'UTC')
               AND hour < date_trunc('hour', to_timestamp($2::float8) - interval '1 microsecond', 'UTC') + interval '1 hour'
            """
        let parameters: [any PGParameter] = range.map { [$0.from, $0.to] } ?? []
        try connection.query("""
            INSERT INTO rollupd.hourly_dimension_counts AS c (hour, dimension, key, n)
            SELECT hour, dimension, key, sum(n) FROM rollupd.source_hourly_dimension_counts\(filter) GROUP BY 1, 2, 3
            ON CONFLICT (hour, dimension, key) DO UPDATE SET n = c.n + excluded.n
            """, parameters, context: "restore configured sources' tallies")
        return try connection.query("""
            WITH sessions AS (
                INSERT INTO rollupd.hourly_session_counts AS s (hour, session_id, n)
                SELECT hour, session_id, sum(n) FROM rollupd.source_hourly_session_counts\(filter) GROUP BY 1, 2
                ON CONFLICT (hour, session_id) DO UPDATE SET n = s.n + excluded.n
            )
            SELECT ARRAY(SELECT DISTINCT hour FROM rollupd.source_hourly_dimension_counts\(filter))::text
            """, parameters, context: "restore configured sources' session tallies").singleRow("restored hours").string(0)
    }
}
