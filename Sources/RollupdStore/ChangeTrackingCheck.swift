import Postgres
import RollupdCore

/// Whether each source table still has what `rollupd migrate` / `prepare-source` gave it: the
/// rollupd_xid column with its default, a valid index on it, and both capture triggers, enabled.
/// An app that re-creates a table (an ORM's reset, a restore) loses them silently; without the
/// triggers, updates and deletes would no longer be subtracted.
public struct ChangeTrackingCheck: Sendable {
    public let appSchema: SQLIdentifier
    public let sources: [SourceDefinition]

    public init(appSchema: SQLIdentifier, sources: [SourceDefinition]) {
        self.appSchema = appSchema
        self.sources = sources
    }

    struct Target {
        let table: QualifiedName
        let index: SQLIdentifier
        let triggers: [String]
        let fix: String
    }

    var targets: [Target] {
        BuiltInTables.sources.map {
            Target(table: QualifiedName(schema: appSchema, name: $0.name), index: $0.xidIndex,
                   triggers: ["rollupd_capture_update", "rollupd_capture_delete"],
                   fix: "rollupd migrate (as the table's owner)")
        } + sources.map {
            Target(table: $0.table, index: SourcePreparation.indexName(for: $0),
                   triggers: ["rollupd_capture_update_\($0.name)", "rollupd_capture_delete_\($0.name)"],
                   fix: "rollupd prepare-source \($0.name) --apply (as the table's owner)")
        }
    }

    /// $1 table, $2 index name, $3 trigger names: exists, has the column, its default, index valid, triggers found.
    static let stateSQL = """
        SELECT to_regclass($1) IS NOT NULL,
               EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'rollupd_xid' AND NOT attisdropped),
               EXISTS (SELECT 1 FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                       WHERE d.adrelid = to_regclass($1) AND a.attname = 'rollupd_xid'),
               (SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = to_regclass($1) AND c.relname = $2),
               ARRAY(SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = ANY ($3::text[])
                     AND tgenabled <> 'D' ORDER BY tgname)::text
        """

    public func problems(on connection: PGConnection) throws -> [DeploymentProblem] {
        var problems: [DeploymentProblem] = []
        let usable = try AccessCheck.usableSchemas(on: connection)
        let existing = Set(try connection.query("SELECT nspname FROM pg_namespace").rows.map { try $0.string(0) })
        // A table in a schema the role may not use cannot be looked at; AccessCheck reports the
        // schema. (In a schema that does not exist, it is simply not found.)
        for target in targets where target.table.schema.map({ usable.contains($0.name) || !existing.contains($0.name) }) ?? true {
            let row = try connection.query(Self.stateSQL, [target.table.quoted, target.index.name, target.triggers],
                                           context: "change tracking of \(target.table)").singleRow("change tracking")
            guard try row.bool(0) else {
                // The built-in tables are SchemaPreflight's to report; a configured one is here.
                if let source = sources.first(where: { $0.table == target.table }) {
                    problems.append(DeploymentProblem(
                        object: target.table.quoted,
                        problem: "table not found: sources.\(source.name).table names it (a table without a schema is in database.schema)"))
                }
                continue
            }
            var lacking: [String] = []
            if try !row.bool(1) { lacking.append("column rollupd_xid") } else if try !row.bool(2) { lacking.append("the default of rollupd_xid") }
            switch row[3] {
            case nil: lacking.append("index \(target.index.quoted)")
            case "f": lacking.append("a valid index \(target.index.quoted) (it is INVALID)")
            default: break
            }
            let found = try row.string(4)
            for trigger in target.triggers where !found.contains(trigger) { lacking.append("enabled trigger \(trigger)") }
            if !lacking.isEmpty {
                problems.append(DeploymentProblem(object: target.table.quoted, problem: "lacks " + lacking.joined(separator: ", "), fix: target.fix))
            }
        }
        return problems
    }
}
