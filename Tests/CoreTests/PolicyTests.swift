import Configuration
import Logging
import Postgres
import RollupdCore
import Systemd
import Testing

@Suite struct BackoffTests {
    /// The table in Backoff's doc comment, before jitter (jitter near 1 gives the full delay).
    @Test func delaysDoubleUpToTheCap() {
        let backoff = Backoff()
        let full = (1...9).map { backoff.delay(afterFailures: $0, jitter: 0.999_999) }
        #expect(full == [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000].map { Duration.milliseconds($0) })
        #expect(backoff.delay(afterFailures: 1, jitter: 0.999_999) == .milliseconds(500))
        #expect(backoff.delay(afterFailures: 1, jitter: 0) == .milliseconds(250))
        #expect(backoff.delay(afterFailures: 100, jitter: 0.999_999) == .seconds(60))
    }
}

@Suite struct FailureStreakTests {
    @Test func eachDistinctErrorIsNewOnceAndSuccessEndsTheStreak() {
        var streak = FailureStreak()
        let endedNothing = streak.succeeded()
        #expect(!endedNothing)
        let first = streak.failed("refused", backoff: Backoff(base: .seconds(1), cap: .seconds(60)), jitter: 0.999_999)
        #expect(first.isNew && first.wait == .seconds(1))
        let again = streak.failed("refused", backoff: Backoff(base: .seconds(1), cap: .seconds(60)), jitter: 0.999_999)
        #expect(!again.isNew && again.wait == .seconds(2))
        let other = streak.failed("timeout", jitter: 0)
        #expect(other.isNew && streak.failures == 3)
        let ended = streak.succeeded()
        #expect(ended && streak.failures == 0 && streak.lastError == nil)
        let afterwards = streak.failed("refused", jitter: 0)
        #expect(afterwards.isNew)
    }
}

@Suite struct DurationParsingTests {
    @Test(arguments: [("250ms", 250), ("1.5s", 1500), ("2", 2000), ("0.25", 250), ("5m", 300_000), ("1h", 3_600_000), ("30d", 2_592_000_000)])
    func parses(text: String, milliseconds: Int64) {
        #expect(parseDuration(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "soon", "-1s", "5 minutes", "1w", "nan"])
    func rejects(text: String) {
        #expect(parseDuration(text) == nil)
    }
}

@Suite struct MigrationPlanTests {
    let files = [
        (file: MigrationFile(version: 1, name: "a", sql: "select 1"), checksum: "c1"),
        (file: MigrationFile(version: 2, name: "b", sql: "select 2"), checksum: "c2"),
    ]

    @Test func pendingAreTheUnappliedInOrder() throws {
        let pending = try MigrationPlan.pending(files: files.reversed(), applied: [AppliedMigration(version: 1, name: "a", checksum: "c1")])
        #expect(pending.map(\.version) == [2])
    }

    @Test func aChangedChecksumIsRefused() {
        #expect(throws: MigrationError.changedAfterApply(version: 1, name: "a")) {
            try MigrationPlan.pending(files: files, applied: [AppliedMigration(version: 1, name: "a", checksum: "other")])
        }
    }

    @Test func anAppliedMigrationWithoutAFileIsRefused() {
        #expect(throws: MigrationError.missingFile(version: 9, name: "z")) {
            try MigrationPlan.pending(files: files, applied: [AppliedMigration(version: 9, name: "z", checksum: "x")])
        }
    }

    @Test func fileNames() {
        #expect(MigrationFile.parseFileName("003_change_capture.sql")! == (3, "change_capture"))
        #expect(MigrationFile.parseFileName("README.md") == nil)
        #expect(MigrationFile.parseFileName("x_y.sql") == nil)
    }
}

@Suite struct IdentifierTests {
    @Test func quotingDoublesQuotesAndKeepsCase() throws {
        #expect(try SQLIdentifier("sessionId").quoted == "\"sessionId\"")
        #expect(try SQLIdentifier("a\"b").quoted == "\"a\"\"b\"")
        #expect(try QualifiedName(parsing: "analytics.\"AnalyticsEvent\"").quoted == "\"analytics\".\"AnalyticsEvent\"")
        #expect(try QualifiedName(parsing: "\"odd.name\"").quoted == "\"odd.name\"")
    }

    @Test func invalidIdentifiersAreRejected() {
        #expect(throws: SQLIdentifier.Invalid.empty) { try SQLIdentifier("") }
        #expect(throws: SQLIdentifier.Invalid.self) { try SQLIdentifier(String(repeating: "x", count: 64)) }
        #expect(throws: SQLIdentifier.Invalid.self) { try SQLIdentifier("bad\u{0}name") }
        #expect(throws: SQLIdentifier.Invalid.self) { try QualifiedName(parsing: "a.b.c") }
    }

    @Test func textArrayParametersQuoteEveryElement() {
        #expect(["a", "b,c", "d\"e", "f\\g"].pgText == #"{"a","b,c","d\"e","f\\g"}"#)
    }
}

@Suite struct LogFormatTests {
    @Test func linesCarryTheSyslogPriorityAndSortedFields() {
        let line = PriorityPrefixLogHandler.format(level: .error, message: "pass failed", metadata: ["source": "events", "sqlstate": "40001", "note": "two words"])
        #expect(line == "<3>pass failed note=\"two words\" source=events sqlstate=40001")
        #expect(PriorityPrefixLogHandler.priority(.info) == 6)
        #expect(PriorityPrefixLogHandler.priority(.debug) == 7)
    }
}

@Suite struct ReloadPolicyTests {
    func config(_ values: [String: String]) throws -> RollupdConfig { try parseConfig(values) }

    @Test func intervalsRetentionAndLogLevelReload() throws {
        let old = try config([:])
        let new = try config(["rollup.poll_interval": "5s", "retention.events": "7d", "retention.cost_aggregates": "30d", "log.level": "debug", "leader.standby_poll": "1s"])
        #expect(ReloadPolicy.keysNeedingRestart(from: old, to: new) == [])
    }

    @Test func connectionZoneLockAndLogFormatNeedARestart() throws {
        let old = try config([:])
        let new = try config(["database.url": "host=elsewhere", "rollup.time_zone": "Asia/Kolkata", "leader.lock_key": "1", "log.format": "text", "migrations.directory": "/x"])
        #expect(ReloadPolicy.keysNeedingRestart(from: old, to: new) == ["database.*", "migrations.*", "rollup.time_zone", "leader.lock_key", "log.format"])
    }
}

@Suite struct JournalFieldTests {
    @Test func metadataBecomesUpperCaseFieldsAndSqlstateKeepsItsName() {
        let fields = JournalLogHandler.fields(message: "pass failed", priority: 3, identifier: "rollupd",
                                              metadata: ["source": "events", "sqlstate": "40001", "took-ms": "12"])
        #expect(fields == ["MESSAGE=pass failed", "PRIORITY=3", "SYSLOG_IDENTIFIER=rollupd",
                           "ROLLUPD_SOURCE=events", "SQLSTATE=40001", "ROLLUPD_TOOK_MS=12"])
    }
}
