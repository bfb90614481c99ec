import Foundation
import Postgres
import Synchronization
import Testing

/// A product's database as a real product has it before rollupd arrives, built without any of
/// rollupd's code: a database of its own (from template0, owned by the app's role), the app's
/// role (LOGIN, owner of the database and of every table it created, connecting as itself to
/// create them), rollupd's runtime role (LOGIN, no rights yet), the app's tables in the app's
/// schema with the app's own indexes, and rows in them.
///
/// Every role name is unique to the test (except a fixed runtime role name a test asks for,
/// such as `rollupd`, which is created only when missing and dropped only when created here).
/// `withAppDatabase` drops the database and the roles at the end, whatever happens; roles a
/// killed run left behind are dropped by the first AppDatabase of the next run (after the
/// shared template has dropped the leftover `rollupd_t_*` databases they had rights in).
struct AppDatabase: Sendable {
    struct Options: Sendable {
        /// The product's schema (`database.schema`); created by the app's role unless `public`.
        var schema = "public"
        var events = true
        var analyticsEvents = true
        /// Seed 001's Drizzle `cost_aggregates` (integer counters, numeric(12,6) cost, numeric(10,2)
        /// avg_latency, no total_latency_ms) with its indexes and a few rows the app wrote itself.
        var drizzleCostAggregates = false
        /// Seed 003's (kimbleai) `api_cost_tracking` and its own `budget_alerts`, with rows.
        var seed003 = false
        /// Seed 002's `token_usage` (with its `users` and `sessions`), with rows.
        var seed002 = false
        /// A fixed name for rollupd's runtime role (e.g. `rollupd`, named like rollupd's schema);
        /// nil: a unique `rollupd_t<hex>`.
        var runtimeRoleName: String? = nil
        var eventRows = 400
        var analyticsRows = 300
        var seed: UInt64 = 13
    }

    let name: String
    let schema: String
    /// The app's role: owns the database and the app's tables.
    let owner: String
    /// rollupd's runtime role: LOGIN, nothing granted.
    let runtime: String
    let options: Options
    /// Roles to drop at the end: the owner, the runtime role unless it already existed, and
    /// every role `createRole` made.
    private let createdRoles: RoleList

    // MARK: connection strings

    /// `role`'s conninfo for this database (the cluster trusts local connections: no password).
    func conninfo(role: String) throws -> String {
        "\(try TestEnvironment.adminURL) dbname=\(name) user=\(role)"
    }

    var ownerConninfo: String { get throws { try conninfo(role: owner) } }
    var runtimeConninfo: String { get throws { try conninfo(role: runtime) } }
    /// The superuser, in this database.
    var adminConninfo: String { get throws { try TestDatabase.conninfo(database: name) } }

    /// A connection as `role` with its session settings pinned (whatever ALTER DATABASE/ROLE
    /// SET a test made hostile): ISO dates, UTC, and `searchPath` (nil: the server's default,
    /// `"$user", public`, as an app that never sets it).
    func connect(role: String? = nil, searchPath: String?) throws -> PGConnection {
        let info = try role.map { try conninfo(role: $0) } ?? adminConninfo
        let connection = try PGConnection(settings: PGConnectionSettings(conninfo: info, applicationName: "rollupd-test-app"))
        try connection.query("SET DateStyle = 'ISO, YMD'")
        try connection.query("SET TimeZone = 'UTC'")
        try connection.query("SET IntervalStyle = 'postgres'")
        if let searchPath { try connection.query("SELECT pg_catalog.set_config('search_path', $1, false)", [searchPath]) }
        return connection
    }

    /// The product's own search path: its schema only.
    var appSearchPath: String { SQLQuote.identifier(schema) }

    /// The checker's search path: the product's schema, then rollupd's, so Oracle's unqualified
    /// names find the product's `events`, `cost_aggregates`, `hourly_rollups` (and `model_pricing`)
    /// and rollupd's `user_cost_aggregates`, wherever a (correct or not) rollupd put the latter.
    var checkSearchPath: String { "\(SQLQuote.identifier(schema)), rollupd" }

