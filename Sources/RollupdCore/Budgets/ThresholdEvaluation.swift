import Foundation

/// What a budget's spend says it should alert about. Pure: the caller supplies the spend, the
/// clock and what was already recorded; the result is the alerts to record now.
public struct ThresholdEvaluation: Sendable, Equatable {
    public struct Alert: Sendable, Equatable, Hashable {
        public enum Kind: String, Sendable, Codable {
            case threshold, forecast
        }

        public var kind: Kind
        /// The threshold percentage; for a forecast, the forecast percentage of the limit, rounded down.
        public var percent: Int

        public init(kind: Kind, percent: Int) {
            self.kind = kind
            self.percent = percent
        }
    }

    /// Every threshold at or below the spend's percentage that has not fired this period, lowest
    /// first: a jump from 40% to 110% fires 50, 80 and 100 at once.
    public static func crossedThresholds(spend: Decimal, limit: Decimal, thresholds: [Int], alreadyFired: Set<Int>) -> [Int] {
        guard limit > 0 else { return [] }
        let percent = spend / limit * 100
        return Set(thresholds).filter { Decimal($0) <= percent && !alreadyFired.contains($0) }.sorted()
    }

    /// Spend extrapolated linearly to the end of the period, as a percentage of the limit, once
    /// at least `minimumDays` of the period have passed; nil before then.
    public static func forecastPercent(spend: Decimal, limit: Decimal, period: DateInterval, now: Date, minimumDays: Double) -> Decimal? {
        guard limit > 0 else { return nil }
        let elapsed = now.timeIntervalSince(period.start)
        guard elapsed >= minimumDays * 86400, elapsed > 0 else { return nil }
        let projected = spend * Decimal(period.duration) / Decimal(min(elapsed, period.duration))
        return projected / limit * 100
    }

    /// All alerts due now: crossed thresholds, and one forecast per period when the projection
    /// exceeds the limit but the spend itself has not reached 100% yet (then the threshold says it).
    public static func due(
        spend: Decimal, limit: Decimal, thresholds: [Int], period: DateInterval, now: Date,
        forecastAfterDays: Double, alreadyRecorded: Set<Alert>
    ) -> [Alert] {
        let fired = Set(alreadyRecorded.filter { $0.kind == .threshold }.map(\.percent))
        var alerts = crossedThresholds(spend: spend, limit: limit, thresholds: thresholds, alreadyFired: fired)
            .map { Alert(kind: .threshold, percent: $0) }
        let forecastFired = alreadyRecorded.contains { $0.kind == .forecast }
        if !forecastFired, spend < limit,
           let projected = forecastPercent(spend: spend, limit: limit, period: period, now: now, minimumDays: forecastAfterDays),
           projected > 100 {
            alerts.append(Alert(kind: .forecast, percent: NSDecimalNumber(decimal: projected).intValue))
        }
        return alerts
    }

    /// The alert's stable id: the same budget, period, kind and threshold always give the same id,
    /// so receivers can deduplicate (Standard Webhooks' webhook-id).
    public static func alertID(budgetID: Int64, periodStart: Date, alert: Alert) -> String {
        let threshold = alert.kind == .forecast ? "forecast" : "t\(alert.percent)"
        return "rollupd-budget-\(budgetID)-\(Int64(periodStart.timeIntervalSince1970))-\(threshold)"
    }
}
