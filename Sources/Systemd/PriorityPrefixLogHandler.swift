import Foundation
import Logging

/// Writes one line per log entry to stderr, starting with a syslog priority prefix (`<6>`), which
/// journald turns into the entry's priority (SyslogLevelPrefix=, on by default). Metadata follows
/// the message as `key=value` pairs, sorted so lines are stable to grep.
public struct PriorityPrefixLogHandler: StatefulLogHandler {
    var state: HandlerState
    private let write: @Sendable (String) -> Void

    public init(level: Logger.Level, shared: SharedLogLevel? = nil, write: @escaping @Sendable (String) -> Void = Self.writeToStderr) {
        self.state = HandlerState(level: level, shared: shared)
        self.write = write
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(event)
        write(Self.format(level: event.level, message: "\(event.message)", metadata: merged))
    }

    /// `<3>pass failed source=events sqlstate=40001`: the syslog priority, the message, the fields.
    public static func format(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "<\(priority(level))>\(message)"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(quoteIfNeeded("\(metadata[key]!)"))"
        }
        return line.replacingOccurrences(of: "\n", with: " ")
    }

    /// syslog(3) priorities, as journald and `journalctl -p` use them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    private static func quoteIfNeeded(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    public static let writeToStderr: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
