import CSystemd
import Foundation
import Logging
import Synchronization

/// Writes native journal entries (sd_journal_sendv): the message, its priority, and each metadata
/// key as a field of its own, so `journalctl -u rollupd ROLLUPD_SOURCE=events` and
/// `journalctl -u rollupd -o verbose` work. Keys become `ROLLUPD_<KEY>` in upper case;
/// `sqlstate` stays `SQLSTATE`, the name ops search for.
public struct JournalLogHandler: StatefulLogHandler {
    var state: HandlerState
    private let identifier: String

    public init(identifier: String = "rollupd", level: Logger.Level, shared: SharedLogLevel? = nil) {
        self.identifier = identifier
        self.state = HandlerState(level: level, shared: shared)
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(event)
        let fields = Self.fields(
            message: "\(event.message)", priority: PriorityPrefixLogHandler.priority(event.level),
            identifier: identifier, metadata: merged)
        Self.send(fields)
    }

    /// The journal fields of one entry, in order. Pure, so tests can check the mapping.
    public static func fields(message: String, priority: Int, identifier: String, metadata: Logger.Metadata) -> [String] {
        var fields = ["MESSAGE=\(message)", "PRIORITY=\(priority)", "SYSLOG_IDENTIFIER=\(identifier)"]
        for key in metadata.keys.sorted() {
            fields.append("\(fieldName(key))=\(metadata[key]!)")
        }
        return fields
    }

    /// Journal field names are upper-case letters, digits and underscores, not starting with one.
    public static func fieldName(_ key: String) -> String {
        if key.lowercased() == "sqlstate" { return "SQLSTATE" }
        let cleaned = key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        return "ROLLUPD_" + String(cleaned)
    }

    private static func send(_ fields: [String]) {
        // sd_journal_send is variadic and cannot be called from Swift; sd_journal_sendv takes iovecs.
        var buffers = fields.map { Array($0.utf8) }
        var vectors: [iovec] = []
        vectors.reserveCapacity(buffers.count)
        for index in buffers.indices {
            buffers[index].withUnsafeMutableBytes { bytes in
                vectors.append(iovec(iov_base: bytes.baseAddress, iov_len: bytes.count))
            }
        }
        // The pointers stay valid: `buffers` is not mutated again until after the call.
        withExtendedLifetime(buffers) {
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }

    /// True when stderr is connected to the journal (systemd sets JOURNAL_STREAM to its
    /// device:inode); then native entries are better than lines on stderr.
    public static var stderrIsJournal: Bool {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}

/// A log level every handler reads, so a SIGHUP reload can change it after LoggingSystem's
/// one-time bootstrap.
public final class SharedLogLevel: Sendable {
    private let storage: Mutex<Logger.Level>

    public init(_ level: Logger.Level) { storage = Mutex(level) }

    public var level: Logger.Level {
        get { storage.withLock { $0 } }
    }

    public func set(_ level: Logger.Level) { storage.withLock { $0 = level } }
}
