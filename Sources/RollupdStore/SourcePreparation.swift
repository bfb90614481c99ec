import Postgres
import RollupdCore

/// What a configured source's table needs for exactly-once rollups, as SQL the operator reads
/// (`rollupd prepare-source <name>`) and runs deliberately (`--apply`, or psql):
///
/// - `rollupd_xid xid8 DEFAULT pg_current_xact_id()`: the writing transaction of each row, so a
///   pass can take exactly the rows committed below its horizon. Added without a default first,
///   then given one, so existing rows get NULL instantly (no rewrite) and are counted by the
///   source's first pass; the app's inserts need no change.
/// - a btree index on it, so a pass reads only what changed;
/// - BEFORE UPDATE / DELETE triggers that save the old row (rollupd.source_changes), so changes
///   and deletions are subtracted; an UPDATE that touches none of the mapped columns is skipped.
/// - the source's row in rollupd.sources (its watermark).
///
/// Everything is idempotent, so running it again after changing the mapping refreshes the triggers.
public enum SourcePreparation {
    public static func sql(for source: SourceDefinition) -> String {
        let table = source.table.quoted
        // The source name is validated ([a-z0-9_]), so it is safe as a literal and in names.
        let index = identifier("\(source.table.name.name.prefix(40))_rollupd_xid_idx")
        let update = identifier("rollupd_capture_update_\(source.name)")
        let delete = identifier("rollupd_capture_delete_\(source.name)")
        let watched = source.columns + [identifier("rollupd_xid")]
        let old = watched.map { "OLD.\($0.quoted)" }.joined(separator: ", ")
        let new = watched.map { "NEW.\($0.quoted)" }.joined(separator: ", ")
        return """
            -- rollupd: change tracking for source '\(source.name)' (\(table)).
            ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS rollupd_xid xid8;
            ALTER TABLE \(table) ALTER COLUMN rollupd_xid SET DEFAULT pg_current_xact_id();
            -- On a large table, create this first with CREATE INDEX CONCURRENTLY (same name).
            CREATE INDEX IF NOT EXISTS \(index.quoted) ON \(table) (rollupd_xid);
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

    /// Runs `sql(for:)` in one transaction.
    public static func apply(_ source: SourceDefinition, on connection: PGConnection) throws {
        try connection.transaction { connection in
            try connection.execute(script: sql(for: source), context: "prepare source \(source.name)")
        }
    }
}
