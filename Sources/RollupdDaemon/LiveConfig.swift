import RollupdCore
import Synchronization
import Systemd

/// The configuration the services read at the top of every loop, replaced whole by a reload.
public final class LiveConfig: Sendable {
    private let storage: Mutex<RollupdConfig>
    /// Handlers read this, so a reload changes the level without re-bootstrapping swift-log.
    public let logLevel: SharedLogLevel

    public init(_ config: RollupdConfig, logLevel: SharedLogLevel) {
        storage = Mutex(config)
        self.logLevel = logLevel
    }

    public var current: RollupdConfig { storage.withLock { $0 } }

    func replace(with config: RollupdConfig) {
        storage.withLock { $0 = config }
        logLevel.set(config.log.level)
    }
}
