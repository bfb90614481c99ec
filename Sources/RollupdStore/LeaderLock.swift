import Postgres

/// Leadership is a session-level advisory lock: held while the leader's connection lives, released
/// by the server the moment that connection dies, so a standby can take over.
public enum LeaderLock {
    /// True if this connection holds the lock now, taking it if it is free. Asking first (through
    /// pg_locks) keeps a leader from stacking the same lock on every poll.
    public static func acquire(key: Int64, on connection: PGConnection) throws -> Bool {
        try connection.query("""
            SELECT CASE WHEN EXISTS (
                SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
                  AND ((classid::bigint << 32) | objid::bigint) = $1::bigint)
            THEN true ELSE pg_try_advisory_lock($1::bigint) END
            """, [key], context: "leader lock").singleRow("leader lock").bool(0)
    }

    /// The backend pid and application name of whoever holds the lock, if anyone.
    public static func holder(key: Int64, on connection: PGConnection) throws -> (pid: Int, application: String)? {
        let rows = try connection.query("""
            SELECT l.pid, coalesce(a.application_name, '')
            FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint
            """, [key], context: "leader lookup").rows
        guard let row = rows.first else { return nil }
        return (try row.int(0), try row.string(1))
    }
}
