import Configuration
import RollupdCore

/// A configuration parsed from key/value pairs, the way a file or the environment would give them.
func parseConfig(_ values: [String: String]) throws(ConfigError) -> RollupdConfig {
    var table: [AbsoluteConfigKey: ConfigValue] = [:]
    for (key, value) in values {
        table[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = .init(.string(value), isSecret: false)
    }
    return try RollupdConfig.parse(ConfigReader(provider: InMemoryProvider(values: table)))
}
