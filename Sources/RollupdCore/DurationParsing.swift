/// Parses durations as operators write them: `250ms`, `1.5s`, `5m`, `1h`, `30d`, or a bare number
/// of seconds (`2`, `0.25`). Returns nil for anything else, negative values included.
public func parseDuration(_ text: String) -> Duration? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
    for unit in units where trimmed.hasSuffix(unit.suffix) {
        let number = trimmed.dropLast(unit.suffix.count).trimmingCharacters(in: .whitespaces)
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        return .milliseconds(Int64((value * unit.seconds * 1000).rounded()))
    }
    guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
    return .milliseconds(Int64((seconds * 1000).rounded()))
}

extension Duration {
    /// Seconds as a Double, for SQL parameters and log fields.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// `250ms`, `1.5s`, `5m`: how check-config and log lines print a duration.
    public var compactDescription: String {
        let milliseconds = Int64((seconds * 1000).rounded())
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds % 86_400_000 == 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(Double(milliseconds) / 1000)s"
    }
}
