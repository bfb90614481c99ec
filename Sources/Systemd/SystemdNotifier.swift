import CSystemd

/// Tells systemd how the service is doing (sd_notify(3)). Without NOTIFY_SOCKET, as when run by
/// hand, every call is a cheap no-op.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends `KEY=value` lines in one datagram. Returns false when no one is listening.
    @discardableResult
    public func notify(_ fields: [(String, String)]) -> Bool {
        let message = fields.map { "\($0.0)=\($0.1.replacingOccurrences(of: "\n", with: " "))" }.joined(separator: "\n")
        return sd_notify(0, message) > 0
    }

    public func ready(status: String) { notify([("READY", "1"), ("STATUS", status)]) }
    public func status(_ text: String) { notify([("STATUS", text)]) }
    public func watchdog() { notify([("WATCHDOG", "1")]) }
    public func stopping(status: String) { notify([("STOPPING", "1"), ("STATUS", status)]) }

    /// The watchdog interval systemd expects pings within (WatchdogSec=), if it set one for us.
    public var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }
}
