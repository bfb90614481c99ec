import ArgumentParser
import Metrics
import Prometheus
import Foundation
import Logging
import Postgres
import RollupdCore
import RollupdDaemon
import RollupdStore
import ServiceLifecycle
import Systemd

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (systemd runs this).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let config = try await global.loadConfig()
        let live = LiveConfig(config, logLevel: SharedLogLevel(config.log.level))
        let logger = global.bootstrapLogging(config, level: live.logLevel)
        let registry = bootstrapMetrics()
        let health = HealthState()
        let path = global.config
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: RollupService(live: live, health: health, logger: logger)),
            .init(service: RetentionService(live: live, logger: logger)),
            .init(service: AlertDeliveryService(live: live, health: health, logger: logger)),
            .init(service: ReloadService(live: live, logger: logger) { try await RollupdConfig.load(path: path) }),
        ]
        if let listen = config.metrics.listen {
            services.append(.init(service: MetricsServer(host: listen.host, port: listen.port, live: live, health: health,
                                                         logger: logger, render: { registry.emitToString() })))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch where DatabaseBootstrap.isFatal(error) {
            logger.critical("\(error)")
            throw ExitStatus.config
        }
    }
}

struct Once: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one complete pass over every source, catching up fully, then exit.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.oneShot { config, logger, session in
            try await catchUpEverySource(config, mode: .incremental, session: session, logger: logger)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations, then exit.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.oneShot { config, logger, session in
            try await DatabaseBootstrap.prepareSchema(config, session: session, logger: logger, force: true, verify: false)
            logger.info("schema is current")
        }
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute the rollups of a time range from the raw events.",
        discussion: """
            Every hour and local day overlapping [--from, --to) is deleted and recomputed in one \
            transaction, together with a normal pass. Times are ISO 8601 (2026-11-01T00:00:00Z) or \
            dates (2026-11-01, UTC midnight). --all recomputes everything from scratch, e.g. after \
            changing rollup.time_zone; rollups older than the raw events still kept are lost then.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Start of the range (inclusive).") var from: String?
    @Option(help: "End of the range (exclusive).") var to: String?
    @Flag(help: "Recompute every rollup from all raw events.") var all = false

    func validate() throws {
        if all { guard from == nil && to == nil else { throw ValidationError("--all takes no --from/--to") }; return }
        guard let from, let to else { throw ValidationError("give --from and --to, or --all") }
        guard let start = parseTime(from) else { throw ValidationError("--from: '\(from)' is not an ISO 8601 time or date") }
        guard let end = parseTime(to) else { throw ValidationError("--to: '\(to)' is not an ISO 8601 time or date") }
        guard start < end else { throw ValidationError("--from must be before --to") }
    }

    @Flag(help: "Rebuild even where retention has already deleted raw events (those buckets come back smaller).")
    var force = false

    func run() async throws {
        let config = try await global.loadConfig()
        let logger = global.bootstrapLogging(config)
        if !all, !force, let from, let start = parseTime(from), let oldest = oldestRebuildableTime(config.retention), start < oldest {
            printError("rollupd: raw events before \(ISO8601DateFormatter().string(from: oldest)) may already be deleted by retention; rebuilding from \(from) would shrink those buckets. Use a later --from, or --force")
            throw ExitCode.failure
        }
        let mode: RollupEngine.Mode = all ? .reset
            : .rebuild(RebuildRange(from: parseTime(from!)!.timeIntervalSince1970, to: parseTime(to!)!.timeIntervalSince1970))
        try await global.oneShot(config: config, logger: logger) { config, logger, session in
            try await catchUpEverySource(config, mode: mode, session: session, logger: logger)
        }
    }
}

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Apply retention once (expired raw rows already rolled up, expired rollups), then exit.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.oneShot { config, logger, session in
            try await DatabaseBootstrap.prepareSchema(config, session: session, logger: logger)
            let reports = try await session.run { try Retention(settings: config.retention).run(on: $0) }
            for report in reports { logger.log(report) }
        }
    }
}

struct PrepareSource: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare-source",
        abstract: "Print (or with --apply, run) the SQL that gives a configured source's table change tracking.",
        discussion: """
            Adds to the operator's table a rollupd_xid xid8 column (DEFAULT pg_current_xact_id(); \
            existing rows stay NULL and are counted by the first pass), an index on it, and \
            BEFORE UPDATE/DELETE triggers that save old rows for subtraction; then records the \
            source in rollupd.sources. ALTER TABLE and CREATE TRIGGER lock the table briefly. \
            Idempotent: run it again after changing the source's mapping.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The source's name (sources.<name> in the configuration).") var name: String
    @Flag(help: "Run the SQL in one transaction instead of printing it.") var apply = false

