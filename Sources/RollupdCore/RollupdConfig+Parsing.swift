import Configuration
import Foundation
import Logging
import Postgres
import SystemPackage
import Yams

extension RollupdConfig {
    /// Loads the YAML file at `path`, applies ROLLUPD_* environment overrides, and validates.
    /// All of `run`, `once`, `check-config` and reloads come through here.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ConfigError) -> RollupdConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw ConfigError(key: nil, "file \(path) \(reason) (set --config or ROLLUPD_CONFIG)")
        }
        let named = try checkKnownKeys(yaml: text, path: path)
        try checkChannelEnvironment(environment, channels: named.channels)
        let file: FileProvider<YAMLSnapshot>
        do {
            file = try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
        } catch {
            throw ConfigError(key: nil, "file \(path) is not valid YAML: \(error)")
        }
        let overrides = EnvironmentVariablesProvider(environmentVariables: environment)
            .prefixKeys(with: ["rollupd"])
        return try parse(ConfigReader(providers: [overrides, file]), channelNames: named.channels, sourceNames: named.sources)
    }

    /// Validates every key. Values are read as text and parsed here, so a malformed value is an
    /// error naming its key instead of a silent fall-back to the default.
    /// - Parameter channelNames: the names under `channels:` in the file (the one section whose
    ///   keys the operator chooses).
    /// - Parameter sourceNames: the names under `sources:` (the other such section).
    public static func parse(_ reader: ConfigReader, channelNames: [String] = [], sourceNames: [String] = []) throws(ConfigError) -> RollupdConfig {
        func text(_ key: String) -> String {
            let secret = ConfigKeys.all.first { $0.name == key }?.isSecret ?? false
            return reader.string(forKey: ConfigKey(key), isSecret: secret)?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ConfigKeys.defaultValue(key)
        }
        func duration(_ key: String, minimum: Duration = .zero) throws(ConfigError) -> Duration {
            let raw = text(key)
            guard let value = parseDuration(raw) else {
                throw ConfigError(key: key, "'\(raw)' is not a duration (examples: 250ms, 5s, 2m, 1h, 30d, or 2 for seconds)")
            }
            guard value >= minimum else {
                throw ConfigError(key: key, "\(raw) is below the minimum of \(minimum.compactDescription)")
            }
            return value
        }
        func bool(_ key: String) throws(ConfigError) -> Bool {
            switch text(key).lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            case let other: throw ConfigError(key: key, "'\(other)' is not true or false")
            }
        }

        let (conninfo, conninfoKey) = try valueOrFile("database.url", value: text("database.url"), file: text("database.url_file"))
        do {
            try PGConnectionSettings(conninfo: conninfo).validate()
        } catch {
            throw ConfigError(key: conninfoKey, "not a valid libpq connection string: \(error.message)")
        }

        let zone = text("rollup.time_zone")
        guard TimeZone(identifier: zone) != nil else {
            throw ConfigError(key: "rollup.time_zone", "'\(zone)' is not an IANA time zone (examples: UTC, Asia/Kolkata, America/Los_Angeles)")
        }

        let lockKeyText = text("leader.lock_key")
        guard let lockKey = Int64(lockKeyText), lockKey >= 0 else {
            throw ConfigError(key: "leader.lock_key", "'\(lockKeyText)' is not a non-negative 64-bit integer")
        }

        let levelText = text("log.level").lowercased()
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigError(key: "log.level", "'\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }

        func count(_ key: String, minimum: Int) throws(ConfigError) -> Int {
            let raw = text(key)
            guard let value = Int(raw), value >= minimum else {
                throw ConfigError(key: key, "'\(raw)' is not a whole number of at least \(minimum)")
            }
            return value
        }
        let retention = Retention(
            interval: try duration("retention.interval", minimum: .seconds(1)),
            batchSize: try count("retention.batch_size", minimum: 1),
            batchPause: try duration("retention.batch_pause"),
            lockTimeout: try duration("retention.lock_timeout", minimum: .milliseconds(10)),
            statementTimeout: try duration("retention.statement_timeout", minimum: .milliseconds(100)),
            maxRowsPerRun: try count("retention.max_rows_per_run", minimum: 1),
            events: try duration("retention.events"),
            analyticsEvents: try duration("retention.analytics_events"),
            costAggregates: try duration("retention.cost_aggregates"),
            hourlyRollups: try duration("retention.hourly_rollups"))
        // A rollup deleted while its raw rows remain would come back partial when one of those rows
        // changed, so rollups must be kept at least as long as the rows they are made of.
        for (rollupKey, rollup, rawKey, raw) in [
            ("retention.cost_aggregates", retention.costAggregates, "retention.events", retention.events),
            ("retention.hourly_rollups", retention.hourlyRollups, "retention.analytics_events", retention.analyticsEvents),
        ] where rollup != .zero && (raw == .zero || rollup < raw) {
            throw ConfigError(key: rollupKey, "\(rollup.compactDescription) is shorter than \(rawKey) (\(raw == .zero ? "forever" : raw.compactDescription)); keep rollups at least as long as their raw rows")
        }

        let listenText = text("metrics.listen")
        var listen: (host: String, port: UInt16)?
        if !["off", "false", "no", ""].contains(listenText.lowercased()) {
            let parts = listenText.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = UInt16(parts[1]),
                  parts[0].split(separator: ".").count == 4, parts[0].split(separator: ".").allSatisfy({ UInt8($0) != nil }) else {
                throw ConfigError(key: "metrics.listen", "'\(listenText)' is not an IPv4 host:port (e.g. 127.0.0.1:9464) or off")
            }
            listen = (String(parts[0]), port)
        }
        let metrics = Metrics(listen: listen, maxLag: try duration("metrics.max_lag", minimum: .seconds(1)))

        let formatText = text("log.format").lowercased()
        guard let format = Log.Format(rawValue: formatText) else {
            throw ConfigError(key: "log.format", "'\(formatText)' is not one of auto, journal, text")
        }

        let budgets = Budgets(
            evaluateInterval: try duration("budgets.evaluate_interval"),
            forecastAfterDays: try {  () throws(ConfigError) -> Double in
                let raw = text("budgets.forecast_after_days")
                guard let days = Double(raw), days >= 0, days <= 31 else {
                    throw ConfigError(key: "budgets.forecast_after_days", "'\(raw)' is not a number of days between 0 and 31")
                }
                return days
            }(),
            periodClosedNotice: try bool("budgets.period_closed_notice"),
            weekStartsOnSunday: try {  () throws(ConfigError) -> Bool in
                switch text("budgets.week_start").lowercased() {
                case "monday": return false
                case "sunday": return true
                case let other: throw ConfigError(key: "budgets.week_start", "'\(other)' is not monday or sunday")
                }
            }())
        let alerts = Alerts(
            connectTimeout: try duration("alerts.connect_timeout", minimum: .milliseconds(100)),
            requestTimeout: try duration("alerts.request_timeout", minimum: .milliseconds(100)),
            retryMaxDelay: try duration("alerts.retry_max_delay", minimum: .seconds(1)),
            maxAge: try duration("alerts.max_age", minimum: .seconds(1)),
            minInterval: try duration("alerts.min_interval"))
        var channels: [String: Channel] = [:]
        for name in channelNames {
            channels[name] = try channel(name, reader: reader)
        }


        let workMem = text("rollup.work_mem")
        guard workMem.wholeMatch(of: /[1-9][0-9]{0,6}(kB|MB|GB)/) != nil else {
            throw ConfigError(key: "rollup.work_mem", "'\(workMem)' is not a PostgreSQL memory size (examples: 64MB, 512MB, 2GB)")
        }
        let schemaName = text("database.schema")
        let schema: SQLIdentifier
        do { schema = try SQLIdentifier(schemaName) } catch { throw ConfigError(key: "database.schema", "\(error)") }
        guard !["rollupd", "pg_catalog", "information_schema"].contains(schemaName), !schemaName.hasPrefix("pg_") else {
            throw ConfigError(key: "database.schema", "'\(schemaName)' is not a product schema (rollupd keeps its own state in schema rollupd)")
        }
        // A source table written without a schema is in the product's schema.
        let sources = try sourceNames.sorted().map { (name) throws(ConfigError) in
            var definition = try source(name, reader: reader)
            if definition.table.schema == nil { definition.table = QualifiedName(schema: schema, name: definition.table.name) }
            return definition
        }
        let applicationName = text("database.application_name")
        guard !applicationName.isEmpty, applicationName.utf8.count <= 63, applicationName.allSatisfy({ $0.isASCII && !$0.isNewline }) else {
            throw ConfigError(key: "database.application_name", "must be 1 to 63 printable ASCII characters")
        }

        let directory = text("migrations.directory")
        guard !directory.isEmpty else { throw ConfigError(key: "migrations.directory", "may not be empty") }

        return RollupdConfig(
            database: Database(
                conninfo: conninfo,
                connectTimeout: try duration("database.connect_timeout", minimum: .seconds(1)),
                statementTimeout: try duration("database.statement_timeout", minimum: .seconds(1)),
                schema: schema,
                applicationName: applicationName
            ),
            migrations: Migrations(directory: directory, applyOnStart: try bool("migrations.apply_on_start")),
            rollup: Rollup(pollInterval: try duration("rollup.poll_interval", minimum: .milliseconds(50)), timeZone: zone,
                           maxRowsPerTransaction: try count("rollup.max_rows_per_transaction", minimum: 1), workMem: workMem),
            leader: Leader(lockKey: lockKey, standbyPoll: try duration("leader.standby_poll", minimum: .milliseconds(100))),
            retention: retention,
            metrics: metrics,
            log: Log(level: level, format: format),
            budgets: budgets,
            alerts: alerts,
            channels: channels,
            sources: sources
        )
    }

    /// `channels.<name>.*`. The URL and secret are never echoed back in an error.
    private static func channel(_ name: String, reader: ConfigReader) throws(ConfigError) -> Channel {
        func text(_ key: String) -> String {
            let known = ConfigKeys.channelKeys.first { $0.name == key }
            return reader.string(forKey: ConfigKey("channels.\(name).\(key)"), isSecret: known?.isSecret ?? false)?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? known?.defaultValue ?? ""
        }
        let prefix = "channels.\(name)."
        let (url, urlKey) = try valueOrFile(prefix + "url", value: text("url"), file: text("url_file"))
        guard !url.isEmpty else {
            throw ConfigError(key: prefix + "url", "channel '\(name)' needs url or url_file")
        }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
              let host = parsed.host, !host.isEmpty else {
            throw ConfigError(key: urlKey, "is not an http:// or https:// URL (value not shown: it is a secret)")
        }
        let formatText = text("format").lowercased()
        guard let format = Channel.Format(rawValue: formatText) else {
            throw ConfigError(key: prefix + "format", "'\(formatText)' is not one of slack, json")
        }
        let (secret, secretKey) = try valueOrFile(prefix + "signing_secret", value: text("signing_secret"), file: text("signing_secret_file"))
        if secret.hasPrefix("whsec_"), Data(base64Encoded: String(secret.dropFirst(6))) == nil {
            throw ConfigError(key: secretKey, "starts with whsec_ but the rest is not base64 (value not shown: it is a secret)")
        }
        return Channel(name: name, url: url, format: format, signingSecret: secret.isEmpty ? nil : secret)
    }

    /// A secret given inline, or the contents of a file (systemd's LoadCredential= puts secrets
    /// in such files); never both. `key` is the inline key; `key_file` names the file. Returns
    /// the value and the key it came from, for errors about it.
    private static func valueOrFile(_ key: String, value: String, file: String) throws(ConfigError) -> (value: String, key: String) {
        let fileKey = key + "_file"
        guard !file.isEmpty else { return (value, key) }
        guard value.isEmpty else {
            throw ConfigError(key: fileKey, "set either \(key) or \(fileKey), not both")
        }
        guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ConfigError(key: fileKey, "cannot read \(file)")
        }
        return (contents.trimmingCharacters(in: .whitespacesAndNewlines), fileKey)
    }

    /// The names the operator chose under `channels:` and `sources:`.
    struct NamedSections {
        var channels: [String] = []
        var sources: [String] = []
    }

    /// Rejects keys rollupd does not know (a typo would otherwise be silently ignored) and sections
    /// written as scalars. Returns the channel and source names found in the file.
    @discardableResult
    static func checkKnownKeys(yaml: String, path: String) throws(ConfigError) -> NamedSections {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(key: nil, "file \(path) is not valid YAML: \(error)")
        }
        guard let root else { return NamedSections() }  // an empty file: all defaults
        guard let sections = root.mapping else {
            throw ConfigError(key: nil, "file \(path) must be a mapping of sections (database:, rollup:, ...)")
        }
        var named = NamedSections()
        for (sectionNode, body) in sections {
            let section = sectionNode.string ?? "\(sectionNode)"
            if section == ConfigKeys.channelSection {
                named.channels = try checkNamedSection(section, body, keys: ConfigKeys.channelKeys, example: "{default: {url_file: ...}}")
                continue
            }
            if section == ConfigKeys.sourceSection {
                named.sources = try checkNamedSection(section, body, keys: ConfigKeys.sourceKeys, example: "{token_usage: {table: ..., kind: cost, ...}}")
                continue
            }
            guard ConfigKeys.names.contains(where: { $0.hasPrefix(section + ".") }) else {
                throw ConfigError(key: section, "unknown section (known: \(knownSections.joined(separator: ", ")))")
            }
            if body.scalar != nil, body.string?.isEmpty ?? false { continue }  // `section:` left empty
            guard let entries = body.mapping else {
                throw ConfigError(key: section, "must be a mapping of keys")
            }
            for (keyNode, value) in entries {
                let key = "\(section).\(keyNode.string ?? "\(keyNode)")"
                guard ConfigKeys.names.contains(key) else {
                    throw ConfigError(key: key, "unknown key")
                }
                guard value.scalar != nil else {
                    throw ConfigError(key: key, "must be a single value, not a list or mapping")
                }
            }
        }
        return named
    }

    /// An environment variable can set a key of a channel the file names, not create a channel
    /// (the names come from the file); one that would is an error instead of being ignored.
    static func checkChannelEnvironment(_ environment: [String: String], channels: [String]) throws(ConfigError) {
        let prefix = RollupdConfig.environmentName(for: ConfigKeys.channelSection) + "_"
        let known = Set(channels.flatMap { name in
            ConfigKeys.channelKeys.map { RollupdConfig.environmentName(for: "\(ConfigKeys.channelSection).\(name).\($0.name)") }
        })
        for variable in environment.keys.sorted() where variable.hasPrefix(prefix) && !known.contains(variable) {
            throw ConfigError(key: variable, "names no channel of the config file (channels there: \(channels.isEmpty ? "none" : channels.sorted().joined(separator: ", "))); add the channel to the file, e.g. `channels: {name: {}}`, and set its keys here")
        }
    }

    /// `channels:` and `sources:` map operator-chosen names to mappings of their section's keys
    /// (`example` shows the shape in the error for a section written otherwise).
    private static func checkNamedSection(_ section: String, _ body: Node, keys: [ConfigKeys.Key], example: String) throws(ConfigError) -> [String] {
        if body.scalar != nil, body.string?.isEmpty ?? false { return [] }
        guard let entries = body.mapping else {
            throw ConfigError(key: section, "must map names to their settings (\(section): \(example))")
        }
        let known = keys.map(\.name).joined(separator: ", ")
        var names: [String] = []
        for (nameNode, settings) in entries {
            let name = nameNode.string ?? "\(nameNode)"
            guard ConfigKeys.isValidName(name) else {
                throw ConfigError(key: "\(section).\(name)", "names use lower-case letters, digits and _ only (they become parts of environment variable names)")
            }
            guard let settings = settings.mapping else {
                throw ConfigError(key: "\(section).\(name)", "must be a mapping of \(known)")
            }
            for (keyNode, value) in settings {
                let key = "\(section).\(name).\(keyNode.string ?? "\(keyNode)")"
                guard ConfigKeys.isKnown(key) else {
                    throw ConfigError(key: key, "unknown key (known: \(known))")
                }
                guard value.scalar != nil else {
                    throw ConfigError(key: key, "must be a single value, not a list or mapping")
                }
            }
            names.append(name)
        }
        return names
    }

    private static var knownSections: [String] {
        Array(Set(ConfigKeys.all.map { String($0.name.split(separator: ".")[0]) } + [ConfigKeys.channelSection, ConfigKeys.sourceSection])).sorted()
    }

    private func keepDescription(_ duration: Duration) -> String {
        duration == .zero ? "0 (forever)" : duration.compactDescription
    }

    /// The effective settings as `check-config` prints them, secrets redacted.
    public var redactedSummary: [(key: String, value: String)] {
        let sourceLines: [(key: String, value: String)] = sources.flatMap(\.summary)
        return baseSummary + sourceLines
    }

    private var baseSummary: [(key: String, value: String)] {
        [
            ("database.url", connectionSettings.redacted),
            ("database.connect_timeout", database.connectTimeout.compactDescription),
            ("database.statement_timeout", database.statementTimeout.compactDescription),
            ("database.schema", database.schema.name),
            ("database.application_name", database.applicationName),
            ("migrations.directory", migrations.directory),
            ("migrations.apply_on_start", String(migrations.applyOnStart)),
            ("rollup.poll_interval", rollup.pollInterval.compactDescription),
            ("rollup.time_zone", rollup.timeZone),
            ("rollup.max_rows_per_transaction", String(rollup.maxRowsPerTransaction)),
            ("rollup.work_mem", rollup.workMem),
            ("leader.lock_key", String(leader.lockKey)),
            ("leader.standby_poll", leader.standbyPoll.compactDescription),
            ("retention.interval", retention.interval.compactDescription),
            ("retention.batch_size", String(retention.batchSize)),
            ("retention.batch_pause", retention.batchPause.compactDescription),
            ("retention.lock_timeout", retention.lockTimeout.compactDescription),
            ("retention.statement_timeout", retention.statementTimeout.compactDescription),
            ("retention.max_rows_per_run", String(retention.maxRowsPerRun)),
            ("retention.events", keepDescription(retention.events)),
            ("retention.analytics_events", keepDescription(retention.analyticsEvents)),
            ("retention.cost_aggregates", keepDescription(retention.costAggregates)),
            ("retention.hourly_rollups", keepDescription(retention.hourlyRollups)),
            ("metrics.listen", metrics.listen.map { "\($0.host):\($0.port)" } ?? "off"),
            ("metrics.max_lag", metrics.maxLag.compactDescription),
            ("log.level", log.level.rawValue),
            ("log.format", log.format.rawValue),
            ("budgets.evaluate_interval", !budgets.enabled ? "0 (budgets off)" : budgets.evaluateInterval.compactDescription),
            ("budgets.forecast_after_days", String(budgets.forecastAfterDays)),
            ("budgets.period_closed_notice", String(budgets.periodClosedNotice)),
            ("budgets.week_start", budgets.weekStartsOnSunday ? "sunday" : "monday"),
            ("alerts.connect_timeout", alerts.connectTimeout.compactDescription),
            ("alerts.request_timeout", alerts.requestTimeout.compactDescription),
            ("alerts.retry_max_delay", alerts.retryMaxDelay.compactDescription),
            ("alerts.max_age", alerts.maxAge.compactDescription),
            ("alerts.min_interval", alerts.minInterval.compactDescription),
        ] + channels.keys.sorted().flatMap { name -> [(key: String, value: String)] in
            let channel = channels[name]!
            return [("channels.\(name).url", "<redacted>"), ("channels.\(name).format", channel.format.rawValue),
                    ("channels.\(name).signing_secret", channel.signingSecret == nil ? "(none)" : "<redacted>")]
        }
    }
}
