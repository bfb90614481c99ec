import Postgres
import RollupdCore

/// A configured analytics source -> the tallies behind hourly_rollups, shared with
/// `analytics_events` and other sources, plus this source's own tallies
/// (rollupd.source_hourly_*) so it can be taken out again exactly. Touched hours are rewritten
/// from the shared tallies, as for analytics_events.
struct ConfiguredAnalyticsRollup: ConfiguredRollup {
    let definition: SourceDefinition
    let usesTimeZone = false

    init(_ definition: SourceDefinition) { self.definition = definition }

    func clearAll(on connection: PGConnection) throws {
        try SourceContributions.clearAnalytics(source: definition.name, on: connection)
    }

    func apply(_ window: XidWindow, timeZone: String, on connection: PGConnection) throws -> ApplyCounts {
        var mapping = SourceMapping(definition, key: window.key)
        let columns = Self.columns(&mapping)
        let parameters = mapping.parameters(window, timeZone: timeZone)
        let name = definition.name
        let row = try connection.query(Self.applySQL(mapping: mapping, columns: columns), parameters,
                                       context: "roll up source \(name)").singleRow("roll up \(name)")
        let touchedHours = try row.string(3)
        if touchedHours != "{}" {
            try connection.query(AnalyticsRollup.refreshSQL, [touchedHours], context: "refresh hourly_rollups")
            try SourceContributions.dropZeroTallies(source: name, on: connection)
        }
        var counts = ApplyCounts(added: try row.int64(0), removed: try row.int64(1), bucketsTouched: try row.int64(2))
        if try row.int64(4) > 0 {
            try counts.recordRejected(Self.rejectSQL(mapping: mapping, columns: columns), parameters, source: name, on: connection)
        }
        return counts
    }

    /// Empty tool names and risk modes count as absent, as for analytics_events.
    static func columns(_ mapping: inout SourceMapping) -> String {
        """
        r.\(mapping.definition.id.quoted)::text AS row_id, \(mapping.text("session_id")) AS session_id,
               \(mapping.text("event_type")) AS event_type, nullif(\(mapping.text("tool_name")), '') AS tool,
               nullif(\(mapping.text("risk_mode")), '') AS risk, \(mapping.time("occurred_at")) AS occurred_at
        """
    }

    static let checkedSQL = """
        checked AS (
            SELECT m.*, (m.session_id IS NOT NULL AND m.event_type IS NOT NULL AND m.occurred_at IS NOT NULL) AS valid
            FROM mapped m
        )
        """

    /// $1 watermark, $2 horizon, $3 first pass, $4 source; returns added, removed, tallies
    /// touched, touched hours, rejected new rows.
    static func applySQL(mapping: SourceMapping, columns: String) -> String {
        """
        WITH consumed AS (
            \(mapping.consumedSQL)
        ), mapped AS (
        \(mapping.rows(columns))
        ), \(checkedSQL), fine AS (
            SELECT date_trunc('hour', occurred_at, 'UTC') AS hour, session_id, event_type, tool, risk, sum(sign) AS n,
                   count(*) FILTER (WHERE sign > 0) AS added, count(*) FILTER (WHERE sign < 0) AS removed
            FROM checked WHERE valid
            GROUP BY 1, 2, 3, 4, 5
        ), \(AnalyticsRollup.tallySQL), \(SourceContributions.tallyUpserts)
        SELECT coalesce((SELECT sum(added) FROM fine), 0)::bigint,
               coalesce((SELECT sum(removed) FROM fine), 0)::bigint,
               (SELECT count(*) FROM dimension_up) + (SELECT count(*) FROM session_up),
               ARRAY(SELECT DISTINCT hour FROM fine)::text,
               (SELECT count(*) FROM checked WHERE sign > 0 AND NOT valid)
        """
    }

    static func rejectSQL(mapping: SourceMapping, columns: String) -> String {
        """
        WITH mapped AS (
            \(mapping.liveRows(columns))
        ), \(checkedSQL), rejected AS (
            INSERT INTO rollupd.rejected_rows (source, row_id, reason)
            SELECT $4, coalesce(row_id, '(no id)'), concat_ws('; ',
                CASE WHEN session_id IS NULL THEN 'session missing' END,
                CASE WHEN event_type IS NULL THEN 'event type missing' END,
                CASE WHEN occurred_at IS NULL THEN 'time missing or not a timestamp' END)
            FROM checked WHERE NOT valid
            ON CONFLICT DO NOTHING
            RETURNING row_id
        )
        SELECT (SELECT count(*) FROM rejected),
               (SELECT string_agg(row_id, ', ') FROM (SELECT row_id FROM rejected LIMIT 100) AS shown)
        """
    }
}
