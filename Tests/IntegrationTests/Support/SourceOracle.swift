import Postgres

/// Full recomputations of the shared rollups from the built-in tables plus configured sources.
/// Each test writes its source's rows as plain SQL over the seed table (casts and joins of its
/// own, none of rollupd's functions): `cost` queries yield project_id, feature, model, user_id,
/// created_at, tokens, latency_ms, cost for the rows that must count; `analytics` queries yield
/// occurred_at, session_id, event_type, tool, risk.
enum SourceOracle {
    /// The price in effect at `time` for `model`, per 1k tokens, as a plain lateral join.
    static func priced(tokensIn: String, tokensOut: String, model: String, time: String) -> String {
        """
        (SELECT \(tokensIn)::numeric / 1000 * p.input_price_per_1k + \(tokensOut)::numeric / 1000 * p.output_price_per_1k
         FROM model_pricing p WHERE p.model = \(model) AND p.effective_date <= \(time)
         ORDER BY p.effective_date DESC LIMIT 1)
        """
    }

    static func differences(cost: [String], analytics: [String] = [], timeZone: String = "UTC", on connection: PGConnection) throws -> [String] {
        try Oracle.differences(timeZone: timeZone, cost: cost, analytics: analytics, on: connection)
    }
}
