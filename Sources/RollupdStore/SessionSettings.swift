import Postgres
import RollupdCore

/// The settings every rollupd connection pins as soon as it connects.
///
/// The product's database is not ours: `ALTER DATABASE/ROLE ... SET`, PGOPTIONS, PGDATESTYLE, PGTZ
/// and the default `"$user", public` search_path all reach a new session before rollupd's first
/// statement. A SET after connecting overrides every one of them, so rollupd's SQL means the same
/// whatever the product configured:
/// - `search_path`: pg_catalog first (no product object can shadow a built-in), then the product's
///   schema (`database.schema`), where its tables and the two rollup tables it reads are; pg_temp
///   last. rollupd's own objects are always written `rollupd.name`.
/// - `DateStyle`, `IntervalStyle`, `TimeZone`, `extra_float_digits`: how values are printed and
///   parsed, so text crossing the wire (and text conversions inside SQL) is ISO and exact.
/// - `application_name`: set again here, so PGAPPNAME cannot rename rollupd in pg_stat_activity.
public struct SessionSettings: Sendable, Equatable {
    public var schema: SQLIdentifier
    public var applicationName: String
    public var statementTimeout: Duration

    public init(schema: SQLIdentifier, applicationName: String, statementTimeout: Duration) {
        self.schema = schema
        self.applicationName = applicationName
        self.statementTimeout = statementTimeout
    }

    public init(_ config: RollupdConfig) {
        self.init(schema: config.database.schema, applicationName: config.database.applicationName,
                  statementTimeout: config.database.statementTimeout)
    }

    /// The values, in the order `statement` sets them.
    public var values: [(name: String, value: String)] {
        [
            ("search_path", "pg_catalog, \(schema.quoted), pg_temp"),
            ("DateStyle", "ISO, YMD"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("extra_float_digits", "3"),
            // Literals rollupd writes into SQL (a validated key name) double their quotes only.
            ("standard_conforming_strings", "on"),
            ("application_name", applicationName),
            ("statement_timeout", String(Int64(statementTimeout.seconds * 1000))),
        ]
    }

    /// One round trip: set_config for each value, literals quoted (they come from validated
    /// configuration, and a setup statement takes no parameters).
    public var statement: String {
        "SELECT " + values.map { "pg_catalog.set_config('\($0.name)', \(Self.literal($0.value)), false)" }.joined(separator: ", ")
    }

    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
