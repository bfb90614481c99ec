import Postgres

/// `events` -> `cost_aggregates` (hour buckets in UTC, day buckets in rollup.time_zone) and, for
/// events with a user, `user_cost_aggregates` (day buckets).
struct CostRollup: SourceRollup {
    let source = RollupSource.events
    let usesTimeZone = true

    func clearAll(on connection: PGConnection) throws {
        try connection.query("DELETE FROM cost_aggregates", context: "clear cost_aggregates")
        try connection.query("DELETE FROM rollupd.user_cost_aggregates", context: "clear user_cost_aggregates")
        // The configured sources share these tables; only events' share is recounted.
        try SourceContributions.restoreCost(on: connection)
    }

    func apply(_ window: XidWindow, timeZone: String, on connection: PGConnection) throws -> ApplyCounts {
        let row = try connection.query(
            Self.applySQL(window.key), window.parameters + [timeZone],
            context: "roll up events"
        ).singleRow("roll up events")
        try Self.dropEmptied(costIDs: try row.string(3), userIDs: try row.string(5), on: connection)
        var counts = ApplyCounts(added: try row.int64(0), removed: try row.int64(1), bucketsTouched: try row.int64(2))
        if try row.int64(4) > 0 {
            try counts.recordRejected(Self.rejectSQL(window.key), window.parameters, source: "events", on: connection)
        }
        return counts
    }

    /// A bucket whose every event went away disappears, as a recomputation would show it.
    /// `costIDs` and `userIDs` are array literals of the buckets a statement left at zero calls.
    static func dropEmptied(costIDs: String, userIDs: String, on connection: PGConnection) throws {
        if costIDs != "{}" {
            try connection.query("DELETE FROM cost_aggregates WHERE id = ANY($1::uuid[]) AND call_count = 0", [costIDs],
                                 context: "drop emptied cost buckets")
        }
        if userIDs != "{}" {
            try connection.query("DELETE FROM rollupd.user_cost_aggregates WHERE id = ANY($1::bigint[]) AND call_count = 0", [userIDs],
                                 context: "drop emptied user buckets")
        }
    }

    func rebuild(_ range: RebuildRange, horizon: String, timeZone: String, key: AdoptionKey, on connection: PGConnection) throws -> Int64 {
        try connection.query(Self.rebuildClearSQL, [range.from, range.to, timeZone], context: "rebuild cost_aggregates: clear")
        let rebuilt = try connection.query(Self.rebuildSQL, [range.from, range.to, timeZone, horizon], context: "rebuild cost_aggregates")
        try SourceContributions.restoreCost(range: range, timeZone: timeZone, on: connection)
        return Int64(rebuilt.affectedRows)
    }

    /// $1 watermark, $2 horizon, $3 first pass, $4 time zone.
    /// New rows count +1, consumed old versions -1 (only if they had been counted: old_xid below
    /// the watermark). Aggregated once by (keys, hour, day), then upserted into both periods.
    static func applySQL(_ key: AdoptionKey) -> String { """
        WITH consumed AS (
            \(ChangeLog.consume("rollupd.event_changes", key: key))
        ), contributions AS (
            SELECT id::text AS row_id, project_id, feature, model, user_id, created_at,
                   input_tokens::bigint AS input_tokens, output_tokens::bigint AS output_tokens,
                   latency_ms::bigint AS latency_ms,
                   coalesce(verified_cost_usd, estimated_cost_usd)::numeric AS cost, 1 AS sign
            FROM events
            WHERE \(XidWindow.predicate(key))
            UNION ALL
            SELECT row_id, project_id, feature, model, user_id, created_at, input_tokens, output_tokens, latency_ms,
                   coalesce(verified_cost_usd, estimated_cost_usd), -1
            FROM consumed
            WHERE \(key.counted())
        ), fine AS (
            SELECT valid, project_id, feature, model, user_id, hour, day, GROUPING(user_id) = 0 AS per_user,
                   sum(sign * cost) AS cost,
                   sum(sign * (input_tokens + output_tokens)) AS tokens,
                   sum(sign) AS calls,
                   sum(sign * latency_ms) AS latency,
                   count(*) FILTER (WHERE sign > 0) AS added,
                   count(*) FILTER (WHERE sign < 0) AS removed
            FROM (SELECT rollupd.cost_row_is_valid(input_tokens, output_tokens, latency_ms, cost,
                             project_id, feature, model, created_at) AS valid,
                         project_id, feature, model, user_id,
                         date_trunc('hour', created_at, 'UTC') AS hour,
                         date_trunc('day', created_at, $4::text) AS day,
                         sign, cost, input_tokens, output_tokens, latency_ms
                  FROM contributions) AS c
            -- Per key and hour for cost_aggregates, per user and day for user_cost_aggregates: one
            -- pass, two hash tables (per user and hour would be nearly one group per event).
            GROUP BY GROUPING SETS ((valid, project_id, feature, model, hour, day), (valid, project_id, user_id, day))
        ), hour_up AS (
        \(upsert(period: "hour", bucket: "hour"))
        ), day_up AS (
        \(upsert(period: "day", bucket: "day"))
        ), user_day_up AS (
        \(userDayUpsert)
        )
        SELECT coalesce((SELECT sum(added) FROM fine WHERE valid AND NOT per_user), 0)::bigint,
               coalesce((SELECT sum(removed) FROM fine WHERE valid AND NOT per_user), 0)::bigint,
               (SELECT count(*) FROM hour_up) + (SELECT count(*) FROM day_up),
               ARRAY(SELECT id FROM hour_up WHERE call_count = 0 UNION ALL SELECT id FROM day_up WHERE call_count = 0)::text,
               coalesce((SELECT sum(added) FROM fine WHERE NOT valid AND NOT per_user), 0)::bigint,
               ARRAY(SELECT id FROM user_day_up WHERE call_count = 0)::text
        """
    }

