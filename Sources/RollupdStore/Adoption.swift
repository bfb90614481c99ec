import Postgres

/// Adopting the rows a source table had before rollupd (rollupd_xid IS NULL), in key order and
/// bounded transactions (docs/design.md, "Adopting the rows that were there before").
///
/// A transaction adopts the rows with `lo <= key <= hi` and consumes the saved old versions of
/// such rows (old_xid IS NULL) whose key is at most `hi` (all of them in the last transaction),
/// subtracting those whose key is at most the previous transaction's `hi` (`after`): those were
/// adopted while their update was not yet visible. The bounds reach the four rollups' statements
/// as transaction-local settings (rollupd.adopt_*), like ChangeLog's limit, so their parameters
/// stay as they are; they are cast to the key's own type, so the comparisons use its order and the
/// table's index on it.
struct AdoptionKey: Sendable {
    /// The key column, quoted, as the source table's statements name it.
    let column: String
    /// Its type as format_type prints it (a valid type name), for the casts.
    let type: String
    /// The same key of a saved old version, in the change table's own terms, `%` standing for
    /// the table's alias and a dot (or nothing).
    let changeKeyTemplate: String

    func changeKey(_ prefix: String) -> String { changeKeyTemplate.replacingOccurrences(of: "%", with: prefix) }

    /// The key column of `source` and its type, from the catalog.
    static func lookup(_ source: RollupSource, on connection: PGConnection) throws -> AdoptionKey {
        let column = source.definition?.id ?? (try! SQLIdentifier("id"))
        let type = try connection.query("""
            SELECT format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped
            """, [source.table, column.name], context: "type of \(source.rawValue)'s key").singleRow("key type").string(0)
        let changeKey: String
        if source.definition == nil {
            changeKey = "%row_id::\(type)"
        } else {
            // A validated identifier, as a literal (standard_conforming_strings is pinned on).
            let name = "'" + column.name.replacingOccurrences(of: "'", with: "''") + "'"
            changeKey = "(%old_row ->> \(name))::\(type)"
        }
        return AdoptionKey(column: column.quoted, type: type, changeKeyTemplate: changeKey)
    }

    private func setting(_ name: String) -> String {
        "nullif(current_setting('rollupd.\(name)', true), '')::\(type)"
    }

    /// Live rows of the adoption range (with rollupd_xid IS NULL, XidWindow's predicate).
    var rowsInRange: String { "\(column) >= \(setting("adopt_lo")) AND \(column) <= \(setting("adopt_hi"))" }

    /// Which saved old versions a transaction consumes: all of them outside adoption; during it,
    /// those of pre-existing rows up to `hi` (or all, in the last transaction).
    var consumable: String {
        """
        (current_setting('rollupd.adopting', true) IS DISTINCT FROM 'on'
               OR (old_xid IS NULL AND (current_setting('rollupd.adopt_last', true) = 'on' OR \(changeKey("")) <= \(setting("adopt_hi")))))
        """
    }

    /// Whether a consumed old version (alias `prefix`) had been counted, so is subtracted; $1 is
    /// the watermark.
    func counted(_ prefix: String = "") -> String {
        """
        (CASE WHEN current_setting('rollupd.adopting', true) = 'on' THEN \(changeKey(prefix)) <= \(setting("adopt_after"))
              ELSE coalesce(\(prefix)old_xid, '0'::xid8) < $1::xid8 END)
        """
    }

    /// One adoption transaction's range: the next `limit` keys (all when nil) after `after`.
    struct Range: Sendable {
        var lo: String?
        var hi: String?
        /// No pre-existing row is left beyond `hi`: adoption ends with this transaction.
        var last: Bool
    }

    func nextRange(_ source: RollupSource, after: String?, limit: Int?, on connection: PGConnection) throws -> Range {
        let row = try connection.query("""
            WITH next AS (
                SELECT \(column) AS k FROM \(source.table)
                WHERE rollupd_xid IS NULL AND ($1::text IS NULL OR \(column) > $1::text::\(type))
                ORDER BY \(column) LIMIT $2::bigint)
            -- (not min/max: not every type has them, uuid among them; every indexed type has an order.
            -- next.k, qualified: a bare k in ORDER BY would be the output column, the text, and
            -- order 10 before 9.)
            SELECT (SELECT n.k::text FROM next n ORDER BY n.k LIMIT 1), (SELECT n.k::text FROM next n ORDER BY n.k DESC LIMIT 1),
                   (SELECT count(*) FROM next)
            """, [after, limit.map(Int64.init)], context: "next rows of \(source.rawValue) to adopt").singleRow("adoption range")
        let count = try row.int64(2)
        return Range(lo: row[0], hi: row[1], last: limit.map { count < Int64($0) } ?? true)
    }

    /// Sets the transaction's adoption settings; `range` nil ends adoption for the transaction.
    static func set(_ range: Range?, after: String?, on connection: PGConnection) throws {
        let values = [range == nil ? "off" : "on", range?.lo ?? "", range?.hi ?? "", after ?? "", range?.last == true ? "on" : "off"]
        try connection.query("""
            SELECT set_config('rollupd.adopting', $1, true), set_config('rollupd.adopt_lo', $2, true),
                   set_config('rollupd.adopt_hi', $3, true), set_config('rollupd.adopt_after', $4, true),
                   set_config('rollupd.adopt_last', $5, true)
            """, values, context: "adoption settings")
    }

    /// Every pre-existing row at once, outside adoption's rules for old versions: for recounting a
    /// whole source (its rows all adopted) in one transaction.
    func coverAll(_ source: RollupSource, on connection: PGConnection) throws {
        let range = try nextRange(source, after: nil, limit: nil, on: connection)
        try connection.query("""
            SELECT set_config('rollupd.adopting', 'off', true), set_config('rollupd.adopt_lo', $1, true),
                   set_config('rollupd.adopt_hi', $2, true)
            """, [range.lo ?? "", range.hi ?? ""], context: "adoption settings")
    }
}
