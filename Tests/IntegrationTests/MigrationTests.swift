import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

@Suite struct MigrationTests {
    let migrator = Migrator(directory: TestEnvironment.migrationsDirectory)

    @Test func aFreshDatabaseMigratesAndASecondRunIsANoOp() async throws {
        try await withTestDatabase(migrated: false) { database in
            let connection = try database.connect()
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            let files = try migrator.loadFiles()
            let first = try migrator.migrate(on: connection)
            #expect(first.applied.map(\.version) == files.map(\.version))
            let second = try migrator.migrate(on: connection)
            #expect(second.applied.isEmpty)
            #expect(second.alreadyApplied == files.count)
            let recorded = try connection.query("SELECT count(*) FROM rollupd.schema_migrations").rows[0].int64(0)
            #expect(recorded == Int64(files.count))
        }
    }

    @Test func anAppDatabaseWithSeed001TablesAndRowsMigratesAndRollsUp() async throws {
        try await withTestDatabase(migrated: false) { database in
            let connection = try database.connect()
            // Seed 001's Drizzle schema (events and its own cost_aggregates, integer counters) with rows.
            try connection.execute(script: """
                \(SeedSchema.events)
                CREATE INDEX idx_events_created_at ON events (created_at);
                CREATE TABLE cost_aggregates (
                  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), project_id text NOT NULL DEFAULT 'default',
                  feature text NOT NULL, model text NOT NULL, period text NOT NULL, period_start timestamptz NOT NULL,
                  total_cost numeric(12, 6) NOT NULL DEFAULT '0', total_tokens integer NOT NULL DEFAULT 0,
                  call_count integer NOT NULL DEFAULT 0, avg_latency numeric(10, 2) NOT NULL DEFAULT '0');
                CREATE UNIQUE INDEX idx_cost_agg_uniq ON cost_aggregates (project_id, feature, model, period, period_start);
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd, created_at)
                SELECT 't', 's', 'chat', 'openai', 'gpt-4o', 100, 20, 250 + i, 0.002, now() - i * interval '7 minutes'
                FROM generate_series(1, 500) i;
                INSERT INTO cost_aggregates (feature, model, period, period_start, call_count) VALUES ('chat', 'gpt-4o', 'hour', date_trunc('hour', now()), 12345);
                """)
            try connection.execute(script: try TestEnvironment.appSchemaSQL)  // analytics_events
            _ = try migrator.migrate(on: connection)
            // The app keeps inserting exactly its own columns.
            try connection.query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
                VALUES ('t2', 's2', 'search', 'anthropic', 'claude-3-haiku', 10, 10, 90, 0.0001)
                """)
            let engine = RollupEngine(timeZone: "UTC")
            for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
            let calls = try connection.query("SELECT sum(call_count) FROM cost_aggregates WHERE period = 'day'").rows[0].int64(0)
            #expect(calls == 501, "rows that predate rollupd are counted once; the app's own aggregate rows are replaced")
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])
        }
    }

    /// A deployment that ran 001-005 for a while, with old versions waiting in the change log
    /// (one of them a user move), gets per-user spend from 006-007 that equals a recomputation,
    /// and keeps it exact through later passes.
    @Test(arguments: ["UTC", "Asia/Kolkata"])
    func perUserSpendIsBackfilledExactlyOnAnExistingDeployment(timeZone: String) async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-migrations-\(UUID())").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            for file in try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.migrationsDirectory)
            where (MigrationFile.parseFileName(file)?.version ?? 0) <= 5 {  // and R_capture_triggers.sql
                try FileManager.default.copyItem(atPath: TestEnvironment.migrationsDirectory + "/" + file, toPath: directory + "/" + file)
            }
            let connection = try database.connect()
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            _ = try Migrator(directory: directory).migrate(on: connection)
            let engine = RollupEngine(timeZone: timeZone)
            var random = SeededRandom(seed: 606)
            try Workload.insertEvents(count: 400, maxAgeHours: 72, random: &random, on: connection)
            // What rollupd before 006 left behind after a pass (today's binary needs 006's tables):
            // the counted rows in cost_aggregates, the watermark at the horizon, the change log consumed.
            try connection.execute(script: """
                BEGIN ISOLATION LEVEL REPEATABLE READ;
                DELETE FROM rollupd.event_changes;
                UPDATE rollupd.sources SET watermark = pg_snapshot_xmin(pg_current_snapshot()), initialized = true,
                    day_time_zone = '\(timeZone)' WHERE source = 'events';
                WITH counted AS (
                    SELECT e.* FROM events e, rollupd.sources s
                    WHERE s.source = 'events' AND coalesce(e.rollupd_xid, '0'::xid8) < s.watermark
                )
                INSERT INTO cost_aggregates (project_id, feature, model, period, period_start, total_cost, total_tokens,
                                             call_count, total_latency_ms, avg_latency)
                SELECT project_id, feature, model, 'hour', date_trunc('hour', created_at, 'UTC'), sum(estimated_cost_usd),
                       sum(input_tokens + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
                FROM counted GROUP BY 1, 2, 3, 5
                UNION ALL
                SELECT project_id, feature, model, 'day', date_trunc('day', created_at, '\(timeZone)'), sum(estimated_cost_usd),
                       sum(input_tokens + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
                FROM counted GROUP BY 1, 2, 3, 5;
                COMMIT;
                """)
            // Waiting in the change log when 006 arrives: verified costs, deletions, new rows.
            try Workload.verifySome(30, random: &random, on: connection)
            try Workload.deleteSome(20, random: &random, on: connection)
            try Workload.insertEvents(count: 50, maxAgeHours: 72, random: &random, on: connection)
            #expect(try connection.query("SELECT count(*) FROM rollupd.event_changes").singleRow("changes").int64(0) > 0)

            _ = try migrator.migrate(on: connection)
            _ = try engine.catchUp(.events, on: connection)
            #expect(try Oracle.differences(timeZone: timeZone, on: connection) == [])
            #expect(try connection.query("SELECT count(*) FROM rollupd.user_cost_aggregates").singleRow("users").int64(0) > 20)

            try Workload.reassignUsers(25, random: &random, on: connection)
            try Workload.verifySome(10, random: &random, on: connection)
            _ = try engine.catchUp(.events, on: connection)
            #expect(try Oracle.differences(timeZone: timeZone, on: connection) == [])
        }
    }

    /// An app that re-creates a source table (an ORM's reset) loses rollupd's column, index and
    /// triggers; check-db says so, and the next migrate puts all of them back.
    @Test func migrateRestoresWhatARecreatedTableLost() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: """
                DROP TABLE analytics_events;
                DROP TRIGGER rollupd_capture_delete ON events;
                """)
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            let check = ChangeTrackingCheck(appSchema: .public, sources: [])
            let before = try check.problems(on: connection).map(\.description)
            #expect(before.count == 2)
            #expect(before.contains { $0.contains("\"analytics_events\"") && $0.contains("column rollupd_xid") && $0.contains("rollupd_capture_update") })
            #expect(before.contains { $0.contains("\"events\"") && $0.contains("rollupd_capture_delete") && !$0.contains("column") })
            let outcome = try migrator.migrate(on: connection)
            #expect(outcome.applied.isEmpty)
            #expect(outcome.prepared.contains { $0.contains("restored the capture triggers") })
            #expect(try check.problems(on: connection).isEmpty)
        }
    }

    @Test func aMigrationChangedAfterItWasAppliedIsRefused() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-migrations-\(UUID())").path
            try FileManager.default.copyItem(atPath: TestEnvironment.migrationsDirectory, toPath: directory)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let connection = try database.connect()
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            let copy = Migrator(directory: directory)
            _ = try copy.migrate(on: connection)
            let path = directory + "/002_rollup_tables.sql"
            try (String(contentsOfFile: path, encoding: .utf8) + "\n-- an innocent-looking edit\n").write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: MigrationError.changedAfterApply(version: 2, name: "rollup_tables")) {
                try copy.migrate(on: connection)
            }
        }
    }

    @Test func twoMigratorsAtOnceApplyEachFileOnce() async throws {
        try await withTestDatabaseAsync(migrated: false) { database in
            try await onOwnThread { try database.connect().execute(script: try TestEnvironment.appSchemaSQL) }
            let sessions = [database.session(label: "a"), database.session(label: "b")]
            let migrator = self.migrator
            let outcomes = try await withThrowingTaskGroup(of: Int.self) { group in
                for session in sessions { group.addTask { try await session.run { try migrator.migrate(on: $0).applied.count } } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(outcomes.sorted() == [0, try migrator.loadFiles().count])
            for session in sessions { await session.close() }
        }
    }
}

/// A database that rollupd 0.1 migrated (the texts of 001-008 as they were then, frozen in
/// Fixtures/migrations-0.1) moves to today's layout without losing a budget, an alert or a row.
@Suite struct LegacyDeploymentTests {
    @Test func aDatabaseMigratedBy01KeepsItsBudgetsAlertsAndRollupsExact() async throws {
        try await withTestDatabase(migrated: false) { database in
            let connection = try database.connect()
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            let legacy = Migrator(directory: TestEnvironment.repoRoot + "/Tests/IntegrationTests/Fixtures/migrations-0.1")
            #expect(try legacy.migrate(on: connection).applied.count == 8)
            // What 0.1 put in the product's schema, with rows in it.
            #expect(try count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('budgets', 'budget_alerts', 'user_cost_aggregates')", connection) == 3)
            var random = SeededRandom(seed: 909)
            try Workload.insertEvents(count: 300, maxAgeHours: 48, random: &random, on: connection)
            let budget = try connection.query("""
                INSERT INTO public.budgets (name, period, limit_usd) VALUES ('ops', 'day', 10) RETURNING id
                """).singleRow("budget").int64(0)
            try connection.query("""
                INSERT INTO public.budget_alerts (alert_id, budget_id, budget_name, scope, period, time_zone, period_start, period_end,
                                                  kind, threshold, limit_usd, spend_usd, channel)
                VALUES ('legacy-1', $1, 'ops', 'global', 'day', 'UTC', date_trunc('day', now()), date_trunc('day', now()) + interval '1 day',
                        'threshold', 50, 10, 5.5, 'default')
                """, [budget])

            let current = Migrator(directory: TestEnvironment.migrationsDirectory)
            let outcome = try current.migrate(on: connection)
            let newer = try current.loadFiles().map(\.version).filter { $0 > 8 }
            #expect(!newer.isEmpty)
            #expect(outcome.applied.map(\.version) == newer, "0.1's files count as applied under their old texts")
            let recorded = try connection.query("SELECT count(*) FROM rollupd.schema_migrations").singleRow("ledger").int64(0)
            #expect(recorded == Int64(8 + newer.count))
            // A second run accepts the re-recorded checksums and does nothing.
            #expect(try Migrator(directory: TestEnvironment.migrationsDirectory).migrate(on: connection).applied.isEmpty)

            #expect(try count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('budgets', 'budget_alerts', 'user_cost_aggregates')", connection) == 0)
            #expect(try connection.query("SELECT alert_id, status FROM rollupd.budget_alerts WHERE budget_id = $1", [budget])
                .rows.map { "\(try $0.string(0)) \(try $0.string(1))" } == ["legacy-1 pending"])
            // The identity goes on from where it was.
            let next = try connection.query("INSERT INTO rollupd.budgets (name, period, limit_usd) VALUES ('new', 'week', 5) RETURNING id")
                .singleRow("budget").int64(0)
            #expect(next > budget)
            // The app may now have a budget_alerts of its own in its schema (seed 003's).
            try connection.execute(script: "CREATE TABLE public.budget_alerts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), alert_type text);")
            // Change capture runs as its owner, whoever writes.
            #expect(try count("SELECT count(*) FROM pg_proc WHERE pronamespace = 'rollupd'::regnamespace AND proname LIKE 'capture_%' AND prosecdef", connection) == 3)

            let engine = RollupEngine(timeZone: "UTC")
            for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
            try Workload.verifySome(20, random: &random, on: connection)
            try Workload.deleteSome(10, random: &random, on: connection)
            for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])
        }
    }

    private func count(_ sql: String, _ connection: PGConnection) throws -> Int64 {
        try connection.query(sql).singleRow("count").int64(0)
    }
}
