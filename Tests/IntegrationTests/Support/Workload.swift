import Foundation
import Postgres
import Synchronization

/// Inserts, updates and deletes shaped like the product's, with values from a seeded generator.
enum Workload {
    static let projects = ["acme-web", "acme-mobile", "internal"]
    static let features = ["chat", "summarize", "search"]
    static let models = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"]
    /// nil: events the product records without a user (background jobs).
    static let users = ["u-ana", "u-ben", "u-chen", "u-dara", nil]
    static let eventTypes = ["tool_used", "cache_hit", "risk_mode_changed", "page_view"]
    static let tools = ["Start/Sit", "FAAB", "Decisions", "", nil]
    static let risks = ["protect", "neutral", "chase", "", nil]

    /// One multi-row INSERT into events; `maxAgeHours` spreads created_at into the past (late data).
    static func insertEvents(count: Int, maxAgeHours: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        var rows: [String] = []
        var parameters: [any PGParameter] = []
        for _ in 0..<count {
            let base = parameters.count
            rows.append("($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4)::int, $\(base + 5)::int, $\(base + 6)::int, $\(base + 7)::numeric, now() - $\(base + 8)::float8 * interval '1 second', $\(base + 9))")
            parameters += [
                projects.randomElement(using: &random)!, features.randomElement(using: &random)!,
                models.randomElement(using: &random)!,
                Int.random(in: 0...4000, using: &random), Int.random(in: 0...1500, using: &random),
                Int.random(in: 50...9000, using: &random),
                String(format: "%.6f", Double.random(in: 0...0.5, using: &random)),
                Double(Int.random(in: 0...(maxAgeHours * 3600), using: &random)),
                users.randomElement(using: &random)!,
            ]
        }
        try connection.query("""
            INSERT INTO events (project_id, feature, model, input_tokens, output_tokens, latency_ms,
                                estimated_cost_usd, created_at, user_id, trace_id, span_id, provider)
            SELECT p, f, m, i, o, l, c, t, u, 'trace', 'span', 'openai'
            FROM (VALUES \(rows.joined(separator: ", "))) AS v(p, f, m, i, o, l, c, t, u)
            """, parameters)
    }

    static func insertAnalytics(count: Int, maxAgeHours: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        var rows: [String] = []
        var parameters: [any PGParameter] = []
        for _ in 0..<count {
            let base = parameters.count
            rows.append("($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4)::jsonb, now() - $\(base + 5)::float8 * interval '1 second')")
            let risk = risks.randomElement(using: &random)!
            parameters += [
                "s-\(Int.random(in: 0..<40, using: &random))", eventTypes.randomElement(using: &random)!,
                tools.randomElement(using: &random)!,
                risk.map { "{\"riskMode\": \"\($0)\"}" } ?? "{}",
                Double(Int.random(in: 0...(maxAgeHours * 3600), using: &random)),
            ]
        }
        try connection.query("""
            INSERT INTO analytics_events (session_id, event_type, tool_name, properties, occurred_at)
            SELECT s, e, t, p, o FROM (VALUES \(rows.joined(separator: ", "))) AS v(s, e, t, p, o)
            """, parameters)
    }

    /// Rows as a table has them from before rollupd (rollupd_xid NULL), for adoption: written,
    /// then their xid taken away with triggers off (session_replication_role, as superuser).
    static func insertPreexisting(events: Int, analytics: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        try insertEvents(count: events, maxAgeHours: 24 * 20, random: &random, on: connection)
        try insertAnalytics(count: analytics, maxAgeHours: 24 * 20, random: &random, on: connection)
        try connection.execute(script: """
            BEGIN;
            SET LOCAL session_replication_role = replica;
            UPDATE events SET rollupd_xid = NULL;
            UPDATE analytics_events SET rollupd_xid = NULL;
            COMMIT;
            """)
    }

