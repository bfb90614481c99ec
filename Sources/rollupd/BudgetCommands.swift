import ArgumentParser
import Foundation
import Postgres
import RollupdCore
import RollupdStore

/// `rollupd budget list|add|set|disable|rm`: budgets without SQL, every value validated
/// (BudgetSpec) before it is written, and each command printing what it did.
struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "List, add, change, disable or remove budgets (rows of rollupd.budgets).",
        subcommands: [BudgetList.self, BudgetAdd.self, BudgetSet.self, BudgetDisable.self, BudgetRemove.self])
}

/// The fields `add` and `set` take.
struct BudgetFields: ParsableArguments {
    @Option(help: "The budget's name, shown in every alert.") var name: String?
    @Option(help: "global, project, feature, model or user.") var scope: String?
    @Option(help: "The project, feature, model or user the budget covers (not for global).") var value: String?
    @Option(help: "day, week or month: calendar periods in the budget's zone.") var period: String?
    @Option(help: "The limit in USD, e.g. 1500 or 0.50.") var limit: String?
    @Option(help: "Percentages of the limit that alert, e.g. 50,80,100.") var thresholds: String?
    @Option(help: "IANA time zone of the periods; 'default' for rollup.time_zone.") var zone: String?
    @Option(help: "A channel named under channels: in the config.") var channel: String?

    /// `spec` with every given field applied.
    func apply(to spec: BudgetSpec) throws(BudgetSpecError) -> BudgetSpec {
        var spec = spec
        if let name { spec.name = name }
        if let scope {
            spec.scope = scope
            if scope == "global" && value == nil { spec.scopeValue = nil }
        }
        if let value { spec.scopeValue = value.isEmpty ? nil : value }
        if let period { spec.period = period }
        if let limit { spec.limitUSD = try BudgetSpec.limit(limit) }
        if let thresholds { spec.thresholds = try BudgetSpec.thresholds(thresholds) }
        if let zone { spec.timeZone = zone == "default" ? nil : zone }
        if let channel { spec.channel = channel }
        return spec
    }
}

struct BudgetList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Every budget with its current period's spend, percent of the limit and last alert.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        try await global.oneShot { config, _, session in
            let listings = try await session.run { try BudgetStore.list(evaluator: BudgetEvaluator(config), on: $0) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(listings), as: UTF8.self))
            } else {
                print(BudgetText.table(listings, defaultZone: config.rollup.timeZone))
            }
        }
    }
}

struct BudgetAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a budget; prints it with its id.",
        discussion: "Example: rollupd budget add --name 'Acme production' --scope project --value acme --period month --limit 1500 --zone Europe/Berlin")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var fields: BudgetFields

    func validate() throws {
        guard fields.name != nil, fields.period != nil, fields.limit != nil else {
            throw ValidationError("add needs --name, --period and --limit (and --scope with --value unless the budget is global)")
        }
    }

    func run() async throws {
        let config = try await global.loadConfig()
        let spec = try checked(config) { () throws(BudgetSpecError) -> BudgetSpec in
            try fields.apply(to: BudgetSpec(name: "", scope: "global", scopeValue: nil, period: "", limitUSD: "1"))
        }
        try await global.oneShot(config: config) { _, _, session in
            let added = try await session.run { try BudgetStore.add(spec, on: $0) }
            print("added budget \(added.id): \(BudgetText.describe(added, defaultZone: config.rollup.timeZone))")
        }
    }
}

struct BudgetSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change a budget's fields (and --enable it); prints each change.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The budget's id (rollupd budget list).") var id: Int64
    @OptionGroup var fields: BudgetFields
    @Flag(help: "Enable the budget (rollupd budget disable turns it off).") var enable = false

    func run() async throws {
        let config = try await global.loadConfig()
        try await global.oneShot(config: config) { _, _, session in
            let before = try await session.run { try BudgetStore.read(id, on: $0) }
            guard let before else { throw BudgetCommandError.noSuchBudget(id) }
            var spec = try checked(config) { () throws(BudgetSpecError) -> BudgetSpec in try fields.apply(to: before.spec) }
            if enable { spec.enabled = true }
            let changes = BudgetText.changes(from: before.spec, to: spec)
            guard !changes.isEmpty else {
                print("budget \(id) unchanged: \(BudgetText.describe(before, defaultZone: config.rollup.timeZone))")
                return
            }
            let finalSpec = spec
            _ = try await session.run { try BudgetStore.update(id, to: finalSpec, on: $0) }
            print("changed budget \(id) (\(before.spec.name)): \(changes.joined(separator: ", "))")
        }
    }
}

struct BudgetDisable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Stop evaluating a budget (its alerts are kept; set --enable turns it on again).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The budget's id.") var id: Int64

    func run() async throws {
        let config = try await global.loadConfig()
        try await global.oneShot(config: config) { _, _, session in
            let updated = try await session.run { connection -> BudgetStore.Row? in
                guard var row = try BudgetStore.read(id, on: connection) else { return nil }
                row.spec.enabled = false
                return try BudgetStore.update(id, to: row.spec, on: connection)
            }
            guard let updated else { throw BudgetCommandError.noSuchBudget(id) }
            print("disabled budget \(id): \(BudgetText.describe(updated, defaultZone: config.rollup.timeZone))")
        }
    }
}

struct BudgetRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a budget and its recorded alerts (pending ones are never sent).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The budget's id.") var id: Int64

    func run() async throws {
        let config = try await global.loadConfig()
        try await global.oneShot(config: config) { _, _, session in
            let removed = try await session.run { try BudgetStore.remove(id, on: $0) }
            guard let removed else { throw BudgetCommandError.noSuchBudget(id) }
            print("removed budget \(id): \(BudgetText.describe(removed.row, defaultZone: config.rollup.timeZone)), and its \(removed.alerts) recorded alerts")
        }
    }
}

enum BudgetCommandError: Error, CustomStringConvertible {
    case noSuchBudget(Int64)
    var description: String {
        switch self {
        case .noSuchBudget(let id): "no budget \(id) (rollupd budget list shows them)"
        }
    }
}

/// Builds and validates a spec; a bad value exits 64 naming the option, a channel the config
/// lacks exits 78 naming the key.
func checked(_ config: RollupdConfig, _ build: () throws(BudgetSpecError) -> BudgetSpec) throws -> BudgetSpec {
    do {
        let spec = try build()
        try spec.validate(channels: config.channels.keys)
        return spec
    } catch {
        printError("rollupd: \(error)")
        throw error.key == nil ? ExitCode(64) : ExitStatus.config
    }
}
