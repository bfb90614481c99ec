import Foundation
import Postgres
import Testing

/// A pass that fails (a rollup table gone, a statement timeout) is retried with backoff that
/// grows, reported once, and its recovery once, through the real binary.
@Suite struct PassFailureTests {
    /// The retry waits the daemon logged, in order, for the lines that carry `attempt=` and `retry_in=`.
    static func retryWaits(_ lines: [String]) -> [(attempt: Int, seconds: Double)] {
        lines.compactMap { line in
            guard let attempt = line.firstMatch(of: /attempt=(\d+)/), let wait = line.firstMatch(of: /retry_in=([0-9.]+)(ms|s|m)/) else { return nil }
            let value = Double(wait.output.1)!
            let seconds = wait.output.2 == "ms" ? value / 1000 : wait.output.2 == "m" ? value * 60 : value
            return (Int(attempt.output.1)!, seconds)
        }
    }

    @Test func aFailingPassBacksOffReportsOnceAndRecoversOnce() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "failing-pass")
            defer { Task { await session.close() } }
            try await session.run { connection in
                var random = SeededRandom(seed: 1401)
                try Workload.insertEvents(count: 50, maxAgeHours: 24, random: &random, on: connection)
            }
            let directory = try TemporaryDirectory()
            let daemon = try DaemonProcess(["run", "--config", try DaemonConfig.file(in: directory, database: database, ["log.level": "debug"])])
            defer { daemon.sigkill() }
            #expect(await daemon.waitForStderr(containing: "<6>rolled up events", timeout: .seconds(60)), "\(daemon.stderrText)")

            // The product's rollup table goes away (renamed): every events pass fails the same way.
            try await session.run { connection in
                try connection.query("ALTER TABLE cost_aggregates RENAME TO cost_aggregates_away")
                var random = SeededRandom(seed: 1402)
                try Workload.insertEvents(count: 5, maxAgeHours: 1, random: &random, on: connection)
            }
            #expect(await daemon.waitForStderr(containing: "attempt=5", timeout: .seconds(90)), "\(daemon.stderrText)")
            let failing = daemon.stderrLines
            // (The retention service, on its own connection, reports the missing table once too.)
            let errors = failing.filter { $0.hasPrefix("<3>pass failed") }
            #expect(errors.count == 1, "one line for one distinct error:\n\(daemon.stderrText)")
            #expect(errors.first?.contains("cost_aggregates") == true, "\(daemon.stderrText)")
            #expect(failing.filter { $0.contains("leader: rolling up") }.count == 1, "no new 'leader' line per retry:\n\(daemon.stderrText)")
            #expect(!failing.contains { $0.contains("reachable again") || $0.contains("rolling up again") }, "\(daemon.stderrText)")
            // 0.5 s doubling (each scaled by a jitter in [0.5, 1)): the streak is not reset by taking the lock.
            let waits = Self.retryWaits(failing)
            #expect(waits.map(\.attempt).prefix(5) == [1, 2, 3, 4, 5], "\(waits)")
            for (attempt, seconds) in waits where attempt <= 5 {
                let nominal = 0.5 * Double(1 << (attempt - 1))
                #expect(seconds >= nominal * 0.5 - 0.001 && seconds <= nominal + 0.001, "attempt \(attempt) waited \(seconds) s")
            }

            try await session.run { connection in try connection.query("ALTER TABLE cost_aggregates_away RENAME TO cost_aggregates") }
            #expect(await daemon.waitForStderr(containing: "rolling up again after the failure", timeout: .seconds(90)), "\(daemon.stderrText)")
            let recovered = try await Self.waitUntilExact(session: session, daemon: daemon)
            #expect(recovered == [], "\(daemon.stderrText)")
            #expect(daemon.stderrLines.filter { $0.contains("rolling up again after the failure") }.count == 1, "\(daemon.stderrText)")
            #expect(daemon.stderrLines.filter { $0.hasPrefix("<3>pass failed") }.count == 1, "\(daemon.stderrText)")
        }
    }

    /// A statement that runs past database.statement_timeout says which keys to change. (The
    /// pass is made to wait on a row lock, which the timeout counts, so it times out on any machine.)
    @Test func aStatementTimeoutNamesTheKeysThatFixIt() async throws {
        try await withTestDatabaseAsync { database in
            let holder = database.session(label: "lock-holder")
            defer { Task { await holder.close() } }
            try await holder.run { connection in
                try connection.query("BEGIN")
                try connection.query("SELECT 1 FROM rollupd.sources WHERE source = 'events' FOR UPDATE")
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, ["database.statement_timeout": "1s"])
            let outcome = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(60))
            _ = try await holder.run { try $0.query("ROLLBACK") }
            #expect(outcome.status == 1, "\(outcome.stderr)")
            #expect(outcome.stderr.contains("statement timeout"), "\(outcome.stderr)")
            #expect(outcome.stderr.contains("lower rollup.max_rows_per_transaction, now 100000"), "\(outcome.stderr)")
            #expect(outcome.stderr.contains("database.statement_timeout, 1s"), "\(outcome.stderr)")
        }
    }

    static func waitUntilExact(session: DatabaseSession, daemon: DaemonProcess) async throws -> [String] {
        var differences: [String] = []
        for _ in 0..<600 {
            differences = try await session.run { try Oracle.differences(timeZone: "UTC", on: $0) }
            if differences.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(100))
        }
        return differences
    }
}
