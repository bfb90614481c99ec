import Postgres
import RollupdCore

/// What the two kinds of configured source (cost, analytics) share.
protocol ConfiguredRollup: SourceRollup {
    var definition: SourceDefinition { get }
}

extension ConfiguredRollup {
    /// A configured source is recomputed whole: its contribution is taken out and its rows
    /// counted again below the horizon (a cost source re-priced at today's model_pricing).
    /// (Only once its pre-existing rows are all adopted: the engine holds a rebuild back until then.)
    func rebuild(_ range: RebuildRange, horizon: String, timeZone: String, key: AdoptionKey, on connection: PGConnection) throws -> Int64 {
        try clearAll(on: connection)
        try key.coverAll(RollupSource(definition), on: connection)
        return try apply(XidWindow(from: "0", to: horizon, includePreexisting: true, key: key), timeZone: timeZone, on: connection).bucketsTouched
    }
}
