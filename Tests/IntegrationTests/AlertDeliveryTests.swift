import Foundation
import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `rollupd run` delivering budget alerts to a real HTTP server on 127.0.0.1 that the
/// test starts and scripts: success, outages, Retry-After, silence, refusal, and a daemon killed
/// while alerts wait. Signatures are checked with PostgreSQL's pgcrypto, not the daemon's code.
@Suite struct AlertDeliveryTests {
    static let secret = "whsec_" + Data("rollupd-test-signing-key-0123456789".utf8).base64EncodedString()

    /// Three thresholds crossed at once reach the JSON channel as one signed message naming all
    /// three, whose three rows are marked delivered by it; a second budget's alert follows a
    /// second or more later (alerts.min_interval per channel); the Slack channel gets its own
    /// budget's alert as text plus blocks; neither URL nor secret appears in the log.
    @Test(.timeLimit(.minutes(2)))
    func signedAlertsArriveOnceEachPacedPerChannel() async throws {
        try await withScenario(
            budgets: [("Daily <all> & more", "10", "{50,80,100}", "default"), ("Ops daily", "20", "{50}", "ops"),
                      ("Second", "10", "{100}", "default")], spend: "11",
            settings: ["alerts.min_interval": "1s"],
            channels: { url in [
                "default": ["url": url, "format": "json", "signing_secret": Self.secret],
                "ops": ["url": url.replacingOccurrences(of: "secret-token", with: "ops-token"), "format": "slack"],
            ] }
        ) { receiver, setup, config, budgets in
            let budget = budgets[0]
            _ = try await setup.run { try $0.query("CREATE EXTENSION IF NOT EXISTS pgcrypto") }
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let requests = try await receiver.waitForRequests(3)
            try await Task.sleep(for: .seconds(1.5))  // nothing more may come
            #expect(receiver.requests.count == 3, "\(daemon.stderrText)")

            let json = requests.filter { $0.headers["webhook-id"] != nil }
            let slack = requests.filter { $0.headers["webhook-id"] == nil }
            #expect(json.count == 2)
            #expect(slack.count == 1)
            let recorded = try await setup.run { connection in
                try connection.query("""
                    SELECT alert_id, status, attempts, message_id FROM rollupd.budget_alerts WHERE budget_id = $1 ORDER BY threshold
                    """, [budget]).rows.map { (try $0.string(0), "\(try $0.string(1))|\(try $0.int(2))|\(try $0.string(3))") }
            }
            let grouped = try #require(json.first { ($0.json?["thresholds_percent"] as? [Int])?.count == 3 })
            let groupID = try #require(grouped.webhookID)
            #expect(groupID == "rollupd-budget-\(budget)-\(recorded.first.map { $0.0.split(separator: "-")[3] } ?? "")-t50-t80-t100")
            #expect(recorded.map(\.1) == Array(repeating: "delivered|1|\(groupID)", count: 3), "three rows, delivered by one message")
            let body = try #require(grouped.json)
            #expect(body["alert_ids"] as? [String] == recorded.map(\.0))
            #expect(body["thresholds_percent"] as? [Int] == [50, 80, 100])
            #expect((body["text"] as? String)?.contains("crossed 50%, 80% and 100% of its limit") == true)
            for request in json {
                let body = try #require(request.json)
                #expect(body["type"] as? String == "budget.threshold")
                #expect(body["alert_id"] as? String == request.webhookID)
                #expect(body["spend_usd"] as? String == "11")
                #expect(body["threshold_percent"] as? Int == 100)
                // Standard Webhooks, recomputed by pgcrypto from the raw bytes received.
                let id = try #require(request.headers["webhook-id"]), timestamp = try #require(request.headers["webhook-timestamp"])
                #expect(abs((Double(timestamp) ?? 0) - Date().timeIntervalSince1970) < 120)
                let expected = try await setup.run { connection in
                    try connection.query("""
                        SELECT 'v1,' || encode(hmac(decode($1, 'hex'), decode($2, 'base64'), 'sha256'), 'base64')
                        """, [(Data("\(id).\(timestamp).".utf8) + request.body).map { String(format: "%02x", $0) }.joined(),
                              String(Self.secret.dropFirst(6))])
                        .singleRow("hmac").string(0)
                }
                #expect(request.headers["webhook-signature"] == expected)
            }
            let times = json.map(\.at).sorted()
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(later.timeIntervalSince(earlier) >= 0.9, "alerts.min_interval is 1s per channel")
            }

            let slackBody = try #require(slack.first?.json)
            let text = try #require(slackBody["text"] as? String)
            #expect(text.contains("Budget \"Ops daily\" (all spend) has reached 50%"))
            #expect(text.contains("$11.00 of $20.00"))
            let blocks = try #require(slackBody["blocks"] as? [[String: Any]])
            #expect(blocks.first?["type"] as? String == "section")

            // The counters moved with the work, per channel.
            let samples = try MetricsTests.parse(try await MetricsTests.get("http://\(try await MetricsTests.address(of: daemon))/metrics").body)
            #expect(MetricsTests.value(samples, "rollupd_alerts_fired_total", ["channel": "default"]) == 4)
            #expect(MetricsTests.value(samples, "rollupd_alerts_delivered_total", ["channel": "default"]) == 4)
            #expect(MetricsTests.value(samples, "rollupd_alerts_delivered_total", ["channel": "ops"]) == 1)
            #expect(MetricsTests.value(samples, "rollupd_alerts_failed_total", ["channel": "default"]) == 0)
            #expect(MetricsTests.value(samples, "rollupd_alerts_pending", ["channel": "default"]) == 0)

            #expect(await daemon.waitForStderr(containing: "budget alert delivered", timeout: .seconds(10)))
            let log = daemon.stderrText
            #expect(!log.contains("secret-token") && !log.contains("ops-token") && !log.contains(Self.secret))
        }
    }

    /// 500, then no answer at all, then an answer too slow for alerts.request_timeout, then 429
    /// Retry-After: 3: the alert stays pending, waits at least what the endpoint asked, and goes
    /// out on the fifth attempt.
    @Test(.timeLimit(.minutes(2)))
    func anOutageIsRetriedHonouringRetryAfterAndRecovers() async throws {
        try await withScenario(
            budgets: [("outage", "10", "{100}", "default")], spend: "12",
            settings: ["alerts.request_timeout": "1s", "alerts.retry_max_delay": "2s"],
            script: [.status(500), .silence, .slow(.seconds(3)), .tooManyRequests(retryAfterSeconds: 3)]
        ) { receiver, setup, config, _ in
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let requests = try await receiver.waitForRequests(5, timeout: .seconds(60))
            #expect(requests.count == 5, "\(daemon.stderrText)")
            #expect(Set(requests.compactMap { $0.json?["alert_id"] as? String }).count == 1)
            if requests.count == 5 {
                #expect(requests[4].at.timeIntervalSince(requests[3].at) >= 2.9, "Retry-After: 3 was not honoured")
            }
            let row = try await waitForRow(setup, "SELECT status, attempts, last_http_status FROM rollupd.budget_alerts") { try $0.string(0) == "delivered" }
            #expect(try row.string(0) == "delivered")
            #expect(try row.int(1) == 5)
            #expect(try row.int(2) == 200)
            // The row is updated before the line is logged.
            #expect(await daemon.waitForStderr(containing: "accepting alerts again", timeout: .seconds(10)))
            let log = daemon.stderrText
            #expect(log.components(separatedBy: "channel 'default' is failing").count == 2, "one warning per outage")
            // Repeated once per change of cause (500 -> timeouts -> 429), in sentences, not type names.
            #expect(log.contains("channel 'default' is failing (HTTP 500)"), "\(log)")
            #expect(log.contains("is still failing, now timed out after 1 s (alerts.request_timeout) (was HTTP 500)"), "\(log)")
            #expect(log.contains("is still failing, now HTTP 429 (was timed out after 1 s"), "\(log)")
            #expect(log.components(separatedBy: "is still failing").count == 3, "the two timeouts are one cause")
            #expect(!log.contains("HTTPClientError") && !log.contains("deadlineExceeded"))
        }
    }

    /// A 4xx other than 429 is the endpoint refusing the message: recorded failed after one
    /// attempt, logged, never retried.
    @Test(.timeLimit(.minutes(1)))
    func aRefusedAlertIsRecordedFailedAndNotRetried() async throws {
        try await withScenario(
            budgets: [("refused", "10", "{100}", "default")], spend: "12",
            channels: { url in ["default": ["url": url]] }, script: [.status(404)]
        ) { receiver, setup, config, _ in
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let row = try await waitForRow(setup, "SELECT status, attempts, last_http_status, last_error FROM rollupd.budget_alerts") { try $0.string(0) != "pending" }
            #expect(try row.string(0) == "failed")
            #expect(try row.int(1) == 1)
            #expect(try row.int(2) == 404)
            #expect(try row.string(3).contains("HTTP 404"))
            try await Task.sleep(for: .seconds(2))
            #expect(receiver.requests.count == 1)
            #expect(await daemon.waitForStderr(containing: "budget alert given up", timeout: .seconds(10)))
            #expect(daemon.stderrText.components(separatedBy: "budget alert given up").count == 2)
        }
    }

    /// A budget naming a channel the config lacks: its alert waits, nothing is sent or counted
    /// as an attempt, and the log says once what to add.
    @Test(.timeLimit(.minutes(1)))
    func anAlertForAChannelNotInTheConfigWaitsWithoutAttempts() async throws {
        try await withScenario(budgets: [("elsewhere", "10", "{100}", "finance")], spend: "12") { receiver, setup, config, _ in
            let daemon = try DaemonProcess(["run", "--config", config])
            defer { daemon.sigkill() }
            let row = try await waitForRow(setup, "SELECT status, attempts, last_error FROM rollupd.budget_alerts") { $0[2] != nil }
            #expect(try row.string(0) == "pending")
            #expect(try row.int(1) == 0)
            #expect(try row.string(2).contains("no channel 'finance' in the config"))
            #expect(await daemon.waitForStderr(containing: "budget alerts for channel 'finance' are waiting", timeout: .seconds(10)))
            try await Task.sleep(for: .seconds(1))
            #expect(receiver.requests.isEmpty)
            #expect(daemon.stderrText.components(separatedBy: "are waiting").count == 2)
            #expect(!daemon.stderrText.contains("is failing"))
        }
    }

    /// Alerts recorded while the endpoint is down survive a SIGKILL; after it, two instances
    /// start together and the endpoint recovers: every alert is accepted exactly once, each
    /// budget's three in one message.
    @Test(.timeLimit(.minutes(2)))
    func alertsPendingAcrossSigkillAreDeliveredExactlyOnceByOneOfTwoInstances() async throws {
        try await withScenario(
            budgets: (0..<4).map { ("b\($0)", "10", "{25,50,100}", "default") }, spend: "11",
            settings: ["alerts.retry_max_delay": "1s", "alerts.min_interval": "100ms"], then: .status(503)
        ) { receiver, setup, config, _ in
            let first = try DaemonProcess(["run", "--config", config])
            // All 12 alerts recorded, the first message tried against the dead endpoint (the
            // others wait behind it: the channel is paused between attempts).
            _ = try await waitForRow(setup, "SELECT count(*), count(*) FILTER (WHERE attempts > 0) FROM rollupd.budget_alerts") {
                try $0.int(0) == 12 && $0.int(1) >= 3
            }
            first.sigkill()
            _ = await first.waitForExit(timeout: .seconds(10))
            let beforeRestart = receiver.requests.count
            #expect(receiver.requests.allSatisfy { !$0.accepted })

            receiver.script([], then: .status(200))
            let second = try DaemonProcess(["run", "--config", config])
            let third = try DaemonProcess(["run", "--config", config])
            defer { second.sigkill(); third.sigkill() }
            _ = try await waitForRow(setup, "SELECT count(*) FILTER (WHERE status = 'delivered') FROM rollupd.budget_alerts") { try $0.int(0) == 12 }
            try await Task.sleep(for: .seconds(2))

            // Each budget's three thresholds went out as one message; every row was carried once.
            let accepted = receiver.requests.filter(\.accepted).compactMap(\.json)
            let carried = accepted.flatMap { $0["alert_ids"] as? [String] ?? [] }
            let recorded = try await setup.run { connection in
                try connection.query("SELECT alert_id FROM rollupd.budget_alerts").rows.map { try $0.string(0) }
            }
            #expect(beforeRestart >= 1)
            #expect(accepted.count == 4, "\(second.stderrText)\n\(third.stderrText)")
            #expect(carried.count == 12)
            #expect(Set(carried) == Set(recorded))
            let deliverers = [second, third].filter { $0.stderrText.contains("budget alerts delivered in one message") }
            #expect(deliverers.count == 1, "exactly one instance delivers")
        }
    }

    // MARK: helpers

    /// One scenario: a scripted receiver on 127.0.0.1, a test database holding these global day
    /// budgets and spend over them, and a daemon config whose channels point at the receiver.
    /// `body` gets the receiver, a session on the database, the config path and the budget ids.
    func withScenario(
        budgets: [(name: String, limit: String, thresholds: String, channel: String)], spend: String,
        settings: [String: String] = [:],
        channels: (String) -> [String: [String: String]] = { ["default": ["url": $0, "format": "json"]] },
        script: [WebhookReceiver.Reply] = [], then fallback: WebhookReceiver.Reply = .status(200),
        _ body: (WebhookReceiver, DatabaseSession, String, [Int64]) async throws -> Void
    ) async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script(script, then: fallback)
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, settings, channels: channels(receiver.url))
            let setup = database.session(label: "setup")
            defer { Task { await setup.close() } }
            let ids = try await setup.run { connection in
                let ids = try budgets.map { try Self.insertBudget(on: connection, name: $0.name, limit: $0.limit, thresholds: $0.thresholds, channel: $0.channel) }
                try Self.insertSpend(on: connection, usd: spend)
                return ids
            }
            try await body(receiver, setup, config, ids)
        }
    }

    /// Polls `sql` until it returns a row for which `done` holds (or 60 s pass); returns that row.
    func waitForRow(_ session: DatabaseSession, _ sql: String, _ done: @escaping @Sendable (PGRow) throws -> Bool) async throws -> PGRow {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let row = try await session.run { try $0.query(sql).rows.first }
            if let row, try done(row) || ContinuousClock.now > deadline { return row }
            if row == nil, ContinuousClock.now > deadline { return try await session.run { try $0.query(sql).singleRow("poll") } }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

extension AlertDeliveryTests {
    @discardableResult
    static func insertBudget(on connection: PGConnection, name: String, limit: String, thresholds: String, channel: String) throws -> Int64 {
        try connection.query("""
            INSERT INTO rollupd.budgets (name, scope, period, limit_usd, thresholds, channel) VALUES ($1, 'global', 'day', $2::numeric, $3::int[], $4)
            RETURNING id
            """, [name, limit, thresholds, channel]).singleRow("budget").int64(0)
    }

    /// Spend now, so today's day budgets see it.
    static func insertSpend(on connection: PGConnection, usd: String) throws {
        try connection.query("""
            INSERT INTO events (project_id, feature, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd, trace_id, span_id, provider)
            VALUES ('acme', 'chat', 'gpt-4o', 100, 50, 300, $1::numeric, 't', 's', 'openai')
            """, [usd])
    }
}
