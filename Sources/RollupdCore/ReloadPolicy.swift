/// Which changes a reload may apply. Pure, so the rule is tested without signals.
public enum ReloadPolicy {
    /// Keys whose new value needs a restart: the connection, the schema, the leader lock, the
    /// zone the day buckets are built in, and how logging is wired.
    public static func keysNeedingRestart(from old: RollupdConfig, to new: RollupdConfig) -> [String] {
        var keys: [String] = []
        if old.database != new.database { keys.append("database.*") }
        if old.migrations != new.migrations { keys.append("migrations.*") }
        if old.rollup.timeZone != new.rollup.timeZone { keys.append("rollup.time_zone") }
        if old.leader.lockKey != new.leader.lockKey { keys.append("leader.lock_key") }
        if old.log.format != new.log.format { keys.append("log.format") }
        // The webhook client is built with it once; channels and every other alerts.* key reload.
        if old.alerts.connectTimeout != new.alerts.connectTimeout { keys.append("alerts.connect_timeout") }
        // A source's table and triggers are prepared deliberately; a new mapping starts with a restart.
        if old.sources != new.sources { keys.append("sources.*") }
        if old.metrics.listen?.host != new.metrics.listen?.host || old.metrics.listen?.port != new.metrics.listen?.port {
            keys.append("metrics.listen")
        }
        return keys
    }
}
