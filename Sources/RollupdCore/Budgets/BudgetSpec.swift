import Foundation

/// A budget as `rollupd budget add` and `set` write it: every field checked here, once, with an
/// error naming the option, before any SQL runs. The budgets table's CHECKs stay the backstop
/// for budgets written with plain SQL.
public struct BudgetSpec: Sendable, Equatable, Codable {
    public var name: String
    /// global, project, feature, model or user.
    public var scope: String
    /// The project, feature, model or user; nil for global.
    public var scopeValue: String?
    /// day, week or month.
    public var period: String
    /// Exact decimal text, > 0.
    public var limitUSD: String
    public var thresholds: [Int]
    /// nil: rollup.time_zone.
    public var timeZone: String?
    public var channel: String
    public var enabled: Bool

    public static let scopes = ["global", "project", "feature", "model", "user"]
    public static let periods = ["day", "week", "month"]

    public init(name: String, scope: String, scopeValue: String?, period: String, limitUSD: String, thresholds: [Int] = [50, 80, 100],
                timeZone: String? = nil, channel: String = "default", enabled: Bool = true) {
        self.name = name
        self.scope = scope
        self.scopeValue = scopeValue
        self.period = period
        self.limitUSD = limitUSD
        self.thresholds = thresholds
        self.timeZone = timeZone
        self.channel = channel
        self.enabled = enabled
    }

    /// Checks every field; `channels` are the names under `channels:` in the configuration.
    public func validate(channels: some Collection<String>) throws(BudgetSpecError) {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw BudgetSpecError(option: "--name", "must not be empty") }
        guard Self.scopes.contains(scope) else {
            throw BudgetSpecError(option: "--scope", "'\(scope)' is not a scope (one of \(Self.scopes.joined(separator: ", ")))")
        }
        if scope == "global", scopeValue != nil {
            throw BudgetSpecError(option: "--value", "a global budget covers all spend and takes no value")
        }
        if scope != "global", scopeValue?.isEmpty ?? true {
            throw BudgetSpecError(option: "--value", "a \(scope) budget needs the \(scope) it covers (--value)")
        }
        guard Self.periods.contains(period) else {
            throw BudgetSpecError(option: "--period", "'\(period)' is not a period (day, week or month)")
        }
        _ = try Self.limit(limitUSD)
        if thresholds.isEmpty || thresholds.contains(where: { $0 <= 0 }) {
            throw BudgetSpecError(option: "--thresholds", "percentages above 0 are needed, e.g. 50,80,100")
        }
        if let timeZone, TimeZone(identifier: timeZone) == nil {
            throw BudgetSpecError(option: "--zone", "'\(timeZone)' is not an IANA time zone (e.g. Europe/Berlin, America/New_York)")
        }
        guard channels.contains(channel) else {
            let known = channels.sorted()
            throw BudgetSpecError(option: "--channel", key: "channels.\(channel)",
                                  "no channel '\(channel)' in the config (channels there: \(known.isEmpty ? "none" : known.joined(separator: ", "))); add channels.\(channel) first")
        }
    }

    /// "1500", "0.5": a positive decimal, kept as exact text.
    public static func limit(_ text: String) throws(BudgetSpecError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.range(of: #"^[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) != nil,
              let value = Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX")), value > 0 else {
            throw BudgetSpecError(option: "--limit", "'\(text)' is not an amount in USD above 0 (e.g. 1500 or 0.50)")
        }
        return trimmed
    }

    /// "50,80,100" -> [50, 80, 100], sorted, without repeats.
    public static func thresholds(_ text: String) throws(BudgetSpecError) -> [Int] {
        var values: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Int(part.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw BudgetSpecError(option: "--thresholds", "'\(text)' is not a list of percentages above 0 (e.g. 50,80,100)")
            }
            values.append(value)
        }
        return Array(Set(values)).sorted()
    }

    /// How this budget is described in the commands' output: `project acme`, `all spend`.
    public var scopeDescription: String { scopeValue.map { "\(scope) \($0)" } ?? "all spend" }
}

/// A value of `rollupd budget add/set` that cannot be a budget, naming the option (and the
/// configuration key, for a channel the config lacks).
public struct BudgetSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    public var option: String
    /// Set when the fix is in the configuration: the command exits 78 then.
    public var key: String?
    public var message: String

    public init(option: String, key: String? = nil, _ message: String) {
        self.option = option
        self.key = key
        self.message = message
    }

    public var description: String { "\(option): \(message)" }
}
