import Foundation
import RollupdCore
import Testing

@Suite struct BudgetPeriodTests {
    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func aMonthIsACalendarMonthInTheBudgetsZone() {
        let kolkata = TimeZone(identifier: "Asia/Kolkata")!
        // 2026-02-28T20:00Z is already 1 March 01:30 in Kolkata.
        let march = BudgetPeriod.month.interval(containing: date("2026-02-28T20:00:00Z"), timeZone: kolkata)
        #expect(march.start == date("2026-02-28T18:30:00Z"))
        #expect(march.end == date("2026-03-31T18:30:00Z"))
        let february = BudgetPeriod.month.interval(containing: date("2026-02-28T18:00:00Z"), timeZone: kolkata)
        #expect(february.duration == 28 * 86400)
    }

    @Test func aDayAcrossDSTHas25Hours() {
        let la = TimeZone(identifier: "America/Los_Angeles")!
        let day = BudgetPeriod.day.interval(containing: date("2026-11-01T20:00:00Z"), timeZone: la)
        #expect(day.start == date("2026-11-01T07:00:00Z"))
        #expect(day.duration == 25 * 3600)
    }

    @Test func weeksStartOnMondayUnlessConfigured() {
        let utc = TimeZone(identifier: "UTC")!
        // 2026-11-25 is a Wednesday.
        let monday = BudgetPeriod.week.interval(containing: date("2026-11-25T12:00:00Z"), timeZone: utc)
        #expect(monday.start == date("2026-11-23T00:00:00Z"))
        let sunday = BudgetPeriod.week.interval(containing: date("2026-11-25T12:00:00Z"), timeZone: utc, weekStart: 1)
        #expect(sunday.start == date("2026-11-22T00:00:00Z"))
    }
}

@Suite struct ThresholdEvaluationTests {
    typealias Alert = ThresholdEvaluation.Alert

    @Test func aJumpFiresEveryThresholdCrossedOnce() {
        #expect(ThresholdEvaluation.crossedThresholds(spend: 110, limit: 100, thresholds: [50, 80, 100], alreadyFired: []) == [50, 80, 100])
        #expect(ThresholdEvaluation.crossedThresholds(spend: 110, limit: 100, thresholds: [50, 80, 100], alreadyFired: [50]) == [80, 100])
        #expect(ThresholdEvaluation.crossedThresholds(spend: 49.99, limit: 100, thresholds: [50, 80, 100], alreadyFired: []) == [])
        #expect(ThresholdEvaluation.crossedThresholds(spend: 50, limit: 100, thresholds: [50], alreadyFired: []) == [50])
        #expect(ThresholdEvaluation.crossedThresholds(spend: 10, limit: 0, thresholds: [50], alreadyFired: []) == [])
    }

    @Test func theForecastWaitsForTheMinimumDaysAndFiresOnce() {
        let period = DateInterval(start: Date(timeIntervalSince1970: 0), duration: 30 * 86400)
        let day2 = Date(timeIntervalSince1970: 2 * 86400)
        let day3 = Date(timeIntervalSince1970: 3 * 86400)
        // 15 of 100 after 3 of 30 days projects to 150%.
        #expect(ThresholdEvaluation.forecastPercent(spend: 15, limit: 100, period: period, now: day2, minimumDays: 3) == nil)
        #expect(ThresholdEvaluation.forecastPercent(spend: 15, limit: 100, period: period, now: day3, minimumDays: 3) == 150)
        let due = ThresholdEvaluation.due(spend: 15, limit: 100, thresholds: [50, 80, 100], period: period, now: day3,
                                          forecastAfterDays: 3, alreadyRecorded: [])
        #expect(due == [Alert(kind: .forecast, percent: 150)])
        let again = ThresholdEvaluation.due(spend: 16, limit: 100, thresholds: [50, 80, 100], period: period, now: day3,
                                            forecastAfterDays: 3, alreadyRecorded: [Alert(kind: .forecast, percent: 150)])
        #expect(again.isEmpty)
    }

    @Test func alertIDsAreStablePerBudgetPeriodAndThreshold() {
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        let id = ThresholdEvaluation.alertID(budgetID: 7, periodStart: start, alert: Alert(kind: .threshold, percent: 80))
        #expect(id == "rollupd-budget-7-1795000000-t80")
        #expect(id == ThresholdEvaluation.alertID(budgetID: 7, periodStart: start, alert: Alert(kind: .threshold, percent: 80)))
        #expect(ThresholdEvaluation.alertID(budgetID: 7, periodStart: start, alert: Alert(kind: .forecast, percent: 133)).hasSuffix("-forecast"))
    }
}

@Suite struct DeliveryPolicyTests {
    let policy = DeliveryPolicy(backoff: Backoff(base: .seconds(1), cap: .seconds(60)), maximumAge: .seconds(3600))
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    @Test func successClientErrorsAndServerErrors() {
        #expect(policy.outcome(status: 204, retryAfter: nil, error: nil, attempts: 1, age: .zero, now: now, jitter: 0.5) == .delivered)
        guard case .failed = policy.outcome(status: 404, retryAfter: nil, error: nil, attempts: 1, age: .zero, now: now, jitter: 0.5) else {
            Issue.record("a 404 is permanent"); return
        }
        guard case .retry(let wait, _) = policy.outcome(status: 503, retryAfter: nil, error: nil, attempts: 3, age: .zero, now: now, jitter: 0.999_999) else {
            Issue.record("a 503 is retried"); return
        }
        #expect(wait == .seconds(4))
        guard case .retry = policy.outcome(status: nil, retryAfter: nil, error: "timed out", attempts: 1, age: .zero, now: now, jitter: 0) else {
            Issue.record("a timeout is retried"); return
        }
    }

    @Test func tooManyRequestsHonoursRetryAfterInSecondsAndAsADate() {
        #expect(policy.outcome(status: 429, retryAfter: "30", error: nil, attempts: 1, age: .zero, now: now, jitter: 0.5)
                == .retry(after: .seconds(30), reason: "HTTP 429"))
        let date = "Wed, 18 Nov 2026 11:07:00 GMT"  // 1_795_000_020: 20 s after `now`
        #expect(DeliveryPolicy.parseRetryAfter(date, now: now) == .seconds(20))
        #expect(DeliveryPolicy.parseRetryAfter("soon", now: now) == nil)
    }

    @Test func anAlertPastItsMaximumAgeFails() {
        guard case .failed(let reason) = policy.outcome(status: 500, retryAfter: nil, error: nil, attempts: 9, age: .seconds(3590), now: now, jitter: 0.5) else {
            Issue.record("past the maximum age the alert fails"); return
        }
        #expect(reason.contains("9 attempts"))
    }
}
