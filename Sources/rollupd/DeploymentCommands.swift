import ArgumentParser
import Foundation
import Postgres
import RollupdCore
import RollupdDaemon
import RollupdStore

struct CheckDB: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-db",
        abstract: "Report what rollupd lacks in the database, with the configured role, and the SQL that fixes each; exit 0 when it can run, 1 when not.",
        discussion: "Migrations, the product's tables and their columns, change tracking on every source (column, index, triggers), and the role's rights.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        try await global.oneShot { config, _, session in
            let report = try await session.run { try DeploymentReport.read(config, on: $0) }
            if json {
                try printJSON(report)
            } else {
                print(report.text)
            }
            if !report.canRun { throw ExitCode.failure }
        }
    }
}

struct Grants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the GRANT statements the runtime role needs for `rollupd run` (run them as the role that ran `rollupd migrate`).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The role `rollupd run` connects as.") var role: String

    func run() async throws {
        let config = try await global.loadConfig()
        let name: SQLIdentifier
        do { name = try SQLIdentifier(role) } catch {
            printError("rollupd: --role: \(error)")
            throw ExitStatus.config
        }
        print(AccessCheck(config).grants(to: name), terminator: "")
    }
}

struct UninstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Print the SQL that removes everything rollupd added to the database (review it, then run it with psql).")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the SQL (required: rollupd never runs it itself).") var print = false

    func validate() throws {
        guard print else { throw ValidationError("uninstall only prints the SQL: add --print, review it, and run it with psql as the tables' owner") }
    }

    func run() async throws {
        try await global.oneShot { config, _, session in
            let sql = try await session.run { try Uninstall.sql(appSchema: config.database.schema, on: $0) }
            Swift.print(sql, terminator: "")
        }
    }
}
