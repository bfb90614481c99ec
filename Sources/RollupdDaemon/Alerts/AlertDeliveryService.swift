import Foundation
import Logging
import Postgres
import RollupdCore
import RollupdStore
import ServiceLifecycle
import Synchronization

/// Sends recorded budget alerts from the budget_alerts outbox to their channels, and records
/// every attempt there. One instance delivers: the holder of `leader.lock_key + 2`, on this
/// service's own connection, so two instances never both send. A restart loses nothing: what
/// was pending is still pending in the table. An alert can go out twice only if the process dies
/// between the receiver's answer and the row's update; its webhook-id lets receivers drop that.
public struct AlertDeliveryService: Service, CustomStringConvertible {
    let live: LiveConfig
    let health: HealthState
    let logger: Logger
    let jitter: @Sendable () -> Double

    public var description: String { "AlertDeliveryService" }

    public init(live: LiveConfig, health: HealthState, logger: Logger, jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.live = live
        self.health = health
        self.logger = logger
        self.jitter = jitter
    }

    public static func lockKey(for config: RollupdConfig) -> Int64 { config.leader.lockKey &+ 2 }

    /// How often the outbox is checked for due alerts.
    static let poll = Duration.seconds(1)
    /// How often alerts for a channel missing from the config are looked at again.
    static let missingChannelRetry = Duration.seconds(60)
    /// How often the pending gauges are re-read when no alert was due. Counts change when an
    /// alert is recorded (due at once) or attempted (due), so an idle round skips the query; this
    /// picks up edits made by hand.
    static let pendingRecount = Duration.seconds(30)

    public func run() async throws {
        let config = live.current
        let session = DatabaseBootstrap.session(for: config, label: "rollupd.alerts")
        let client = WebhookClient(connectTimeout: config.alerts.connectTimeout)
        let memory = DeliveryMemory()
        var streak = FailureStreak()
        var wasDeliverer = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var wait = Self.poll
            // The rollup service creates budget_alerts (migrations) before this has anything to read.
            if health.snapshot.schemaReady {
                do {
                    let isDeliverer = try await session.run { [config] in
                        try LeaderLock.acquire(key: Self.lockKey(for: config), on: $0)
                    }
                    if isDeliverer != wasDeliverer {
                        logger.info(isDeliverer ? "delivering budget alerts" : "another instance delivers budget alerts")
                        wasDeliverer = isDeliverer
                    }
                    if isDeliverer {
                        try await deliverDue(session: session, client: client, memory: memory)
                    } else {
                        wait = live.current.leader.standbyPoll
                    }
                    streak.succeeded()
                } catch {
                    let failure = streak.failed("\(error)", jitter: jitter())
                    wait = failure.wait
                    if failure.isNew {
                        logger.error("alert delivery: database error: \(error)", metadata: ["retry_in": "\(wait.compactDescription)"])
                    }
                }
            }
            let interval = wait
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        await client.shutdown()
        await session.close()
    }

