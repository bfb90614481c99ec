import Dispatch
import Foundation
import Postgres
import RollupdStore
import Testing

/// Where the test command's private PostgreSQL is. The suite fails, never skips, without it.
enum TestEnvironment {
    static var adminURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["ROLLUPD_TEST_ADMIN_URL"], !url.isEmpty else {
                throw SetupError("ROLLUPD_TEST_ADMIN_URL is not set: run the suite with `scripts/dev test`, which starts PostgreSQL")
            }
            return url
        }
    }

    static var repoRoot: String {
        ProcessInfo.processInfo.environment["ROLLUPD_REPO"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().path
    }

    static var migrationsDirectory: String { repoRoot + "/migrations" }

    /// The product's `events` and `analytics_events` as the demo creates them (scripts/demo/app_schema.sql).
    static var appSchemaSQL: String {
        get throws { try String(contentsOfFile: repoRoot + "/scripts/demo/app_schema.sql", encoding: .utf8) }
    }

    /// The real `rollupd` executable, built by `swift build` before the tests run.
    static var binary: String {
        get throws {
            let path = ProcessInfo.processInfo.environment["ROLLUPD_BINARY"] ?? repoRoot + "/.build/debug/rollupd"
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw SetupError("no rollupd binary at \(path): run `swift build` first (scripts/dev test does)")
            }
            return path
        }
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A database of its own for one test, dropped at the end. `migrated` ones are cloned from a
/// template that rollupd's own Migrator built once per test run.
struct TestDatabase: Sendable {
    let name: String
    let conninfo: String

    static func create(migrated: Bool = true) async throws -> TestDatabase {
        let name = "rollupd_t_\(UInt32.random(in: 0...UInt32.max))_\(ProcessInfo.processInfo.processIdentifier)"
        // Always first: building the template also clears databases that earlier runs left.
        let migratedTemplate = try await Template.shared.name()
        let template = migrated ? migratedTemplate : "template0"
        _ = try await onOwnThread { try admin { try $0.query("CREATE DATABASE \(name) TEMPLATE \(template)") } }
        return TestDatabase(name: name, conninfo: try conninfo(database: name))
    }

    func connect() throws -> PGConnection {
        let connection = try PGConnection(settings: PGConnectionSettings(conninfo: conninfo))
        try connection.query("SET TimeZone = 'UTC'")
        return connection
    }

    func session(label: String = "test") -> DatabaseSession {
        DatabaseSession(settings: PGConnectionSettings(conninfo: conninfo), label: label, setup: ["SET TimeZone = 'UTC'"])
    }

    func drop() async {
        let name = self.name
        _ = try? await onOwnThread { try Self.admin { try $0.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
    }

    /// The admin conninfo with dbname replaced (a later keyword wins in a libpq conninfo string).
    static func conninfo(database: String) throws -> String {
        "\(try TestEnvironment.adminURL) dbname=\(database)"
    }

    static func admin<T>(_ body: (PGConnection) throws -> T) throws -> T {
        let connection = try PGConnection(settings: PGConnectionSettings(conninfo: try TestEnvironment.adminURL))
        return try body(connection)
    }
}

/// Builds the migrated template once per test process, with rollupd's own Migrator.
actor Template {
    static let shared = Template()
    private var building: Task<String, any Error>?

    func name() async throws -> String {
        if let building { return try await building.value }
        let task = Task { try await onOwnThread { try Self.build() } }
        building = task
        return try await task.value
    }

    /// One test run per cluster at a time: the run starts by clearing what earlier (perhaps
    /// killed) runs left behind.
    private static func build() throws -> String {
        let name = "rollupd_template"
        try TestDatabase.admin { admin in
            let leftovers = try admin.query("""
                SELECT datname FROM pg_database WHERE datname LIKE 'rollupd\\_t\\_%' OR datname LIKE 'rollupd\\_template%'
                """).rows.map { try $0.string(0) }
            for database in leftovers {
                try admin.query("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
            }
            try admin.query("CREATE DATABASE \(name) TEMPLATE template0")
        }
        do {
            let connection = try PGConnection(settings: PGConnectionSettings(conninfo: try TestDatabase.conninfo(database: name)))
            // The product's tables first, as an app database has them; rollupd never creates them.
            try connection.execute(script: try TestEnvironment.appSchemaSQL)
            _ = try Migrator(directory: TestEnvironment.migrationsDirectory).migrate(on: connection)
        }  // the connection closes here: CREATE DATABASE ... TEMPLATE needs the template idle
        return name
    }
}

/// Runs `body` with a fresh database and drops it afterwards, whatever happens.
func withTestDatabaseAsync<T>(migrated: Bool = true, _ body: (TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(migrated: migrated)
    do {
        let value = try await body(database)
        await database.drop()
        return value
    } catch {
        await database.drop()
        throw error
    }
}

/// The same for a blocking body (plain libpq calls), run on a thread of its own: blocking Swift's
/// cooperative pool (two threads on a 2-core machine) would starve the tests that run beside it.
func withTestDatabase<T: Sendable>(migrated: Bool = true, _ body: @escaping @Sendable (TestDatabase) throws -> T) async throws -> T {
    try await withTestDatabaseAsync(migrated: migrated) { database in
        try await onOwnThread { try body(database) }
    }
}

/// Runs blocking work on a dispatch queue of its own and awaits it.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue(label: "rollupd.test.blocking").async {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failing random workload can be replayed
/// from the seed printed in the test's name or message.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
