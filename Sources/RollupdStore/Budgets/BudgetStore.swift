import Foundation
import Postgres
import RollupdCore

/// rollupd.budgets as `rollupd budget add|set|disable|rm|list` manages them: one statement per
/// change, each returning what it changed so the command can say it.
public enum BudgetStore {
    public struct Row: Sendable, Equatable, Codable {
        public var id: Int64
        public var spec: BudgetSpec
    }

    static let columns = "id, name, scope, scope_value, period, trim_scale(limit_usd)::text, thresholds::text, time_zone, channel, enabled"

    static func row(_ row: PGRow) throws -> Row {
        let thresholds = try row.string(6).trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
            .split(separator: ",").compactMap { Int($0) }
        return Row(id: try row.int64(0), spec: BudgetSpec(
            name: try row.string(1), scope: try row.string(2), scopeValue: row[3], period: try row.string(4),
            limitUSD: try row.string(5), thresholds: thresholds, timeZone: row[7], channel: try row.string(8),
            enabled: try row.string(9) == "t"))
    }

    static func parameters(_ spec: BudgetSpec) -> [any PGParameter] {
        [spec.name, spec.scope, spec.scopeValue, spec.period, spec.limitUSD, "{" + spec.thresholds.map(String.init).joined(separator: ",") + "}",
         spec.timeZone, spec.channel, spec.enabled]
    }

    public static func add(_ spec: BudgetSpec, on connection: PGConnection) throws -> Row {
        try row(connection.query("""
            INSERT INTO rollupd.budgets (name, scope, scope_value, period, limit_usd, thresholds, time_zone, channel, enabled)
            VALUES ($1, $2, $3, $4, $5::numeric, $6::int[], $7, $8, $9::boolean)
            RETURNING \(columns)
            """, parameters(spec), context: "add budget").singleRow("added budget"))
    }

    public static func read(_ id: Int64, on connection: PGConnection) throws -> Row? {
        try connection.query("SELECT \(columns) FROM rollupd.budgets WHERE id = $1", [id], context: "read budget").rows.first.map(row)
    }

    public static func update(_ id: Int64, to spec: BudgetSpec, on connection: PGConnection) throws -> Row? {
        try connection.query("""
            UPDATE rollupd.budgets SET name = $2, scope = $3, scope_value = $4, period = $5, limit_usd = $6::numeric,
                thresholds = $7::int[], time_zone = $8, channel = $9, enabled = $10::boolean
            WHERE id = $1
            RETURNING \(columns)
            """, [id] + parameters(spec), context: "update budget").rows.first.map(row)
    }

    /// Deletes the budget and (ON DELETE CASCADE) its alerts; returns it and how many alerts went with it.
    public static func remove(_ id: Int64, on connection: PGConnection) throws -> (row: Row, alerts: Int)? {
        guard let existing = try read(id, on: connection) else { return nil }
        let alerts = try connection.query("SELECT count(*)::int FROM rollupd.budget_alerts WHERE budget_id = $1", [id], context: "count alerts")
            .singleRow("alerts").int(0)
        try connection.query("DELETE FROM rollupd.budgets WHERE id = $1", [id], context: "remove budget")
        return (existing, alerts)
    }

    /// A budget as `rollupd budget list` shows it.
    public struct Listing: Sendable, Codable {
        public var budget: Row
        /// Spend in the current period (enabled budgets only), exact decimal text.
        public var spendUSD: String?
        public var percentOfLimit: String?
        public var periodStart: String?
        public var periodEnd: String?
        public var lastAlert: LastAlert?
    }

    public struct LastAlert: Sendable, Codable {
        public var kind: String
        public var threshold: Int
        public var status: String
        public var createdAt: String
    }

    public static func list(evaluator: BudgetEvaluator, at now: Date = Date(), on connection: PGConnection) throws -> [Listing] {
        let rows = try connection.query("SELECT \(columns) FROM rollupd.budgets ORDER BY id", context: "list budgets").rows.map(row)
        let spend = try evaluator.currentSpend(at: now, on: connection)
        var last: [Int64: LastAlert] = [:]
        for alert in try connection.query("""
            SELECT DISTINCT ON (budget_id) budget_id, kind, threshold, status,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM rollupd.budget_alerts ORDER BY budget_id, id DESC
            """, context: "last alerts").rows {
            last[try alert.int64(0)] = LastAlert(kind: try alert.string(1), threshold: try alert.int(2), status: try alert.string(3),
                                                 createdAt: try alert.string(4))
        }
        return rows.map { row in
            let current = spend[row.id]
            return Listing(budget: row, spendUSD: current?.spend,
                           percentOfLimit: current.map { percent($0.spend, of: row.spec.limitUSD) },
                           periodStart: current?.periodStart, periodEnd: current?.periodEnd, lastAlert: last[row.id])
        }
    }

    static func percent(_ spend: String, of limit: String) -> String {
        let posix = Locale(identifier: "en_US_POSIX")
        guard let spend = Decimal(string: spend, locale: posix), let limit = Decimal(string: limit, locale: posix), limit > 0 else { return "?" }
        var value = spend / limit * 100, rounded = Decimal()
        NSDecimalRound(&rounded, &value, 2, .plain)
        return String(format: "%.2f", NSDecimalNumber(decimal: rounded).doubleValue)
    }
}
