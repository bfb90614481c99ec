import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// Configured sources (`sources.<name>.*`) over each seed's table shape, against a real
/// PostgreSQL, each compared with SourceOracle's independent recomputation.
@Suite struct ConfiguredSourceTests {
    static func source(_ name: String, table: String, kind: SourceDefinition.Kind = .cost, id: String = "id",
                       unit: SourceDefinition.CostUnit = .usd, _ fields: [String: String]) throws -> SourceDefinition {
        SourceDefinition(name: name, table: try QualifiedName(parsing: table), kind: kind, id: try SQLIdentifier(id),
                         fields: try fields.mapValues { try SourceDefinition.parseField($0) }, costUnit: unit)
    }

    /// Built-in and configured sources caught up.
    static func catchUp(_ sources: [SourceDefinition], _ engine: RollupEngine, on connection: PGConnection) throws {
        for source in RollupSource.all(configured: sources) { _ = try engine.catchUp(source, on: connection) }
    }

    static func loadPricing(on connection: PGConnection) throws {
        let path = TestEnvironment.repoRoot + "/pricing/model_pricing_2025-06-01.sql"
        try connection.execute(script: try String(contentsOfFile: path, encoding: .utf8))
    }

    static func rejected(_ source: String, on connection: PGConnection) throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try connection.query("SELECT row_id, reason FROM rollupd.rejected_rows WHERE source = $1", [source]).rows {
            result[try row.string(0)] = try row.string(1)
        }
        return result
    }

    // MARK: seed 000: cost_events, every number and the time as text

    static let costEvents = try! source("cost_events", table: "public.cost_events", [
        "project_id": "=founders-lens", "feature": "operation", "model": "model", "user_id": "user_id",
        "created_at": "created_at", "input_tokens": "input_tokens", "output_tokens": "output_tokens", "cost_usd": "total_cost",
    ])

    @Test func seed000TextColumnsConvertAndBadRowsAreSkipped() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.costEvents)
            try Self.loadPricing(on: connection)
            try SourcePreparation.apply(Self.costEvents, on: connection)
            let user = try connection.query("INSERT INTO users DEFAULT VALUES RETURNING id::text").rows[0].string(0)
            try connection.query("""
                INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, user_id, created_at) VALUES
                ('req_1', 'generate-vision-framework-v2', 'gpt-4-turbo-preview', '2145', '1232', '3377', '0.02145', '0.03696', '0.05841', $1::uuid, '2025-10-05T12:10:00.000Z'),
                ('req_2', 'generate-vision-framework-v2', 'gpt-4-turbo-preview', ' 100 ', '50', '150', '0', '0', '0.0025', NULL, '2025-10-05T12:40:00+02:00'),
                ('req_3', 'lens-score', 'gpt-4o-mini', '800', '200', '1000', '0', '0', '1e-4', $1::uuid, '2025-10-05 23:59:59'),
                ('req_4', 'lens-score', 'gpt-4o-mini', '1000', '1000', '2000', '', '', '', NULL, '2025-10-06T00:30:00Z'),
                ('bad_tokens', 'lens-score', 'gpt-4o-mini', 'n/a', '10', '10', '0', '0', '0.01', NULL, '2025-10-05T12:00:00Z'),
                ('bad_negative', 'lens-score', 'gpt-4o-mini', '10', '-5', '5', '0', '0', '0.01', NULL, '2025-10-05T12:00:00Z'),
                ('bad_fraction', 'lens-score', 'gpt-4o-mini', '10.5', '5', '15', '0', '0', '0.01', NULL, '2025-10-05T12:00:00Z'),
                ('bad_time', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '0.01', NULL, '2025-13-45T00:00:00Z'),
                ('bad_cost', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '$0.01', NULL, '2025-10-05T12:00:00Z'),
                ('bad_unpriced', 'lens-score', 'mystery-model', '10', '5', '15', '0', '0', '', NULL, '2025-10-05T12:00:00Z'),
                -- PostgreSQL's special time words: a different instant at every pass, or none.
                ('bad_now', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '0.01', NULL, 'now'),
                ('bad_infinity', 'lens-score', 'gpt-4o-mini', '10', '5', '15', '0', '0', '0.01', NULL, 'infinity')
                """, [user])
            let engine = RollupEngine(timeZone: "Asia/Kolkata")
            try Self.catchUp([Self.costEvents], engine, on: connection)
            var bad = ["bad_tokens", "bad_negative", "bad_fraction", "bad_time", "bad_cost", "bad_unpriced", "bad_now", "bad_infinity"]
            func oracle() -> String {
                let excluded = bad.map { "'\($0)'" }.joined(separator: ", ")
                return """
                    SELECT 'founders-lens', c.operation, c.model, c.user_id::text, c.created_at::timestamptz,
                           btrim(c.input_tokens)::bigint + btrim(c.output_tokens)::bigint, 0,
                           CASE WHEN c.total_cost = '' THEN \(SourceOracle.priced(tokensIn: "btrim(c.input_tokens)", tokensOut: "btrim(c.output_tokens)", model: "c.model", time: "c.created_at::timestamptz"))
                                ELSE c.total_cost::numeric END
                    FROM cost_events c WHERE c.id NOT IN (\(excluded))
                    """
            }
            let differences = try SourceOracle.differences(cost: [oracle()], timeZone: "Asia/Kolkata", on: connection)
            #expect(differences == [])
            let reasons = try Self.rejected("cost_events", on: connection)
            #expect(Set(reasons.keys) == Set(bad))
            #expect(reasons["bad_unpriced"]?.contains("no price in model_pricing for model mystery-model") == true)
            #expect(reasons["bad_cost"]?.contains("cost not a number") == true)

            // Fix a bad row, change a cost, delete one, add a late one: all exact.
            try connection.query("UPDATE cost_events SET input_tokens = '10' WHERE id = 'bad_tokens'")
            bad.removeFirst()
            try connection.query("UPDATE cost_events SET total_cost = '0.5', operation = 'lens-rescore' WHERE id = 'req_1'")
            try connection.query("DELETE FROM cost_events WHERE id IN ('req_3', 'req_4')")
            try connection.query("""
                INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, created_at)
                VALUES ('req_late', 'lens-score', 'gpt-4o', '300', '30', '330', '0', '0', '', to_char(now() - interval '20 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                """)
            try Self.catchUp([Self.costEvents], engine, on: connection)
            let later = try SourceOracle.differences(cost: [oracle()], timeZone: "Asia/Kolkata", on: connection)
            #expect(later == [])
            #expect(try connection.query("SELECT count(*) FROM rollupd.derived_costs WHERE source = 'cost_events'").rows[0].int64(0) == 1)
        }
    }

    // MARK: seed 002: token_usage, integer micro-dollars, often NULL

    static let tokenUsage = try! source("token_usage", table: "token_usage", unit: .microUSD, [
        "project_id": "=tutor", "feature": "=session", "model": "model", "provider": "provider", "user_id": "user_id",
        "created_at": "created_at", "input_tokens": "prompt_tokens", "output_tokens": "completion_tokens", "cost_usd": "cost_usd",
    ])

    static let tokenUsageOracle = """
        SELECT 'tutor', 'session', t.model, t.user_id::text, t.created_at, t.prompt_tokens::bigint + t.completion_tokens, 0,
               coalesce(t.cost_usd / 1000000.0, p.cost)
        FROM token_usage t LEFT JOIN LATERAL (
            SELECT t.prompt_tokens::numeric / 1000 * mp.input_price_per_1k + t.completion_tokens::numeric / 1000 * mp.output_price_per_1k AS cost
            FROM model_pricing mp WHERE mp.model = t.model AND mp.provider = t.provider AND mp.effective_date <= t.created_at
            ORDER BY mp.effective_date DESC LIMIT 1) p ON true
        WHERE t.prompt_tokens >= 0 AND t.completion_tokens >= 0 AND coalesce(t.cost_usd / 1000000.0, p.cost) >= 0
        """

    @Test func seed002MicroDollarsAndMissingCostsPricedFromModelPricing() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.tokenUsage)
            try Self.loadPricing(on: connection)
            try SourcePreparation.apply(Self.tokenUsage, on: connection)
            // Rows that predate prepare-source (rollupd_xid NULL) are counted by the first pass.
            try connection.query("INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 3) g")
            try connection.query(SeedShapes.insertTokenUsage(120))
            try connection.query("""
                INSERT INTO token_usage (provider, model, prompt_tokens, completion_tokens, cost_usd) VALUES
                    ('openai', 'gpt-4o-mini', -3, 10, NULL),          -- negative tokens
                    ('openai', 'gpt-unknown', 10, 10, NULL),          -- no price: reported, not costed at 0
                    ('anthropic', 'gpt-4o-mini', 10, 10, NULL),       -- the model has no price under this provider
                    ('openai', 'gpt-4o', 10, 10, -5)                  -- negative cost
                """)
            let engine = RollupEngine(timeZone: "UTC")
            try Self.catchUp([Self.tokenUsage], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.tokenUsageOracle], on: connection) == [])
            let report = try engine.pass(RollupSource(Self.tokenUsage), on: connection)
            #expect(report.counts.added == 0)
            #expect(try Self.rejected("token_usage", on: connection).count == 4)
            #expect(try Self.rejected("token_usage", on: connection).values.filter { $0.hasPrefix("no price") }.count == 2)

            // The cost arrives later (reconciliation), rows go away, late rows land.
            try connection.query("UPDATE token_usage SET cost_usd = 999 WHERE cost_usd IS NULL AND prompt_tokens > 500")
            try connection.query("DELETE FROM token_usage WHERE prompt_tokens BETWEEN 200 AND 300")
            try connection.query("UPDATE token_usage SET completion_tokens = completion_tokens + 1 WHERE prompt_tokens BETWEEN 301 AND 400")
            try connection.query("""
                INSERT INTO token_usage (provider, model, prompt_tokens, completion_tokens, created_at)
                VALUES ('openai', 'gpt-4o', 1000, 100, now() - interval '45 days')
                """)
            try Self.catchUp([Self.tokenUsage], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.tokenUsageOracle], on: connection) == [])
        }
    }

    @Test func aPriceEditNeverSkewsASubtractionAndRebuildReprices() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.tokenUsage)
            try connection.query("""
                INSERT INTO model_pricing (provider, model, input_price_per_1k, output_price_per_1k, effective_date)
                VALUES ('openai', 'm', 0.01, 0.03, '2024-01-01')
                """)
            try SourcePreparation.apply(Self.tokenUsage, on: connection)
            try connection.query("""
                INSERT INTO token_usage (id, provider, model, prompt_tokens, completion_tokens, created_at) VALUES
                    ('00000000-0000-0000-0000-00000000000a', 'openai', 'm', 1000, 1000, '2025-01-01T10:00:00Z'),
                    ('00000000-0000-0000-0000-00000000000b', 'openai', 'm', 1000, 1000, '2025-01-01T10:30:00Z')
                """)
            let engine = RollupEngine(timeZone: "UTC")
            try Self.catchUp([Self.tokenUsage], engine, on: connection)
            func hourCost() throws -> String {
                try connection.query("SELECT sum(total_cost)::numeric(20, 6)::text FROM cost_aggregates WHERE period = 'hour'").rows[0].string(0)
            }
            #expect(try hourCost() == "0.080000")
            // A retroactive price edit, then one of the priced rows goes away: it is subtracted at
            // the price it was added with, and the other keeps its cost until a rebuild.
            try connection.query("UPDATE model_pricing SET input_price_per_1k = 0.02, output_price_per_1k = 0.06")
            try connection.query("DELETE FROM token_usage WHERE id = '00000000-0000-0000-0000-00000000000a'")
            try Self.catchUp([Self.tokenUsage], engine, on: connection)
            #expect(try hourCost() == "0.040000")
            _ = try engine.catchUp(RollupSource(Self.tokenUsage), mode: .rebuild(RebuildRange(from: 0, to: 1)), on: connection)
            #expect(try hourCost() == "0.080000")
            #expect(try SourceOracle.differences(cost: [Self.tokenUsageOracle], on: connection) == [])
        }
    }

    // MARK: seed 003: api_cost_tracking, beside the built-in events in the same rollups

    static let apiCostTracking = try! source("api_cost_tracking", table: "api_cost_tracking", [
        "project_id": "=kimbleai", "feature": "endpoint", "model": "model", "user_id": "user_id",
        "created_at": "timestamp", "input_tokens": "input_tokens", "output_tokens": "output_tokens", "cost_usd": "cost_usd",
    ])

    static let apiCostOracle = """
        SELECT 'kimbleai', endpoint, model, user_id, "timestamp", input_tokens::bigint + output_tokens, 0, cost_usd::numeric
        FROM api_cost_tracking WHERE input_tokens >= 0 AND output_tokens >= 0 AND cost_usd >= 0
        """

    @Test func seed003SharesTheRollupsWithEventsAndResetsAlone() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.apiCostTracking)
            try SourcePreparation.apply(Self.apiCostTracking, on: connection)
            var random = SeededRandom(seed: 3)
            try Workload.insertEvents(count: 300, maxAgeHours: 48, random: &random, on: connection)
            // Same project/feature/model/hour keys as some events rows, so buckets are shared.
            try connection.query("UPDATE events SET project_id = 'kimbleai' WHERE random() < 0.3")
            try connection.query("""
                INSERT INTO api_cost_tracking (user_id, model, endpoint, input_tokens, output_tokens, cost_usd, "timestamp")
                SELECT 'user-' || (g % 4), (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet'])[1 + g % 3],
                       (ARRAY['chat', 'search', 'summarize'])[1 + g % 3], 50 + g, 10 + g, round(g * 0.0013, 6),
                       now() - g * interval '11 minutes'
                FROM generate_series(1, 200) g
                """)
            try connection.query("""
                INSERT INTO api_cost_tracking (user_id, model, endpoint, input_tokens, output_tokens, cost_usd) VALUES
                    ('user-1', 'gpt-4o', 'chat', -1, 10, 0.01), ('user-1', 'gpt-4o', 'chat', 1, 10, -0.01)
                """)
            let engine = RollupEngine(timeZone: "America/Los_Angeles")
            try Self.catchUp([Self.apiCostTracking], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.apiCostOracle], timeZone: "America/Los_Angeles", on: connection) == [])
            #expect(try Self.rejected("api_cost_tracking", on: connection).count == 2)

            try connection.query("UPDATE api_cost_tracking SET endpoint = 'chat-v2' WHERE input_tokens % 5 = 0")
            try connection.query("DELETE FROM api_cost_tracking WHERE input_tokens % 7 = 0")
            try connection.query("""
                INSERT INTO api_cost_tracking (user_id, model, endpoint, input_tokens, output_tokens, cost_usd, "timestamp")
                VALUES ('user-9', 'gpt-4o', 'chat', 10, 10, 0.5, now() - interval '60 days')
                """)
            try Workload.deleteSome(20, random: &random, on: connection)
            try Self.catchUp([Self.apiCostTracking], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.apiCostOracle], timeZone: "America/Los_Angeles", on: connection) == [])

            // Resetting one source takes out its share only; resetting events puts the others' back.
            _ = try engine.catchUp(RollupSource(Self.apiCostTracking), mode: .reset, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.apiCostOracle], timeZone: "America/Los_Angeles", on: connection) == [])
            _ = try engine.catchUp(.events, mode: .reset, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.apiCostOracle], timeZone: "America/Los_Angeles", on: connection) == [])
            let now = Date().timeIntervalSince1970
            _ = try engine.catchUp(.events, mode: .rebuild(RebuildRange(from: now - 86400, to: now)), on: connection)
            #expect(try SourceOracle.differences(cost: [Self.apiCostOracle], timeZone: "America/Los_Angeles", on: connection) == [])
        }
    }

    // MARK: seed 001: a second copy of events (another schema) as a configured source

    static let appEvents = try! source("app_events", table: "app.events", [
        "project_id": "project_id", "feature": "feature", "model": "model", "provider": "provider", "user_id": "user_id",
        "created_at": "created_at", "input_tokens": "input_tokens", "output_tokens": "output_tokens",
        "latency_ms": "latency_ms", "cost_usd": "estimated_cost_usd",
    ])

    static let appEventsOracle = """
        SELECT project_id, feature, model, user_id, created_at, input_tokens::bigint + output_tokens, latency_ms::bigint, estimated_cost_usd::numeric
        FROM app.events WHERE input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0 AND estimated_cost_usd >= 0
        """

    /// Every column but rollupd_xid, which each table stamps itself.
    static let eventColumns = """
        id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model, input_tokens, output_tokens,
        cached_tokens, latency_ms, estimated_cost_usd, verified_cost_usd, is_cache_hit, metadata, created_at
        """

    @Test func seed001EventsInAnotherSchemaFeedTheSameBuckets() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.appEvents)
            try SourcePreparation.apply(Self.appEvents, on: connection)
            var random = SeededRandom(seed: 1)
            let engine = RollupEngine(timeZone: "UTC")
            for round in 0..<3 {
                try Workload.insertEvents(count: 150, maxAgeHours: round == 1 ? 24 * 10 : 24, random: &random, on: connection)
                try connection.query("""
                    INSERT INTO app.events (\(Self.eventColumns)) SELECT \(Self.eventColumns) FROM events e
                    WHERE NOT EXISTS (SELECT 1 FROM app.events a WHERE a.id = e.id)
                    """)
                try connection.query("UPDATE app.events SET input_tokens = -1 WHERE random() < 0.02")
                try Self.catchUp([Self.appEvents], engine, on: connection)
                try connection.query("UPDATE app.events SET estimated_cost_usd = estimated_cost_usd * 2 WHERE random() < 0.1")
                try connection.query("DELETE FROM app.events WHERE random() < 0.05")
                try Workload.verifySome(10, random: &random, on: connection)
            }
            try Self.catchUp([Self.appEvents], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.appEventsOracle], on: connection) == [])
            _ = try engine.catchUp(.events, mode: .reset, on: connection)
            _ = try engine.catchUp(RollupSource(Self.appEvents), mode: .reset, on: connection)
            #expect(try SourceOracle.differences(cost: [Self.appEventsOracle], on: connection) == [])
        }
    }

    // MARK: seed 004: Prisma's "AnalyticsEvent", quoted camelCase, naive timestamps

    static let analyticsEvent = try! source("analytics_event", table: "\"AnalyticsEvent\"", kind: .analytics, [
        "session_id": "sessionId", "event_type": "eventType", "tool_name": "toolName",
        "risk_mode": "properties->riskMode", "occurred_at": "timestamp",
    ])

    static let analyticsEventOracle = """
        SELECT "timestamp" AT TIME ZONE 'UTC', "sessionId", "eventType", "toolName", properties ->> 'riskMode' FROM "AnalyticsEvent"
        """

    @Test func seed004CamelCaseAnalyticsShareHourlyRollups() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.analyticsEvent)
            try SourcePreparation.apply(Self.analyticsEvent, on: connection)
            var random = SeededRandom(seed: 4)
            try Workload.insertAnalytics(count: 200, maxAgeHours: 12, random: &random, on: connection)
            try connection.query(SeedShapes.insertAnalyticsEvents(300))
            let engine = RollupEngine(timeZone: "UTC")
            try Self.catchUp([Self.analyticsEvent], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [], analytics: [Self.analyticsEventOracle], on: connection) == [])

            try connection.query(#"UPDATE "AnalyticsEvent" SET "eventType" = 'feature_interaction' WHERE "id" LIKE 'ev1%'"#)
            try connection.query(#"UPDATE "AnalyticsEvent" SET "demoMode" = false WHERE "id" LIKE 'ev2%'"#)  // not a mapped column
            try connection.query(#"DELETE FROM "AnalyticsEvent" WHERE "id" LIKE 'ev3%'"#)
            try connection.query(#"""
                INSERT INTO "AnalyticsEvent" ("id", "sessionId", "eventType", "timestamp")
                VALUES ('late', 's-late', 'tool_used', (now() AT TIME ZONE 'UTC') - interval '3 days')
                """#)
            try Workload.reshuffleAnalytics(10, random: &random, on: connection)
            try Self.catchUp([Self.analyticsEvent], engine, on: connection)
            #expect(try SourceOracle.differences(cost: [], analytics: [Self.analyticsEventOracle], on: connection) == [])
            #expect(try connection.query("SELECT count(*) FROM rollupd.source_changes").rows[0].int64(0) == 0)

            _ = try engine.catchUp(.analyticsEvents, mode: .reset, on: connection)
            #expect(try SourceOracle.differences(cost: [], analytics: [Self.analyticsEventOracle], on: connection) == [])
            _ = try engine.catchUp(RollupSource(Self.analyticsEvent), mode: .reset, on: connection)
            let now = Date().timeIntervalSince1970
            _ = try engine.catchUp(.analyticsEvents, mode: .rebuild(RebuildRange(from: now - 7200, to: now)), on: connection)
            #expect(try SourceOracle.differences(cost: [], analytics: [Self.analyticsEventOracle], on: connection) == [])
        }
    }

    @Test func anUnpreparedSourceIsAnErrorNamingTheCommand() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            try connection.execute(script: SeedShapes.apiCostTracking)
            #expect(throws: RollupError.sourceNotPrepared(source: "api_cost_tracking", table: "\"api_cost_tracking\"")) {
                _ = try RollupEngine(timeZone: "UTC").pass(RollupSource(Self.apiCostTracking), on: connection)
            }
        }
    }
}
