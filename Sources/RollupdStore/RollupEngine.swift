import Foundation
import Postgres

public enum RollupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The day buckets were built in another zone; mixing two zones would make them wrong.
    case timeZoneChanged(source: RollupSource, stored: String, configured: String)
    case invalidRange(String)
    /// `catchUp` waited this long for transactions that were open when it started.
    case catchUpTimedOut(source: RollupSource, waitingFor: String)
    /// A configured source whose table rollupd has not been given change tracking yet.
    case sourceNotPrepared(source: String, table: String)

    public var description: String {
        switch self {
        case .timeZoneChanged(let source, let stored, let configured):
            return "rollup.time_zone is \(configured) but the day rollups of \(source.rawValue) were built in \(stored). Set it back to \(stored), or run `rollupd rebuild --all` to recompute every rollup in \(configured) from the raw events still kept"
        case .invalidRange(let reason):
            return "invalid rebuild range: \(reason)"
        case .catchUpTimedOut(let source, let waitingFor):
            return "gave up catching up \(source.rawValue): still waiting for \(waitingFor)"
        case .sourceNotPrepared(let source, let table):
            return "source '\(source)' (table \(table)) is not prepared for rollupd: run `rollupd prepare-source \(source)` to see, then --apply, the column, index and triggers it adds"
        }
    }
}

/// What one pass over one source did.
public struct PassReport: Sendable {
    public var source: RollupSource
    public var counts: ApplyCounts
    public var firstPass: Bool
    public var rebuiltBuckets: Int64?
    public var horizon: String
    public var duration: Duration
    /// Epoch seconds: everything committed before this instant is rolled up (migration 005).
    public var freshAsOf: Double
    /// This source's pass count (rollupd.sources.total_passes), to tell log lines apart.
    public var number: Int64
    /// The transaction took a bounded part of the work below the horizon (rollup.max_rows_per_transaction):
    /// more is waiting, and the next pass should come at once.
    public var remaining: Bool = false
}

extension PassReport {
    /// Folds the next transaction of the same pass into this report.
    mutating func add(_ next: PassReport) {
        counts.added += next.counts.added
        counts.removed += next.counts.removed
        counts.bucketsTouched += next.counts.bucketsTouched
        counts.rejectedCount += next.counts.rejectedCount
        counts.unpriced += next.counts.unpriced
        if !next.counts.newlyRejectedIDs.isEmpty {
            counts.newlyRejectedIDs += (counts.newlyRejectedIDs.isEmpty ? "" : ", ") + next.counts.newlyRejectedIDs
        }
        rebuiltBuckets = next.rebuiltBuckets ?? rebuiltBuckets
        horizon = next.horizon
        duration += next.duration
        freshAsOf = next.freshAsOf
        number = next.number
        remaining = next.remaining
    }
}

/// Runs passes: each one transaction that counts what committed since the last pass, consumes
/// the change log, and advances the watermark, so a crash at any instant leaves the rollups as
/// they were before the pass or as they are after it.
public struct RollupEngine: Sendable {
    public let timeZone: String
    /// `rollup.max_rows_per_transaction`; nil takes everything below the horizon in one transaction.
    public let maxRowsPerTransaction: Int?
    /// `rollup.work_mem`, for each transaction of a pass.
    public let workMem: String

    public init(timeZone: String, maxRowsPerTransaction: Int? = nil, workMem: String = "128MB") {
        self.timeZone = timeZone
        self.maxRowsPerTransaction = maxRowsPerTransaction
        self.workMem = workMem
    }

    static func rollup(for source: RollupSource) -> any SourceRollup {
        if let definition = source.definition {
            switch definition.kind {
            case .cost: return ConfiguredCostRollup(definition)
            case .analytics: return ConfiguredAnalyticsRollup(definition)
            }
        }
        return source == .events ? CostRollup() : AnalyticsRollup()
    }

    public enum Mode: Sendable, Equatable {
        case incremental
        /// Also recompute these buckets from raw rows, in the same transaction.
        case rebuild(RebuildRange)
        /// Forget everything and recompute the whole source (`rebuild --all`, a time zone change).
        case reset
    }

