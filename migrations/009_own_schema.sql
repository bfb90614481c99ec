-- 009: rollupd's own tables in its own schema, and change capture that any writer can fire.
--
-- Up to rollupd 0.1, migration 006 created budgets, budget_alerts and user_cost_aggregates in the
-- product's schema, where an app's own table of the same name (seed 003's budget_alerts) was in
-- the way. A database migrated then still has them there: they move to schema rollupd with their
-- rows, identity sequences, indexes, constraints and the foreign key between them, so no budget or
-- pending alert is lost. ALTER TABLE ... SET SCHEMA rewrites nothing. A new database has them in
-- rollupd already (006), and nothing moves.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['budgets', 'budget_alerts', 'user_cost_aggregates'] LOOP
        IF to_regclass('rollupd.' || quote_ident(name)) IS NULL THEN
            EXECUTE format('ALTER TABLE @app_schema@.%I SET SCHEMA rollupd', name);
            RAISE NOTICE 'moved %.% to schema rollupd', '@app_schema@', name;
        END IF;
    END LOOP;
END
$$;

-- The capture triggers run in the product's sessions, as whichever role updates or deletes the
-- row: that role need not have any right on schema rollupd, so the functions run as their owner
-- (the role that migrated), with a search_path of their own that no session can redirect.
ALTER FUNCTION rollupd.capture_event_change() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION rollupd.capture_analytics_change() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION rollupd.capture_source_change() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
