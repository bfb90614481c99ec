import Postgres

/// One thing in the product's database that keeps rollupd from working, and how to fix it.
public struct DeploymentProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The object: `"public"."events"`, `"public"."cost_aggregates".period_start`, `schema rollupd`.
    public var object: String
    public var problem: String
    /// SQL (or a command) that fixes it, when there is one.
    public var fix: String?

    public init(object: String, problem: String, fix: String? = nil) {
        self.object = object
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        "\(object): \(problem)" + (fix.map { "\n    fix: \($0)" } ?? "")
    }
}

/// rollupd cannot run against this database as it is; every problem is listed.
public struct DeploymentError: Error, Sendable, CustomStringConvertible {
    public let problems: [DeploymentProblem]
    public init(problems: [DeploymentProblem]) { self.problems = problems }
    public var description: String {
        "the database is not ready for rollupd:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Checks the product's tables before rollupd migrates or runs: the source tables exist with the
/// columns rollupd reads, and tables the app already has under the names rollupd writes
/// (`cost_aggregates`, `hourly_rollups`, `model_pricing`) can be used as they are. Such a table is
/// never adopted blindly and never changed beyond adding a missing column (migration 002).
public struct SchemaPreflight: Sendable {
    public let appSchema: SQLIdentifier

    public init(appSchema: SQLIdentifier) { self.appSchema = appSchema }

    /// A column rollupd reads or writes, and the types (as format_type names them) it accepts.
    struct Column {
        let name: String
        let types: Set<String>
        /// Absent is fine: migration 002 adds it.
        var addedIfMissing = false
    }

    struct TableShape {
        let name: String
        let columns: [Column]
        /// For tables rollupd writes: the columns of the unique key its upserts name.
        var uniqueKey: [String]? = nil
        /// The index migration 002 would create for that key if none of this name exists.
        var keyIndex: String? = nil
        var written: Bool { uniqueKey != nil }
    }

    static let text: Set<String> = ["text", "character varying"]
    static let integer: Set<String> = ["smallint", "integer", "bigint", "numeric"]
    static let timestamptz: Set<String> = ["timestamp with time zone"]

    static let events = TableShape(name: "events", columns: [
        Column(name: "id", types: []), Column(name: "project_id", types: text), Column(name: "feature", types: text),
        Column(name: "model", types: text), Column(name: "user_id", types: text), Column(name: "created_at", types: timestamptz),
        Column(name: "input_tokens", types: integer), Column(name: "output_tokens", types: integer),
        Column(name: "latency_ms", types: integer),
        Column(name: "estimated_cost_usd", types: ["numeric", "double precision", "real"]),
        Column(name: "verified_cost_usd", types: ["numeric", "double precision", "real"]),
    ])
    static let analyticsEvents = TableShape(name: "analytics_events", columns: [
        Column(name: "id", types: []), Column(name: "session_id", types: text), Column(name: "event_type", types: text),
        Column(name: "tool_name", types: text), Column(name: "properties", types: ["jsonb"]),
        Column(name: "occurred_at", types: timestamptz),
    ])
    static let costAggregates = TableShape(name: "cost_aggregates", columns: [
        Column(name: "id", types: ["uuid"]), Column(name: "project_id", types: text), Column(name: "feature", types: text),
        Column(name: "model", types: text), Column(name: "period", types: text), Column(name: "period_start", types: timestamptz),
        Column(name: "total_cost", types: ["numeric"]), Column(name: "total_tokens", types: integer),
        Column(name: "call_count", types: integer), Column(name: "avg_latency", types: ["numeric", "double precision"]),
        Column(name: "total_latency_ms", types: ["bigint", "numeric"], addedIfMissing: true),
    ], uniqueKey: ["project_id", "feature", "model", "period", "period_start"], keyIndex: "idx_cost_agg_uniq")
    static let hourlyRollups = TableShape(name: "hourly_rollups", columns: [
        Column(name: "hour", types: timestamptz), Column(name: "event_counts", types: ["jsonb"]),
        Column(name: "tool_usage", types: ["jsonb"]), Column(name: "risk_distribution", types: ["jsonb"]),
        Column(name: "unique_sessions", types: integer), Column(name: "total_events", types: integer),
    ], uniqueKey: ["hour"])
    static let modelPricing = TableShape(name: "model_pricing", columns: [
        Column(name: "provider", types: text), Column(name: "model", types: text),
        Column(name: "input_price_per_1k", types: ["numeric", "double precision", "real"]),
        Column(name: "output_price_per_1k", types: ["numeric", "double precision", "real"]),
        Column(name: "effective_date", types: timestamptz),
    ])

    /// $1 schema, $2 table: each column's name, type, NOT NULL and whether it has a default.
    static let columnsSQL = """
        SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """

    /// $1 schema, $2 table: its unique, non-partial indexes on plain columns, by name.
    static let uniqueIndexesSQL = """
        SELECT ic.relname, array_to_string(ARRAY(
                   SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
                   ORDER BY a.attname), ',')
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[]))
        """

    func relation(_ name: String) -> String { QualifiedName(schema: appSchema, name: try! SQLIdentifier(name)).quoted }

    /// Throws every problem at once; returns remarks on what is usable but worth knowing.
    public func requireUsable(on connection: PGConnection) throws -> [String] {
        let (problems, remarks) = try inspect(on: connection)
        guard problems.isEmpty else { throw DeploymentError(problems: problems) }
        return remarks
    }

    /// The problems and remarks, without throwing (for `check-db`).
    public func inspect(on connection: PGConnection) throws -> (problems: [DeploymentProblem], remarks: [String]) {
        let schemaExists = try connection.query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", [appSchema.name],
                                                context: "find database.schema").singleRow("schema").bool(0)
        guard schemaExists else {
            return ([DeploymentProblem(object: "schema \(appSchema.quoted)",
                                       problem: "does not exist in this database; database.schema names the schema of the product's tables (events, analytics_events)")], [])
        }
        var problems: [DeploymentProblem] = []
        var remarks: [String] = []
        for shape in [Self.events, Self.analyticsEvents, Self.costAggregates, Self.hourlyRollups, Self.modelPricing] {
            let (found, remark) = try check(shape, on: connection)
            problems += found
            remarks += remark
        }
        return (problems, remarks)
    }

    private func check(_ shape: TableShape, on connection: PGConnection) throws -> ([DeploymentProblem], [String]) {
        let table = relation(shape.name)
        let columns = try connection.query(Self.columnsSQL, [appSchema.name, shape.name], context: "columns of \(table)").rows
        let isSource = shape.name == "events" || shape.name == "analytics_events"
        if columns.isEmpty {
            guard isSource else { return ([], []) }  // rollupd creates it
            return ([DeploymentProblem(
                object: table,
                problem: "table not found: rollupd rolls up the product's \(shape.name) from schema \(appSchema.name) (database.schema) and never creates it; set database.schema to the schema that has it")], [])
        }
        var byName: [String: (type: String, notNull: Bool, hasDefault: Bool)] = [:]
        for row in columns {
            byName[try row.string(0)] = (try row.string(1), try row.bool(2), try row.bool(3))
        }
        var problems: [DeploymentProblem] = []
        var remarks: [String] = []
        let usedBy = isSource ? "rollupd reads" : "rollupd writes"
        for column in shape.columns {
            guard let found = byName[column.name] else {
                if column.addedIfMissing {
                    remarks.append("\(table) has no \(column.name): rollupd adds it (bigint NOT NULL DEFAULT 0)")
                } else {
                    problems.append(DeploymentProblem(object: "\(table).\(column.name)", problem: "missing: \(usedBy) this column"))
                }
                continue
            }
            if !column.types.isEmpty, !column.types.contains(found.type) {
                problems.append(DeploymentProblem(
                    object: "\(table).\(column.name)",
                    problem: "is \(found.type); \(usedBy) it as \(column.types.sorted().joined(separator: " or "))"))
            }
            if shape.written, found.type == "integer" || found.type == "smallint" {
                remarks.append("\(table).\(column.name) is \(found.type): a bucket past its range fails its pass; ALTER it to bigint to lift that")
            }
        }
        guard shape.written else { return (problems, remarks) }
        if shape.name == "cost_aggregates", let id = byName["id"], !id.hasDefault {
            problems.append(DeploymentProblem(object: "\(table).id", problem: "has no default: rollupd inserts buckets without an id",
                                              fix: "ALTER TABLE \(table) ALTER COLUMN id SET DEFAULT gen_random_uuid();"))
        }
        let known = Set(shape.columns.map(\.name) + ["id"])
        for (name, found) in byName where !known.contains(name) && found.notNull && !found.hasDefault {
            problems.append(DeploymentProblem(object: "\(table).\(name)",
                                              problem: "is NOT NULL without a default: rollupd's inserts cannot fill it"))
        }
        if let key = shape.uniqueKey {
            let indexes = try connection.query(Self.uniqueIndexesSQL, [appSchema.name, shape.name], context: "unique indexes of \(table)").rows
            let wanted = key.sorted().joined(separator: ",")
            let matching = try indexes.contains { try $0.string(1) == wanted }
            if let keyIndex = shape.keyIndex, try indexes.contains(where: { try $0.string(0) == keyIndex }) == false,
               try connection.query("SELECT to_regclass($1) IS NOT NULL", [relation(keyIndex)]).singleRow("index").bool(0) {
                problems.append(DeploymentProblem(object: relation(keyIndex),
                                                  problem: "exists but is not a unique index on (\(key.joined(separator: ", "))), which rollupd's upserts need"))
            } else if !matching && shape.keyIndex == nil {
                problems.append(DeploymentProblem(
                    object: table, problem: "has no unique index on (\(key.joined(separator: ", "))), which rollupd's upserts need",
                    fix: "CREATE UNIQUE INDEX CONCURRENTLY ON \(table) (\(key.joined(separator: ", ")));"))
            }
        }
        return (problems, remarks)
    }
}