    /// One pass over `source`. An incremental pass first looks, read-only, whether there is
    /// anything to do (`idleReport`): the daemon passes every poll interval, and most of those
    /// passes find nothing. Otherwise, and always in the other modes, the locking pass.
    public func pass(_ source: RollupSource, mode: Mode = .incremental, on connection: PGConnection, maxAttempts: Int = 5) throws -> PassReport {
        if mode == .incremental, let idle = try idleReport(source, on: connection) { return idle }
        var report = try lockedPass(source, mode: mode, on: connection, maxAttempts: maxAttempts)
        // Unbounded, only the transaction that adopted the pre-existing rows leaves work behind:
        // the rest goes in the next, so one pass is still everything below the horizon.
        if maxRowsPerTransaction == nil && report.remaining {
            report.add(try lockedPass(source, mode: .incremental, on: connection, maxAttempts: maxAttempts))
        }
        return report
    }

    /// The pass proper, retried on a serialization conflict (another pass, `once` or `rebuild`
    /// committed first: the row lock on rollupd.sources makes that a clean conflict).
    func lockedPass(_ source: RollupSource, mode: Mode, on connection: PGConnection, maxAttempts: Int = 5) throws -> PassReport {
        var attempt = 1
        while true {
            do {
                return try passOnce(source, mode: mode, on: connection)
            } catch let error as PGError where error.isSerializationConflict && attempt < maxAttempts {
                attempt += 1
            }
        }
    }

    /// Passes until every transaction that had committed when this call started is counted.
    ///
    /// One pass stops at its snapshot's xmin, and xmin is cluster-wide: a transaction still open
    /// anywhere (another database included) holds it back. So the target is the xmax of a snapshot
    /// taken now, and passes repeat, 20 ms apart, until the watermark reaches it. These are always
    /// locking passes, without the look for work: `once` and `rebuild` record every pass they make.
    /// A bounded pass (rollup.max_rows_per_transaction) takes the backlog in several transactions,
    /// one after the other; `timeout` bounds only the wait for transactions that hold the horizon
    /// back, never a backlog that is being worked through. `progress` hears of every transaction.
    public func catchUp(_ source: RollupSource, mode: Mode = .incremental, on connection: PGConnection, timeout: Duration = .seconds(300),
                        progress: (PassReport, PGConnection) throws -> Void = { _, _ in }) throws -> PassReport {
        var waitingSince = ContinuousClock.now
        let target = try connection.query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", context: "catch-up target")
            .singleRow("catch-up target").string(0)
        var report = try lockedPass(source, mode: mode, on: connection)
        try progress(report, connection)
        var last = report
        // A rebuild waits for the adoption of pre-existing rows to end (it recounts what the
        // rollups count); it is asked again until a transaction has done it.
        var pending = mode
        if case .rebuild = mode, report.rebuiltBuckets != nil { pending = .incremental }
        if mode == .reset { pending = .incremental }
        while last.remaining || (UInt64(report.horizon) ?? 0) < (UInt64(target) ?? 0) {
            if last.remaining {
                waitingSince = ContinuousClock.now
            } else {
                guard ContinuousClock.now - waitingSince < timeout else {
                    throw RollupError.catchUpTimedOut(source: source, waitingFor: try oldestOpenTransaction(on: connection))
                }
                usleep(20_000)
            }
            let next = try lockedPass(source, mode: pending, on: connection)
            if next.rebuiltBuckets != nil { pending = .incremental }
            try progress(next, connection)
            last = next
            report.add(next)
        }
        return report
    }

    /// Who holds the horizon back, for the error message: the oldest transaction with an xid.
    private func oldestOpenTransaction(on connection: PGConnection) throws -> String {
        let rows = try connection.query("""
            SELECT pid, coalesce(datname, '?'), coalesce(state, '?'), extract(epoch FROM now() - xact_start)::bigint
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC LIMIT 1
            """, context: "oldest open transaction").rows
        guard let row = rows.first else { return "transactions that have since finished" }
        return "transaction of pid \(try row.string(0)) (database \(try row.string(1)), \(try row.string(2)), open \(try row.string(3)) s)"
    }

