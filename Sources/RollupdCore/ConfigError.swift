/// A configuration problem, naming the key (or the file) so the operator knows what to fix.
/// The executable exits with EX_CONFIG (78) on any of these.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted key, e.g. `rollup.poll_interval`, or nil for a problem with the file as a whole.
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String {
        guard let key else { return "config: \(message)" }
        guard ConfigKeys.isKnown(key) else { return "config key '\(key)': \(message)" }
        return "config key '\(key)': \(message) (in the file, or overridden by \(RollupdConfig.environmentName(for: key)))"
    }
}
