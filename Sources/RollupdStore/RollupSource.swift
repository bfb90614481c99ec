import Postgres
import RollupdCore

/// A source table and the rollups kept from it: one of the two built-in tables, or a table the
/// operator configured (`sources.<name>.*`). Identified by its name in rollupd.sources.
public struct RollupSource: Sendable, Hashable {
    public let rawValue: String
    /// nil for the built-in sources.
    public let definition: SourceDefinition?

    private init(builtIn name: String) {
        rawValue = name
        definition = nil
    }

    public init(_ definition: SourceDefinition) {
        rawValue = definition.name
        self.definition = definition
    }

    /// `events` -> `cost_aggregates` (hour and day) and `user_cost_aggregates`.
    public static let events = RollupSource(builtIn: "events")
    /// `analytics_events` -> `hourly_rollups`.
    public static let analyticsEvents = RollupSource(builtIn: "analytics_events")

    /// The source table, safe to put into SQL text: a built-in name (rollupd's constant) or a
    /// configured one, validated and quoted.
    var table: String { definition?.table.quoted ?? rawValue }

    /// What selects the saved old versions of its updated and deleted rows, for statements where
    /// `s` is its rollupd.sources row: the built-ins have their own tables (migration 003), the
    /// configured sources share one (migration 008).
    var changesTable: String {
        switch self {
        case .events: return "rollupd.event_changes"
        case .analyticsEvents: return "rollupd.analytics_changes"
        default: return "rollupd.source_changes WHERE source = s.source"
        }
    }

    /// Its saved old versions, for a statement of their own (the configured name is validated:
    /// [a-z0-9_]).
    var changeRows: String {
        switch self {
        case .events: return "rollupd.event_changes"
        case .analyticsEvents: return "rollupd.analytics_changes"
        default: return "rollupd.source_changes WHERE source = '\(rawValue)'"
        }
    }

    /// Whether its rows are AI calls, whose costs budgets read (`events` and configured cost sources).
    public var isCost: Bool { self == .events || definition?.kind == .cost }

    /// The built-in sources, in pass order.
    public static let allCases: [RollupSource] = [.events, .analyticsEvents]

    /// The built-in sources, then the configured ones in name order: what a daemon passes over.
    public static func all(configured: [SourceDefinition]) -> [RollupSource] {
        allCases + configured.map(RollupSource.init)
    }

    public static func == (lhs: RollupSource, rhs: RollupSource) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

/// The transactions a pass covers: rows with `from <= rollupd_xid < to` (see migration 003), or
/// pre-existing rows in the adoption range (AdoptionKey).
public struct XidWindow: Sendable {
    /// The rows of a source table inside the window; $1 from, $2 to, $3 includePreexisting (and
    /// then the adoption range). The one definition every statement that reads a window uses.
    static func predicate(_ key: AdoptionKey) -> String {
        "((rollupd_xid >= $1::xid8 AND rollupd_xid < $2::xid8) OR ($3::boolean AND rollupd_xid IS NULL AND \(key.rowsInRange)))"
    }

    /// The rows of transactions in [from, to), with SQL expressions for the bounds (the look for
    /// work before a pass, which reads the watermark and the horizon in the same statement).
    static func predicate(from: String, to: String) -> String {
        "(rollupd_xid >= \(from) AND rollupd_xid < \(to))"
    }

    /// Its parameters, in the order `predicate` numbers them.
    var parameters: [any PGParameter] { [from, to, includePreexisting] }

    /// The watermark: every row below it is already counted.
    public var from: String
    /// The horizon: the snapshot's xmin, below which every transaction has finished.
    public var to: String
    /// True in a transaction that adopts rows that predate rollupd (NULL xid): those in the range
    /// AdoptionKey.set gave the transaction.
    public var includePreexisting: Bool
    /// The source's key, for the adoption range and the old versions' rules.
    var key: AdoptionKey
}

/// Buckets to recompute from raw rows: every hour and every local day overlapping [from, to).
public struct RebuildRange: Sendable, Equatable {
    /// Epoch seconds.
    public var from: Double
    public var to: Double

    public init(from: Double, to: Double) {
        self.from = from
        self.to = to
    }
}

/// What applying a window did.
public struct ApplyCounts: Sendable, Equatable {
    public var added: Int64 = 0
    public var removed: Int64 = 0
    public var bucketsTouched: Int64 = 0
    public var rejectedCount: Int64 = 0
    /// Of those, rows without a cost whose model has no price at their time (configured sources).
    public var unpriced: Int64 = 0
    /// The ids of rows rejected for the first time (at most 100), for one log line.
    public var newlyRejectedIDs: String = ""
}

/// The SQL of one source's rollups. Each implementation keeps its statements in one file.
protocol SourceRollup: Sendable {
    /// Whether `day` buckets depend on rollup.time_zone.
    var usesTimeZone: Bool { get }
    /// Deletes everything this source's rollups hold (first pass and `rebuild --all`).
    func clearAll(on connection: PGConnection) throws
    /// Counts the window's rows and consumes the change log, in the caller's transaction.
    func apply(_ window: XidWindow, timeZone: String, on connection: PGConnection) throws -> ApplyCounts
    /// Recomputes the buckets overlapping `range` from raw rows counted below `horizon`.
    func rebuild(_ range: RebuildRange, horizon: String, timeZone: String, key: AdoptionKey, on connection: PGConnection) throws -> Int64
}

extension ApplyCounts {
    /// Runs a source's reject statement, which records the window's rejected rows once each and
    /// returns how many were new and their ids (at most 100) first; keeps those two and returns
    /// the row for whatever else the statement reports.
    @discardableResult
    mutating func recordRejected(_ sql: String, _ parameters: [any PGParameter], source: String,
                                 on connection: PGConnection) throws -> PGRow {
        let rejected = try connection.query(sql, parameters, context: "record rejected rows of \(source)").singleRow("rejected rows")
        rejectedCount = try rejected.int64(0)
        newlyRejectedIDs = rejected[1] ?? ""
        return rejected
    }
}
