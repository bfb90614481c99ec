import Foundation

/// Budget periods as Foundation's Calendar computes them: an oracle for the SQL evaluator's
/// period bounds (PostgreSQL's date_trunc on the zone's wall clock), written independently of it.
enum CalendarPeriod: String, CaseIterable {
    case day, week, month

    /// The period containing `instant`, as [start, end).
    /// - Parameter weekStart: 1 = Sunday ... 7 = Saturday (Calendar's numbering); 2 = Monday.
    func interval(containing instant: Date, timeZone: TimeZone, weekStart: Int = 2) -> DateInterval {
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
