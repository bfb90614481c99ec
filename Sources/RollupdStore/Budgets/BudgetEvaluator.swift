import Foundation
import Postgres
import RollupdCore

/// An alert the evaluation recorded.
public struct RecordedAlert: Sendable, Equatable {
    public var alertID: String
    public var budgetID: Int64
    public var channel: String
    public var kind: String
    public var threshold: Int
}

/// What one evaluation did.
public struct BudgetEvaluationReport: Sendable {
    public var budgetsEvaluated: Int
    public var recorded: [RecordedAlert]
    public var duration: Duration
}

/// Compares every enabled budget's spend in its current calendar period with its thresholds and
/// records the alerts due, in one statement: the evaluation and its budget_alerts rows are one
/// transaction, and the table's unique key makes each alert once per budget, period, kind and
/// threshold however often (or by however many instances) this runs.
///
/// Spend is exact in each budget's own zone. The rollups give what they have at their grain:
/// cost_aggregates' day buckets for the whole rollup-zone days inside the period and UTC hour
/// buckets for its ragged edges, user_cost_aggregates' day buckets for user budgets; buckets
/// count when they start inside the period. Where a period starts or ends off that grid (a
/// +05:30 or +05:45 midnight mid-hour; a user budget's midnight in another zone than the
/// rollups'), the raw `events` rows correct it: the part before the first whole bucket is added,
/// the rest of the last bucket taken away, counting exactly what the rollups count (rows below
/// the watermark and saved old versions below it). Per-user edges go through the product's
/// (project_id, user_id, created_at) index, only for the (user, project) pairs with a bucket
/// there. Configured sources have no raw-row correction: their rows at such an edge count by
/// the bucket they fall in (README, "Budget alerts"). Run right after a pass, it sees everything
/// that pass counted, so an alert is at most one poll interval behind the events that caused it.
public struct BudgetEvaluator: Sendable {
    public var defaultTimeZone: String
    public var settings: RollupdConfig.Budgets

    public init(defaultTimeZone: String, settings: RollupdConfig.Budgets) {
        self.defaultTimeZone = defaultTimeZone
        self.settings = settings
    }

    /// With the configuration's budgets settings; budgets without a zone use rollup.time_zone.
    public init(_ config: RollupdConfig) {
        self.init(defaultTimeZone: config.rollup.timeZone, settings: config.budgets)
    }

    /// - Parameter now: the evaluation instant (tests move it across period boundaries).
    public func evaluate(at now: Date = Date(), on connection: PGConnection) throws -> BudgetEvaluationReport {
        let started = ContinuousClock.now
        let result = try Self.withoutJIT(on: connection) {
            try $0.query(Self.evaluateSQL, [now.timeIntervalSince1970] + parameters, context: "evaluate budgets")
        }
        var recorded: [RecordedAlert] = []
        var evaluated = 0
        for row in result.rows {
            evaluated = try row.int(0)
            guard row[1] != nil else { continue }
            recorded.append(RecordedAlert(alertID: try row.string(1), budgetID: try row.int64(2), channel: try row.string(3),
                                          kind: try row.string(4), threshold: try row.int(5)))
        }
        return BudgetEvaluationReport(budgetsEvaluated: evaluated, recorded: recorded, duration: ContinuousClock.now - started)
    }

    var parameters: [any PGParameter] {
        [defaultTimeZone, defaultTimeZone, settings.forecastAfterDays, settings.weekStartsOnSunday, settings.periodClosedNotice]
    }

    /// Every enabled budget's spend in its current period, as the evaluation computes it, without
    /// recording anything (`rollupd budget list`).
    public func currentSpend(at now: Date = Date(), on connection: PGConnection) throws -> [Int64: (spend: String, periodStart: String, periodEnd: String)] {
        var spend: [Int64: (spend: String, periodStart: String, periodEnd: String)] = [:]
        for row in try Self.withoutJIT(on: connection, { try $0.query("""
            WITH \(Self.spendCTEs)
            SELECT id, trim_scale(spend)::text, to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM evaluated WHERE NOT closed
            """, [now.timeIntervalSince1970] + parameters, context: "budget spend") }).rows {
            spend[try row.int64(0)] = (try row.string(1), try row.string(2), try row.string(3))
        }
        return spend
    }

