import Postgres
import RollupdCore

/// The rights `rollupd run` needs, and nothing more: read the source tables, write the two rollup
/// tables in the product's schema and everything in schema rollupd. Checked against the
/// connected role at start (a missing right is a configuration error, not something to retry),
/// reported by `check-db`, and printed as GRANT statements by `rollupd grants`.
public struct AccessCheck: Sendable {
    public let appSchema: SQLIdentifier
    public let sources: [SourceDefinition]
    /// Retention deletes expired raw rows from events / analytics_events.
    public let deletesRawEvents: Bool

    public init(appSchema: SQLIdentifier, sources: [SourceDefinition], deletesRawEvents: Bool) {
        self.appSchema = appSchema
        self.sources = sources
        self.deletesRawEvents = deletesRawEvents
    }

    public init(_ config: RollupdConfig) {
        self.init(appSchema: config.database.schema, sources: config.sources,
                  deletesRawEvents: config.retention.events != .zero || config.retention.analyticsEvents != .zero)
    }

    struct Need: Equatable {
        let object: String
        let privileges: [String]
    }

    func table(_ name: String) -> String { QualifiedName(schema: appSchema, name: try! SQLIdentifier(name)).quoted }

    var schemas: [String] {
        var names = [appSchema.quoted]
        for source in sources { if let schema = source.table.schema?.quoted, !names.contains(schema) { names.append(schema) } }
        return names + ["rollupd"]
    }

    /// Table rights in the product's schemas (schema rollupd's tables are listed from the catalog).
    var tableNeeds: [Need] {
        [
            Need(object: [table("events"), table("analytics_events")].joined(separator: ", "),
                 privileges: deletesRawEvents ? ["SELECT", "DELETE"] : ["SELECT"]),
            Need(object: [table("cost_aggregates"), table("hourly_rollups")].joined(separator: ", "),
                 privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"]),
            Need(object: table("model_pricing"), privileges: ["SELECT"]),
        ] + (sources.isEmpty ? [] : [Need(object: sources.map(\.table.quoted).joined(separator: ", "), privileges: ["SELECT"])])
    }

    static let ownTablePrivileges = ["SELECT", "INSERT", "UPDATE", "DELETE"]

    /// The GRANT statements for `role`, to run as the role that owns the product's tables and ran
    /// `rollupd migrate`.
    public func grants(to role: SQLIdentifier) -> String {
        let to = role.quoted
        var lines = ["-- The rights `rollupd run` needs as \(to). Run as the role that ran `rollupd migrate`."]
        lines += schemas.map { "GRANT USAGE ON SCHEMA \($0) TO \(to);" }
        lines += tableNeeds.map { "GRANT \($0.privileges.joined(separator: ", ")) ON \($0.object) TO \(to);" }
        lines += [
            "GRANT \(Self.ownTablePrivileges.joined(separator: ", ")) ON ALL TABLES IN SCHEMA rollupd TO \(to);",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA rollupd TO \(to);",
            "-- Tables that later migrations create in schema rollupd (as the role that migrates):",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA rollupd GRANT \(Self.ownTablePrivileges.joined(separator: ", ")) ON TABLES TO \(to);",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA rollupd GRANT USAGE, SELECT ON SEQUENCES TO \(to);",
            "-- Optional: rollup lag counts other roles' open transactions only with this.",
            "-- GRANT pg_read_all_stats TO \(to);",
        ]
        if deletesRawEvents {
            lines.append("-- Retention of raw events (retention.events, retention.analytics_events) needs DELETE above; on a partitioned table, dropping expired partitions needs ownership.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// $1 objects, $2 privileges (comma-separated): the pairs the current role lacks. Objects that
    /// do not exist are SchemaPreflight's to report.
    static let missingTableSQL = """
        SELECT o.object, string_agg(p.privilege, ', ' ORDER BY p.n)
        FROM unnest($1::text[], $2::text[]) AS o(object, privileges),
             LATERAL unnest(string_to_array(o.privileges, ',')) WITH ORDINALITY AS p(privilege, n)
        WHERE to_regclass(o.object) IS NOT NULL AND NOT has_table_privilege(o.object, p.privilege)
        GROUP BY o.object ORDER BY o.object
        """

    /// The schemas the connected role may look into (USAGE).
    public static func usableSchemas(on connection: PGConnection) throws -> Set<String> {
        Set(try connection.query("SELECT nspname FROM pg_namespace WHERE has_schema_privilege(oid, 'USAGE')", context: "usable schemas")
            .rows.map { try $0.string(0) })
    }

    /// Every right the connected role lacks, each with the GRANT that gives it.
    public func missing(on connection: PGConnection) throws -> [DeploymentProblem] {
        let role = try connection.query("SELECT current_user").singleRow("current_user").string(0)
        let to = try SQLIdentifier(role).quoted
        var problems: [DeploymentProblem] = []
        for schema in schemas {
            let row = try connection.query("""
                SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1 AND has_schema_privilege(oid, 'USAGE'))
                """, [try QualifiedName(parsing: schema).name.name], context: "schema rights").singleRow("schema")
            if try !row.bool(0) {
                if schema == "rollupd" {
                    problems.append(DeploymentProblem(object: "schema rollupd", problem: "does not exist: rollupd has not been installed in this database",
                                                      fix: "rollupd migrate (as the role that owns the product's tables)"))
                }
                continue
            }
            if try !row.bool(1) {
                problems.append(DeploymentProblem(object: "schema \(schema)", problem: "role \(to) lacks USAGE",
                                                  fix: "GRANT USAGE ON SCHEMA \(schema) TO \(to);"))
            }
        }
        let own = try connection.query("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'rollupd' AND c.relkind IN ('r', 'p')
              -- rollupd's own: made by the role that made its ledger (not whatever else is there)
              AND c.relowner = (SELECT relowner FROM pg_class WHERE relnamespace = n.oid AND relname = 'schema_migrations')
            ORDER BY 1
            """, context: "rollupd's tables").rows.map { try $0.string(0) }
        var objects: [String] = []
        var privileges: [String] = []
        for need in tableNeeds {
            for object in need.object.components(separatedBy: ", ") {
                objects.append(object)
                privileges.append(need.privileges.joined(separator: ","))
            }
        }
        objects += own
        privileges += own.map { _ in Self.ownTablePrivileges.joined(separator: ",") }
        // Without USAGE on its schema a table cannot even be named; that schema's line says so.
        let usable = try Self.usableSchemas(on: connection)
        let keep = try objects.map { try QualifiedName(parsing: $0).schema.map { usable.contains($0.name) } ?? true }
        objects = zip(objects, keep).filter(\.1).map(\.0)
        privileges = zip(privileges, keep).filter(\.1).map(\.0)
        for row in try connection.query(Self.missingTableSQL, [objects, privileges], context: "table rights").rows {
            let object = try row.string(0)
            let lacking = try row.string(1)
            problems.append(DeploymentProblem(object: object, problem: "role \(to) lacks \(lacking)",
                                              fix: "GRANT \(lacking) ON \(object) TO \(to);"))
        }
        return problems
    }
}