    private func passOnce(_ source: RollupSource, mode: Mode, on connection: PGConnection) throws -> PassReport {
        let started = ContinuousClock.now
        let rollup = Self.rollup(for: source)
        return try connection.transaction(.repeatableRead) { connection in
            // The first statement fixes the snapshot for the whole pass, so the horizon read here
            // is the one every later statement sees. FOR UPDATE serialises passes per source.
            let rows = try connection.query("""
                SELECT s.watermark::text, s.initialized, s.day_time_zone, \(Self.horizonSQL)::text,
                       extract(epoch FROM \(Self.freshAsOfSQL)), coalesce(extract(epoch FROM s.fresh_as_of), 0),
                       s.adopting, s.adopted_through
                FROM rollupd.sources s WHERE s.source = $1 FOR UPDATE
                """, [source.rawValue], context: "read \(source.rawValue) watermark")
            // `prepare-source` creates a configured source's row together with its triggers.
            if rows.rows.isEmpty, let definition = source.definition {
                throw RollupError.sourceNotPrepared(source: definition.name, table: definition.table.quoted)
            }
            let state = try rows.singleRow("rollupd.sources row")
            // A catch-up pass's plan cost crosses the JIT thresholds; compiling it costs about a
            // second and saves nothing on a plan this simple (bench/README.md). Below about 128 MB
            // of work_mem the planner sorts a million-row catch-up for one of its two grouping
            // sets instead of hashing both (6.5 s instead of 3.9 s); only a catch-up uses that
            // much, and a larger one spills to disk rather than failing (rollup.work_mem).
            try connection.query("SELECT set_config('jit', 'off', true), set_config('work_mem', $1, true)", [workMem],
                                 context: "pass settings")
            var initialized = try state.bool(1)
            let horizon = try state.string(3)
            if mode == .reset { initialized = false }
            if initialized, rollup.usesTimeZone, let stored = state[2], stored != timeZone {
                throw RollupError.timeZoneChanged(source: source, stored: stored, configured: timeZone)
            }
            let key = try AdoptionKey.lookup(source, on: connection)
            var adopting = try state.bool(6)
            var adoptedThrough = state[7]
            if !initialized {
                try rollup.clearAll(on: connection)
                adopting = true
                adoptedThrough = nil
            }
            let counts: ApplyCounts
            var rebuilt: Int64?
            let watermark: String
            let remaining: Bool
            if adopting {
                // Rows from before rollupd, in key order; the xids wait until they are all in.
                let range = try key.nextRange(source, after: adoptedThrough, limit: maxRowsPerTransaction, on: connection)
                try AdoptionKey.set(range, after: adoptedThrough, on: connection)
                try ChangeLog.limit(nil, on: connection)
                counts = try rollup.apply(XidWindow(from: "0", to: "0", includePreexisting: true, key: key), timeZone: timeZone, on: connection)
                adoptedThrough = range.hi ?? adoptedThrough
                adopting = !range.last
                // Once every such row is in, a watermark of 1 (below every real xid) makes their old
                // versions count as counted (coalesce(old_xid, 0) < 1) and no xid row yet.
                watermark = range.last ? "1" : "0"
                remaining = true
            } else {
                try AdoptionKey.set(nil, after: nil, on: connection)
                let from = try state.string(0)
                let bound = try self.bound(source, from: from, horizon: horizon, on: connection)
                try ChangeLog.limit(bound.changeLimit, on: connection)
                counts = try rollup.apply(XidWindow(from: from, to: bound.to, includePreexisting: false, key: key),
                                          timeZone: timeZone, on: connection)
                if case .rebuild(let range) = mode {
                    rebuilt = try rollup.rebuild(range, horizon: bound.to, timeZone: timeZone, key: key, on: connection)
                }
                watermark = bound.to
                remaining = bound.remaining
            }
            // Everything committed before fresh_as_of is rolled up only once the horizon is reached.
            let freshAsOf = remaining ? try state.double(5) : try state.double(4)
            let duration = ContinuousClock.now - started
            let pass = try connection.query("""
                UPDATE rollupd.sources SET
                    watermark = $2::xid8, initialized = true, day_time_zone = $3,
                    last_pass_started_at = now(), last_pass_duration_ms = $4,
                    last_pass_added = $5, last_pass_removed = $6, last_pass_rejected = $7,
                    caught_up_at = CASE WHEN $9 THEN caught_up_at ELSE now() END, total_passes = total_passes + 1,
                    fresh_as_of = CASE WHEN $9 THEN fresh_as_of ELSE to_timestamp($8::float8) END,
                    adopting = $10, adopted_through = $11
                WHERE source = $1
                RETURNING total_passes
                """, [source.rawValue, watermark, rollup.usesTimeZone ? timeZone : nil, duration.seconds * 1000,
                      counts.added, counts.removed, counts.rejectedCount, freshAsOf, remaining, adopting, adoptedThrough],
                context: "advance \(source.rawValue) watermark").singleRow("advance watermark").int64(0)
            return PassReport(source: source, counts: counts, firstPass: !initialized, rebuiltBuckets: rebuilt,
                              horizon: watermark, duration: duration, freshAsOf: freshAsOf, number: pass, remaining: remaining)
        }
    }
}

