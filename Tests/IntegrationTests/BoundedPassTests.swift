import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// Bounded passes (rollup.max_rows_per_transaction): a backlog is rolled up in several
/// transactions, each committed with its own watermark, and the rollups still equal Oracle's
/// recomputation whatever the bound, the commit order, updates, deletes and kills.
@Suite struct BoundedPassTests {
    /// One transaction of the workload writes at most 20 events and 20 analytics events and
    /// updates a few more (Workload.writeTransactions): rows that share an xid go together.
    static let largestWriterTransaction: Int64 = 45

    // Concurrent out-of-order writers at bounds 1, 7 and 1,000:
    // EngineTests.concurrentWritersCommittingOutOfOrderAreCountedExactlyOnce.

    /// Rows from before rollupd (no xid) are adopted in key order, `bound` per transaction, while
    /// writers insert, update and delete (pre-existing rows among them) and commit out of order.
    @Test(arguments: [1, 7, 500])
    func preexistingRowsAreAdoptedInBoundedTransactionsWhileTheProductWrites(bound: Int) async throws {
        try await withTestDatabaseAsync { database in
            let engine = RollupEngine(timeZone: "UTC", maxRowsPerTransaction: bound)
            let roller = database.session(label: "roller")
            try await roller.run { connection in
                var random = SeededRandom(seed: 1420)
                try Workload.insertPreexisting(events: 300, analytics: 200, random: &random, on: connection)
            }
            let writers = (0..<3).map { database.session(label: "writer-\($0)") }
            let writersDone = StopFlag()
            var transactions = 0
            var largestAdded: Int64 = 0
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { writing in
                        for (index, writer) in writers.enumerated() {
                            writing.addTask { try await Workload.writeTransactions(with: writer, seed: UInt64(1430 + index)) { $0 < 20 } }
                        }
                        try await writing.waitForAll()
                    }
                    writersDone.set()
                }
                while !writersDone.isSet {
                    let reports = try await roller.run { connection in
                        try RollupSource.allCases.map { try engine.pass($0, on: connection) }
                    }
                    transactions += reports.count
                    largestAdded = max(largestAdded, reports.map(\.counts.added).max() ?? 0)
                    if !reports.contains(where: \.remaining) { try await Task.sleep(for: .milliseconds(20)) }
                }
                try await group.waitForAll()
            }
            for writer in writers { await writer.close() }
            let differences = try await roller.run { connection in
                for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
                return try Oracle.differences(timeZone: "UTC", on: connection)
            }
            let (adopting, eventPasses) = try await roller.run { connection in
                (try connection.query("SELECT count(*) FROM rollupd.sources WHERE adopting").singleRow("a").int64(0),
                 try connection.query("SELECT total_passes FROM rollupd.sources WHERE source = 'events'").singleRow("p").int64(0))
            }
            await roller.close()
            #expect(adopting == 0)
            #expect(transactions > 0)
            #expect(largestAdded <= max(Int64(bound), Self.largestWriterTransaction))
            // Each adoption transaction is one of the source's passes (total_passes).
            if bound < 300 { #expect(eventPasses >= Int64(300 / bound), "adopted \(bound) rows at a time") }
            #expect(differences == [])
        }
    }

    /// A mass update leaves more old versions than a transaction may take: transactions that only
    /// consume the change log come first (the watermark stays), then the new versions are counted.
    @Test func aMassUpdateIsConsumedInBoundedTransactions() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            var random = SeededRandom(seed: 1410)
            try Workload.insertEvents(count: 120, maxAgeHours: 72, random: &random, on: connection)
            let engine = RollupEngine(timeZone: "UTC", maxRowsPerTransaction: 7)
            _ = try engine.catchUp(.events, on: connection)
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])

            try connection.query("UPDATE events SET verified_cost_usd = estimated_cost_usd * 2")
            try connection.query("DELETE FROM events WHERE latency_ms % 5 = 0")
            let watermark = { try connection.query("SELECT watermark::text FROM rollupd.sources WHERE source = 'events'").singleRow("w").string(0) }
            let before = try watermark()
            var reports: [PassReport] = []
            _ = try engine.catchUp(.events, on: connection) { report, _ in reports.append(report) }
            let changeOnly = reports.prefix { $0.counts.added == 0 && $0.remaining }
            #expect(changeOnly.count >= 120 / 7, "the old versions were taken 7 at a time first")
            // The UPDATE was one transaction: its 120 new versions share an xid and go together.
            #expect(reports.allSatisfy { $0.counts.removed <= 7 && $0.counts.added <= 120 })
            #expect(reports.count >= 20)
            #expect(try watermark() != before)
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])
        }
    }

    /// A configured source (seed 002's token_usage, priced from model_pricing) with rows from
    /// before prepare-source, late rows, updates and deletes, three rows per transaction.
    @Test func aConfiguredSourceInBoundedTransactions() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.tokenUsage)
            try ConfiguredSourceTests.loadPricing(on: connection)
            try connection.query("INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 3) g")
            try connection.query(SeedShapes.insertTokenUsage(40))
            try SourcePreparation.apply(ConfiguredSourceTests.tokenUsage, on: connection)
            for _ in 0..<5 { try connection.query(SeedShapes.insertTokenUsage(12)) }
            let engine = RollupEngine(timeZone: "UTC", maxRowsPerTransaction: 3)
            let source = RollupSource(ConfiguredSourceTests.tokenUsage)
            var transactions = 0
            _ = try engine.catchUp(source, on: connection) { _, _ in transactions += 1 }
            // The rows from before prepare-source (no xid) in the first, then one writing transaction each.
            #expect(transactions >= 6)
            #expect(try SourceOracle.differences(cost: [ConfiguredSourceTests.tokenUsageOracle], on: connection) == [])

            try connection.query("UPDATE token_usage SET completion_tokens = completion_tokens + 7 WHERE prompt_tokens % 3 = 0")
            try connection.query("DELETE FROM token_usage WHERE prompt_tokens % 4 = 0")
            try connection.query("""
                INSERT INTO token_usage (provider, model, prompt_tokens, completion_tokens, created_at)
                SELECT 'openai', 'gpt-4o', 100 + g, 10, now() - g * interval '3 days' FROM generate_series(1, 10) g
                """)
            _ = try engine.catchUp(source, on: connection)
            #expect(try SourceOracle.differences(cost: [ConfiguredSourceTests.tokenUsageOracle], on: connection) == [])
        }
    }

    /// A configured source keyed by a bigint: adoption goes in the key's own order (9 before 10,
    /// 99,999 before 100,008), two rows a transaction, and misses none.
    @Test func adoptionFollowsTheKeysOwnOrder() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: """
                CREATE TABLE ledger (id bigint PRIMARY KEY, model text NOT NULL, tokens integer NOT NULL,
                                     cost numeric NOT NULL, at timestamptz NOT NULL);
                INSERT INTO ledger SELECT k, 'm', 10, 0.5, now() - k * interval '1 second'
                FROM unnest(ARRAY[9, 10, 99, 100, 1000, 99999, 100008]) AS k;
                """)
            let ledger = try ConfiguredSourceTests.source("ledger", table: "ledger", [
                "project_id": "=p", "feature": "=f", "model": "model", "created_at": "at",
                "input_tokens": "tokens", "output_tokens": "=0", "cost_usd": "cost",
            ])
            try SourcePreparation.apply(ledger, on: connection)  // the rows above predate it: no xid
            _ = try RollupEngine(timeZone: "UTC", maxRowsPerTransaction: 2).catchUp(RollupSource(ledger), on: connection)
            let calls = try connection.query("SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'hour'")
                .singleRow("calls").int64(0)
            #expect(calls == 7, "every pre-existing row adopted once")
            #expect(try SourceOracle.differences(cost: ["SELECT 'p', 'f', model, NULL::text, at, tokens::bigint, 0, cost FROM ledger"],
                                                 on: connection) == [])
        }
    }

    /// `rollupd once` with `database.statement_timeout: 1s` over 300,000 rows (a first pass over
    /// them in one statement takes about a second here, and much longer on a busy machine), in
    /// transactions of 5,000 rows: every one fits with a wide margin, and the whole is exact.
    @Test func onceMakesProgressInTransactionsThatFitTheStatementTimeout() async throws {
        try await withTestDatabaseAsync { database in
            let session = database.session(label: "backlog")
            defer { Task { await session.close() } }
            try await session.run { connection in
                // 60 writing transactions: rows of one transaction share an xid and stay together.
                for batch in 0..<60 {
                    try connection.query("""
                        INSERT INTO events (trace_id, span_id, project_id, feature, user_id, provider, model, input_tokens, output_tokens,
                                            latency_ms, estimated_cost_usd, created_at)
                        SELECT 't', 's', 'p' || (g % 5), 'f' || (g % 10), 'u' || (g % 500), 'openai', 'm' || (g % 6), 100 + g % 50, 20,
                               100 + g % 900, 0.001 * (g % 7), now() - (g % 720) * interval '1 hour'
                        FROM generate_series($1::int * 5000, $1::int * 5000 + 4999) g
                        """, [batch])
                }
            }
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, [
                "database.statement_timeout": "1s", "rollup.max_rows_per_transaction": "5000", "log.level": "debug",
            ])
            let outcome = try await DaemonProcess.run(["once", "--config", config], timeout: .seconds(300))
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let parts = outcome.stderr.split(separator: "\n").filter { $0.contains("rolled up part of the backlog of events") }
            #expect(parts.count >= 59, "the backlog went in transactions of 5,000 rows: \(parts.count)")
            let differences = try await session.run { try Oracle.differences(timeZone: "UTC", on: $0) }
            #expect(differences == [])
        }
    }
}
