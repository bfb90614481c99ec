import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// Every budget exact in its own zone (issue 15, point 4): spend for budgets in UTC, Kolkata
/// (+05:30), New York (DST) and Kathmandu (+05:45), with rollups built in UTC or in Kolkata, over
/// month ends and both US DST changes, equals the spend summed straight from the raw events of
/// each budget's period, for global, project and user budgets, including while updates and
/// deletes wait for the next pass (the rollups still count the old versions then, and so must
/// the edges read from raw rows).
@Suite struct BudgetZoneTests {
    static let zones = ["UTC", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu"]
    static let instants = ["2026-03-01T00:10:00Z", "2026-03-08T12:00:00Z", "2026-10-31T23:30:00Z", "2026-11-01T08:00:00Z"]

    @Test(arguments: ["UTC", "Asia/Kolkata"])
    func spendIsExactInEveryBudgetsZone(rollupZone: String) async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            // Every 17 minutes for three days either side of each instant, so every edge (a
            // midnight at :00, :30 or :45 past the UTC hour) has events just before and after it.
            for instant in Self.instants {
                try connection.query("""
                    INSERT INTO events (project_id, feature, model, user_id, input_tokens, output_tokens, latency_ms, estimated_cost_usd,
                                        created_at, trace_id, span_id, provider)
                    SELECT CASE WHEN i % 2 = 0 THEN 'p1' ELSE 'p2' END, 'chat', 'gpt-4o', (ARRAY['u-1', 'u-2', NULL])[1 + (i + 300) % 3],
                           10, 5, 100, (1 + (i + 300) % 97) * 0.01, $1::timestamptz + i * interval '17 minutes', 't', 's', 'openai'
                    FROM generate_series(-254, 254) AS i
                    """, [instant])
            }
            var budgets: [Int64: (scope: String, value: String?)] = [:]
            for zone in Self.zones {
                for period in ["day", "week", "month"] {
                    for (scope, value) in [("global", nil), ("project", "p1"), ("user", "u-1")] as [(String, String?)] {
                        let id = try connection.query("""
                            INSERT INTO rollupd.budgets (name, scope, scope_value, period, limit_usd, time_zone)
                            VALUES ($1, $2, $3, $4, 1000000, $5) RETURNING id
                            """, ["\(zone) \(period) \(scope)", scope, value, period, zone]).singleRow("budget").int64(0)
                        budgets[id] = (scope, value)
                    }
                }
            }
            let engine = RollupEngine(timeZone: rollupZone)
            let evaluator = BudgetEvaluator(defaultTimeZone: rollupZone, settings: RollupdConfig.Budgets())
            _ = try engine.catchUp(.events, on: connection)

            func check(_ moment: String) throws {
                for instant in Self.instants {
                    let at = try #require(ISO8601DateFormatter().date(from: instant))
                    let spends = try evaluator.currentSpend(at: at, on: connection)
                    #expect(spends.count == budgets.count)
                    for (id, budget) in budgets {
                        let spend = try #require(spends[id])
                        let raw = try rawSpend(on: connection, from: spend.periodStart, to: spend.periodEnd, budget.scope, budget.value)
                        #expect(Decimal(string: spend.spend) == raw,
                                "\(moment), rollups in \(rollupZone), at \(instant): budget \(id) (\(budget.scope)) over \(spend.periodStart)..\(spend.periodEnd)")
                    }
                }
            }
            try check("after a pass")
            let before = try BudgetZoneTests.totals(evaluator, on: connection)

            // Updates and deletes near the edges; until the next pass the rollups count the old
            // versions (saved in rollupd.event_changes), and so does every budget.
            try connection.query("""
                UPDATE events SET estimated_cost_usd = estimated_cost_usd * 3, user_id = CASE WHEN user_id = 'u-1' THEN 'u-2' ELSE 'u-1' END
                WHERE extract(minute FROM created_at)::int % 5 = 0
                """)
            try connection.query("DELETE FROM events WHERE extract(minute FROM created_at)::int % 7 = 1")
            #expect(try connection.query("SELECT count(*) FROM rollupd.event_changes").singleRow("changes").int(0) > 50)
            #expect(try BudgetZoneTests.totals(evaluator, on: connection) == before, "pending changes are not counted before their pass")
            _ = try engine.catchUp(.events, on: connection)
            try check("after updates, deletes and their pass")
        }
    }

    /// Every budget's spend at every instant, as one comparable list.
    static func totals(_ evaluator: BudgetEvaluator, on connection: PGConnection) throws -> [String] {
        try instants.flatMap { instant in
            try evaluator.currentSpend(at: ISO8601DateFormatter().date(from: instant)!, on: connection)
                .sorted { $0.key < $1.key }.map { "\(instant) \($0.key) \($0.value.spend)" }
        }
    }

    /// The oracle: spend summed from the raw events of [from, to), as cost_aggregates counts them.
    func rawSpend(on connection: PGConnection, from: String, to: String, _ scope: String, _ value: String?) throws -> Decimal {
        let filter = switch scope {
        case "project": "AND project_id = $3"
        case "user": "AND user_id = $3"
        default: "AND $3::text IS NULL"
        }
        let text = try connection.query("""
            SELECT coalesce(sum(coalesce(verified_cost_usd, estimated_cost_usd)), 0)::text FROM events
            WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz \(filter)
            """, [from, to, value]).singleRow("raw spend").string(0)
        return try #require(Decimal(string: text))
    }
}
