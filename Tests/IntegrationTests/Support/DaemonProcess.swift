import Foundation
import RollupdCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real `rollupd` executable running as a child process, for tests of what only the whole
/// program does: exit codes, signals, log lines, crashes.
///
/// stdout and stderr go to files of the process's own temporary directory, never to pipes: a pipe
/// nobody drains fills up and stalls the child, and reading one until EOF hangs when another child
/// inherited its write end. The files can be read at any moment, while the process runs or after.
///
/// The child's environment is the test process's own, minus every variable that would override a
/// rollupd configuration key (`scripts/dev test` exports ROLLUPD_DATABASE_URL for its dev database,
/// which would win over the test's config file), plus `environment`.
///
/// Waiting never blocks a thread: `waitForExit` and `waitForStderr` poll with `Task.sleep`.
/// A process still running when its `DaemonProcess` goes away is SIGKILLed.
final class DaemonProcess: @unchecked Sendable {
    // @unchecked: `process` is configured in init and only read afterwards; the exit status,
    // written by the termination handler on Foundation's thread, sits behind a Mutex.
    let arguments: [String]
    private let process: Process
    private let outputDirectory: TemporaryDirectory
    private let stdoutPath: String
    private let stderrPath: String
    private let exitBox = ExitStatusBox()

    /// Starts `rollupd <arguments>`.
    init(_ arguments: [String], environment overrides: [String: String] = [:]) throws {
        self.arguments = arguments
        outputDirectory = try TemporaryDirectory(prefix: "rollupd-process")
        stdoutPath = try outputDirectory.write("stdout", "")
        stderrPath = try outputDirectory.write("stderr", "")
        process = Process()
        process.executableURL = URL(fileURLWithPath: try TestEnvironment.binary)
        process.arguments = arguments
        process.environment = Self.environment(overrides)
        process.standardInput = FileHandle.nullDevice
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        defer {
            try? stdout.close()
            try? stderr.close()
        }
        process.standardOutput = stdout
        process.standardError = stderr
        process.terminationHandler = { [exitBox] process in
            // The shell's convention: 128 + the signal for a process a signal ended.
            let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
            exitBox.value.withLock { $0 = status }
        }
        try process.run()
    }

    deinit {
        if exitStatus == nil { sigkill() }
    }

    /// The inherited environment without rollupd's configuration overrides, plus `overrides`.
    static func environment(_ overrides: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["ROLLUPD_CONFIG"] = nil
        for key in ConfigKeys.all { environment[RollupdConfig.environmentName(for: key.name)] = nil }
        environment.merge(overrides) { $1 }
        return environment
    }

    var pid: Int32 { process.processIdentifier }

    /// The exit status once the process has exited (128 + n when signal n ended it), else nil.
    var exitStatus: Int32? { exitBox.value.withLock { $0 } }

    var stdoutText: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderrText: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stderrLines: [String] { stderrText.split(separator: "\n").map(String.init) }

    /// SIGKILL: the process dies on the spot, as in a crash or an OOM kill.
    func sigkill() { send(SIGKILL) }

    /// SIGTERM: what systemd sends to stop the service.
    func terminate() { send(SIGTERM) }

    private func send(_ signal: Int32) {
        // Only while it has not been reaped: afterwards the pid may belong to someone else.
        guard exitStatus == nil else { return }
        kill(process.processIdentifier, signal)
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or nil if it still runs.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits up to `timeout` for a stderr line containing `text`; true if one appeared.
    func waitForStderr(containing text: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if stderrText.contains(text) { return true }
            // One last look after the process ended: it may have written the line on the way out.
            if exitStatus != nil { return stderrText.contains(text) }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// What a finished command did.
    struct Outcome: Sendable, CustomStringConvertible {
        /// nil: it was still running at the timeout, and was killed.
        var status: Int32?
        var stdout: String
        var stderr: String
        var description: String {
            "exit status \(status.map(String.init) ?? "none (timed out)")\n--- stdout:\n\(stdout)--- stderr:\n\(stderr)"
        }
    }

    /// Runs `rollupd <arguments>` to completion (SIGKILLed after `timeout`).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> Outcome {
        let child = try DaemonProcess(arguments, environment: environment)
        let status = await child.waitForExit(timeout: timeout)
        if status == nil {
            child.sigkill()
            _ = await child.waitForExit(timeout: .seconds(5))
        }
        return Outcome(status: status, stdout: child.stdoutText, stderr: child.stderrText)
    }
}

private final class ExitStatusBox: Sendable {
    let value = Mutex<Int32?>(nil)
}

/// A directory of its own under the system's temporary directory, removed with everything in it
/// when the last reference goes away.
final class TemporaryDirectory: Sendable {
    let path: String

    init(prefix: String = "rollupd-test") throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `contents` to `name` in this directory; returns the file's path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let file = path + "/" + name
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// rollupd configuration files as tests need them.
enum DaemonConfig {
    /// YAML for `values` (dotted key -> value), every value a double-quoted YAML string.
    static func yaml(_ values: [String: String]) -> String {
        var sections: [String: [(String, String)]] = [:]
        for (key, value) in values {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            precondition(parts.count == 2, "config keys are section.key: \(key)")
            sections[parts[0], default: []].append((parts[1], value))
        }
        var lines: [String] = []
        for section in sections.keys.sorted() {
            lines.append("\(section):")
            for (key, value) in sections[section]!.sorted(by: { $0.0 < $1.0 }) {
                let quoted = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                lines.append("  \(key): \"\(quoted)\"")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A config file in `directory` for a daemon of `database`: the repo's migrations, quick polls.
    /// `extraYAML` is appended as is (whole top-level sections `yaml` cannot express, e.g. `sources:`).
    static func file(
        in directory: TemporaryDirectory, name: String = "rollupd.yaml", database: TestDatabase,
        _ extra: [String: String] = [:], channels: [String: [String: String]] = [:], extraYAML: String = ""
    ) throws -> String {
        var values = [
            "database.url": database.conninfo,
            "migrations.directory": TestEnvironment.migrationsDirectory,
            "rollup.poll_interval": "50ms",
            "rollup.time_zone": "UTC",
            "leader.standby_poll": "100ms",
            "log.level": "info",
            // Many daemons run at once in the suite: each gets a free port (logged at start).
            "metrics.listen": "127.0.0.1:0",
        ]
        values.merge(extra) { $1 }
        var text = yaml(values)
        if !channels.isEmpty {
            text += "channels:\n"
            for (channel, settings) in channels.sorted(by: { $0.key < $1.key }) {
                text += "  \(channel):\n" + settings.sorted(by: { $0.key < $1.key }).map { "    \($0.key): \"\($0.value)\"\n" }.joined()
            }
        }
        if !extraYAML.isEmpty { text += extraYAML.hasSuffix("\n") ? extraYAML : extraYAML + "\n" }
        return try directory.write(name, text)
    }
}
