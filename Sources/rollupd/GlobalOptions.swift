import ArgumentParser
import Foundation
import Logging
import RollupdCore
import Systemd

/// sysexits(3) codes rollupd exits with, besides 0 and 1.
enum ExitStatus {
    static let config = ExitCode(78)  // EX_CONFIG: systemd's RestartPreventExitStatus=78
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (env ROLLUPD_CONFIG).", valueName: "path"))
    var config: String = ProcessInfo.processInfo.environment["ROLLUPD_CONFIG"] ?? "/etc/rollupd/rollupd.yaml"

    /// Loads and validates the configuration; on error prints it and exits 78.
    func loadConfig() async throws -> RollupdConfig {
        do {
            return try await RollupdConfig.load(path: config)
        } catch {
            printError("rollupd: \(error)")
            throw ExitStatus.config
        }
    }

    /// Sets up logging once for the process: native journal entries under journald, `<N>`-prefixed
    /// lines on stderr otherwise. The returned level can be changed later (SIGHUP reload).
    @discardableResult
    func bootstrapLogging(_ config: RollupdConfig, level: SharedLogLevel? = nil) -> Logger {
        let shared = level ?? SharedLogLevel(config.log.level)
        let journal = config.log.format == .journal || (config.log.format == .auto && JournalLogHandler.stderrIsJournal)
        LoggingSystem.bootstrap { _ in
            journal ? JournalLogHandler(level: config.log.level, shared: shared) as any LogHandler
                : PriorityPrefixLogHandler(level: config.log.level, shared: shared)
        }
        return Logger(label: "rollupd")
    }
}

/// `--json` output: pretty, keys sorted, so scripts and diffs see a stable document.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
