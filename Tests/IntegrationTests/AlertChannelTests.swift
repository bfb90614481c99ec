import Foundation
import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Delivery per channel with the real `rollupd run` and the real receiver on 127.0.0.1: a
/// Retry-After pauses the whole channel for every instance, a channel receives its alerts in
/// the order they were recorded, and a reload that adds or fixes a channel retries at once.
@Suite struct AlertChannelTests {
    let scenario = AlertDeliveryTests()

    /// 429 Retry-After: 5 on the first message: the channel gets no request for 5 s although
    /// three messages wait, while its deliverer is SIGKILLed, the standby takes over and a third
    /// instance starts. Then the same message (same webhook-id) and the rest, in order.
    @Test(.timeLimit(.minutes(2)))
    func aRetryAfterPausesTheWholeChannelAcrossInstancesAndARestart() async throws {
        try await scenario.withScenario(
            budgets: [("grouped", "10", "{50,100}", "default"), ("second", "10", "{100}", "default"), ("third", "10", "{100}", "default")],
            spend: "11", settings: ["alerts.min_interval": "100ms", "alerts.retry_max_delay": "1s"],
            script: [.tooManyRequests(retryAfterSeconds: 5)]
        ) { receiver, setup, config, budgets in
            let first = try DaemonProcess(["run", "--config", config])
            let second = try DaemonProcess(["run", "--config", config])
            defer { first.sigkill(); second.sigkill() }
            _ = try await receiver.waitForRequests(1)
            // The pause is recorded with the attempt; then the deliverer dies on the spot.
            _ = try await scenario.waitForRow(setup, "SELECT count(*) FROM rollupd.alert_channels WHERE channel = 'default'") { try $0.int(0) == 1 }
            let deliverer = first.stderrText.contains("delivering budget alerts") ? first : second
            let standby = deliverer === first ? second : first
            #expect(await standby.waitForStderr(containing: "another instance delivers budget alerts", timeout: .seconds(20)))
            deliverer.sigkill()
            let third = try DaemonProcess(["run", "--config", config])
            defer { third.sigkill() }
            _ = try await scenario.waitForRow(setup, "SELECT count(*) FILTER (WHERE status = 'delivered') FROM rollupd.budget_alerts") { try $0.int(0) == 4 }

            let requests = receiver.requests
            #expect(requests.count == 4, "one 429, then three messages: \(requests.map(\.messageID))")
            if requests.count >= 2 {
                #expect(requests[1].at.timeIntervalSince(requests[0].at) >= 4.9, "a request came within Retry-After: 5")
            }
            let ids = try await setup.run { connection in
                try connection.query("SELECT DISTINCT ON (budget_id) message_id FROM rollupd.budget_alerts ORDER BY budget_id, id")
                    .rows.map { try $0.string(0) }
            }
            #expect(requests.map(\.messageID) == [ids[0]] + ids, "the paused message again, then the rest in recorded order")
            #expect(ids.first?.hasSuffix("-t50-t100") == true)
            #expect(budgets.count == 3)
            let deliverers = [standby, third].filter { $0.stderrText.contains("delivered") }
            #expect(deliverers.count == 1)
            // The standby said once that another instance delivered, and did not repeat it.
            #expect(standby.stderrText.components(separatedBy: "another instance delivers budget alerts").count == 2, "\(standby.stderrText)")
        }
    }

