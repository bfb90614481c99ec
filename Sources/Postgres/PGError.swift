/// An error from PostgreSQL or from libpq, mapped once at the libpq boundary.
///
/// `sqlState` is the server's five-character code when the server sent one; `context` names what
/// rollupd was doing (a step name, never a value or a password) so a log line says where it failed.
public struct PGError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made or was lost.
        case connection
        /// The server rejected a statement.
        case query
        /// libpq returned something rollupd did not expect (a bad result shape, an unexpected status).
        case protocolViolation
    }

    public var kind: Kind
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    public var context: String?

    public init(
        kind: Kind, sqlState: String? = nil, message: String,
        detail: String? = nil, hint: String? = nil, context: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.context = context
    }

    /// The same error, saying what rollupd was doing when it happened.
    public func during(_ context: String) -> PGError {
        var copy = self
        copy.context = copy.context.map { "\(context): \($0)" } ?? context
        return copy
    }

    public var description: String {
        var text = ""
        if let context { text += "\(context): " }
        text += message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; detail: \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }

    /// The SQLSTATE class (its first two characters), e.g. "08" for connection exceptions.
    public var sqlStateClass: String? { sqlState.map { String($0.prefix(2)) } }

    /// Worth running the same transaction again: a serialization failure or a deadlock.
    public var isSerializationConflict: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// The connection is gone or unusable: reconnect before trying again.
    public var isConnectionLoss: Bool {
        if kind == .connection { return true }
        // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
        return sqlStateClass == "08" || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }
}