    /// Runs `body` on a thread of its own with a fresh connection as the app's owner role, its
    /// search_path the product's schema (as the app's own connections set it), or with
    /// `serverDefaultSearchPath` the server's default (an app whose connections never set one).
    func asOwner<T: Sendable>(serverDefaultSearchPath: Bool = false, _ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let path: String? = serverDefaultSearchPath ? nil : appSearchPath
        return try await onOwnThread { try body(try self.connect(role: self.owner, searchPath: path)) }
    }

    /// The same as the superuser, with the checker's search path (for oracles and catalog reads).
    func asAdmin<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await onOwnThread { try body(try self.connect(searchPath: self.checkSearchPath)) }
    }

    /// A session (its own serial queue) as `role`, for a connection held across awaits.
    func session(role: String?, searchPath: String?, label: String) throws -> DatabaseSession {
        let info = try role.map { try conninfo(role: $0) } ?? adminConninfo
        var setup = ["SET DateStyle = 'ISO, YMD'", "SET TimeZone = 'UTC'"]
        if let searchPath { setup.append("SELECT pg_catalog.set_config('search_path', '\(searchPath.replacingOccurrences(of: "'", with: "''"))', false)") }
        return DatabaseSession(settings: PGConnectionSettings(conninfo: info, applicationName: "rollupd-test-app"), label: label, setup: setup)
    }

    // MARK: rollupd configuration

    /// A config file for rollupd connecting as `role` (DaemonConfig's defaults: the repo's
    /// migrations, quick polls, a free metrics port). `database.schema` is written only when the
    /// product's schema is not `public`, so the default is what the public-schema tests use.
    func config(in directory: TemporaryDirectory, name fileName: String = "rollupd.yaml", role: String,
                _ extra: [String: String] = [:], extraYAML: String = "") throws -> String {
        var values = extra
        if schema != "public" && values["database.schema"] == nil { values["database.schema"] = schema }
        return try DaemonConfig.file(in: directory, name: fileName, database: TestDatabase(name: name, conninfo: try conninfo(role: role)),
                                     values, extraYAML: extraYAML)
    }

    /// The owner's config (for migrate, prepare-source, grants, uninstall).
    func ownerConfig(in directory: TemporaryDirectory, _ extra: [String: String] = [:], extraYAML: String = "") throws -> String {
        try config(in: directory, name: "owner.yaml", role: owner, extra, extraYAML: extraYAML)
    }

    /// The runtime role's config: `migrations.apply_on_start: false` (migrations are the owner's job).
    func runtimeConfig(in directory: TemporaryDirectory, role: String? = nil, _ extra: [String: String] = [:], extraYAML: String = "") throws -> String {
        var values = ["migrations.apply_on_start": "false"]
        values.merge(extra) { $1 }
        let role = role ?? runtime
        return try config(in: directory, name: "runtime-\(role).yaml", role: role, values, extraYAML: extraYAML)
    }

    /// Generous rights for the runtime role (run as the owner, after migrate and prepare-source):
    /// everything on every table of the product's schema and rollupd's. For the tests that are
    /// about something else than the exact grant list (DeploymentTests' least-privilege test uses
    /// `rollupd grants`' own output instead).
    func grantGenerously(to role: String? = nil) async throws {
        let role = SQLQuote.identifier(role ?? runtime)
        let schemas = "\(SQLQuote.identifier(schema)), rollupd"
        try await asOwner { connection in
            try connection.execute(script: """
                GRANT USAGE ON SCHEMA \(schemas) TO \(role);
                GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA \(schemas) TO \(role);
                GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \(schemas) TO \(role);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA \(schemas) TO \(role);
                """)
        }
    }

    // MARK: roles

    /// A further LOGIN role with no rights, dropped at the end like the others.
    func createRole(prefix: String) async throws -> String {
        let role = "\(prefix)_t\(Self.hex())"
        _ = try await onOwnThread { try TestDatabase.admin { try $0.query("CREATE ROLE \(role) LOGIN") } }
        createdRoles.append(role)
        return role
    }

    // MARK: life cycle

    static func create(_ options: Options = Options()) async throws -> AppDatabase {
        // First: the template build drops leftover databases, then leftover roles go.
        _ = try await Template.shared.name()
        try await LeftoverRoles.shared.clear()
        let suffix = hex()
        let database = AppDatabase(name: "rollupd_t_\(suffix)_\(ProcessInfo.processInfo.processIdentifier)", schema: options.schema,
                                   owner: "app_t\(suffix)", runtime: options.runtimeRoleName ?? "rollupd_t\(suffix)",
                                   options: options, createdRoles: RoleList())
        do {
            try await database.createRolesAndDatabase()
            try await database.createAppObjects()
        } catch {
            await database.drop()
            throw error
        }
        return database
    }

    private func createRolesAndDatabase() async throws {
        let (owner, runtime, name, createdRoles) = (owner, runtime, name, createdRoles)
        _ = try await onOwnThread {
            try TestDatabase.admin { admin in
                try admin.query("CREATE ROLE \(owner) LOGIN")
                createdRoles.append(owner)
                // A fixed name (say `rollupd`) may exist already: used as it is, and kept.
                let exists = try admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [runtime]).rows.count == 1
                if !exists {
                    try admin.query("CREATE ROLE \(SQLQuote.identifier(runtime)) LOGIN")
                    createdRoles.append(runtime)
                }
                // The app's role owns its database (CREATE on it, and on its public schema, PG 15's
                // pg_database_owner), as a managed database's application role does.
                try admin.query("CREATE DATABASE \(name) TEMPLATE template0 OWNER \(owner)")
            }
        }
    }

    /// The app's DDL and rows, run as the app's role; `create` runs it (app first).
    private func createAppObjects() async throws {
        let options = options
        if options.schema != "public" {
            _ = try await asOwner(serverDefaultSearchPath: true) { try $0.query("CREATE SCHEMA \(SQLQuote.identifier(options.schema))") }
        }
        try await asOwner { connection in
            var random = SeededRandom(seed: options.seed)
            if options.events {
                try connection.execute(script: SeedSchema.events + Self.appEventsIndexes)
                try Workload.insertEvents(count: options.eventRows, maxAgeHours: 72, random: &random, on: connection)
                try Workload.verifySome(options.eventRows / 10, random: &random, on: connection)
            }
            if options.analyticsEvents {
                try connection.execute(script: Self.analyticsEvents)
                try Workload.insertAnalytics(count: options.analyticsRows, maxAgeHours: 72, random: &random, on: connection)
            }
            if options.drizzleCostAggregates {
                try connection.execute(script: Self.drizzleCostAggregates + Self.appWrittenCostAggregates)
            }
            if options.seed003 {
                try connection.execute(script: Self.seed003)
                try connection.execute(script: Self.insertApiCostTracking(150) + ";" + Self.insertBudgetAlerts)
            }
            if options.seed002 {
                try connection.execute(script: SeedShapes.tokenUsage)
                try connection.query("INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 3) g")
                try connection.query(SeedShapes.insertTokenUsage(120))
            }
        }
    }

    /// Drops the database, then the roles this fixture created (their rights went with it).
    func drop() async {
        let (name, roles) = (name, createdRoles.all)
        _ = try? await onOwnThread {
            try TestDatabase.admin { admin in
                try admin.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
                for role in roles.reversed() {
                    _ = try? admin.query("DROP ROLE IF EXISTS \(SQLQuote.identifier(role))")
                }
            }
        }
    }

    static func hex() -> String { String(format: "%08x", UInt32.random(in: 0...UInt32.max)) }

    // MARK: the app's DDL (seed write-ups, as the app's own migrations create them)

    /// Seed 001's own indexes on events (drizzle `index(...)`): rollupd must neither need nor add them.
    static let appEventsIndexes = """
        CREATE INDEX idx_events_feature_time ON events (project_id, feature, created_at);
        CREATE INDEX idx_events_created_at ON events (created_at);
        """

    /// analytics_events as the product has it (the columns of migrations/001_source_tables.sql at
    /// d3b4d0f, from before rollupd stopped creating it), with the product's indexes.
    static let analyticsEvents = """
        CREATE TABLE analytics_events (
            id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
            user_id     text,
            session_id  text NOT NULL,
            event_type  text NOT NULL,
            tool_name   text,
            action      text,
            properties  jsonb,
            demo_mode   boolean NOT NULL DEFAULT true,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX idx_analytics_events_occurred_at ON analytics_events (occurred_at);
        CREATE INDEX idx_analytics_events_session ON analytics_events (session_id);
        """

    /// Seed 001's Drizzle cost_aggregates (apps/server/src/db/schema.ts), as drizzle-kit creates it.
    static let drizzleCostAggregates = """
        CREATE TABLE cost_aggregates (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
            project_id text DEFAULT 'default' NOT NULL,
            feature text NOT NULL,
            model text NOT NULL,
            period text NOT NULL,
            period_start timestamp with time zone NOT NULL,
            total_cost numeric(12, 6) DEFAULT '0' NOT NULL,
            total_tokens integer DEFAULT 0 NOT NULL,
            call_count integer DEFAULT 0 NOT NULL,
            avg_latency numeric(10, 2) DEFAULT '0' NOT NULL
        );
        CREATE UNIQUE INDEX idx_cost_agg_uniq ON cost_aggregates USING btree (project_id, feature, model, period, period_start);
        CREATE INDEX idx_cost_agg_period ON cost_aggregates USING btree (project_id, period, period_start);
        """

    /// What the app's own aggregation job wrote before rollupd: one bucket events also fall in
    /// (wrong counts), one no event falls in. rollupd's first pass replaces them.
    static let appWrittenCostAggregates = """
        INSERT INTO cost_aggregates (project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, avg_latency) VALUES
            ('acme-web', 'chat', 'gpt-4o', 'hour', date_trunc('hour', now() - interval '2 hours'), 1.5, 12345, 12345, 250.5),
            ('legacy', 'chat', 'gpt-4', 'day', '2020-01-01T00:00:00Z', 99.123456, 1000, 7, 812.25);
        """

    /// Seed 003 (kimbleai): api_cost_tracking and its own budget_alerts.
    static let seed003 = SeedShapes.apiCostTracking + budgetAlerts

    /// kimbleai's budget_alerts: another shape than rollupd's table of the same name.
    static let budgetAlerts = """
        CREATE TABLE budget_alerts (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id uuid,
            alert_type text NOT NULL,
            threshold_percent integer,
            message text,
            acknowledged boolean DEFAULT false,
            created_at timestamptz DEFAULT now()
        );
        """

    static let insertBudgetAlerts = """
        INSERT INTO budget_alerts (user_id, alert_type, threshold_percent, message, acknowledged, created_at) VALUES
            ('11111111-1111-1111-1111-111111111111', 'monthly_budget', 80, 'You have used 80% of your monthly budget', false, '2025-10-01T09:00:00Z'),
            ('11111111-1111-1111-1111-111111111111', 'monthly_budget', 100, 'Monthly budget exceeded', true, '2025-10-20T17:30:00Z'),
            (NULL, 'daily_spike', NULL, 'Spend today is 3x the 7-day average', false, '2025-10-21T08:15:00Z')
        """

    /// `count` api_cost_tracking rows, 11 minutes apart back from now.
    static func insertApiCostTracking(_ count: Int) -> String {
        """
        INSERT INTO api_cost_tracking (user_id, model, endpoint, input_tokens, output_tokens, cost_usd, "timestamp")
        SELECT 'user-' || (g % 4), (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet'])[1 + g % 3],
               (ARRAY['chat', 'search', 'summarize'])[1 + g % 3], 50 + g, 10 + g, round(g * 0.0013, 6),
               now() - g * interval '11 minutes'
        FROM generate_series(1, \(count)) g
        """
    }
}

