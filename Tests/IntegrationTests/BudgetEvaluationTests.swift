import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// Budget evaluation against real rollups: which alerts are recorded, once, with which spend.
/// Expected spend is always summed straight from the raw events (`rawSpend`), never read back
/// from the rollups the evaluator reads.
@Suite struct BudgetEvaluationTests {
    static let settings = RollupdConfig.Budgets(evaluateInterval: .seconds(60), forecastAfterDays: 3, periodClosedNotice: true)

    /// 40% -> 110% in one pass records 50, 80 and 100 at once; evaluating again records nothing.
    @Test func everyThresholdCrossedInOneJumpIsRecordedOnce() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "UTC")
            let evaluator = BudgetEvaluator(defaultTimeZone: "UTC", settings: Self.settings)
            let now = try date("2026-11-23T12:00:00Z")
            let budget = try insertBudget(on: connection, name: "daily total", scope: "global", value: nil, period: "day", limit: "100")
            try insertSpend(on: connection, usd: "40", at: "2026-11-23T08:00:00Z")
            _ = try engine.catchUp(.events, on: connection)
            #expect(try evaluator.evaluate(at: now, on: connection).recorded == [])

            try insertSpend(on: connection, usd: "35", at: "2026-11-23T09:00:00Z")
            try insertSpend(on: connection, usd: "35", at: "2026-11-23T10:00:00Z")
            _ = try engine.catchUp(.events, on: connection)
            let report = try evaluator.evaluate(at: now, on: connection)
            #expect(report.recorded.map(\.threshold).sorted() == [50, 80, 100])
            #expect(Set(report.recorded.map(\.kind)) == ["threshold"])
            #expect(try evaluator.evaluate(at: now, on: connection).recorded == [])

            let rows = try connection.query("""
                SELECT threshold, spend_usd::text, alert_id FROM rollupd.budget_alerts WHERE budget_id = $1 ORDER BY threshold
                """, [budget]).rows
            let expected = try rawSpend(on: connection, from: "2026-11-23T00:00:00Z", to: "2026-11-24T00:00:00Z")
            #expect(rows.count == 3)
            for row in rows { #expect(Decimal(string: try row.string(1)) == expected) }
            #expect(try rows[0].string(2) == "rollupd-budget-\(budget)-\(Int(try date("2026-11-23T00:00:00Z").timeIntervalSince1970))-t50")
        }
    }

    /// Budgets of every scope over a random workload: each alert recorded is exactly the set the
    /// raw events call for, and carries the raw spend of its scope and period.
    @Test func everyScopeSeesTheSpendOfItsOwnRows() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "UTC")
            var random = SeededRandom(seed: 77)
            // 40 days back: the current month's first hours, where UTC and New York months differ, have events.
            try Workload.insertEvents(count: 1500, maxAgeHours: 24 * 40, random: &random, on: connection)
            try Workload.verifySome(40, random: &random, on: connection)
            try Workload.reassignUsers(30, random: &random, on: connection)
            _ = try engine.catchUp(.events, on: connection)
            try Workload.deleteSome(30, random: &random, on: connection)
            _ = try engine.catchUp(.events, on: connection)

            let scopes: [(scope: String, column: String?, values: [String?])] = [
                ("global", nil, [nil]), ("project", "project_id", Workload.projects), ("feature", "feature", Workload.features),
                ("model", "model", Workload.models), ("user", "user_id", Workload.users.compactMap { $0 } + ["u-moved"]),
            ]
            // Limits chosen so that the spends land on all sides of the thresholds. New York's
            // month is read from UTC day buckets plus hour buckets (or, per user, raw events) at its edges.
            let zones = ["UTC", "America/New_York"]
            for zone in zones {
                for (scope, _, values) in scopes {
                    for (index, value) in values.enumerated() {
                        _ = try insertBudget(on: connection, name: "\(zone) \(scope) \(value ?? "all")", scope: scope, value: value,
                                             period: "month", limit: String(5 + index * 7), thresholds: [10, 50, 100, 400], timeZone: zone)
                    }
                }
            }
            let now = Date()
            let evaluator = BudgetEvaluator(defaultTimeZone: "UTC", settings: RollupdConfig.Budgets(forecastAfterDays: 40))
            _ = try evaluator.evaluate(at: now, on: connection)

            var expectedAlerts: Set<String> = []
            for zone in zones {
                // The month's bounds, by wall-clock arithmetic (not date_trunc's zone argument).
                let month = try connection.query("""
                    SELECT to_char(date_trunc('month', to_timestamp($1::float8) AT TIME ZONE $2) AT TIME ZONE $2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                           to_char((date_trunc('month', to_timestamp($1::float8) AT TIME ZONE $2) + interval '1 month') AT TIME ZONE $2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                    """, [now.timeIntervalSince1970, zone]).singleRow("month")
                let (from, to) = (try month.string(0), try month.string(1))
                for (scope, column, values) in scopes {
                    for (index, value) in values.enumerated() {
                        // Every scope exact in the budget's own zone, user budgets too (their
                        // New York month's edges are read from raw events).
                        let (lo, hi) = (from, to)
                        let spend = try rawSpend(on: connection, from: lo, to: hi, column: column, value: value)
                        let limit = Decimal(5 + index * 7)
                        for threshold in [10, 50, 100, 400] where spend * 100 >= Decimal(threshold) * limit {
                            expectedAlerts.insert("\(zone) \(scope) \(value ?? "all")|\(threshold)|\(spend)")
                        }
                    }
                }
            }
            let actual = Set(try connection.query("""
                SELECT budget_name || '|' || threshold || '|' || trim_scale(spend_usd) FROM rollupd.budget_alerts
                """).rows.map { try $0.string(0) }.map { line -> String in
                    // Decimal prints without trailing zeros, as trim_scale does.
                    let parts = line.split(separator: "|").map(String.init)
                    return "\(parts[0])|\(parts[1])|\(Decimal(string: parts[2])!)"
                })
            #expect(expectedAlerts.count > 20)
            #expect(actual == expectedAlerts)
        }
    }

    /// Day budgets in Asia/Kolkata (+05:30): the period turns at local midnight, 18:30 UTC, and
    /// the new day starts from nothing. A week budget in New York (hour buckets, the rollups'
    /// zone being UTC) turns on Monday 00:00 local.
    @Test func periodsRollOverAtLocalMidnightInTheBudgetsZone() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "Asia/Kolkata")
            let evaluator = BudgetEvaluator(defaultTimeZone: "Asia/Kolkata", settings: RollupdConfig.Budgets(forecastAfterDays: 40, periodClosedNotice: true))
            let daily = try insertBudget(on: connection, name: "kolkata day", scope: "global", value: nil, period: "day", limit: "10", thresholds: [50])
            let weekly = try insertBudget(on: connection, name: "ny week", scope: "global", value: nil, period: "week", limit: "10",
                                          thresholds: [50], timeZone: "America/New_York")
            // 23:50 and 00:10 Kolkata time; Sunday 22:50 and 23:10 in New York.
            try insertSpend(on: connection, usd: "6", at: "2026-11-23T18:20:00Z")
            try insertSpend(on: connection, usd: "6", at: "2026-11-23T18:40:00Z")
            // Monday 00:30 in New York (05:30 UTC on the 30th): a new week.
            try insertSpend(on: connection, usd: "7", at: "2026-11-30T05:30:00Z")
            _ = try engine.catchUp(.events, on: connection)

            _ = try evaluator.evaluate(at: try date("2026-11-23T18:29:00Z"), on: connection)
            _ = try evaluator.evaluate(at: try date("2026-11-23T18:50:00Z"), on: connection)
            _ = try evaluator.evaluate(at: try date("2026-11-30T06:00:00Z"), on: connection)
            let alerts = try connection.query("""
                SELECT budget_id, kind, to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), trim_scale(spend_usd)::text
                FROM rollupd.budget_alerts ORDER BY budget_id, period_start, kind
                """).rows.map { "\(try $0.int64(0))|\(try $0.string(1))|\(try $0.string(2))|\(try $0.string(3))" }
            // Ordered by budget, period, then kind (period_closed sorts before threshold). Each
            // closed notice is written by the first evaluation in the next period.
            #expect(alerts == [
                "\(daily)|period_closed|2026-11-22T18:30Z|6",
                "\(daily)|threshold|2026-11-22T18:30Z|6",
                "\(daily)|threshold|2026-11-23T18:30Z|6",
                "\(daily)|threshold|2026-11-29T18:30Z|7",
                "\(weekly)|period_closed|2026-11-23T05:00Z|12",
                "\(weekly)|threshold|2026-11-23T05:00Z|12",
                "\(weekly)|threshold|2026-11-30T05:00Z|7",
            ])
            // The same periods as the raw rows give them.
            #expect(try rawSpend(on: connection, from: "2026-11-22T18:30:00Z", to: "2026-11-23T18:30:00Z") == 6)
            #expect(try rawSpend(on: connection, from: "2026-11-23T05:00:00Z", to: "2026-11-30T05:00:00Z") == 12)
        }
    }

    /// The period bounds the evaluator records equal Foundation's Calendar's for the same zone
    /// and instant: DST days of 23 and 25 hours, a month that starts on the previous UTC day,
    /// Monday and Sunday weeks.
    @Test(arguments: [false, true])
    func periodBoundsAgreeWithFoundationsCalendar(weekStartsOnSunday: Bool) async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let cases: [(CalendarPeriod, String, String)] = [
                (.day, "America/Los_Angeles", "2026-11-01T20:00:00Z"),  // 25 hours
                (.day, "America/Los_Angeles", "2026-03-08T20:00:00Z"),  // 23 hours
                (.day, "Asia/Kolkata", "2026-11-23T18:45:00Z"),         // already the 24th there
                (.week, "UTC", "2026-11-25T12:00:00Z"),                 // a Wednesday
                (.week, "America/New_York", "2026-11-29T23:30:00Z"),    // Sunday evening there
                (.month, "Asia/Kolkata", "2026-02-28T20:00:00Z"),       // already March there
                (.month, "Europe/Berlin", "2026-10-31T23:30:00Z"),      // November there, after DST ended
            ]
            let evaluator = BudgetEvaluator(defaultTimeZone: "UTC",
                                            settings: RollupdConfig.Budgets(forecastAfterDays: 40, weekStartsOnSunday: weekStartsOnSunday))
            for (period, zone, instant) in cases {
                let at = try date(instant)
                let expected = period.interval(containing: at, timeZone: try #require(TimeZone(identifier: zone)),
                                               weekStart: weekStartsOnSunday ? 1 : 2)
                let budget = try insertBudget(on: connection, name: "\(period) \(zone)", scope: "global", value: nil,
                                              period: period.rawValue, limit: "0.01", thresholds: [1], timeZone: zone)
                // Spend mid-period, clear of the half-hour edges a +05:30 zone has against UTC buckets.
                let middle = expected.start.addingTimeInterval(expected.duration / 2)
                try insertSpend(on: connection, usd: "1", at: ISO8601DateFormatter().string(from: middle))
                _ = try RollupEngine(timeZone: "UTC").catchUp(.events, on: connection)
                try connection.query("UPDATE rollupd.budgets SET enabled = (id = $1)", [budget])
                _ = try evaluator.evaluate(at: at, on: connection)
                let row = try connection.query("""
                    SELECT extract(epoch FROM period_start)::float8, extract(epoch FROM period_end)::float8
                    FROM rollupd.budget_alerts WHERE budget_id = $1
                    """, [budget]).singleRow("alert of \(period) \(zone)")
                #expect(try row.double(0) == expected.start.timeIntervalSince1970, "\(period) in \(zone) at \(instant): start")
                #expect(try row.double(1) == expected.end.timeIntervalSince1970, "\(period) in \(zone) at \(instant): end")
            }
        }
    }

    /// After three days a month's spend is extrapolated; above the limit, one forecast.
    @Test func aForecastIsRecordedOnceWhenTheTrendExceedsTheLimit() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "UTC")
            let evaluator = BudgetEvaluator(defaultTimeZone: "UTC", settings: RollupdConfig.Budgets(forecastAfterDays: 3))
            let budget = try insertBudget(on: connection, name: "monthly", scope: "project", value: "acme", period: "month", limit: "100", thresholds: [90])
            try insertSpend(on: connection, usd: "20", at: "2026-11-01T10:00:00Z", project: "acme")
            try insertSpend(on: connection, usd: "500", at: "2026-11-01T11:00:00Z", project: "other")  // another project's spend
            _ = try engine.catchUp(.events, on: connection)
            // Day 2: 20 spent would extrapolate to 300, but too early to say.
            #expect(try evaluator.evaluate(at: try date("2026-11-02T00:00:00Z"), on: connection).recorded == [])
            try insertSpend(on: connection, usd: "20", at: "2026-11-08T10:00:00Z", project: "acme")
            _ = try engine.catchUp(.events, on: connection)
            // Day 10 (9 days passed): 40 spent, 40 * 30 / 9 = 133.33 forecast.
            let report = try evaluator.evaluate(at: try date("2026-11-10T00:00:00Z"), on: connection)
            #expect(report.recorded.map(\.kind) == ["forecast"])
            let forecast = try connection.query("SELECT round(forecast_usd, 2)::text, spend_usd::text FROM rollupd.budget_alerts WHERE budget_id = $1", [budget])
                .singleRow("forecast")
            #expect(try forecast.string(0) == "133.33")
            #expect(Decimal(string: try forecast.string(1)) == 40)
            #expect(try evaluator.evaluate(at: try date("2026-11-12T00:00:00Z"), on: connection).recorded == [])
        }
    }

    /// A budget under its trend gets no forecast; a disabled one is not evaluated at all.
    @Test func noForecastUnderTheTrendAndNothingForDisabledBudgets() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let evaluator = BudgetEvaluator(defaultTimeZone: "UTC", settings: RollupdConfig.Budgets(forecastAfterDays: 3))
            _ = try insertBudget(on: connection, name: "calm", scope: "global", value: nil, period: "month", limit: "1000")
            let disabled = try insertBudget(on: connection, name: "off", scope: "global", value: nil, period: "month", limit: "1")
            try connection.query("UPDATE rollupd.budgets SET enabled = false WHERE id = $1", [disabled])
            try insertSpend(on: connection, usd: "50", at: "2026-11-05T10:00:00Z")
            _ = try RollupEngine(timeZone: "UTC").catchUp(.events, on: connection)
            let report = try evaluator.evaluate(at: try date("2026-11-20T00:00:00Z"), on: connection)
            #expect(report.budgetsEvaluated == 1)
            #expect(report.recorded == [])
        }
    }

    /// The budgets table refuses what would make evaluation meaningless, with PostgreSQL's own errors.
    @Test func theBudgetsTableRefusesNonsense() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            for (values, what) in [
                ("('x', 'global', NULL, 'day', 0, '{50}', NULL)", "zero limit"),
                ("('x', 'global', NULL, 'year', 10, '{50}', NULL)", "unknown period"),
                ("('x', 'project', NULL, 'day', 10, '{50}', NULL)", "project budget without a project"),
                ("('x', 'global', NULL, 'day', 10, '{0}', NULL)", "zero threshold"),
                ("('x', 'global', NULL, 'day', 10, '{50}', 'Mars/Olympus')", "unknown zone"),
            ] {
                #expect(throws: PGError.self, "\(what)") {
                    try connection.query("""
                        INSERT INTO rollupd.budgets (name, scope, scope_value, period, limit_usd, thresholds, time_zone) VALUES \(values)
                        """)
                }
            }
        }
    }

    // MARK: helpers

    func date(_ text: String) throws -> Date {
        try #require(ISO8601DateFormatter().date(from: text))
    }

    @discardableResult
    func insertBudget(
        on connection: PGConnection, name: String, scope: String, value: String?, period: String, limit: String,
        thresholds: [Int] = [50, 80, 100], timeZone: String? = nil, channel: String = "default"
    ) throws -> Int64 {
        try connection.query("""
            INSERT INTO rollupd.budgets (name, scope, scope_value, period, limit_usd, thresholds, time_zone, channel)
            VALUES ($1, $2, $3, $4, $5::numeric, $6::int[], $7, $8) RETURNING id
            """, [name, scope, value, period, limit, "{\(thresholds.map(String.init).joined(separator: ","))}", timeZone, channel])
            .singleRow("budget").int64(0)
    }

    func insertSpend(on connection: PGConnection, usd: String, at time: String, project: String = "acme", user: String? = "u-ana") throws {
        try connection.query("""
            INSERT INTO events (project_id, feature, model, user_id, input_tokens, output_tokens, latency_ms, estimated_cost_usd,
                                created_at, trace_id, span_id, provider)
            VALUES ($1, 'chat', 'gpt-4o', $2, 100, 50, 300, $3::numeric, $4::timestamptz, 't', 's', 'openai')
            """, [project, user, usd, time])
    }

    /// The oracle: spend summed from events, with the same validity rule as cost_aggregates.
    func rawSpend(on connection: PGConnection, from: String, to: String, column: String? = nil, value: String? = nil) throws -> Decimal {
        let filter = column.map { "AND \($0) = $3" } ?? ""
        let parameters: [any PGParameter] = column == nil ? [from, to] : [from, to, value]
        let text = try connection.query("""
            SELECT coalesce(sum(coalesce(verified_cost_usd, estimated_cost_usd)), 0)::text FROM events
            WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
              AND input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0
              AND coalesce(verified_cost_usd, estimated_cost_usd) >= 0 \(filter)
            """, parameters).singleRow("raw spend").string(0)
        return try #require(Decimal(string: text))
    }
}
