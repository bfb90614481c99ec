import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Postgres
import Testing

/// /metrics and /healthz of the running binary, read over real HTTP.
@Suite struct MetricsTests {
    /// A minimal parser of the Prometheus text format, written here and not shared with the
    /// product: `name{label="value",...} number` lines, comments skipped.
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    static func parse(_ text: String) throws -> [Sample] {
        try text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { line in
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw SetupError("unparseable metrics line: \(line)")
            }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            let body = series[series.index(after: brace)..<series.index(before: series.endIndex)]
            for pair in body.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw SetupError("bad label in: \(line)") }
                labels[String(parts[0])] = String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// The address the daemon logged: `serving /metrics and /healthz address=127.0.0.1:PORT`.
    static func address(of daemon: DaemonProcess) async throws -> String {
        #expect(await daemon.waitForStderr(containing: "serving /metrics", timeout: .seconds(20)), "\(daemon.stderrText)")
        let line = try #require(daemon.stderrLines.first { $0.contains("serving /metrics") })
        return String(try #require(line.split(separator: " ").first { $0.hasPrefix("address=") }).dropFirst("address=".count))
    }

    static func insertEvents(_ count: Int, into database: TestDatabase) async throws {
        _ = try await onOwnThread {
            try database.connect().query("""
                INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
                SELECT 't', 's', 'chat', 'openai', 'gpt-4o', 10, 5, 100, 0.01 FROM generate_series(1, $1::int)
                """, [count])
        }
    }

    @Test func countersMoveAsWorkIsDone() async throws {
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let daemon = try DaemonProcess(["run", "--config", try DaemonConfig.file(in: directory, database: database)])
            let address = try await Self.address(of: daemon)
            try await Self.insertEvents(120, into: database)
            // Long enough for other tests' open transactions, which hold back every pass's horizon.
            var samples: [Sample] = []
            for _ in 0..<600 {
                samples = try Self.parse(try await Self.get("http://\(address)/metrics").body)
                if Self.value(samples, "rollupd_rows_rolled_up_total", ["source": "events", "change": "added"]) == 120 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(Self.value(samples, "rollupd_rows_rolled_up_total", ["source": "events", "change": "added"]) == 120)
            #expect(Self.value(samples, "rollupd_leader") == 1)
            #expect(Self.value(samples, "rollupd_build_info")  == 1)
            #expect((Self.value(samples, "rollupd_passes_total", ["source": "events"]) ?? 0) >= 1)
            #expect((Self.value(samples, "rollupd_pass_duration_seconds_count", ["source": "events"]) ?? 0) >= 1)
            let lag = try #require(Self.value(samples, "rollupd_rollup_lag_seconds", ["source": "events"]))
            #expect(lag >= 0 && lag < 30)

            try await Self.insertEvents(30, into: database)
            var after: Double?
            for _ in 0..<600 {
                after = Self.value(try Self.parse(try await Self.get("http://\(address)/metrics").body),
                                   "rollupd_rows_rolled_up_total", ["source": "events", "change": "added"])
                if after == 150 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(after == 150)

            // Every metric the shipped dashboard and alert rules query is one the daemon exposes
            // (budget alert metrics included: their series exist from start, at 0).
            let exposed = Set(try Self.parse(try await Self.get("http://\(address)/metrics").body).map(\.name))
            for file in ["docs/monitoring/grafana-dashboard.json", "docs/monitoring/rollupd.rules.yml"] {
                let text = try String(contentsOfFile: TestEnvironment.repoRoot + "/" + file, encoding: .utf8)
                let used = Set(text.matches(of: /rollupd_[a-z_]+/).map { String($0.output) })
                for name in used {
                    let family = [name, name + "_bucket", name + "_count", name + "_sum"]
                    #expect(family.contains { exposed.contains($0) }, "\(file) uses \(name), which /metrics does not expose")
                }
            }
            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0)
        }
    }

    @Test func healthzTurns503WhenTheDatabaseGoesAwayAnd200WhenItReturns() async throws {
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let daemon = try DaemonProcess(["run", "--config", try DaemonConfig.file(in: directory, database: database)])
            let address = try await Self.address(of: daemon)
            func healthz(becomes status: Int, within seconds: Int) async throws -> (Int, String) {
                var last = (0, "")
                for _ in 0..<(seconds * 10) {
                    last = try await Self.get("http://\(address)/healthz")
                    if last.0 == status { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return last
            }
            let healthy = try await healthz(becomes: 200, within: 20)
            #expect(healthy.0 == 200 && healthy.1.contains("leader"), "\(healthy)")

            // The database goes away: no new connections, existing ones cut.
            let name = database.name
            _ = try await onOwnThread {
                try TestDatabase.admin { admin in
                    try admin.query("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
                    try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name])
                }
            }
            let down = try await healthz(becomes: 503, within: 20)
            #expect(down.0 == 503, "\(down)")
            #expect(down.1.contains("not currently accepting connections") || down.1.contains("terminat") || down.1.contains("connection"), "\(down)")

            _ = try await onOwnThread { try TestDatabase.admin { try $0.query("ALTER DATABASE \(name) ALLOW_CONNECTIONS true") } }
            let back = try await healthz(becomes: 200, within: 40)
            #expect(back.0 == 200, "\(back)")
            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0)
        }
    }

    @Test func statusExitsNonZeroWithoutALeader() async throws {
        try await withTestDatabaseAsync { database in
            let directory = try TemporaryDirectory()
            let config = try DaemonConfig.file(in: directory, database: database)
            let daemon = try DaemonProcess(["run", "--config", config])
            #expect(await daemon.waitForStderr(containing: "leader: rolling up", timeout: .seconds(20)))
            try await Task.sleep(for: .milliseconds(300))
            let running = try await DaemonProcess.run(["status", "--json", "--config", config])
            #expect(running.status == 0, "\(running)")
            #expect(running.stdout.contains("\"healthy\" : true"), "\(running)")
            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(10)) == 0)
            let stopped = try await DaemonProcess.run(["status", "--config", config])
            #expect(stopped.status == 1, "\(stopped)")
            #expect(stopped.stdout.contains("no rollupd instance holds the leader lock"), "\(stopped)")
        }
    }
}
