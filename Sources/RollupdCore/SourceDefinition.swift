import Postgres

/// A configured source, `sources.<name>.*`: an operator's own table mapped onto rollupd's
/// fields. Only identifiers (validated, always quoted) and constants (sent as parameters) come
/// from configuration; the SQL around them is rollupd's.
public struct SourceDefinition: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Rolled up into cost_aggregates and user_cost_aggregates.
        case cost
        /// Rolled up into hourly_rollups.
        case analytics
    }

    /// Where a field's value comes from.
    public enum Field: Sendable, Equatable {
        /// A column, converted to the field's type (text is parsed; what does not parse rejects the row).
        case column(SQLIdentifier)
        /// `column->key`: a key of a jsonb column (seed 004's properties->riskMode).
        case jsonKey(SQLIdentifier, String)
        /// `=text`: the same value for every row (a project or feature the table does not record).
        case constant(String)
        /// Not mapped: latency counts as 0, a missing cost is priced, optional keys are NULL.
        case absent
    }

    /// How the cost column is denominated.
    public enum CostUnit: String, Sendable, Equatable, CaseIterable {
        case usd
        /// Integer millionths of a dollar (seed 002's token_usage.cost_usd).
        case microUSD = "micro_usd"
    }

    /// The name in rollupd.sources, metrics and logs: lower-case letters, digits and _.
    public var name: String
    public var table: QualifiedName
    public var kind: Kind
    /// The column that identifies a row, for rejected_rows and log lines.
    public var id: SQLIdentifier
    /// rollupd field name -> where it comes from (ConfigKeys.sourceFields lists them per kind).
    public var fields: [String: Field]
    public var costUnit: CostUnit

    public init(name: String, table: QualifiedName, kind: Kind, id: SQLIdentifier, fields: [String: Field], costUnit: CostUnit = .usd) {
        self.name = name
        self.table = table
        self.kind = kind
        self.id = id
        self.fields = fields
        self.costUnit = costUnit
    }

    public func field(_ name: String) -> Field { fields[name] ?? .absent }

    /// Every column the mapping reads, for the capture trigger's WHEN clause.
    public var columns: [SQLIdentifier] {
        var seen: [SQLIdentifier] = []
        for field in fields.keys.sorted().map({ fields[$0]! }) {
            switch field {
            case .column(let column), .jsonKey(let column, _):
                if !seen.contains(column) { seen.append(column) }
            case .constant, .absent:
                continue
            }
        }
        return seen
    }

    /// Parses a field's configured text: `=constant`, `column->key`, a column, or empty (absent).
    public static func parseField(_ text: String) throws(SQLIdentifier.Invalid) -> Field {
        if text.isEmpty { return .absent }
        if text.hasPrefix("=") { return .constant(String(text.dropFirst())) }
        if let arrow = text.range(of: "->") {
            let key = String(text[arrow.upperBound...])
            guard !key.isEmpty else { throw .empty }
            return .jsonKey(try SQLIdentifier(String(text[..<arrow.lowerBound])), key)
        }
        return .column(try SQLIdentifier(text))
    }
}
