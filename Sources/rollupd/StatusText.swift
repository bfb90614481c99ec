import Foundation
import RollupdStore

/// The human form of `rollupd status`.
enum StatusText {
    static func render(_ report: StatusReport) -> String {
        var lines: [String] = []
        if let pid = report.leaderPID {
            lines.append("leader: pid \(pid) (\(report.leaderApplication ?? "?"))")
        } else {
            lines.append("leader: none (no rollupd instance holds the leader lock)")
        }
        lines.append("schema version: \(report.schemaVersion.map(String.init) ?? "none")")
        lines.append("rejected rows: \(report.rejectedRows)")
        for source in report.sources {
            let pass = source.lastPassStartedAt.map { "\($0), \(String(format: "%.1f", source.lastPassDurationMs ?? 0)) ms, +\(source.lastPassAdded)/-\(source.lastPassRemoved)" } ?? "never"
            lines.append("")
            lines.append("\(source.source):")
            lines.append("  initialized:   \(source.initialized)")
            lines.append("  watermark:     xid \(source.watermark)")
            lines.append("  last pass:     \(pass) (\(source.totalPasses) passes)")
            lines.append("  pending:       \(source.pendingRows) new rows, \(source.pendingChanges) changes")
            lines.append("  lag:           \(String(format: "%.1f", source.lagSeconds)) s")
        }
        lines.append("")
        if report.retention.isEmpty {
            lines.append("retention: not run yet")
        } else {
            lines.append("retention (last run per table):")
            for run in report.retention {
                var line = "  \(run.table): \(run.lastRunAt), \(run.rowsDeleted) rows"
                if run.partitionsDropped > 0 { line += ", \(run.partitionsDropped) partitions" }
                line += ", \(String(format: "%.0f", run.durationMs)) ms, backlog \(run.backlog)"
                if let error = run.lastError { line += ", stopped early: \(error)" }
                lines.append(line)
            }
        }
        lines.append("")
        if report.alerts.isEmpty {
            lines.append("budget alerts: none pending or sent in the last day")
        } else {
            lines.append("budget alerts (per channel; delivered and failed: last day):")
            for channel in report.alerts {
                var line = "  \(channel.channel): \(channel.pending) pending"
                if let oldest = channel.oldestPendingSeconds { line += " (oldest \(Int(oldest)) s)" }
                line += ", \(channel.deliveredLastDay) delivered, \(channel.failedLastDay) failed"
                if let error = channel.lastError { line += "; last error: \(error)" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}
