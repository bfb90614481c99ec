import Postgres
import RollupdCore

/// Turns a configured source's mapping into SQL expressions over a row alias `r`.
///
/// Only validated, quoted identifiers enter the SQL text; constants and jsonb keys are bound as
/// parameters. Numbers and times are converted by rollupd's non-raising functions: a typed column
/// is passed as it is (migration 010's overloads: a timestamptz is never printed and parsed back,
/// so no DateStyle can change it), text and jsonb values are parsed (migration 008). One column
/// type or another, and text that does not parse, never abort a pass: the row gets NULL there and
/// is rejected.
///
/// Parameters: $1 watermark, $2 horizon, $3 first pass (XidWindow), $4 source name, $5 time
/// zone; constants follow. Every statement binds all of them, but not every one reads the time
/// zone, and PostgreSQL refuses an untyped parameter that no statement text mentions: so the rows
/// carry it as a typed column (`time_zone`), and the statements need no trick of their own.
struct SourceMapping {
    let definition: SourceDefinition
    /// The source's key (the adoption range, the old versions' rules).
    let key: AdoptionKey
    private(set) var constants: [String] = []

    static let fixedParameterCount = 5

    init(_ definition: SourceDefinition, key: AdoptionKey) {
        self.definition = definition
        self.key = key
    }

    var table: String { definition.table.quoted }

    func parameters(_ window: XidWindow, timeZone: String) -> [any PGParameter] {
        window.parameters + [definition.name, timeZone] + constants
    }

    private mutating func bind(_ value: String) -> String {
        constants.append(value)
        return "$\(Self.fixedParameterCount + constants.count)::text"
    }

    /// The field as text, or NULL when it is not mapped.
    mutating func text(_ field: String) -> String {
        switch definition.field(field) {
        case .column(let column): return "r.\(column.quoted)::text"
        case .jsonKey(let column, let key): return "(r.\(column.quoted)::jsonb ->> \(bind(key)))"
        case .constant(let value): return bind(value)
        case .absent: return "NULL::text"
        }
    }

    /// The field as it is stored: a column keeps its type (for the typed conversions), anything
    /// else is text.
    mutating func typed(_ field: String) -> String {
        if case .column(let column) = definition.field(field) { return "r.\(column.quoted)" }
        return text(field)
    }

    mutating func number(_ field: String) -> String { "rollupd.to_numeric(\(typed(field)))" }
    mutating func time(_ field: String) -> String { "rollupd.to_timestamptz(\(typed(field)))" }

    /// A source's rows, live in the window (sign 1) and saved old versions that had been counted
    /// (sign -1), each through `columns`, which reads the alias `r` of the table's row type.
    /// `consumed` must be a CTE of the source's change rows (old_xid, old_row).
    func rows(_ columns: String) -> String {
        """
            SELECT \(columns), 1 AS sign, $5::text AS time_zone FROM \(table) r
            WHERE \(XidWindow.predicate(key))
            UNION ALL
            SELECT \(columns), -1, $5::text FROM consumed c CROSS JOIN LATERAL jsonb_populate_record(NULL::\(table), c.old_row) r
            WHERE \(key.counted("c."))
        """
    }

    /// The window's live rows only (for recording rejected rows).
    func liveRows(_ columns: String) -> String {
        "SELECT \(columns), 1 AS sign, $5::text AS time_zone FROM \(table) r WHERE \(XidWindow.predicate(key))"
    }

    /// Consumes this source's saved old versions.
    var consumedSQL: String { ChangeLog.consumeSource(key: key) }
}
