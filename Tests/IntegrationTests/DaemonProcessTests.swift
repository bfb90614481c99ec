import Foundation
import Postgres
import RollupdStore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real `rollupd` executable, started as a child process: crashes, signals, exit codes, log
/// lines, leader hand-over. The rollups are always checked against `Oracle`.
@Suite struct DaemonProcessTests {
    // MARK: crash safety

    /// rollupd is SIGKILLed at random moments (mid-pass included) while writers commit, abort and
    /// hold transactions open; after a final `rollupd once` every rollup equals the recomputation.
    ///
    /// At least `minimumCycles` kills; more (up to `timeBudget`) while the instances have not yet
    /// committed `minimumPasses` passes between them, so a loaded machine, where an instance needs
    /// longer to start, still gets a test that killed a daemon at work.
    /// With `rollup.max_rows_per_transaction` 7 too, so kills land between and inside the many
    /// transactions of one pass.
    @Test(.timeLimit(.minutes(2)), arguments: ["100000", "7"])
    func sigkillAtRandomMomentsUnderConcurrentWritersLosesAndDoublesNothing(maxRowsPerTransaction: String) async throws {
        let seed: UInt64 = 20_260_601
        let minimumCycles = 18
        let minimumPasses: Int64 = 20
        let timeBudget = Duration.seconds(40)
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, [
                "rollup.time_zone": "Asia/Kolkata", "rollup.max_rows_per_transaction": maxRowsPerTransaction,
            ])
            let writers = (0..<3).map { database.session(label: "writer-\($0)") }
            let checker = database.session(label: "checker")
            defer { Task { await checker.close() } }
            // Rows from before rollupd: adopted (7 at a time with the small bound) while kills land.
            try await checker.run { connection in
                var random = SeededRandom(seed: seed)
                try Workload.insertPreexisting(events: 200, analytics: 150, random: &random, on: connection)
            }
            let stop = StopFlag()
            var random = SeededRandom(seed: seed)
            var killedBy: [Int32?] = []
            var lifetimes: [Int] = []
            var reachedLeader = 0
            var passes: Int64 = 0
            var logs: [String] = []
            let started = ContinuousClock.now

            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, writer) in writers.enumerated() {
                    group.addTask { try await Workload.writeTransactions(with: writer, seed: seed &+ UInt64(index) &+ 1) { _ in !stop.isSet } }
                }
                defer { stop.set() }
                // Enough kills, and enough of them landing on a leader at work (a slow, loaded machine
                // kills more daemons while they start up), within the time budget.
                while killedBy.count < minimumCycles
                    || ((passes < minimumPasses || reachedLeader < minimumCycles / 3) && ContinuousClock.now - started < timeBudget) {
                    let cycle = killedBy.count
                    let daemon = try DaemonProcess(["run", "--config", config])
                    // Two kills in three land on a leader at work, whatever the machine's speed: wait
                    // until it leads, then a random moment into its passes. The rest land during start-up.
                    let duringPasses = Int.random(in: 0..<3, using: &random) > 0
                    let lifetime = duringPasses ? Int.random(in: 0...400, using: &random) : Int.random(in: 0...300, using: &random)
                    if duringPasses {
                        _ = await daemon.waitForStderr(containing: "leader: rolling up", timeout: .seconds(20))
                    }
                    try await Task.sleep(for: .milliseconds(lifetime))
                    #expect(daemon.exitStatus == nil, "cycle \(cycle): rollupd exited on its own:\n\(daemon.stderrText)")
                    daemon.sigkill()
                    killedBy.append(await daemon.waitForExit(timeout: .seconds(10)))
                    lifetimes.append(lifetime)
                    let stderr = daemon.stderrText
                    if stderr.contains("leader: rolling up") { reachedLeader += 1 }
                    logs.append("--- cycle \(cycle), killed after \(lifetime) ms:\n\(stderr)")
                    // Committed passes only: a pass a kill interrupted rolled back and is not counted.
                    passes = try await checker.run { try Self.totalPasses(on: $0) }
                }
                stop.set()
                try await group.waitForAll()
            }
            for writer in writers { await writer.close() }
            let cycles = killedBy.count
            let summary = "seed \(seed), \(cycles) kills after \(lifetimes) ms, \(reachedLeader) instances became leader, \(passes) passes"

            #expect(killedBy.allSatisfy { $0 == 128 + SIGKILL }, "exit statuses: \(killedBy)")
            // The kills landed on daemons at work, not only on starting processes.
            #expect(reachedLeader >= minimumCycles / 3, "\(summary):\n\(logs.joined())")
            #expect(passes >= minimumPasses, "\(summary):\n\(logs.joined())")

            let once = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(60))
            #expect(once.status == 0, "rollupd once: \(once)")
            #expect(once.stderr.contains("rolled up events"), "rollupd once: \(once)")

            let (events, differences) = try await checker.run { connection in
                (try connection.query("SELECT count(*) FROM events").rows[0].int64(0),
                 try Oracle.differences(timeZone: "Asia/Kolkata", on: connection))
            }
            #expect(events > 1000, "the writers should have written a real amount of data, not \(events) events")
            #expect(differences == [], "\(summary)")
        }
    }

    private static func totalPasses(on connection: PGConnection) throws -> Int64 {
        try connection.query("SELECT coalesce(sum(total_passes), 0)::bigint FROM rollupd.sources").rows[0].int64(0)
    }

    // MARK: configuration errors

    struct BadConfig: Sendable, CustomTestStringConvertible {
        var name: String
        /// nil: there is no config file at all.
        var yaml: String?
        var environment: [String: String] = [:]
        /// stderr must contain each of these.
        var mentions: [String]
        var testDescription: String { name }
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(name: "a malformed duration", yaml: "rollup:\n  poll_interval: soon\n",
                  mentions: ["config key 'rollup.poll_interval'", "ROLLUPD_ROLLUP_POLL_INTERVAL", "soon"]),
        BadConfig(name: "a duration below the minimum, from the environment", yaml: "{}\n",
                  environment: ["ROLLUPD_ROLLUP_POLL_INTERVAL": "10ms"], mentions: ["config key 'rollup.poll_interval'"]),
        BadConfig(name: "an unknown time zone", yaml: "rollup:\n  time_zone: Mars/Olympus\n",
                  mentions: ["config key 'rollup.time_zone'", "Mars/Olympus"]),
        BadConfig(name: "a misspelt key", yaml: "rollup:\n  pol_interval: 1s\n", mentions: ["config key 'rollup.pol_interval'"]),
        BadConfig(name: "a section written as a scalar", yaml: "rollup: 5s\n", mentions: ["config key 'rollup'"]),
        BadConfig(name: "an unknown log level", yaml: "log:\n  level: loud\n", mentions: ["config key 'log.level'", "loud"]),
        BadConfig(name: "a connection string libpq cannot parse", yaml: "database:\n  url: \"host=x port=notaport bogus\"\n",
                  mentions: ["config key 'database.url'", "missing \"=\""]),
        BadConfig(name: "invalid YAML", yaml: "rollup: [\n  poll_interval: 1s\n", mentions: ["rollupd.yaml", "not valid YAML"]),
        BadConfig(name: "a missing file", yaml: nil, mentions: ["rollupd.yaml", "does not exist"]),
        BadConfig(name: "a lock key from the environment that is not a number", yaml: "leader:\n  standby_poll: 1s\n",
                  environment: ["ROLLUPD_LEADER_LOCK_KEY": "abc"], mentions: ["config key 'leader.lock_key'", "ROLLUPD_LEADER_LOCK_KEY"]),
    ]

    /// Both `check-config` and `run` refuse a bad configuration with EX_CONFIG (78), which systemd's
    /// RestartPreventExitStatus= keys on, and say which key to fix.
    @Test(arguments: badConfigs)
    func aBadConfigurationExits78NamingTheKey(_ bad: BadConfig) async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/rollupd.yaml"
        if let yaml = bad.yaml { try directory.write("rollupd.yaml", yaml) }
        // Should a bad config slip through, `run` must not reach any real database: libpq's
        // environment points at a port nothing listens on (and `run` would then time out below).
        let environment = bad.environment.merging(["PGHOST": "127.0.0.1", "PGPORT": "1"]) { first, _ in first }
        for command in ["check-config", "run"] {
            let outcome = try await DaemonProcess.run([command, "--config", path], environment: environment, timeout: .seconds(15))
            #expect(outcome.status == 78, "rollupd \(command): \(outcome)")
            for text in bad.mentions {
                #expect(outcome.stderr.contains(text), "rollupd \(command): stderr should mention \(text): \(outcome)")
            }
            #expect(outcome.stdout.isEmpty, "rollupd \(command): \(outcome)")
        }
    }

    /// `check-config` accepts a good file, applies environment overrides, and never prints the password.
    @Test(arguments: [
        "host=127.0.0.1 port=1 user=rollupd password=s3cret dbname=app",
        "postgresql://rollupd:s3cret@127.0.0.1:1/app",
    ])
    func checkConfigPrintsTheEffectiveSettingsWithThePasswordRedacted(url: String) async throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("rollupd.yaml", DaemonConfig.yaml([
            "database.url": url, "rollup.time_zone": "Asia/Kolkata", "leader.standby_poll": "2s",
        ]))
        let outcome = try await DaemonProcess.run(["check-config", "--config", path],
                                                  environment: ["ROLLUPD_ROLLUP_POLL_INTERVAL": "250ms"], timeout: .seconds(15))
        #expect(outcome.status == 0, "\(outcome)")
        let lines = outcome.stdout.split(separator: "\n").map(String.init)
        let urlLine = lines.first { $0.hasPrefix("database.url:") }
        #expect(urlLine?.contains("password=********") == true, "\(outcome)")
        #expect(urlLine?.contains("host=127.0.0.1") == true, "\(outcome)")
        #expect(lines.contains("rollup.poll_interval: 250ms"), "the environment overrides the file: \(outcome)")
        #expect(lines.contains("rollup.time_zone: Asia/Kolkata"), "\(outcome)")
        #expect(lines.contains("leader.standby_poll: 2s"), "\(outcome)")
        #expect(!outcome.stdout.contains("s3cret") && !outcome.stderr.contains("s3cret"), "\(outcome)")
    }

    /// A connection string libpq rejects is reported by key, and the report must not quote the
    /// password back (libpq's message echoes the offending token).
    @Test func aMalformedURLIsRejectedWithoutEchoingThePassword() async throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("rollupd.yaml", DaemonConfig.yaml(["database.url": "postgresql://rollupd:s3cret%zz@127.0.0.1:1/app"]))
        let outcome = try await DaemonProcess.run(["check-config", "--config", path], timeout: .seconds(15))
        #expect(outcome.status == 78, "\(outcome)")
        #expect(outcome.stderr.contains("config key 'database.url'"), "\(outcome)")
        let leaked = outcome.stderr.contains("s3cret")
        #expect(!leaked, "libpq's parse errors quote the offending token, which may be the password")
    }

    // MARK: database trouble

    /// With the database unreachable, `run` keeps retrying with backoff, reports the error once
    /// (repeats go to debug), and still stops cleanly on SIGTERM.
    @Test func anUnreachableDatabaseIsRetriedAndReportedOnce() async throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("rollupd.yaml", DaemonConfig.yaml([
            // Port 1: nothing listens there, so every attempt is refused at once.
            "database.url": "host=127.0.0.1 port=1 user=rollupd password=hunter2 dbname=app",
            "database.connect_timeout": "1s",
            "migrations.directory": TestEnvironment.migrationsDirectory,
            "log.level": "debug",
            // Not the default 127.0.0.1:9464: another rollupd on the machine (a demo) holds it,
            // and its bind error would be a second error line.
            "metrics.listen": "off",
        ]))
        let daemon = try DaemonProcess(["run", "--config", config])
        defer { daemon.sigkill() }
        // Backoff 0.5 s, 1 s (each scaled by a jitter in [0.5, 1)): the third attempt comes within
        // 1.5 s of the first; the deadline only bounds a hang on a very busy machine.
        #expect(await daemon.waitForStderr(containing: "attempt=3", timeout: .seconds(30)), "\(daemon.stderrText)")
        #expect(daemon.exitStatus == nil, "rollupd gave up on an unreachable database:\n\(daemon.stderrText)")

        let lines = daemon.stderrLines
        let errors = lines.filter { $0.hasPrefix("<3>") || $0.hasPrefix("<2>") }
        let repeats = lines.filter { $0.hasPrefix("<7>still failing") }
        #expect(errors.count == 1, "the same error is reported once:\n\(daemon.stderrText)")
        #expect(errors.first?.hasPrefix("<3>cannot prepare the database: ") == true, "\(daemon.stderrText)")
        #expect(errors.first?.contains("retry_in=") == true && errors.first?.contains("attempt=1") == true, "\(daemon.stderrText)")
        #expect(errors.first?.contains("port 1") == true, "the error should say what was tried: \(daemon.stderrText)")
        #expect(repeats.count >= 2, "expected retries:\n\(daemon.stderrText)")
        for (index, line) in repeats.enumerated() {
            #expect(line.contains("attempt=\(index + 2)") && line.contains("retry_in="), "\(line)")
        }

        daemon.terminate()
        let status = await daemon.waitForExit(timeout: .seconds(5))
        #expect(status == 0, "SIGTERM while retrying:\n\(daemon.stderrText)")
        #expect(daemon.stderrText.contains("<6>stopped"), "\(daemon.stderrText)")

        // rollupd's own lines never carry the password...
        let own = daemon.stderrLines.filter { !$0.contains(" sl-") }
        #expect(!own.joined(separator: "\n").contains("hunter2"), "\(daemon.stderrText)")
        #expect(own.contains { $0.contains("password=********") }, "the starting line shows the redacted url: \(daemon.stderrText)")
        // ...but at debug level swift-service-lifecycle describes the service, config and all.
        let leaked = daemon.stderrText.contains("hunter2")
        #expect(!leaked, "ServiceGroup's debug lines print each service's description")
    }

    // MARK: normal operation

    /// `run` rolls up what is there and what arrives, and on SIGTERM finishes and exits 0.
    @Test func runRollsUpAndStopsCleanlyOnSigterm() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "clean-stop")
            defer { Task { await session.close() } }
            try await session.run { connection in
                var random = SeededRandom(seed: 71)
                try Workload.insertEvents(count: 400, maxAgeHours: 72, random: &random, on: connection)
                try Workload.insertAnalytics(count: 300, maxAgeHours: 72, random: &random, on: connection)
            }
            let directory = try TemporaryDirectory()
            let daemon = try DaemonProcess(["run", "--config", try DaemonConfig.file(in: directory, database: database)])
            defer { daemon.sigkill() }

            // Whatever committed before the daemon started is rolled up by its first passes.
            let first = try await Self.waitUntilRolledUp(timeZone: "UTC", session: session, daemon: daemon, timeout: Self.rollupTimeout)
            #expect(first == [], "\(daemon.stderrText)")

            // More work while it runs: new rows, verified costs, deletes, moved analytics events.
            try await session.run { connection in
                var random = SeededRandom(seed: 72)
                try Workload.insertEvents(count: 200, maxAgeHours: 24 * 5, random: &random, on: connection)
                try Workload.insertAnalytics(count: 200, maxAgeHours: 24, random: &random, on: connection)
                try Workload.verifySome(40, random: &random, on: connection)
                try Workload.deleteSome(25, random: &random, on: connection)
                try Workload.reshuffleAnalytics(25, random: &random, on: connection)
                try Workload.reassignUsers(15, random: &random, on: connection)
            }
            let second = try await Self.waitUntilRolledUp(timeZone: "UTC", session: session, daemon: daemon, timeout: Self.rollupTimeout)
            #expect(second == [], "\(daemon.stderrText)")

            daemon.terminate()
            let status = await daemon.waitForExit(timeout: .seconds(5))
            #expect(status == 0, "SIGTERM:\n\(daemon.stderrText)")
            let stderr = daemon.stderrText
            #expect(stderr.contains("<6>rolled up events"), "\(stderr)")
            #expect(stderr.contains("<6>rolled up analytics_events"), "\(stderr)")
            #expect(stderr.contains("<6>stopped"), "\(stderr)")
            #expect(!daemon.stderrLines.contains { $0.hasPrefix("<3>") || $0.hasPrefix("<2>") }, "no errors: \(stderr)")

            let (afterStop, lockHeld) = try await session.run { connection in
                (try Oracle.differences(timeZone: "UTC", on: connection),
                 try connection.query("""
                    SELECT count(*) FROM pg_locks
                    WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """).rows[0].int64(0))
            }
            #expect(afterStop == [])
            #expect(lockHeld == 0, "the leader lock goes with the daemon's session")
        }
    }

    /// Two instances on one database: one leads, one stands by; when the leader is killed, the
    /// standby takes over and keeps the rollups exact.
    @Test func aStandbyTakesOverWhenTheLeaderIsKilled() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "two-daemons")
            defer { Task { await session.close() } }
            try await session.run { connection in
                var random = SeededRandom(seed: 81)
                try Workload.insertEvents(count: 300, maxAgeHours: 48, random: &random, on: connection)
                try Workload.insertAnalytics(count: 300, maxAgeHours: 48, random: &random, on: connection)
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, ["leader.standby_poll": "200ms"])
            let daemons = [try DaemonProcess(["run", "--config", config]), try DaemonProcess(["run", "--config", config])]
            defer { for daemon in daemons { daemon.sigkill() } }

            let roles = try await Self.waitForRoles(daemons, timeout: .seconds(10))
            try #require(roles != nil, "no leader and standby:\n\(daemons.map(\.stderrText).joined(separator: "\n---\n"))")
            let (leader, standby) = roles!
            let initial = try await Self.waitUntilRolledUp(timeZone: "UTC", session: session, daemon: leader, timeout: Self.rollupTimeout)
            #expect(initial == [], "\(leader.stderrText)")
            // A standby keeps standing by while the leader lives: it never rolls anything up.
            try await Task.sleep(for: .milliseconds(600))
            #expect(!standby.stderrText.contains("leader: rolling up") && !standby.stderrText.contains("rolled up"), "\(standby.stderrText)")
            #expect(standby.stderrLines.filter { $0.contains("standby:") }.count == 1, "the role is logged once: \(standby.stderrText)")

            leader.sigkill()
            #expect(await leader.waitForExit(timeout: .seconds(5)) == 128 + SIGKILL)
            let tookOver = await standby.waitForStderr(containing: "<5>leader: rolling up", timeout: .seconds(5))
            #expect(tookOver, "the standby did not take over:\n\(standby.stderrText)")

            try await session.run { connection in
                var random = SeededRandom(seed: 82)
                try Workload.insertEvents(count: 200, maxAgeHours: 24 * 3, random: &random, on: connection)
                try Workload.insertAnalytics(count: 200, maxAgeHours: 24, random: &random, on: connection)
                try Workload.verifySome(30, random: &random, on: connection)
                try Workload.deleteSome(20, random: &random, on: connection)
            }
            let after = try await Self.waitUntilRolledUp(timeZone: "UTC", session: session, daemon: standby, timeout: Self.rollupTimeout)
            #expect(after == [], "\(standby.stderrText)")
            #expect(standby.stderrText.contains("rolled up events"), "\(standby.stderrText)")

            standby.terminate()
            #expect(await standby.waitForExit(timeout: .seconds(5)) == 0, "\(standby.stderrText)")
        }
    }

    // MARK: helpers

    /// How long to wait for rollups to equal the oracle. Usually well under a second; but a pass
    /// only counts transactions below the cluster-wide xmin, so a long transaction of another test
    /// (EngineTests inserts 200,000 rows in one) holds every database's rollups back for seconds.
    static let rollupTimeout = Duration.seconds(30)

    /// Waits for one daemon to log that it leads and the other that it stands by.
    private static func waitForRoles(_ daemons: [DaemonProcess], timeout: Duration) async throws -> (leader: DaemonProcess, standby: DaemonProcess)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let leaders = daemons.filter { $0.stderrText.contains("<5>leader: rolling up") }
            let standbys = daemons.filter { $0.stderrText.contains("<5>standby: another instance holds the leader lock") }
            if leaders.count + standbys.count == 2 {
                #expect(leaders.count == 1 && standbys.count == 1, "exactly one leader")
                guard leaders.count == 1, standbys.count == 1 else { return nil }
                return (leaders[0], standbys[0])
            }
            if daemons.contains(where: { $0.exitStatus != nil }) { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Polls until the rollups are non-empty and equal the oracle; the last differences otherwise.
    /// (Equality can lag a little behind the commit: a pass stops below transactions other tests
    /// hold open anywhere on the cluster.)
    private static func waitUntilRolledUp(
        timeZone: String, session: DatabaseSession, daemon: DaemonProcess, timeout: Duration
    ) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        var differences = ["nothing checked yet"]
        while ContinuousClock.now < deadline && daemon.exitStatus == nil {
            differences = try await session.run { connection in
                let empty = try connection.query("""
                    SELECT NOT EXISTS (SELECT 1 FROM cost_aggregates) OR NOT EXISTS (SELECT 1 FROM hourly_rollups)
                    """).rows[0].bool(0)
                return empty ? ["rollups still empty"] : try Oracle.differences(timeZone: timeZone, on: connection)
            }
            if differences.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(100))
        }
        if let status = daemon.exitStatus { differences.append("rollupd exited with \(status)") }
        return differences
    }
}
