import Configuration
import Foundation
import RollupdCore
import Testing

@Suite struct ConfigTests {
    func parse(_ values: [String: String]) throws(ConfigError) -> RollupdConfig { try parseConfig(values) }

    @Test func defaultsAreTheDocumentedOnes() throws {
        let config = try parse([:])
        #expect(config.rollup.pollInterval == .seconds(1))
        #expect(config.rollup.timeZone == "UTC")
        #expect(config.migrations.directory == "/usr/share/rollupd/migrations")
        #expect(config.migrations.applyOnStart)
        #expect(config.database.statementTimeout == .seconds(300))
        #expect(config.log.level == .info)
    }

    @Test(arguments: [
        ("rollup.poll_interval", "soon"),
        ("rollup.poll_interval", "10ms"),  // below the 50 ms minimum
        ("rollup.time_zone", "Mars/Olympus"),
        ("leader.lock_key", "-3"),
        ("log.level", "loud"),
        ("migrations.apply_on_start", "maybe"),
        ("database.url", "host=x bogus"),
        ("database.connect_timeout", "-1s"),
    ])
    func aBadValueIsAnErrorNamingItsKey(key: String, value: String) {
        #expect {
            _ = try parse([key: value])
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == key && error.description.contains(RollupdConfig.environmentName(for: key))
        }
    }

    @Test func theConnectionStringIsRedactedInTheSummary() throws {
        let config = try parse(["database.url": "host=db1 user=rollupd password=s3cret dbname=app"])
        let printed = config.redactedSummary.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        #expect(!printed.contains("s3cret"))
        #expect(printed.contains("password=********"))
        #expect(printed.contains("host=db1"))
    }

    @Test func urlFileIsReadAndUrlAndUrlFileTogetherAreRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-url-\(UUID())").path
        try "host=db2 dbname=app\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try parse(["database.url_file": path]).database.conninfo == "host=db2 dbname=app")
        #expect(throws: ConfigError.self) { try parse(["database.url_file": path, "database.url": "host=x"]) }
    }

    @Test func unknownKeysAndSectionsInTheFileAreRejected() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(yaml: String, key: String)] = [
            ("rollup:\n  pol_interval: 1s\n", "rollup.pol_interval"),
            ("rolup:\n  poll_interval: 1s\n", "rolup"),
            ("rollup:\n  time_zone:\n    - UTC\n", "rollup.time_zone"),
        ]
        for (index, entry) in cases.enumerated() {
            let path = directory.appendingPathComponent("\(index).yaml").path
            try entry.yaml.write(toFile: path, atomically: true, encoding: .utf8)
            await #expect {
                _ = try await RollupdConfig.load(path: path, environment: [:])
            } throws: { error in
                (error as? ConfigError)?.key == entry.key
            }
        }
    }

    @Test func environmentOverridesTheFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-\(UUID()).yaml").path
        try "rollup:\n  poll_interval: 5s\n  time_zone: UTC\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await RollupdConfig.load(path: path, environment: ["ROLLUPD_ROLLUP_TIME_ZONE": "Asia/Kolkata"])
        #expect(config.rollup.timeZone == "Asia/Kolkata")
        #expect(config.rollup.pollInterval == .seconds(5))
    }

    @Test func theSampleFileIsValidAndDocumentsEveryKey() async throws {
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/rollupd.yaml").path
        _ = try await RollupdConfig.load(path: sample, environment: [:])
        let text = try String(contentsOfFile: sample, encoding: .utf8)
        for key in ConfigKeys.all {
            let leaf = String(key.name.split(separator: ".")[1])
            #expect(text.contains("  \(leaf):"), "config/rollupd.yaml does not document \(key.name)")
        }
    }

    // MARK: channels

    func load(_ yaml: String, environment: [String: String] = [:]) async throws -> RollupdConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-\(UUID()).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await RollupdConfig.load(path: path, environment: environment)
    }

    @Test func channelsAreReadWithTheirSecretsFromFilesOrTheEnvironment() async throws {
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-url-\(UUID())").path
        try "https://hooks.slack.com/services/T1/B2/tok3n\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secretFile) }
        let config = try await load("""
            channels:
              default:
                url_file: \(secretFile)
              finance_ops:
                url: https://example.com/hook
                format: json
            """, environment: ["ROLLUPD_CHANNELS_FINANCE_OPS_SIGNING_SECRET": "whsec_c2VjcmV0"])
        #expect(config.channels["default"] == RollupdConfig.Channel(name: "default", url: "https://hooks.slack.com/services/T1/B2/tok3n", format: .slack))
        #expect(config.channels["finance_ops"]?.format == .json)
        #expect(config.channels["finance_ops"]?.signingSecret == "whsec_c2VjcmV0")
        let printed = config.redactedSummary.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\(config.channels)"
        #expect(!printed.contains("tok3n") && !printed.contains("example.com") && !printed.contains("c2VjcmV0"))
    }

    /// A bad value read from a *_file is reported under the *_file key, where the operator must look.
    @Test func aBadValueFromAFileNamesTheFileKey() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rollupd-secret-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        for (yaml, contents, key) in [
            ("channels:\n  default:\n    url_file: \(file)\n", "ftp://example.com/x", "channels.default.url_file"),
            ("channels:\n  default:\n    url: https://example.com/x\n    signing_secret_file: \(file)\n", "whsec_%%%",
             "channels.default.signing_secret_file"),
            ("database:\n  url_file: \(file)\n", "host='unterminated", "database.url_file"),
        ] {
            try (contents + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            await #expect {
                _ = try await load(yaml)
            } throws: { error in
                (error as? ConfigError)?.key == key && !"\(error)".contains("example.com") && !"\(error)".contains("%%%")
            }
        }
    }

    @Test func anEnvironmentVariableForAChannelTheFileDoesNotNameIsAnError() async throws {
        // Keys of a named channel may come from the environment alone.
        let config = try await load("channels:\n  ops: {}\n", environment: ["ROLLUPD_CHANNELS_OPS_URL": "https://example.com/hook"])
        #expect(config.channels["ops"]?.url == "https://example.com/hook")
        await #expect {
            _ = try await load("channels:\n  ops: {}\n", environment: ["ROLLUPD_CHANNELS_OPS_URL": "https://example.com/hook",
                                                                       "ROLLUPD_CHANNELS_FINANCE_URL": "https://example.com/other"])
        } throws: { error in
            (error as? ConfigError)?.key == "ROLLUPD_CHANNELS_FINANCE_URL" && !"\(error)".contains("example.com")
        }
    }

    @Test(arguments: [
        ("channels:\n  default:\n    url: ftp://example.com/x\n", "channels.default.url"),
        ("channels:\n  default:\n    format: json\n", "channels.default.url"),
        ("channels:\n  default:\n    url: https://example.com/x\n    format: teams\n", "channels.default.format"),
        ("channels:\n  default:\n    url: https://example.com/x\n    urll: y\n", "channels.default.urll"),
        ("channels:\n  Ops-Team:\n    url: https://example.com/x\n", "channels.Ops-Team"),
        ("channels:\n  default:\n    url: https://example.com/x\n    signing_secret: whsec_%%%\n", "channels.default.signing_secret"),
        ("budgets:\n  week_start: friday\n", "budgets.week_start"),
        ("budgets:\n  forecast_after_days: soon\n", "budgets.forecast_after_days"),
        ("alerts:\n  max_age: forever\n", "alerts.max_age"),
    ])
    func aBadChannelOrBudgetSettingNamesItsKeyAndHidesSecrets(yaml: String, key: String) async {
        await #expect {
            _ = try await load(yaml)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == key && !error.description.contains("example.com") && !error.description.contains("%%%")
        }
    }
}
