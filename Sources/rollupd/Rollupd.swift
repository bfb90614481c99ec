import ArgumentParser

@main
struct Rollupd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollupd",
        abstract: "Keeps cost and analytics rollups of an LLM product's PostgreSQL events current.",
        version: rollupdVersion,
        subcommands: [Run.self, Once.self, Migrate.self, Rebuild.self, RetentionCommand.self, PrepareSource.self, CheckConfig.self, CheckDB.self, Grants.self, UninstallCommand.self, Status.self, BudgetCommand.self, ChannelCommand.self],
        defaultSubcommand: nil
    )
}
