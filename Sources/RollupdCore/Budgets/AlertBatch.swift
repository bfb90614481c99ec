/// One message to a channel: the alerts it carries and the webhook-id it goes out under.
///
/// A budget that crosses 50, 80 and 100 % in one pass (or during an outage) has three alerts
/// recorded, one per threshold (the outbox's unique key), but its channel should get one message
/// that names all three, not three messages seconds apart. Pure, so the grouping rule is tested
/// without a database.
public struct AlertBatch: Sendable, Equatable {
    /// The webhook-id: the alert's own id for a single alert; for several thresholds of one budget
    /// and period, the common part plus each threshold (`rollupd-budget-7-1793487600-t50-t80-t100`).
    public var messageID: String
    /// In the order they were recorded (thresholds ascending).
    public var alerts: [BudgetAlert]

    public init(messageID: String, alerts: [BudgetAlert]) {
        self.messageID = messageID
        self.alerts = alerts
    }

    /// The alert whose spend the message reports: the last recorded (the highest threshold).
    public var latest: BudgetAlert { alerts[alerts.count - 1] }
    /// Whether the rows still need `messageID` written before the first attempt.
    public var isNew: Bool { alerts.contains { $0.messageID == nil } }
    /// Attempts so far: the most any of its alerts had.
    public var attempts: Int { alerts.map(\.attempts).max() ?? 0 }
    /// Age of the oldest alert it carries, in seconds.
    public var ageSeconds: Double { alerts.map(\.ageSeconds).max() ?? 0 }
    public var rowIDs: [Int64] { alerts.map(\.rowID) }

    /// Splits one channel's due alerts (in recorded order) into messages, in the order they go out:
    ///
    /// - alerts that already went out together (a message id is recorded) stay together, under
    ///   the same id, so a retry sends the same message;
    /// - otherwise a threshold alert takes every later threshold alert of the same budget and
    ///   period that is due with it, until that budget's next alert of another kind (its forecast
    ///   or closing notice keeps its place after the thresholds recorded before it);
    /// - forecasts and closing notices go alone.
    ///
    /// A message takes the place of its first alert, so every channel still receives what it
    /// gets in the order it was recorded.
    public static func messages(from queue: [BudgetAlert]) -> [AlertBatch] {
        var taken = Set<Int64>()
        var batches: [AlertBatch] = []
        for (index, head) in queue.enumerated() where !taken.contains(head.rowID) {
            var members = [head]
            if let id = head.messageID {
                members = queue.filter { $0.messageID == id }
            } else if head.kind == "threshold" {
                for later in queue[(index + 1)...] where later.budgetID == head.budgetID && !taken.contains(later.rowID) {
                    guard later.kind == "threshold", later.periodStart == head.periodStart, later.messageID == nil else { break }
                    members.append(later)
                }
            }
            members.sort { ($0.threshold, $0.rowID) < ($1.threshold, $1.rowID) }
            taken.formUnion(members.map(\.rowID))
            batches.append(AlertBatch(messageID: head.messageID ?? messageID(for: members), alerts: members))
        }
        return batches
    }

    /// `rollupd-budget-7-1793487600-t80` alone; `rollupd-budget-7-1793487600-t50-t80-t100` for
    /// several thresholds (the alert ids share everything up to the threshold).
    static func messageID(for alerts: [BudgetAlert]) -> String {
        guard alerts.count > 1, let first = alerts.first, let dash = first.alertID.lastIndex(of: "-") else {
            return alerts[0].alertID
        }
        return first.alertID[..<dash] + alerts.map { "-t\($0.threshold)" }.joined()
    }
}
