import Foundation
import RollupdCore
import Testing

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

    /// A 503 with Retry-After asks for the same pause as a 429; without it, backoff applies.
    @Test func serviceUnavailableHonoursRetryAfterToo() {
        #expect(policy.outcome(status: 503, retryAfter: "20", error: nil, attempts: 1, age: .zero, now: now, jitter: 0.5)
                == .retry(after: .seconds(20), reason: "HTTP 503"))
        #expect(policy.outcome(status: 500, retryAfter: "20", error: nil, attempts: 1, age: .zero, now: now, jitter: 0.999_999)
                == .retry(after: .seconds(1), reason: "HTTP 500"))
    }

    @Test func anAlertPastItsMaximumAgeFails() {
        guard case .failed(let reason) = policy.outcome(status: 500, retryAfter: nil, error: nil, attempts: 9, age: .seconds(3590), now: now, jitter: 0.5) else {
            Issue.record("past the maximum age the alert fails"); return
        }
        #expect(reason.contains("9 attempts"))
    }
}
