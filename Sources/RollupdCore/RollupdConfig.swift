import Logging
import Postgres

/// rollupd's settings, validated. Built only through `RollupdConfig.parse(_:)` (ConfigReader.swift),
/// which `run`, `once`, `check-config` and SIGHUP reloads all share.
///
/// Every key below can be set in the YAML file or overridden by an environment variable named
/// `ROLLUPD_` + the key in upper case with dots as underscores (`rollup.poll_interval` ->
/// `ROLLUPD_ROLLUP_POLL_INTERVAL`). config/rollupd.yaml documents each one.
public struct RollupdConfig: Sendable, Equatable {
    public struct Database: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
        /// `database.url`: libpq connection string or URI; empty means libpq's environment. Secret.
        public var conninfo: String
        /// `database.connect_timeout`: used when the conninfo and PGCONNECT_TIMEOUT say nothing.
        public var connectTimeout: Duration
        /// `database.statement_timeout`: the longest any single statement of rollupd may run.
        public var statementTimeout: Duration
        /// `database.schema`: the product's schema, where its source tables are and where
        /// `cost_aggregates` and `hourly_rollups` go. rollupd's own state is in schema `rollupd`.
        public var schema: SQLIdentifier = .public
        /// `database.application_name`: what pg_stat_activity shows for rollupd's connections.
        public var applicationName: String = "rollupd"

        /// Whatever prints a configuration (a library's debug log included) sees no password.
        public var description: String {
            "Database(conninfo: \(PGConnectionSettings(conninfo: conninfo).redacted), connectTimeout: \(connectTimeout), statementTimeout: \(statementTimeout), schema: \(schema.name), applicationName: \(applicationName))"
        }