// MARK: - Bounded passes

extension RollupEngine {
    /// What one transaction of a pass takes: the rows with `from <= rollupd_xid < to` and the
    /// change log (all of it, or at most `changeLimit` rows and no source rows).
    struct Bound {
        var to: String
        var changeLimit: Int?
        var remaining: Bool
    }

    /// With no limit, everything below the horizon. Otherwise, while more than the limit of change
    /// rows wait, a transaction consumes only those (the watermark stays: docs/design.md); then
    /// it takes source rows up to the xid of the row `limit` places on, so that every row of one
    /// writing transaction lands in the same pass transaction (one that wrote more than the limit
    /// is taken whole).
    func bound(_ source: RollupSource, from: String, horizon: String, on connection: PGConnection) throws -> Bound {
        guard let limit = maxRowsPerTransaction else { return Bound(to: horizon, changeLimit: nil, remaining: false) }
        let waiting = try connection.query("SELECT count(*) FROM (SELECT 1 FROM \(source.changeRows) LIMIT $1) AS c", [limit + 1],
                                           context: "count \(source.rawValue) change rows").singleRow("change rows").int64(0)
        if waiting > Int64(limit) { return Bound(to: from, changeLimit: limit, remaining: true) }
        let end = try connection.query("""
            SELECT CASE WHEN b.x = $1::xid8 THEN ((b.x::text)::numeric + 1)::text ELSE b.x::text END
            FROM (SELECT rollupd_xid AS x FROM \(source.table) WHERE rollupd_xid >= $1::xid8 AND rollupd_xid < $2::xid8
                  ORDER BY rollupd_xid OFFSET $3 LIMIT 1) AS b
            """, [from, horizon, limit], context: "bound the \(source.rawValue) pass").rows.first
        guard let end else { return Bound(to: horizon, changeLimit: nil, remaining: false) }
        return Bound(to: try end.string(0), changeLimit: nil, remaining: true)
    }
}

extension RollupEngine {
    /// About how many rows of `source` wait between its watermark and the horizon: the planner's
    /// estimate for that range of the xid index (its statistics, not a count, so it costs a plan,
    /// not a scan of a large backlog).
    public func backlogEstimate(_ source: RollupSource, on connection: PGConnection) throws -> Int64 {
        let bounds = try connection.query("""
            SELECT s.watermark::text, \(Self.horizonSQL)::text, s.adopting FROM rollupd.sources s WHERE s.source = $1
            """, [source.rawValue], context: "backlog bounds").rows.first
        if let bounds, bounds[2] == "t" {
            // Still adopting: the rows from before rollupd beyond the last one adopted. The key is
            // the product's value: PostgreSQL quotes it for the EXPLAIN text, which takes no parameters.
            let key = try AdoptionKey.lookup(source, on: connection)
            let after = try connection.query("SELECT quote_literal(adopted_through) FROM rollupd.sources WHERE source = $1",
                                             [source.rawValue], context: "adoption position").singleRow("position")[0]
            let beyond = after.map { " AND \(key.column) > \($0)::\(key.type)" } ?? ""
            let plan = try connection.query("EXPLAIN (FORMAT JSON) SELECT 1 FROM \(source.table) WHERE rollupd_xid IS NULL\(beyond)",
                                            context: "adoption estimate").singleRow("plan").string(0)
            return plan.firstMatch(of: /"Plan Rows": ([0-9.e+]+)/).flatMap { Double($0.output.1) }.map(Int64.init) ?? 0
        }
        guard let bounds, let from = bounds[0], let to = bounds[1],
              from.allSatisfy(\.isNumber), to.allSatisfy(\.isNumber) else { return 0 }
        // EXPLAIN takes no parameters; the bounds are xid8 values PostgreSQL just printed (digits).
        let plan = try connection.query("""
            EXPLAIN (FORMAT JSON) SELECT 1 FROM \(source.table) WHERE rollupd_xid >= '\(from)'::xid8 AND rollupd_xid < '\(to)'::xid8
            """, context: "backlog estimate").singleRow("plan").string(0)
        guard let rows = plan.firstMatch(of: /"Plan Rows": ([0-9.e+]+)/).flatMap({ Double($0.output.1) }) else { return 0 }
        return Int64(rows)
    }
}