    /// Alerts recorded one after another during an outage (503 without Retry-After, backoff
    /// with jitter) reach the channel in the order they were recorded: every request carries an
    /// alert recorded after those before it, and a threshold recorded after its budget's first
    /// message was tried goes in a message of its own, after it.
    @Test(.timeLimit(.minutes(2)))
    func alertsGoOutInTheOrderTheyWereRecorded() async throws {
        try await scenario.withScenario(
            budgets: [("first", "10", "{50,100}", "default"), ("second", "20", "{50}", "default"), ("third", "40", "{50}", "default")],
            spend: "6", settings: ["alerts.min_interval": "50ms", "alerts.retry_max_delay": "1s"], then: .status(503)
        ) { receiver, setup, config, _ in
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let attempted = "SELECT count(*) FILTER (WHERE attempts > 0), count(*) FROM rollupd.budget_alerts"
            _ = try await scenario.waitForRow(setup, attempted) { try $0.int(0) == 1 && $0.int(1) == 1 }
            _ = try await setup.run { try AlertDeliveryTests.insertSpend(on: $0, usd: "6") }   // 12: first t100, second t50
            _ = try await scenario.waitForRow(setup, attempted) { try $0.int(1) == 3 }
            _ = try await setup.run { try AlertDeliveryTests.insertSpend(on: $0, usd: "10") }  // 22: third t50
            _ = try await scenario.waitForRow(setup, attempted) { try $0.int(1) == 4 }
            try await Task.sleep(for: .seconds(2))  // a few more failed rounds, with jittered backoff
            receiver.script([], then: .status(200))
            _ = try await scenario.waitForRow(setup, "SELECT count(*) FILTER (WHERE status = 'delivered') FROM rollupd.budget_alerts") { try $0.int(0) == 4 }

            let recorded = try await setup.run { connection in
                try connection.query("SELECT message_id FROM rollupd.budget_alerts ORDER BY id").rows.map { try $0.string(0) }
            }
            #expect(Set(recorded).count == 4, "each alert its own message: \(recorded)")
            let position = Dictionary(uniqueKeysWithValues: recorded.enumerated().map { ($1, $0) })
            let sent = receiver.requests.compactMap { $0.messageID.flatMap { position[$0] } }
            #expect(sent == sent.sorted(), "a request for a later alert came before an earlier one was delivered: \(sent)")
            #expect(receiver.requests.filter(\.accepted).compactMap(\.messageID) == recorded)
        }
    }

    /// A channel paused for an hour (429 Retry-After: 3600) and a channel missing from the
    /// config: SIGHUP with the first's URL fixed and the second added retries both at once, far
    /// sooner than their waits, and the log names the channels, never a URL.
    @Test(.timeLimit(.minutes(2)))
    func aReloadRetriesTheAlertsWaitingForAnAddedOrFixedChannelAtOnce() async throws {
        try await scenario.withScenario(
            budgets: [("paused", "10", "{100}", "default"), ("unconfigured", "10", "{100}", "finance")], spend: "11",
            script: [.tooManyRequests(retryAfterSeconds: 3600)]
        ) { receiver, setup, config, _ in
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            _ = try await scenario.waitForRow(setup, """
                SELECT (SELECT count(*) FROM rollupd.alert_channels WHERE paused_until > now() + interval '50 minutes'),
                       (SELECT count(*) FROM rollupd.budget_alerts WHERE channel = 'finance' AND last_error IS NOT NULL)
                """) { try $0.int(0) == 1 && $0.int(1) == 1 }
            #expect(receiver.requests.count == 1)

            let fixed = receiver.url.replacingOccurrences(of: "secret-token", with: "fixed-token")
            let finance = receiver.url.replacingOccurrences(of: "secret-token", with: "finance-token")
            var text = try String(contentsOfFile: config, encoding: .utf8)
            text = text.replacingOccurrences(of: receiver.url, with: fixed)
            text += "  finance:\n    url: \"\(finance)\"\n    format: \"json\"\n"
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            kill(daemon.pid, SIGHUP)
            let reloaded = ContinuousClock.now
            _ = try await scenario.waitForRow(setup, "SELECT count(*) FILTER (WHERE status = 'delivered') FROM rollupd.budget_alerts") { try $0.int(0) == 2 }
            #expect(ContinuousClock.now - reloaded < .seconds(30), "retried at once, not after the 60 s or 3600 s wait")
            #expect(receiver.requests.filter(\.accepted).count == 2)
            #expect(await daemon.waitForStderr(containing: "configuration reloaded; channels added finance; changed default", timeout: .seconds(5)))
            let log = daemon.stderrText
            for secret in ["secret-token", "fixed-token", "finance-token", "127.0.0.1:\(URL(string: receiver.url)?.port ?? 0)"] {
                #expect(!log.contains(secret), "\(secret) in the log")
            }
        }
    }
}
