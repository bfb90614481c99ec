import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// Retention against a real PostgreSQL: rows go only once rolled up, and rollups never change.
@Suite struct RetentionTests {
    static let day = 86400.0

    /// Events and analytics events spread over 60 days, so some are past a 30-day cutoff.
    func loadSpreadOverSixtyDays(_ connection: PGConnection, count: Int = 3000) throws {
        try connection.query("""
            INSERT INTO events (trace_id, span_id, project_id, feature, provider, model, input_tokens, output_tokens,
                                latency_ms, estimated_cost_usd, created_at)
            SELECT 't', 's', 'p' || (i % 3), 'f' || (i % 4), 'openai', 'm' || (i % 2), 100 + i % 50, 10, 200 + i % 300,
                   0.001 * (i % 7), now() - (i % 60) * interval '1 day' - (i % 24) * interval '1 hour'
            FROM generate_series(1, $1::int) i
            """, [count])
        try connection.query("""
            INSERT INTO analytics_events (session_id, event_type, tool_name, properties, occurred_at)
            SELECT 's' || (i % 50), 'e' || (i % 3), CASE WHEN i % 2 = 0 THEN 'FAAB' END, '{"riskMode": "chase"}',
                   now() - (i % 60) * interval '1 day'
            FROM generate_series(1, $1::int) i
            """, [count])
    }

    func rollupSnapshot(_ connection: PGConnection) throws -> [String] {
        try Oracle.actualCostAggregates(on: connection) + Oracle.actualHourlyRollups(on: connection)
    }

    func catchUp(_ connection: PGConnection) throws {
        for source in RollupSource.allCases { _ = try RollupEngine(timeZone: "UTC").catchUp(source, on: connection) }
    }

    func count(_ sql: String, _ connection: PGConnection) throws -> Int64 {
        try connection.query(sql).singleRow(sql).int64(0)
    }

    /// Raw rows kept 30 days; rollups kept forever here, so every rollup must stay exactly as it was.
    static let rawOnly = RollupdConfig.Retention(batchSize: 500, batchPause: .zero, costAggregates: .zero, hourlyRollups: .zero)

    @Test func expiredRawRowsGoYoungerStayAndRollupsDoNotChange() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try loadSpreadOverSixtyDays(connection)
            try catchUp(connection)
            let before = try rollupSnapshot(connection)
            let expired = try count("SELECT count(*) FROM events WHERE created_at < now() - interval '30 days'", connection)
            let young = try count("SELECT count(*) FROM events WHERE created_at >= now() - interval '30 days'", connection)
            #expect(expired > 1000 && young > 1000)

