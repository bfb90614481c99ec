import Foundation
import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Configured sources (`sources.<name>.*`) through the real `rollupd` binary: `prepare-source`
/// (print, then --apply), `once` refusing an unprepared source, and `run` rolling up seed-shaped
/// tables beside the built-in ones while rows (bad ones included) arrive, change and go. The
/// rollups are compared with SourceOracle's independent SQL; rejected rows with what rollupd
/// records, logs, counts and reports.
@Suite struct ConfiguredSourceDaemonTests {
    // MARK: configuration

    /// Seed 000's cost_events (all text) and seed 002's token_usage (micro-dollars, NULL costs
    /// priced from model_pricing), as README.md's "Sources: your own tables" writes them.
    static let costSourcesYAML = """
        sources:
          cost_events:
            table: public.cost_events
            kind: cost
            project_id: "=founders-lens"
            feature: operation
            model: model
            user_id: user_id
            created_at: created_at
            input_tokens: input_tokens
            output_tokens: output_tokens
            cost_usd: total_cost
          token_usage:
            table: token_usage
            kind: cost
            project_id: "=tutor"
            feature: "=session"
            model: model
            provider: provider
            user_id: user_id
            created_at: created_at
            input_tokens: prompt_tokens
            output_tokens: completion_tokens
            cost_usd: cost_usd
            cost_unit: micro_usd

        """

    static let analyticsSourceYAML = """
        sources:
          analytics_event:
            table: '"AnalyticsEvent"'
            kind: analytics
            session_id: sessionId
            event_type: eventType
            tool_name: toolName
            risk_mode: properties->riskMode
            occurred_at: timestamp

        """

    static let timeZone = "Asia/Kolkata"
    static let rollupTimeout = Duration.seconds(45)

    // MARK: 1. two cost sources of different shapes beside events, through prepare-source and run

