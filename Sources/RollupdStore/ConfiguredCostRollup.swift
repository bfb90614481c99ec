import Postgres
import RollupdCore

/// A configured cost source -> cost_aggregates and user_cost_aggregates, shared with `events`
/// and other sources, plus this source's own share in rollupd.source_cost_buckets and
/// rollupd.source_user_cost_buckets so it can be taken out again exactly (reset, rebuild).
///
/// A row without a cost is priced from model_pricing at its time; the derived cost is kept in
/// rollupd.derived_costs and subtracted from there, so a later price edit cannot skew a
/// subtraction. A row without a price is rejected and reported, never costed at 0.
struct ConfiguredCostRollup: ConfiguredRollup {
    let definition: SourceDefinition
    let usesTimeZone = true

    init(_ definition: SourceDefinition) { self.definition = definition }

    func clearAll(on connection: PGConnection) throws {
        try SourceContributions.clearCost(source: definition.name, on: connection)
    }

    func apply(_ window: XidWindow, timeZone: String, on connection: PGConnection) throws -> ApplyCounts {
        var mapping = SourceMapping(definition, key: window.key)
        let columns = Self.columns(&mapping)
        let parameters = mapping.parameters(window, timeZone: timeZone)
        let name = definition.name
        let row = try connection.query(Self.applySQL(mapping: mapping, columns: columns), parameters,
                                       context: "roll up source \(name)").singleRow("roll up \(name)")
        try CostRollup.dropEmptied(costIDs: try row.string(3), userIDs: try row.string(5), on: connection)
        try SourceContributions.dropEmptiedCost(source: name, on: connection)
        var counts = ApplyCounts(added: try row.int64(0), removed: try row.int64(1), bucketsTouched: try row.int64(2))
        if try row.int64(4) > 0 {
            let rejected = try counts.recordRejected(Self.rejectSQL(mapping: mapping, columns: columns), parameters, source: name, on: connection)
            counts.unpriced = try rejected.int64(2)
        }
        return counts
    }

    /// rollupd's fields, converted: row_id, keys, created_at, numbers, and the cost the row
    /// states (in USD). `cost_text` tells "no cost" (NULL or empty: priced) from a cost that does
    /// not convert (rejected).
    static func columns(_ mapping: inout SourceMapping) -> String {
        let costText = mapping.text("cost_usd")
        let costNumber = mapping.definition.field("cost_usd") == .absent ? "NULL::numeric" : mapping.number("cost_usd")
        let cost = mapping.definition.costUnit == .microUSD ? "(\(costNumber) / 1000000)" : costNumber
        let latency = mapping.definition.field("latency_ms") == .absent ? "0::numeric" : mapping.number("latency_ms")
        let id = "r.\(mapping.definition.id.quoted)::text"
        return """
            \(id) AS row_id, \(mapping.text("project_id")) AS project_id, \(mapping.text("feature")) AS feature,
                   \(mapping.text("model")) AS model, \(mapping.text("provider")) AS provider, \(mapping.text("user_id")) AS user_id,
                   \(mapping.time("created_at")) AS created_at, \(mapping.number("input_tokens")) AS input_tokens,
                   \(mapping.number("output_tokens")) AS output_tokens, \(latency) AS latency_ms,
                   \(costText) AS cost_text, \(cost) AS given_cost
            """
    }

    /// Prices rows without a cost: new versions from model_pricing at the row's time (the latest
    /// effective_date not after it), old versions from the cost recorded when they were counted.
    /// Then checks each row: whole, non-negative tokens; non-negative latency and cost; keys and
    /// time present. Bounds keep the bigint casts below from ever raising.
    static let pricedSQL = """
        stated AS (
            SELECT m.*, (m.cost_text IS NULL OR btrim(m.cost_text) = '') AS derived FROM mapped m
        ), priced AS (
            SELECT m.*,
                   CASE WHEN NOT m.derived THEN m.given_cost
                        WHEN m.sign > 0 THEN (
                            SELECT m.input_tokens / 1000 * p.input_price_per_1k + m.output_tokens / 1000 * p.output_price_per_1k
                            FROM model_pricing p
                            WHERE p.model = m.model AND (m.provider IS NULL OR p.provider = m.provider)
                              AND p.effective_date <= m.created_at
                            ORDER BY p.effective_date DESC, p.provider LIMIT 1)
                        ELSE (SELECT d.cost FROM rollupd.derived_costs d WHERE d.source = $4 AND d.row_id = m.row_id)
                   END AS cost
            FROM stated m
        ), checked AS (
            SELECT p.*, (p.input_tokens >= 0 AND p.input_tokens < 1e15 AND p.input_tokens = trunc(p.input_tokens)
                    AND p.output_tokens >= 0 AND p.output_tokens < 1e15 AND p.output_tokens = trunc(p.output_tokens)
                    AND p.latency_ms >= 0 AND p.latency_ms < 1e15 AND p.cost >= 0 AND p.row_id IS NOT NULL
                    AND p.project_id IS NOT NULL AND p.feature IS NOT NULL AND p.model IS NOT NULL
                    AND p.created_at IS NOT NULL) IS TRUE AS valid
            FROM priced p
        )
        """

