import Foundation
import Postgres
import RollupdCore

/// Applies the numbered .sql files in order: each in its own transaction, under an advisory lock
/// so two instances never race, recorded in rollupd.schema_migrations with a SHA-256 checksum.
///
/// Before the files, it checks the product's database (SchemaPreflight: the source tables exist,
/// existing rollup tables are usable) and prepares the built-in source tables online
/// (OnlinePreparation). Every transaction waits at most `lockTimeout` for a lock on a product
/// table and is retried, so a queued ALTER or CREATE TRIGGER never holds up the product's writes
/// for longer than that.
public struct Migrator: Sendable {
    /// Separate from the leader lock: every instance, leader or standby, and `rollupd migrate`
    /// takes this one for the moment migrations need.
    public static let lockKey: Int64 = 7_262_600

    public let directory: String
    /// `database.schema`: what `@app_schema@` in a migration file stands for.
    public let appSchema: SQLIdentifier
    public var locks: LockRetry

    public init(directory: String, appSchema: SQLIdentifier = .public, locks: LockRetry = LockRetry()) {
        self.directory = directory
        self.appSchema = appSchema
        self.locks = locks
    }

    public struct Outcome: Sendable {
        public var applied: [MigrationFile]
        public var alreadyApplied: Int
        /// What was done to the product's tables before the files (added column, built index, ...).
        public var prepared: [String]
        /// Checks that passed with a remark (an app's cost_aggregates with integer counters, ...).
        public var remarks: [String]
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

    /// Applies what is pending; a second call is a no-op. `onWait` hears each wait for a lock.
    public func migrate(on connection: PGConnection, onWait: (String) -> Void = { _ in }) throws -> Outcome {
        let files = try loadFiles()
        try takeLock(on: connection)
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
        let remarks = try SchemaPreflight(appSchema: appSchema).requireUsable(on: connection)
        try ensureLedger(on: connection)
        let applied = try appliedMigrations(on: connection)
        let decision = try MigrationPlan.decide(files: try checksummed(files, on: connection), applied: applied)
        for (version, checksum) in decision.rerecord {
            try connection.query("UPDATE rollupd.schema_migrations SET checksum = $2 WHERE version = $1", [version, checksum],
                                 context: "record migration \(version)'s new text")
        }
        var prepared: [String] = []
        for table in BuiltInTables.sources {
            let preparation = OnlinePreparation(table: QualifiedName(schema: appSchema, name: table.name),
                                                indexName: table.xidIndex, locks: locks)
            prepared += try preparation.run(on: connection, onWait: onWait)
        }
        for file in decision.pending {
            try apply(file, on: connection, onWait: onWait)
        }
        prepared += try restoreTriggers(on: connection, onWait: onWait)
        return Outcome(applied: decision.pending, alreadyApplied: applied.count, prepared: prepared, remarks: remarks)
    }

    /// The capture triggers of the built-in tables, put back when the app re-created a table
    /// (R_capture_triggers.sql); nothing happens when they are there.
    private func restoreTriggers(on connection: PGConnection, onWait: (String) -> Void) throws -> [String] {
        let missing = try ChangeTrackingCheck(appSchema: appSchema, sources: []).problems(on: connection)
            .filter { $0.problem.contains("trigger") }
        guard !missing.isEmpty else { return [] }
        let path = directory + "/R_capture_triggers.sql"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw MigrationError.unreadableDirectory(path) }
        let sql = MigrationFile(version: 0, name: "capture_triggers", sql: text).sql(appSchema: appSchema)
        try locks.retrying("restore the capture triggers", on: connection, onWait: onWait) {
            try connection.transaction { connection in
                try connection.query("SELECT set_config('lock_timeout', $1, true)", [locks.timeoutSetting], context: "restore the capture triggers")
                try connection.execute(script: sql, context: "restore the capture triggers")
            }
        }
        return missing.map { "restored the capture triggers of \($0.object) (\($0.problem))" }
    }

