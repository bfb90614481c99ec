import Foundation

/// What to do after a webhook attempt. Pure, so every branch is tested without a network.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// Try again after this long; the channel takes no other message meanwhile (its alerts go out
    /// in recorded order, and an endpoint that asked for a pause gets one).
    case retry(after: Duration, reason: String)
    /// Give up and record the alert as failed.
    case failed(reason: String)
}

public struct DeliveryPolicy: Sendable, Equatable {
    public var backoff: Backoff
    /// An alert older than this is given up on, whatever the endpoint says.
    public var maximumAge: Duration

    public init(backoff: Backoff = Backoff(base: .seconds(1), cap: .seconds(300)), maximumAge: Duration = .seconds(24 * 3600)) {
        self.backoff = backoff
        self.maximumAge = maximumAge
    }

    /// - Parameters:
    ///   - status: the HTTP status, or nil when no response came (timeout, refused connection).
    ///   - retryAfter: the response's Retry-After header, if any.
    ///   - attempts: attempts so far, this one included.
    ///   - age: time since the alert was recorded.
    ///   - now: for Retry-After given as an HTTP date.
    public func outcome(status: Int?, retryAfter: String?, error: String?, attempts: Int, age: Duration, now: Date, jitter: Double) -> DeliveryOutcome {
        if let status, (200..<300).contains(status) { return .delivered }
        let reason = status.map { "HTTP \($0)" } ?? (error ?? "no response")
        if let status, (300..<400).contains(status) {
            return .failed(reason: "\(reason): redirects are not followed; set the channel to the final URL")
        }
        if let status, (400..<500).contains(status), status != 429, status != 408 {
            return .failed(reason: "\(reason): the endpoint refused the message; retrying cannot help")
        }
        var wait = backoff.delay(afterFailures: max(attempts, 1), jitter: jitter)
        // 429 and 503 with Retry-After ask for no new request to the endpoint before then
        // (RFC 6585, RFC 9110): the caller pauses the whole channel for `wait`, not one alert.
        if status == 429 || status == 503, let retryAfter, let asked = Self.parseRetryAfter(retryAfter, now: now) {
            wait = max(asked, wait)
        }
        guard age + wait <= maximumAge else {
            return .failed(reason: "\(reason): still failing after \(attempts) attempts over \(age.compactDescription)")
        }
        return .retry(after: wait, reason: reason)
    }

    /// Retry-After is either delay-seconds or an HTTP date (RFC 9110 10.2.3).
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }
}
