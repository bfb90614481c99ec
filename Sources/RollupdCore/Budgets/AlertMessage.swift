import Foundation

/// The two payloads a channel can receive. Pure: the same alert always gives the same bytes, so
/// a retried delivery sends exactly what the first attempt sent.
public enum AlertMessage {
    /// One sentence that says everything; Slack shows it in notifications, and Mattermost and
    /// Discord's /slack endpoint show only it.
    public static func text(_ alert: BudgetAlert) -> String {
        text(AlertBatch(messageID: alert.alertID, alerts: [alert]))
    }

    /// The sentence for a message; several thresholds are named in one ("crossed 50%, 80% and
    /// 100% of its limit ...") with the spend of the latest.
    public static func text(_ batch: AlertBatch) -> String {
        let alert = batch.latest
        let budget = "Budget \"\(alert.budgetName)\" (\(scopeDescription(alert)))"
        let period = "\(alert.periodLabel) (\(alert.timeZone))"
        let spend = money(alert.spendUSD), limit = money(alert.limitUSD)
        switch alert.kind {
        case "forecast":
            return "\(budget) is on course to exceed its limit for \(period): \(spend) spent so far, "
                + "\(money(alert.forecastUSD ?? alert.spendUSD)) forecast by the end of the period, limit \(limit)."
        case "period_closed":
            return "\(budget): \(period) closed at \(spend) of \(limit) (\(percent(alert))%)."
        default:
            guard batch.alerts.count > 1 else {
                return "\(budget) has reached \(alert.threshold)% of its limit for \(period): \(spend) of \(limit) spent (\(percent(alert))%)."
            }
            return "\(budget) crossed \(list(batch.alerts.map { "\($0.threshold)%" })) of its limit for \(period): "
                + "\(spend) of \(limit) spent (\(percent(alert))%)."
        }
    }

    /// Slack's incoming-webhook body: `text` plus a section and a context block.
    public static func slackBody(_ alert: BudgetAlert) -> Data {
        slackBody(AlertBatch(messageID: alert.alertID, alerts: [alert]))
    }

    public static func slackBody(_ batch: AlertBatch) -> Data {
        let alert = batch.latest
        let emoji = switch alert.kind {
        case "forecast": ":chart_with_upwards_trend:"
        case "period_closed": ":calendar:"
        default: alert.threshold >= 100 ? ":rotating_light:" : ":warning:"
        }
        let sentence = text(batch)
        let body = SlackBody(
            text: sentence,
            blocks: [
                .init(type: "section", text: .init(type: "mrkdwn", text: "\(emoji) \(escapeMrkdwn(sentence))"), elements: nil),
                .init(type: "context", text: nil, elements: [
                    .init(type: "mrkdwn", text: escapeMrkdwn("rollupd · budget \(alert.budgetID) · alert \(batch.messageID)")),
                ]),
            ])
        return encode(body)
    }

    /// rollupd's own document (README, "Alert payloads"). Money is decimal text, never a float.
    public static func jsonBody(_ alert: BudgetAlert) -> Data {
        jsonBody(AlertBatch(messageID: alert.alertID, alerts: [alert]))
    }

    /// `alert_id` is the message's webhook-id; `alert_ids` and `thresholds_percent` list what it
    /// carries (one entry for a single alert); spend and percent are the latest alert's.
    public static func jsonBody(_ batch: AlertBatch) -> Data {
        let alert = batch.latest
        return encode(JSONBody(
            type: "budget.\(alert.kind)",
            alertID: batch.messageID,
            alertIDs: batch.alerts.map(\.alertID),
            createdAt: alert.createdAt,
            budget: .init(id: alert.budgetID, name: alert.budgetName, scope: alert.scope, scopeValue: alert.scopeValue,
                          period: alert.period, timeZone: alert.timeZone, limitUSD: alert.limitUSD, channel: alert.channel),
            period: .init(start: alert.periodStart, end: alert.periodEnd, label: alert.periodLabel),
            thresholdPercent: alert.kind == "threshold" ? alert.threshold : nil,
            thresholdsPercent: alert.kind == "threshold" ? batch.alerts.map(\.threshold) : [],
            spendUSD: alert.spendUSD,
            percentOfLimit: percent(alert),
            forecastUSD: alert.forecastUSD,
            text: text(batch)))
    }

