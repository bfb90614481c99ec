/// A recorded alert as a message needs it (a budget_alerts row; AlertOutbox reads it). The period
/// label is made by PostgreSQL, which knows the budget zone's calendar.
public struct BudgetAlert: Sendable, Equatable {
    /// budget_alerts.id.
    public var rowID: Int64
    /// The stable id sent as webhook-id.
    public var alertID: String
    public var budgetID: Int64
    public var budgetName: String
    public var scope: String
    public var scopeValue: String?
    public var period: String
    public var timeZone: String
    /// ISO 8601 UTC.
    public var periodStart: String
    public var periodEnd: String
    /// "November 2026", "week of Mon 16 Nov 2026", "Mon 23 Nov 2026".
    public var periodLabel: String
    public var kind: String
    public var threshold: Int
    /// Exact decimal text, trailing zeros trimmed.
    public var limitUSD: String
    public var spendUSD: String
    public var forecastUSD: String?
    public var channel: String
    public var createdAt: String
    /// Seconds since the row was written.
    public var ageSeconds: Double
    public var attempts: Int
    /// The webhook-id of the message that carries it, once a first attempt was made (AlertBatch).
    public var messageID: String?

    public init(
        rowID: Int64, alertID: String, budgetID: Int64, budgetName: String, scope: String,
        scopeValue: String? = nil, period: String, timeZone: String, periodStart: String, periodEnd: String,
        periodLabel: String, kind: String, threshold: Int, limitUSD: String, spendUSD: String,
        forecastUSD: String? = nil, channel: String, createdAt: String, ageSeconds: Double, attempts: Int,
        messageID: String? = nil
    ) {
        self.rowID = rowID
        self.alertID = alertID
        self.budgetID = budgetID
        self.budgetName = budgetName
        self.scope = scope
        self.scopeValue = scopeValue
        self.period = period
        self.timeZone = timeZone
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.periodLabel = periodLabel
        self.kind = kind
        self.threshold = threshold
        self.limitUSD = limitUSD
        self.spendUSD = spendUSD
        self.forecastUSD = forecastUSD
        self.channel = channel
        self.createdAt = createdAt
        self.ageSeconds = ageSeconds
        self.attempts = attempts
        self.messageID = messageID
    }
}
