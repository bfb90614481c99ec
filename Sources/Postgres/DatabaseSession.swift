import Dispatch

/// One database connection driven from async code.
///
/// libpq calls block, so they run on this session's own serial DispatchQueue, never on Swift's
/// cooperative pool. The connection is made on first use and made again after it is lost, so a
/// caller sees a `PGError` for the failed attempt and a fresh connection on the next one.
public final class DatabaseSession: @unchecked Sendable {
    // Invariant: `connection` is read and written only on `queue`; that is what makes this class
    // safe to share (hence @unchecked Sendable).
    private let queue: DispatchQueue
    private var connection: PGConnection?
    public let settings: PGConnectionSettings
    /// Statements run on every new connection (SET TimeZone, SET statement_timeout, ...).
    private let setup: [String]

    public init(settings: PGConnectionSettings, label: String = "rollupd.db", setup: [String] = []) {
        self.settings = settings
        self.queue = DispatchQueue(label: label)
        self.setup = setup
    }

    /// Runs `body` with a healthy connection, connecting first if needed. A connection-loss error
    /// drops the connection so the next call reconnects.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.runOnQueue(body) })
            }
        }
    }

    /// Closes the connection (releasing any session-level advisory locks it holds).
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.connection = nil
                continuation.resume()
            }
        }
    }

    private func runOnQueue<T>(_ body: (PGConnection) throws -> T) throws -> T {
        if let existing = connection, !existing.isHealthy { connection = nil }
        let active: PGConnection
        if let existing = connection {
            active = existing
        } else {
            active = try PGConnection(settings: settings)
            for statement in setup {
                try active.query(statement, context: "session setup")
            }
            connection = active
        }
        do {
            return try body(active)
        } catch let error as PGError where error.isConnectionLoss || !active.isHealthy {
            connection = nil
            throw error
        }
    }
}
