import Logging
import Postgres

/// rollupd's settings, validated. Built only through `RollupdConfig.parse(_:)` (ConfigReader.swift),
/// which `run`, `once`, `check-config` and SIGHUP reloads all share.
///
/// Every key below can be set in the YAML file or overridden by an environment variable named
/// `ROLLUPD_` + the key in upper case with dots as underscores (`rollup.poll_interval` ->
/// `ROLLUPD_ROLLUP_POLL_INTERVAL`). config/rollupd.yaml documents each one.
public struct RollupdConfig: Sendable, Equatable {
    public struct Database: Sendable, Equatable {
        /// `database.url`: libpq connection string or URI; empty means libpq's environment. Secret.
        public var conninfo: String
        /// `database.connect_timeout`: used when the conninfo and PGCONNECT_TIMEOUT say nothing.
        public var connectTimeout: Duration
        /// `database.statement_timeout`: the longest any single statement of rollupd may run.
        public var statementTimeout: Duration
    }

    public struct Migrations: Sendable, Equatable {
        /// `migrations.directory`: where the numbered .sql files are.
        public var directory: String
        /// `migrations.apply_on_start`: `run` and `once` apply pending migrations first.
        public var applyOnStart: Bool
    }

    public struct Rollup: Sendable, Equatable {
        /// `rollup.poll_interval`: time between passes when there is nothing left to do.
        public var pollInterval: Duration
        /// `rollup.time_zone`: IANA zone whose calendar days the `day` rollups follow.
        public var timeZone: String
    }

    public struct Leader: Sendable, Equatable {
        /// `leader.lock_key`: the PostgreSQL advisory lock that makes one instance the leader.
        public var lockKey: Int64
        /// `leader.standby_poll`: how often a standby tries to become leader.
        public var standbyPoll: Duration
    }

    public struct Log: Sendable, Equatable {
        /// `log.level`: trace, debug, info, notice, warning, error or critical.
        public var level: Logger.Level
    }

    public var database: Database
    public var migrations: Migrations
    public var rollup: Rollup
    public var leader: Leader
    public var log: Log

    public var connectionSettings: PGConnectionSettings {
        PGConnectionSettings(
            conninfo: database.conninfo,
            defaultConnectTimeoutSeconds: Int(database.connectTimeout.components.seconds)
        )
    }

    /// The environment variable that overrides a key.
    public static func environmentName(for key: String) -> String {
        "ROLLUPD_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }
}
