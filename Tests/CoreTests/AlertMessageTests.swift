import Foundation
import RollupdCore
import Testing

/// The payloads, byte for byte where a receiver depends on them.
@Suite struct AlertMessageTests {
    func alert(kind: String = "threshold", threshold: Int = 80, spend: String = "1234.5", forecast: String? = nil) -> BudgetAlert {
        BudgetAlert(
            rowID: 1, alertID: "rollupd-budget-7-1793491200-t80", budgetID: 7, budgetName: "Acme <prod> & co",
            scope: "project", scopeValue: "acme", period: "month", timeZone: "Europe/Berlin",
            periodStart: "2026-10-31T23:00:00Z", periodEnd: "2026-11-30T23:00:00Z", periodLabel: "November 2026",
            kind: kind, threshold: threshold, limitUSD: "1500", spendUSD: spend, forecastUSD: forecast,
            channel: "default", createdAt: "2026-11-20T10:00:00Z", ageSeconds: 1, attempts: 0)
    }

    @Test func theTextAloneSaysEverything() {
        #expect(AlertMessage.text(alert()) == "Budget \"Acme <prod> & co\" (project acme) has reached 80% of its limit for November 2026 (Europe/Berlin): $1,234.50 of $1,500.00 spent (82.30%).")
        #expect(AlertMessage.text(alert(kind: "forecast", threshold: 0, spend: "400", forecast: "1650.123456")) == "Budget \"Acme <prod> & co\" (project acme) is on course to exceed its limit for November 2026 (Europe/Berlin): $400.00 spent so far, $1,650.12 forecast by the end of the period, limit $1,500.00.")
        #expect(AlertMessage.text(alert(kind: "period_closed", threshold: 0, spend: "1600")) == "Budget \"Acme <prod> & co\" (project acme): November 2026 (Europe/Berlin) closed at $1,600.00 of $1,500.00 (106.67%).")
    }

    @Test func slackBlocksEscapeMarkupButTheTextStaysPlain() throws {
        let body = try #require(try JSONSerialization.jsonObject(with: AlertMessage.slackBody(alert())) as? [String: Any])
        #expect(body["text"] as? String == "Budget \"Acme <prod> & co\" (project acme) has reached 80% of its limit for November 2026 (Europe/Berlin): $1,234.50 of $1,500.00 spent (82.30%).")
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        let section = try #require((blocks.first?["text"] as? [String: Any])?["text"] as? String)
        #expect(section.contains("Acme &lt;prod&gt; &amp; co"))
        #expect(blocks.count == 2)
    }

    @Test func theJSONDocumentHasEveryKeyAndExactMoney() throws {
        let body = try #require(try JSONSerialization.jsonObject(with: AlertMessage.jsonBody(alert())) as? [String: Any])
        #expect(Set(body.keys) == ["type", "alert_id", "alert_ids", "created_at", "budget", "period", "threshold_percent",
                                   "thresholds_percent", "spend_usd", "percent_of_limit", "forecast_usd", "text"])
        #expect(body["alert_ids"] as? [String] == ["rollupd-budget-7-1793491200-t80"])
        #expect(body["thresholds_percent"] as? [Int] == [80])
        #expect(body["type"] as? String == "budget.threshold")
        #expect(body["spend_usd"] as? String == "1234.5")
        #expect(body["percent_of_limit"] as? String == "82.30")
        #expect(body["forecast_usd"] is NSNull)
        let budget = try #require(body["budget"] as? [String: Any])
        #expect(budget["limit_usd"] as? String == "1500")
        #expect(budget["scope_value"] as? String == "acme")
        // Keys in sorted order, so the same alert gives the same bytes in every process: a retry
        // after a restart sends (and signs) what the first attempt sent. First key and last key:
        let bytes = String(decoding: AlertMessage.jsonBody(alert()), as: UTF8.self)
        #expect(bytes.hasPrefix(#"{"alert_id":"#), "\(bytes)")
        #expect(bytes.hasSuffix(#""type":"budget.threshold"}"#), "\(bytes)")
    }

    /// Three thresholds crossed together: one sentence naming each, the latest spend, one
    /// webhook-id; the JSON lists every alert it carries.
    @Test func aMessageForSeveralThresholdsNamesEachOfThem() throws {
        let alerts = [50, 80, 100].enumerated().map { index, threshold in
            var alert = alert(threshold: threshold, spend: "180.5")
            alert.rowID = Int64(index + 1)
            alert.alertID = "rollupd-budget-7-1793491200-t\(threshold)"
            alert.limitUSD = "100"
            return alert
        }
        let batch = try #require(AlertBatch.messages(from: alerts).first)
        #expect(batch.messageID == "rollupd-budget-7-1793491200-t50-t80-t100")
        #expect(AlertMessage.text(batch) == "Budget \"Acme <prod> & co\" (project acme) crossed 50%, 80% and 100% of its limit for November 2026 (Europe/Berlin): $180.50 of $100.00 spent (180.50%).")
        let body = try #require(try JSONSerialization.jsonObject(with: AlertMessage.jsonBody(batch)) as? [String: Any])
        #expect(body["alert_id"] as? String == batch.messageID)
        #expect(body["alert_ids"] as? [String] == alerts.map(\.alertID))
        #expect(body["thresholds_percent"] as? [Int] == [50, 80, 100])
        #expect(body["threshold_percent"] as? Int == 100)
        let slack = try #require(try JSONSerialization.jsonObject(with: AlertMessage.slackBody(batch)) as? [String: Any])
        #expect(slack["text"] as? String == AlertMessage.text(batch))
        #expect(AlertMessage.text(AlertBatch(messageID: "x", alerts: Array(alerts.prefix(2)))).contains("crossed 50% and 80% of its limit"))
    }

    /// A channel test can never be mistaken for an alert, in either format.
    @Test func theTestMessageSaysItIsATest() throws {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        let id = ChannelTestMessage.id(channel: "ops", at: now)
        #expect(id == "rollupd-test-ops-1795000000000")
        let json = try #require(try JSONSerialization.jsonObject(with: ChannelTestMessage.body(channel: "ops", format: .json, id: id, at: now)) as? [String: Any])
        #expect(json["type"] as? String == "rollupd.test")
        #expect((json["text"] as? String)?.contains("not a budget alert") == true)
        let slack = try #require(try JSONSerialization.jsonObject(with: ChannelTestMessage.body(channel: "ops", format: .slack, id: id, at: now)) as? [String: Any])
        #expect((slack["text"] as? String)?.hasPrefix("Test message from rollupd") == true)
    }

    @Test func redirectsAreNotFollowedButRecordedAsFailures() {
        let outcome = DeliveryPolicy().outcome(status: 301, retryAfter: nil, error: nil, attempts: 1, age: .seconds(1), now: Date(), jitter: 0)
        guard case .failed(let reason) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason.contains("redirects"))
    }
}
