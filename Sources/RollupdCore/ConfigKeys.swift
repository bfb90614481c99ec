/// Every key rollupd reads, with its default as the YAML file would spell it. The sample file,
/// the unknown-key check and `check-config` all work from this one list.
public enum ConfigKeys {
    public struct Key: Sendable {
        public let name: String
        public let defaultValue: String
        public let isSecret: Bool
    }

    public static let all: [Key] = [
        Key(name: "database.url", defaultValue: "", isSecret: true),
        Key(name: "database.url_file", defaultValue: "", isSecret: false),
        Key(name: "database.connect_timeout", defaultValue: "10s", isSecret: false),
        Key(name: "database.statement_timeout", defaultValue: "5m", isSecret: false),
        Key(name: "database.schema", defaultValue: "public", isSecret: false),
        Key(name: "database.application_name", defaultValue: "rollupd", isSecret: false),
        Key(name: "migrations.directory", defaultValue: "/usr/share/rollupd/migrations", isSecret: false),
        Key(name: "migrations.apply_on_start", defaultValue: "true", isSecret: false),
        Key(name: "rollup.poll_interval", defaultValue: "1s", isSecret: false),
        Key(name: "rollup.time_zone", defaultValue: "UTC", isSecret: false),
        Key(name: "rollup.max_rows_per_transaction", defaultValue: "100000", isSecret: false),
        Key(name: "rollup.work_mem", defaultValue: "128MB", isSecret: false),
        Key(name: "leader.lock_key", defaultValue: "7262657", isSecret: false),
        Key(name: "leader.standby_poll", defaultValue: "5s", isSecret: false),
        Key(name: "retention.interval", defaultValue: "1h", isSecret: false),
        Key(name: "retention.batch_size", defaultValue: "10000", isSecret: false),
        Key(name: "retention.batch_pause", defaultValue: "100ms", isSecret: false),
        Key(name: "retention.lock_timeout", defaultValue: "1s", isSecret: false),
        Key(name: "retention.statement_timeout", defaultValue: "30s", isSecret: false),
        Key(name: "retention.max_rows_per_run", defaultValue: "1000000", isSecret: false),
        Key(name: "retention.events", defaultValue: "30d", isSecret: false),
        Key(name: "retention.analytics_events", defaultValue: "30d", isSecret: false),
        Key(name: "retention.cost_aggregates", defaultValue: "90d", isSecret: false),
        Key(name: "retention.hourly_rollups", defaultValue: "90d", isSecret: false),
        Key(name: "metrics.listen", defaultValue: "127.0.0.1:9464", isSecret: false),
        Key(name: "metrics.max_lag", defaultValue: "5m", isSecret: false),
        Key(name: "budgets.evaluate_interval", defaultValue: "1m", isSecret: false),
        Key(name: "budgets.forecast_after_days", defaultValue: "3", isSecret: false),
        Key(name: "budgets.period_closed_notice", defaultValue: "false", isSecret: false),
        Key(name: "budgets.week_start", defaultValue: "monday", isSecret: false),
        Key(name: "alerts.connect_timeout", defaultValue: "5s", isSecret: false),
        Key(name: "alerts.request_timeout", defaultValue: "10s", isSecret: false),
        Key(name: "alerts.retry_max_delay", defaultValue: "5m", isSecret: false),
        Key(name: "alerts.max_age", defaultValue: "24h", isSecret: false),
        Key(name: "alerts.min_interval", defaultValue: "1s", isSecret: false),
        Key(name: "log.level", defaultValue: "info", isSecret: false),
        Key(name: "log.format", defaultValue: "auto", isSecret: false),
    ]

    public static let names: Set<String> = Set(all.map(\.name))

    /// `channels` is the one section whose entries are named by the operator: `channels.<name>.<key>`.
    public static let channelSection = "channels"
    public static let channelKeys: [Key] = [
        Key(name: "url", defaultValue: "", isSecret: true),
        Key(name: "url_file", defaultValue: "", isSecret: false),
        Key(name: "format", defaultValue: "slack", isSecret: false),
        Key(name: "signing_secret", defaultValue: "", isSecret: true),
        Key(name: "signing_secret_file", defaultValue: "", isSecret: false),
    ]

    /// `sources.<name>.<key>`: tables the operator maps onto rollupd's fields (SourceDefinition).
    public static let sourceSection = "sources"
    /// The fields each kind of source maps, required ones first. A field's value is a column,
    /// `column->key` (a jsonb key), `=text` (a constant) or empty (not mapped).
    public static let sourceFields: [SourceDefinition.Kind: (required: [String], optional: [String])] = [
        .cost: (["project_id", "feature", "model", "created_at", "input_tokens", "output_tokens"],
                ["user_id", "provider", "latency_ms", "cost_usd"]),
        .analytics: (["session_id", "event_type", "occurred_at"], ["tool_name", "risk_mode"]),
    ]
    public static let sourceKeys: [Key] = [
        Key(name: "table", defaultValue: "", isSecret: false),
        Key(name: "kind", defaultValue: "", isSecret: false),
        Key(name: "id", defaultValue: "id", isSecret: false),
        Key(name: "cost_unit", defaultValue: "usd", isSecret: false),
    ] + Set(sourceFields.values.flatMap { $0.required + $0.optional }).sorted().map {
        Key(name: $0, defaultValue: "", isSecret: false)
    }

    /// Whether `key` is a known key: a fixed one, `channels.<valid name>.<channel key>` or
    /// `sources.<valid name>.<source key>`.
    public static func isKnown(_ key: String) -> Bool {
        if names.contains(key) { return true }
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, isValidName(String(parts[1])) else { return false }
        if parts[0] == channelSection { return channelKeys.contains { $0.name == parts[2] } }
        if parts[0] == sourceSection { return sourceKeys.contains { $0.name == parts[2] } }
        return false
    }

    /// A channel or source name: lower-case letters, digits and underscores, so every key maps to
    /// an environment variable.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    static func defaultValue(_ name: String) -> String {
        all.first { $0.name == name }!.defaultValue
    }
}
