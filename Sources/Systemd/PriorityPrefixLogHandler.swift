import Foundation
import Logging

/// Writes one line per log entry to stderr, starting with a syslog priority prefix (`<6>`), which
/// journald turns into the entry's priority (SyslogLevelPrefix=, on by default). Metadata follows
/// the message as `key=value` pairs, sorted so lines are stable to grep.
public struct PriorityPrefixLogHandler: LogHandler {
    public var logLevel: Logger.Level {
        get { levelOverride?.level ?? configuredLevel }
        set { configuredLevel = newValue }
    }
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private var configuredLevel: Logger.Level
    private let levelOverride: SharedLogLevel?
    private let write: @Sendable (String) -> Void

    public init(level: Logger.Level, shared: SharedLogLevel? = nil, write: @escaping @Sendable (String) -> Void = Self.writeToStderr) {
        self.configuredLevel = level
        self.levelOverride = shared
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
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

extension LogHandler {
    /// The handler's metadata, then the provider's, then the call's, later ones winning.
    func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        return merged
    }
}
