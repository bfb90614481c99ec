/// A numbered migration file: `003_change_capture.sql` is version 3, name `change_capture`.
public struct MigrationFile: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// Whether the file asks to run outside a transaction (first line `-- rollupd:no-transaction`),
    /// for a single statement such as CREATE INDEX CONCURRENTLY.
    public var runsInTransaction: Bool { !sql.hasPrefix("-- rollupd:no-transaction") }

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
        var byVersion: [Int: (file: MigrationFile, checksum: String)] = [:]
        for entry in files {
            guard byVersion[entry.file.version] == nil else { throw .duplicateVersion(entry.file.version) }
            byVersion[entry.file.version] = entry
        }
        for done in applied {
            guard let entry = byVersion[done.version] else {
                throw .missingFile(version: done.version, name: done.name)
            }
            guard entry.checksum == done.checksum else {
                throw .changedAfterApply(version: done.version, name: done.name)
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        return files.map(\.file).filter { !appliedVersions.contains($0.version) }.sorted { $0.version < $1.version }
    }
}
