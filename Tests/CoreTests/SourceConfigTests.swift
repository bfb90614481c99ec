import Foundation
import Postgres
import RollupdCore
import Testing

/// `sources.<name>.*`: parsed and validated in one place, errors naming the key.
@Suite struct SourceConfigTests {
    func load(_ yaml: String) async throws -> RollupdConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-sources-\(UUID()).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await RollupdConfig.load(path: path, environment: [:])
    }

    static let analytics = """
        sources:
          analytics_event:
            table: public."AnalyticsEvent"
            kind: analytics
            session_id: sessionId
            event_type: eventType
            tool_name: toolName
            risk_mode: properties->riskMode
            occurred_at: timestamp

        """

    @Test func aSourceIsParsedWithQuotedIdentifiersConstantsAndJsonKeys() async throws {
        let config = try await load(Self.analytics + """
              token_usage:
                table: token_usage
                kind: cost
                project_id: "=tutor"
                feature: "=session"
                model: model
                created_at: created_at
                input_tokens: prompt_tokens
                output_tokens: completion_tokens
                cost_usd: cost_usd
                cost_unit: micro_usd
            """)
        #expect(config.sources.map(\.name) == ["analytics_event", "token_usage"])
        let analytics = config.sources[0]
        #expect(analytics.table.quoted == #""public"."AnalyticsEvent""#)
        #expect(analytics.field("session_id") == .column(try SQLIdentifier("sessionId")))
        #expect(analytics.field("risk_mode") == .jsonKey(try SQLIdentifier("properties"), "riskMode"))
        let cost = config.sources[1]
        #expect(cost.field("project_id") == .constant("tutor"))
        #expect(cost.field("latency_ms") == .absent)
        #expect(cost.costUnit == .microUSD)
        #expect(config.redactedSummary.contains { $0.key == "sources.token_usage.cost_unit" && $0.value == "micro_usd" })
    }

    @Test(arguments: [
        ("kind", "costs", "sources.s.kind"),
        ("table", "", "sources.s.table"),
        ("colour", "blue", "sources.s.colour"),
        ("tool_name", "tool", "sources.s.tool_name"),
        ("cost_unit", "cents", "sources.s.cost_unit"),
        ("model", "", "sources.s.model"),
        ("id", "", "sources.s.id"),
    ])
    func aBadSourceIsAnErrorNamingItsKey(key: String, value: String, named: String) async throws {
        var settings = ["table": "t", "kind": "cost", "project_id": "=p", "feature": "=f", "model": "model",
                        "created_at": "created_at", "input_tokens": "i", "output_tokens": "o"]
        settings[key] = value
        let yaml = "sources:\n  s:\n" + settings.keys.sorted().map { "    \($0): \"\(settings[$0]!)\"" }.joined(separator: "\n") + "\n"
        await #expect {
            _ = try await load(yaml)
        } throws: { error in
            (error as? ConfigError)?.key == named
        }
    }

    @Test func aBuiltInSourceNameIsRefused() async throws {
        await #expect {
            _ = try await load("sources:\n  events:\n    table: events\n    kind: cost\n")
        } throws: { error in (error as? ConfigError)?.key == "sources.events" }
    }
}
