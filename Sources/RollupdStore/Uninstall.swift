import Postgres

/// The SQL that removes everything rollupd added to a database, read from the catalog (not from
/// the configuration, which may have changed since): every trigger that calls a function in
/// schema rollupd, the rollupd_xid column (and with it its index) of each table that has one of
/// those triggers or the column with rollupd's default, what migrations recorded creating in the
/// product's schema (rollupd.installed_objects), and schema rollupd itself. Tables the app had
/// before rollupd (an app's own cost_aggregates) stay; only the columns and indexes rollupd added
/// to them go.
public enum Uninstall {
    public static func sql(appSchema: SQLIdentifier, on connection: PGConnection) throws -> String {
        var lines = [
            "-- Removes rollupd from database \(try connection.query("SELECT current_database()").singleRow("db").string(0)).",
            "-- Run as the role that owns the product's tables. DROP COLUMN and DROP TRIGGER lock each",
            "-- table for an instant (no rewrite); rollups and budgets in schema rollupd are deleted.",
            "BEGIN;",
            "SET LOCAL lock_timeout = '5s';",
        ]
        let triggers = try connection.query("""
            SELECT quote_ident(t.tgname), quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE p.pronamespace = 'rollupd'::regnamespace AND NOT t.tgisinternal
            ORDER BY 2, 1
            """, context: "rollupd's triggers").rows
        lines += try triggers.map { "DROP TRIGGER IF EXISTS \(try $0.string(0)) ON \(try $0.string(1));" }
        let columns = try connection.query("""
            SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attname = 'rollupd_xid' AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname <> 'rollupd'
              AND (pg_get_expr(d.adbin, d.adrelid) LIKE '%pg_current_xact_id()%'
                   OR EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                              WHERE t.tgrelid = c.oid AND p.pronamespace = 'rollupd'::regnamespace))
            ORDER BY 1
            """, context: "rollupd_xid columns").rows
        lines += try columns.map { "ALTER TABLE \(try $0.string(0)) DROP COLUMN IF EXISTS rollupd_xid;" }
        // What migrations created in the product's schema, newest kind last: tables, then indexes
        // and columns on the app's own tables (a table that is gone is skipped).
        let installed = try connection.query("""
            SELECT kind, name FROM rollupd.installed_objects
            WHERE to_regclass(quote_ident($1) || '.' || quote_ident(split_part(name, '.', 1))) IS NOT NULL
            ORDER BY CASE kind WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name
            """, [appSchema.name], context: "objects rollupd installed").rows
        let schema = appSchema.quoted
        for row in installed {
            let name = try row.string(1)
            switch try row.string(0) {
            case "table": lines.append("DROP TABLE IF EXISTS \(schema).\(quoted(name));")
            case "index": lines.append("DROP INDEX IF EXISTS \(schema).\(quoted(name));")
            default:
                let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
                lines.append("ALTER TABLE IF EXISTS \(schema).\(quoted(parts[0])) DROP COLUMN IF EXISTS \(quoted(parts[1]));")
            }
        }
        lines += ["DROP SCHEMA IF EXISTS rollupd CASCADE;", "COMMIT;"]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}
