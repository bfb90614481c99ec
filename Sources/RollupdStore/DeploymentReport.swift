import Postgres
import RollupdCore

/// Everything `rollupd check-db` looks at, with the configured role: migrations, the product's
/// tables, change tracking on every source, the role's rights, and useful settings.
public struct DeploymentReport: Sendable, Codable {
    public var database: String
    public var role: String
    public var schema: String
    public var problems: [DeploymentProblem]
    /// Usable, but worth knowing (integer counters, no pg_read_all_stats, ...).
    public var notes: [String]
    public var canRun: Bool { problems.isEmpty }

    public static func read(_ config: RollupdConfig, on connection: PGConnection) throws -> DeploymentReport {
        let who = try connection.query("SELECT current_database(), current_user, pg_has_role('pg_read_all_stats', 'MEMBER')")
            .singleRow("who")
        var report = DeploymentReport(database: try who.string(0), role: try who.string(1), schema: config.database.schema.name,
                                      problems: [], notes: [])
        let migrator = Migrator(directory: config.migrations.directory, appSchema: config.database.schema)
        let rollupdUsable = try AccessCheck.usableSchemas(on: connection).contains("rollupd")
        let rollupdExists = try connection.query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'rollupd')").singleRow("rollupd").bool(0)
        if rollupdExists && !rollupdUsable {
            // AccessCheck names the missing USAGE; the migrations cannot be read without it.
        } else { do {
            let pending = try migrator.pending(on: connection)
            if !pending.isEmpty {
                report.problems.append(DeploymentProblem(
                    object: "schema rollupd", problem: "\(pending.count) migration(s) not applied (first: \(pending[0].version) \(pending[0].name))",
                    fix: "rollupd migrate (as the role that owns the product's tables)"))
            }
        } catch let error as MigrationError {
            report.problems.append(DeploymentProblem(object: "migrations", problem: "\(error)"))
        } catch let error as PGError where error.sqlState == "42501" {
            report.problems.append(DeploymentProblem(object: "rollupd.schema_migrations", problem: "cannot be read: \(error.message)"))
        } }
        let preflight = try SchemaPreflight(appSchema: config.database.schema).inspect(on: connection)
        report.problems += preflight.problems
        report.notes += preflight.remarks
        report.problems += try ChangeTrackingCheck(appSchema: config.database.schema, sources: config.sources).problems(on: connection)
        report.problems += try AccessCheck(config).missing(on: connection)
        if try !who.bool(2) {
            report.notes.append("role \(report.role) is not a member of pg_read_all_stats: rollup lag cannot count other roles' open transactions (GRANT pg_read_all_stats TO \(try SQLIdentifier(report.role).quoted);)")
        }
        return report
    }

    public var text: String {
        var lines = ["database \(database) as role \(role), product schema \(schema)"]
        lines += problems.map { "PROBLEM \($0)" }
        lines += notes.map { "note: \($0)" }
        lines.append(canRun ? "ok: rollupd can run" : "rollupd cannot run: \(problems.count) problem(s)")
        return lines.joined(separator: "\n")
    }
}
