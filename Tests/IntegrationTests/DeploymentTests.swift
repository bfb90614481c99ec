import Foundation
import Postgres
import Testing

/// Issue 13: rollupd dropped next to a real product database. Every test builds the product's
/// database the way the product did (AppDatabase: the app's role owns the database and created
/// its tables first, with rows in them), prepares it with `rollupd migrate` as that owner role,
/// and runs `rollupd once`/`run` as a runtime role of its own (unless the test is about the
/// migration itself), through the real binary. Rollups are compared with Oracle's independent
/// recomputation, schemas with plain pg_catalog queries (CatalogSnapshot).
@Suite struct DeploymentTests {
    static let commandTimeout = Duration.seconds(90)

    // MARK: 1. shadow tables: the default search_path and a role named like rollupd's schema

    /// The runtime role is called `rollupd`, so the default search_path (`"$user", public`) finds
    /// schema `rollupd` first: nothing rollupd runs may resolve an unqualified name through it.
    @Test(.timeLimit(.minutes(5)))
    func theAppsTablesInPublicAreRolledUpByARoleNamedLikeRollupdsSchema() async throws {
        var options = AppDatabase.Options()
        options.runtimeRoleName = "rollupd"
        options.seed = 1301
        try await withAppDatabase(options) { database in
            let directory = try TemporaryDirectory()
            let indexesBefore = try await database.asAdmin { try Self.indexes(of: "public.events", on: $0) }

            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            try #require(migrate.status == 0, "\(migrate)")
            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(once.status == 0, "\(once)")

            let placement = try await database.asAdmin { connection in
                try ["rollupd.events", "rollupd.analytics_events", "rollupd.cost_aggregates", "rollupd.hourly_rollups",
                     "public.cost_aggregates", "public.hourly_rollups"].filter { try Self.exists($0, on: connection) }
            }
            #expect(placement == ["public.cost_aggregates", "public.hourly_rollups"], "no shadow tables in schema rollupd")
            #expect(try await Self.oracleDifferences(database) == [], "the app's rows in public.events:\n\(once.stderr)")

            // rollupd adds its own index, never the app's idx_events_* (seed 001 has four; this app made two).
            let indexesAfter = try await database.asAdmin { try Self.indexes(of: "public.events", on: $0) }
            #expect(indexesAfter.filter { $0.hasPrefix("idx_events_") } == indexesBefore.filter { $0.hasPrefix("idx_events_") })
            #expect(Set(indexesAfter).subtracting(indexesBefore) == ["events_rollupd_xid_idx"], "\(indexesAfter)")

            // What an older rollupd left in a deployment hit by this bug: empty copies of the
            // product's tables in schema rollupd, first on the runtime role's default search_path.
            // Nothing may read or write them.
            try await Self.plantShadowTables(["events", "analytics_events", "cost_aggregates", "hourly_rollups"], in: database)
            try await database.grantGenerously()  // check-db asks for rights on every table in schema rollupd

            // Rows the app writes afterwards, as its own role.
            try await database.asOwner { connection in
                var random = SeededRandom(seed: 1302)
                try Workload.insertEvents(count: 120, maxAgeHours: 24, random: &random, on: connection)
                try Workload.insertAnalytics(count: 80, maxAgeHours: 24, random: &random, on: connection)
                try Workload.verifySome(10, random: &random, on: connection)
                try Workload.deleteSome(5, random: &random, on: connection)
            }
            let again = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(again.status == 0, "\(again)")
            #expect(try await Self.oracleDifferences(database) == [], "after the app's later writes:\n\(again.stderr)")
            #expect(try await Self.shadowRows(in: database) == 0, "rows written to the shadow tables")
        }
    }

    /// A source table the product lacks is an error naming it and the key that says where to
    /// look; rollupd never makes an empty one.
    @Test(.timeLimit(.minutes(3)), arguments: ["events", "analytics_events"])
    func migrateRefusesAMissingSourceTableNamingItAndDatabaseSchema(missing: String) async throws {
        var options = AppDatabase.Options()
        options.events = missing != "events"
        options.analyticsEvents = missing != "analytics_events"
        try await withAppDatabase(options) { database in
            let directory = try TemporaryDirectory()
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            #expect(migrate.status == 78, "\(migrate)")
            #expect(Self.mentions(migrate.stderr, missing), "names \(missing): \(migrate)")
            #expect(migrate.stderr.contains("database.schema"), "names the key: \(migrate)")
            let made = try await database.asAdmin { connection in
                try connection.query("SELECT count(*) FROM pg_class WHERE relname = $1 AND relkind IN ('r', 'p')", [missing]).rows[0].int64(0)
            }
            #expect(made == 0, "rollupd created a table \(missing)")
        }
    }

    // MARK: 2. a product schema other than public

