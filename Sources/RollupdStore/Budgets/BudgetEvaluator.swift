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
/// Spend comes from rollups only: cost_aggregates, the day buckets of the whole rollup-zone days
/// inside the period and UTC hour buckets for the rest (the ragged edges of a budget in another
/// zone); user budgets read user_cost_aggregates, which has day buckets only. Run right
/// after a pass, it sees everything that pass counted, so an alert is at most one poll interval
/// behind the events that caused it.
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
        let result = try connection.query(Self.evaluateSQL, [now.timeIntervalSince1970] + parameters, context: "evaluate budgets")
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
        for row in try connection.query("""
            WITH \(Self.spendCTEs)
            SELECT id, trim_scale(spend)::text, to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM evaluated WHERE NOT closed
            """, [now.timeIntervalSince1970] + parameters, context: "budget spend").rows {
            spend[try row.int64(0)] = (try row.string(1), try row.string(2), try row.string(3))
        }
        return spend
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
            ) AS r(grain, lo, hi)
            WHERE r.lo < r.hi
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
            SELECT ca.period, ca.period_start, ca.project_id, ca.feature, ca.model, ca.total_cost
            FROM edge_hours e JOIN cost_aggregates ca ON ca.period = 'hour' AND ca.period_start = e.h
        ), dims AS (
            -- Each bucket's spend toward the global total and its project, feature and model, in one pass.
            SELECT CASE WHEN GROUPING(project_id) = 0 THEN 'project' WHEN GROUPING(feature) = 0 THEN 'feature'
                        WHEN GROUPING(model) = 0 THEN 'model' ELSE 'global' END AS scope,
                   coalesce(project_id, feature, model, '') AS value, grain, bucket, sum(total_cost) AS cost
            FROM buckets
            GROUP BY grain, bucket, GROUPING SETS ((), (project_id), (feature), (model))
        ), group_spend AS (
            SELECT g.scope, g.value, g.period, g.zone, g.closed, sum(d.cost) AS spend
            FROM groups g
            JOIN ranges r ON r.period = g.period AND r.zone = g.zone AND r.closed = g.closed
            JOIN dims d ON d.scope = g.scope AND d.value = g.value AND d.grain = r.grain AND d.bucket >= r.lo AND d.bucket < r.hi
            GROUP BY 1, 2, 3, 4, 5
        ), user_spend AS (
            -- Per-user spend is kept by day of the rollups' zone: the days that start inside the
            -- period (exact when the budget's zone is the rollups').
            SELECT p.id, p.closed, sum(u.total_cost) AS spend
            FROM periods p
            JOIN rollupd.user_cost_aggregates u ON u.user_id = p.scope_value AND u.period = 'day'
                                       AND u.period_start >= p.period_start AND u.period_start < p.period_end
            WHERE p.scope = 'user'
            GROUP BY p.id, p.closed
        ), evaluated AS (
            SELECT p.*, coalesce(us.spend, gs.spend, 0) AS spend
            FROM periods p
            LEFT JOIN user_spend us ON p.scope = 'user' AND us.id = p.id AND us.closed = p.closed
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