/// Runs `body` with a fresh app database; drops it and its roles afterwards, whatever happens.
func withAppDatabase<T>(_ options: AppDatabase.Options = AppDatabase.Options(), _ body: (AppDatabase) async throws -> T) async throws -> T {
    let database = try await AppDatabase.create(options)
    do {
        let value = try await body(database)
        await database.drop()
        return value
    } catch {
        await database.drop()
        throw error
    }
}

/// Role names recorded for dropping, appended from the fixture's setup thread.
final class RoleList: Sendable {
    private let roles = Mutex<[String]>([])
    func append(_ role: String) { roles.withLock { $0.append(role) } }
    var all: [String] { roles.withLock { $0 } }
}

/// Drops, once per test process, the roles an earlier (killed) run's AppDatabases left behind.
/// Runs after the template build dropped the leftover databases, so nothing depends on them.
actor LeftoverRoles {
    static let shared = LeftoverRoles()
    private var clearing: Task<Void, any Error>?

    func clear() async throws {
        if let clearing { return try await clearing.value }
        let task = Task {
            try await onOwnThread {
                try TestDatabase.admin { admin in
                    let leftovers = try admin.query("""
                        SELECT rolname FROM pg_roles WHERE rolname ~ '^(app|rollupd|readonly)_t[0-9a-f]{8}$'
                        """).rows.map { try $0.string(0) }
                    for role in leftovers { _ = try? admin.query("DROP ROLE IF EXISTS \(role)") }
                }
            }
        }
        clearing = task
        try await task.value
    }
}

