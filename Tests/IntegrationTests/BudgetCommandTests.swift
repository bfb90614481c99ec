import Foundation
import Postgres
import RollupdCore
import RollupdStore
import Testing

/// `rollupd budget ...` and `rollupd channel test` through the real binary, against a real
/// database and the real receiver on 127.0.0.1.
@Suite struct BudgetCommandTests {
    /// add, list (spend summed from raw events, the last alert), set, disable, rm: each prints
    /// what it did, and the table says the same.
    @Test(.timeLimit(.minutes(2)))
    func budgetsAreManagedWithoutSQL() async throws {
        try await withCommandSetup { database, config, _ in
            let connection = try database.connect()
            try connection.query("""
                INSERT INTO events (project_id, feature, model, user_id, input_tokens, output_tokens, latency_ms, estimated_cost_usd,
                                    trace_id, span_id, provider)
                VALUES ('acme', 'chat', 'gpt-4o', 'u-1', 100, 50, 300, 7.25, 't', 's', 'openai'),
                       ('acme', 'chat', 'gpt-4o', 'u-2', 100, 50, 300, 1.5, 't', 's', 'openai'),
                       ('other', 'chat', 'gpt-4o', 'u-1', 100, 50, 300, 100, 't', 's', 'openai')
                """)
            let add = try await DaemonProcess.run(["budget", "add", "--config", config, "--name", "Acme daily", "--scope", "project",
                                                   "--value", "acme", "--period", "day", "--limit", "10", "--thresholds", "80,50"])
            #expect(add.status == 0, "\(add)")
            let id = try connection.query("SELECT id FROM rollupd.budgets").singleRow("budget").int64(0)
            #expect(add.stdout == "added budget \(id): 'Acme daily': project acme, $10 per day (UTC, rollup.time_zone) at 50,80% -> channel default\n")

            // Rolled up and evaluated in process: the command under test is `budget list`.
            _ = try RollupEngine(timeZone: "UTC").catchUp(.events, on: connection)
            _ = try BudgetEvaluator(defaultTimeZone: "UTC", settings: RollupdConfig.Budgets()).evaluate(on: connection)
            let list = try await DaemonProcess.run(["budget", "list", "--config", config, "--json"])
            #expect(list.status == 0, "\(list)")
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
            #expect(listed.count == 1)
            #expect(listed.first?["spendUSD"] as? String == "8.75", "acme's spend today from the raw events: 7.25 + 1.5")
            #expect(listed.first?["percentOfLimit"] as? String == "87.50")
            let last = try #require(listed.first?["lastAlert"] as? [String: Any])
            #expect(last["threshold"] as? Int == 80)
            #expect(last["status"] as? String == "pending")
            let text = try await DaemonProcess.run(["budget", "list", "--config", config])
            #expect(text.stdout.contains("Acme daily") && text.stdout.contains("$8.75") && text.stdout.contains("87.50%")
                    && text.stdout.contains("80% pending"), "\(text)")

            let set = try await DaemonProcess.run(["budget", "set", String(id), "--config", config, "--limit", "20", "--zone", "Asia/Kathmandu"])
            #expect(set.stdout == "changed budget \(id) (Acme daily): limit_usd 10 -> 20, time_zone default -> Asia/Kathmandu\n", "\(set)")
            let disable = try await DaemonProcess.run(["budget", "disable", String(id), "--config", config])
            #expect(disable.status == 0 && disable.stdout.hasPrefix("disabled budget \(id): "), "\(disable)")
            let row = try connection.query("SELECT limit_usd::text, time_zone, enabled FROM rollupd.budgets WHERE id = $1", [id]).singleRow("budget")
            #expect(try row.string(0) == "20" && row[1] == "Asia/Kathmandu" && row[2] == "f")
            let enable = try await DaemonProcess.run(["budget", "set", String(id), "--config", config, "--enable"])
            #expect(enable.stdout.contains("enabled false -> true"), "\(enable)")

            let remove = try await DaemonProcess.run(["budget", "rm", String(id), "--config", config])
            #expect(remove.stdout.hasSuffix("and its 2 recorded alerts\n"), "\(remove)")
            #expect(try connection.query("SELECT count(*) FROM rollupd.budget_alerts").singleRow("alerts").int(0) == 0)
            let missing = try await DaemonProcess.run(["budget", "rm", String(id), "--config", config])
            #expect(missing.status == 1 && missing.stderr.contains("no budget \(id)"), "\(missing)")
        }
    }

    /// Each bad value is refused before anything is written, naming the option (exit 64); a
    /// channel the config lacks names its key (exit 78).
    @Test(.timeLimit(.minutes(2)))
    func badBudgetsAreRefusedNamingTheOption() async throws {
        try await withCommandSetup { database, config, _ in
            let base = ["budget", "add", "--config", config, "--name", "x", "--period", "day", "--limit", "10"]
            for (extra, status, message) in [
                (["--scope", "team", "--value", "a"], 64, "--scope: 'team' is not a scope"),
                (["--scope", "project"], 64, "--value: a project budget needs the project it covers"),
                (["--zone", "Mars/Olympus"], 64, "--zone: 'Mars/Olympus' is not an IANA time zone"),
                (["--thresholds", "50,0"], 64, "--thresholds: '50,0' is not a list of percentages above 0"),
                (["--period", "year"], 64, "--period: 'year' is not a period"),
                (["--limit", "0"], 64, "--limit: '0' is not an amount in USD above 0"),
                (["--channel", "finance"], 78, "no channel 'finance' in the config (channels there: dead, default); add channels.finance"),
            ] as [([String], Int32, String)] {
                let outcome = try await DaemonProcess.run(base + extra)
                #expect(outcome.status == status, "\(extra): \(outcome)")
                #expect(outcome.stderr.contains(message), "\(extra): \(outcome)")
            }
            #expect(try database.connect().query("SELECT count(*) FROM rollupd.budgets").singleRow("budgets").int(0) == 0)
        }
    }

    /// A test message through the real delivery path: signed like alerts, marked as a test,
    /// status and latency printed, the outbox untouched, no URL or secret in the output. A
    /// channel answering 500 exits 1; one not in the config exits 78.
    @Test(.timeLimit(.minutes(2)))
    func aChannelTestSendsOneSignedMarkedMessageOutsideTheOutbox() async throws {
        try await withCommandSetup(script: [.status(200), .status(500)]) { database, config, receiver in
            let outcome = try await DaemonProcess.run(["channel", "test", "default", "--config", config])
            #expect(outcome.status == 0, "\(outcome)")
            #expect(outcome.stdout.range(of: #"^channel 'default' \(json, signed\): HTTP 200 in [0-9]+ ms \(test message rollupd-test-default-[0-9]+\)\n$"#,
                                         options: .regularExpression) != nil, "\(outcome)")
            let request = try #require(receiver.requests.first)
            #expect(request.json?["type"] as? String == "rollupd.test")
            #expect(request.webhookID?.hasPrefix("rollupd-test-default-") == true)
            #expect(request.headers["webhook-signature"]?.hasPrefix("v1,") == true)
            for secret in ["secret-token", AlertDeliveryTests.secret, "127.0.0.1"] {
                #expect(!outcome.stdout.contains(secret) && !outcome.stderr.contains(secret))
            }
            let failing = try await DaemonProcess.run(["channel", "test", "default", "--config", config])
            #expect(failing.status == 1 && failing.stdout.contains("HTTP 500"), "\(failing)")
            let refused = try await DaemonProcess.run(["channel", "test", "dead", "--config", config])
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stdout.contains("channel 'dead': no answer after") && refused.stdout.contains("could not connect"), "\(refused)")
            #expect(!refused.stdout.contains("Error") && !refused.stdout.contains("dead-token"), "a sentence, without the URL: \(refused)")
            let unknown = try await DaemonProcess.run(["channel", "test", "ops", "--config", config])
            #expect(unknown.status == 78 && unknown.stderr.contains("config key 'channels.ops'"), "\(unknown)")
            #expect(receiver.requests.count == 2)
            #expect(try database.connect().query("SELECT count(*) FROM rollupd.budget_alerts").singleRow("alerts").int(0) == 0)
        }
    }

    /// A test database, a config with one signed JSON channel pointing at a scripted receiver.
    func withCommandSetup(script: [WebhookReceiver.Reply] = [],
                          _ body: (TestDatabase, String, WebhookReceiver) async throws -> Void) async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script(script)
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database, ["log.level": "warning"], channels: [
                "default": ["url": receiver.url, "format": "json", "signing_secret": AlertDeliveryTests.secret],
                // Nothing listens on port 1: the connection is refused.
                "dead": ["url": "http://127.0.0.1:1/hooks/dead-token", "format": "slack"],
            ])
            try await body(database, config, receiver)
        }
    }
}