    /// The statement's cost estimate grows with the budgets and can pass jit_above_cost, and
    /// compiling its ~300 expressions takes seconds for a statement that runs in milliseconds:
    /// JIT is off for this one transaction.
    static func withoutJIT(on connection: PGConnection, _ body: (PGConnection) throws -> PGResult) throws -> PGResult {
        try connection.transaction { connection in
            try connection.query("SET LOCAL jit = off", context: "evaluate budgets")
            return try body(connection)
        }
    }

    /// $1 now (epoch seconds), $2 default zone, $3 the zone of cost_aggregates' day buckets,
    /// $4 forecast after days, $5 weeks start on Sunday, $6 period-closed notices.
    static let evaluateSQL = """
        WITH \(spendCTEs), due AS (\(dueSQL)
        """

    /// Each enabled budget's spend in its current period (and, with $6, the period just ended),
    /// ending in `evaluated`.
    static let spendCTEs = """
        budget AS (
            SELECT b.id, b.name, b.scope, coalesce(b.scope_value, '') AS value, b.scope_value, b.period, b.limit_usd,
                   b.thresholds, b.channel, coalesce(b.time_zone, $2::text) AS zone, to_timestamp($1::float8) AS at,
                   $4::float8 AS forecast_after_days
            FROM rollupd.budgets b WHERE b.enabled
        ), calendar AS (
            -- Each distinct (period, zone) once: its current period and the one before, as
            -- calendar periods on the zone's wall clock (date_trunc('week') starts on Monday).
            SELECT c.period, c.zone, w.closed, w.local_start AT TIME ZONE c.zone AS period_start,
                   (w.local_start + c.step) AT TIME ZONE c.zone AS period_end
            FROM (SELECT DISTINCT period, zone FROM budget) AS k
            CROSS JOIN LATERAL (
                SELECT k.period, k.zone, s.step, CASE k.period
                           WHEN 'day' THEN date_trunc('day', s.local_now)
                           WHEN 'week' THEN CASE WHEN $5::boolean THEN date_trunc('week', s.local_now + interval '1 day') - interval '1 day'
                                                 ELSE date_trunc('week', s.local_now) END
                           ELSE date_trunc('month', s.local_now) END AS local_start
                FROM (SELECT to_timestamp($1::float8) AT TIME ZONE k.zone AS local_now,
                             CASE k.period WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days'
                                           ELSE interval '1 month' END AS step) AS s
            ) AS c
            CROSS JOIN LATERAL (VALUES (false, c.local_start), (true, c.local_start - c.step)) AS w(closed, local_start)
        ), ranges AS (
            -- The rollups' whole days ($3's calendar) inside each period, read from day buckets;
            -- UTC hour buckets cover the ragged edges of a period in another zone.
            SELECT c.period, c.zone, c.closed, r.grain, r.lo, r.hi
            FROM calendar c
            CROSS JOIN LATERAL (SELECT
                (date_trunc('day', (c.period_start AT TIME ZONE $3::text) - interval '1 microsecond') + interval '1 day')
                    AT TIME ZONE $3::text AS first_day,
                date_trunc('day', c.period_end, $3::text) AS last_day) AS d0
            -- Day buckets only where their edges meet hour buckets' (a +05:30 rollup zone's days
            -- start mid-hour): otherwise an event could count in both.
            CROSS JOIN LATERAL (SELECT d0.first_day, d0.last_day, d0.first_day < d0.last_day
                AND (d0.first_day = c.period_start OR date_trunc('hour', d0.first_day) = d0.first_day)
                AND (d0.last_day = c.period_end OR date_trunc('hour', d0.last_day) = d0.last_day) AS use_days) AS d
            CROSS JOIN LATERAL (
                SELECT 'day', d.first_day, d.last_day WHERE d.use_days
                UNION ALL
                SELECT 'hour', c.period_start, CASE WHEN d.use_days THEN d.first_day ELSE c.period_end END
                UNION ALL
                SELECT 'hour', d.last_day, c.period_end WHERE d.use_days
                UNION ALL
                -- Buckets count by their start: the hour buckets above are the hours that start
                -- inside the period. Where its start or end falls mid-hour (a +05:30 or +05:45
                -- zone's midnight), raw events correct them exactly: the part of the period
                -- before the first whole hour is added, the rest of the last hour taken away.
                SELECT 'edge+', c.period_start, date_trunc('hour', c.period_start - interval '1 microsecond', 'UTC') + interval '1 hour'
                WHERE NOT (d.use_days AND d.first_day = c.period_start)
                UNION ALL
                SELECT 'edge-', c.period_end, date_trunc('hour', c.period_end - interval '1 microsecond', 'UTC') + interval '1 hour'
                WHERE NOT (d.use_days AND d.last_day = c.period_end)
            ) AS r(grain, lo, hi)
            WHERE r.lo < r.hi
        ), counted AS (
            -- What the rollups count of `events` (as migration 007 and CostRollup's rebuild select
            -- it): rows written below the watermark, and old versions saved below it that the
            -- next pass will subtract. Edges are read from these, so they agree with the buckets.
            SELECT coalesce((SELECT watermark FROM rollupd.sources WHERE source = 'events' AND initialized), '0'::xid8) AS watermark
        ), periods AS (
            -- The current period of every budget; with $6, also the one just ended, once, for
            -- budgets that alerted in it.
            SELECT b.*, c.closed, c.period_start, c.period_end
            FROM budget b JOIN calendar c ON c.period = b.period AND c.zone = b.zone
            WHERE NOT c.closed
               OR ($6::boolean
                   AND EXISTS (SELECT 1 FROM rollupd.budget_alerts a WHERE a.budget_id = b.id AND a.period_start = c.period_start
                               AND a.kind <> 'period_closed')
                   AND NOT EXISTS (SELECT 1 FROM rollupd.budget_alerts a WHERE a.budget_id = b.id AND a.period_start = c.period_start
                                   AND a.kind = 'period_closed'))
        ), groups AS (
            SELECT DISTINCT scope, value, period, zone, closed FROM periods WHERE scope <> 'user'
        ), edge_hours AS (
            SELECT DISTINCT h FROM ranges r,
                generate_series(date_trunc('hour', r.lo - interval '1 microsecond') + interval '1 hour',
                                r.hi - interval '1 microsecond', interval '1 hour') AS h
            WHERE r.grain = 'hour' AND EXISTS (SELECT 1 FROM groups g WHERE g.period = r.period AND g.zone = r.zone AND g.closed = r.closed)
        ), day_span AS (
            SELECT min(lo) AS lo, max(hi) AS hi FROM ranges r
            WHERE r.grain = 'day' AND EXISTS (SELECT 1 FROM groups g WHERE g.period = r.period AND g.zone = r.zone AND g.closed = r.closed)
        ), buckets AS (
            SELECT ca.period AS grain, ca.period_start AS bucket, ca.project_id, ca.feature, ca.model, ca.total_cost
            FROM day_span s JOIN cost_aggregates ca ON ca.period = 'day' AND ca.period_start >= s.lo AND ca.period_start < s.hi
            UNION ALL
            -- Hour by hour through the period_start index (a few dozen hours): a hash join
            -- would read every hour bucket kept.
            SELECT ca.period, ca.period_start, ca.project_id, ca.feature, ca.model, ca.total_cost
            FROM edge_hours e CROSS JOIN LATERAL (
                SELECT * FROM cost_aggregates c WHERE c.period_start = e.h AND c.period = 'hour') AS ca
        ), dims AS (
            -- Each bucket's spend toward the global total and its project, feature and model, in one pass.
            SELECT CASE WHEN GROUPING(project_id) = 0 THEN 'project' WHEN GROUPING(feature) = 0 THEN 'feature'
                        WHEN GROUPING(model) = 0 THEN 'model' ELSE 'global' END AS scope,
                   coalesce(project_id, feature, model, '') AS value, grain, bucket, sum(total_cost) AS cost
            FROM buckets
            GROUP BY grain, bucket, GROUPING SETS ((), (project_id), (feature), (model))
        ), edge_costs AS (
            -- The raw events of each distinct mid-hour edge (under an hour each), by dimension.
            SELECT e.lo, e.hi, CASE WHEN GROUPING(x.project_id) = 0 THEN 'project' WHEN GROUPING(x.feature) = 0 THEN 'feature'
                                    WHEN GROUPING(x.model) = 0 THEN 'model' ELSE 'global' END AS scope,
                   coalesce(x.project_id, x.feature, x.model, '') AS value, sum(x.cost) AS cost
            FROM (SELECT DISTINCT r.lo, r.hi FROM ranges r WHERE r.grain IN ('edge+', 'edge-')
                  AND EXISTS (SELECT 1 FROM groups g WHERE g.period = r.period AND g.zone = r.zone AND g.closed = r.closed)) AS e
            CROSS JOIN counted k
            CROSS JOIN LATERAL (
                SELECT ev.project_id, ev.feature, ev.model, coalesce(ev.verified_cost_usd, ev.estimated_cost_usd)::numeric AS cost
                FROM events ev
                WHERE ev.created_at >= e.lo AND ev.created_at < e.hi AND coalesce(ev.rollupd_xid, '0'::xid8) < k.watermark
                  AND rollupd.cost_row_is_valid(ev.input_tokens, ev.output_tokens, ev.latency_ms,
                      coalesce(ev.verified_cost_usd, ev.estimated_cost_usd), ev.project_id, ev.feature, ev.model, ev.created_at)
                UNION ALL
                SELECT c.project_id, c.feature, c.model, coalesce(c.verified_cost_usd, c.estimated_cost_usd)
                FROM rollupd.event_changes c
                WHERE c.created_at >= e.lo AND c.created_at < e.hi AND coalesce(c.old_xid, '0'::xid8) < k.watermark
                  AND rollupd.cost_row_is_valid(c.input_tokens, c.output_tokens, c.latency_ms,
                      coalesce(c.verified_cost_usd, c.estimated_cost_usd), c.project_id, c.feature, c.model, c.created_at)
            ) AS x
            GROUP BY e.lo, e.hi, GROUPING SETS ((), (x.project_id), (x.feature), (x.model))
        ), group_spend AS (
            SELECT s.scope, s.value, s.period, s.zone, s.closed, sum(s.cost) AS spend
            FROM (
                SELECT g.scope, g.value, g.period, g.zone, g.closed, d.cost
                FROM groups g
                JOIN ranges r ON r.period = g.period AND r.zone = g.zone AND r.closed = g.closed
                JOIN dims d ON d.scope = g.scope AND d.value = g.value AND d.grain = r.grain AND d.bucket >= r.lo AND d.bucket < r.hi
                UNION ALL
                SELECT g.scope, g.value, g.period, g.zone, g.closed, CASE r.grain WHEN 'edge-' THEN -x.cost ELSE x.cost END
                FROM groups g
                JOIN ranges r ON r.period = g.period AND r.zone = g.zone AND r.closed = g.closed
                JOIN edge_costs x ON x.lo = r.lo AND x.hi = r.hi AND x.scope = g.scope AND x.value = g.value
            ) AS s
            GROUP BY 1, 2, 3, 4, 5
        ), user_spend AS (
            -- Per-user spend is kept by day of the rollups' zone: the days that start inside the
            -- period, corrected like the hours above where the period starts or ends mid-day.
            SELECT p.id, p.closed, sum(u.total_cost) AS spend
            FROM periods p
            JOIN rollupd.user_cost_aggregates u ON u.user_id = p.scope_value AND u.period = 'day'
                                       AND u.period_start >= p.period_start AND u.period_start < p.period_end
            WHERE p.scope = 'user'
            GROUP BY p.id, p.closed
        ), user_grid AS MATERIALIZED (
            -- A user budget in another zone: [start, next rollup-zone midnight) added, [end, next
            -- midnight) taken away, from raw events; computed once per (period, zone), not per
            -- budget (materialized: inlined, the zone arithmetic ran once per budget).
            SELECT c.period, c.zone, c.closed, e.sign, e.lo, e.hi, date_trunc('day', e.lo, $3::text) AS day
            FROM calendar c
            CROSS JOIN LATERAL (VALUES (1, c.period_start), (-1, c.period_end)) AS x(sign, at)
            CROSS JOIN LATERAL (SELECT x.sign, x.at AS lo,
                (date_trunc('day', (x.at AT TIME ZONE $3::text) - interval '1 microsecond') + interval '1 day') AT TIME ZONE $3::text AS hi) AS e
            WHERE e.lo < e.hi
        ), user_edges AS (
            -- Only the (user, project) pairs with a day bucket there can have counted rows, so
            -- each is read through the product's (project_id, user_id, created_at) index: a few
            -- rows per active user, none for idle ones.
            SELECT p.id, p.closed, g.sign, g.lo, g.hi, g.day, p.scope_value AS user_id
            FROM user_grid g
            JOIN periods p ON p.scope = 'user' AND p.period = g.period AND p.zone = g.zone AND p.closed = g.closed
        ), user_edge_spend AS (
            SELECT ue.id, ue.closed, sum(ue.sign * x.cost) AS spend
            FROM user_edges ue
            CROSS JOIN counted k
            JOIN rollupd.user_cost_aggregates u ON u.user_id = ue.user_id AND u.period = 'day' AND u.period_start = ue.day
            CROSS JOIN LATERAL (
                SELECT coalesce(ev.verified_cost_usd, ev.estimated_cost_usd)::numeric AS cost
                FROM events ev
                WHERE ev.project_id = u.project_id AND ev.user_id = u.user_id AND ev.created_at >= ue.lo AND ev.created_at < ue.hi
                  AND coalesce(ev.rollupd_xid, '0'::xid8) < k.watermark
                  AND rollupd.cost_row_is_valid(ev.input_tokens, ev.output_tokens, ev.latency_ms,
                      coalesce(ev.verified_cost_usd, ev.estimated_cost_usd), ev.project_id, ev.feature, ev.model, ev.created_at)
                UNION ALL
                SELECT coalesce(c.verified_cost_usd, c.estimated_cost_usd)
                FROM rollupd.event_changes c
                WHERE c.project_id = u.project_id AND c.user_id = u.user_id AND c.created_at >= ue.lo AND c.created_at < ue.hi
                  AND coalesce(c.old_xid, '0'::xid8) < k.watermark
                  AND rollupd.cost_row_is_valid(c.input_tokens, c.output_tokens, c.latency_ms,
                      coalesce(c.verified_cost_usd, c.estimated_cost_usd), c.project_id, c.feature, c.model, c.created_at)
            ) AS x
            GROUP BY ue.id, ue.closed
        ), evaluated AS (
            SELECT p.*, coalesce(us.spend, gs.spend, 0) + coalesce(ue.spend, 0) AS spend
            FROM periods p
            LEFT JOIN user_spend us ON p.scope = 'user' AND us.id = p.id AND us.closed = p.closed
            LEFT JOIN user_edge_spend ue ON p.scope = 'user' AND ue.id = p.id AND ue.closed = p.closed
            LEFT JOIN group_spend gs ON p.scope <> 'user' AND gs.scope = p.scope AND gs.value = p.value
                                    AND gs.period = p.period AND gs.zone = p.zone AND gs.closed = p.closed
        )
        """