    static func applySQL(mapping: SourceMapping, columns: String) -> String {
        """
        WITH consumed AS (
            \(mapping.consumedSQL)
        ), mapped AS (
        \(mapping.rows(columns))
        ), \(pricedSQL), fine AS (
            SELECT true AS valid, project_id, feature, model, user_id, hour, day, GROUPING(user_id) = 0 AS per_user,
                   sum(sign * cost) AS cost,
                   sum(sign * (input_tokens + output_tokens))::bigint AS tokens,
                   sum(sign) AS calls,
                   sum(sign * round(latency_ms))::bigint AS latency,
                   count(*) FILTER (WHERE sign > 0) AS added,
                   count(*) FILTER (WHERE sign < 0) AS removed
            FROM (SELECT project_id, feature, model, user_id, date_trunc('hour', created_at, 'UTC') AS hour,
                         date_trunc('day', created_at, $5::text) AS day, sign, cost, input_tokens, output_tokens, latency_ms
                  FROM checked WHERE valid) AS c
            -- As in CostRollup: per key and hour, and per user and day.
            GROUP BY GROUPING SETS ((project_id, feature, model, hour, day), (project_id, user_id, day))
        ), hour_up AS (
        \(CostRollup.upsert(period: "hour", bucket: "hour"))
        ), day_up AS (
        \(CostRollup.upsert(period: "day", bucket: "day"))
        ), user_day_up AS (
        \(CostRollup.userDayUpsert)
        ), own_up AS (
        \(SourceContributions.costUpsert)
        ), own_user_up AS (
        \(SourceContributions.userCostUpsert)
        ), ledger_up AS (
            INSERT INTO rollupd.derived_costs (source, row_id, cost)
            SELECT $4, row_id, cost FROM checked WHERE sign > 0 AND derived AND valid
            ON CONFLICT (source, row_id) DO UPDATE SET cost = excluded.cost
        ), ledger_down AS (
            DELETE FROM rollupd.derived_costs d USING checked c
            WHERE d.source = $4 AND d.row_id = c.row_id AND c.sign < 0 AND c.derived
              AND NOT EXISTS (SELECT 1 FROM checked a WHERE a.sign > 0 AND a.derived AND a.valid AND a.row_id = c.row_id)
        )
        SELECT coalesce((SELECT sum(added) FROM fine WHERE NOT per_user), 0)::bigint,
               coalesce((SELECT sum(removed) FROM fine WHERE NOT per_user), 0)::bigint,
               (SELECT count(*) FROM hour_up) + (SELECT count(*) FROM day_up),
               ARRAY(SELECT id FROM hour_up WHERE call_count = 0 UNION ALL SELECT id FROM day_up WHERE call_count = 0)::text,
               (SELECT count(*) FROM checked WHERE sign > 0 AND NOT valid),
               ARRAY(SELECT id FROM user_day_up WHERE call_count = 0)::text
        """
    }

    /// Records the window's rejected rows once each, with the reason, and returns how many were
    /// new, their ids (at most 100) and how many of them lacked only a price.
    static func rejectSQL(mapping: SourceMapping, columns: String) -> String {
        """
        WITH mapped AS (
            \(mapping.liveRows(columns))
        ), \(pricedSQL), reasons AS (
            SELECT coalesce(row_id, '(no id)') AS row_id, concat_ws('; ',
                CASE WHEN input_tokens IS NULL OR output_tokens IS NULL THEN 'tokens missing or not a number'
                     WHEN input_tokens < 0 OR output_tokens < 0 THEN 'negative tokens'
                     WHEN input_tokens <> trunc(input_tokens) OR output_tokens <> trunc(output_tokens)
                          OR input_tokens >= 1e15 OR output_tokens >= 1e15 THEN 'tokens not a whole number in range' END,
                CASE WHEN latency_ms IS NULL THEN 'latency not a number'
                     WHEN latency_ms < 0 OR latency_ms >= 1e15 THEN 'latency out of range' END,
                CASE WHEN created_at IS NULL THEN 'time missing or not a timestamp' END,
                CASE WHEN project_id IS NULL OR feature IS NULL OR model IS NULL THEN 'project, feature or model missing' END,
                CASE WHEN NOT derived AND (given_cost IS NULL OR given_cost < 0) THEN 'cost not a number or negative'
                     WHEN derived AND cost IS NULL AND model IS NOT NULL AND created_at IS NOT NULL
                          AND input_tokens IS NOT NULL AND output_tokens IS NOT NULL
                          THEN 'no price in model_pricing for model ' || model || ' at ' || created_at END) AS reason
            FROM checked WHERE NOT valid
        ), rejected AS (
            INSERT INTO rollupd.rejected_rows (source, row_id, reason)
            SELECT $4, row_id, CASE WHEN reason = '' THEN 'cannot be rolled up' ELSE reason END FROM reasons
            ON CONFLICT DO NOTHING
            RETURNING row_id, reason
        )
        SELECT (SELECT count(*) FROM rejected),
               (SELECT string_agg(row_id, ', ') FROM (SELECT row_id FROM rejected LIMIT 100) AS shown),
               (SELECT count(*) FROM rejected WHERE reason LIKE 'no price in model_pricing%')
        """
    }
}
