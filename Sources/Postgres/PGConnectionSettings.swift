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
            throw PGError(kind: .connection, message: Self.hidingQuotedValues(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        defer { PQconninfoFree(options) }
        // libpq parses these only when it connects; checking them here turns a retry loop into a
        // configuration error.
        var cursor = options
        while let keywordPointer = cursor.pointee.keyword {
            if let valuePointer = cursor.pointee.val {
                try Self.checkOption(String(cString: keywordPointer), String(cString: valuePointer))
            }
            cursor = cursor.advanced(by: 1)
        }
    }

    private static func checkOption(_ keyword: String, _ value: String) throws(PGError) {
        let isInteger = { (text: Substring) in !text.isEmpty && text.allSatisfy(\.isNumber) }
        switch keyword {
        case "port":
            // A comma-separated list when several hosts are given; empty entries mean the default.
            guard value.split(separator: ",", omittingEmptySubsequences: false).allSatisfy({ $0.isEmpty || isInteger($0) }) else {
                throw PGError(kind: .connection, message: "port must be a number (or a comma-separated list of numbers)")
            }
        case "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count":
            guard isInteger(Substring(value)) else { throw PGError(kind: .connection, message: "\(keyword) must be a whole number") }
        case "sslmode":
            let modes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
            guard modes.contains(value) else {
                throw PGError(kind: .connection, message: "sslmode must be one of \(modes.joined(separator: ", "))")
            }
        case "target_session_attrs":
            let attributes = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]
            guard attributes.contains(value) else {
                throw PGError(kind: .connection, message: "target_session_attrs must be one of \(attributes.joined(separator: ", "))")
            }
        default:
            break
        }
    }

    /// libpq's parse errors quote the offending fragment, which can be the password; quoted
    /// single characters (`missing "=" after ...`) are libpq's own words and stay.
    static func hidingQuotedValues(_ message: String) -> String {
        message.replacing(/"[^"]{2,}"/, with: "\"…\"")
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