    @Test(.timeLimit(.minutes(3)))
    func twoCostSourcesRollUpWhileTheDaemonRunsAndBadRowsAreRejectedOnce() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "configured-daemon")
            defer { Task { await session.close() } }
            try await session.run { connection in
                try connection.execute(script: SeedShapes.costEvents + SeedShapes.tokenUsage)
                try ConfiguredSourceTests.loadPricing(on: connection)
                try connection.query("INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 3) g")
                // Rows written before prepare-source (rollupd_xid NULL afterwards): counted by the first pass.
                try connection.query("""
                    INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, user_id, created_at)
                    SELECT 'pre_' || g, (ARRAY['generate-vision-framework-v2', 'lens-score'])[1 + g % 2],
                           (ARRAY['gpt-4-turbo-preview', 'gpt-4o-mini', 'gpt-4o'])[1 + g % 3],
                           (100 + g * 13)::text, (20 + g * 5)::text, (120 + g * 18)::text, '0', '0',
                           CASE WHEN g % 4 = 0 THEN '' ELSE round(g * 0.00137, 5)::text END,
                           CASE WHEN g % 3 <> 0 THEN (SELECT id FROM users ORDER BY email OFFSET g % 3 LIMIT 1) END,
                           to_char((now() - g * interval '41 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                    FROM generate_series(1, 80) g
                    """)
                try connection.query(SeedShapes.insertTokenUsage(80))
                var random = SeededRandom(seed: 6_001)
                try Workload.insertEvents(count: 200, maxAgeHours: 48, random: &random, on: connection)
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, ["rollup.time_zone": Self.timeZone],
                                               extraYAML: Self.costSourcesYAML)

            // prepare-source without --apply prints the SQL and changes nothing.
            for (name, table) in [("cost_events", "cost_events"), ("token_usage", "token_usage")] {
                let printed = try await DaemonProcess.run(["prepare-source", name, "--config", config], timeout: .seconds(30))
                #expect(printed.status == 0, "\(printed)")
                #expect(printed.stdout.contains("ADD COLUMN IF NOT EXISTS rollupd_xid xid8"), "\(printed)")
                #expect(printed.stdout.contains("CREATE TRIGGER \"rollupd_capture_update_\(name)\""), "\(printed)")
                #expect(printed.stdout.contains("CREATE TRIGGER \"rollupd_capture_delete_\(name)\""), "\(printed)")
                #expect(printed.stdout.contains("\"\(table)\""), "\(printed)")
                let untouched = try await session.run { try Self.preparation(of: table, source: name, on: $0) }
                #expect(untouched == Preparation(column: false, triggers: 0, registered: false), "prepare-source without --apply changed \(table)")
            }
            for (name, table) in [("cost_events", "cost_events"), ("token_usage", "token_usage")] {
                let applied = try await DaemonProcess.run(["prepare-source", name, "--apply", "--config", config], timeout: .seconds(30))
                #expect(applied.status == 0, "\(applied)")
                #expect(applied.stderr.contains("source prepared"), "\(applied)")
                let prepared = try await session.run { try Self.preparation(of: table, source: name, on: $0) }
                #expect(prepared == Preparation(column: true, triggers: 2, registered: true), "\(table) after --apply")
            }

            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            // The oracle's view of the bad rows: cost_events ids it excludes; token_usage's own predicate.
            var badCostEvents: Set<String> = []
            let first = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try Self.costDifferences(excluding: [], on: connection)
                }
            }
            #expect(first == [], "the rows from before prepare-source:\n\(daemon.stderrText)")

            // While it runs: good and bad rows, in several transactions.
            let badTokenUsage = [
                "00000000-0000-0000-0000-0000000000b1": "negative tokens",
                "00000000-0000-0000-0000-0000000000b2": "no price in model_pricing for model gpt-unknown",
                "00000000-0000-0000-0000-0000000000b3": "cost not a number or negative",
            ]
            let badCostReasons = [
                "bad_text_tokens": "tokens missing or not a number",
                "bad_negative": "negative tokens",
                "bad_time": "time missing or not a timestamp",
                "bad_cost": "cost not a number or negative",
                "bad_unpriced": "no price in model_pricing for model mystery-model",
                "bad_then_fixed": "tokens missing or not a number",
                "bad_then_deleted": "tokens missing or not a number",
            ]
            badCostEvents = Set(badCostReasons.keys)
            try await session.run { connection in
                let user = try connection.query("SELECT id::text FROM users ORDER BY email LIMIT 1").rows[0].string(0)
                try connection.query("""
                    INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, user_id, created_at) VALUES
                    ('req_1', 'generate-vision-framework-v2', 'gpt-4-turbo-preview', '2145', '1232', '3377', '0.02145', '0.03696', '0.05841', $1::uuid, '2025-10-05T12:10:00.000Z'),
                    ('req_2', 'generate-vision-framework-v2', 'gpt-4-turbo-preview', ' 100 ', '50', '150', '0', '0', '0.0025', NULL, '2025-10-05T12:40:00+02:00'),
                    ('req_3', 'lens-score', 'gpt-4o-mini', '800', '200', '1000', '0', '0', '1e-4', $1::uuid, '2025-10-05T18:29:59Z'),
                    ('req_4', 'lens-score', 'gpt-4o-mini', '1000', '1000', '2000', '', '', '', $1::uuid, '2025-10-05T18:30:00Z'),
                    ('bad_text_tokens', 'lens-score', 'gpt-4o-mini', 'n/a', '10', '10', '0', '0', '0.01', NULL, '2025-10-05T12:00:00Z'),
                    ('bad_negative', 'lens-score', 'gpt-4o-mini', '10', '-5', '5', '0', '0', '0.01', $1::uuid, '2025-10-05T12:00:00Z'),
                    ('bad_time', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '0.01', NULL, '2025-13-45T00:00:00Z')
                    """, [user])
            }
            try await session.run { connection in
                try connection.query("""
                    INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, created_at) VALUES
                    ('bad_cost', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '$0.01', '2025-10-05T12:00:00Z'),
                    ('bad_unpriced', 'lens-score', 'mystery-model', '10', '5', '15', '0', '0', '', '2025-10-05T12:00:00Z'),
                    ('bad_then_fixed', 'lens-score', 'gpt-4o', 'ten', '5', '15', '0', '0', '', '2025-10-06T01:00:00Z'),
                    ('bad_then_deleted', 'lens-score', 'gpt-4o', 'n/a', '5', '15', '0', '0', '0.2', '2025-10-06T01:00:00Z')
                    """)
                try connection.query("""
                    INSERT INTO token_usage (id, provider, model, prompt_tokens, completion_tokens, cost_usd, created_at) VALUES
                        ('00000000-0000-0000-0000-0000000000b1', 'openai', 'gpt-4o-mini', -3, 10, NULL, now() - interval '2 hours'),
                        ('00000000-0000-0000-0000-0000000000b2', 'openai', 'gpt-unknown', 10, 10, NULL, now() - interval '3 hours'),
                        ('00000000-0000-0000-0000-0000000000b3', 'openai', 'gpt-4o', 10, 10, -5, now() - interval '4 hours'),
                        ('00000000-0000-0000-0000-0000000000a1', 'openai', 'gpt-4o', 1200, 300, NULL, now() - interval '5 hours'),
                        ('00000000-0000-0000-0000-0000000000a2', 'anthropic', 'claude-3-5-haiku-20241022', 700, 70, 4321, now())
                    """)
                var random = SeededRandom(seed: 6_002)
                try Workload.insertEvents(count: 100, maxAgeHours: 24 * 3, random: &random, on: connection)
            }
            let expectedRejected = badCostReasons.mapKeys { "cost_events/\($0)" }.merging(badTokenUsage.mapKeys { "token_usage/\($0)" }) { $1 }
            let excludedNow = badCostEvents
            let second = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try Self.costDifferences(excluding: excludedNow, on: connection)
                        + Self.rejectedDifferences(expected: expectedRejected, sources: ["cost_events", "token_usage"], on: connection)
                }
            }
            #expect(second == [], "rows inserted while running:\n\(daemon.stderrText)")

            // Updates and deletes while it runs: a cost changes, a bad row is fixed, one is deleted,
            // one stays bad but is touched (read again: must not be recorded or logged twice).
            // One transaction, so the pass that shows its effect on the rollups also read the touched bad row.
            try await session.run { connection in try connection.transaction { connection in
                try connection.query("UPDATE cost_events SET total_cost = '0.5', operation = 'lens-rescore' WHERE id = 'req_1'")
                try connection.query("UPDATE cost_events SET input_tokens = '10' WHERE id = 'bad_then_fixed'")
                try connection.query("UPDATE cost_events SET operation = 'lens-score-v2' WHERE id = 'bad_text_tokens'")
                try connection.query("DELETE FROM cost_events WHERE id IN ('req_3', 'pre_7', 'pre_8', 'bad_then_deleted')")
                try connection.query("UPDATE token_usage SET cost_usd = 999 WHERE cost_usd IS NULL AND prompt_tokens BETWEEN 300 AND 500")
                try connection.query("UPDATE token_usage SET completion_tokens = completion_tokens + 1 WHERE prompt_tokens BETWEEN 501 AND 600")
                try connection.query("UPDATE token_usage SET model = 'gpt-4o-mini-2' WHERE id = '00000000-0000-0000-0000-0000000000b2'")
                try connection.query("DELETE FROM token_usage WHERE prompt_tokens BETWEEN 200 AND 299")
                var random = SeededRandom(seed: 6_003)
                try Workload.verifySome(20, random: &random, on: connection)
                try Workload.deleteSome(15, random: &random, on: connection)
            } }
            badCostEvents.subtract(["bad_then_fixed", "bad_then_deleted"])
            let excludedLater = badCostEvents
            let third = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try Self.costDifferences(excluding: excludedLater, on: connection)
                }
            }
            #expect(third == [], "after updates and deletes:\n\(daemon.stderrText)")

            // Recorded once each, with the reasons (the still-bad row touched above kept its one row).
            let recorded = try await session.run { connection in
                try connection.query("SELECT source || '/' || row_id, reason, count(*) OVER (PARTITION BY source, row_id) FROM rollupd.rejected_rows")
                    .rows.map { (try $0.string(0), try $0.string(1), try $0.int64(2)) }
            }
            #expect(recorded.allSatisfy { $0.2 == 1 }, "\(recorded)")
            #expect(Set(recorded.map(\.0)) == Set(expectedRejected.keys), "\(recorded)")
            for (key, reason, _) in recorded {
                #expect(reason.contains(expectedRejected[key] ?? "?"), "\(key): \(reason)")
            }

            // Logged once each, with their ids.
            let logged = Self.loggedRejections(daemon.stderrLines)
            for key in expectedRejected.keys.sorted() {
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                let lines = logged.filter { $0.source == parts[0] && $0.ids.contains(parts[1]) }
                #expect(lines.count == 1, "\(key) logged \(lines.count) times:\n\(daemon.stderrText)")
            }
            #expect(logged.reduce(0) { $0 + $1.ids.count } == expectedRejected.count, "\(logged)")
            #expect(!daemon.stderrLines.contains { $0.hasPrefix("<3>") || $0.hasPrefix("<2>") }, "no errors: \(daemon.stderrText)")

            // status --json lists the configured sources, rolled up, beside the built-in ones.
            let status = try await DaemonProcess.run(["status", "--json", "--config", config], timeout: .seconds(30))
            #expect(status.status == 0, "\(status)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status)")
            let report = try #require(json["status"] as? [String: Any], "\(status)")
            let sources = try #require(report["sources"] as? [[String: Any]], "\(status)")
            let byName = Dictionary(sources.map { ($0["source"] as? String ?? "?", $0) }) { first, _ in first }
            #expect(Set(byName.keys).isSuperset(of: ["events", "analytics_events", "cost_events", "token_usage"]), "\(status)")
            for name in ["cost_events", "token_usage"] {
                #expect(byName[name]?["initialized"] as? Bool == true, "\(name): \(status)")
                #expect((byName[name]?["totalPasses"] as? Int ?? 0) > 0, "\(name): \(status)")
            }
            #expect(report["rejectedRows"] as? Int == expectedRejected.count, "\(status)")
            #expect(json["healthy"] as? Bool == true, "\(status)")

            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0, "SIGTERM:\n\(daemon.stderrText)")
        }
    }

    // MARK: 2. an unprepared source stops once (and run) with 78, naming prepare-source

    @Test(.timeLimit(.minutes(2)))
    func onceBeforePrepareSourceExits78NamingTheCommand() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "unprepared")
            defer { Task { await session.close() } }
            try await session.run { connection in
                try connection.execute(script: SeedShapes.costEvents + SeedShapes.tokenUsage)
                try connection.query("""
                    INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, created_at)
                    VALUES ('req_1', 'lens-score', 'gpt-4o', '10', '5', '15', '0', '0', '0.01', '2025-10-05T12:00:00Z')
                    """)
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, extraYAML: Self.costSourcesYAML)

            let neither = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(60))
            #expect(neither.status == 78, "\(neither)")
            #expect(neither.stderr.contains("rollupd prepare-source cost_events") || neither.stderr.contains("rollupd prepare-source token_usage"),
                    "\(neither)")

            let applied = try await DaemonProcess.run(["prepare-source", "cost_events", "--apply", "--config", config], timeout: .seconds(30))
            #expect(applied.status == 0, "\(applied)")
            let once = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(60))
            #expect(once.status == 78, "\(once)")
            #expect(once.stderr.contains("rollupd prepare-source token_usage"), "\(once)")
            #expect(!once.stderr.contains("prepare-source cost_events"), "cost_events is prepared: \(once)")
            #expect(once.stdout.isEmpty, "\(once)")

            // README: `run` stops the same way (not retrying forever).
            let run = try await DaemonProcess.run(["run", "--config", config], timeout: .seconds(30))
            #expect(run.status == 78, "\(run)")
            #expect(run.stderr.contains("rollupd prepare-source token_usage"), "\(run)")

            // Nothing of the refused commands reached the unprepared table.
            let untouched = try await session.run { try Self.preparation(of: "token_usage", source: "token_usage", on: $0) }
            #expect(untouched == Preparation(column: false, triggers: 0, registered: false))

            // Once prepared, once succeeds and the source's row counts.
            let second = try await DaemonProcess.run(["prepare-source", "token_usage", "--apply", "--config", config], timeout: .seconds(30))
            #expect(second.status == 0, "\(second)")
            let done = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(60))
            #expect(done.status == 0, "\(done)")
            #expect(done.stderr.contains("rolled up cost_events"), "\(done)")
            let differences = try await session.run { connection in
                try Self.costDifferences(excluding: [], timeZone: "UTC", on: connection)
            }
            #expect(differences == [])
        }
    }

    // MARK: 3. seed 004's "AnalyticsEvent" with rows that cannot be converted

    /// Seed 004's DDL with the NOT NULL constraints on "sessionId", "eventType" and "timestamp"
    /// removed: Prisma's schema forbids the rows this test needs (no session, no event type, no
    /// time), which an app writing the table by other means (or a later, laxer migration) can have.
    static let laxAnalyticsEvent: String = {
        var ddl = SeedShapes.analyticsEvent
        for column in ["\"sessionId\" TEXT NOT NULL", "\"eventType\" TEXT NOT NULL", "\"timestamp\" TIMESTAMP(3) NOT NULL"] {
            precondition(ddl.contains(column), "seed 004 DDL changed: \(column)")
            ddl = ddl.replacingOccurrences(of: column, with: column.replacingOccurrences(of: " NOT NULL", with: ""))
        }
        return ddl
    }()

    static let analyticsOracle = """
        SELECT "timestamp" AT TIME ZONE 'UTC', "sessionId", "eventType", "toolName", properties ->> 'riskMode' FROM "AnalyticsEvent"
        WHERE "sessionId" IS NOT NULL AND "eventType" IS NOT NULL AND "timestamp" IS NOT NULL
        """

    @Test(.timeLimit(.minutes(3)))
    func analyticsRowsThatCannotBeConvertedAreRejectedCountedAndSkipped() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "configured-analytics")
            defer { Task { await session.close() } }
            try await session.run { connection in
                try connection.execute(script: Self.laxAnalyticsEvent)
                try connection.query(SeedShapes.insertAnalyticsEvents(150))
                // Bad before prepare-source: counted (rejected) by the first pass.
                try connection.query("""
                    INSERT INTO "AnalyticsEvent" ("id", "sessionId", "eventType", "toolName", "timestamp") VALUES
                        ('bad_no_session', NULL, 'tool_used', 'FAAB', (now() AT TIME ZONE 'UTC') - interval '1 hour'),
                        ('bad_no_time', 's1', 'tool_used', 'FAAB', NULL)
                    """)
                var random = SeededRandom(seed: 6_004)
                try Workload.insertAnalytics(count: 150, maxAgeHours: 12, random: &random, on: connection)
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, extraYAML: Self.analyticsSourceYAML)
            let applied = try await DaemonProcess.run(["prepare-source", "analytics_event", "--apply", "--config", config], timeout: .seconds(30))
            #expect(applied.status == 0, "\(applied)")

            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let metricsAddress = try await MetricsTests.address(of: daemon)
            var expected = [
                "bad_no_session": "session missing",
                "bad_no_time": "time missing or not a timestamp",
            ]
            let expectedFirst = expected.mapKeys { "analytics_event/\($0)" }
            let first = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try SourceOracle.differences(cost: [], analytics: [Self.analyticsOracle], on: connection)
                        + Self.rejectedDifferences(expected: expectedFirst, sources: ["analytics_event"], on: connection)
                }
            }
            #expect(first == [], "\(daemon.stderrText)")

            // While it runs: more good and bad rows, a bad row touched (still bad), a good one made
            // bad, a bad one deleted, good ones changed and deleted.
            try await session.run { connection in
                try connection.query("""
                    INSERT INTO "AnalyticsEvent" ("id", "sessionId", "eventType", "toolName", "properties", "timestamp") VALUES
                        ('late', 's-late', 'tool_used', 'FAAB', NULL, (now() AT TIME ZONE 'UTC') - interval '3 days'),
                        ('bad_no_type', 's2', NULL, 'FAAB', '{"riskMode": "chase"}', (now() AT TIME ZONE 'UTC') - interval '2 hours'),
                        ('bad_nothing', NULL, NULL, NULL, '["not", "an", "object"]', NULL),
                        ('bad_deleted', NULL, 'cache_hit', NULL, NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
                        ('odd_properties', 's3', 'cache_hit', 'Decisions', '["not", "an", "object"]', (now() AT TIME ZONE 'UTC') - interval '20 minutes')
                    """)
                var random = SeededRandom(seed: 6_005)
                try Workload.insertAnalytics(count: 80, maxAgeHours: 24, random: &random, on: connection)
            }
            expected["bad_no_type"] = "event type missing"
            expected["bad_nothing"] = "session missing; event type missing; time missing or not a timestamp"
            expected["bad_deleted"] = "session missing"
            let expectedSecond = expected.mapKeys { "analytics_event/\($0)" }
            let second = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try SourceOracle.differences(cost: [], analytics: [Self.analyticsOracle], on: connection)
                        + Self.rejectedDifferences(expected: expectedSecond, sources: ["analytics_event"], on: connection)
                }
            }
            #expect(second == [], "\(daemon.stderrText)")

            try await session.run { connection in try connection.transaction { connection in
                try connection.query(#"UPDATE "AnalyticsEvent" SET "toolName" = 'Start/Sit' WHERE "id" = 'bad_no_session'"#)
                try connection.query(#"UPDATE "AnalyticsEvent" SET "sessionId" = NULL WHERE "id" = 'ev10'"#)
                try connection.query(#"UPDATE "AnalyticsEvent" SET "eventType" = 'feature_interaction' WHERE "id" LIKE 'ev2%'"#)
                try connection.query(#"DELETE FROM "AnalyticsEvent" WHERE "id" LIKE 'ev3%' OR "id" = 'bad_deleted'"#)
                var random = SeededRandom(seed: 6_006)
                try Workload.reshuffleAnalytics(10, random: &random, on: connection)
            } }
            expected["ev10"] = "session missing"
            let expectedThird = expected.mapKeys { "analytics_event/\($0)" }
            let third = try await Self.waitUntil(daemon: daemon) {
                try await session.run { connection in
                    try SourceOracle.differences(cost: [], analytics: [Self.analyticsOracle], on: connection)
                        + Self.rejectedDifferences(expected: expectedThird, sources: ["analytics_event"], on: connection)
                }
            }
            #expect(third == [], "\(daemon.stderrText)")

            // Recorded with reasons, once each.
            let reasons = try await session.run { connection in
                try connection.query("SELECT row_id, reason FROM rollupd.rejected_rows WHERE source = 'analytics_event'")
                    .rows.map { (try $0.string(0), try $0.string(1)) }
            }
            #expect(reasons.count == expected.count, "\(reasons)")
            for (id, reason) in reasons {
                #expect(reason == expected[id], "\(id): \(reason)")
            }
            // Counted: the metric and status both say how many.
            let metrics = try MetricsTests.parse(try await MetricsTests.get("http://\(metricsAddress)/metrics").body)
            #expect(MetricsTests.value(metrics, "rollupd_rejected_rows_total", ["source": "analytics_event"]) == Double(expected.count),
                    "\(metrics.filter { $0.name == "rollupd_rejected_rows_total" })")
            let status = try await DaemonProcess.run(["status", "--json", "--config", config], timeout: .seconds(30))
            let json = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status)")
            let report = try #require(json["status"] as? [String: Any], "\(status)")
            #expect(report["rejectedRows"] as? Int == expected.count, "\(status)")
            let sources = (report["sources"] as? [[String: Any]] ?? []).compactMap { $0["source"] as? String }
            #expect(sources.contains("analytics_event"), "\(status)")
            // Logged once each, with their ids.
            let logged = Self.loggedRejections(daemon.stderrLines)
            for id in expected.keys.sorted() {
                let lines = logged.filter { $0.source == "analytics_event" && $0.ids.contains(id) }
                #expect(lines.count == 1, "\(id) logged \(lines.count) times:\n\(daemon.stderrText)")
            }
            #expect(!daemon.stderrLines.contains { $0.hasPrefix("<3>") || $0.hasPrefix("<2>") }, "no errors: \(daemon.stderrText)")

            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0, "SIGTERM:\n\(daemon.stderrText)")
        }
    }

    // MARK: helpers

    /// The configured cost sources' oracles (cost_events minus the rows the test knows are bad;
    /// token_usage by ConfiguredSourceTests' predicate) beside the built-in events.
    static func costDifferences(excluding bad: Set<String>, timeZone: String = ConfiguredSourceDaemonTests.timeZone, on connection: PGConnection) throws -> [String] {
        let excluded = bad.isEmpty ? "" : "WHERE c.id NOT IN (\(bad.sorted().map { "'\($0)'" }.joined(separator: ", ")))"
        let costEvents = """
            SELECT 'founders-lens', c.operation, c.model, c.user_id::text, c.created_at::timestamptz,
                   btrim(c.input_tokens)::bigint + btrim(c.output_tokens)::bigint, 0,
                   CASE WHEN c.total_cost = '' THEN \(SourceOracle.priced(tokensIn: "btrim(c.input_tokens)", tokensOut: "btrim(c.output_tokens)", model: "c.model", time: "c.created_at::timestamptz"))
                        ELSE c.total_cost::numeric END
            FROM cost_events c \(excluded)
            """
        let empty = try connection.query("SELECT NOT EXISTS (SELECT 1 FROM cost_aggregates)").rows[0].bool(0)
        if empty { return ["cost_aggregates still empty"] }
        return try SourceOracle.differences(cost: [costEvents, ConfiguredSourceTests.tokenUsageOracle], timeZone: timeZone, on: connection)
    }

    /// What differs between rollupd.rejected_rows of `sources` and `expected` ("source/id": reason part).
    static func rejectedDifferences(expected: [String: String], sources: [String], on connection: PGConnection) throws -> [String] {
        let actual = try connection.query("SELECT source || '/' || row_id FROM rollupd.rejected_rows WHERE source = ANY($1::text[])",
                                          ["{" + sources.joined(separator: ",") + "}"]).rows.map { try $0.string(0) }
        return Set(expected.keys).subtracting(actual).sorted().map { "not rejected (yet): \($0)" }
            + Set(actual).subtracting(expected.keys).sorted().map { "rejected unexpectedly: \($0)" }
    }

    struct Preparation: Equatable {
        var column: Bool
        var triggers: Int64
        var registered: Bool
    }

    /// What prepare-source adds, as the catalogs show it.
    static func preparation(of table: String, source: String, on connection: PGConnection) throws -> Preparation {
        let row = try connection.query("""
            SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'rollupd_xid'),
                   (SELECT count(*) FROM pg_trigger WHERE tgrelid = format('public.%I', $1)::regclass AND NOT tgisinternal),
                   EXISTS (SELECT 1 FROM rollupd.sources WHERE source = $2)
            """, [table, source]).rows[0]
        return Preparation(column: try row.bool(0), triggers: try row.int64(1), registered: try row.bool(2))
    }

    struct LoggedRejection {
        var source: String
        var ids: [String]
    }

    /// The daemon's `skipped rows that cannot be rolled up source=... ids="a, b"` lines.
    static func loggedRejections(_ lines: [String]) -> [LoggedRejection] {
        lines.filter { $0.contains("skipped rows that cannot be rolled up") }.map { line in
            LoggedRejection(source: field("source", in: line) ?? "?",
                            ids: (field("ids", in: line) ?? "").components(separatedBy: ", ").filter { !$0.isEmpty })
        }
    }

    /// A `key=value` or `key="quoted value"` field of a log line.
    static func field(_ key: String, in line: String) -> String? {
        guard let range = line.range(of: " \(key)=") else { return nil }
        let rest = line[range.upperBound...]
        if rest.hasPrefix("\"") {
            var value = ""
            var escaped = false
            for character in rest.dropFirst() {
                if escaped { value.append(character); escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { return value } else { value.append(character) }
            }
            return value
        }
        return String(rest.prefix { $0 != " " })
    }

    /// Polls `check` until it returns no differences; the last differences otherwise (and the
    /// daemon's exit status, should it have stopped).
    static func waitUntil(daemon: DaemonProcess, timeout: Duration = rollupTimeout, _ check: () async throws -> [String]) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        var differences = ["nothing checked yet"]
        while ContinuousClock.now < deadline && daemon.exitStatus == nil {
            differences = try await check()
            if differences.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(100))
        }
        if let status = daemon.exitStatus { differences.append("rollupd exited with \(status)") }
        return differences
    }
}

extension Dictionary where Key == String {
    fileprivate func mapKeys(_ transform: (String) -> String) -> [String: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