    /// "50%", "50% and 80%", "50%, 80% and 100%".
    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items[items.count - 1]
    }

    static func scopeDescription(_ alert: BudgetAlert) -> String {
        guard alert.scope != "global", let value = alert.scopeValue else { return "all spend" }
        return "\(alert.scope) \(value)"
    }

    /// Spend as a percentage of the limit, to two decimals.
    static func percent(_ alert: BudgetAlert) -> String {
        guard let spend = Decimal(string: alert.spendUSD, locale: posix), let limit = Decimal(string: alert.limitUSD, locale: posix), limit > 0 else {
            return "?"
        }
        return rounded(spend / limit * 100, places: 2)
    }

    /// "$1,234.57" from exact decimal text.
    static func money(_ text: String) -> String {
        guard let value = Decimal(string: text, locale: posix) else { return "$\(text)" }
        let fixed = rounded(value, places: 2)
        let negative = fixed.hasPrefix("-")
        let digits = negative ? String(fixed.dropFirst()) : fixed
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        var whole = String(parts[0])
        var grouped = ""
        while whole.count > 3 {
            grouped = "," + whole.suffix(3) + grouped
            whole = String(whole.dropLast(3))
        }
        return (negative ? "-$" : "$") + whole + grouped + "." + (parts.count > 1 ? parts[1] : "00")
    }

    private static let posix = Locale(identifier: "en_US_POSIX")

    private static func rounded(_ value: Decimal, places: Int) -> String {
        var input = value, output = Decimal()
        NSDecimalRound(&output, &input, places, .plain)
        let text = NSDecimalNumber(decimal: output).description(withLocale: posix)
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        return String(parts[0]) + "." + fraction.padding(toLength: places, withPad: "0", startingAt: 0)
    }

    /// Slack reads &, < and > as markup.
    static func escapeMrkdwn(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs cannot fail.
        return try! encoder.encode(value)
    }

    struct SlackBody: Encodable {
        struct Text: Encodable { var type: String; var text: String }
        struct Block: Encodable { var type: String; var text: Text?; var elements: [Text]? }
        var text: String
        var blocks: [Block]
    }

    struct JSONBody: Encodable {
        struct Budget: Encodable {
            var id: Int64, name: String, scope: String, scopeValue: String?, period: String, timeZone: String, limitUSD: String, channel: String
            enum CodingKeys: String, CodingKey {
                case id, name, scope, scopeValue = "scope_value", period, timeZone = "time_zone", limitUSD = "limit_usd", channel
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(name, forKey: .name)
                try container.encode(scope, forKey: .scope)
                try container.encode(scopeValue, forKey: .scopeValue)  // null for global budgets
                try container.encode(period, forKey: .period)
                try container.encode(timeZone, forKey: .timeZone)
                try container.encode(limitUSD, forKey: .limitUSD)
                try container.encode(channel, forKey: .channel)
            }
        }
        struct Period: Encodable { var start: String, end: String, label: String }
        var type: String, alertID: String, alertIDs: [String], createdAt: String, budget: Budget, period: Period
        var thresholdPercent: Int?, thresholdsPercent: [Int], spendUSD: String, percentOfLimit: String, forecastUSD: String?, text: String
        enum CodingKeys: String, CodingKey {
            case type, alertID = "alert_id", alertIDs = "alert_ids", createdAt = "created_at", budget, period
            case thresholdPercent = "threshold_percent", thresholdsPercent = "thresholds_percent"
            case spendUSD = "spend_usd", percentOfLimit = "percent_of_limit", forecastUSD = "forecast_usd", text
        }
        // Every key is always present (null when it does not apply), so receivers can rely on the shape.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(type, forKey: .type)
            try container.encode(alertID, forKey: .alertID)
            try container.encode(alertIDs, forKey: .alertIDs)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(budget, forKey: .budget)
            try container.encode(period, forKey: .period)
            try container.encode(thresholdPercent, forKey: .thresholdPercent)
            try container.encode(thresholdsPercent, forKey: .thresholdsPercent)
            try container.encode(spendUSD, forKey: .spendUSD)
            try container.encode(percentOfLimit, forKey: .percentOfLimit)
            try container.encode(forecastUSD, forKey: .forecastUSD)
            try container.encode(text, forKey: .text)
        }
    }
}
