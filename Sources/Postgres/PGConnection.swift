import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe and not Sendable: `DatabaseSession` owns one and runs
/// everything that touches it on its own serial queue, off Swift's cooperative thread pool.
public final class PGConnection {
    private let handle: OpaquePointer

    /// Connects (blocking). Throws `.connection` with libpq's message; the message never contains
    /// the password.
    public init(settings: PGConnectionSettings) throws(PGError) {
        let pairs = settings.connectParameters()
        let keywords = pairs.map { strdup($0.0) } + [nil]
        let values = pairs.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
        guard let connection else {
            throw PGError(kind: .connection, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw PGError(kind: .connection, message: message)
        }
        handle = connection
        // NOTICEs (e.g. "relation already exists, skipping") would go to stderr unformatted;
        // rollupd's own log lines say what matters.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit { PQfinish(handle) }

    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The server process serving this connection (for pg_locks / pg_stat_activity look-ups).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Runs one statement with parameters ($1, $2, ...) in text format.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PGParameter] = [], context: String? = nil) throws(PGError) -> PGResult {
        let texts = parameters.map { $0.pgText.map { strdup($0) } ?? nil }
        defer { texts.forEach { free($0) } }
        let result = texts.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            PQexecParams(handle, sql, Int32(texts.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        return try consume(result, context: context)
    }

    /// Runs a script of one or more statements without parameters (a migration file).
    public func execute(script: String, context: String? = nil) throws(PGError) {
        _ = try consume(PQexec(handle, script), context: context)
    }

    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
    }

    /// Runs `body` inside BEGIN/COMMIT; any error rolls back and is rethrown.
    public func transaction<T>(_ isolation: Isolation = .readCommitted, _ body: (PGConnection) throws -> T) throws -> T {
        try query("BEGIN ISOLATION LEVEL \(isolation.rawValue)", context: "begin")
        do {
            let value = try body(self)
            try query("COMMIT", context: "commit")
            return value
        } catch {
            // The connection may be gone; the server rolls back on its own then.
            if isHealthy { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    private func consume(_ result: OpaquePointer?, context: String?) throws(PGError) -> PGResult {
        guard let result else {
            throw PGError(kind: isHealthy ? .query : .connection, message: Self.trimmed(PQerrorMessage(handle)), context: context)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PGResult(columns: [], rows: [], affectedRows: Self.affectedRows(result))
        case PGRES_TUPLES_OK:
            return Self.copyRows(result)
        default:
            throw error(from: result, context: context)
        }
    }

    private func error(from result: OpaquePointer, context: String?) -> PGError {
        func field(_ code: Character) -> String? {
            guard let pointer = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: pointer)
        }
        let sqlState = field("C")
        let message = field("M") ?? Self.trimmed(PQresultErrorMessage(result))
        // No SQLSTATE means libpq itself failed: almost always the connection.
        let kind: PGError.Kind = (sqlState == nil && !isHealthy) ? .connection : .query
        return PGError(kind: kind, sqlState: sqlState, message: message, detail: field("D"), hint: field("H"), context: context)
    }

    private static func copyRows(_ result: OpaquePointer) -> PGResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [PGRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            let values = (0..<columnCount).map { column -> String? in
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 { return nil }
                return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
            rows.append(PGRow(values: values))
        }
        return PGResult(columns: columns, rows: rows, affectedRows: affectedRows(result))
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    /// libpq's message on one line: its hints come after newlines and tabs, which would split a
    /// log line in two.
    private static func trimmed(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "unknown libpq error" }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacing(/\s*[\n\t]+\s*/, with: " ")
    }
}

extension PGConnection {
    /// Runs `body` with session settings changed, then puts back the values they had (RESET would
    /// restore the database's or role's default instead of what the session had pinned).
    public func withSettings<T>(_ settings: [String: String], _ body: () throws -> T) throws -> T {
        let names = settings.keys.sorted()
        let saved = try query("SELECT current_setting(name) FROM unnest($1::text[]) WITH ORDINALITY AS s(name, n) ORDER BY n",
                              [names], context: "save settings").rows.map { try $0.string(0) }
        try query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)",
                  [names, names.map { settings[$0]! }], context: "change settings")
        defer {
            _ = try? query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)", [names, saved])
        }
        return try body()
    }
}
