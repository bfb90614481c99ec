import Foundation
import Logging
import RollupdCore
import ServiceLifecycle
import Systemd
import UnixSignals

/// SIGHUP re-reads the configuration file. A valid file whose changes are all reloadable
/// (intervals, retention, log level) replaces the live configuration; anything else is refused
/// with an error naming the key, and the old configuration stays. systemd 252 is told with
/// RELOADING=1 (with MONOTONIC_USEC) and READY=1, so `systemctl reload` waits for the outcome.
public struct ReloadService: Service, CustomStringConvertible {
    let live: LiveConfig
    let logger: Logger
    let notifier: SystemdNotifier
    let load: @Sendable () async throws -> RollupdConfig

    public var description: String { "ReloadService" }

    public init(live: LiveConfig, logger: Logger, notifier: SystemdNotifier = SystemdNotifier(),
                load: @escaping @Sendable () async throws -> RollupdConfig) {
        self.live = live
        self.logger = logger
        self.notifier = notifier
        self.load = load
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.notify([("RELOADING", "1"), ("MONOTONIC_USEC", String(Self.monotonicMicroseconds()))])
            await reload()
            notifier.notify([("READY", "1")])
        }
    }

    /// One reload; returns whether the new configuration was applied.
    @discardableResult
    public func reload() async -> Bool {
        let new: RollupdConfig
        do {
            new = try await load()
        } catch {
            logger.error("reload refused, keeping the running configuration: \(error)")
            return false
        }
        let old = live.current
        let blocked = ReloadPolicy.keysNeedingRestart(from: old, to: new)
        guard blocked.isEmpty else {
            logger.error("reload refused, keeping the running configuration: \(blocked.joined(separator: ", ")) change only on restart",
                         metadata: ["keys": "\(blocked.joined(separator: ","))"])
            return false
        }
        let channels = live.replace(with: new)
        // Channel names only: a URL or secret never reaches the log. The deliverer retries the
        // alerts waiting for an added or changed channel at its next round.
        var metadata: Logger.Metadata = [
            "poll_interval": "\(new.rollup.pollInterval.compactDescription)", "log_level": "\(new.log.level.rawValue)",
            "retention_interval": "\(new.retention.interval.compactDescription)",
        ]
        if !channels.isEmpty { metadata["channels_changed"] = "\(channels.summary)" }
        logger.notice(channels.isEmpty ? "configuration reloaded" : "configuration reloaded; channels \(channels.summary)", metadata: metadata)
        return true
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
