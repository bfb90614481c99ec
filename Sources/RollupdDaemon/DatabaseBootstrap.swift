import Logging
import Postgres
import RollupdCore
import RollupdStore

/// The schema is behind the migrations directory and rollupd was told not to migrate it.
public struct SchemaNotCurrent: Error, CustomStringConvertible {
    public let pending: [MigrationFile]
    public var description: String {
        "the database lacks \(pending.count) migration(s) (first: \(pending[0].version) \(pending[0].name)); run `rollupd migrate` or set migrations.apply_on_start: true"
    }
}

/// Opens sessions the way every command needs them, and brings the schema up to date.
public enum DatabaseBootstrap {
    /// A session whose connections run in UTC with rollupd's statement timeout.
    public static func session(for config: RollupdConfig, label: String = "rollupd.db") -> DatabaseSession {
        DatabaseSession(settings: config.connectionSettings, label: label, setup: [
            "SET TimeZone = 'UTC'",
            "SET statement_timeout = \(Int64(config.database.statementTimeout.seconds * 1000))",
        ])
    }

    /// Applies pending migrations when `apply_on_start` (or `force`) says so; otherwise checks that
    /// none are pending. Afterwards the schema is current.
    public static func prepareSchema(_ config: RollupdConfig, session: DatabaseSession, logger: Logger, force: Bool = false) async throws {
        let migrator = Migrator(directory: config.migrations.directory)
        if config.migrations.applyOnStart || force {
            let outcome = try await session.run { try migrator.migrate(on: $0) }
            for file in outcome.applied {
                logger.notice("applied migration", metadata: ["version": "\(file.version)", "name": "\(file.name)"])
            }
            if outcome.applied.isEmpty {
                logger.debug("schema is current", metadata: ["migrations": "\(outcome.alreadyApplied)"])
            }
        } else {
            let pending = try await session.run { try migrator.pending(on: $0) }
            guard pending.isEmpty else { throw SchemaNotCurrent(pending: pending) }
        }
    }
}
