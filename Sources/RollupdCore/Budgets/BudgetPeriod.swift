import Foundation

/// A budget's calendar period. Periods are real calendar periods in the budget's time zone: a
/// month is a calendar month (28 to 31 days), a day can have 23 or 25 hours across DST.
public enum BudgetPeriod: String, Sendable, CaseIterable, Codable {
    case day, week, month

    /// The period containing `instant`, as [start, end).
    /// - Parameter weekStart: the first day of a week, 1 = Sunday ... 7 = Saturday (Calendar's
    ///   numbering); 2 = Monday is the default the budgets table documents.
    public func interval(containing instant: Date, timeZone: TimeZone, weekStart: Int = 2) -> DateInterval {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = weekStart
        let component: Calendar.Component = switch self {
        case .day: .day
        case .week: .weekOfYear
        case .month: .month
        }
        // dateInterval(of:for:) follows the calendar, DST and month lengths included.
        return calendar.dateInterval(of: component, for: instant)!
    }
}
