import Postgres
import RollupdCore

/// What a configured source's table needs for exactly-once rollups, as SQL the operator reads
/// (`rollupd prepare-source <name>`) and runs deliberately (`--apply`, or psql):
///
/// - `rollupd_xid xid8 DEFAULT pg_current_xact_id()`: the writing transaction of each row, so a
///   pass can take exactly the rows committed below its horizon. Added without a default first,
///   then given one, so existing rows get NULL instantly (no rewrite) and are counted by the
///   source's first pass; the app's inserts need no change.
/// - a btree index on it, built concurrently, so a pass reads only what changed;
/// - BEFORE UPDATE / DELETE triggers that save the old row (rollupd.source_changes), so changes
///   and deletions are subtracted; an UPDATE that touches none of the mapped columns is skipped.
/// - the source's row in rollupd.sources (its watermark).
///
/// `--apply` adds the column and index the way `rollupd migrate` prepares the built-in tables
/// (OnlinePreparation: short lock waits, a concurrent index build that resumes), then the
/// triggers and the row in one transaction. Everything is idempotent, so running it again after
/// changing the mapping refreshes the triggers.
public enum SourcePreparation {
    public static func indexName(for source: SourceDefinition) -> SQLIdentifier {
        identifier("\(source.table.name.name.prefix(40))_rollupd_xid_idx")
    }

    public static func sql(for source: SourceDefinition) -> String {
        let table = source.table.quoted
        return """
            -- rollupd: change tracking for source '\(source.name)' (\(table)).
            -- Each ALTER waits for its lock; on a busy table run them with a short lock_timeout.
            ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS rollupd_xid xid8;
            ALTER TABLE \(table) ALTER COLUMN rollupd_xid SET DEFAULT pg_catalog.pg_current_xact_id();
            -- Outside a transaction; if it is interrupted, DROP the INVALID index it leaves and run it again.
            CREATE INDEX CONCURRENTLY IF NOT EXISTS \(indexName(for: source).quoted) ON \(table) (rollupd_xid);
            BEGIN;
            \(triggersSQL(for: source))COMMIT;

            """
    }

    /// The triggers and the rollupd.sources row, for one transaction.
    static func triggersSQL(for source: SourceDefinition) -> String {
        let table = source.table.quoted
        // The source name is validated ([a-z0-9_]), so it is safe as a literal and in names.
        let update = identifier("rollupd_capture_update_\(source.name)")
        let delete = identifier("rollupd_capture_delete_\(source.name)")
        let watched = source.columns + [identifier("rollupd_xid")]
        let old = watched.map { "OLD.\($0.quoted)" }.joined(separator: ", ")
        let new = watched.map { "NEW.\($0.quoted)" }.joined(separator: ", ")
        return """
            DROP TRIGGER IF EXISTS \(update.quoted) ON \(table);
            CREATE TRIGGER \(update.quoted) BEFORE UPDATE ON \(table)
                FOR EACH ROW WHEN ((\(old)) IS DISTINCT FROM (\(new)))
                EXECUTE FUNCTION rollupd.capture_source_change('\(source.name)');
            DROP TRIGGER IF EXISTS \(delete.quoted) ON \(table);
            CREATE TRIGGER \(delete.quoted) BEFORE DELETE ON \(table)
                FOR EACH ROW EXECUTE FUNCTION rollupd.capture_source_change('\(source.name)');
            INSERT INTO rollupd.sources (source) VALUES ('\(source.name)') ON CONFLICT (source) DO NOTHING;

            """
    }

    /// Made of validated parts, so only the length can be wrong: cut to PostgreSQL's 63 bytes.
    private static func identifier(_ text: String) -> SQLIdentifier {
        var name = text
        while name.utf8.count > 63 { name.removeLast() }
        return try! SQLIdentifier(name)
    }

    /// Prepares the table online, then the triggers in one transaction; returns what it did.
    public static func apply(_ source: SourceDefinition, locks: LockRetry = LockRetry(), on connection: PGConnection,
                             onWait: (String) -> Void = { _ in }) throws -> [String] {
        let done = try OnlinePreparation(table: source.table, indexName: indexName(for: source), locks: locks)
            .run(on: connection, onWait: onWait)
        try locks.retrying("prepare source \(source.name)", on: connection, onWait: onWait) {
            try connection.transaction { connection in
                try connection.query("SELECT set_config('lock_timeout', $1, true)", [locks.timeoutSetting], context: "prepare source \(source.name)")
                try connection.execute(script: triggersSQL(for: source), context: "prepare source \(source.name)")
            }
        }
        return done + ["created the capture triggers of \(source.table)"]
    }
}