    /// The product's tables in schema `app`, which neither role's search_path names; a second
    /// app's `events` in public (another project's rows) that rollupd must not read or touch.
    @Test(.timeLimit(.minutes(5)))
    func rollupsLandInTheConfiguredProductSchema() async throws {
        var options = AppDatabase.Options()
        options.schema = "app"
        options.seed = 1303
        try await withAppDatabase(options) { database in
            try await database.asOwner(serverDefaultSearchPath: true) { connection in
                try connection.execute(script: "CREATE TABLE public.events (\(SeedSchema.eventsColumns), PRIMARY KEY (id))")
                var random = SeededRandom(seed: 1304)
                try Workload.insertEvents(count: 50, maxAgeHours: 24, random: &random, on: connection)
                try connection.query("UPDATE public.events SET project_id = 'decoy-' || project_id")
            }
            let directory = try TemporaryDirectory()
            let ownerConfig = try database.ownerConfig(in: directory)
            let migrate = try await Self.rollupd(["migrate", "--config", ownerConfig])
            try #require(migrate.status == 0, "\(migrate)")
            // The runtime role gets what `rollupd grants` prints for this schema, nothing else.
            let grants = try await Self.rollupd(["grants", "--config", ownerConfig, "--role", database.runtime])
            try #require(grants.status == 0, "\(grants)")
            #expect(Self.grantLines(grants.stdout).contains { $0.contains("app.cost_aggregates") || $0.contains("\"app\".\"cost_aggregates\"") },
                    "grants name the product schema's tables: \(grants.stdout)")
            let applied = try await Psql.run(grants.stdout, conninfo: try database.ownerConninfo)
            try #require(applied.status == 0, "the printed grants, applied as the owner:\n\(applied)\n\(grants.stdout)")
            let runtimeConfig = try database.runtimeConfig(in: directory)
            let check = try await Self.rollupd(["check-db", "--config", runtimeConfig])
            #expect(check.status == 0, "\(check)")
            let once = try await Self.rollupd(["once", "--config", runtimeConfig])
            #expect(once.status == 0, "\(once)")
            #expect(try await Self.oracleDifferences(database) == [], "app.cost_aggregates / app.hourly_rollups:\n\(once.stderr)")

            let placement = try await database.asAdmin { connection in
                try ["app.cost_aggregates", "app.hourly_rollups", "public.cost_aggregates", "public.hourly_rollups",
                     "rollupd.cost_aggregates", "rollupd.hourly_rollups"].filter { try Self.exists($0, on: connection) }
            }
            #expect(placement == ["app.cost_aggregates", "app.hourly_rollups"])
            let decoy = try await database.asAdmin { connection in
                (try Self.columns(of: "public.events", on: connection).filter { $0.hasPrefix("rollupd_xid ") },
                 try Self.triggers(of: "public.events", on: connection))
            }
            #expect(decoy.0 == [] && decoy.1 == [], "public.events (not the product's) was changed: \(decoy)")
        }
    }

    // MARK: 3. name clashes: seed 003 (kimbleai) and rollupd in one database, in either order

    enum InstallOrder: String, CaseIterable, Sendable { case appFirst, rollupdFirst }

    static let apiCostSourceYAML = """
        sources:
          api_cost_tracking:
            table: api_cost_tracking
            kind: cost
            project_id: "=kimbleai"
            feature: endpoint
            model: model
            user_id: user_id
            created_at: timestamp
            input_tokens: input_tokens
            output_tokens: output_tokens
            cost_usd: cost_usd

        """

    @Test(.timeLimit(.minutes(5)), arguments: InstallOrder.allCases)
    func seed003AndRollupdShareADatabase(order: InstallOrder) async throws {
        var options = AppDatabase.Options()
        options.seed003 = order == .appFirst
        options.seed = 1305
        try await withAppDatabase(options) { database in
            let plain = try TemporaryDirectory()
            let withSource = try TemporaryDirectory()
            var alertsBefore: [String] = []
            if order == .appFirst { alertsBefore = try await database.asAdmin { try Self.appBudgetAlerts(on: $0) } }

            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: plain)])
            try #require(migrate.status == 0, "\(migrate)")
            if order == .rollupdFirst {
                // The app's own migrations, after rollupd's, with the app's default search_path.
                do {
                    try await database.asOwner(serverDefaultSearchPath: true) { connection in
                        try connection.execute(script: AppDatabase.seed003)
                        try connection.execute(script: AppDatabase.insertApiCostTracking(150) + ";" + AppDatabase.insertBudgetAlerts)
                    }
                } catch {
                    Issue.record("the app's DDL fails after rollupd migrate: \(error)")
                    return
                }
                alertsBefore = try await database.asAdmin { try Self.appBudgetAlerts(on: $0) }
            }
            #expect(alertsBefore.count == 3)
            let prepare = try await Self.rollupd(["prepare-source", "api_cost_tracking", "--apply", "--config",
                                                  try database.ownerConfig(in: withSource, extraYAML: Self.apiCostSourceYAML)])
            try #require(prepare.status == 0, "\(prepare)")
            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: withSource, extraYAML: Self.apiCostSourceYAML)])
            #expect(once.status == 0, "\(once)")
            #expect(try await Self.oracleDifferences(database, cost: [ConfiguredSourceTests.apiCostOracle]) == [], "\(once.stderr)")

            let after = try await database.asAdmin { connection in
                (alerts: try Self.appBudgetAlerts(on: connection),
                 columns: try Self.columns(of: "public.budget_alerts", on: connection),
                 present: try ["rollupd.budgets", "rollupd.budget_alerts", "rollupd.user_cost_aggregates",
                               "public.budgets", "public.user_cost_aggregates"].filter { try Self.exists($0, on: connection) })
            }
            #expect(after.alerts == alertsBefore, "the app's budget_alerts rows")
            #expect(after.columns == [
                "id uuid notnull", "user_id uuid null", "alert_type text notnull", "threshold_percent integer null",
                "message text null", "acknowledged boolean null", "created_at timestamp with time zone null",
            ], "the app's budget_alerts columns")
            #expect(after.present == ["rollupd.budgets", "rollupd.budget_alerts", "rollupd.user_cost_aggregates"])
        }
    }

    // MARK: 4. an existing cost_aggregates: seed 001's Drizzle table, and unusable ones

    @Test(.timeLimit(.minutes(5)))
    func seed001sDrizzleCostAggregatesIsAcceptedAndCompleted() async throws {
        var options = AppDatabase.Options()
        options.drizzleCostAggregates = true
        options.seed = 1306
        try await withAppDatabase(options) { database in
            let directory = try TemporaryDirectory()
            let before = try await database.asAdmin { try Self.columns(of: "public.cost_aggregates", on: $0) }
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            try #require(migrate.status == 0, "\(migrate)")
            #expect((migrate.stderr + migrate.stdout).contains("total_latency_ms"), "a log line names the added column: \(migrate)")
            let after = try await database.asAdmin { try Self.columns(of: "public.cost_aggregates", on: $0) }
            let added = after.filter { !before.contains($0) }
            #expect(added.count == 1 && added.first?.hasPrefix("total_latency_ms ") == true, "added: \(added)")
            #expect(before.allSatisfy(after.contains), "the app's columns keep their types: \(after)")

            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(once.status == 0, "\(once)")
            #expect(try await Self.oracleDifferences(database) == [], "the app's own rows replaced, every bucket exact:\n\(once.stderr)")

            try await database.asOwner { connection in
                var random = SeededRandom(seed: 1307)
                try Workload.insertEvents(count: 100, maxAgeHours: 48, random: &random, on: connection)
                try Workload.verifySome(15, random: &random, on: connection)
                try Workload.deleteSome(10, random: &random, on: connection)
            }
            let again = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(again.status == 0, "\(again)")
            #expect(try await Self.oracleDifferences(database) == [], "\(again.stderr)")
        }
    }

    enum UnusableCostAggregates: String, CaseIterable, Sendable {
        case withoutPeriodStart, integerFeature

        var ddl: String {
            switch self {
            case .withoutPeriodStart: AppDatabase.drizzleCostAggregates.replacingOccurrences(of: "period_start", with: "starts_at")
            case .integerFeature: AppDatabase.drizzleCostAggregates.replacingOccurrences(of: "feature text NOT NULL", with: "feature integer NOT NULL")
            }
        }

        var column: String {
            switch self {
            case .withoutPeriodStart: "period_start"
            case .integerFeature: "feature"
            }
        }
    }

    @Test(.timeLimit(.minutes(3)), arguments: UnusableCostAggregates.allCases)
    func anUnusableCostAggregatesMakesMigrateRefuseNamingTheColumn(shape: UnusableCostAggregates) async throws {
        try await withAppDatabase { database in
            precondition(shape.ddl != AppDatabase.drizzleCostAggregates)
            try await database.asOwner { try $0.execute(script: shape.ddl) }
            let before = try await database.asAdmin { try Self.columns(of: "public.cost_aggregates", on: $0) }
            let directory = try TemporaryDirectory()
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            #expect(migrate.status == 78, "\(migrate)")
            #expect(Self.mentions(migrate.stderr, shape.column), "names \(shape.column): \(migrate)")
            #expect(migrate.stderr.contains("cost_aggregates"), "\(migrate)")
            let after = try await database.asAdmin { try Self.columns(of: "public.cost_aggregates", on: $0) }
            #expect(after == before, "the refused table was changed")
        }
    }

    // MARK: 5. hostile session settings on the database, the roles and in the environment

    /// Seed 002's token_usage (timestamptz), seed 000's cost_events (times as text, some without a
    /// zone) and seed 004's "AnalyticsEvent" (timestamp without time zone, UTC by Prisma's rule):
    /// each reads differently under another DateStyle or TimeZone unless rollupd pins them.
    static let hostileSourcesYAML = """
        sources:
          token_usage:
            table: token_usage
            kind: cost
            project_id: "=tutor"
            feature: "=session"
            model: model
            provider: provider
            user_id: user_id
            created_at: created_at
            input_tokens: prompt_tokens
            output_tokens: completion_tokens
            cost_usd: cost_usd
            cost_unit: micro_usd
          cost_events:
            table: cost_events
            kind: cost
            project_id: "=founders-lens"
            feature: operation
            model: model
            user_id: user_id
            created_at: created_at
            input_tokens: input_tokens
            output_tokens: output_tokens
            cost_usd: total_cost
          analytics_event:
            table: '"AnalyticsEvent"'
            kind: analytics
            session_id: sessionId
            event_type: eventType
            tool_name: toolName
            risk_mode: properties->riskMode
            occurred_at: timestamp

        """

    /// cost_events as the checker (TimeZone UTC) reads them: a time without a zone is UTC.
    static let costEventsOracle = """
        SELECT 'founders-lens', c.operation, c.model, c.user_id::text, c.created_at::timestamptz,
               btrim(c.input_tokens)::bigint + btrim(c.output_tokens)::bigint, 0, c.total_cost::numeric
        FROM cost_events c
        """

    /// `count` cost_events rows, 41 minutes apart back from now, the time written three ways.
    static func insertCostEvents(_ count: Int, prefix: String) -> String {
        """
        INSERT INTO cost_events (id, operation, model, input_tokens, output_tokens, total_tokens, input_cost, output_cost, total_cost, user_id, created_at)
        SELECT '\(prefix)' || g, (ARRAY['generate-vision-framework-v2', 'lens-score'])[1 + g % 2],
               (ARRAY['gpt-4-turbo-preview', 'gpt-4o-mini', 'gpt-4o'])[1 + g % 3],
               (100 + g * 13)::text, (20 + g * 5)::text, (120 + g * 18)::text, '0', '0', round(g * 0.00137, 5)::text,
               CASE WHEN g % 3 <> 0 THEN (SELECT id FROM users ORDER BY email OFFSET g % 3 LIMIT 1) END,
               CASE g % 3
                   WHEN 0 THEN to_char((now() - g * interval '41 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                   WHEN 1 THEN to_char((now() - g * interval '41 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                   ELSE to_char((now() - g * interval '41 minutes') AT TIME ZONE 'Asia/Kolkata', 'YYYY-MM-DD"T"HH24:MI:SS"+05:30"')
               END
        FROM generate_series(1, \(count)) g
        """
    }

    /// What libpq and the server apply to a new session before rollupd's first statement.
    static let hostileEnvironment = [
        "PGDATESTYLE": "Postgres, DMY", "PGTZ": "Asia/Kathmandu", "PGOPTIONS": "-c search_path=rollupd",
        "PGAPPNAME": "not-rollupd",
    ]

    /// Hostile settings on the database and on both roles (and, for prepare-source and `run`, in
    /// rollupd's environment too: libpq's variables win over the role's and the database's, so
    /// `migrate` and `once` meet the role's and the database's, the others the environment's).
    @Test(.timeLimit(.minutes(6)))
    func hostileDateStyleTimeZoneAndSearchPathChangeNothing() async throws {
        var options = AppDatabase.Options()
        options.seed002 = true
        options.seed = 1308
        try await withAppDatabase(options) { database in
            let (name, owner, runtime) = (database.name, database.owner, database.runtime)
            try await database.asOwner { connection in
                try connection.execute(script: SeedShapes.costEvents + SeedShapes.analyticsEvent)
                try connection.query(Self.insertCostEvents(90, prefix: "pre_"))
                try connection.query(SeedShapes.insertAnalyticsEvents(150))
            }
            try await database.asAdmin { connection in
                try connection.execute(script: """
                    ALTER DATABASE \(name) SET DateStyle = 'SQL, DMY';
                    ALTER DATABASE \(name) SET TimeZone = 'Pacific/Chatham';
                    ALTER DATABASE \(name) SET IntervalStyle = 'sql_standard';
                    ALTER DATABASE \(name) SET extra_float_digits = -3;
                    ALTER ROLE \(runtime) SET search_path = rollupd, "$user";
                    ALTER ROLE \(runtime) SET DateStyle = 'German';
                    ALTER ROLE \(owner) SET search_path = rollupd, "$user";
                    ALTER ROLE \(owner) SET DateStyle = 'German';
                    """)
            }
            // The settings a session gets before it says anything (the test's own connections pin theirs).
            let unpinned = try await onOwnThread {
                let connection = try PGConnection(settings: PGConnectionSettings(conninfo: try database.runtimeConninfo))
                return try connection.query("SELECT current_setting('DateStyle'), current_setting('TimeZone'), current_setting('search_path')")
                    .rows[0].values.map { $0 ?? "" }
            }
            #expect(unpinned == ["German, DMY", "Pacific/Chatham", "rollupd, \"$user\""], "the hostile settings are in effect")

            let directory = try TemporaryDirectory()
            let hostile = Self.hostileEnvironment
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            try #require(migrate.status == 0, "\(migrate)")
            try await database.asOwner { try ConfiguredSourceTests.loadPricing(on: $0) }
            // Empty copies in schema rollupd, first on both roles' hostile search_path.
            try await Self.plantShadowTables(["events", "analytics_events", "cost_aggregates", "hourly_rollups", "model_pricing",
                                              "token_usage", "cost_events", "AnalyticsEvent"], in: database)
            let ownerConfig = try database.ownerConfig(in: directory, extraYAML: Self.hostileSourcesYAML)
            for source in ["token_usage", "cost_events", "analytics_event"] {
                let prepare = try await Self.rollupd(["prepare-source", source, "--apply", "--config", ownerConfig], environment: hostile)
                try #require(prepare.status == 0, "\(prepare)")
            }
            try await database.grantGenerously()

            let timeZone = "Asia/Kolkata"
            let applicationName = "rollupd-t\(AppDatabase.hex())"
            let runtimeConfig = try database.runtimeConfig(in: directory, ["rollup.time_zone": timeZone, "database.application_name": applicationName],
                                                           extraYAML: Self.hostileSourcesYAML)
            let cost = [ConfiguredSourceTests.tokenUsageOracle, Self.costEventsOracle]
            let analytics = [ConfiguredSourceDaemonTests.analyticsOracle]
            @Sendable func differences() async throws -> [String] {
                try await Self.oracleDifferences(database, cost: cost, analytics: analytics, timeZone: timeZone)
                    + database.asAdmin { connection in
                        try connection.query("SELECT source || '/' || row_id || ': ' || reason FROM rollupd.rejected_rows ORDER BY 1")
                            .rows.map { "rejected \(try $0.string(0))" }
                    }
            }

            let once = try await Self.rollupd(["once", "--config", runtimeConfig])
            #expect(once.status == 0, "\(once)")
            #expect(try await differences() == [], "under the database's and the role's settings:\n\(once.stderr)")

            // The daemon, with libpq's variables too, and rows arriving while it runs; its
            // sessions keep their configured name.
            let daemon = try DaemonProcess(["run", "--config", runtimeConfig], environment: hostile)
            defer { daemon.sigkill() }
            try await database.asOwner { connection in
                var random = SeededRandom(seed: 1309)
                try Workload.insertEvents(count: 80, maxAgeHours: 30, random: &random, on: connection)
                try Workload.insertAnalytics(count: 60, maxAgeHours: 30, random: &random, on: connection)
                try connection.query(SeedShapes.insertTokenUsage(40))
                try connection.query(Self.insertCostEvents(40, prefix: "run_"))
                try connection.query("UPDATE \"AnalyticsEvent\" SET \"timestamp\" = \"timestamp\" - interval '90 minutes' WHERE \"id\" LIKE 'ev1%'")
            }
            let running = try await Self.waitUntil(daemon: daemon) { try await differences() }
            #expect(running == [], "under libpq's variables:\n\(daemon.stderrText)")
            let names = try await database.asAdmin { connection in
                try connection.query("SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1 AND usename = $2 ORDER BY 1",
                                     [name, runtime]).rows.map { try $0.string(0) }
            }
            #expect(names == [applicationName], "database.application_name wins over PGAPPNAME")
            #expect(try await Self.shadowRows(in: database) == 0, "rows written to the shadow tables")
            daemon.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0, "\(daemon.stderrText)")
        }
    }

    // MARK: 6. least privilege: the printed grants and nothing more; a SELECT-only role

    @Test(.timeLimit(.minutes(5)))
    func aRuntimeRoleWithExactlyThePrintedGrantsRunsWithoutCreateRights() async throws {
        var options = AppDatabase.Options()
        options.seed = 1310
        try await withAppDatabase(options) { database in
            let directory = try TemporaryDirectory()
            let ownerConfig = try database.ownerConfig(in: directory)
            let migrate = try await Self.rollupd(["migrate", "--config", ownerConfig])
            try #require(migrate.status == 0, "\(migrate)")
            let grants = try await Self.rollupd(["grants", "--config", ownerConfig, "--role", database.runtime])
            try #require(grants.status == 0, "\(grants)")
            #expect(Self.grantLines(grants.stdout).contains { Self.mentions($0, "events") && $0.contains("SELECT") }, "SELECT on events: \(grants)")
            #expect(Self.grantLines(grants.stdout).contains { $0.contains("cost_aggregates") }, "\(grants)")
            #expect(Self.grantLines(grants.stdout).contains { $0.contains("USAGE") && $0.contains("SCHEMA") && Self.mentions($0, "rollupd") },
                    "USAGE on schema rollupd: \(grants)")
            let applied = try await Psql.run(grants.stdout, conninfo: try database.ownerConninfo)
            try #require(applied.status == 0, "the printed grants, applied as the owner:\n\(applied)\n\(grants.stdout)")

            let runtime = database.runtime
            let createRights = try await database.asAdmin { connection in
                try connection.query("""
                    SELECT 'database' FROM pg_database WHERE datname = current_database() AND has_database_privilege($1, oid, 'CREATE')
                    UNION ALL
                    SELECT 'schema ' || nspname FROM pg_namespace WHERE has_schema_privilege($1, oid, 'CREATE')
                    """, [runtime]).rows.map { try $0.string(0) }
            }
            #expect(createRights == [], "the runtime role can create: \(createRights)")

            let runtimeConfig = try database.runtimeConfig(in: directory)
            let check = try await Self.rollupd(["check-db", "--config", runtimeConfig])
            #expect(check.status == 0, "\(check)")
            let once = try await Self.rollupd(["once", "--config", runtimeConfig])
            #expect(once.status == 0, "\(once)")
            #expect(!once.stderr.contains("CREATE SCHEMA"), "\(once)")
            #expect(try await Self.oracleDifferences(database) == [], "\(once.stderr)")

            try await database.asOwner { connection in
                var random = SeededRandom(seed: 1311)
                try Workload.insertEvents(count: 60, maxAgeHours: 12, random: &random, on: connection)
                try Workload.reassignUsers(10, random: &random, on: connection)
                try Workload.insertAnalytics(count: 60, maxAgeHours: 12, random: &random, on: connection)
            }
            let again = try await Self.rollupd(["once", "--config", runtimeConfig])
            #expect(again.status == 0, "\(again)")
            #expect(try await Self.oracleDifferences(database) == [], "\(again.stderr)")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aSelectOnlyRoleGetsTheReportFromCheckDbOnceAndRun() async throws {
        try await withAppDatabase { database in
            let directory = try TemporaryDirectory()
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: directory)])
            try #require(migrate.status == 0, "\(migrate)")
            let reader = try await database.createRole(prefix: "readonly")
            try await database.asOwner { connection in
                try connection.execute(script: """
                    GRANT USAGE ON SCHEMA public, rollupd TO \(reader);
                    GRANT SELECT ON ALL TABLES IN SCHEMA public, rollupd TO \(reader);
                    """)
            }
            let config = try database.runtimeConfig(in: directory, role: reader)
            func reported(_ text: String) -> Bool {
                Self.grantLines(text).contains { line in
                    line.contains(reader) && ["cost_aggregates", "hourly_rollups", "rollupd."].contains { line.contains($0) }
                }
            }

            let check = try await Self.rollupd(["check-db", "--config", config])
            #expect(check.status == 1, "\(check)")
            #expect(reported(check.stdout + check.stderr), "a GRANT line naming a table and the role: \(check)")

            let once = try await Self.rollupd(["once", "--config", config], timeout: .seconds(60))
            #expect(once.status == 78, "\(once)")
            #expect(reported(once.stderr), "\(once)")

            // Not a retry loop: it stops by itself (the timeout only bounds a broken run).
            let run = try await Self.rollupd(["run", "--config", config], timeout: .seconds(60))
            #expect(run.status == 78, "\(run)")
            #expect(reported(run.stderr), "\(run)")

            let written = try await database.asAdmin { try $0.query("SELECT count(*) FROM public.cost_aggregates").rows[0].int64(0) }
            #expect(written == 0)
        }
    }

    // MARK: 7. online preparation

    @Test(.timeLimit(.minutes(5)))
    func anInvalidRollupdXidIndexIsRebuiltByMigrate() async throws {
        try await withAppDatabase { database in
            let directory = try TemporaryDirectory()
            let ownerConfig = try database.ownerConfig(in: directory)
            let first = try await Self.rollupd(["migrate", "--config", ownerConfig])
            try #require(first.status == 0, "\(first)")
            // What an interrupted CREATE INDEX CONCURRENTLY leaves: the index, marked invalid.
            let indexes = ["public.events_rollupd_xid_idx", "public.analytics_events_rollupd_xid_idx"]
            let invalid = try await database.asAdmin { connection in
                try connection.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = ANY($1::regclass[])",
                                     ["{" + indexes.joined(separator: ",") + "}"])
                return try Self.rollupdXidIndexes(on: connection)
            }
            #expect(invalid == ["analytics_events: analytics_events_rollupd_xid_idx valid=false", "events: events_rollupd_xid_idx valid=false"])

            let second = try await Self.rollupd(["migrate", "--config", ownerConfig])
            #expect(second.status == 0, "\(second)")
            let rebuilt = try await database.asAdmin { try Self.rollupdXidIndexes(on: $0) }
            #expect(rebuilt == ["analytics_events: analytics_events_rollupd_xid_idx valid=true", "events: events_rollupd_xid_idx valid=true"],
                    "\(second)")

            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(once.status == 0, "\(once)")
            #expect(try await Self.oracleDifferences(database) == [], "\(once.stderr)")
        }
    }

    /// An app transaction holds a lock on events (an INSERT, not committed) while migrate starts:
    /// migrate waits for it, but never so that the app's next INSERT queues behind migrate's lock
    /// request until the holder commits; and it finishes once the holder commits.
    @Test(.timeLimit(.minutes(5)))
    func migrateWaitingForALockDoesNotHoldUpTheAppsWrites() async throws {
        var options = AppDatabase.Options()
        options.seed = 1312
        try await withAppDatabase(options) { database in
            let holder = try database.session(role: database.owner, searchPath: database.appSearchPath, label: "deployment.holder")
            let writer = try database.session(role: database.owner, searchPath: database.appSearchPath, label: "deployment.writer")
            defer {
                Task {
                    await holder.close()
                    await writer.close()
                }
            }
            let holderPID = try await holder.run { connection -> Int32 in
                try connection.query("BEGIN")
                var random = SeededRandom(seed: 1313)
                try Workload.insertEvents(count: 3, maxAgeHours: 1, random: &random, on: connection)
                return connection.backendPID
            }
            let writerPID = try await writer.run { $0.backendPID }

            let directory = try TemporaryDirectory()
            let migrate = try DaemonProcess(["migrate", "--config", try database.ownerConfig(in: directory)])
            defer { migrate.sigkill() }
            let (name, owner) = (database.name, database.owner)
            let monitor = try database.session(role: nil, searchPath: nil, label: "deployment.monitor")
            defer { Task { await monitor.close() } }
            var waited = false
            let deadline = ContinuousClock.now + .seconds(60)
            while !waited && migrate.exitStatus == nil && ContinuousClock.now < deadline {
                waited = try await monitor.run { connection in
                    try connection.query("""
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = $1 AND usename = $2 AND pid <> ALL($3::int[]) AND wait_event_type = 'Lock'
                        """, [name, owner, "{\(holderPID),\(writerPID)}"]).rows[0].int64(0) > 0
                }
                if !waited { try await Task.sleep(for: .milliseconds(10)) }
            }
            guard waited else {
                _ = try? await holder.run { try $0.query("ROLLBACK") }
                Issue.record("migrate never waited for the app's lock:\n\(migrate.stdoutText)\n\(migrate.stderrText)")
                return
            }

            // The app's next write, from another connection, while migrate waits for the holder.
            let inserted: String? = try await writer.run { connection in
                do {
                    try connection.query("SET statement_timeout = '60s'")
                    var random = SeededRandom(seed: 1314)
                    try Workload.insertEvents(count: 2, maxAgeHours: 1, random: &random, on: connection)
                    return nil
                } catch {
                    return "\(error)"
                }
            }
            #expect(inserted == nil, "the app's INSERT queued behind migrate: \(inserted ?? "")")
            #expect(migrate.exitStatus == nil, "migrate ended while the holder's transaction was open:\n\(migrate.stderrText)")

            _ = try await holder.run { try $0.query("COMMIT") }
            let status = await migrate.waitForExit(timeout: Self.commandTimeout)
            #expect(status == 0, "migrate after the holder committed:\n\(migrate.stdoutText)\n\(migrate.stderrText)")
            let indexes = try await database.asAdmin { try Self.rollupdXidIndexes(on: $0) }
            #expect(indexes == ["analytics_events: analytics_events_rollupd_xid_idx valid=true", "events: events_rollupd_xid_idx valid=true"])

            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory)])
            #expect(once.status == 0, "\(once)")
            #expect(try await Self.oracleDifferences(database) == [], "the holder's and the writer's rows too:\n\(once.stderr)")
        }
    }

    // MARK: 8. uninstall

    enum UninstallCase: String, CaseIterable, Sendable { case builtInSources, drizzleCostAggregates, configuredSource, appSchema }

    @Test(.timeLimit(.minutes(5)), arguments: UninstallCase.allCases)
    func uninstallLeavesTheProductSchemaAsItWas(kind: UninstallCase) async throws {
        var options = AppDatabase.Options()
        options.drizzleCostAggregates = kind == .drizzleCostAggregates
        options.seed003 = kind == .configuredSource
        options.schema = kind == .appSchema ? "app" : "public"
        options.seed = 1315
        try await withAppDatabase(options) { database in
            let schema = database.schema
            let appTables = (["events", "analytics_events"] + (kind == .configuredSource ? ["api_cost_tracking", "budget_alerts"] : []))
                .map { "\(schema).\($0)" }
            let before = try await database.asAdmin { connection in
                (schema: try CatalogSnapshot.take(schema: schema, on: connection), data: try Self.contents(of: appTables, on: connection))
            }
            let (plain, directory) = (try TemporaryDirectory(), try TemporaryDirectory())
            let sources = kind == .configuredSource ? Self.apiCostSourceYAML : ""
            let ownerConfig = try database.ownerConfig(in: directory, extraYAML: sources)
            let migrate = try await Self.rollupd(["migrate", "--config", try database.ownerConfig(in: plain)])
            try #require(migrate.status == 0, "\(migrate)")
            if kind == .configuredSource {
                let prepare = try await Self.rollupd(["prepare-source", "api_cost_tracking", "--apply", "--config", ownerConfig])
                try #require(prepare.status == 0, "\(prepare)")
            }
            try await database.grantGenerously()
            let once = try await Self.rollupd(["once", "--config", try database.runtimeConfig(in: directory, extraYAML: sources)])
            #expect(once.status == 0, "\(once)")
            let installed = try await database.asAdmin { try CatalogSnapshot.take(schema: schema, on: $0) }
            #expect(installed != before.schema, "migrate changed nothing?")

            let printed = try await Self.rollupd(["uninstall", "--config", ownerConfig, "--print"])
            try #require(printed.status == 0, "\(printed)")
            let unchanged = try await database.asAdmin { try CatalogSnapshot.take(schema: schema, on: $0) }
            #expect(unchanged == installed, "--print changed the database")
            let applied = try await Psql.run(printed.stdout, conninfo: try database.ownerConninfo)
            try #require(applied.status == 0, "uninstall's SQL, applied as the owner:\n\(applied)\n\(printed.stdout)")

            let after = try await database.asAdmin { connection in
                (schema: try CatalogSnapshot.take(schema: schema, on: connection), data: try Self.contents(of: appTables, on: connection))
            }
            #expect(after.schema == before.schema, "\(CatalogSnapshot.difference(before: before.schema, after: after.schema))\n--- uninstall:\n\(printed.stdout)")
            #expect(after.data == before.data, "the app's rows")
        }
    }

    // MARK: helpers

    static func rollupd(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = commandTimeout) async throws -> DaemonProcess.Outcome {
        try await DaemonProcess.run(arguments, environment: environment, timeout: timeout)
    }

    /// Oracle's comparison on the checker's connection (the product's schema, then rollupd's),
    /// plus a guard against the trivially equal: rollups must hold every counted event.
    static func oracleDifferences(_ database: AppDatabase, cost: [String] = [], analytics: [String] = [], timeZone: String = "UTC") async throws -> [String] {
        try await database.asAdmin { connection in
            let counted = try connection.query("""
                SELECT (SELECT count(*) FROM events), coalesce((SELECT sum(call_count) FROM cost_aggregates WHERE period = 'day'), 0)::bigint
                """).rows[0]
            let extra = try counted.int64(1) < counted.int64(0) ? ["cost_aggregates counts \(try counted.int64(1)) of \(try counted.int64(0)) events"] : []
            return try Oracle.differences(timeZone: timeZone, cost: cost, analytics: analytics, on: connection) + extra
        }
    }

    /// Empty copies (same columns, defaults, indexes) of the product's `tables` in schema rollupd,
    /// made by the owner after migrate, and recorded for `shadowRows`.
    static func plantShadowTables(_ tables: [String], in database: AppDatabase) async throws {
        let schema = database.schema
        try await database.asOwner { connection in
            for table in tables {
                let name = SQLQuote.identifier(table)
                try connection.query("CREATE TABLE rollupd.\(name) (LIKE \(SQLQuote.identifier(schema)).\(name) INCLUDING ALL)")
                try connection.query("COMMENT ON TABLE rollupd.\(name) IS 'deployment test shadow'")
            }
        }
    }

    /// Rows in the planted shadow tables.
    static func shadowRows(in database: AppDatabase) async throws -> Int64 {
        try await database.asAdmin { connection in
            let tables = try connection.query("""
                SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE obj_description(c.oid, 'pg_class') = 'deployment test shadow'
                """).rows.map { try $0.string(0) }
            var rows: Int64 = 0
            for table in tables { rows += try connection.query("SELECT count(*) FROM \(table)").rows[0].int64(0) }
            return rows
        }
    }

    static func exists(_ qualified: String, on connection: PGConnection) throws -> Bool {
        !(try connection.query("SELECT to_regclass($1) IS NULL", [qualified]).rows[0].bool(0))
    }

    /// `name type notnull|null` per column, in column order.
    static func columns(of table: String, on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' notnull' ELSE ' null' END
            FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [table]).rows.map { try $0.string(0) }
    }

    static func indexes(of table: String, on connection: PGConnection) throws -> [String] {
        try connection.query("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1) ORDER BY 1",
                             [table]).rows.map { try $0.string(0) }
    }

    static func triggers(of table: String, on connection: PGConnection) throws -> [String] {
        try connection.query("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal ORDER BY 1", [table])
            .rows.map { try $0.string(0) }
    }

    /// Every index of the product's tables over rollupd_xid, with its validity.
    static func rollupdXidIndexes(on connection: PGConnection) throws -> [String] {
        try connection.query("""
            SELECT format('%s: %s valid=%s', t.relname, c.relname, i.indisvalid::text)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relnamespace = 'public'::regnamespace AND pg_get_indexdef(i.indexrelid) LIKE '%rollupd_xid%'
            ORDER BY 1
            """).rows.map { try $0.string(0) }
    }

    /// The app's budget_alerts rows as JSON, without any column rollupd might have added.
    static func appBudgetAlerts(on connection: PGConnection) throws -> [String] {
        try connection.query("SELECT (to_jsonb(b) - 'rollupd_xid')::text FROM public.budget_alerts b ORDER BY b.id")
            .rows.map { try $0.string(0) }
    }

    /// A digest of each table's rows (as JSON, without rollupd_xid); tables as `schema.table`.
    static func contents(of tables: [String], on connection: PGConnection) throws -> [String] {
        try tables.map { table in
            let digest = try connection.query("""
                SELECT count(*) || ' ' || md5(coalesce(string_agg(j, ',' ORDER BY j), ''))
                FROM (SELECT (to_jsonb(t) - 'rollupd_xid')::text AS j FROM \(table) t) rows
                """).rows[0].string(0)
            return "\(table): \(digest)"
        }
    }

    static func grantLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.contains("GRANT") }
    }

    /// `word` in `text` as a whole identifier (not as part of `analytics_events` or `events_x`).
    static func mentions(_ text: String, _ word: String) -> Bool {
        let pattern = "(?<![A-Za-z0-9_])" + NSRegularExpression.escapedPattern(for: word) + "(?![A-Za-z0-9_])"
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Polls `check` until it returns no differences (or the daemon exits, or 60 s pass).
    static func waitUntil(daemon: DaemonProcess, timeout: Duration = .seconds(60), _ check: () async throws -> [String]) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        var differences = ["nothing checked yet"]
        while ContinuousClock.now < deadline && daemon.exitStatus == nil {
            differences = try await check()
            if differences.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(200))
        }
        if let status = daemon.exitStatus { differences.append("rollupd exited with \(status)") }
        return differences
    }
}
