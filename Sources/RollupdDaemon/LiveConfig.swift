import RollupdCore
import Synchronization
import Systemd

/// The configuration the services read at the top of every loop, replaced whole by a reload.
public final class LiveConfig: Sendable {
    private struct State {
        var config: RollupdConfig
        /// Channels a reload added or changed whose waiting alerts the deliverer has not yet
        /// made due (it takes them at its next round).
        var channelsToRetry: Set<String> = []
    }

    private let storage: Mutex<State>
    /// Handlers read this, so a reload changes the level without re-bootstrapping swift-log.
    public let logLevel: SharedLogLevel

    public init(_ config: RollupdConfig, logLevel: SharedLogLevel) {
        storage = Mutex(State(config: config))
        self.logLevel = logLevel
    }

    public var current: RollupdConfig { storage.withLock { $0.config } }

    /// Replaces the configuration; returns which channels it added, changed or removed.
    @discardableResult
    func replace(with config: RollupdConfig) -> ChannelChanges {
        let changes = storage.withLock { state in
            let changes = ChannelChanges(from: state.config.channels, to: config.channels)
            state.config = config
            state.channelsToRetry.formUnion(changes.toRetry)
            return changes
        }
        logLevel.set(config.log.level)
        return changes
    }

    /// The channels to retry now, once: a second call returns none until the next reload.
    func takeChannelsToRetry() -> [String] {
        storage.withLock { state in
            defer { state.channelsToRetry = [] }
            return state.channelsToRetry.sorted()
        }
    }
}
