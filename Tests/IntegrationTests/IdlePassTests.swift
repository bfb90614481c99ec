import Foundation
import Postgres
import RollupdStore
import Testing

/// A pass with nothing to do, which is most of the daemon's passes, only looks: it locks and
/// writes nothing, and freshness (status lag, the lag gauge, /healthz) still moves on.
@Suite struct IdlePassTests {
    /// rollupd.sources as passes leave it: a row lock changes xmax, an update makes a new version
    /// (xmin, ctid), a recorded pass counts up.
    static func sourceRows(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT source || ' xmin=' || xmin || ' xmax=' || xmax || ' ctid=' || ctid || ' passes=' || total_passes
                   || ' watermark=' || watermark || ' fresh_as_of=' || coalesce(fresh_as_of::text, '-')
            FROM rollupd.sources ORDER BY source
            """).rows.map { try $0.string(0) }
    }

    static func isEmpty(_ counts: ApplyCounts) -> Bool {
        counts.added == 0 && counts.removed == 0 && counts.bucketsTouched == 0 && counts.rejectedCount == 0
    }

    @Test func anIdlePassWritesNothingAndLagStaysSmall() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            let engine = RollupEngine(timeZone: "UTC")
            var random = SeededRandom(seed: 23)
            try Workload.insertEvents(count: 40, maxAgeHours: 5, random: &random, on: connection)
            try Workload.insertAnalytics(count: 40, maxAgeHours: 5, random: &random, on: connection)
            var written: [RollupSource: Double] = [:]
            for source in RollupSource.allCases { written[source] = try engine.catchUp(source, on: connection).freshAsOf }
            let before = try Self.sourceRows(on: connection)

            // Poll as the daemon does until freshness is a second past the last pass that wrote and
            // status shows no lag. Other tests' open transactions hold freshness back for moments
            // (it is cluster-wide), hence a deadline rather than a fixed number of polls.
            let deadline = ContinuousClock.now + .seconds(60)
            var idle: [RollupSource: PassReport] = [:]
            var lags: [String: Double] = [:]
            var polls = 0
            func settled() -> Bool {
                RollupSource.allCases.allSatisfy { (idle[$0]?.freshAsOf ?? 0) > written[$0]! + 1 }
                    && lags.count == RollupSource.allCases.count && lags.values.allSatisfy { $0 < 0.5 }
            }
            repeat {
                usleep(100_000)
                for source in RollupSource.allCases { idle[source] = try engine.pass(source, on: connection) }
                let status = try StatusReport.read(lockKey: 1, on: connection)
                lags = Dictionary(uniqueKeysWithValues: status.sources.map { ($0.source, $0.lagSeconds) })
                polls += 1
            } while (!settled() || polls < 5) && ContinuousClock.now < deadline  // at least 5 idle passes, however slow the machine

            for source in RollupSource.allCases {
                let report = try #require(idle[source])
                #expect(Self.isEmpty(report.counts) && !report.firstPass && report.rebuiltBuckets == nil)
                #expect(report.freshAsOf > written[source]! + 1, "freshness of \(source.rawValue) stood still while idle")
                #expect(report.freshAsOf <= Date().timeIntervalSince1970 + 1)
            }
            #expect(lags.count == 2 && lags.values.allSatisfy { $0 < 0.5 }, "status lag while idle: \(lags)")
            #expect(polls >= 5)
            // No row lock (xmax), no update (xmin, ctid), no pass recorded, watermark where it was.
            #expect(try Self.sourceRows(on: connection) == before, "idle passes wrote rollupd.sources")

            // Work is still found. A delete leaves only change rows, visible whatever the horizon.
            try Workload.deleteSome(2, random: &random, on: connection)
            let deleted = try engine.pass(.events, on: connection)
            #expect(deleted.counts.removed == 2)
            #expect(try Self.sourceRows(on: connection) != before, "a pass with work records it")
            // New rows: found once the horizon passes them (other tests' transactions may hold it).
            try Workload.insertEvents(count: 3, maxAgeHours: 1, random: &random, on: connection)
            var added: Int64 = 0
            while added < 3 && ContinuousClock.now < deadline + .seconds(30) {
                added += try engine.pass(.events, on: connection).counts.added
                if added < 3 { usleep(50_000) }
            }
            #expect(added == 3)
            for source in RollupSource.allCases { _ = try engine.catchUp(source, on: connection) }
            #expect(try Oracle.differences(timeZone: "UTC", on: connection) == [])
        }
    }

    /// A daemon started with another time zone must still refuse, even with nothing to do.
    @Test func anIdlePassStillRefusesAChangedTimeZone() async throws {
        try await withTestDatabase { database in
            let connection = try database.connect()
            _ = try RollupEngine(timeZone: "UTC").catchUp(.events, on: connection)
            #expect(throws: RollupError.timeZoneChanged(source: .events, stored: "UTC", configured: "Asia/Kolkata")) {
                try RollupEngine(timeZone: "Asia/Kolkata").pass(.events, on: connection)
            }
        }
    }
}
