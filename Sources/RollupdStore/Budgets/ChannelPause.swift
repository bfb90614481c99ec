import Foundation
import Postgres

/// A channel's pause, in rollupd.alert_channels (migration 011): after a 429 or a 503 with
/// Retry-After, or a retryable failure, no request goes to the channel before `paused_until`.
/// It is a row, not memory, so a restarted daemon and the instance that takes delivery over
/// honour it too; AlertOutbox.due skips a paused channel.
public enum ChannelPause {
    /// Pauses `channel` for `duration` from now (the database's clock, which `due` compares with).
    public static func pause(_ channel: String, for duration: Duration, reason: String, on connection: PGConnection) throws {
        try connection.query("""
            INSERT INTO rollupd.alert_channels AS c (channel, paused_until, pause_reason, updated_at)
            VALUES ($1, now() + $2::float8 * interval '1 second', $3, now())
            ON CONFLICT (channel) DO UPDATE SET paused_until = excluded.paused_until, pause_reason = excluded.pause_reason,
                updated_at = now()
            """, [channel, duration.seconds, reason], context: "pause channel")
    }

    /// After a reload added or changed these channels: their pauses end and their waiting alerts
    /// are due now, not at the backoff time the old settings earned. Returns the alerts made due.
    @discardableResult
    public static func resume(_ channels: [String], on connection: PGConnection) throws -> Int {
        guard !channels.isEmpty else { return 0 }
        return try connection.query("""
            WITH resumed AS (
                UPDATE rollupd.alert_channels SET paused_until = now(), pause_reason = NULL, updated_at = now()
                WHERE channel = ANY($1::text[]) AND paused_until > now()
            )
            UPDATE rollupd.budget_alerts SET next_attempt_at = now()
            WHERE status = 'pending' AND channel = ANY($1::text[]) AND next_attempt_at > now()
            """, [channels], context: "resume channels").affectedRows
    }

    /// Seconds until `channel` may be sent to again; nil when it is not paused.
    public static func remaining(_ channel: String, on connection: PGConnection) throws -> Double? {
        try connection.query("""
            SELECT extract(epoch FROM paused_until - now())::float8 FROM rollupd.alert_channels
            WHERE channel = $1 AND paused_until > now()
            """, [channel], context: "channel pause").rows.first.map { try $0.double(0) }
    }
}
