import RollupdCore
import RollupdStore

/// How the budget commands print budgets.
enum BudgetText {
    /// `'Acme production': project acme, $1,500 per month (Europe/Berlin) at 50,80,100% -> default`
    static func describe(_ row: BudgetStore.Row, defaultZone: String) -> String {
        let spec = row.spec
        return "'\(spec.name)': \(spec.scopeDescription), $\(spec.limitUSD) per \(spec.period) (\(spec.timeZone ?? "\(defaultZone), rollup.time_zone")) "
            + "at \(thresholds(spec))% -> channel \(spec.channel)\(spec.enabled ? "" : ", disabled")"
    }

    static func thresholds(_ spec: BudgetSpec) -> String { spec.thresholds.map(String.init).joined(separator: ",") }

    /// `limit_usd 10 -> 20`, one entry per changed column.
    static func changes(from old: BudgetSpec, to new: BudgetSpec) -> [String] {
        var changes: [String] = []
        func note(_ column: String, _ before: String, _ after: String) {
            if before != after { changes.append("\(column) \(before) -> \(after)") }
        }
        note("name", "'\(old.name)'", "'\(new.name)'")
        note("scope", old.scopeDescription, new.scopeDescription)
        note("period", old.period, new.period)
        note("limit_usd", old.limitUSD, new.limitUSD)
        note("thresholds", thresholds(old), thresholds(new))
        note("time_zone", old.timeZone ?? "default", new.timeZone ?? "default")
        note("channel", old.channel, new.channel)
        note("enabled", "\(old.enabled)", "\(new.enabled)")
        return changes
    }

    static func table(_ listings: [BudgetStore.Listing], defaultZone: String) -> String {
        guard !listings.isEmpty else { return "no budgets (rollupd budget add --help)" }
        var rows = [["ID", "NAME", "SCOPE", "PERIOD", "ZONE", "LIMIT", "SPEND", "%", "THRESHOLDS", "CHANNEL", "LAST ALERT"]]
        for listing in listings {
            let spec = listing.budget.spec
            let last = listing.lastAlert.map { alert in
                let what = alert.kind == "threshold" ? "\(alert.threshold)%" : alert.kind
                return "\(what) \(alert.status) \(alert.createdAt)"
            } ?? "-"
            rows.append([
                String(listing.budget.id), spec.name, spec.scopeDescription, spec.period, spec.timeZone ?? defaultZone,
                "$" + spec.limitUSD, listing.spendUSD.map { "$" + $0 } ?? (spec.enabled ? "-" : "disabled"),
                listing.percentOfLimit.map { $0 + "%" } ?? "-", thresholds(spec), spec.channel, last,
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