enum SQLQuote {
    static func identifier(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}

/// `psql` applying a script as an operator would (`rollupd grants ... | psql`): statement by
/// statement, stopping at the first error, so CONCURRENTLY statements run outside a transaction.
enum Psql {
    static func run(_ script: String, conninfo: String, timeout: Duration = .seconds(60)) async throws -> DaemonProcess.Outcome {
        let directory = try TemporaryDirectory(prefix: "rollupd-psql")
        let input = try directory.write("script.sql", script)
        let stdoutPath = try directory.write("stdout", "")
        let stderrPath = try directory.write("stderr", "")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", input]
        var environment = ProcessInfo.processInfo.environment
        for key in ["PGOPTIONS", "PGDATESTYLE", "PGTZ", "PGAPPNAME", "PGDATABASE", "PGSERVICE"] { environment[key] = nil }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        try? stdout.close()
        try? stderr.close()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        var status: Int32? = nil
        if process.isRunning {
            process.terminate()
        } else {
            status = process.terminationStatus
        }
        return DaemonProcess.Outcome(status: status, stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
                                     stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }
}

/// A schema as the catalogs describe it, one sorted line per object, read with plain SQL over
/// pg_catalog: the database's schemas and extensions, and in `schema` its relations, columns
/// (type, default, nullability, identity, generated), indexes (definitions, validity),
/// constraints, triggers and functions.
enum CatalogSnapshot {
    static func take(schema: String, on connection: PGConnection) throws -> [String] {
        let queries = [
            """
            SELECT 'schema ' || nspname FROM pg_namespace
            WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname !~ '^pg_(toast_)?temp_'
            """,
            "SELECT 'extension ' || extname FROM pg_extension",
            """
            SELECT format('relation %s kind=%s', c.relname, c.relkind) FROM pg_class c
            WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I')
            """,
            """
            SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s', c.relname, a.attname, a.attnum,
                          format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),
                          a.attidentity, a.attgenerated)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
            """,
            """
            SELECT format('index %s on %s: %s valid=%s', ic.relname, tc.relname, pg_get_indexdef(i.indexrelid), i.indisvalid)
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
            WHERE tc.relnamespace = $1::regnamespace
            """,
            """
            SELECT format('constraint %s.%s %s: %s', c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid))
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = $1::regnamespace
            """,
            """
            SELECT format('trigger %s.%s: %s', c.relname, t.tgname, pg_get_triggerdef(t.oid))
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
            """,
            """
            SELECT format('function %s(%s)', p.proname, pg_get_function_identity_arguments(p.oid))
            FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
            """,
        ]
        var lines: [String] = []
        for query in queries {
            let parameters: [any PGParameter] = query.contains("$1") ? [SQLQuote.identifier(schema)] : []
            lines += try connection.query(query, parameters).rows.map { try $0.string(0) }
        }
        return lines.sorted()
    }

    /// The lines of `before` gone and of `after` new, for a readable failure message.
    static func difference(before: [String], after: [String]) -> String {
        let gone = Set(before).subtracting(after).sorted().map { "- \($0)" }
        let new = Set(after).subtracting(before).sorted().map { "+ \($0)" }
        return (gone + new).joined(separator: "\n")
    }
}