    /// Waits for the migration lock by polling, never inside pg_advisory_lock: a concurrent index
    /// build by the instance holding the lock waits for every open transaction to end, and a
    /// statement blocked in pg_advisory_lock is one (a deadlock PostgreSQL would break by failing
    /// one of them).
    private func takeLock(on connection: PGConnection) throws {
        while try !connection.query("SELECT pg_try_advisory_lock($1)", [Self.lockKey], context: "migration lock").singleRow("lock").bool(0) {
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Migrations not yet applied (the schema is current when this is empty); throws if an
    /// applied migration changed. Read-only: creates nothing, so a runtime role without any
    /// CREATE right can ask.
    public func pending(on connection: PGConnection) throws -> [MigrationFile] {
        let files = try loadFiles()
        let ledger = try connection.query("SELECT to_regclass('rollupd.schema_migrations') IS NOT NULL", context: "find rollupd.schema_migrations")
            .singleRow("ledger").bool(0)
        let applied = ledger ? try appliedMigrations(on: connection) : []
        return try MigrationPlan.decide(files: try checksummed(files, on: connection), applied: applied).pending
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
            -- What the migrations created in the product's schema (tables, columns, indexes), so
            -- that `rollupd uninstall --print` removes exactly that and keeps what the app had.
            CREATE TABLE IF NOT EXISTS rollupd.installed_objects (
                kind text NOT NULL CHECK (kind IN ('table', 'column', 'index')),
                name text NOT NULL,
                installed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (kind, name)
            );
            """, context: "create rollupd.schema_migrations")
    }

    private func appliedMigrations(on connection: PGConnection) throws -> [AppliedMigration] {
        try connection.query("SELECT version, name, checksum FROM rollupd.schema_migrations ORDER BY version", context: "read applied migrations")
            .rows.map { AppliedMigration(version: try $0.int(0), name: try $0.string(1), checksum: try $0.string(2)) }
    }

    /// Checksums come from PostgreSQL's sha256(), the same function that recorded them, over the
    /// file as written (before `@app_schema@` is filled in).
    private func checksummed(_ files: [MigrationFile], on connection: PGConnection) throws -> [(file: MigrationFile, checksum: String)] {
        guard !files.isEmpty else { return [] }
        let result = try connection.query(
            "SELECT encode(sha256(convert_to(sql, 'UTF8')), 'hex') FROM unnest($1::text[]) WITH ORDINALITY AS f(sql, n) ORDER BY n",
            [files.map(\.sql)], context: "checksum migrations")
        return try zip(files, result.rows).map { ($0, try $1.string(0)) }
    }

    private func apply(_ file: MigrationFile, on connection: PGConnection, onWait: (String) -> Void) throws {
        let label = "migration \(file.version) (\(file.name))"
        let sql = file.sql(appSchema: appSchema)
        try locks.retrying(label, on: connection, onWait: onWait) {
            let started = ContinuousClock.now
            let record = {
                _ = try connection.query(
                    "INSERT INTO rollupd.schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4)",
                    [file.version, file.name, file.sql, (ContinuousClock.now - started).seconds * 1000], context: label)
            }
            if file.runsInTransaction {
                try connection.transaction { connection in
                    try connection.query("SELECT set_config('lock_timeout', $1, true)", [locks.timeoutSetting], context: label)
                    try connection.execute(script: sql, context: label)
                    try record()
                }
            } else {
                try connection.execute(script: sql, context: label)
                try record()
            }
        }
    }
}

/// The product's tables rollupd reads by contract, in `database.schema`.
public enum BuiltInTables {
    public struct Source: Sendable {
        public let name: SQLIdentifier
        public let xidIndex: SQLIdentifier
    }

    public static let events = Source(name: try! SQLIdentifier("events"), xidIndex: try! SQLIdentifier("events_rollupd_xid_idx"))
    public static let analyticsEvents = Source(name: try! SQLIdentifier("analytics_events"),
                                               xidIndex: try! SQLIdentifier("analytics_events_rollupd_xid_idx"))
    public static let sources = [events, analyticsEvents]
}
