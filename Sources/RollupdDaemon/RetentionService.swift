import Logging
import Postgres
import RollupdCore
import RollupdStore
import ServiceLifecycle
import Foundation
import Synchronization

/// Runs retention on its own schedule (retention.interval), on its own connection, so batches and
/// their pauses never hold up the rollup passes. One instance does it: the holder of a second
/// advisory lock, `leader.lock_key + 1`.
public struct RetentionService: Service, CustomStringConvertible {
    let live: LiveConfig
    let logger: Logger
    let backoff: Backoff

    /// ServiceGroup logs services by their description; the default one would print the config.
    public var description: String { "RetentionService" }

    public init(live: LiveConfig, logger: Logger, backoff: Backoff = Backoff()) {
        self.live = live
        self.logger = logger
        self.backoff = backoff
    }

    public static func lockKey(for config: RollupdConfig) -> Int64 { config.leader.lockKey &+ 1 }

    /// The pause before the next run when the last one left a backlog behind.
    static let backlogPause = Duration.seconds(60)

    public func run() async throws {
        let config = live.current
        let session = DatabaseBootstrap.session(for: config, label: "rollupd.retention")
        let stopping = StopFlag()
        var streak = FailureStreak()
        // Let the rollup service migrate and catch up first.
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let settings = live.current.retention  // reloadable
            var wait = settings.interval
            let retention = Retention(settings: settings, pause: { stopping.sleep($0) }, shouldContinue: { !stopping.isSet })
            do {
                let reports: [RetentionReport]? = try await withGracefulShutdownHandler {
                    try await session.run { [config] connection in
                        guard try LeaderLock.acquire(key: Self.lockKey(for: config), on: connection) else { return nil }
                        return try retention.run(on: connection)
                    }
                } onGracefulShutdown: {
                    stopping.set()
                }
                for report in reports ?? [] { log(report) }
                // A run that stopped at max_rows_per_run with rows left goes on after a short
                // pause instead of an hour later, so a steady inflow never outgrows retention.
                if (reports ?? []).contains(where: { $0.error == nil && $0.backlog > 0 && $0.rowsDeleted >= Int64(settings.maxRowsPerRun) }) {
                    wait = min(wait, Self.backlogPause)
                }
                streak.succeeded()
            } catch {
                let failure = streak.failed("\(error)", backoff: backoff, jitter: Double.random(in: 0..<1))
                wait = min(wait, failure.wait)
                if failure.isNew {
                    logger.error("retention failed: \(error)", metadata: ["retry_in": "\(wait.compactDescription)"])
                }
            }
            let interval = wait
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        await session.close()
    }

    private func log(_ report: RetentionReport) {
        DaemonMetrics.retentionRowsDeleted(table: report.table).increment(by: Int64(report.rowsDeleted))
        DaemonMetrics.retentionPartitionsDropped(table: report.table).increment(by: Int64(report.partitionsDropped))
        DaemonMetrics.retentionBacklog(table: report.table).record(report.backlog)
        logger.log(report, quietWhenIdle: true)
    }
}

/// Set once at shutdown; a retention pause waits on it instead of sleeping blindly.
final class StopFlag: Sendable {
    private let state = Mutex(false)
    var isSet: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }

    /// Sleeps up to `duration`, returning early once set (checked every 50 ms).
    func sleep(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !isSet, ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: min(0.05, (deadline - ContinuousClock.now).seconds))
        }
    }
}
