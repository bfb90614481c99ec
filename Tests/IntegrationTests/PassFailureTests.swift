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

    /// The same through a right taken away while the daemon runs as its own runtime role: one
    /// error line, growing waits, one line when the right is back.
    @Test func aRevokedRightBacksOffAndRecoversOnce() async throws {
        try await withAppDatabase { app in
            let directory = try TemporaryDirectory()
            let migrate = try await DaemonProcess.run(["migrate", "--config", try app.ownerConfig(in: directory)])
            #expect(migrate.status == 0, "\(migrate.stderr)")
            try await app.grantGenerously()
            let daemon = try DaemonProcess(["run", "--config", try app.runtimeConfig(in: directory, ["log.level": "debug"])])
            defer { daemon.sigkill() }
            // The app's rows are from before rollupd: adopted, then caught up.
            #expect(await daemon.waitForStderr(containing: "caught up rows=", timeout: .seconds(60)), "\(daemon.stderrText)")

            let runtime = SQLQuote.identifier(app.runtime)
            try await app.asOwner { connection in
                try connection.query("REVOKE INSERT, UPDATE ON cost_aggregates FROM \(runtime)")
                var random = SeededRandom(seed: 1403)
                try Workload.insertEvents(count: 5, maxAgeHours: 1, random: &random, on: connection)
            }
            #expect(await daemon.waitForStderr(containing: "attempt=4", timeout: .seconds(90)), "\(daemon.stderrText)")
            let errors = daemon.stderrLines.filter { $0.hasPrefix("<3>pass failed") }
            #expect(errors.count == 1, "\(daemon.stderrText)")
            #expect(errors.first?.contains("permission denied") == true && errors.first?.contains("sqlstate=42501") == true, "\(daemon.stderrText)")
            let waits = Self.retryWaits(daemon.stderrLines).filter { $0.attempt <= 4 }
            #expect(waits.map(\.attempt) == [1, 2, 3, 4], "\(waits)")
            #expect(zip(waits, waits.dropFirst()).allSatisfy { $0.seconds <= $1.seconds + 0.001 }, "the waits never shrink (each at least half of double the one before): \(waits)")

            try await app.asOwner { try $0.query("GRANT INSERT, UPDATE ON cost_aggregates TO \(runtime)") }
            #expect(await daemon.waitForStderr(containing: "rolling up again after the failure", timeout: .seconds(90)), "\(daemon.stderrText)")
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

    /// A configured source whose table is not there is a configuration error naming the key,
    /// for prepare-source and for once, never a retry loop.
    @Test func aConfiguredSourceWithoutItsTableIsAConfigurationError() async throws {
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, extraYAML: """
                sources:
                  ledger:
                    table: billing.ledger
                    kind: cost
                    project_id: "=p"
                    feature: "=f"
                    model: model
                    created_at: created_at
                    input_tokens: input_tokens
                    output_tokens: output_tokens
                """)
            for arguments in [["prepare-source", "ledger", "--apply"], ["once"]] {
                let outcome = try await DaemonProcess.run(arguments + ["--config", config], timeout: .seconds(60))
                #expect(outcome.status == 78, "\(arguments): \(outcome.stderr)")
                #expect(outcome.stderr.contains("\"billing\".\"ledger\""), "\(arguments): \(outcome.stderr)")
                #expect(outcome.stderr.contains("sources.ledger.table"), "\(arguments): \(outcome.stderr)")
            }
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
