import Postgres

/// A numbered migration file: `003_change_capture.sql` is version 3, name `change_capture`.
public struct MigrationFile: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// Whether the file asks to run outside a transaction (first line `-- rollupd:no-transaction`),
    /// for a single statement such as CREATE INDEX CONCURRENTLY.
    public var runsInTransaction: Bool { !sql.hasPrefix("-- rollupd:no-transaction") }

    /// Checksums of earlier texts of this file (lines `-- rollupd:replaces <sha256>`). A file may be
    /// rewritten only so that a new database ends where the old text left existing ones (a later
    /// migration bringing those the rest of the way); a database that applied an old text counts
    /// the file as applied.
    public var replacedChecksums: Set<String> {
        Set(sql.split(separator: "\n").compactMap { line in
            line.hasPrefix("-- rollupd:replaces ") ? String(line.dropFirst("-- rollupd:replaces ".count)).trimmingCharacters(in: .whitespaces) : nil
        })
    }

    /// The text with the product's schema in place of `@app_schema@` (always a quoted identifier).
    public func sql(appSchema: SQLIdentifier) -> String {
        sql.replacingOccurrences(of: "@app_schema@", with: appSchema.quoted)
    }

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Parses `NNN_name.sql`; nil for files that are not migrations (README, editor backups).
    public static func parseFileName(_ fileName: String) -> (version: Int, name: String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_"),
              let version = Int(stem[..<underscore]), version > 0 else { return nil }
        return (version, String(stem[stem.index(after: underscore)...]))
    }
}

/// What the plan decided: files to apply, and applied files recorded under an older text.
public struct MigrationDecision: Sendable, Equatable {
    public var pending: [MigrationFile]
    /// Applied under a checksum the current file replaces: recorded anew, never re-run.
    public var rerecord: [(version: Int, checksum: String)]

    public static func == (lhs: MigrationDecision, rhs: MigrationDecision) -> Bool {
        lhs.pending == rhs.pending && lhs.rerecord.elementsEqual(rhs.rerecord) { $0 == $1 }
    }
}

/// A migration the database says it applied.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let checksum: String

    public init(version: Int, name: String, checksum: String) {
        self.version = version
        self.name = name
        self.checksum = checksum
    }
}

public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    case duplicateVersion(Int)
    case changedAfterApply(version: Int, name: String)
    case missingFile(version: Int, name: String)
    case unreadableDirectory(String)

    public var description: String {
        switch self {
        case .duplicateVersion(let version):
            return "two migration files have version \(version)"
        case .changedAfterApply(let version, let name):
            return "migration \(version) (\(name)) was changed after it was applied; applied migrations are never re-run. Restore the file, and put the change in a new migration"
        case .missingFile(let version, let name):
            return "the database has migration \(version) (\(name)) applied but the migrations directory has no such file: is this rollupd older than the database?"
        case .unreadableDirectory(let path):
            return "cannot read the migrations directory \(path)"
        }
    }
}

/// Decides which files to apply. Pure: the caller supplies each file's checksum, computed the
/// same way as the recorded ones.
public enum MigrationPlan {
    public static func pending(
        files: [(file: MigrationFile, checksum: String)],
        applied: [AppliedMigration]
    ) throws(MigrationError) -> [MigrationFile] {
        try decide(files: files, applied: applied).pending
    }

    public static func decide(
        files: [(file: MigrationFile, checksum: String)],
        applied: [AppliedMigration]
    ) throws(MigrationError) -> MigrationDecision {
        var byVersion: [Int: (file: MigrationFile, checksum: String)] = [:]
        for entry in files {
            guard byVersion[entry.file.version] == nil else { throw .duplicateVersion(entry.file.version) }
            byVersion[entry.file.version] = entry
        }
        var rerecord: [(version: Int, checksum: String)] = []
        for done in applied {
            guard let entry = byVersion[done.version] else {
                throw .missingFile(version: done.version, name: done.name)
            }
            if entry.checksum == done.checksum { continue }
            guard entry.file.replacedChecksums.contains(done.checksum) else {
                throw .changedAfterApply(version: done.version, name: done.name)
            }
            rerecord.append((done.version, entry.checksum))
        }
        let appliedVersions = Set(applied.map(\.version))
        let pending = files.map(\.file).filter { !appliedVersions.contains($0.version) }.sorted { $0.version < $1.version }
        return MigrationDecision(pending: pending, rerecord: rerecord.sorted { $0.version < $1.version })
    }
}