            let reports = try Retention(settings: Self.rawOnly).run(on: connection)
            let events = try #require(reports.first { $0.table == "events" })
            #expect(events.rowsDeleted == expired)
            #expect(events.batches == (expired + 499) / 500 + (expired % 500 == 0 ? 1 : 0))
            #expect(events.backlog == 0)
            #expect(try count("SELECT count(*) FROM events", connection) == young)
            #expect(try count("SELECT count(*) FROM events WHERE created_at < now() - interval '30 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM analytics_events WHERE occurred_at < now() - interval '30 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM rollupd.event_changes", connection) == 0, "retention deletes are not captured")
            try catchUp(connection)
            #expect(try rollupSnapshot(connection) == before)
            let recorded = try count("SELECT rows_deleted FROM rollupd.retention_runs WHERE table_name = 'events'", connection)
            #expect(recorded == expired)
        }
    }

    @Test func oldRowsThatAreNotRolledUpYetAreKeptUntilTheyAre() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try loadSpreadOverSixtyDays(connection, count: 600)
            try catchUp(connection)
            // Late arrivals from 45 days ago, inserted now and not yet rolled up.
            try connection.query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms,
                                    estimated_cost_usd, created_at)
                SELECT 'late', 's', 'chat', 'openai', 'gpt-4o', 10, 10, 100, 0.5, now() - interval '45 days'
                FROM generate_series(1, 40)
                """)
            let first = try Retention(settings: Self.rawOnly).run(on: connection)
            #expect(try count("SELECT count(*) FROM events WHERE trace_id = 'late'", connection) == 40)
            #expect(first.first { $0.table == "events" }?.backlog == 40, "the kept rows are reported as backlog")

            try catchUp(connection)
            let withLate = try rollupSnapshot(connection)
            _ = try Retention(settings: Self.rawOnly).run(on: connection)
            #expect(try count("SELECT count(*) FROM events WHERE trace_id = 'late'", connection) == 0)
            try catchUp(connection)
            #expect(try rollupSnapshot(connection) == withLate, "their buckets keep them after the raw rows go")
            #expect(try count("SELECT count(*) FROM cost_aggregates WHERE period = 'day' AND total_cost >= 20", connection) == 1)
        }
    }

    @Test func expiredRollupsAndTheirTalliesGo() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try loadSpreadOverSixtyDays(connection)
            try catchUp(connection)
            let settings = RollupdConfig.Retention(batchSize: 100, batchPause: .zero, events: .seconds(10 * 86400),
                                                   analyticsEvents: .seconds(10 * 86400),
                                                   costAggregates: .seconds(20 * 86400), hourlyRollups: .seconds(20 * 86400))
            let kept = try count("SELECT count(*) FROM cost_aggregates WHERE period_start >= now() - interval '20 days'", connection)
            _ = try Retention(settings: settings).run(on: connection)
            #expect(try count("SELECT count(*) FROM cost_aggregates", connection) == kept)
            #expect(try count("SELECT count(*) FROM hourly_rollups WHERE hour < now() - interval '20 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM rollupd.hourly_session_counts WHERE hour < now() - interval '20 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM rollupd.hourly_dimension_counts WHERE hour < now() - interval '20 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM hourly_rollups", connection) > 0)
        }
    }

    @Test func aBatchThatCannotGetItsLockGivesUpWithinLockTimeout() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try loadSpreadOverSixtyDays(connection, count: 600)
            try catchUp(connection)
            let blocker = try database.connect()
            try blocker.query("BEGIN")
            try blocker.query("LOCK TABLE events IN SHARE MODE")  // conflicts with DELETE's ROW EXCLUSIVE
            var settings = Self.rawOnly
            settings.lockTimeout = .milliseconds(200)
            let started = ContinuousClock.now
            let reports = try Retention(settings: settings).run(on: connection)
            let elapsed = ContinuousClock.now - started
            try blocker.query("ROLLBACK")
            let events = try #require(reports.first { $0.table == "events" })
            #expect(events.rowsDeleted == 0)
            #expect(events.error?.contains("55P03") == true, "lock_not_available: \(events.error ?? "no error")")
            #expect(elapsed < .seconds(3))
            #expect(reports.first { $0.table == "analytics_events" }?.rowsDeleted ?? 0 > 0, "other tables go on")
        }
    }

    @Test func maxRowsPerRunDrainsABacklogOverSeveralRuns() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try loadSpreadOverSixtyDays(connection)
            try catchUp(connection)
            var settings = Self.rawOnly
            settings.maxRowsPerRun = 400
            settings.batchSize = 150
            let expired = try count("SELECT count(*) FROM events WHERE created_at < now() - interval '30 days'", connection)
            var runs = 0
            var deleted: Int64 = 0
            while runs < 20 {
                let report = try #require(try Retention(settings: settings).run(on: connection).first { $0.table == "events" })
                runs += 1
                deleted += report.rowsDeleted
                #expect(report.rowsDeleted <= 400)
                if report.backlog == 0 { break }
            }
            #expect(deleted == expired)
            #expect(runs == Int((expired + 399) / 400))
        }
    }

    @Test func insertsDuringRetentionAllSurvive() async throws {
        try await withTestDatabaseAsync { database in
            let setup = database.session(label: "setup")
            try await setup.run { connection in
                try loadSpreadOverSixtyDays(connection, count: 6000)
                try catchUp(connection)
            }
            let writer = database.session(label: "writer")
            var settings = Self.rawOnly
            settings.batchSize = 100
            settings.batchPause = .milliseconds(5)
            let retention = Retention(settings: settings)
            async let retained = setup.run { try retention.run(on: $0) }
            var inserted = 0
            for _ in 0..<60 {
                _ = try await writer.run { connection in
                    try connection.query("""
                        INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens,
                                            latency_ms, estimated_cost_usd)
                        SELECT 'during', 's', 'chat', 'openai', 'gpt-4o', 1, 1, 1, 0.001 FROM generate_series(1, 5)
                        """)
                }
                inserted += 5
            }
            let reports = try await retained
            #expect(reports.first { $0.table == "events" }?.rowsDeleted ?? 0 > 2000)
            let (survivors, differences) = try await writer.run { connection in
                try catchUp(connection)
                return (try count("SELECT count(*) FROM events WHERE trace_id = 'during'", connection),
                        try Oracle.differences(timeZone: "UTC", on: connection).count)
            }
            #expect(survivors == Int64(inserted))
            // Rollups keep the deleted rows, so they differ from a recomputation exactly by them.
            #expect(differences > 0)
            await writer.close()
            await setup.close()
        }
    }

    @Test func expiredPartitionsAreDetachedAndDropped() async throws {
        try await withTestDatabase(migrated: false) { database in
            let connection = try database.connect()
            // The app's events table, partitioned by month of created_at (README, "Partitioning").
            try connection.execute(script: """
                \(SeedSchema.partitionedEvents)
                DO $$
                DECLARE m date;
                BEGIN
                  FOR i IN 0..4 LOOP
                    m := date_trunc('month', now() - i * interval '1 month')::date;
                    EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                                   to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
                  END LOOP;
                END $$;
                CREATE TABLE events_default PARTITION OF events DEFAULT;
                """)
            try connection.execute(script: try TestEnvironment.appSchemaSQL)  // analytics_events, the app's indexes
            _ = try Migrator(directory: TestEnvironment.migrationsDirectory).migrate(on: connection)
            // The xid index of a partitioned table is built partition by partition, concurrently, and valid.
            #expect(try count("SELECT count(*) FROM pg_index WHERE indexrelid = 'events_rollupd_xid_idx'::regclass AND indisvalid", connection) == 1)
            try connection.query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms,
                                    estimated_cost_usd, created_at)
                SELECT 't', 's', 'chat', 'openai', 'gpt-4o', 10, 10, 100, 0.01, now() - (i % 130) * interval '1 day'
                FROM generate_series(1, 2600) i
                """)
            try catchUp(connection)
            let before = try rollupSnapshot(connection)
            let partitionsBefore = try count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass", connection)
            let reports = try Retention(settings: Self.rawOnly).run(on: connection)
            let events = try #require(reports.first { $0.table == "events" })
            let partitionsAfter = try count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass", connection)
            #expect(events.partitionsDropped >= 2)
            #expect(partitionsAfter == partitionsBefore - events.partitionsDropped)
            #expect(events.rowsDeleted > 0, "the partition straddling the cutoff is trimmed row by row")
            #expect(try count("SELECT count(*) FROM events WHERE created_at < now() - interval '30 days'", connection) == 0)
            #expect(try count("SELECT count(*) FROM rollupd.event_changes", connection) == 0)
            try catchUp(connection)
            #expect(try rollupSnapshot(connection) == before)
        }
    }
}