// MARK: - The look for work

extension RollupEngine {
    /// A pass's horizon, for the rollupd.sources row `s`: its snapshot's xmin, never below the
    /// watermark.
    static let horizonSQL = "greatest(pg_snapshot_xmin(pg_current_snapshot()), s.watermark)"

    /// The instant before which every commit is rolled up once everything below this statement's
    /// horizon is (migration 005): the statement's start, or the start of the oldest other
    /// transaction holding an xid, whichever is earlier. A transaction that committed before that
    /// instant took its xid before the oldest running one took its own, so it lies below the horizon.
    /// It reads pg_stat_get_activity, the function behind pg_stat_activity (same rows, same
    /// permissions), without the view's joins: planning them was half the cost of an idle look.
    static let freshAsOfSQL = """
        least(now(), (SELECT min(a.xact_start) FROM pg_stat_get_activity(NULL) AS a
                      WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()))
        """

    /// Whether a pass over `source` has anything to do below `horizon`, for the rollupd.sources row
    /// `s`: a first pass, rows inside the window (an index range scan on the xid index, which
    /// finds none in a few buffers), or any saved old version.
    static func hasWorkSQL(_ source: RollupSource, horizon: String) -> String {
        """
        (NOT s.initialized OR s.adopting
            OR EXISTS (SELECT 1 FROM \(source.table)
                       WHERE \(XidWindow.predicate(from: "s.watermark", to: horizon)))
            OR EXISTS (SELECT 1 FROM \(source.changesTable)))
        """
    }

    /// $1 source: what the locking pass would read first, without FOR UPDATE, and whether it
    /// has work.
    static func lookSQL(_ source: RollupSource) -> String {
        """
        SELECT \(hasWorkSQL(source, horizon: "h.horizon")), s.day_time_zone, h.horizon::text,
               extract(epoch FROM greatest(s.fresh_as_of, \(freshAsOfSQL))), s.total_passes
        FROM rollupd.sources s, LATERAL (SELECT \(horizonSQL) AS horizon) AS h
        WHERE s.source = $1
        """
    }

    /// The report of a pass that found nothing to do, or nil when the locking pass has work (or
    /// must refuse a changed time zone). One SELECT in its own statement: no transaction id, no
    /// lock, no write, where the locking pass would lock and update rollupd.sources.
    ///
    /// Not moving the watermark changes nothing. No row between it and the horizon exists (a
    /// version updated or deleted since would have left a change row), and no transaction below
    /// the horizon can still write one; so the next pass, from the old watermark, counts the same
    /// rows and subtracts the same old versions as it would from the horizon.
    ///
    /// Freshness moves on all the same: the report's `freshAsOf` is this statement's, and
    /// `StatusReport` computes the lag of a source with nothing to do the same way.
    func idleReport(_ source: RollupSource, on connection: PGConnection) throws -> PassReport? {
        let started = ContinuousClock.now
        // A configured source not prepared yet has no row, or no rollupd_xid column to look at;
        // the locking pass says so.
        let rows: [PGRow]
        do {
            rows = try connection.query(Self.lookSQL(source), [source.rawValue], context: "look for \(source.rawValue) work").rows
        } catch {
            guard source.definition != nil, error.sqlState == "42703" else { throw error }
            return nil
        }
        guard let row = rows.first else { return nil }
        if try row.bool(0) { return nil }
        if Self.rollup(for: source).usesTimeZone, row[1] != timeZone { return nil }
        return PassReport(source: source, counts: ApplyCounts(), firstPass: false, rebuiltBuckets: nil,
                          horizon: try row.string(2), duration: ContinuousClock.now - started,
                          freshAsOf: try row.double(3), number: try row.int64(4))
    }
}