        public var debugDescription: String { description }
    }

    public struct Migrations: Sendable, Equatable {
        /// `migrations.directory`: where the numbered .sql files are.
        public var directory: String
        /// `migrations.apply_on_start`: `run` and `once` apply pending migrations first.
        public var applyOnStart: Bool
    }

    public struct Rollup: Sendable, Equatable {
        /// `rollup.poll_interval`: the pause after each pass before the next.
        public var pollInterval: Duration
        /// `rollup.time_zone`: IANA zone whose calendar days the `day` rollups follow.
        public var timeZone: String
        /// `rollup.max_rows_per_transaction`: the most source rows (or saved old versions) one
        /// transaction of a pass takes; a larger backlog is rolled up in several, each committed.
        public var maxRowsPerTransaction: Int = 100_000
        /// `rollup.work_mem`: PostgreSQL's work_mem inside a pass (`64MB`, `1GB`), so a bounded
        /// transaction's aggregation hashes in memory; the most a pass asks of the server.
        public var workMem: String = "128MB"
    }

    public struct Leader: Sendable, Equatable {
        /// `leader.lock_key`: the PostgreSQL advisory lock that makes one instance the leader.
        public var lockKey: Int64
        /// `leader.standby_poll`: how often a standby tries to become leader.
        public var standbyPoll: Duration
    }

    /// How long rows are kept. A zero duration keeps that table forever.
    public struct Retention: Sendable, Equatable {
        /// `retention.interval`: time between retention runs.
        public var interval: Duration
        /// `retention.batch_size`: rows deleted per transaction.
        public var batchSize: Int
        /// `retention.batch_pause`: pause between batches, so the product's writes keep flowing.
        public var batchPause: Duration
        /// `retention.lock_timeout`: a batch that would wait longer for a lock gives up until the next run.
        public var lockTimeout: Duration
        /// `retention.statement_timeout`: the longest one batch may run.
        public var statementTimeout: Duration
        /// `retention.max_rows_per_run`: per table; a larger backlog drains over several runs.
        public var maxRowsPerRun: Int
        /// `retention.events`, `retention.analytics_events`: raw rows, by their event time.
        public var events: Duration
        public var analyticsEvents: Duration
        /// `retention.cost_aggregates`, `retention.hourly_rollups`: rollups, by bucket start.
        public var costAggregates: Duration
        public var hourlyRollups: Duration

        public init(
            interval: Duration = .seconds(3600), batchSize: Int = 10_000, batchPause: Duration = .milliseconds(100),
            lockTimeout: Duration = .seconds(1), statementTimeout: Duration = .seconds(30), maxRowsPerRun: Int = 1_000_000,
            events: Duration = .seconds(30 * 86400), analyticsEvents: Duration = .seconds(30 * 86400),
            costAggregates: Duration = .seconds(90 * 86400), hourlyRollups: Duration = .seconds(90 * 86400)
        ) {
            self.interval = interval
            self.batchSize = batchSize
            self.batchPause = batchPause
            self.lockTimeout = lockTimeout
            self.statementTimeout = statementTimeout
            self.maxRowsPerRun = maxRowsPerRun
            self.events = events
            self.analyticsEvents = analyticsEvents
            self.costAggregates = costAggregates
            self.hourlyRollups = hourlyRollups
        }
    }

    public struct Metrics: Sendable, Equatable {
        /// `metrics.listen`: `host:port` of the /metrics and /healthz listener (IPv4), or `off`.
        /// Port 0 picks a free port (logged at start).
        public var listen: (host: String, port: UInt16)?
        /// `metrics.max_lag`: /healthz and `rollupd status` report unhealthy above this rollup lag.
        public var maxLag: Duration

        public static func == (lhs: Metrics, rhs: Metrics) -> Bool {
            lhs.listen?.host == rhs.listen?.host && lhs.listen?.port == rhs.listen?.port && lhs.maxLag == rhs.maxLag
        }
    }

    public struct Log: Sendable, Equatable {
        /// `log.level`: trace, debug, info, notice, warning, error or critical.
        public var level: Logger.Level
        /// `log.format`: `journal` (native entries with fields), `text` (`<N>` lines on stderr), or
        /// `auto`: journal when stderr is connected to journald, text otherwise.
        public var format: Format

        public enum Format: String, Sendable, Equatable, CaseIterable {
            case auto, journal, text
        }
    }

    /// How budgets are evaluated (the budgets themselves live in the `budgets` table).
    public struct Budgets: Sendable, Equatable {
        /// `budgets.evaluate_interval`: spend is evaluated after every pass that changed cost
        /// rollups, and at least this often (period rollovers, forecasts). 0 turns budgets off.
        public var evaluateInterval: Duration
        /// `budgets.forecast_after_days`: days of a period that must pass before a forecast.
        public var forecastAfterDays: Double
        /// `budgets.period_closed_notice`: a notice when a period in which a budget alerted ends.
        public var periodClosedNotice: Bool
        /// `budgets.week_start`: weeks start on Monday (ISO) or Sunday.
        public var weekStartsOnSunday: Bool

        /// An evaluate_interval of 0 turns budgets off.
        public var enabled: Bool { evaluateInterval != .zero }

        public init(evaluateInterval: Duration = .seconds(60), forecastAfterDays: Double = 3, periodClosedNotice: Bool = false, weekStartsOnSunday: Bool = false) {
            self.evaluateInterval = evaluateInterval
            self.forecastAfterDays = forecastAfterDays
            self.periodClosedNotice = periodClosedNotice
            self.weekStartsOnSunday = weekStartsOnSunday
        }
    }

    /// How alerts are delivered to channels.
    public struct Alerts: Sendable, Equatable {
        /// `alerts.connect_timeout`, `alerts.request_timeout`: per HTTP attempt.
        public var connectTimeout: Duration
        public var requestTimeout: Duration
        /// `alerts.retry_max_delay`: the longest wait between two attempts (exponential backoff with jitter).
        public var retryMaxDelay: Duration
        /// `alerts.max_age`: an alert still undelivered this long after it was recorded is marked failed.
        public var maxAge: Duration
        /// `alerts.min_interval`: at most one message per this interval per channel.
        public var minInterval: Duration

        public init(connectTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(10), retryMaxDelay: Duration = .seconds(300),
                    maxAge: Duration = .seconds(86400), minInterval: Duration = .seconds(1)) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.retryMaxDelay = retryMaxDelay
            self.maxAge = maxAge
            self.minInterval = minInterval
        }
    }

    /// A webhook channel, `channels.<name>.*`. Its URL and secret are secrets: never logged.
    public struct Channel: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
        public enum Format: String, Sendable, Equatable, CaseIterable {
            /// Slack incoming-webhook body: `text` (complete on its own) plus `blocks`.
            case slack
            /// rollupd's documented JSON document (README, "Alert payloads").
            case json
        }

        public var name: String
        public var url: String
        public var format: Format
        /// Adds Standard Webhooks headers when set. `whsec_<base64>` is decoded; anything else is used as bytes.
        public var signingSecret: String?

        public init(name: String, url: String, format: Format = .slack, signingSecret: String? = nil) {
            self.name = name
            self.url = url
            self.format = format
            self.signingSecret = signingSecret
        }

        public var description: String { "Channel(\(name), \(format.rawValue), url: <redacted>\(signingSecret == nil ? "" : ", signed"))" }
        public var debugDescription: String { description }
    }

    public var database: Database
    public var migrations: Migrations
    public var rollup: Rollup
    public var leader: Leader
    public var retention: Retention
    public var metrics: Metrics
    public var log: Log
    public var budgets: Budgets = Budgets()
    public var alerts: Alerts = Alerts()
    /// By name; budgets name their channel (default 'default').
    public var channels: [String: Channel] = [:]
    /// `sources.<name>.*`, by name: the operator's tables rolled up beside events and analytics_events.
    public var sources: [SourceDefinition] = []

    public var connectionSettings: PGConnectionSettings {
        PGConnectionSettings(
            conninfo: database.conninfo,
            applicationName: database.applicationName,
            defaultConnectTimeoutSeconds: Int(database.connectTimeout.components.seconds)
        )
    }

    /// The environment variable that overrides a key.
    public static func environmentName(for key: String) -> String {
        "ROLLUPD_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }
}
