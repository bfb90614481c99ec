import Postgres

/// How a pass consumes the saved old versions of updated and deleted rows (the change log).
///
/// A transaction of a pass consumes every change row it can see, or, when there are more than a
/// transaction may take, the oldest `rollup.max_rows_per_transaction` of them and nothing else
/// (the watermark then stays where it is: docs/design.md, "Bounded passes"). The bound reaches the
/// statements as the transaction-local setting `rollupd.change_limit` (empty: all), so the four
/// rollups' statements keep their parameters.
enum ChangeLog {
    /// The DELETE ... RETURNING that consumes a built-in source's change table (which rows: see
    /// AdoptionKey.consumable).
    static func consume(_ table: String, key: AdoptionKey) -> String {
        """
        DELETE FROM \(table) WHERE change_id IN (
                SELECT change_id FROM \(table) WHERE \(key.consumable) ORDER BY change_id
                LIMIT nullif(current_setting('rollupd.change_limit', true), '')::bigint)
            RETURNING *
        """
    }

    /// The same for the configured sources' shared table; $4 is the source name.
    static func consumeSource(key: AdoptionKey) -> String {
        """
        DELETE FROM rollupd.source_changes WHERE change_id IN (
                SELECT change_id FROM rollupd.source_changes WHERE source = $4 AND \(key.consumable) ORDER BY change_id
                LIMIT nullif(current_setting('rollupd.change_limit', true), '')::bigint)
            RETURNING old_xid, old_row
        """
    }

    /// Sets the bound for the rest of the transaction: nil consumes every visible change row.
    static func limit(_ rows: Int?, on connection: PGConnection) throws {
        try connection.query("SELECT set_config('rollupd.change_limit', $1, true)", [rows.map(String.init) ?? ""],
                             context: "change log bound")
    }
}
