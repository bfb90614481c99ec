-- 010: conversions that take a configured source's typed columns as they are.
--
-- Up to now a pass read every mapped column as text and parsed it (008). For a timestamptz column
-- that depends on the session's DateStyle and TimeZone, which the product's database may set to
-- anything: 'SQL, DMY' turned 2026-11-03 into 03/11/2026 and the parse rejected the row. rollupd
-- pins its session settings now, and typed columns are no longer printed at all: these overloads
-- take them as they are, and the text versions of 008 stay for text and jsonb values. Any other
-- type (varchar, date, ...) goes through anyelement to the text version.

CREATE FUNCTION rollupd.to_timestamptz(value timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN isfinite(value) THEN value END $$;

-- A time without a zone is taken as UTC, as the text version does.
CREATE FUNCTION rollupd.to_timestamptz(value timestamp) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN isfinite(value) THEN value AT TIME ZONE 'UTC' END $$;

CREATE FUNCTION rollupd.to_timestamptz(value anyelement) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT rollupd.to_timestamptz(value::text) $$;

CREATE FUNCTION rollupd.to_numeric(value numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN value <> 'NaN'::numeric THEN value END $$;

CREATE FUNCTION rollupd.to_numeric(value bigint) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT value::numeric $$;

-- NaN and infinities are not amounts.
CREATE FUNCTION rollupd.to_numeric(value double precision) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN value <> 'NaN'::float8 AND value NOT IN ('Infinity', '-Infinity') THEN value::numeric END $$;

CREATE FUNCTION rollupd.to_numeric(value anyelement) RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT rollupd.to_numeric(value::text) $$;
