import Postgres
import RollupdCore

/// What the two kinds of configured source (cost, analytics) share.
protocol ConfiguredRollup: SourceRollup {
    var definition: SourceDefinition { get }
}

extension ConfiguredRollup {
    /// A configured source is recomputed whole: its contribution is taken out and its rows
    /// counted again below the horizon (a cost source re-priced at today's model_pricing).
    func rebuild(_ range: RebuildRange, horizon: String, timeZone: String, on connection: PGConnection) throws -> Int64 {
        try clearAll(on: connection)
        return try apply(XidWindow(from: "0", to: horizon, includePreexisting: true), timeZone: timeZone, on: connection).bucketsTouched
    }
}