    func run() async throws {
        let config = try await global.loadConfig()
        guard let source = config.sources.first(where: { $0.name == name }) else {
            let known = config.sources.map(\.name)
            printError("rollupd: no source '\(name)' in \(global.config) (configured: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            throw ExitStatus.config
        }
        guard apply else {
            print(SourcePreparation.sql(for: source), terminator: "")
            return
        }
        let logger = global.bootstrapLogging(config)
        try await global.oneShot(config: config, logger: logger) { config, logger, session in
            try await DatabaseBootstrap.prepareSchema(config, session: session, logger: logger, verify: false)
            let exists = try await session.run {
                try $0.query("SELECT to_regclass($1) IS NOT NULL", [source.table.quoted]).singleRow("table").bool(0)
            }
            guard exists else {
                throw DeploymentError(problems: [DeploymentProblem(
                    object: source.table.quoted,
                    problem: "table not found: sources.\(source.name).table names it (a table without a schema is in database.schema)")])
            }
            let steps = try await session.run { try SourcePreparation.apply(source, on: $0) { logger.warning("\($0)") } }
            for step in steps { logger.notice("\(step)") }
            logger.notice("source prepared", metadata: ["source": "\(source.name)", "table": "\(source.table.quoted)"])
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the effective settings (secrets redacted); exit 0 or 78.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let config = try await global.loadConfig()
        print("# \(global.config): valid")
        for (key, value) in config.redactedSummary {
            print("\(key): \(value)")
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show watermarks, lag, the last pass and pending work, read from the database.",
        discussion: "Exits 1 when unhealthy (no leader, a source never rolled up or lagging more than metrics.max_lag, retention stopped early), so it can serve as a check.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        try await global.oneShot { config, logger, session in
            let report = try await session.run { try StatusReport.read(lockKey: config.leader.lockKey, configured: config.sources, on: $0) }
            let problems = report.problems(maxLag: config.metrics.maxLag.seconds)
            if json {
                try printJSON(StatusJSON(healthy: problems.isEmpty, problems: problems, status: report))
            } else {
                print(StatusText.render(report))
                print(problems.isEmpty ? "\nhealthy" : "\nUNHEALTHY:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
            }
            if !problems.isEmpty { throw ExitCode.failure }
        }
    }
}

extension GlobalOptions {
    /// A one-shot command: configuration, logging, one session. Errors are printed once and exit
    /// non-zero (78 for configuration mismatches such as a changed time zone).
    func oneShot(
        config preloaded: RollupdConfig? = nil, logger prepared: Logger? = nil,
        _ body: (RollupdConfig, Logger, DatabaseSession) async throws -> Void
    ) async throws {
        let config = if let preloaded { preloaded } else { try await loadConfig() }
        let logger = prepared ?? bootstrapLogging(config)
        let session = DatabaseBootstrap.session(for: config, label: "rollupd.cli")
        defer { Task { await session.close() } }
        do {
            try await body(config, logger, session)
        } catch where DatabaseBootstrap.isFatal(error) {
            logger.critical("\(error)")
            throw ExitStatus.config
        } catch let error as ExitCode {
            throw error
        } catch {
            logger.error("\(ErrorHints.describe(error, config: config))")
            throw ExitCode.failure
        }
    }
}

/// `rollupd status --json`: the verdict first, then the state it was drawn from.
struct StatusJSON: Encodable {
    let healthy: Bool
    let problems: [String]
    let status: StatusReport
}

/// The Prometheus backend for swift-metrics, bootstrapped once per process.
func bootstrapMetrics() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    // Passes take milliseconds when idle and up to minutes when catching up.
    factory.defaultDurationHistogramBuckets = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]
    MetricsSystem.bootstrap(factory)
    Gauge(label: "rollupd_build_info", dimensions: [("version", rollupdVersion)]).record(1)
    return registry
}

/// `once` and `rebuild`: migrate if configured, then catch every source up (and rebuild, by mode).
func catchUpEverySource(_ config: RollupdConfig, mode: RollupEngine.Mode, session: DatabaseSession, logger: Logger) async throws {
    try await DatabaseBootstrap.prepareSchema(config, session: session, logger: logger)
    let engine = RollupEngine(timeZone: config.rollup.timeZone, maxRowsPerTransaction: config.rollup.maxRowsPerTransaction,
                              workMem: config.rollup.workMem)
    let reports = try await session.run { connection in
        try RollupSource.all(configured: config.sources).map { source in
            var progress = CatchUpProgress()
            return try engine.catchUp(source, mode: mode, on: connection) { report, connection in
                if report.remaining { logger.log(report) }  // at debug level: each bounded transaction
                let event = progress.record(rows: report.counts.added + report.counts.removed, remaining: report.remaining, now: .now)
                if case .progress(let rows, let elapsed) = event {
                    logger.catchingUp(source, rows: rows, elapsed: elapsed, left: try engine.backlogEstimate(source, on: connection))
                }
            }
        }
    }
    for report in reports { logger.log(report) }
    // Alerts are recorded here; the daemon delivers them.
    if config.budgets.enabled {
        let evaluator = BudgetEvaluator(config)
        logger.log(try await session.run { try evaluator.evaluate(on: $0) })
    }
}

/// The oldest time whose raw rows retention still keeps, if retention deletes any.
func oldestRebuildableTime(_ retention: RollupdConfig.Retention) -> Date? {
    let kept = [retention.events, retention.analyticsEvents].filter { $0 != .zero }
    guard let shortest = kept.min() else { return nil }
    return Date().addingTimeInterval(-shortest.seconds)
}

/// ISO 8601 with or without fractional seconds, or a bare date (UTC midnight).
func parseTime(_ text: String) -> Date? {
    let withFraction = ISO8601DateFormatter()
    withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = withFraction.date(from: text) { return date }
    if let date = ISO8601DateFormatter().date(from: text) { return date }
    let dateOnly = ISO8601DateFormatter()
    dateOnly.formatOptions = [.withFullDate]
    return dateOnly.date(from: text)
}