    /// Records the window's invalid new rows, once each, and returns the ids recorded for the first
    /// time. Run only when the pass saw some: the same snapshot finds the same rows, and the
    /// common pass need not carry every row id through its aggregation.
    /// $1 watermark, $2 horizon, $3 first pass.
    static func rejectSQL(_ key: AdoptionKey) -> String { """
        WITH rejected AS (
            INSERT INTO rollupd.rejected_rows (source, row_id, reason)
            SELECT 'events', id::text, 'negative or missing tokens, latency, cost or key'
            FROM events
            WHERE \(XidWindow.predicate(key))
              AND NOT rollupd.cost_row_is_valid(input_tokens, output_tokens, latency_ms,
                  coalesce(verified_cost_usd, estimated_cost_usd), project_id, feature, model, created_at)
            ON CONFLICT DO NOTHING
            RETURNING row_id
        )
        SELECT (SELECT count(*) FROM rejected),
               (SELECT string_agg(row_id, ', ') FROM (SELECT row_id FROM rejected LIMIT 100) AS shown)
        """
    }

    /// Adds `fine`'s deltas to one period's buckets; avg_latency is recomputed from the sums.
    static func upsert(period: String, bucket: String) -> String {
        """
            INSERT INTO cost_aggregates AS ca (project_id, feature, model, period, period_start,
                total_cost, total_tokens, call_count, total_latency_ms, avg_latency)
            SELECT project_id, feature, model, '\(period)', \(bucket), sum(cost), sum(tokens), sum(calls), sum(latency),
                   coalesce(round(sum(latency)::numeric / nullif(sum(calls), 0), 2), 0)
            FROM fine WHERE valid AND NOT per_user
            GROUP BY project_id, feature, model, \(bucket)
            \(addToCostBucket)
            RETURNING id, call_count
        """
    }

    /// Adds a row's sums to the cost_aggregates bucket (alias `ca`) it meets; avg_latency is
    /// recomputed from the sums. Every writer of cost_aggregates uses it.
    static let addToCostBucket = """
        ON CONFLICT (project_id, feature, model, period, period_start) DO UPDATE SET
            total_cost = ca.total_cost + excluded.total_cost,
            total_tokens = ca.total_tokens + excluded.total_tokens,
            call_count = ca.call_count + excluded.call_count,
            total_latency_ms = ca.total_latency_ms + excluded.total_latency_ms,
            avg_latency = coalesce(round((ca.total_latency_ms + excluded.total_latency_ms)::numeric
                / nullif(ca.call_count + excluded.call_count, 0), 2), 0)
        """

    /// The same for user_cost_aggregates (alias `u`).
    static let addToUserBucket = """
        ON CONFLICT (user_id, period, period_start, project_id) DO UPDATE SET
            total_cost = u.total_cost + excluded.total_cost,
            total_tokens = u.total_tokens + excluded.total_tokens,
            call_count = u.call_count + excluded.call_count
        """

