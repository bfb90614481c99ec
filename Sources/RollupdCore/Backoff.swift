/// How long to wait before the next attempt after `failures` consecutive failures.
///
/// `delay = min(cap, base * 2^(failures - 1))`, then scaled by a jitter factor in [0.5, 1.0) so
/// that several instances restarted together do not retry in step. With the defaults
/// (base 0.5 s, cap 60 s), before jitter:
///
/// | failures | 1    | 2  | 3  | 4  | 5  | 6   | 7   | 8+  |
/// |----------|------|----|----|----|----|-----|-----|-----|
/// | delay    | 0.5s | 1s | 2s | 4s | 8s | 16s | 32s | 60s |
///
/// The jitter source is a parameter so the policy stays a pure function.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    /// - Parameters:
    ///   - failures: consecutive failures so far, at least 1.
    ///   - jitter: a value in [0, 1) (from a random source); 0 gives half the delay, near 1 the whole.
    public func delay(afterFailures failures: Int, jitter: Double) -> Duration {
        precondition(failures >= 1, "delay(afterFailures:) needs at least one failure")
        let exponent = min(failures - 1, 32)
        let raw = base.seconds * Double(1 << exponent)
        let capped = min(raw, cap.seconds)
        let factor = 0.5 + 0.5 * min(max(jitter, 0), 0.999_999)
        return .milliseconds(Int64((capped * factor * 1000).rounded()))
    }
}

/// The consecutive failures of one service loop: how long to wait before the next attempt, and
/// whether an error is new. Each distinct error is logged once, not at every retry.
public struct FailureStreak: Sendable {
    public private(set) var failures = 0
    public private(set) var lastError: String?

    public init() {}

    /// Records a failure: the wait before the next attempt, and whether `message` differs from
    /// the previous failure's (then it deserves a log line).
    public mutating func failed(_ message: String, backoff: Backoff = Backoff(), jitter: Double) -> (wait: Duration, isNew: Bool) {
        failures += 1
        defer { lastError = message }
        return (backoff.delay(afterFailures: failures, jitter: jitter), message != lastError)
    }

    /// Records a success; true when it ends a streak (worth a "works again" line).
    @discardableResult
    public mutating func succeeded() -> Bool {
        defer { failures = 0; lastError = nil }
        return lastError != nil
    }
}
