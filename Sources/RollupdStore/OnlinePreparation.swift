import Postgres

/// Gives a product table what a pass needs (`rollupd_xid xid8 DEFAULT pg_current_xact_id()` and
/// a btree index on it) without holding up the product's writes:
///
/// - the column is added without a default (a catalog change, no rewrite: existing rows read as
///   NULL and are counted by the source's first pass), then given its default;
/// - both ALTERs take their lock with a short lock_timeout and are retried (LockRetry);
/// - the index is built with CREATE INDEX CONCURRENTLY, which lets inserts go on while it reads
///   the table. An interrupted build leaves an INVALID index behind; it is found, dropped
///   (concurrently) and built again, so a killed `rollupd migrate` resumes by running it again.
///
/// Each step looks first and does nothing when its work is done, so it is cheap to run every time.
public struct OnlinePreparation: Sendable {
    public let table: QualifiedName
    public let indexName: SQLIdentifier
    public let locks: LockRetry

    public init(table: QualifiedName, indexName: SQLIdentifier, locks: LockRetry = LockRetry()) {
        self.table = table
        self.indexName = indexName
        self.locks = locks
    }

    /// $1 table (quoted text), $2 index name: has the column, its default, the index's validity.
    static let stateSQL = """
        SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'rollupd_xid' AND NOT attisdropped),
               EXISTS (SELECT 1 FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                       WHERE d.adrelid = $1::regclass AND a.attname = 'rollupd_xid'),
               (SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = $1::regclass AND c.relname = $2)
        """

    /// What it did, one sentence per step (nothing when the table was ready).
    public func run(on connection: PGConnection, onWait: (String) -> Void = { _ in }) throws -> [String] {
        let state = try connection.query(Self.stateSQL, [table.quoted, indexName.name], context: "look at \(table)").singleRow("preparation state")
        var done: [String] = []
        if !(try state.bool(0)) {
            try locks.statement("ALTER TABLE \(table.quoted) ADD COLUMN IF NOT EXISTS rollupd_xid xid8",
                                "add rollupd_xid to \(table)", on: connection, onWait: onWait)
            done.append("added column rollupd_xid to \(table) (no rewrite: existing rows are NULL until rolled up)")
        }
        if !(try state.bool(1)) {
            try locks.statement("ALTER TABLE \(table.quoted) ALTER COLUMN rollupd_xid SET DEFAULT pg_catalog.pg_current_xact_id()",
                                "set the default of \(table).rollupd_xid", on: connection, onWait: onWait)
            done.append("set the default of \(table).rollupd_xid to pg_current_xact_id()")
        }
        let valid = state[2].map { $0 == "t" }
        let index = QualifiedName(schema: table.schema, name: indexName)
        let partitioned = try isPartitioned(on: connection)
        // A partitioned table's index is INVALID until its last partition's is attached: the
        // build resumes where it stopped instead.
        if valid == false && !partitioned {
            try unbounded(connection) { try connection.query("DROP INDEX CONCURRENTLY IF EXISTS \(index.quoted)", context: "drop INVALID \(index)") }
            done.append("dropped \(index), left INVALID by an interrupted build")
        }
        if valid != true {
            if partitioned {
                done += try buildPartitioned(index, on: connection, onWait: onWait)
            } else {
                try unbounded(connection) {
                    try connection.query("CREATE INDEX CONCURRENTLY IF NOT EXISTS \(indexName.quoted) ON \(table.quoted) (rollupd_xid)",
                                         context: "build \(index) concurrently")
                }
                done.append("built index \(index) concurrently")
            }
        }
        return done
    }

    private func isPartitioned(on connection: PGConnection) throws -> Bool {
        try connection.query("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass", [table.quoted], context: "kind of \(table)")
            .singleRow("relkind").bool(0)
    }

    /// A partitioned table takes no CREATE INDEX CONCURRENTLY. PostgreSQL's documented way: an
    /// index on the parent alone (ON ONLY: a catalog entry, INVALID until complete), each leaf's
    /// index built concurrently and attached; the parent's becomes valid with the last one, and
    /// partitions the app adds later get theirs automatically. A deeper tree (partitions that are
    /// partitioned again) gets a plain CREATE INDEX, which blocks writes while it builds.
    private func buildPartitioned(_ index: QualifiedName, on connection: PGConnection, onWait: (String) -> Void) throws -> [String] {
        let partitions = try connection.query("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname, t.isleaf, t.level
            FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE t.level > 0 ORDER BY t.level, c.relname
            """, [table.quoted], context: "partitions of \(table)").rows
        guard try partitions.allSatisfy({ try $0.bool(2) && $0.int(3) == 1 }) else {
            try locks.statement("CREATE INDEX IF NOT EXISTS \(indexName.quoted) ON \(table.quoted) (rollupd_xid)",
                                "build \(index) on a multi-level partitioned table", on: connection, onWait: onWait)
            return ["built index \(index) (multi-level partitioned table: writes waited for the build)"]
        }
        try locks.statement("CREATE INDEX IF NOT EXISTS \(indexName.quoted) ON ONLY \(table.quoted) (rollupd_xid)",
                            "create \(index) on the parent", on: connection, onWait: onWait)
        for partition in partitions {
            let leaf = try QualifiedName(parsing: try partition.string(0))
            let leafIndex = try SQLIdentifier(String(try partition.string(1).prefix(46)) + "_rollupd_xid_idx")
            let qualified = QualifiedName(schema: leaf.schema, name: leafIndex)
            let attached = try connection.query("""
                SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = $2::regclass)
                """, [qualified.quoted, index.quoted], context: "look at \(qualified)").singleRow("attached").bool(0)
            if attached { continue }
            try unbounded(connection) {
                if try connection.query("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", [qualified.quoted]).rows.first?.bool(0) == false {
                    try connection.query("DROP INDEX CONCURRENTLY IF EXISTS \(qualified.quoted)", context: "drop INVALID \(qualified)")
                }
                try connection.query("CREATE INDEX CONCURRENTLY IF NOT EXISTS \(leafIndex.quoted) ON \(leaf.quoted) (rollupd_xid)",
                                     context: "build \(qualified) concurrently")
            }
            try locks.statement("ALTER INDEX \(index.quoted) ATTACH PARTITION \(qualified.quoted)",
                                "attach \(qualified)", on: connection, onWait: onWait)
        }
        return ["built index \(index) on \(partitions.count) partitions concurrently"]
    }

    /// A concurrent index build waits for every transaction that might not see it, and reads the
    /// whole table: neither blocks the product's writes, and neither fits a statement timeout.
    private func unbounded(_ connection: PGConnection, _ body: () throws -> Void) throws {
        try connection.withSettings(["statement_timeout": "0", "lock_timeout": "0"], body)
    }
}
