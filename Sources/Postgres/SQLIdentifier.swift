/// A PostgreSQL identifier taken from configuration: validated, then always written quoted.
///
/// Only identifiers go into SQL text; values go as parameters. Validation is deliberately strict
/// (no NUL, at most 63 bytes, PostgreSQL's NAMEDATALEN - 1) and quoting doubles embedded quotes, so
/// `"sessionId"` and `my table` both work and nothing can close the quote early.
public struct SQLIdentifier: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public enum Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooLong(String)
        case forbiddenCharacter(String)

        public var description: String {
            switch self {
            case .empty: return "an identifier may not be empty"
            case .tooLong(let name): return "identifier '\(name.prefix(70))' is longer than 63 bytes"
            case .forbiddenCharacter(let name): return "identifier '\(name)' contains a control character"
            }
        }
    }

    public init(_ name: String) throws(Invalid) {
        guard !name.isEmpty else { throw .empty }
        guard name.utf8.count <= 63 else { throw .tooLong(name) }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .forbiddenCharacter(name)
        }
        self.name = name
    }

    /// `public`, the schema PostgreSQL creates in every database.
    public static let `public` = SQLIdentifier(unchecked: "public")
    /// `rollupd`, rollupd's own schema.
    public static let rollupd = SQLIdentifier(unchecked: "rollupd")

    private init(unchecked name: String) { self.name = name }

    /// The identifier as SQL text: always double-quoted, embedded quotes doubled.
    public var quoted: String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    public var description: String { quoted }
}

/// `schema.table`, or just `table` (resolved by search_path), each part an `SQLIdentifier`.
public struct QualifiedName: Sendable, Hashable, CustomStringConvertible {
    public let schema: SQLIdentifier?
    public let name: SQLIdentifier

    public init(schema: SQLIdentifier? = nil, name: SQLIdentifier) {
        self.schema = schema
        self.name = name
    }

    /// Parses `table` or `schema.table`; a part containing a dot must be written in double quotes.
    public init(parsing text: String) throws(SQLIdentifier.Invalid) {
        let parts = Self.split(text)
        switch parts.count {
        case 1: self.init(name: try SQLIdentifier(parts[0]))
        case 2: self.init(schema: try SQLIdentifier(parts[0]), name: try SQLIdentifier(parts[1]))
        default: throw .forbiddenCharacter(text)
        }
    }

    public var quoted: String { schema.map { "\($0.quoted).\(name.quoted)" } ?? name.quoted }
    public var description: String { quoted }

    /// Splits on dots outside double quotes; `""` inside quotes is one quote.
    private static func split(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var inQuotes = false
        var iterator = Array(text).makeIterator()
        while let char = iterator.next() {
            if char == "\"" {
                if inQuotes {
                    // A doubled quote inside quotes is a literal quote; a single one closes.
                    var lookahead = iterator
                    if lookahead.next() == "\"" {
                        current.append("\"")
                        iterator = lookahead
                    } else {
                        inQuotes = false
                    }
                } else {
                    inQuotes = true
                }
            } else if char == "." && !inQuotes {
                parts.append(current)
                current = ""
            } else {
                current.append(char)
            }
        }
        parts.append(current)
        return parts
    }
}