    /// The alerts due, inserted once each; continues `spendCTEs` inside `due AS (`.
    static let dueSQL = """
            SELECT e.*, 'threshold' AS kind, t.threshold, NULL::numeric AS forecast
            FROM evaluated e CROSS JOIN LATERAL unnest(e.thresholds) AS t(threshold)
            WHERE NOT e.closed AND e.spend > 0 AND e.spend * 100 >= t.threshold * e.limit_usd
            UNION ALL
            -- Linear extrapolation once enough of the period has passed, while still under the limit.
            SELECT e.*, 'forecast', 0,
                   round(e.spend * extract(epoch FROM e.period_end - e.period_start) / extract(epoch FROM e.at - e.period_start), 6)
            FROM evaluated e
            WHERE NOT e.closed AND e.spend < e.limit_usd AND e.at > e.period_start
              AND e.at - e.period_start >= e.forecast_after_days * interval '1 day'
              AND e.spend * extract(epoch FROM e.period_end - e.period_start) > e.limit_usd * extract(epoch FROM e.at - e.period_start)
            UNION ALL
            SELECT e.*, 'period_closed', 0, NULL FROM evaluated e WHERE e.closed
        ), inserted AS (
            INSERT INTO rollupd.budget_alerts (alert_id, budget_id, budget_name, scope, scope_value, period, time_zone,
                period_start, period_end, kind, threshold, limit_usd, spend_usd, forecast_usd, channel)
            SELECT 'rollupd-budget-' || d.id || '-' || extract(epoch FROM d.period_start)::bigint || '-'
                       || CASE d.kind WHEN 'threshold' THEN 't' || d.threshold WHEN 'forecast' THEN 'forecast' ELSE 'closed' END,
                   d.id, d.name, d.scope, d.scope_value, d.period, d.zone, d.period_start, d.period_end, d.kind, d.threshold,
                   d.limit_usd, d.spend, d.forecast, d.channel
            FROM due d
            WHERE NOT EXISTS (SELECT 1 FROM rollupd.budget_alerts a WHERE a.budget_id = d.id AND a.period_start = d.period_start
                              AND a.kind = d.kind AND a.threshold = d.threshold)
            ORDER BY d.id, d.kind, d.threshold
            ON CONFLICT DO NOTHING
            RETURNING alert_id, budget_id, channel, kind, threshold
        )
        SELECT (SELECT count(*) FROM budget)::int, i.alert_id, i.budget_id, i.channel, i.kind, i.threshold
        FROM (SELECT 1) AS one LEFT JOIN inserted i ON true
        """
}
