import Logging
import RollupdCore
import RollupdStore

/// One log line per pass and per retention table, the same from the daemon and the one-shot
/// commands, with fields journald stores as ROLLUPD_* (see JournalLogHandler).
extension Logger {
    /// `quietWhenIdle`: the daemon passes every second; an idle pass is not worth a line.
    public func log(_ report: PassReport, quietWhenIdle: Bool = false) {
        let counts = report.counts
        if !counts.newlyRejectedIDs.isEmpty {
            warning("skipped rows that cannot be rolled up", metadata: [
                "source": "\(report.source.rawValue)", "rows": "\(counts.rejectedCount)", "ids": "\(counts.newlyRejectedIDs)",
            ])
        }
        if quietWhenIdle, counts.added + counts.removed == 0, !report.firstPass, report.rebuiltBuckets == nil { return }
        var metadata: Logger.Metadata = [
            "source": "\(report.source.rawValue)", "pass": "\(report.number)", "added": "\(counts.added)",
            "removed": "\(counts.removed)", "buckets": "\(counts.bucketsTouched)", "took_ms": "\(report.duration.milliseconds)",
            "first_pass": "\(report.firstPass)",
        ]
        if let rebuilt = report.rebuiltBuckets { metadata["rebuilt_buckets"] = "\(rebuilt)" }
        // A transaction of a bounded catch-up: the progress line every 10 s says it better.
        if report.remaining {
            debug("rolled up part of the backlog of \(report.source.rawValue)", metadata: metadata)
        } else {
            info("rolled up \(report.source.rawValue)", metadata: metadata)
        }
    }

    /// The line a source catching up prints every 10 s (the daemon and `once`); returns the ETA
    /// as printed.
    @discardableResult
    public func catchingUp(_ source: RollupSource, rows: Int64, elapsed: Duration, left: Int64) -> String {
        let (perSecond, eta) = CatchUpProgress.rate(rows: rows, elapsed: elapsed, left: left)
        let etaText = eta.map { $0.roundedToSeconds.compactDescription } ?? "unknown"
        notice("catching up", metadata: [
            "source": "\(source.rawValue)", "rows_done": "\(rows)", "rows_left_estimate": "\(left)",
            "rows_per_second": "\(Int64(perSecond))", "eta": "\(etaText)",
        ])
        return etaText
    }

    /// `quietWhenIdle`: the daemon's hourly runs log only tables that had something to do.
    public func log(_ report: RetentionReport, quietWhenIdle: Bool = false) {
        var metadata: Logger.Metadata = [
            "table": "\(report.table)", "rows": "\(report.rowsDeleted)", "partitions": "\(report.partitionsDropped)",
            "batches": "\(report.batches)", "backlog": "\(report.backlog)", "took_ms": "\(report.duration.milliseconds)",
        ]
        if let error = report.error {
            metadata["error"] = "\(error)"
            warning("retention of \(report.table) stopped early; the next run goes on", metadata: metadata)
        } else if !quietWhenIdle || report.rowsDeleted + report.partitionsDropped > 0 || report.backlog > 0 {
            info("retention of \(report.table)", metadata: metadata)
        }
    }
}

extension Logger {
    /// One line per alert recorded; an evaluation that recorded none is not worth a line.
    public func log(_ report: BudgetEvaluationReport) {
        for alert in report.recorded {
            notice("budget alert recorded", metadata: [
                "alert_id": "\(alert.alertID)", "budget_id": "\(alert.budgetID)", "kind": "\(alert.kind)",
                "threshold": "\(alert.threshold)", "channel": "\(alert.channel)",
            ])
        }
        debug("budgets evaluated", metadata: ["budgets": "\(report.budgetsEvaluated)", "took_ms": "\(report.duration.milliseconds)"])
    }
}

extension Duration {
    /// Whole milliseconds, for `took_ms` fields.
    var milliseconds: Int { Int((seconds * 1000).rounded()) }
}
