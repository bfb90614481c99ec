import Foundation
import Postgres
import RollupdCore

/// Applies the numbered .sql files in order: each in its own transaction, under an advisory lock
/// so two instances never race, recorded in rollupd.schema_migrations with a SHA-256 checksum.
public struct Migrator: Sendable {
    /// Separate from the leader lock: every instance, leader or standby, and `rollupd migrate`
    /// takes this one for the moment migrations need.
    public static let lockKey: Int64 = 7_262_600

    public let directory: String

    public init(directory: String) { self.directory = directory }

    public struct Outcome: Sendable {
        public var applied: [MigrationFile]
        public var alreadyApplied: Int
    }

    /// Reads the migration files (sorted by version).
    public func loadFiles() throws(MigrationError) -> [MigrationFile] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw .unreadableDirectory(directory)
        }
        var files: [MigrationFile] = []
        for name in names {
            guard let parsed = MigrationFile.parseFileName(name) else { continue }
            guard let sql = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                throw .unreadableDirectory(directory + "/" + name)
            }
            files.append(MigrationFile(version: parsed.version, name: parsed.name, sql: sql))
        }
        return files.sorted { $0.version < $1.version }
    }

    /// Applies what is pending; a second call is a no-op.
    public func migrate(on connection: PGConnection) throws -> Outcome {
        let files = try loadFiles()
        try connection.query("SELECT pg_advisory_lock($1)", [Self.lockKey], context: "migration lock")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
        try ensureLedger(on: connection)
        let applied = try appliedMigrations(on: connection)
        let pending = try MigrationPlan.pending(files: try checksummed(files, on: connection), applied: applied)
        for file in pending {
            try apply(file, on: connection)
        }
        return Outcome(applied: pending, alreadyApplied: applied.count)
    }

    /// Migrations not yet applied (the schema is current when this is empty); throws if an
    /// applied migration changed.
    public func pending(on connection: PGConnection) throws -> [MigrationFile] {
        let files = try loadFiles()
        try ensureLedger(on: connection)
        return try MigrationPlan.pending(files: try checksummed(files, on: connection), applied: try appliedMigrations(on: connection))
    }

    private func ensureLedger(on connection: PGConnection) throws {
        try connection.execute(script: """
            CREATE SCHEMA IF NOT EXISTS rollupd;
            CREATE TABLE IF NOT EXISTS rollupd.schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms double precision
            );
            """, context: "create rollupd.schema_migrations")
    }

    private func appliedMigrations(on connection: PGConnection) throws -> [AppliedMigration] {
        try connection.query("SELECT version, name, checksum FROM rollupd.schema_migrations ORDER BY version", context: "read applied migrations")
            .rows.map { AppliedMigration(version: try $0.int(0), name: try $0.string(1), checksum: try $0.string(2)) }
    }

    /// Checksums come from PostgreSQL's sha256(), the same function that recorded them.
    private func checksummed(_ files: [MigrationFile], on connection: PGConnection) throws -> [(file: MigrationFile, checksum: String)] {
        guard !files.isEmpty else { return [] }
        let result = try connection.query(
            "SELECT encode(sha256(convert_to(sql, 'UTF8')), 'hex') FROM unnest($1::text[]) WITH ORDINALITY AS f(sql, n) ORDER BY n",
            [files.map(\.sql)], context: "checksum migrations")
        return try zip(files, result.rows).map { ($0, try $1.string(0)) }
    }

    private func apply(_ file: MigrationFile, on connection: PGConnection) throws {
        let started = ContinuousClock.now
        let label = "migration \(file.version) (\(file.name))"
        let record = {
            _ = try connection.query(
                "INSERT INTO rollupd.schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4)",
                [file.version, file.name, file.sql, (ContinuousClock.now - started).seconds * 1000], context: label)
        }
        if file.runsInTransaction {
            try connection.transaction { connection in
                try connection.execute(script: file.sql, context: label)
                try record()
            }
        } else {
            try connection.execute(script: file.sql, context: label)
            try record()
        }
    }
}
