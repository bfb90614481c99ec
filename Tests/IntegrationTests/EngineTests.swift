import Foundation
import Postgres
import RollupdStore
import Testing

/// The rollup engine against a real PostgreSQL, always checked against `Oracle`.
@Suite struct EngineTests {
    /// Every source caught up: all that committed before the call is counted. (A single pass may
    /// stop short while other tests hold transactions open: the horizon is cluster-wide.)
    func passAll(_ engine: RollupEngine, on connection: PGConnection) throws {
        for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
    }

    @Test(arguments: ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
    func lateDataUpdatesAndDeletesMatchTheOracle(timeZone: String) async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: timeZone)
            var random = SeededRandom(seed: 42)
            for round in 0..<6 {
                try Workload.insertEvents(count: 200, maxAgeHours: round == 3 ? 24 * 21 : 48, random: &random, on: connection)
                try Workload.insertAnalytics(count: 150, maxAgeHours: 48, random: &random, on: connection)
                try passAll(engine, on: connection)
                try Workload.verifySome(25, random: &random, on: connection)
                try Workload.deleteSome(10, random: &random, on: connection)
                try Workload.reshuffleAnalytics(10, random: &random, on: connection)
                try Workload.reassignUsers(8, random: &random, on: connection)
                if round % 2 == 1 { try passAll(engine, on: connection) }
            }
            try passAll(engine, on: connection)
            #expect(try Oracle.costAggregates(timeZone: timeZone, on: connection).count > 100)
            #expect(try Oracle.differences(timeZone: timeZone, on: connection) == [])
        }
    }

    @Test func aPassCountsRowsOfTransactionsThatCommitLater() async throws {
        try await withTestDatabase { database in
            let engine = RollupEngine(timeZone: "UTC")
            let daemon = try database.connect()
            let slowWriter = try database.connect()
            let fastWriter = try database.connect()
            var random = SeededRandom(seed: 7)
            // The slow writer takes the lower transaction id, then the fast one commits first.
            try slowWriter.query("BEGIN")
            try Workload.insertEvents(count: 5, maxAgeHours: 1, random: &random, on: slowWriter)
            try Workload.insertEvents(count: 3, maxAgeHours: 1, random: &random, on: fastWriter)
            for source in RollupSource.allCases { _ = try engine.pass(source, on: daemon) }
            // The horizon stops below the open transaction, so the fast writer's rows wait too.
            #expect(try Oracle.actualCostAggregates(on: daemon).isEmpty)
            try slowWriter.query("COMMIT")
            try passAll(engine, on: daemon)
            let calls = try daemon.query("SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'hour'").rows[0].int64(0)
            #expect(calls == 8)
            #expect(try Oracle.differences(timeZone: "UTC", on: daemon) == [])
        }
    }

    /// Unbounded, and with rollup.max_rows_per_transaction 1, 7 and 1,000 (BoundedPassTests):
    /// no transaction of a pass subtracts more old versions than its bound, or takes more rows
    /// than its bound or one writing transaction's.
    @Test(arguments: [nil, 1, 7, 1000] as [Int?])
    func concurrentWritersCommittingOutOfOrderAreCountedExactlyOnce(bound: Int?) async throws {
        try await withTestDatabaseAsync { database in
            let engine = RollupEngine(timeZone: "Asia/Kolkata", maxRowsPerTransaction: bound)
            let writers = (0..<6).map { database.session(label: "writer-\($0)") }
            let roller = database.session(label: "roller")
            // A fixed amount of work, not a fixed time: a slow machine takes longer, never writes less.
            let transactionsPerWriter = 30
            let writersDone = StopFlag()
            var passes = 0
            var largest: (added: Int64, removed: Int64) = (0, 0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { writing in
                        for (index, writer) in writers.enumerated() {
                            writing.addTask {
                                try await Workload.writeTransactions(with: writer, seed: UInt64(100 + index + (bound ?? 0))) { $0 < transactionsPerWriter }
                            }
                        }
                        try await writing.waitForAll()
                    }
                    writersDone.set()
                }
                while !writersDone.isSet {
                    let reports = try await roller.run { connection in
                        try RollupSource.allCases.map { try engine.pass($0, on: connection) }
                    }
                    passes += 1
                    for report in reports {
                        largest = (max(largest.added, report.counts.added), max(largest.removed, report.counts.removed))
                    }
                    if !reports.contains(where: \.remaining) { try await Task.sleep(for: .milliseconds(30)) }
                }
                try await group.waitForAll()
            }
            for writer in writers { await writer.close() }
            let (events, differences) = try await roller.run { connection in
                for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
                return (try connection.query("SELECT count(*) FROM events").rows[0].int64(0),
                        try Oracle.differences(timeZone: "Asia/Kolkata", on: connection))
            }
            await roller.close()
            #expect(events > 500, "the workload should have written a real amount of data")
            #expect(passes >= 10, "passes should have run while the writers were writing")
            if let bound {
                #expect(largest.added <= max(Int64(bound), BoundedPassTests.largestWriterTransaction), "a transaction took more than its bound")
                #expect(largest.removed <= Int64(bound), "a transaction subtracted more old versions than its bound")
            }
            #expect(differences == [])
        }
    }

    /// Day boundaries worked out by hand, so the zone arithmetic is checked against more than SQL.
    @Test(arguments: [
        // America/Los_Angeles: DST ends 2026-11-01 at 02:00 local, so 1 November has 25 hours.
        ("America/Los_Angeles", "2026-11-01T07:30:00Z", "2026-11-01T07:00:00Z"),  // 00:30 PDT
        ("America/Los_Angeles", "2026-11-02T07:30:00Z", "2026-11-01T07:00:00Z"),  // 23:30 PST, same day
        ("America/Los_Angeles", "2026-11-02T08:30:00Z", "2026-11-02T08:00:00Z"),  // 00:30 PST next day
        ("America/Los_Angeles", "2026-03-08T07:59:00Z", "2026-03-07T08:00:00Z"),  // 23:59 PST before DST starts
        // Asia/Kolkata, +05:30: local midnight is 18:30 UTC.
        ("Asia/Kolkata", "2026-11-01T18:29:00Z", "2026-10-31T18:30:00Z"),
        ("Asia/Kolkata", "2026-11-01T18:31:00Z", "2026-11-01T18:30:00Z"),
        ("UTC", "2026-11-01T23:59:59Z", "2026-11-01T00:00:00Z"),
    ])
    func dayBucketsFollowTheLocalCalendar(zone: String, createdAt: String, expectedDayStart: String) async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens,
                                    latency_ms, estimated_cost_usd, created_at)
                VALUES ('t', 's', 'chat', 'openai', 'gpt-4o', 10, 5, 100, 0.01, $1::timestamptz)
                """, [createdAt])
            _ = try RollupEngine(timeZone: zone).catchUp(.events, on: connection)
            let day = try connection.query("""
                SELECT to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM cost_aggregates WHERE period = 'day'
                """).rows.map { try $0.string(0) }
            #expect(day == [expectedDayStart])
        }
    }

    @Test func aChangedTimeZoneIsRefusedUntilRebuildAll() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            var random = SeededRandom(seed: 3)
            try Workload.insertEvents(count: 50, maxAgeHours: 72, random: &random, on: connection)
            _ = try RollupEngine(timeZone: "UTC").catchUp(.events, on: connection)
            #expect(throws: RollupError.timeZoneChanged(source: .events, stored: "UTC", configured: "Asia/Kolkata")) {
                try RollupEngine(timeZone: "Asia/Kolkata").pass(.events, on: connection)
            }
            _ = try RollupEngine(timeZone: "Asia/Kolkata").catchUp(.events, mode: .reset, on: connection)
            #expect(try Oracle.costAggregates(timeZone: "Asia/Kolkata", on: connection) == Oracle.actualCostAggregates(on: connection))
        }
    }

    @Test func rebuildRestoresARangeThatWasTamperedWith() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "America/Los_Angeles")
            var random = SeededRandom(seed: 11)
            try Workload.insertEvents(count: 400, maxAgeHours: 96, random: &random, on: connection)
            try Workload.insertAnalytics(count: 300, maxAgeHours: 96, random: &random, on: connection)
            try passAll(engine, on: connection)
            try connection.query("UPDATE cost_aggregates SET call_count = call_count + 1000, total_cost = 0")
            try connection.query("UPDATE hourly_rollups SET total_events = 0, event_counts = '{}'")
            try connection.query("UPDATE rollupd.hourly_session_counts SET n = n + 5")
            let now = Date().timeIntervalSince1970
            for source in RollupSource.allCases {
                _ = try engine.catchUp(source, mode: .rebuild(RebuildRange(from: now - 200 * 3600, to: now + 3600)), on: connection)
            }
            #expect(try Oracle.differences(timeZone: "America/Los_Angeles", on: connection) == [])
        }
    }

    @Test func rowsThatCannotBeRolledUpAreRecordedOnceAndSkipped() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            var random = SeededRandom(seed: 5)
            try Workload.insertEvents(count: 30, maxAgeHours: 5, random: &random, on: connection)
            try connection.query("""
                INSERT INTO events (id, trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
                VALUES ('00000000-0000-0000-0000-00000000000a', 't', 's', 'chat', 'openai', 'gpt-4o', -1, 5, 100, 0.01),
                       ('00000000-0000-0000-0000-00000000000b', 't', 's', 'chat', 'openai', 'gpt-4o', 1, 5, 100, -0.5)
                """)
            let engine = RollupEngine(timeZone: "UTC")
            let first = try engine.catchUp(.events, on: connection)
            #expect(first.counts.rejectedCount == 2)
            #expect(first.counts.newlyRejectedIDs.contains("00000000-0000-0000-0000-00000000000a"))
            #expect(first.counts.added == 30)
            // Fixing a bad row brings it in; the old, bad version is not subtracted.
            try connection.query("UPDATE events SET input_tokens = 1 WHERE id = '00000000-0000-0000-0000-00000000000a'")
            let second = try engine.catchUp(.events, on: connection)
            #expect(second.counts.added == 1 && second.counts.removed == 0 && second.counts.rejectedCount == 0)
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])
        }
    }

    @Test func onlyOneInstanceHoldsTheLeaderLockAndAStandbyTakesOver() async throws {
        try await withTestDatabase { database in
            let first = try database.connect()
            var second: PGConnection? = try database.connect()
            #expect(try LeaderLock.acquire(key: 99, on: first))
            #expect(try LeaderLock.acquire(key: 99, on: first), "a leader keeps its lock")
            #expect(try !LeaderLock.acquire(key: 99, on: second!))
            #expect(try LeaderLock.holder(key: 99, on: second!)?.pid == Int(first.backendPID))
            second = nil
            let third = try database.connect()
            #expect(try !LeaderLock.acquire(key: 99, on: third))
            try third.query("SELECT pg_terminate_backend($1)", [Int(first.backendPID)])
            // The terminated backend releases its locks as it exits, a moment after the call returns.
            var tookOver = false
            for _ in 0..<100 where !tookOver {
                tookOver = try LeaderLock.acquire(key: 99, on: third)
                if !tookOver { usleep(50_000) }
            }
            #expect(tookOver, "the standby takes over once the leader's session is gone")
        }
    }

    @Test func aPassOverAFewNewRowsDoesNotScanTheTable() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd, created_at)
                SELECT 't', 's', 'f' || (i % 7), 'openai', 'gpt-4o', 10, 5, 100, 0.01, now() - (i % 5000) * interval '1 minute'
                FROM generate_series(1, 200000) i
                """)
            let engine = RollupEngine(timeZone: "UTC")
            _ = try engine.catchUp(.events, on: connection)
            try connection.query("ANALYZE events")
            let watermark = try connection.query("SELECT watermark::text FROM rollupd.sources WHERE source = 'events'").rows[0].string(0)
            let plan = try connection.query("""
                EXPLAIN SELECT count(*) FROM events
                WHERE (rollupd_xid >= $1::xid8 AND rollupd_xid < $2::xid8) OR ($3::boolean AND rollupd_xid IS NULL)
                """, [watermark, watermark, false]).rows.map { try $0.string(0) }.joined(separator: "\n")
            #expect(!plan.contains("Seq Scan"), "plan:\n\(plan)")
            #expect(plan.contains("events_rollupd_xid_idx"), "plan:\n\(plan)")
        }
    }
}