    /// One round: every due alert, channels in parallel, each channel in order and paced.
    private func deliverDue(session: DatabaseSession, client: WebhookClient, memory: DeliveryMemory) async throws {
        let settings = live.current
        let due = try await session.run { try AlertOutbox.due(limit: 200, on: $0) }
        if !due.isEmpty {
            let byChannel = Dictionary(grouping: due, by: \.channel)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (name, alerts) in byChannel {
                    group.addTask {
                        try await deliver(alerts, channelName: name, settings: settings, session: session, client: client, memory: memory)
                    }
                }
                try await group.waitForAll()
            }
        }
        guard !due.isEmpty || memory.recountPending(every: Self.pendingRecount) else { return }
        let pending = try await session.run { try AlertOutbox.pendingByChannel(on: $0) }
        for name in Set(pending.keys).union(settings.channels.keys).union(memory.seenChannels) {
            memory.saw(channel: name)
            DaemonMetrics.alertsPending(channel: name).record(pending[name]?.count ?? 0)
        }
    }

    private func deliver(
        _ alerts: [BudgetAlert], channelName: String, settings: RollupdConfig,
        session: DatabaseSession, client: WebhookClient, memory: DeliveryMemory
    ) async throws {
        let policy = DeliveryPolicy(backoff: Backoff(base: .seconds(1), cap: settings.alerts.retryMaxDelay), maximumAge: settings.alerts.maxAge)
        for alert in alerts {
            if Task.isShuttingDownGracefully { return }
            let decision: DeliveryOutcome
            var status: Int?
            var reason = ""
            if let channel = settings.channels[channelName] {
                if let wait = memory.waitBeforeSending(on: channelName, minInterval: settings.alerts.minInterval) {
                    try? await Task.sleep(for: wait)
                }
                let body = channel.format == .slack ? AlertMessage.slackBody(alert) : AlertMessage.jsonBody(alert)
                let headers = channel.signingSecret.map {
                    WebhookSigner(secret: $0).headers(id: alert.alertID, timestamp: Int64(Date().timeIntervalSince1970), body: body)
                } ?? []
                let response = await client.post(url: channel.url, body: body, headers: headers, timeout: settings.alerts.requestTimeout)
                memory.sent(on: channelName)
                status = response.status
                decision = policy.outcome(status: response.status, retryAfter: response.retryAfter,
                                          error: response.error, attempts: alert.attempts + 1,
                                          age: .milliseconds(Int64(alert.ageSeconds * 1000)), now: Date(), jitter: jitter())
                reason = response.bodyStart.isEmpty ? "" : ": \(response.bodyStart)"
            } else {
                // Nothing is sent: the alert waits for a reload that adds the channel, until alerts.max_age.
                let why = "no channel '\(channelName)' in the config (add channels.\(channelName) with url or url_file, then reload)"
                if alert.ageSeconds + Self.missingChannelRetry.seconds <= settings.alerts.maxAge.seconds {
                    if memory.firstTimeMissing(channelName) {
                        logger.warning("budget alerts for channel '\(channelName)' are waiting: \(why)", metadata: ["channel": "\(channelName)"])
                    }
                    _ = try await session.run { try AlertOutbox.record(.waiting(after: Self.missingChannelRetry, reason: why), alertRowID: alert.rowID, on: $0) }
                    continue
                }
                decision = .failed(reason: why)
            }
            let outcome: AlertOutbox.Outcome = switch decision {
            case .delivered: .delivered(httpStatus: status ?? 200)
            case .retry(let after, let why): .retry(after: after, httpStatus: status, error: why + reason)
            case .failed(let why): .failed(httpStatus: status, error: why + reason)
            }
            _ = try await session.run { try AlertOutbox.record(outcome, alertRowID: alert.rowID, on: $0) }
            report(outcome, alert: alert, channel: channelName, memory: memory)
        }
    }

    private func report(_ outcome: AlertOutbox.Outcome, alert: BudgetAlert, channel: String, memory: DeliveryMemory) {
        let metadata: Logger.Metadata = ["alert_id": "\(alert.alertID)", "channel": "\(channel)", "attempt": "\(alert.attempts + 1)"]
        switch outcome {
        case .delivered:
            DaemonMetrics.alertsDelivered(channel: channel).increment()
            if memory.recovered(channel) { logger.notice("channel '\(channel)' is accepting alerts again", metadata: metadata) }
            logger.info("budget alert delivered", metadata: metadata)
        case .retry(let after, _, let error):
            if memory.startedFailing(channel) {
                logger.warning("channel '\(channel)' is failing (\(error)); its alerts stay pending and are retried, next in \(after.compactDescription)",
                               metadata: metadata)
            } else {
                logger.debug("delivery attempt failed: \(error)", metadata: metadata)
            }
        case .failed(_, let error):
            DaemonMetrics.alertsFailed(channel: channel).increment()
            logger.error("budget alert given up: \(error)", metadata: metadata)
        case .waiting:
            break  // logged once per channel where it is decided
        }
    }
}

/// What the delivery loop remembers between rounds: when each channel last sent (for
/// alerts.min_interval) and which problems were already logged.
final class DeliveryMemory: Sendable {
    private struct State {
        var lastSent: [String: ContinuousClock.Instant] = [:]
        var failing: Set<String> = []
        var missing: Set<String> = []
        var seen: Set<String> = []
        var pendingCountedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    var seenChannels: Set<String> { state.withLock { $0.seen } }

    func saw(channel: String) { _ = state.withLock { $0.seen.insert(channel) } }

    func waitBeforeSending(on channel: String, minInterval: Duration) -> Duration? {
        state.withLock { state in
            guard let last = state.lastSent[channel] else { return nil }
            let next = last + minInterval
            let now = ContinuousClock.now
            return next > now ? next - now : nil
        }
    }

    func sent(on channel: String) { state.withLock { $0.lastSent[channel] = .now } }

    /// True when the pending counts were last read `interval` ago or never, and notes a new read.
    func recountPending(every interval: Duration) -> Bool {
        state.withLock { state in
            if let last = state.pendingCountedAt, ContinuousClock.now - last < interval { return false }
            state.pendingCountedAt = .now
            return true
        }
    }

    /// True the first time a channel fails after working (or at start).
    func startedFailing(_ channel: String) -> Bool { state.withLock { $0.failing.insert(channel).inserted } }

    /// True when a failing channel delivered again.
    func recovered(_ channel: String) -> Bool { state.withLock { $0.failing.remove(channel) != nil } }

    func firstTimeMissing(_ channel: String) -> Bool { state.withLock { $0.missing.insert(channel).inserted } }
}