    /// Reconciliation: sets verified_cost_usd on a few random events.
    static func verifySome(_ count: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        try connection.query("""
            UPDATE events SET verified_cost_usd = round((estimated_cost_usd * $2::float8)::numeric, 6)
            WHERE id IN (SELECT id FROM events ORDER BY md5(id::text || $3) LIMIT $1)
            """, [count, Double.random(in: 0.5...1.5, using: &random), String(random.next())])
    }

    /// Moves a few events to another user (or to none): user_cost_aggregates must follow.
    static func reassignUsers(_ count: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        try connection.query("""
            UPDATE events SET user_id = CASE WHEN user_id IS NULL THEN 'u-moved' WHEN abs(hashtext(id::text)) % 3 = 0 THEN NULL ELSE user_id || '-2' END
            WHERE id IN (SELECT id FROM events ORDER BY md5(id::text || $2) LIMIT $1)
            """, [count, String(random.next())])
    }

    static func deleteSome(_ count: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        let salt = String(random.next())
        try connection.query("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY md5(id::text || $2) LIMIT $1)", [count, salt])
        try connection.query("DELETE FROM analytics_events WHERE id IN (SELECT id FROM analytics_events ORDER BY md5(id || $2) LIMIT $1)", [count, salt])
    }

    /// Moves a few analytics events to other sessions, hours and tools.
    static func reshuffleAnalytics(_ count: Int, random: inout SeededRandom, on connection: PGConnection) throws {
        try connection.query("""
            UPDATE analytics_events SET session_id = 's-moved-' || (abs(hashtext(id)) % 5), occurred_at = occurred_at - interval '3 hours',
                   tool_name = CASE WHEN tool_name IS NULL THEN 'FAAB' END, properties = '{"riskMode": "chase"}'
            WHERE id IN (SELECT id FROM analytics_events ORDER BY md5(id || $2) LIMIT $1)
            """, [count, String(random.next())])
    }

    /// One writer: transactions of random inserts, updates and deletes, held open up to 120 ms so
    /// that commits land out of transaction-id order, one in ten rolled back. Runs until `keepGoing`
    /// says stop. Deadlocks between writers touching the same rows are rolled back and skipped.
    /// `keepGoing` gets the number of transactions begun so far.
    static func writeTransactions(with writer: DatabaseSession, seed: UInt64, while keepGoing: @Sendable (_ begun: Int) -> Bool) async throws {
        var random = SeededRandom(seed: seed)
        var begun = 0
        while keepGoing(begun) {
            begun += 1
            let hold = Int.random(in: 0...120, using: &random)
            let abort = Int.random(in: 0..<10, using: &random) == 0
            let batch = random.next()
            let open = try await writer.run { connection -> Bool in
                var local = SeededRandom(seed: batch)
                try connection.query("BEGIN")
                do {
                    try insertEvents(count: Int.random(in: 1...20, using: &local), maxAgeHours: 24 * 10, random: &local, on: connection)
                    try insertAnalytics(count: Int.random(in: 1...20, using: &local), maxAgeHours: 24 * 10, random: &local, on: connection)
                    if Int.random(in: 0..<3, using: &local) == 0 { try verifySome(3, random: &local, on: connection) }
                    if Int.random(in: 0..<5, using: &local) == 0 { try deleteSome(2, random: &local, on: connection) }
                    if Int.random(in: 0..<8, using: &local) == 0 { try reshuffleAnalytics(2, random: &local, on: connection) }
                    if Int.random(in: 0..<8, using: &local) == 0 { try reassignUsers(2, random: &local, on: connection) }
                    return true
                } catch let error as PGError where error.isSerializationConflict {
                    try connection.query("ROLLBACK")
                    return false
                }
            }
            guard open else { continue }
            try await Task.sleep(for: .milliseconds(hold))
            _ = try await writer.run { try $0.query(abort ? "ROLLBACK" : "COMMIT") }
        }
    }
}

/// Set once, read by several tasks (writers told to stop, a loop told the writers are done).
final class StopFlag: Sendable {
    private let state = Mutex(false)
    var isSet: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }
}
