/// Seed 001's Drizzle `events` table, as an app database already has it before rollupd.
enum SeedSchema {
    static let eventsColumns = """
        id uuid NOT NULL DEFAULT gen_random_uuid(), trace_id text NOT NULL, span_id text NOT NULL,
        parent_span_id text, project_id text NOT NULL DEFAULT 'default', feature text NOT NULL, user_id text,
        provider text NOT NULL, model text NOT NULL, input_tokens integer NOT NULL, output_tokens integer NOT NULL,
        cached_tokens integer NOT NULL DEFAULT 0, latency_ms integer NOT NULL,
        estimated_cost_usd numeric(12, 6) NOT NULL, verified_cost_usd numeric(12, 6),
        is_cache_hit boolean NOT NULL DEFAULT false, metadata jsonb, created_at timestamptz NOT NULL DEFAULT now()
        """

    /// The table as Drizzle creates it.
    static let events = "CREATE TABLE events (\(eventsColumns), PRIMARY KEY (id));"

    /// The same table partitioned by month of created_at (README, "Partitioned event tables"):
    /// the primary key must include the partition key.
    static let partitionedEvents = "CREATE TABLE events (\(eventsColumns), PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);"
}
