import Postgres
import RollupdCore

/// The daemon's state as the database records it, for `rollupd status`.
public struct StatusReport: Sendable, Codable {
    public struct Source: Sendable, Codable {
        public var source: String
        public var initialized: Bool
        public var watermark: String
        public var lastPassStartedAt: String?
        public var lastPassDurationMs: Double?
        public var lastPassAdded: Int64
        public var lastPassRemoved: Int64
        public var totalPasses: Int64
        /// Rows committed since the last pass, counted up to a cap (10^6) so status stays cheap.
        public var pendingRows: Int64
        public var pendingChanges: Int64
        /// Everything committed longer ago than this is rolled up: now - fresh_as_of, or, when
        /// nothing below the current horizon is left to count, now - the freshness a pass would
        /// record now (the daemon's idle passes look without writing; see `RollupEngine.idleReport`).
        public var lagSeconds: Double
    }

    /// The last retention run per table (rollupd.retention_runs).
    public struct RetentionRun: Sendable, Codable {
        public var table: String
        public var lastRunAt: String
        public var rowsDeleted: Int64
        public var partitionsDropped: Int64
        public var durationMs: Double
        /// Expired rows left for later runs (not yet rolled up, locked, or over the per-run cap).
        public var backlog: Int64
        public var lastError: String?
    }

    public var leaderPID: Int?
    public var leaderApplication: String?
    public var schemaVersion: Int?
    public var rejectedRows: Int64
    public var sources: [Source]
    public var retention: [RetentionRun]
    public var alerts: [AlertChannelStatus] = []

    /// Timestamps in ISO 8601, UTC, for people and for `--json` consumers alike.
    static func iso(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }

    static let pendingCap = 1_000_000

    /// Problems that make `rollupd status` exit non-zero (empty when healthy).
    public func problems(maxLag: Double) -> [String] {
        var problems: [String] = []
        if leaderPID == nil { problems.append("no rollupd instance holds the leader lock") }
        for source in sources {
            if !source.initialized { problems.append("\(source.source) has never been rolled up") }
            if source.lagSeconds > maxLag {
                problems.append("\(source.source) rollups lag \(Int(source.lagSeconds)) s (max \(Int(maxLag)) s)")
            }
        }
        for run in retention where run.lastError != nil {
            problems.append("retention of \(run.table) stopped early: \(run.lastError!)")
        }
        problems += alerts.flatMap(\.problems)
        return problems
    }

    public static func read(lockKey: Int64, configured: [SourceDefinition] = [], on connection: PGConnection) throws -> StatusReport {
        let holder = try LeaderLock.holder(key: lockKey, on: connection)
        let version = try connection.query("SELECT max(version) FROM rollupd.schema_migrations", context: "schema version")
            .singleRow("schema version").optionalInt64(0)
        let rejected = try connection.query("SELECT count(*) FROM rollupd.rejected_rows", context: "rejected rows")
            .singleRow("rejected rows").int64(0)
        var sources: [Source] = []
        for source in RollupSource.all(configured: configured) {
            let (table, changes) = (source.table, source.changesTable)
            if source.definition != nil, try connection.query("SELECT 1 FROM rollupd.sources WHERE source = $1", [source.rawValue],
                                                               context: "source row").rows.isEmpty {
                // A configured source not prepared yet (its table may lack rollupd_xid): shown, and
                // unhealthy as never rolled up.
                sources.append(Source(source: source.rawValue, initialized: false, watermark: "-", lastPassStartedAt: nil,
                                      lastPassDurationMs: nil, lastPassAdded: 0, lastPassRemoved: 0, totalPasses: 0,
                                      pendingRows: 0, pendingChanges: 0, lagSeconds: 0))
                continue
            }
            let row = try connection.query("""
                SELECT s.initialized, s.watermark::text, \(iso("s.last_pass_started_at")), s.last_pass_duration_ms,
                       s.last_pass_added, s.last_pass_removed, s.total_passes,
                       (SELECT count(*) FROM (SELECT 1 FROM \(table) t
                           WHERE t.rollupd_xid >= s.watermark OR ((NOT s.initialized OR s.adopting) AND t.rollupd_xid IS NULL)
                           LIMIT \(pendingCap)) AS p),
                       (SELECT count(*) FROM \(changes)),
                       coalesce(extract(epoch FROM now() - CASE WHEN \(RollupEngine.hasWorkSQL(source, horizon: "h.horizon"))
                                                               THEN s.fresh_as_of
                                                               ELSE greatest(s.fresh_as_of, \(RollupEngine.freshAsOfSQL)) END),
                                extract(epoch FROM now() - s.caught_up_at), 0)
                FROM rollupd.sources s, LATERAL (SELECT \(RollupEngine.horizonSQL) AS horizon) AS h
                WHERE s.source = $1
                """, [source.rawValue], context: "status of \(table)").singleRow("status of \(table)")
            let pendingRows = try row.int64(7)
            let pendingChanges = try row.int64(8)
            sources.append(Source(
                source: source.rawValue, initialized: try row.bool(0), watermark: try row.string(1),
                lastPassStartedAt: row[2], lastPassDurationMs: try row.optionalDouble(3),
                lastPassAdded: try row.int64(4), lastPassRemoved: try row.int64(5), totalPasses: try row.int64(6),
                pendingRows: pendingRows, pendingChanges: pendingChanges,
                lagSeconds: try row.double(9)))
        }
        let retention = try connection.query("""
            SELECT table_name, \(iso("last_run_at")), rows_deleted, partitions_dropped, duration_ms, backlog, last_error
            FROM rollupd.retention_runs ORDER BY table_name
            """, context: "retention runs").rows.map { row in
                RetentionRun(table: try row.string(0), lastRunAt: try row.string(1), rowsDeleted: try row.int64(2),
                             partitionsDropped: try row.int64(3), durationMs: try row.double(4), backlog: try row.int64(5),
                             lastError: row[6])
            }
        return StatusReport(leaderPID: holder?.pid, leaderApplication: holder?.application,
                            schemaVersion: version.map(Int.init), rejectedRows: rejected, sources: sources,
                            retention: retention, alerts: try AlertChannelStatus.read(on: connection))
    }
}
