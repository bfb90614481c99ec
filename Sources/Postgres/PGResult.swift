/// The rows of a result, copied out of libpq's PGresult in text format so it can cross threads.
public struct PGResult: Sendable {
    public let columns: [String]
    public let rows: [PGRow]
    /// Rows affected by INSERT/UPDATE/DELETE (PQcmdTuples), 0 for other commands.
    public let affectedRows: Int

    public init(columns: [String], rows: [PGRow], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// The single row a query must return, or an error naming the query's purpose.
    public func singleRow(_ purpose: String) throws(PGError) -> PGRow {
        guard rows.count == 1 else {
            throw PGError(kind: .protocolViolation, message: "expected one row, got \(rows.count)", context: purpose)
        }
        return rows[0]
    }
}

/// One row; accessors parse PostgreSQL's text format and throw on a type mismatch instead of guessing.
public struct PGRow: Sendable {
    public let values: [String?]

    public init(values: [String?]) { self.values = values }

    public subscript(_ index: Int) -> String? { values[index] }

    public func isNull(_ index: Int) -> Bool { values[index] == nil }

    public func string(_ index: Int) throws(PGError) -> String {
        guard let value = values[index] else { throw Self.unexpectedNull(index) }
        return value
    }

    public func int64(_ index: Int) throws(PGError) -> Int64 {
        let text = try string(index)
        guard let value = Int64(text) else { throw Self.mismatch(index, text, "bigint") }
        return value
    }

    public func int(_ index: Int) throws(PGError) -> Int { Int(try int64(index)) }

    public func double(_ index: Int) throws(PGError) -> Double {
        let text = try string(index)
        guard let value = Double(text) else { throw Self.mismatch(index, text, "double") }
        return value
    }

    public func bool(_ index: Int) throws(PGError) -> Bool {
        switch try string(index) {
        case "t": return true
        case "f": return false
        case let other: throw Self.mismatch(index, other, "boolean")
        }
    }

    public func optionalInt64(_ index: Int) throws(PGError) -> Int64? { isNull(index) ? nil : try int64(index) }
    public func optionalDouble(_ index: Int) throws(PGError) -> Double? { isNull(index) ? nil : try double(index) }

    private static func unexpectedNull(_ index: Int) -> PGError {
        PGError(kind: .protocolViolation, message: "column \(index) is NULL where a value was expected")
    }

    private static func mismatch(_ index: Int, _ text: String, _ type: String) -> PGError {
        PGError(kind: .protocolViolation, message: "column \(index) is not a \(type): '\(text.prefix(40))'")
    }
}
