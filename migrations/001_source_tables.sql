-- 001: the product's source tables are the product's.
-- rollupd:replaces d0bd65c19ab9405610e5b0a938ddcb0370906eea31c98620e600833bfcc6cd66
--
-- Up to rollupd 0.1 this migration created `events` and `analytics_events` (and the app's own
-- indexes on them) when they were absent. It no longer creates anything: `rollupd migrate`
-- checks first that both tables exist in database.schema and refuses, naming them, when one is
-- missing; a silently created empty table would be rolled up instead of the product's. The demo
-- (scripts/dev) and the tests create them explicitly, as the product would.
SELECT 1;
