import Synchronization

/// What the delivery loop remembers between rounds: when each channel last sent (for
/// alerts.min_interval) and which problems were already logged, with their cause.
final class DeliveryMemory: Sendable {
    private struct State {
        var lastSent: [String: ContinuousClock.Instant] = [:]
        /// Failing channels and the cause last logged for each.
        var failing: [String: String] = [:]
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

    enum Failing: Equatable {
        /// The channel worked (or this is the first attempt since start): log that it fails.
        case started
        /// It was failing for another reason (timeouts, now 429): log the new cause, once.
        case causeChanged(previous: String)
        /// Same cause as already logged.
        case same
    }

    /// Notes a failed attempt on `channel` with `cause` ("HTTP 429", "timed out after 3 s").
    func failed(_ channel: String, cause: String) -> Failing {
        state.withLock { state in
            let previous = state.failing.updateValue(cause, forKey: channel)
            guard let previous else { return .started }
            return previous == cause ? .same : .causeChanged(previous: previous)
        }
    }

    /// True when a failing channel delivered again.
    func recovered(_ channel: String) -> Bool { state.withLock { $0.failing.removeValue(forKey: channel) != nil } }

    func firstTimeMissing(_ channel: String) -> Bool { state.withLock { $0.missing.insert(channel).inserted } }

    /// A reload added the channel: if it goes missing again, that deserves a line again.
    func configured(_ channel: String) { _ = state.withLock { $0.missing.remove(channel) } }
}
