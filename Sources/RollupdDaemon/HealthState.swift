import Foundation
import Synchronization

/// What /healthz and the lag gauges report, kept current by the services.
public final class HealthState: Sendable {
    public enum Role: String, Sendable {
        case starting, leader, standby, failing
    }

    public struct Snapshot: Sendable {
        public var role: Role = .starting
        /// Why the last loop iteration failed, while it is failing.
        public var problem: String?
        /// When the main loop last finished an iteration (pass, standby check or failure).
        public var lastLoopAt: Date?
        /// The schema is current (migrations applied); the other services wait for it.
        public var schemaReady = false
        /// Per source: epoch seconds before which everything committed is rolled up.
        public var freshAsOf: [String: Double] = [:]
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }

    /// Healthy: the database answered the last iteration, which is recent, and as leader the
    /// rollups are no older than `maxLag`. The reason says what is wrong otherwise.
    public func verdict(now: Date, maxLag: Duration, stallAfter: Duration) -> (healthy: Bool, reason: String) {
        let current = snapshot
        guard let last = current.lastLoopAt else { return (false, "starting: database not reached yet") }
        let quiet = now.timeIntervalSince(last)
        if quiet > stallAfter.seconds {
            return (false, "main loop has not completed an iteration for \(Int(quiet)) s")
        }
        switch current.role {
        case .starting: return (false, "starting")
        case .failing: return (false, current.problem ?? "failing")
        case .standby: return (true, "standby: another instance is the leader; database reachable")
        case .leader:
            let lags = current.freshAsOf.mapValues { now.timeIntervalSince1970 - $0 }
            if let (source, lag) = lags.max(by: { $0.value < $1.value }), lag > maxLag.seconds {
                return (false, "leader, but \(source) rollups lag \(Int(lag)) s (max \(Int(maxLag.seconds)) s)")
            }
            return (true, "leader; database reachable")
        }
    }
}
