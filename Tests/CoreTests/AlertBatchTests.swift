import Foundation
import RollupdCore
import Testing

/// Which alerts go out together, and in which order (AlertBatch.messages).
@Suite struct AlertBatchTests {
    func alert(_ row: Int64, budget: Int64, kind: String = "threshold", threshold: Int = 0, period: String = "2026-11-01T00:00:00Z",
               message: String? = nil) -> BudgetAlert {
        BudgetAlert(rowID: row, alertID: "rollupd-budget-\(budget)-1793491200-\(kind == "threshold" ? "t\(threshold)" : kind)",
                    budgetID: budget, budgetName: "b\(budget)", scope: "global", period: "month", timeZone: "UTC",
                    periodStart: period, periodEnd: "2026-12-01T00:00:00Z", periodLabel: "November 2026", kind: kind,
                    threshold: threshold, limitUSD: "100", spendUSD: "180", channel: "default", createdAt: "2026-11-20T10:00:00Z",
                    ageSeconds: Double(100 - row), attempts: 0, messageID: message)
    }

    /// One budget's thresholds due together become one message, in the place of the first;
    /// another budget's alerts keep their own place around it.
    @Test func thresholdsOfOneBudgetAndPeriodGoTogether() {
        let queue = [alert(1, budget: 7, threshold: 50), alert(2, budget: 8, threshold: 50), alert(3, budget: 7, threshold: 80),
                     alert(4, budget: 7, threshold: 100)]
        let batches = AlertBatch.messages(from: queue)
        #expect(batches.map { $0.rowIDs } == [[1, 3, 4], [2]])
        #expect(batches.map(\.messageID) == ["rollupd-budget-7-1793491200-t50-t80-t100", "rollupd-budget-8-1793491200-t50"])
        #expect(batches[0].isNew)
        #expect(batches[0].ageSeconds == 99)
    }

    /// A forecast recorded between two thresholds stays between them: the later threshold goes
    /// after it, alone. Another period's threshold is another message.
    @Test func aBudgetsOwnOtherAlertsKeepTheirPlace() {
        let queue = [alert(1, budget: 7, threshold: 50), alert(2, budget: 7, kind: "forecast"), alert(3, budget: 7, threshold: 80),
                     alert(4, budget: 7, threshold: 100, period: "2026-12-01T00:00:00Z")]
        #expect(AlertBatch.messages(from: queue).map { $0.rowIDs } == [[1], [2], [3], [4]])
    }

    /// A message already attempted keeps its rows and id; a threshold recorded since is not
    /// added to it (its webhook-id must not change between retries).
    @Test func aRetriedMessageKeepsItsRowsAndId() {
        let id = "rollupd-budget-7-1793491200-t50-t80"
        let queue = [alert(1, budget: 7, threshold: 50, message: id), alert(2, budget: 7, threshold: 80, message: id),
                     alert(3, budget: 7, threshold: 100)]
        let batches = AlertBatch.messages(from: queue)
        #expect(batches.map { $0.rowIDs } == [[1, 2], [3]])
        #expect(batches.map(\.messageID) == [id, "rollupd-budget-7-1793491200-t100"])
        #expect(!batches[0].isNew)
    }

    @Test func reloadsNameTheChannelsTheyChangeButNeverTheirURLs() {
        let old: [String: RollupdConfig.Channel] = ["default": .init(name: "default", url: "https://a/secret-1"),
                                                    "ops": .init(name: "ops", url: "https://b/secret-2")]
        let new: [String: RollupdConfig.Channel] = ["default": .init(name: "default", url: "https://a/secret-3"),
                                                    "finance": .init(name: "finance", url: "https://c/secret-4", format: .json)]
        let changes = ChannelChanges(from: old, to: new)
        #expect(changes.summary == "added finance; changed default; removed ops")
        #expect(changes.toRetry == ["default", "finance"])
        #expect(ChannelChanges(from: old, to: old).isEmpty)
    }
}
