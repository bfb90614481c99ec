import Foundation

/// A value sent as a query parameter, in PostgreSQL's text format. Values always travel as
/// parameters ($1, $2, ...), never spliced into SQL.
public protocol PGParameter: Sendable {
    /// The text form PostgreSQL parses, or nil for SQL NULL.
    var pgText: String? { get }
}

extension String: PGParameter { public var pgText: String? { self } }
extension Int: PGParameter { public var pgText: String? { String(self) } }
extension Int32: PGParameter { public var pgText: String? { String(self) } }
extension Int64: PGParameter { public var pgText: String? { String(self) } }
extension Bool: PGParameter { public var pgText: String? { self ? "t" : "f" } }
extension Double: PGParameter { public var pgText: String? { String(self) } }

extension Optional: PGParameter where Wrapped: PGParameter {
    public var pgText: String? { self?.pgText }
}

extension Date: PGParameter {
    /// Seconds since the epoch; use `to_timestamp($n::float8)` or `$n::float8` where a timestamp is
    /// wanted. Exact to the microsecond for any date rollupd handles.
    public var pgText: String? { String(format: "%.6f", timeIntervalSince1970) }
}

extension Array: PGParameter where Element == String {
    /// A text[] literal with every element quoted, so commas, braces and quotes inside are safe.
    public var pgText: String? {
        let quoted = map { element -> String in
            let escaped = element.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }
}
