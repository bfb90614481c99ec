import Foundation

/// A source working through a backlog in bounded transactions: what it has done since it fell
/// behind, and whether it is time to say so (every `interval`, and once when it has caught up).
/// Pure: the caller passes the time.
public struct CatchUpProgress: Sendable {
    public let interval: Duration
    public private(set) var started: ContinuousClock.Instant?
    public private(set) var rows: Int64 = 0
    private var lastSaid: ContinuousClock.Instant?

    public init(interval: Duration = .seconds(10)) { self.interval = interval }

    public enum Event: Sendable, Equatable {
        case none
        /// Time for a progress line.
        case progress(rows: Int64, elapsed: Duration)
        /// The backlog is done (only after at least one bounded transaction).
        case caughtUp(rows: Int64, elapsed: Duration)
    }

    /// One transaction of a pass: `rows` added and removed, `remaining` whether more waits.
    public mutating func record(rows transactionRows: Int64, remaining: Bool, now: ContinuousClock.Instant) -> Event {
        guard let started else {
            guard remaining else { return .none }
            self.started = now
            lastSaid = now
            rows = transactionRows
            return .none
        }
        rows += transactionRows
        if !remaining {
            let event = Event.caughtUp(rows: rows, elapsed: now - started)
            self = CatchUpProgress(interval: interval)
            return event
        }
        guard let lastSaid, now - lastSaid >= interval else { return .none }
        self.lastSaid = now
        return .progress(rows: rows, elapsed: now - started)
    }

    /// Rows per second and the time left at that rate, for `left` rows.
    public static func rate(rows: Int64, elapsed: Duration, left: Int64) -> (perSecond: Double, eta: Duration?) {
        let seconds = elapsed.seconds
        guard seconds > 0, rows > 0 else { return (0, nil) }
        let perSecond = Double(rows) / seconds
        return (perSecond, .seconds(Double(left) / perSecond))
    }

    /// 12.4M, 830k, 950: how STATUS= and log lines print a count.
    public static func short(_ count: Int64) -> String {
        switch count {
        case 10_000_000...: return "\(count / 1_000_000)M"
        case 1_000_000...: return String(format: "%.1fM", Double(count) / 1e6)
        case 10_000...: return "\(count / 1000)k"
        default: return "\(count)"
        }
    }
}

extension Duration {
    /// Whole seconds (at least one), for an ETA.
    public var roundedToSeconds: Duration { .seconds(max(1, Int64(seconds.rounded()))) }
}
