import Foundation
import Logging
import Postgres
import RollupdCore
import RollupdStore
import ServiceLifecycle

/// One round's delivery to one channel: its messages in recorded order, each recorded in the
/// outbox. A retryable failure pauses the whole channel (a 429's or 503's Retry-After, else the
/// backoff) and ends the round for it, so nothing overtakes the message that failed and the
/// endpoint gets no request before it asked for one.
struct ChannelDelivery {
    let name: String
    let settings: RollupdConfig
    let session: DatabaseSession
    let sender: WebhookSender
    let memory: DeliveryMemory
    let logger: Logger
    let jitter: @Sendable () -> Double

    /// How often alerts for a channel missing from the config are looked at again.
    static let missingChannelRetry = Duration.seconds(60)

    func deliver(_ batches: [AlertBatch]) async throws {
        guard let channel = settings.channels[name] else {
            try await waitForChannel(batches)
            return
        }
        let policy = DeliveryPolicy(backoff: Backoff(base: .seconds(1), cap: settings.alerts.retryMaxDelay), maximumAge: settings.alerts.maxAge)
        for batch in batches {
            if Task.isShuttingDownGracefully { return }
            if batch.isNew { try await session.run { try AlertOutbox.assign(batch, on: $0) } }
            if let wait = memory.waitBeforeSending(on: name, minInterval: settings.alerts.minInterval) {
                try? await Task.sleep(for: wait)
            }
            let response = await sender.send(batch, to: channel, timeout: settings.alerts.requestTimeout)
            memory.sent(on: name)
            let decision = policy.outcome(status: response.status, retryAfter: response.retryAfter, error: response.error,
                                          attempts: batch.attempts + 1, age: .milliseconds(Int64(batch.ageSeconds * 1000)),
                                          now: Date(), jitter: jitter())
            let detail = response.bodyStart.isEmpty ? "" : ": \(response.bodyStart)"
            switch decision {
            case .delivered:
                try await record(.delivered(httpStatus: response.status ?? 200), batch)
            case .failed(let why):
                try await record(.failed(httpStatus: response.status, error: why + detail), batch)
            case .retry(let after, let why):
                try await session.run { connection in
                    try AlertOutbox.record(.retry(after: after, httpStatus: response.status, error: why + detail),
                                           alertRowIDs: batch.rowIDs, on: connection)
                    try ChannelPause.pause(name, for: after, reason: why, on: connection)
                }
                reportRetry(batch, cause: why, after: after)
                return  // the channel is paused: the rest waits behind this message
            }
        }
    }

    /// Nothing is sent: the alerts wait for a reload that adds the channel, until alerts.max_age.
    private func waitForChannel(_ batches: [AlertBatch]) async throws {
        let why = "no channel '\(name)' in the config (add channels.\(name) with url or url_file, then reload)"
        for batch in batches {
            if batch.ageSeconds + Self.missingChannelRetry.seconds <= settings.alerts.maxAge.seconds {
                if memory.firstTimeMissing(name) {
                    logger.warning("budget alerts for channel '\(name)' are waiting: \(why)", metadata: ["channel": "\(name)"])
                }
                _ = try await session.run {
                    try AlertOutbox.record(.waiting(after: Self.missingChannelRetry, reason: why), alertRowIDs: batch.rowIDs, on: $0)
                }
            } else {
                try await record(.failed(httpStatus: nil, error: why), batch)
            }
        }
    }

    private func record(_ outcome: AlertOutbox.Outcome, _ batch: AlertBatch) async throws {
        _ = try await session.run { try AlertOutbox.record(outcome, alertRowIDs: batch.rowIDs, on: $0) }
        let metadata = metadata(batch)
        switch outcome {
        case .delivered:
            DaemonMetrics.alertsDelivered(channel: name).increment(by: batch.alerts.count)
            if memory.recovered(name) { logger.notice("channel '\(name)' is accepting alerts again", metadata: metadata) }
            logger.info(batch.alerts.count == 1 ? "budget alert delivered" : "budget alerts delivered in one message", metadata: metadata)
        case .failed(_, let error):
            DaemonMetrics.alertsFailed(channel: name).increment(by: batch.alerts.count)
            logger.error("budget alert given up: \(error)", metadata: metadata)
        case .retry, .waiting:
            break
        }
    }

    /// A failing channel is logged when it starts failing and again, once, whenever the cause
    /// changes (timeouts, then 429): the operator sees the outage and what it turned into.
    private func reportRetry(_ batch: AlertBatch, cause: String, after: Duration) {
        let metadata = metadata(batch)
        switch memory.failed(name, cause: cause) {
        case .started:
            logger.warning("channel '\(name)' is failing (\(cause)); its alerts stay pending and are retried in order, next in \(after.compactDescription)",
                           metadata: metadata)
        case .causeChanged(let previous):
            logger.warning("channel '\(name)' is still failing, now \(cause) (was \(previous)); next attempt in \(after.compactDescription)",
                           metadata: metadata)
        case .same:
            logger.debug("delivery attempt failed: \(cause)", metadata: metadata)
        }
    }

    private func metadata(_ batch: AlertBatch) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["alert_id": "\(batch.messageID)", "channel": "\(name)", "attempt": "\(batch.attempts + 1)"]
        if batch.alerts.count > 1 { metadata["alerts"] = "\(batch.alerts.count)" }
        return metadata
    }
}
