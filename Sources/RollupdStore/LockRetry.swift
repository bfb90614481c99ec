import Foundation
import Postgres
import RollupdCore

/// How DDL on the product's tables waits for locks: never longer than `timeout` at a time.
///
/// A statement that needs a lock on a busy table queues behind the transactions holding it, and
/// every later INSERT of the product queues behind the statement. With a short lock_timeout the
/// statement gives up instead, the inserts flow again, and it is retried a moment later, for up
/// to `giveUpAfter`.
public struct LockRetry: Sendable {
    public var timeout: Duration
    public var giveUpAfter: Duration

    public init(timeout: Duration = .milliseconds(200), giveUpAfter: Duration = .seconds(600)) {
        self.timeout = timeout
        self.giveUpAfter = giveUpAfter
    }

    /// The value for `SET lock_timeout`.
    var timeoutSetting: String { "\(Int64(timeout.seconds * 1000))ms" }

    /// The pause before attempt `attempt` (2, 3, ...): 50 ms doubling to 2 s. Between attempts
    /// the product's inserts run unhindered.
    static func pause(beforeAttempt attempt: Int) -> Duration {
        .milliseconds(min(2000, 50 << min(attempt - 2, 6)))
    }

    /// Runs `body` until it does not fail for a lock (SQLSTATE 55P03); `body` sets the timeout
    /// itself (SET LOCAL inside its transaction) or through `withTimeout`.
    func retrying<T>(_ what: String, on connection: PGConnection, onWait: (String) -> Void, _ body: () throws -> T) throws -> T {
        let started = ContinuousClock.now
        var attempt = 1
        while true {
            do {
                return try body()
            } catch let error as PGError where error.sqlState == "55P03" {
                guard ContinuousClock.now - started < giveUpAfter else {
                    throw LockWaitTimedOut(what: what, waited: giveUpAfter, holder: oldestTransaction(on: connection))
                }
                attempt += 1
                if attempt == 2 || attempt % 20 == 0 {
                    onWait("\(what): a lock on a product table is held by another transaction (\(oldestTransaction(on: connection))); retrying every \(Self.pause(beforeAttempt: attempt).compactDescription) with lock_timeout \(timeoutSetting)")
                }
                Thread.sleep(forTimeInterval: Self.pause(beforeAttempt: attempt).seconds)
            }
        }
    }

    /// Runs one autocommit statement with this lock timeout, and puts the session's back.
    func statement(_ sql: String, _ what: String, on connection: PGConnection, onWait: (String) -> Void) throws {
        try retrying(what, on: connection, onWait: onWait) {
            try connection.withSettings(["lock_timeout": timeoutSetting]) { try connection.query(sql, context: what) }
        }
    }

    /// The oldest other open transaction, for the message (not its query text).
    private func oldestTransaction(on connection: PGConnection) -> String {
        let row = try? connection.query("""
            SELECT pid, coalesce(nullif(application_name, ''), '?'), coalesce(state, '?'),
                   extract(epoch FROM now() - xact_start)::bigint
            FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()
            ORDER BY xact_start LIMIT 1
            """).rows.first
        guard let row, let pid = row[0] else { return "a transaction that has since finished" }
        return "oldest open transaction: pid \(pid), \(row[1] ?? "?"), \(row[2] ?? "?"), open \(row[3] ?? "?") s"
    }
}

public struct LockWaitTimedOut: Error, CustomStringConvertible {
    public let what: String
    public let waited: Duration
    public let holder: String
    public var description: String {
        "\(what): gave up after \(waited.compactDescription) waiting for a lock on a product table (\(holder)); run it again when that transaction has ended"
    }
}
