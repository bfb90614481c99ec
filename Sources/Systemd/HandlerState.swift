import Logging

/// What every rollupd log handler keeps besides its output: a level that a reload can change
/// (through `SharedLogLevel`), and the logger's metadata.
public struct HandlerState: Sendable {
    var configuredLevel: Logger.Level
    let sharedLevel: SharedLogLevel?
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(level: Logger.Level, shared: SharedLogLevel?) {
        configuredLevel = level
        sharedLevel = shared
    }
}

/// A LogHandler whose bookkeeping lives in `HandlerState`; conforming types only write entries.
protocol StatefulLogHandler: LogHandler {
    var state: HandlerState { get set }
}

extension StatefulLogHandler {
    public var logLevel: Logger.Level {
        get { state.sharedLevel?.level ?? state.configuredLevel }
        set { state.configuredLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { state.metadata }
        set { state.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { state.metadataProvider }
        set { state.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { state.metadata[key] }
        set { state.metadata[key] = newValue }
    }

    /// The handler's metadata, then the provider's, then the call's, later ones winning.
    func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = state.metadata
        if let provided = state.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        return merged
    }
}
