import Postgres

/// Budget alert delivery per channel, as `rollupd status` shows it.
public struct AlertChannelStatus: Sendable, Codable, Equatable {
    public var channel: String
    public var pending: Int64
    /// Seconds the oldest pending alert has waited; nil when none is pending.
    public var oldestPendingSeconds: Double?
    public var deliveredLastDay: Int64
    public var failedLastDay: Int64
    /// The most recent error recorded for this channel, pending or failed.
    public var lastError: String?

    /// A pending alert older than this means the channel is not taking messages.
    public static let stuckAfterSeconds: Double = 900

    static func read(on connection: PGConnection) throws -> [AlertChannelStatus] {
        try connection.query("""
            SELECT channel,
                   count(*) FILTER (WHERE status = 'pending'),
                   extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8,
                   count(*) FILTER (WHERE status = 'delivered' AND delivered_at > now() - interval '1 day'),
                   count(*) FILTER (WHERE status = 'failed' AND failed_at > now() - interval '1 day'),
                   (array_agg(last_error ORDER BY last_attempt_at DESC NULLS LAST) FILTER (WHERE last_error IS NOT NULL))[1]
            FROM rollupd.budget_alerts
            WHERE status = 'pending' OR coalesce(delivered_at, failed_at) > now() - interval '1 day'
            GROUP BY channel ORDER BY channel
            """, context: "alert status").rows.map { row in
            AlertChannelStatus(channel: try row.string(0), pending: try row.int64(1), oldestPendingSeconds: try row.optionalDouble(2),
                               deliveredLastDay: try row.int64(3), failedLastDay: try row.int64(4), lastError: row[5])
        }
    }

    var problems: [String] {
        var problems: [String] = []
        if failedLastDay > 0 {
            problems.append("\(failedLastDay) budget alerts to channel '\(channel)' failed in the last day\(lastError.map { " (last error: \($0))" } ?? "")")
        }
        if let oldest = oldestPendingSeconds, oldest > Self.stuckAfterSeconds {
            problems.append("budget alerts to channel '\(channel)' pending for \(Int(oldest / 60)) min\(lastError.map { " (last error: \($0))" } ?? "")")
        }
        return problems
    }
}
