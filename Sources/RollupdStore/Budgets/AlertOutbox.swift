import Foundation
import Postgres
import RollupdCore

/// The budget_alerts outbox: which alerts are due, and what became of each attempt.
public enum AlertOutbox {
    /// The alerts that may go out now, per channel in the order they were recorded: every
    /// channel that is not paused (rollupd.alert_channels) and whose oldest pending alert is due,
    /// with its first `perChannel` pending alerts, plus the rest of any message those belong to
    /// (so a retried message is complete). A channel whose oldest alert waits holds back the
    /// ones behind it: nothing overtakes an alert that was recorded before it.
    public static func due(perChannel: Int, on connection: PGConnection) throws -> [BudgetAlert] {
        try connection.query("""
            WITH heads AS (
                SELECT DISTINCT ON (channel) channel, next_attempt_at FROM rollupd.budget_alerts
                WHERE status = 'pending' ORDER BY channel, id
            ), open AS (
                SELECT h.channel FROM heads h LEFT JOIN rollupd.alert_channels c ON c.channel = h.channel
                WHERE h.next_attempt_at <= now() AND (c.paused_until IS NULL OR c.paused_until <= now())
            ), queued AS (
                SELECT q.id, q.message_id FROM open o CROSS JOIN LATERAL (
                    SELECT a.id, a.message_id FROM rollupd.budget_alerts a
                    WHERE a.channel = o.channel AND a.status = 'pending' ORDER BY a.id LIMIT $1) AS q
            )
            SELECT id, alert_id, budget_id, budget_name, scope, scope_value, period, time_zone,
                   \(iso("period_start")), \(iso("period_end")),
                   CASE period
                       WHEN 'month' THEN to_char(period_start AT TIME ZONE time_zone, 'FMMonth YYYY')
                       WHEN 'week' THEN 'week of ' || to_char(period_start AT TIME ZONE time_zone, 'Dy FMDD Mon YYYY')
                       ELSE to_char(period_start AT TIME ZONE time_zone, 'Dy FMDD Mon YYYY') END,
                   kind, threshold, trim_scale(limit_usd)::text, trim_scale(spend_usd)::text, trim_scale(forecast_usd)::text,
                   channel, \(iso("created_at")), extract(epoch FROM now() - created_at)::float8, attempts, message_id
            FROM rollupd.budget_alerts a
            WHERE a.status = 'pending'
              AND (a.id IN (SELECT id FROM queued)
                   OR a.message_id IN (SELECT message_id FROM queued WHERE message_id IS NOT NULL))
            ORDER BY a.channel, a.id
            """, [perChannel], context: "due alerts").rows.map { row in
            BudgetAlert(
                rowID: try row.int64(0), alertID: try row.string(1), budgetID: try row.int64(2), budgetName: try row.string(3),
                scope: try row.string(4), scopeValue: row[5], period: try row.string(6), timeZone: try row.string(7),
                periodStart: try row.string(8), periodEnd: try row.string(9), periodLabel: try row.string(10),
                kind: try row.string(11), threshold: try row.int(12), limitUSD: try row.string(13), spendUSD: try row.string(14),
                forecastUSD: row[15], channel: try row.string(16), createdAt: try row.string(17), ageSeconds: try row.double(18),
                attempts: try row.int(19), messageID: row[20])
        }
    }

    /// Writes a new message's id into its rows before the first attempt, so every retry sends
    /// the same rows under the same webhook-id.
    public static func assign(_ batch: AlertBatch, on connection: PGConnection) throws {
        try connection.query("""
            UPDATE rollupd.budget_alerts SET message_id = $2
            WHERE id = ANY($1::bigint[]) AND status = 'pending' AND message_id IS NULL
            """, [rowList(batch.rowIDs), batch.messageID], context: "assign message id")
    }

    static func rowList(_ ids: [Int64]) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }

    private static func iso(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    }

    public enum Outcome: Sendable, Equatable {
        case delivered(httpStatus: Int)
        case retry(after: Duration, httpStatus: Int?, error: String)
        case failed(httpStatus: Int?, error: String)
        /// Nothing was sent (the channel is not configured): look again later, no attempt counted.
        case waiting(after: Duration, reason: String)
    }

    /// Records one attempt for every alert a message carried. Only pending rows change, so a
    /// late answer never overwrites the outcome another attempt already recorded.
    @discardableResult
    public static func record(_ outcome: Outcome, alertRowIDs: [Int64], on connection: PGConnection) throws -> Int {
        let ids = rowList(alertRowIDs)
        let result: PGResult
        switch outcome {
        case .delivered(let status):
            result = try connection.query("""
                UPDATE rollupd.budget_alerts SET status = 'delivered', delivered_at = now(), attempts = attempts + 1,
                    last_attempt_at = now(), last_http_status = $2, last_error = NULL
                WHERE id = ANY($1::bigint[]) AND status = 'pending'
                """, [ids, status], context: "record delivery")
        case .retry(let after, let status, let error):
            result = try connection.query("""
                UPDATE rollupd.budget_alerts SET attempts = attempts + 1, last_attempt_at = now(), last_http_status = $2,
                    last_error = $3, next_attempt_at = now() + $4::float8 * interval '1 second'
                WHERE id = ANY($1::bigint[]) AND status = 'pending'
                """, [ids, status, error, after.seconds], context: "record failed attempt")
        case .waiting(let after, let reason):
            result = try connection.query("""
                UPDATE rollupd.budget_alerts SET last_error = $2, next_attempt_at = now() + $3::float8 * interval '1 second'
                WHERE id = ANY($1::bigint[]) AND status = 'pending'
                """, [ids, reason, after.seconds], context: "record waiting alert")
        case .failed(let status, let error):
            result = try connection.query("""
                UPDATE rollupd.budget_alerts SET status = 'failed', failed_at = now(), attempts = attempts + 1,
                    last_attempt_at = now(), last_http_status = $2, last_error = $3
                WHERE id = ANY($1::bigint[]) AND status = 'pending'
                """, [ids, status, error], context: "record failed alert")
        }
        return result.affectedRows
    }

    /// Per channel: alerts waiting to go out, and the age of the oldest, in seconds.
    public static func pendingByChannel(on connection: PGConnection) throws -> [String: (count: Int, oldestSeconds: Double)] {
        var pending: [String: (count: Int, oldestSeconds: Double)] = [:]
        for row in try connection.query("""
            SELECT channel, count(*)::int, extract(epoch FROM now() - min(created_at))::float8
            FROM rollupd.budget_alerts WHERE status = 'pending' GROUP BY channel
            """, context: "pending alerts").rows {
            pending[try row.string(0)] = (try row.int(1), try row.double(2))
        }
        return pending
    }
}
