import Postgres
import RollupdCore

/// One table retention looks after, and its SQL. Table and column names are rollupd's own
/// constants; the cutoff and batch size travel as parameters.
struct RetentionTarget: Sendable {
    let table: String
    let timeColumn: String
    let keep: Duration
    /// Set for source tables, whose rows may be deleted only below the source's watermark.
    let rawSource: RollupSource?
    let deleteBatchSQL: String

    /// $1 keep (seconds), $2 cap: expired rows still present, counted up to the cap.
    var backlogSQL: String {
        """
        SELECT count(*) FROM (SELECT 1 FROM \(table)
            WHERE \(timeColumn) < now() - $1::float8 * interval '1 second' LIMIT $2) AS expired
        """
    }

    /// $1 keep (seconds), $2 batch size, and for raw sources $3 the source name.
    func parameters(limit: Int) -> [any PGParameter] {
        rawSource.map { [keep.seconds, limit, $0.rawValue] } ?? [keep.seconds, limit]
    }

    static func all(_ settings: RollupdConfig.Retention) -> [RetentionTarget] {
        [
            raw("events", timeColumn: "created_at", source: .events, keep: settings.events),
            raw("analytics_events", timeColumn: "occurred_at", source: .analyticsEvents, keep: settings.analyticsEvents),
            rollup("cost_aggregates", timeColumn: "period_start", keep: settings.costAggregates),
            // Per-user spend is a cost rollup too, kept as long.
            rollup("rollupd.user_cost_aggregates", timeColumn: "period_start", keep: settings.costAggregates),
            rollup("hourly_rollups", timeColumn: "hour", keep: settings.hourlyRollups),
            // The exact tallies behind hourly_rollups go with it.
            rollup("rollupd.hourly_dimension_counts", timeColumn: "hour", keep: settings.hourlyRollups),
            rollup("rollupd.hourly_session_counts", timeColumn: "hour", keep: settings.hourlyRollups),
            // Configured sources' shares of the shared rollups expire with them, so a reset never
            // brings an expired bucket back. (Configured source tables themselves are the
            // operator's: retention does not delete from them.)
            rollup("rollupd.source_cost_buckets", timeColumn: "period_start", keep: settings.costAggregates),
            rollup("rollupd.source_user_cost_buckets", timeColumn: "period_start", keep: settings.costAggregates),
            rollup("rollupd.source_hourly_dimension_counts", timeColumn: "hour", keep: settings.hourlyRollups),
            rollup("rollupd.source_hourly_session_counts", timeColumn: "hour", keep: settings.hourlyRollups),
        ]
    }

    /// Deletes the locked rows by (tableoid, ctid): a TID lookup, where joining back through a
    /// random-uuid primary key cost most of a batch (bench/README.md); tableoid makes it right for
    /// partitions too. The rows are locked, so their ctid cannot move before the delete. The
    /// watermark guard sits in the deleting statement itself; SKIP LOCKED leaves rows the product
    /// is updating for later.
    private static func raw(_ table: String, timeColumn: String, source: RollupSource, keep: Duration) -> RetentionTarget {
        RetentionTarget(
            table: table, timeColumn: timeColumn, keep: keep, rawSource: source,
            deleteBatchSQL: """
                WITH state AS (
                    SELECT watermark, initialized FROM rollupd.sources WHERE source = $3
                ), doomed AS (
                    SELECT t.tableoid, t.ctid FROM \(table) t, state s
                    WHERE t.\(timeColumn) < now() - $1::float8 * interval '1 second'
                      AND s.initialized AND coalesce(t.rollupd_xid, '0'::xid8) < s.watermark
                    LIMIT $2
                    FOR UPDATE OF t SKIP LOCKED
                )
                DELETE FROM \(table) t USING doomed d WHERE t.tableoid = d.tableoid AND t.ctid = d.ctid
                """)
    }

    private static func rollup(_ table: String, timeColumn: String, keep: Duration) -> RetentionTarget {
        RetentionTarget(
            table: table, timeColumn: timeColumn, keep: keep, rawSource: nil,
            deleteBatchSQL: """
                DELETE FROM \(table) WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM \(table) WHERE \(timeColumn) < now() - $1::float8 * interval '1 second' LIMIT $2))
                """)
    }
}
