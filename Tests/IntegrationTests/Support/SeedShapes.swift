/// The tables of the seed write-ups (../shared/seeds), created as their DDL creates them, with
/// the minimal parent tables their foreign keys need.
enum SeedShapes {
    static let users = "CREATE TABLE IF NOT EXISTS users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text);"
    static let sessions = "CREATE TABLE IF NOT EXISTS sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid());"

    /// Seed 000: every number and the time stored as text (drizzle/0002_add_cost_events_table.sql).
    static let costEvents = users + """
        CREATE TABLE cost_events (
          id TEXT PRIMARY KEY,
          operation TEXT NOT NULL,
          model TEXT NOT NULL,
          input_tokens TEXT NOT NULL,
          output_tokens TEXT NOT NULL,
          total_tokens TEXT NOT NULL,
          input_cost TEXT NOT NULL,
          output_cost TEXT NOT NULL,
          total_cost TEXT NOT NULL,
          user_id UUID REFERENCES users(id),
          anonymous_id TEXT,
          metadata JSONB,
          created_at TEXT NOT NULL
        );
        """

    /// Seed 002: prompt/completion tokens, cost_usd as integer micro-dollars, often NULL.
    static let tokenUsage = users + sessions + """
        CREATE TABLE IF NOT EXISTS token_usage (
          id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id UUID REFERENCES users(id) ON DELETE SET NULL,
          session_id UUID REFERENCES sessions(id) ON DELETE SET NULL,
          provider TEXT NOT NULL,
          model TEXT NOT NULL,
          prompt_tokens INT DEFAULT 0,
          completion_tokens INT DEFAULT 0,
          total_tokens INT DEFAULT 0,
          cost_usd INT, -- stored as micro-dollars (1e-6 USD) placeholder
          created_at TIMESTAMPTZ DEFAULT NOW()
        );
        CREATE INDEX IF NOT EXISTS idx_token_usage_provider ON token_usage(provider);
        CREATE INDEX IF NOT EXISTS idx_token_usage_model ON token_usage(model);
        CREATE INDEX IF NOT EXISTS idx_token_usage_user ON token_usage(user_id);
        """

    /// Seed 003 names api_cost_tracking (costs by model, by endpoint, per user, top expensive
    /// calls, 90-day cleanup) but does not print its DDL; this is that shape as its views and
    /// functions imply: per call a user, model, endpoint, tokens, a cost in USD and a "timestamp".
    /// `count` token_usage rows as seed 002's app writes them, 37 minutes apart back from now: the
    /// users in turn (insert some into `users` first), two providers and models, and `cost_usd`
    /// (micro-dollars) only on every third row, so the rest are priced from model_pricing.
    static func insertTokenUsage(_ count: Int) -> String {
        """
        INSERT INTO token_usage (user_id, provider, model, prompt_tokens, completion_tokens, total_tokens, cost_usd, created_at)
        SELECT (SELECT id FROM users ORDER BY email OFFSET g % 3 LIMIT 1), CASE WHEN g % 2 = 0 THEN 'openai' ELSE 'anthropic' END,
               CASE WHEN g % 2 = 0 THEN 'gpt-4o-mini' ELSE 'claude-3-5-haiku-20241022' END,
               100 + g * 7, 20 + g * 3, 120 + g * 10, CASE WHEN g % 3 = 0 THEN 50 + g * 11 END,
               now() - g * interval '37 minutes'
        FROM generate_series(1, \(count)) g
        """
    }

    /// `count` "AnalyticsEvent" rows as seed 004's Prisma app writes them, 7 minutes apart back
    /// from now (timestamp without time zone, in UTC): ids ev1..., 17 sessions, three event
    /// types, tool names including '' and NULL, a riskMode in every fourth row's properties.
    static func insertAnalyticsEvents(_ count: Int) -> String {
        """
        INSERT INTO "AnalyticsEvent" ("id", "userId", "sessionId", "eventType", "toolName", "action", "properties", "timestamp")
        SELECT 'ev' || g, 'u' || (g % 5), 's' || (g % 17), (ARRAY['tool_used', 'cache_hit', 'risk_mode_changed'])[1 + g % 3],
               (ARRAY['Start/Sit', 'FAAB', 'Decisions', '', NULL])[1 + g % 5], 'viewed',
               CASE WHEN g % 4 = 0 THEN jsonb_build_object('riskMode', (ARRAY['protect', 'neutral', 'chase'])[1 + g % 3]) END,
               (now() AT TIME ZONE 'UTC') - g * interval '7 minutes'
        FROM generate_series(1, \(count)) g
        """
    }

    static let apiCostTracking = """
        CREATE TABLE IF NOT EXISTS api_cost_tracking (
          id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id TEXT NOT NULL,
          model TEXT NOT NULL,
          endpoint TEXT NOT NULL,
          input_tokens INTEGER DEFAULT 0,
          output_tokens INTEGER DEFAULT 0,
          cost_usd DECIMAL(10, 6) NOT NULL,
          cached BOOLEAN DEFAULT FALSE,
          timestamp TIMESTAMPTZ DEFAULT NOW(),
          metadata JSONB,
          created_at TIMESTAMPTZ DEFAULT NOW()
        );
        CREATE INDEX IF NOT EXISTS idx_api_cost_tracking_user_time ON api_cost_tracking (user_id, timestamp DESC);
        CREATE INDEX IF NOT EXISTS idx_api_cost_tracking_model ON api_cost_tracking (model);
        """

    /// Seed 004: Prisma's "AnalyticsEvent" as `prisma migrate` creates it: quoted camelCase
    /// columns, DateTime as timestamp(3) without time zone (UTC by Prisma's convention).
    static let analyticsEvent = """
        CREATE TABLE "AnalyticsEvent" (
            "id" TEXT NOT NULL,
            "userId" TEXT,
            "sessionId" TEXT NOT NULL,
            "eventType" TEXT NOT NULL,
            "toolName" TEXT,
            "action" TEXT,
            "properties" JSONB,
            "demoMode" BOOLEAN NOT NULL DEFAULT true,
            "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
            "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT "AnalyticsEvent_pkey" PRIMARY KEY ("id")
        );
        CREATE INDEX "AnalyticsEvent_userId_eventType_idx" ON "AnalyticsEvent"("userId", "eventType");
        CREATE INDEX "AnalyticsEvent_timestamp_idx" ON "AnalyticsEvent"("timestamp");
        CREATE INDEX "AnalyticsEvent_sessionId_idx" ON "AnalyticsEvent"("sessionId");
        CREATE INDEX "AnalyticsEvent_eventType_timestamp_idx" ON "AnalyticsEvent"("eventType", "timestamp");
        CREATE INDEX "AnalyticsEvent_toolName_timestamp_idx" ON "AnalyticsEvent"("toolName", "timestamp");
        """

    /// Seed 001's Drizzle events table in another schema, as a second app's copy beside the
    /// built-in `events`.
    static let appEvents = "CREATE SCHEMA app; CREATE TABLE app.events (\(SeedSchema.eventsColumns), PRIMARY KEY (id));"
}
