import Logging
import Postgres
import RollupdCore
import RollupdStore

/// The schema is behind the migrations directory and rollupd was told not to migrate it.
public struct SchemaNotCurrent: Error, Sendable, CustomStringConvertible {
    public let pending: [MigrationFile]
    public var description: String {
        "the database lacks \(pending.count) migration(s) (first: \(pending[0].version) \(pending[0].name)); run `rollupd migrate` or set migrations.apply_on_start: true"
    }
}

/// Opens sessions the way every command needs them, and brings the schema up to date.
public enum DatabaseBootstrap {
    /// A session whose connections pin every setting rollupd's SQL depends on (SessionSettings).
    public static func session(for config: RollupdConfig, label: String = "rollupd.db") -> DatabaseSession {
        DatabaseSession(settings: config.connectionSettings, label: label,
                        setup: [SessionSettings(config).statement])
    }

    /// Applies pending migrations when `apply_on_start` (or `force`, for `rollupd migrate`) says
    /// so; otherwise checks that none are pending. Then checks what the daemon needs of the
    /// database with the connected role: the product's tables usable, change tracking in place,
    /// every right granted. Anything missing is a DeploymentError (exit 78) listing all of it with
    /// its fix, never a retry loop.
    ///
    /// `verify: false` skips those checks, for the commands that are how an owner fixes them
    /// (`migrate`, `prepare-source`).
    public static func prepareSchema(_ config: RollupdConfig, session: DatabaseSession, logger: Logger, force: Bool = false,
                                     verify: Bool = true) async throws {
        let migrator = Migrator(directory: config.migrations.directory, appSchema: config.database.schema)
        let pending = try await session.run { try migrator.pending(on: $0) }
        if !pending.isEmpty || force {
            guard config.migrations.applyOnStart || force else { throw SchemaNotCurrent(pending: pending) }
            let outcome: Migrator.Outcome
            do {
                outcome = try await session.run { try migrator.migrate(on: $0) { logger.warning("\($0)") } }
            } catch let error as PGError where error.sqlState == "42501" {
                throw DeploymentError(problems: [DeploymentProblem(
                    object: "role \(try await currentRole(session))",
                    problem: "may not apply rollupd's migrations (\(error.message))",
                    fix: "run `rollupd migrate` as the role that owns the product's tables (and may CREATE in this database), then run rollupd as its own role with migrations.apply_on_start: false (`rollupd grants --role NAME` prints its GRANTs)")])
            }
            for remark in outcome.remarks { logger.notice("\(remark)") }
            for step in outcome.prepared { logger.notice("\(step)") }
            for file in outcome.applied {
                logger.notice("applied migration", metadata: ["version": "\(file.version)", "name": "\(file.name)"])
            }
            if outcome.applied.isEmpty {
                logger.debug("schema is current", metadata: ["migrations": "\(outcome.alreadyApplied)"])
            }
        }
        guard verify else { return }
        let problems = try await session.run { connection in
            try SchemaPreflight(appSchema: config.database.schema).inspect(on: connection).problems
                + ChangeTrackingCheck(appSchema: config.database.schema, sources: config.sources).problems(on: connection)
                + AccessCheck(config).missing(on: connection)
        }
        guard problems.isEmpty else { throw DeploymentError(problems: problems) }
    }

    private static func currentRole(_ session: DatabaseSession) async throws -> String {
        try await session.run { try $0.query("SELECT current_user").singleRow("current_user").string(0) }
    }

    /// Errors that no retry can fix: the configuration or the database must change first.
    public static func isFatal(_ error: any Error) -> Bool {
        error is RollupError || error is DeploymentError || error is SchemaNotCurrent || error is MigrationError
    }
}
