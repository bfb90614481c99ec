import Foundation
import Logging
import Postgres
import RollupdCore
import RollupdStore
import ServiceLifecycle

/// Sends recorded budget alerts from the budget_alerts outbox to their channels, and records
/// every attempt there. One instance delivers: the holder of `leader.lock_key + 2`, on this
/// service's own connection, so two instances never both send. A restart loses nothing: what
/// was pending is still pending in the table, and a channel's pause (Retry-After, backoff) is a
/// row too. An alert can go out twice only if the process dies between the receiver's answer and
/// the row's update; its message's webhook-id lets receivers drop that.
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

    /// How often the outbox is checked for due alerts (and a reload's channels retried).
    static let poll = Duration.seconds(1)
    /// How many of a channel's pending alerts one round reads.
    static let perChannel = 100
    /// How often the pending gauges are re-read when no alert was due. Counts change when an
    /// alert is recorded (due at once) or attempted (due), so an idle round skips the query; this
    /// picks up edits made by hand.
    static let pendingRecount = Duration.seconds(30)

    public func run() async throws {
        let config = live.current
        let session = DatabaseBootstrap.session(for: config, label: "rollupd.alerts")
        let sender = WebhookSender(connectTimeout: config.alerts.connectTimeout)
        let memory = DeliveryMemory()
        var streak = FailureStreak()
        // nil until the first look: both roles are said once, the standby's too.
        var wasDeliverer: Bool?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var wait = Self.poll
            // The rollup service creates budget_alerts (migrations) before this has anything to read.
            if health.snapshot.schemaReady {
                do {
                    let isDeliverer = try await session.run { [config] in
                        try LeaderLock.acquire(key: Self.lockKey(for: config), on: $0)
                    }
                    if isDeliverer != wasDeliverer {
                        logger.info(isDeliverer ? "delivering budget alerts" : "another instance delivers budget alerts; this one stands by")
                        wasDeliverer = isDeliverer
                    }
                    let reloaded = live.takeChannelsToRetry()
                    if isDeliverer {
                        try await retryNow(reloaded, session: session, memory: memory)
                        try await deliverDue(session: session, sender: sender, memory: memory)
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
        await sender.shutdown()
        await session.close()
    }

    /// After a reload added or fixed channels, their waiting alerts are due now, not at the
    /// backoff time (or the missing-channel wait) the old settings gave them.
    private func retryNow(_ channels: [String], session: DatabaseSession, memory: DeliveryMemory) async throws {
        guard !channels.isEmpty else { return }
        let due = try await session.run { try ChannelPause.resume(channels, on: $0) }
        for channel in channels { memory.configured(channel) }
        logger.info("retrying the alerts waiting for reloaded channels", metadata: [
            "channels": "\(channels.joined(separator: ","))", "alerts": "\(due)",
        ])
    }

    /// One round: every channel that may be sent to, in parallel; each channel's messages in the
    /// order their alerts were recorded, paced, stopping at the first that must wait.
    private func deliverDue(session: DatabaseSession, sender: WebhookSender, memory: DeliveryMemory) async throws {
        let settings = live.current
        let due = try await session.run { try AlertOutbox.due(perChannel: Self.perChannel, on: $0) }
        if !due.isEmpty {
            let byChannel = Dictionary(grouping: due, by: \.channel)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (name, alerts) in byChannel {
                    let delivery = ChannelDelivery(name: name, settings: settings, session: session, sender: sender,
                                                   memory: memory, logger: logger, jitter: jitter)
                    group.addTask { try await delivery.deliver(AlertBatch.messages(from: alerts)) }
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
}
