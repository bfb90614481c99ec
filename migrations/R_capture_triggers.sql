-- R_capture_triggers: the capture triggers of the built-in source tables, as they are now.
--
-- Not a numbered migration: `rollupd migrate` runs it (in one transaction, with a short
-- lock_timeout and retries) whenever a built-in table lacks one of these triggers, which happens
-- when the app drops and re-creates the table (an ORM's reset, a restore). Migrations 003 and 006
-- created them first; this file must always say what the latest of those says.

DROP TRIGGER IF EXISTS rollupd_capture_update ON @app_schema@.events;
CREATE TRIGGER rollupd_capture_update BEFORE UPDATE ON @app_schema@.events
    FOR EACH ROW
    WHEN (OLD.project_id IS DISTINCT FROM NEW.project_id OR OLD.feature IS DISTINCT FROM NEW.feature
       OR OLD.model IS DISTINCT FROM NEW.model OR OLD.user_id IS DISTINCT FROM NEW.user_id
       OR OLD.created_at IS DISTINCT FROM NEW.created_at
       OR OLD.input_tokens IS DISTINCT FROM NEW.input_tokens OR OLD.output_tokens IS DISTINCT FROM NEW.output_tokens
       OR OLD.latency_ms IS DISTINCT FROM NEW.latency_ms
       OR OLD.estimated_cost_usd IS DISTINCT FROM NEW.estimated_cost_usd
       OR OLD.verified_cost_usd IS DISTINCT FROM NEW.verified_cost_usd
       OR OLD.rollupd_xid IS DISTINCT FROM NEW.rollupd_xid)
    EXECUTE FUNCTION rollupd.capture_event_change();
DROP TRIGGER IF EXISTS rollupd_capture_delete ON @app_schema@.events;
CREATE TRIGGER rollupd_capture_delete BEFORE DELETE ON @app_schema@.events
    FOR EACH ROW EXECUTE FUNCTION rollupd.capture_event_change();

DROP TRIGGER IF EXISTS rollupd_capture_update ON @app_schema@.analytics_events;
CREATE TRIGGER rollupd_capture_update BEFORE UPDATE ON @app_schema@.analytics_events
    FOR EACH ROW
    WHEN (OLD.session_id IS DISTINCT FROM NEW.session_id OR OLD.event_type IS DISTINCT FROM NEW.event_type
       OR OLD.tool_name IS DISTINCT FROM NEW.tool_name OR OLD.occurred_at IS DISTINCT FROM NEW.occurred_at
       OR (OLD.properties ->> 'riskMode') IS DISTINCT FROM (NEW.properties ->> 'riskMode')
       OR OLD.rollupd_xid IS DISTINCT FROM NEW.rollupd_xid)
    EXECUTE FUNCTION rollupd.capture_analytics_change();
DROP TRIGGER IF EXISTS rollupd_capture_delete ON @app_schema@.analytics_events;
CREATE TRIGGER rollupd_capture_delete BEFORE DELETE ON @app_schema@.analytics_events
    FOR EACH ROW EXECUTE FUNCTION rollupd.capture_analytics_change();
