import Foundation
import Logging
import Postgres
import RollupdCore
import RollupdStore
import ServiceLifecycle
import Systemd

/// The daemon's main loop: connect, bring the schema up to date, then as leader run a pass over
/// every source each poll interval; as standby, wait for the leader lock. Database trouble is
/// retried with backoff and reported once per distinct error, never fatal.
///
/// ```
///  start ──► preparing ──(schema current: READY=1)──► leader ◄──► standby
///               ▲  │                                    │
///               └──┴──────── database error (backoff) ◄─┘
/// ```
public struct RollupService: Service, CustomStringConvertible {
    let live: LiveConfig
    let health: HealthState
    let logger: Logger
    let notifier: SystemdNotifier
    let backoff: Backoff
    let jitter: @Sendable () -> Double

    /// ServiceGroup logs services by their description; the default one would print the config.
    public var description: String { "RollupService" }

    public init(
        live: LiveConfig, health: HealthState = HealthState(), logger: Logger, notifier: SystemdNotifier = SystemdNotifier(),
        backoff: Backoff = Backoff(), jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.live = live
        self.health = health
        self.logger = logger
        self.notifier = notifier
        self.backoff = backoff
        self.jitter = jitter
    }

    public func run() async throws {
        // Connection, schema, zone and lock key are fixed for the process (ReloadPolicy).
        let config = live.current
        let session = DatabaseBootstrap.session(for: config)
        var prepared = false
        var catchingUp: [String: CatchingUp] = [:]
        var role: HealthState.Role?
        var streak = FailureStreak()
        var budgets = BudgetSchedule()

        logger.info("starting", metadata: ["database": "\(config.connectionSettings.redacted)", "time_zone": "\(config.rollup.timeZone)", "poll_interval": "\(config.rollup.pollInterval.compactDescription)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let wait: Duration
            do {
                if !prepared {
                    try await DatabaseBootstrap.prepareSchema(config, session: session, logger: logger)
                    prepared = true
                    health.update { $0.schemaReady = true }
                }
                let isLeader = try await session.run { [config] in try LeaderLock.acquire(key: config.leader.lockKey, on: $0) }
                if isLeader {
                    // A bounded transaction per source and loop: a source with a large backlog never
                    // holds up the others, and the watchdog hears of every round.
                    let engine = RollupEngine(timeZone: config.rollup.timeZone,
                                              maxRowsPerTransaction: live.current.rollup.maxRowsPerTransaction,
                                              workMem: live.current.rollup.workMem)
                    let reports = try await session.run { connection in
                        try RollupSource.all(configured: config.sources).map { try engine.pass($0, on: connection) }
                    }
                    // Only a pass that worked ends a failure streak: taking the lock proves little.
                    if streak.succeeded() { logger.notice("rolling up again after the failure above") }
                    if role != .leader { logger.notice("leader: rolling up") }
                    role = .leader
                    let catchUpStatus = await reportCatchUp(reports, progress: &catchingUp, engine: engine, session: session)
                    report(reports, status: catchUpStatus)
                    await evaluateBudgets(after: reports, schedule: &budgets, session: session)
                    DaemonMetrics.leader.record(1)
                    health.update { state in
                        state.role = .leader
                        state.problem = nil
                        state.lastLoopAt = Date()
                        for report in reports { state.freshAsOf[report.source.rawValue] = report.freshAsOf }
                    }
                    wait = reports.contains(where: \.remaining) ? .zero : live.current.rollup.pollInterval
                } else {
                    if streak.succeeded() { logger.notice("database reachable again") }
                    if role != .standby { logger.notice("standby: another instance holds the leader lock") }
                    role = .standby
                    notifier.status("standby: another instance is the leader")
                    DaemonMetrics.leader.record(0)
                    health.update { state in
                        state.role = .standby
                        state.problem = nil
                        state.lastLoopAt = Date()
                        state.freshAsOf = [:]
                    }
                    wait = live.current.leader.standbyPoll
                }
                notifier.notify([("READY", "1"), ("WATCHDOG", "1")])
            } catch where DatabaseBootstrap.isFatal(error) {
                throw error  // a configuration or deployment mismatch: retrying cannot fix it
            } catch {
                let message = ErrorHints.describe(error, config: live.current)
                let failure = streak.failed(message, backoff: backoff, jitter: jitter())
                wait = failure.wait
                let pgError = error as? PGError
                DaemonMetrics.databaseErrors(sqlStateClass: pgError?.sqlStateClass ?? (pgError?.isConnectionLoss == true ? "08" : "none")).increment()
                DaemonMetrics.leader.record(0)
                health.update { state in
                    state.role = .failing
                    state.problem = "\(prepared ? "pass failed" : "cannot prepare the database"): \(message)"
                    state.lastLoopAt = Date()
                }
                if failure.isNew {
                    var metadata: Logger.Metadata = ["retry_in": "\(wait.compactDescription)", "attempt": "\(streak.failures)"]
                    if let pgError = error as? PGError, let state = pgError.sqlState { metadata["sqlstate"] = "\(state)" }
                    logger.error("\(prepared ? "pass failed" : "cannot prepare the database"): \(message)", metadata: metadata)
                } else {
                    logger.debug("still failing", metadata: ["retry_in": "\(wait.compactDescription)", "attempt": "\(streak.failures)"])
                }
                let reason = (error as? PGError)?.isConnectionLoss == true ? "database unreachable" : "error"
                notifier.status("\(reason), retry in \(wait.compactDescription)")
                // The loop is alive and deciding; only a hung pass should starve the watchdog.
                notifier.watchdog()
            }
            let interval = wait
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        notifier.stopping(status: "stopping")
        await session.close()
        logger.info("stopped")
    }

    /// After a pass that changed spend, and every budgets.evaluate_interval regardless (periods
    /// roll over and forecasts ripen with no new events). A failure is reported and retried
    /// with the next pass; it never holds up the rollups.
    private func evaluateBudgets(after reports: [PassReport], schedule: inout BudgetSchedule, session: DatabaseSession) async {
        let config = live.current
        let spendChanged = reports.contains {
            $0.source.isCost && ($0.counts.added + $0.counts.removed > 0 || $0.firstPass)
        }
        guard config.budgets.enabled, schedule.isDue(interval: config.budgets.evaluateInterval, spendChanged: spendChanged) else { return }
        let evaluator = BudgetEvaluator(config)
        do {
            let report = try await session.run { try evaluator.evaluate(on: $0) }
            schedule.evaluated()
            DaemonMetrics.budgetEvaluationDuration.recordNanoseconds(Int64(report.duration.seconds * 1e9))
            for alert in report.recorded { DaemonMetrics.alertsFired(channel: alert.channel).increment() }
            logger.log(report)
            if schedule.streak.succeeded() { logger.notice("budget evaluation works again") }
        } catch {
            let message = "\(error)"
            if schedule.streak.failed(message, jitter: 0).isNew { logger.error("budget evaluation failed: \(message)") }
        }
    }

    /// A source working through a backlog, and what was last estimated to be left.
    struct CatchingUp {
        var progress = CatchUpProgress()
        var left: Int64?
        var eta: String?
    }

    /// While a source works through a backlog: a line every 10 s (rows done, about how many left,
    /// rate, ETA), the same in rollupd_backlog_rows, and one line when it is done. Returns the
    /// STATUS= text while any source is catching up.
    private func reportCatchUp(_ reports: [PassReport], progress: inout [String: CatchingUp], engine: RollupEngine,
                               session: DatabaseSession) async -> String? {
        var status: [String] = []
        for report in reports {
            let name = report.source.rawValue
            var state = progress[name] ?? CatchingUp()
            let event = state.progress.record(rows: report.counts.added + report.counts.removed, remaining: report.remaining, now: .now)
            switch event {
            case .none:
                break
            case .caughtUp(let rows, let elapsed):
                DaemonMetrics.backlog(source: name).record(0)
                logger.notice("caught up", metadata: ["source": "\(name)", "rows": "\(rows)", "took": "\(elapsed.compactDescription)"])
            case .progress(let rows, let elapsed):
                let source = report.source
                let left = (try? await session.run { try engine.backlogEstimate(source, on: $0) }) ?? 0
                DaemonMetrics.backlog(source: name).record(left)
                state.left = left
                state.eta = logger.catchingUp(source, rows: rows, elapsed: elapsed, left: left)
            }
            progress[name] = state.progress.started == nil ? nil : state
            if state.progress.started != nil {
                let left = state.left.map { ", about \(CatchUpProgress.short($0)) left, ETA \(state.eta ?? "unknown")" } ?? ""
                status.append("catching up \(name): \(CatchUpProgress.short(state.progress.rows)) rows done\(left)")
            }
        }
        return status.isEmpty ? nil : status.joined(separator: "; ")
    }

    private func report(_ reports: [PassReport], status catchingUp: String?) {
        var summary: [String] = []
        for report in reports {
            DaemonMetrics.record(report)
            logger.log(report, quietWhenIdle: true)
            summary.append("\(report.source.rawValue) +\(report.counts.added)/-\(report.counts.removed)")
        }
        let total = reports.reduce(Duration.zero) { $0 + $1.duration }
        let clock = Date().formatted(.iso8601.time(includingFractionalSeconds: false))
        if let catchingUp {
            notifier.status("leader; \(catchingUp)")
        } else {
            notifier.status("leader; last pass \(clock) took \(total.milliseconds) ms (\(summary.joined(separator: ", ")))")
        }
    }
}

/// When the leader evaluates budgets next.
struct BudgetSchedule {
    private var last: ContinuousClock.Instant?
    var streak = FailureStreak()

    func isDue(interval: Duration, spendChanged: Bool, now: ContinuousClock.Instant = .now) -> Bool {
        guard let last else { return true }
        return spendChanged || now - last >= interval
    }

    mutating func evaluated(at now: ContinuousClock.Instant = .now) { last = now }
}
