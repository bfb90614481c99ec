import Foundation
import Postgres
import RollupdCore

/// What one table's retention run did.
public struct RetentionReport: Sendable, Equatable {
    public var table: String
    public var rowsDeleted: Int64 = 0
    public var partitionsDropped: Int64 = 0
    public var batches: Int64 = 0
    /// Expired rows still there after the run (not yet rolled up, locked, or over the per-run cap).
    public var backlog: Int64 = 0
    public var duration: Duration = .zero
    /// Why the run stopped early (lock or statement timeout), if it did. The next run goes on.
    public var error: String?
}

/// Deletes expired rows in small batches, each its own short transaction with lock_timeout and
/// statement_timeout, pausing between batches so the product's inserts are not slowed.
///
/// Raw rows are deleted only below their source's watermark, checked in the same statement that
/// deletes them, so nothing is deleted before it is rolled up; and with rollupd.capture = 'off',
/// so the change triggers do not turn the deletes into subtractions. Expired partitions of a
/// range-partitioned source are detached and dropped instead, under an ACCESS EXCLUSIVE lock
/// taken before the "all rolled up" check, so no late insert can slip in between.
public struct Retention: Sendable {
    public let settings: RollupdConfig.Retention
    /// Called between batches; the daemon passes a sleep that also returns at shutdown.
    let pause: @Sendable (Duration) -> Void
    /// Asked before each batch; false stops the run (graceful shutdown).
    let shouldContinue: @Sendable () -> Bool

    public init(
        settings: RollupdConfig.Retention,
        pause: @escaping @Sendable (Duration) -> Void = { usleep(UInt32(min($0.seconds, 60) * 1_000_000)) },
        shouldContinue: @escaping @Sendable () -> Bool = { true }
    ) {
        self.settings = settings
        self.pause = pause
        self.shouldContinue = shouldContinue
    }

    static let backlogCap = 1_000_000

    /// Every table retention looks after, for metrics that should exist (at 0) from the start.
    public static var tableNames: [String] { RetentionTarget.all(RollupdConfig.Retention()).map(\.table) }

    /// One run over every table with a retention period, oldest data first. A lock or statement
    /// timeout ends that table's run (reported); a lost connection ends the whole run (thrown).
    public func run(on connection: PGConnection) throws -> [RetentionReport] {
        var reports: [RetentionReport] = []
        for target in RetentionTarget.all(settings) where target.keep != .zero {
            var report = try run(target, on: connection)
            report.backlog = try backlog(target, on: connection)
            try record(report, cutoff: target.keep, on: connection)
            reports.append(report)
        }
        return reports
    }

    private func run(_ target: RetentionTarget, on connection: PGConnection) throws -> RetentionReport {
        let started = ContinuousClock.now
        var report = RetentionReport(table: target.table)
        do {
            if let source = target.rawSource {
                report.partitionsDropped = try dropExpiredPartitions(target, source: source, on: connection)
            }
            while shouldContinue(), report.rowsDeleted < Int64(settings.maxRowsPerRun) {
                let limit = min(settings.batchSize, settings.maxRowsPerRun - Int(report.rowsDeleted))
                let deleted = try connection.transaction { connection in
                    try limitTransaction(on: connection)
                    return try connection.query(target.deleteBatchSQL, target.parameters(limit: limit), context: "retention of \(target.table)").affectedRows
                }
                report.batches += 1
                report.rowsDeleted += Int64(deleted)
                guard deleted == limit else { break }
                pause(settings.batchPause)
            }
        } catch let error as PGError where !error.isConnectionLoss {
            // 55P03 lock_not_available, 57014 query_canceled (statement_timeout): try again next run.
            report.error = error.description
        }
        report.duration = ContinuousClock.now - started
        return report
    }

    /// Every batch and partition drop runs under these, and with change capture off.
    private func limitTransaction(on connection: PGConnection) throws {
        try connection.query(
            "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config('rollupd.capture', 'off', true)",
            ["\(Int64(settings.lockTimeout.seconds * 1000))ms", "\(Int64(settings.statementTimeout.seconds * 1000))ms"],
            context: "retention limits")
    }

    private func dropExpiredPartitions(_ target: RetentionTarget, source: RollupSource, on connection: PGConnection) throws -> Int64 {
        // Partitions whose upper bound is at or before the cutoff; names come quoted from regclass.
        let partitions = try connection.query("""
            SELECT c.oid::regclass::text
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
                 regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''(\\d{4}-[^'']*)''\\)') AS bound(upper)
            WHERE i.inhparent = $1::regclass
              AND bound.upper[1]::timestamptz <= now() - $2::float8 * interval '1 second'
            ORDER BY bound.upper[1]::timestamptz
            """, [target.table, target.keep.seconds], context: "list \(target.table) partitions").rows.map { try $0.string(0) }
        var dropped: Int64 = 0
        for partition in partitions where shouldContinue() {
            let done = try connection.transaction { connection -> Bool in
                try limitTransaction(on: connection)
                try connection.query("LOCK TABLE \(partition) IN ACCESS EXCLUSIVE MODE", context: "lock \(partition)")
                let countedAll = try connection.query("""
                    SELECT s.initialized AND NOT EXISTS (
                        SELECT 1 FROM \(partition) p WHERE coalesce(p.rollupd_xid, '0'::xid8) >= s.watermark)
                    FROM rollupd.sources s WHERE s.source = $1
                    """, [source.rawValue], context: "check \(partition)").singleRow("check partition").bool(0)
                guard countedAll else { return false }
                try connection.query("ALTER TABLE \(target.table) DETACH PARTITION \(partition)", context: "detach \(partition)")
                try connection.query("DROP TABLE \(partition)", context: "drop \(partition)")
                return true
            }
            if done { dropped += 1 }
        }
        return dropped
    }

    private func backlog(_ target: RetentionTarget, on connection: PGConnection) throws -> Int64 {
        try connection.query(target.backlogSQL, [target.keep.seconds, Self.backlogCap], context: "retention backlog of \(target.table)")
            .singleRow("backlog").int64(0)
    }

    private func record(_ report: RetentionReport, cutoff keep: Duration, on connection: PGConnection) throws {
        try connection.query("""
            INSERT INTO rollupd.retention_runs AS r (table_name, last_run_at, cutoff, duration_ms, rows_deleted,
                partitions_dropped, batches, backlog, last_error)
            VALUES ($1, now(), now() - $2::float8 * interval '1 second', $3, $4, $5, $6, $7, $8)
            ON CONFLICT (table_name) DO UPDATE SET last_run_at = excluded.last_run_at, cutoff = excluded.cutoff,
                duration_ms = excluded.duration_ms, rows_deleted = excluded.rows_deleted,
                partitions_dropped = excluded.partitions_dropped, batches = excluded.batches,
                backlog = excluded.backlog, last_error = excluded.last_error
            """, [report.table, keep.seconds, report.duration.seconds * 1000, report.rowsDeleted,
                  report.partitionsDropped, report.batches, report.backlog, report.error],
            context: "record retention run")
    }
}
