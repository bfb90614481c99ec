import CLibPQ
import Foundation

/// How to reach the database: a libpq connection string or URI, or nothing, in which case libpq's
/// own environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSFILE, PGSERVICE, PGSSLMODE, ...)
/// applies exactly as libpq applies it.
public struct PGConnectionSettings: Sendable, CustomStringConvertible {
    /// The conninfo as configured; may hold a password, so it is never printed (see `redacted`).
    public var conninfo: String
    public var applicationName: String
    /// Used only when neither the conninfo nor PGCONNECT_TIMEOUT says otherwise.
    public var defaultConnectTimeoutSeconds: Int

    public init(conninfo: String, applicationName: String = "rollupd", defaultConnectTimeoutSeconds: Int = 10) {
        self.conninfo = conninfo
        self.applicationName = applicationName
        self.defaultConnectTimeoutSeconds = defaultConnectTimeoutSeconds
    }

    /// Checks the conninfo the way libpq will read it; the error is libpq's own words.
    public func validate() throws(PGError) {
        guard !conninfo.isEmpty else { return }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            let text = errorMessage.map { String(cString: $0) } ?? "could not parse the connection string"
            if let errorMessage { PQfreemem(errorMessage) }
            throw PGError(kind: .connection, message: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        PQconninfoFree(options)
    }

    /// The conninfo with any password replaced by `********`, for logs and `check-config`.
    public var redacted: String {
        guard !conninfo.isEmpty else { return "(libpq environment: PGHOST, PGDATABASE, ...)" }
        guard let options = PQconninfoParse(conninfo, nil) else { return "(unparseable connection string)" }
        defer { PQconninfoFree(options) }
        var parts: [String] = []
        var cursor = options
        while let keywordPointer = cursor.pointee.keyword {
            if let valuePointer = cursor.pointee.val {
                let keyword = String(cString: keywordPointer)
                let value = keyword == "password" ? "********" : String(cString: valuePointer)
                parts.append("\(keyword)=\(value)")
            }
            cursor = cursor.advanced(by: 1)
        }
        return parts.joined(separator: " ")
    }

    public var description: String { redacted }

    /// keyword/value pairs for PQconnectdbParams. Defaults come first: with expand_dbname, later
    /// entries override earlier ones, so the user's conninfo always wins over rollupd's defaults.
    func connectParameters() -> [(String, String)] {
        let environment = ProcessInfo.processInfo.environment
        var pairs: [(String, String)] = []
        if environment["PGCONNECT_TIMEOUT"] == nil {
            pairs.append(("connect_timeout", String(defaultConnectTimeoutSeconds)))
        }
        if environment["PGAPPNAME"] == nil {
            pairs.append(("application_name", applicationName))
        }
        if !conninfo.isEmpty {
            pairs.append(("dbname", conninfo))
        }
        return pairs
    }
}