    /// The deltas per user, project and day, for user budgets; events without a user are left out.
    static let userDayUpsert = """
            INSERT INTO rollupd.user_cost_aggregates AS u (project_id, user_id, period, period_start, total_cost, total_tokens, call_count)
            SELECT project_id, user_id, 'day', day, sum(cost), sum(tokens), sum(calls)
            FROM fine WHERE valid AND per_user AND user_id IS NOT NULL
            GROUP BY project_id, user_id, day
            \(addToUserBucket)
            RETURNING id, call_count
        """

    /// Every hour and local day overlapping [from, to): $1 from, $2 to (epoch seconds), $3 time zone.
    static let boundsSQL = """
        SELECT date_trunc('hour', to_timestamp($1::float8), 'UTC') AS hour_from,
               date_trunc('hour', to_timestamp($2::float8) - interval '1 microsecond', 'UTC') + interval '1 hour' AS hour_to,
               date_trunc('day', to_timestamp($1::float8), $3::text) AS day_from,
               (date_trunc('day', (to_timestamp($2::float8) - interval '1 microsecond') AT TIME ZONE $3::text)
                   + interval '1 day') AT TIME ZONE $3::text AS day_to
        """

    /// $1 from, $2 to, $3 time zone.
    static let rebuildClearSQL = """
        WITH bounds AS (\(boundsSQL)), users AS (
            DELETE FROM rollupd.user_cost_aggregates u USING bounds b
            WHERE (u.period = 'hour' AND u.period_start >= b.hour_from AND u.period_start < b.hour_to)
               OR (u.period = 'day' AND u.period_start >= b.day_from AND u.period_start < b.day_to)
        )
        DELETE FROM cost_aggregates ca USING bounds b
        WHERE (ca.period = 'hour' AND ca.period_start >= b.hour_from AND ca.period_start < b.hour_to)
           OR (ca.period = 'day' AND ca.period_start >= b.day_from AND ca.period_start < b.day_to)
        """

    /// Recomputes the cleared buckets from the rows counted below the horizon ($4).
    static let rebuildSQL = """
        WITH bounds AS (\(boundsSQL)),
        counted AS (
            SELECT e.project_id, e.feature, e.model, e.user_id, e.created_at,
                   (e.input_tokens::bigint + e.output_tokens) AS tokens, e.latency_ms::bigint AS latency_ms,
                   coalesce(e.verified_cost_usd, e.estimated_cost_usd)::numeric AS cost
            FROM events e, bounds b
            WHERE ((e.created_at >= b.hour_from AND e.created_at < b.hour_to)
                OR (e.created_at >= b.day_from AND e.created_at < b.day_to))
              AND coalesce(e.rollupd_xid, '0'::xid8) < $4::xid8
              AND rollupd.cost_row_is_valid(e.input_tokens, e.output_tokens, e.latency_ms,
                  coalesce(e.verified_cost_usd, e.estimated_cost_usd), e.project_id, e.feature, e.model, e.created_at)
        ), users AS (
            INSERT INTO rollupd.user_cost_aggregates (project_id, user_id, period, period_start, total_cost, total_tokens, call_count)
            SELECT project_id, user_id, 'day', date_trunc('day', created_at, $3::text), sum(cost), sum(tokens), count(*)
            FROM counted, bounds b WHERE user_id IS NOT NULL AND created_at >= b.day_from AND created_at < b.day_to
            GROUP BY 1, 2, 4
        )
        INSERT INTO cost_aggregates (project_id, feature, model, period, period_start,
            total_cost, total_tokens, call_count, total_latency_ms, avg_latency)
        SELECT project_id, feature, model, 'hour', date_trunc('hour', created_at, 'UTC'),
               sum(cost), sum(tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
        FROM counted, bounds b WHERE created_at >= b.hour_from AND created_at < b.hour_to
        GROUP BY 1, 2, 3, 5
        UNION ALL
        SELECT project_id, feature, model, 'day', date_trunc('day', created_at, $3::text),
               sum(cost), sum(tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
        FROM counted, bounds b WHERE created_at >= b.day_from AND created_at < b.day_to
        GROUP BY 1, 2, 3, 5
        """
}
