import Foundation
import Metrics
import RollupdStore

/// The daemon's metrics, through the swift-metrics API only; the executable chooses the backend
/// (Prometheus). Names follow Prometheus conventions: base units, `_total` for counters.
struct DaemonMetrics: Sendable {
    static func rowsRolledUp(source: RollupSource, change: String) -> Counter {
        Counter(label: "rollupd_rows_rolled_up_total", dimensions: [("source", source.rawValue), ("change", change)])
    }

    static func passes(source: RollupSource) -> Counter {
        Counter(label: "rollupd_passes_total", dimensions: [("source", source.rawValue)])
    }

    static func passDuration(source: RollupSource) -> Metrics.Timer {
        Metrics.Timer(label: "rollupd_pass_duration_seconds", dimensions: [("source", source.rawValue)], preferredDisplayUnit: .seconds)
    }

    static func rejectedRows(source: RollupSource) -> Counter {
        Counter(label: "rollupd_rejected_rows_total", dimensions: [("source", source.rawValue)])
    }

    static func lag(source: String) -> Gauge {
        Gauge(label: "rollupd_rollup_lag_seconds", dimensions: [("source", source)])
    }

    static let leader = Gauge(label: "rollupd_leader")

    /// Rows waiting below the horizon while a source catches up (the planner's estimate); 0 when caught up.
    static func backlog(source: String) -> Gauge {
        Gauge(label: "rollupd_backlog_rows", dimensions: [("source", source)])
    }

    static func databaseErrors(sqlStateClass: String) -> Counter {
        Counter(label: "rollupd_database_errors_total", dimensions: [("sqlstate_class", sqlStateClass)])
    }

    static func retentionRowsDeleted(table: String) -> Counter {
        Counter(label: "rollupd_retention_rows_deleted_total", dimensions: [("table", table)])
    }

    static func retentionPartitionsDropped(table: String) -> Counter {
        Counter(label: "rollupd_retention_partitions_dropped_total", dimensions: [("table", table)])
    }

    static func retentionBacklog(table: String) -> Gauge {
        Gauge(label: "rollupd_retention_backlog_rows", dimensions: [("table", table)])
    }

    static func alertsFired(channel: String) -> Counter {
        Counter(label: "rollupd_alerts_fired_total", dimensions: [("channel", channel)])
    }

    static func alertsDelivered(channel: String) -> Counter {
        Counter(label: "rollupd_alerts_delivered_total", dimensions: [("channel", channel)])
    }

    static func alertsFailed(channel: String) -> Counter {
        Counter(label: "rollupd_alerts_failed_total", dimensions: [("channel", channel)])
    }

    static func alertsPending(channel: String) -> Gauge {
        Gauge(label: "rollupd_alerts_pending", dimensions: [("channel", channel)])
    }

    static let budgetEvaluationDuration = Metrics.Timer(label: "rollupd_budget_evaluation_duration_seconds", preferredDisplayUnit: .seconds)

    /// Series with known labels exist from the start (at 0), so dashboards and `increase()` see
    /// them before the first event of their kind.
    static func initialize(channels: [String] = []) {
        for channel in Set(channels + ["default"]) {
            alertsFired(channel: channel).increment(by: 0)
            alertsDelivered(channel: channel).increment(by: 0)
            alertsFailed(channel: channel).increment(by: 0)
            alertsPending(channel: channel).record(0)
        }
        for source in RollupSource.allCases {
            for change in ["added", "removed"] { rowsRolledUp(source: source, change: change).increment(by: 0) }
            passes(source: source).increment(by: 0)
            rejectedRows(source: source).increment(by: 0)
        }
        for table in Retention.tableNames {
            retentionRowsDeleted(table: table).increment(by: 0)
            retentionPartitionsDropped(table: table).increment(by: 0)
            retentionBacklog(table: table).record(0)
        }
        databaseErrors(sqlStateClass: "08").increment(by: 0)
        leader.record(0)
    }

    /// After a pass: counters move, the duration is observed, the lag restarts from this pass.
    static func record(_ report: PassReport) {
        rowsRolledUp(source: report.source, change: "added").increment(by: Int64(report.counts.added))
        rowsRolledUp(source: report.source, change: "removed").increment(by: Int64(report.counts.removed))
        rejectedRows(source: report.source).increment(by: Int64(report.counts.rejectedCount))
        passes(source: report.source).increment()
        passDuration(source: report.source).recordNanoseconds(Int64(report.duration.seconds * 1e9))
    }

    /// Called before each scrape, so lag grows between passes as it really does.
    static func refreshLag(_ health: HealthState, now: Date) {
        for (source, fresh) in health.snapshot.freshAsOf {
            lag(source: source).record(max(0, now.timeIntervalSince1970 - fresh))
        }
    }
}
