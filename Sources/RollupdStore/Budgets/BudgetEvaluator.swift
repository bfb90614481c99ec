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
/// Spend comes from rollups only: cost_aggregates (user_cost_aggregates for user budgets), day
/// buckets when the budget's zone is the rollups' zone, UTC hour buckets otherwise. Run right
/// after a pass, it sees everything that pass counted, so an alert is at most one poll interval
/// behind the events that caused it.
public struct BudgetEvaluator: Sendable {
    public var defaultTimeZone: String
    public var settings: RollupdConfig.Budgets

    public init(defaultTimeZone: String, settings: RollupdConfig.Budgets) {
        self.defaultTimeZone = defaultTimeZone
        self.settings = settings
    }

    /// - Parameter now: the evaluation instant (tests move it across period boundaries).
    public func evaluate(at now: Date = Date(), on connection: PGConnection) throws -> BudgetEvaluationReport {
        let started = ContinuousClock.now
        let result = try connection.query(Self.evaluateSQL, [
            now.timeIntervalSince1970, defaultTimeZone, defaultTimeZone, settings.forecastAfterDays,
            settings.weekStartsOnSunday, settings.periodClosedNotice,
        ], context: "evaluate budgets")
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

    /// $1 now (epoch seconds), $2 default zone, $3 the zone of cost_aggregates' day buckets,
    /// $4 forecast after days, $5 weeks start on Sunday, $6 period-closed notices.
    static let evaluateSQL = """
        WITH budget AS (
            SELECT b.id, b.name, b.scope, b.scope_value, b.period, b.limit_usd, b.thresholds, b.channel,
                   coalesce(b.time_zone, $2::text) AS zone, to_timestamp($1::float8) AS at
            FROM budgets b WHERE b.enabled
        ), local AS (
            SELECT budget.*, at AT TIME ZONE zone AS local_now,
                   CASE period WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days' ELSE interval '1 month' END AS step
            FROM budget
        ), bounds AS (
            -- Calendar periods on the zone's wall clock; date_trunc('week') starts on Monday.
            SELECT local.*, CASE period
                       WHEN 'day' THEN date_trunc('day', local_now)
                       WHEN 'week' THEN CASE WHEN $5::boolean THEN date_trunc('week', local_now + interval '1 day') - interval '1 day'
                                             ELSE date_trunc('week', local_now) END
                       ELSE date_trunc('month', local_now) END AS local_start
            FROM local
        ), periods AS (
            SELECT bounds.*, false AS closed, local_start AT TIME ZONE zone AS period_start,
                   (local_start + step) AT TIME ZONE zone AS period_end
            FROM bounds
            UNION ALL
            -- The period that just ended, once, for budgets that alerted in it.
            SELECT bounds.*, true, (local_start - step) AT TIME ZONE zone, local_start AT TIME ZONE zone
            FROM bounds
            WHERE $6::boolean
              AND EXISTS (SELECT 1 FROM budget_alerts a WHERE a.budget_id = bounds.id
                          AND a.period_start = (bounds.local_start - bounds.step) AT TIME ZONE bounds.zone AND a.kind <> 'period_closed')
              AND NOT EXISTS (SELECT 1 FROM budget_alerts a WHERE a.budget_id = bounds.id
                          AND a.period_start = (bounds.local_start - bounds.step) AT TIME ZONE bounds.zone AND a.kind = 'period_closed')
        ), graded AS (
            SELECT periods.*, CASE WHEN zone = $3::text THEN 'day' ELSE 'hour' END AS grain FROM periods
        ), needed AS (
            SELECT DISTINCT scope, coalesce(scope_value, '') AS value, grain FROM graded WHERE scope <> 'user'
        ), span AS (
            SELECT grain, min(period_start) AS lo, max(period_end) AS hi FROM graded WHERE scope <> 'user' GROUP BY grain
        ), keyed AS (
            -- Each bucket counts toward the global total and its project, feature and model.
            SELECT g.scope, g.value, ca.period AS grain, ca.period_start AS bucket, ca.total_cost
            FROM span s
            JOIN cost_aggregates ca ON ca.period = s.grain AND ca.period_start >= s.lo AND ca.period_start < s.hi
            CROSS JOIN LATERAL (VALUES ('global', ''), ('project', ca.project_id), ('feature', ca.feature), ('model', ca.model)) AS g(scope, value)
        ), dims AS (
            SELECT k.scope, k.value, k.grain, k.bucket, sum(k.total_cost) AS cost
            FROM keyed k JOIN needed n ON n.scope = k.scope AND n.value = k.value AND n.grain = k.grain
            GROUP BY 1, 2, 3, 4
        ), spend AS (
            SELECT p.id, p.closed, coalesce(sum(d.cost), 0) AS spend
            FROM graded p
            LEFT JOIN dims d ON d.scope = p.scope AND d.value = coalesce(p.scope_value, '') AND d.grain = p.grain
                            AND d.bucket >= p.period_start AND d.bucket < p.period_end
            WHERE p.scope <> 'user'
            GROUP BY p.id, p.closed
            UNION ALL
            SELECT p.id, p.closed, coalesce((
                SELECT sum(u.total_cost) FROM user_cost_aggregates u
                WHERE u.user_id = p.scope_value AND u.period = p.grain
                  AND u.period_start >= p.period_start AND u.period_start < p.period_end), 0)
            FROM graded p WHERE p.scope = 'user'
        ), evaluated AS (
            SELECT p.*, s.spend FROM graded p JOIN spend s ON s.id = p.id AND s.closed = p.closed
        ), due AS (
            SELECT e.*, 'threshold' AS kind, t.threshold, NULL::numeric AS forecast
            FROM evaluated e CROSS JOIN LATERAL (SELECT DISTINCT unnest(e.thresholds)) AS t(threshold)
            WHERE NOT e.closed AND e.spend * 100 >= t.threshold * e.limit_usd
            UNION ALL
            -- Linear extrapolation once enough of the period has passed, while still under the limit.
            SELECT e.*, 'forecast', 0,
                   round(e.spend * extract(epoch FROM e.period_end - e.period_start) / extract(epoch FROM e.at - e.period_start), 6)
            FROM evaluated e
            WHERE NOT e.closed AND e.spend < e.limit_usd AND e.at > e.period_start
              AND e.at - e.period_start >= $4::float8 * interval '1 day'
              AND e.spend * extract(epoch FROM e.period_end - e.period_start) > e.limit_usd * extract(epoch FROM e.at - e.period_start)
            UNION ALL
            SELECT e.*, 'period_closed', 0, NULL FROM evaluated e WHERE e.closed
        ), inserted AS (
            INSERT INTO budget_alerts (alert_id, budget_id, budget_name, scope, scope_value, period, time_zone,
                period_start, period_end, kind, threshold, limit_usd, spend_usd, forecast_usd, channel)
            SELECT 'rollupd-budget-' || d.id || '-' || extract(epoch FROM d.period_start)::bigint || '-'
                       || CASE d.kind WHEN 'threshold' THEN 't' || d.threshold WHEN 'forecast' THEN 'forecast' ELSE 'closed' END,
                   d.id, d.name, d.scope, d.scope_value, d.period, d.zone, d.period_start, d.period_end, d.kind, d.threshold,
                   d.limit_usd, d.spend, d.forecast, d.channel
            FROM due d
            WHERE NOT EXISTS (SELECT 1 FROM budget_alerts a WHERE a.budget_id = d.id AND a.period_start = d.period_start
                              AND a.kind = d.kind AND a.threshold = d.threshold)
            ORDER BY d.id, d.kind, d.threshold
            ON CONFLICT DO NOTHING
            RETURNING alert_id, budget_id, channel, kind, threshold
        )
        SELECT (SELECT count(*) FROM budget)::int, i.alert_id, i.budget_id, i.channel, i.kind, i.threshold
        FROM (SELECT 1) AS one LEFT JOIN inserted i ON true
        """
}
