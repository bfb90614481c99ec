#!/usr/bin/env bash
# bench/catchup.sh — how close rollupd's catch-up and incremental passes come to the physical
# limit of the same aggregation done by one plain GROUP BY, on the same rows, in the same run.
#
#   bench/catchup.sh [--events N] [--new M] [--rounds R] [--baseline-reps K] [--smoke] [--keep]
#                    [--admin-url CONNINFO]
#
#   --events N           events to load (default 1000000); analytics_events get N/2
#   --new M              events per incremental round (default 1000); analytics_events get M/2
#   --rounds R           incremental rounds (default 5)
#   --baseline-reps K    repetitions of each baseline statement and of the catch-up (default 3)
#   --smoke              N=20000, M=100, one repetition of everything (CI: keeps this script alive)
#   --keep               keep the database rollupd_bench afterwards
#   --admin-url CONNINFO superuser conninfo/URI on the postgres database
#                        (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: ROLLUPD_BINARY (a prebuilt binary, used as is; unset: .build/release/rollupd, brought
# up to date with `swift build -c release` first), BENCH_ADMIN_URL. Any other ROLLUPD_* variable is
# ignored, so a stray setting in the caller's shell cannot change what is measured. Needs psql and
# coreutils/awk; server CPU is measured too when the server runs on this machine.
#
# Writes bench/results/catchup-<UTC timestamp>.json and prints a short table. Exits non-zero when
# the rollups do not match the raw rows at the end (the correctness check). bench/README.md explains
# every number.
set -euo pipefail

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
RESULTS_DIR="${BENCH_RESULTS_DIR:-$REPO/bench/results}"
BENCH_DB=rollupd_bench
SEED=0.17

EVENTS=1000000
NEW=1000
ROUNDS=5
REPS=3
SMOKE=0
KEEP=0
ADMIN_URL="${BENCH_ADMIN_URL:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"
BINARY=${ROLLUPD_BINARY-} # read before the ROLLUPD_* variables are scrubbed below
ROLLUPD="${BINARY:-.build/release/rollupd}"
events_set=0 new_set=0

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'catchup: error: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
need_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"; }

while (($#)); do
    case $1 in
    --events) need_int "$1" "${2-}"; EVENTS=$2; events_set=1; shift 2 ;;
    --new) need_int "$1" "${2-}"; NEW=$2; new_set=1; shift 2 ;;
    --rounds) need_int "$1" "${2-}"; ROUNDS=$2; shift 2 ;;
    --baseline-reps) need_int "$1" "${2-}"; REPS=$2; shift 2 ;;
    --admin-url) [[ -n ${2-} ]] || die "--admin-url needs a value"; ADMIN_URL=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if ((SMOKE)); then
    ((events_set)) || EVENTS=20000
    ((new_set)) || NEW=100
    ROUNDS=1 REPS=1
fi
ANALYTICS=$((EVENTS / 2))
NEW_ANALYTICS=$((NEW / 2))

# Only the variables this script sets reach rollupd.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^ROLLUPD_' || true)

# The bench database's conninfo: the admin one with the database replaced.
if [[ $ADMIN_URL =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
    BENCH_URL="${BASH_REMATCH[1]}/$BENCH_DB${BASH_REMATCH[4]}"
else
    BENCH_URL="$ADMIN_URL dbname=$BENCH_DB" # later keywords win in libpq conninfo
fi

export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"
psql_admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
psql_bench() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$BENCH_URL" "$@"; }
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "null" }'; }
per_second() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.0f", n / (ms / 1000); else print "null" }'; }
# rollupd once's cluster CPU over the CPU of the two baselines it should be compared with.
cpu_ratio() { [[ $1 != null && $2 != null && $3 != null ]] && ratio "$1" "$(($2 + $3))" || echo null; }
median_or_null() { if [[ " $* " == *" null "* ]]; then echo null; else median "$@"; fi; }
csv() { local IFS=,; printf '%s' "$*"; }

source "$REPO/bench/cpu.sh"

# Runs $1 (setup, untimed) then $2 in one session with \timing; prints the server round trip of
# $2 in ms (psql's \timing: from sending the statement to receiving the result, no connect) and the
# cluster CPU ms of the whole psql call (null when not measurable).
# The baselines run with PostgreSQL's defaults, not with the settings the pass sets for itself
# (jit off, work_mem 128MB): with those the planner sorts the bare GROUP BYs instead of hashing
# them and they take about 3x as long (bench/README.md), so the defaults are the stricter baseline.
time_sql() {
    local cpu0 cpu1 wall
    cpu0=$(cluster_cpu_ms)
    wall=$(psql_bench -c "$1" -c '\timing on' -c "$2" | awk '/^Time: / { s += $2 } END { printf "%.1f", s }')
    cpu1=$(cluster_cpu_ms)
    echo "$wall $(cpu_diff "$cpu0" "$cpu1")"
}

# --- preflight ------------------------------------------------------------------------------

command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
cd "$REPO"
if [[ -n $BINARY ]]; then
    [[ -x $ROLLUPD ]] || die "ROLLUPD_BINARY=$ROLLUPD is not an executable"
else
    # Incremental: a no-op (about a second) when the binary is current, and the binary always
    # matches this tree's config/rollupd.yaml.
    say "swift build -c release --product rollupd"
    swift build -c release --product rollupd >&2 || die "swift build -c release failed"
fi
psql_admin -c 'SELECT 1' >/dev/null || die "cannot connect to $ADMIN_URL (set BENCH_ADMIN_URL or --admin-url)"
[[ $(psql_admin -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') == t ]] ||
    die "the admin connection must be a superuser"

find_postmaster
WORK="$(mktemp -d)"
# Every rollupd run reads this copy, taken right after the build, so an edit of the repository's
# config while the benchmark runs cannot make the binary and its configuration disagree.
cp "$REPO/config/rollupd.yaml" "$WORK/rollupd.yaml"
CONFIG="$WORK/rollupd.yaml"
cleanup() {
    local rc=$?
    rm -rf "$WORK"
    if ((KEEP)); then
        say "kept database $BENCH_DB ($BENCH_URL)"
    else
        psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT

export ROLLUPD_DATABASE_URL="$BENCH_URL"
export ROLLUPD_MIGRATIONS_DIRECTORY="$REPO/migrations"

# A pass stops at its snapshot's xmin, which is cluster-wide: a transaction open anywhere in the
# cluster (another database, a test suite, autovacuum's ANALYZE) holds it back, and `rollupd once`
# then repeats passes 20 ms apart until it is gone. Before each timed run, wait (up to 30 s) until
# no other backend holds a transaction id, and count the passes each run made (1 = undisturbed).
QUIET_TIMEOUTS=0
wait_quiet() {
    local i
    for ((i = 0; i < 300; i++)); do
        if [[ $(psql_bench -c "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()") == 0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    QUIET_TIMEOUTS=$((QUIET_TIMEOUTS + 1))
    say "warning: other transactions in the cluster stay open; rollupd's passes will wait for them"
}
total_passes() {
    psql_bench -F ' ' -c "SELECT (SELECT total_passes FROM rollupd.sources WHERE source = 'events'),
        (SELECT total_passes FROM rollupd.sources WHERE source = 'analytics_events')"
}

# Runs `rollupd once`; sets ONCE_WALL_MS, ONCE_CPU_MS (cluster CPU, or null), ONCE_EVENTS_MS and
# ONCE_ANALYTICS_MS (took_ms of each source: the sum over its passes), ONCE_EVENTS_ADDED,
# ONCE_ANALYTICS_ADDED, ONCE_EVENTS_PASSES, ONCE_ANALYTICS_PASSES, ONCE_LOG.
run_once() {
    local started log="$WORK/once.log" ev0 an0 ev1 an1 cpu0 cpu1
    wait_quiet
    read -r ev0 an0 < <(total_passes)
    cpu0=$(cluster_cpu_ms)
    started=$(now_ns)
    env -u JOURNAL_STREAM "$ROLLUPD" once --config "$CONFIG" >"$log" 2>&1 || {
        cat "$log" >&2
        die "rollupd once failed"
    }
    ONCE_WALL_MS=$(ms_since "$started")
    cpu1=$(cluster_cpu_ms)
    ONCE_CPU_MS=$(cpu_diff "$cpu0" "$cpu1")
    ONCE_LOG=$(<"$log")
    read -r ev1 an1 < <(total_passes)
    ONCE_EVENTS_PASSES=$((ev1 - ev0)) ONCE_ANALYTICS_PASSES=$((an1 - an0))
    field() { awk -v src="source=$1" -v key="$2=" '/rolled up / {
        hit = 0; val = ""
        for (i = 1; i <= NF; i++) { if ($i == src) hit = 1; if (index($i, key) == 1) val = substr($i, length(key) + 1) }
        if (hit) print val }' "$log"; }
    ONCE_EVENTS_MS=$(field events took_ms)
    ONCE_ANALYTICS_MS=$(field analytics_events took_ms)
    ONCE_EVENTS_ADDED=$(field events added)
    ONCE_ANALYTICS_ADDED=$(field analytics_events added)
    [[ -n $ONCE_EVENTS_MS && -n $ONCE_ANALYTICS_MS ]] || {
        cat "$log" >&2
        die "no took_ms in rollupd's log"
    }
}

# --- 1. fresh database, migrations ------------------------------------------------------------

say "fresh database $BENCH_DB; rollupd migrate"
psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB"
psql_bench -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
env -u JOURNAL_STREAM "$ROLLUPD" migrate --config "$CONFIG" >"$WORK/migrate.log" 2>&1 || {
    cat "$WORK/migrate.log" >&2
    die "rollupd migrate failed"
}

# The generators (bench/generator.sql) and the baselines' scratch tables live in schema bench,
# apart from rollupd's. Scratch tables are normal (logged) heap tables without indexes, emptied
# before every run.
psql_bench -f "$REPO/bench/generator.sql"
psql_bench <<'SQL'

CREATE TABLE bench.base_hour (project_id text, feature text, model text, period_start timestamptz,
    total_cost numeric, total_tokens bigint, call_count bigint, avg_latency numeric);
CREATE TABLE bench.base_hour_day (period text, project_id text, feature text, model text, period_start timestamptz,
    total_cost numeric, total_tokens bigint, call_count bigint, avg_latency numeric);
-- The same outputs as the events pass, into tables shaped like the real ones (their unique keys
-- and other indexes, a random uuid primary key for cost_aggregates): what writing exactly these
-- rollups costs, with no change capture, no upsert and no validity check.
CREATE TABLE bench.full_cost (LIKE cost_aggregates INCLUDING ALL);
CREATE TABLE bench.full_user (LIKE rollupd.user_cost_aggregates INCLUDING ALL);
CREATE TABLE bench.base_event_counts (hour timestamptz, event_type text, n bigint);
CREATE TABLE bench.base_sessions (hour timestamptz, unique_sessions bigint);
SQL

# --- 2. load ------------------------------------------------------------------------------------

# The bulk rows cover the 719 whole UTC hours before the current one (30 days less an hour, so a
# 30-day retention never finds one); incremental rows fall in the last hour before their insert.
# Every run loads the same rows, shifted by whole hours.
BULK_START=$(psql_bench -c "SELECT date_trunc('hour', now(), 'UTC') - interval '719 hours'")
BULK_SPAN="719 hours"
say "loading $EVENTS events and $ANALYTICS analytics_events (setseed($SEED))"
started=$(now_ns)
psql_bench -c "SELECT bench.load_events(1, $EVENTS, '$BULK_START', '$BULK_SPAN', $SEED)" >/dev/null
psql_bench -c "SELECT bench.load_analytics(1, $ANALYTICS, '$BULK_START', '$BULK_SPAN', $SEED)" >/dev/null
LOAD_MS=$(ms_since "$started")
started=$(now_ns)
psql_bench -c 'VACUUM ANALYZE events' -c 'VACUUM ANALYZE analytics_events'
VACUUM_MS=$(ms_since "$started")
read -r EVENTS_BYTES ANALYTICS_BYTES < <(psql_bench -F ' ' -c \
    "SELECT pg_total_relation_size('events'), pg_total_relation_size('analytics_events')")

# --- 3. baselines (run in step 4) -------------------------------------------------------------------------------

SQL_HOUR="INSERT INTO bench.base_hour
SELECT project_id, feature, model, date_trunc('hour', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), avg(latency_ms)
FROM events GROUP BY 1, 2, 3, 4"
SQL_HOUR_DAY="INSERT INTO bench.base_hour_day
SELECT 'hour', project_id, feature, model, date_trunc('hour', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), avg(latency_ms)
FROM events GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'day', project_id, feature, model, date_trunc('day', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), avg(latency_ms)
FROM events GROUP BY 2, 3, 4, 5"
# The same output from a single scan (informational; PostgreSQL may sort instead of hash here).
SQL_HOUR_DAY_SETS="INSERT INTO bench.base_hour_day
SELECT CASE WHEN hour IS NULL THEN 'day' ELSE 'hour' END, project_id, feature, model, coalesce(hour, day),
       sum(cost), sum(tokens), count(*), avg(latency_ms)
FROM (SELECT project_id, feature, model, date_trunc('hour', created_at, 'UTC') AS hour,
             date_trunc('day', created_at, 'UTC') AS day, coalesce(verified_cost_usd, estimated_cost_usd) AS cost,
             input_tokens + output_tokens AS tokens, latency_ms FROM events) AS e
GROUP BY GROUPING SETS ((project_id, feature, model, hour), (project_id, feature, model, day))"
# Everything the events pass writes (hour and day buckets, per-user days) into bench.full_*.
SQL_SAME_OUTPUTS="WITH users AS (
    INSERT INTO bench.full_user (project_id, user_id, period, period_start, total_cost, total_tokens, call_count)
    SELECT project_id, user_id, 'day', date_trunc('day', created_at, 'UTC'),
           sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*)
    FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 4
)
INSERT INTO bench.full_cost (project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms, avg_latency)
SELECT project_id, feature, model, 'hour', date_trunc('hour', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
FROM events GROUP BY 1, 2, 3, 5
UNION ALL
SELECT project_id, feature, model, 'day', date_trunc('day', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
FROM events GROUP BY 1, 2, 3, 5"
TRUNCATE_SAME_OUTPUTS="TRUNCATE bench.full_cost, bench.full_user"
SQL_ANALYTICS="WITH counts AS (
    INSERT INTO bench.base_event_counts
    SELECT date_trunc('hour', occurred_at, 'UTC'), event_type, count(*) FROM analytics_events GROUP BY 1, 2
)
INSERT INTO bench.base_sessions
SELECT date_trunc('hour', occurred_at, 'UTC'), count(DISTINCT session_id) FROM analytics_events GROUP BY 1"
TRUNCATE_EVENTS="TRUNCATE bench.base_hour, bench.base_hour_day"
TRUNCATE_ANALYTICS="TRUNCATE bench.base_event_counts, bench.base_sessions"


# --- 4. catch-up, interleaved with the baselines ---------------------------------------------------

# Each repetition runs the four baselines and then one catch-up, so a neighbour's load on a shared
# machine hits both sides of a ratio alike. Between repetitions the rollups and rollupd.sources are
# put back exactly as `migrate` left them, so every catch-up is a first pass over the same N rows.
RESET_ROLLUPS="TRUNCATE cost_aggregates, hourly_rollups, rollupd.hourly_dimension_counts,
    rollupd.hourly_session_counts, rollupd.rejected_rows, rollupd.event_changes, rollupd.analytics_changes;
DELETE FROM rollupd.sources;
INSERT INTO rollupd.sources (source) VALUES ('events'), ('analytics_events')"  # as migration 003 leaves it
BASE_HOUR=() BASE_HOUR_DAY=() BASE_HOUR_DAY_SETS=() BASE_SAME=() BASE_ANALYTICS=()
BASE_HOUR_CPU=() BASE_HOUR_DAY_CPU=() BASE_HOUR_DAY_SETS_CPU=() BASE_SAME_CPU=() BASE_ANALYTICS_CPU=() CATCHUP_CPU=() REP_CPU_RATIOS=()
CATCHUP_WALL=() CATCHUP_EVENTS=() CATCHUP_ANALYTICS=() CATCHUP_PASSES=() REP_RATIOS=()
LOADAVG_START=$(cut -d ' ' -f 1-3 /proc/loadavg)
OTHER_BACKENDS=$(psql_bench -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM current_database() AND pid <> pg_backend_pid()")
for ((rep = 1; rep <= REPS; rep++)); do
    say "repetition $rep/$REPS: baselines (plain GROUP BY), then rollupd once over all rows (first pass)"
    read -r wall cpu < <(time_sql "$TRUNCATE_EVENTS" "$SQL_HOUR")
    BASE_HOUR+=("$wall") BASE_HOUR_CPU+=("$cpu")
    read -r wall cpu < <(time_sql "$TRUNCATE_EVENTS" "$SQL_HOUR_DAY")
    BASE_HOUR_DAY+=("$wall") BASE_HOUR_DAY_CPU+=("$cpu")
    read -r wall cpu < <(time_sql "$TRUNCATE_EVENTS" "$SQL_HOUR_DAY_SETS")
    BASE_HOUR_DAY_SETS+=("$wall") BASE_HOUR_DAY_SETS_CPU+=("$cpu")
    read -r wall cpu < <(time_sql "$TRUNCATE_SAME_OUTPUTS" "$SQL_SAME_OUTPUTS")
    BASE_SAME+=("$wall") BASE_SAME_CPU+=("$cpu")
    read -r wall cpu < <(time_sql "$TRUNCATE_ANALYTICS" "$SQL_ANALYTICS")
    BASE_ANALYTICS+=("$wall") BASE_ANALYTICS_CPU+=("$cpu")
    ((rep == 1)) || psql_bench -c "$RESET_ROLLUPS"
    run_once
    [[ $ONCE_EVENTS_ADDED == "$EVENTS" && $ONCE_ANALYTICS_ADDED == "$ANALYTICS" ]] ||
        die "catch-up added $ONCE_EVENTS_ADDED events / $ONCE_ANALYTICS_ADDED analytics_events, expected $EVENTS / $ANALYTICS"
    CATCHUP_WALL+=("$ONCE_WALL_MS") CATCHUP_EVENTS+=("$ONCE_EVENTS_MS") CATCHUP_ANALYTICS+=("$ONCE_ANALYTICS_MS")
    CATCHUP_PASSES+=("$ONCE_EVENTS_PASSES" "$ONCE_ANALYTICS_PASSES")
    CATCHUP_CPU+=("$ONCE_CPU_MS")
    REP_RATIOS+=("$(ratio "$ONCE_EVENTS_MS" "${BASE_HOUR_DAY[-1]}")")
    REP_CPU_RATIOS+=("$(cpu_ratio "$ONCE_CPU_MS" "${BASE_HOUR_DAY_CPU[-1]}" "${BASE_ANALYTICS_CPU[-1]}")")
    if ((rep == 1)); then CATCHUP_LOG=$ONCE_LOG; fi
done
BASE_HOUR_MED=$(median "${BASE_HOUR[@]}")
BASE_HOUR_DAY_MED=$(median "${BASE_HOUR_DAY[@]}")
BASE_HOUR_DAY_SETS_MED=$(median "${BASE_HOUR_DAY_SETS[@]}")
BASE_SAME_MED=$(median "${BASE_SAME[@]}")
BASE_ANALYTICS_MED=$(median "${BASE_ANALYTICS[@]}")
BASE_HOUR_ROWS=$(psql_bench -c "SELECT count(*) FROM bench.base_hour_day WHERE period = 'hour'")
BASE_DAY_ROWS=$(psql_bench -c "SELECT count(*) FROM bench.base_hour_day WHERE period = 'day'")
CATCHUP_WALL_MED=$(median "${CATCHUP_WALL[@]}")
CATCHUP_EVENTS_MED=$(median "${CATCHUP_EVENTS[@]}")
CATCHUP_ANALYTICS_MED=$(median "${CATCHUP_ANALYTICS[@]}")
CPU_RATIO_MED=$(median_or_null "${REP_CPU_RATIOS[@]}")
CA_ROWS=$(psql_bench -c "SELECT count(*) FROM cost_aggregates")
# The same-outputs baseline must have written what the pass wrote (same buckets, same sums).
SAME_OUTPUTS_MATCH=$(psql_bench -c "SELECT NOT EXISTS (
        (SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count FROM cost_aggregates
         EXCEPT SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count FROM bench.full_cost)
        UNION ALL
        (SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count FROM bench.full_cost
         EXCEPT SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count FROM cost_aggregates))
    AND (SELECT count(*) FROM bench.full_user) = (SELECT count(*) FROM rollupd.user_cost_aggregates)")
[[ $SAME_OUTPUTS_MATCH == t ]] || die "the same-outputs baseline wrote other buckets than the pass: it does not measure the same work"

# --- 5. incremental -----------------------------------------------------------------------------

# Plans of the change-capture range lookup, taken after the new rows are written and before the
# pass: (a) as the brief words it, watermark from a subquery (the planner cannot see its value),
# (b) the predicate rollupd's pass sends, with the values it would bind (rollupd sends parameters
# through an unnamed statement, so PostgreSQL plans it with those values).
explain_range() { # $1 table, $2 source
    local horizon watermark
    watermark=$(psql_bench -c "SELECT watermark FROM rollupd.sources WHERE source = '$2'")
    horizon=$(psql_bench -c "SELECT pg_snapshot_xmin(pg_current_snapshot())")
    EXPLAIN_SUBQUERY=$(psql_bench -c "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM $1
        WHERE rollupd_xid >= (SELECT watermark FROM rollupd.sources WHERE source = '$2')")
    EXPLAIN_BOUND=$(psql_bench -c "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM $1
        WHERE (rollupd_xid >= '$watermark'::xid8 AND rollupd_xid < '$horizon'::xid8) OR (false AND rollupd_xid IS NULL)")
}
has_seq_scan() { grep -q "Seq Scan on $1" <<<"$2" && echo true || echo false; }

INC_WALL=() INC_EVENTS=() INC_ANALYTICS=() INC_PASSES=() INC_CPU=()
SEQ_SUBQUERY=false SEQ_BOUND=false SEQ_ANALYTICS_BOUND=false
say "incremental: $ROUNDS round(s) of $NEW new events + $NEW_ANALYTICS analytics_events, then rollupd once"
for ((round = 1; round <= ROUNDS; round++)); do
    seed=$(awk -v s="$SEED" -v r="$round" 'BEGIN { printf "%.2f", s + r / 100 }')
    psql_bench -c "SELECT bench.load_events($EVENTS + ($round - 1) * $NEW + 1, $NEW, now() - interval '1 hour', '1 hour', $seed)" >/dev/null
    ((NEW_ANALYTICS == 0)) ||
        psql_bench -c "SELECT bench.load_analytics($ANALYTICS + ($round - 1) * $NEW_ANALYTICS + 1, $NEW_ANALYTICS, now() - interval '1 hour', '1 hour', $seed)" >/dev/null
    explain_range analytics_events analytics_events
    if [[ $(has_seq_scan analytics_events "$EXPLAIN_BOUND") == true ]]; then SEQ_ANALYTICS_BOUND=true; fi
    if ((round == 1)); then ANALYTICS_EXPLAIN_BOUND=$EXPLAIN_BOUND; fi
    explain_range events events
    if [[ $(has_seq_scan events "$EXPLAIN_SUBQUERY") == true ]]; then SEQ_SUBQUERY=true; fi
    if [[ $(has_seq_scan events "$EXPLAIN_BOUND") == true ]]; then SEQ_BOUND=true; fi
    if ((round == 1)); then EVENTS_EXPLAIN_SUBQUERY=$EXPLAIN_SUBQUERY EVENTS_EXPLAIN_BOUND=$EXPLAIN_BOUND; fi
    run_once
    [[ $ONCE_EVENTS_ADDED == "$NEW" && $ONCE_ANALYTICS_ADDED == "$NEW_ANALYTICS" ]] ||
        die "round $round added $ONCE_EVENTS_ADDED events / $ONCE_ANALYTICS_ADDED analytics_events, expected $NEW / $NEW_ANALYTICS"
    INC_WALL+=("$ONCE_WALL_MS") INC_EVENTS+=("$ONCE_EVENTS_MS") INC_ANALYTICS+=("$ONCE_ANALYTICS_MS") INC_CPU+=("$ONCE_CPU_MS")
    INC_PASSES+=("$ONCE_EVENTS_PASSES" "$ONCE_ANALYTICS_PASSES")
    if ((round == 1)); then INC_LOG=$ONCE_LOG; fi
done
INC_WALL_MED=$(median "${INC_WALL[@]}") INC_WALL_MAX=$(maximum "${INC_WALL[@]}")
INC_EVENTS_MED=$(median "${INC_EVENTS[@]}") INC_EVENTS_MAX=$(maximum "${INC_EVENTS[@]}")
INC_ANALYTICS_MED=$(median "${INC_ANALYTICS[@]}") INC_ANALYTICS_MAX=$(maximum "${INC_ANALYTICS[@]}")

# --- 6. correctness -------------------------------------------------------------------------------

say "correctness check"
# Totals (the required check), then every hour and day bucket against a recomputation.
read -r TOTAL_EVENTS HOUR_CALLS DAY_CALLS TOTAL_ANALYTICS HOURLY_TOTAL BUCKET_DIFF < <(psql_bench -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM events),
       (SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'hour'),
       (SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'day'),
       (SELECT count(*) FROM analytics_events),
       (SELECT coalesce(sum(total_events), 0) FROM hourly_rollups),
       (SELECT count(*) FROM (
            (SELECT period, project_id, feature, model, period_start, total_cost, total_tokens, call_count, total_latency_ms
             FROM cost_aggregates
             EXCEPT ALL
             SELECT p.period, project_id, feature, model, CASE p.period WHEN 'hour' THEN date_trunc('hour', created_at, 'UTC')
                    ELSE date_trunc('day', created_at, 'UTC') END,
                    sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), sum(latency_ms)
             FROM events, (VALUES ('hour'), ('day')) AS p(period) GROUP BY 1, 2, 3, 4, 5)
            UNION ALL
            (SELECT p.period, project_id, feature, model, CASE p.period WHEN 'hour' THEN date_trunc('hour', created_at, 'UTC')
                    ELSE date_trunc('day', created_at, 'UTC') END,
                    sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), sum(latency_ms)
             FROM events, (VALUES ('hour'), ('day')) AS p(period) GROUP BY 1, 2, 3, 4, 5
             EXCEPT ALL
             SELECT period, project_id, feature, model, period_start, total_cost, total_tokens, call_count, total_latency_ms
             FROM cost_aggregates)) AS d)
SQL
)
if [[ $HOUR_CALLS == "$TOTAL_EVENTS" && $DAY_CALLS == "$TOTAL_EVENTS" && $HOURLY_TOTAL == "$TOTAL_ANALYTICS" && $BUCKET_DIFF == 0 ]]; then
    CHECK=OK
else
    CHECK=MISMATCH
fi

# --- 7. results -------------------------------------------------------------------------------------

EVENTS_PER_S=$(per_second "$EVENTS" "$CATCHUP_EVENTS_MED")
ANALYTICS_PER_S=$(per_second "$ANALYTICS" "$CATCHUP_ANALYTICS_MED")
ROWS_PER_S_WALL=$(per_second "$((EVENTS + ANALYTICS))" "$CATCHUP_WALL_MED")
EVENTS_PER_S_WALL=$(per_second "$EVENTS" "$CATCHUP_WALL_MED")
BASE_EVENTS_PER_S=$(per_second "$EVENTS" "$BASE_HOUR_DAY_MED")
RATIO_HOUR_DAY=$(ratio "$CATCHUP_EVENTS_MED" "$BASE_HOUR_DAY_MED")
RATIO_HOUR=$(ratio "$CATCHUP_EVENTS_MED" "$BASE_HOUR_MED")
RATIO_SETS=$(ratio "$CATCHUP_EVENTS_MED" "$BASE_HOUR_DAY_SETS_MED")
RATIO_SAME=$(ratio "$CATCHUP_EVENTS_MED" "$BASE_SAME_MED")
RATIO_ANALYTICS=$(ratio "$CATCHUP_ANALYTICS_MED" "$BASE_ANALYTICS_MED")
RATIO_WALL_TOTAL=$(ratio "$CATCHUP_WALL_MED" "$(awk -v a="$BASE_HOUR_DAY_MED" -v b="$BASE_ANALYTICS_MED" 'BEGIN { print a + b }')")

LOADAVG_END=$(cut -d ' ' -f 1-3 /proc/loadavg)
MAX_PASSES=$(maximum "${CATCHUP_PASSES[@]}" "${INC_PASSES[@]}")
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS_DIR"
RESULT_FILE="$RESULTS_DIR/catchup-$STAMP.json"
MEM_TOTAL_GB=$(free -g | awk '/^Mem:/ { print $2 }')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
GIT_COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)

# JSON is built by PostgreSQL itself (psql quotes every value), so the script needs no jq.
psql_admin \
    -v stamp="$STAMP" -v nproc="$(nproc)" -v mem_gb="$MEM_TOTAL_GB" -v free_g="$(free -g)" -v cpu="$CPU_MODEL" \
    -v kernel="$(uname -r)" -v binary="$ROLLUPD" -v commit="$GIT_COMMIT" -v dirty="$GIT_DIRTY" -v smoke="$SMOKE" \
    -v bulk_start="$BULK_START" -v bulk_span="$BULK_SPAN" -v n="$EVENTS" -v na="$ANALYTICS" -v m="$NEW" -v ma="$NEW_ANALYTICS" -v reps="$REPS" -v rounds="$ROUNDS" \
    -v load_ms="$LOAD_MS" -v vacuum_ms="$VACUUM_MS" -v events_bytes="$EVENTS_BYTES" -v analytics_bytes="$ANALYTICS_BYTES" \
    -v b_hour="$(csv "${BASE_HOUR[@]}")" -v b_hour_day="$(csv "${BASE_HOUR_DAY[@]}")" \
    -v b_sets="$(csv "${BASE_HOUR_DAY_SETS[@]}")" -v b_analytics="$(csv "${BASE_ANALYTICS[@]}")" \
    -v b_hour_med="$BASE_HOUR_MED" -v b_hour_day_med="$BASE_HOUR_DAY_MED" -v b_sets_med="$BASE_HOUR_DAY_SETS_MED" \
    -v b_same="$(csv "${BASE_SAME[@]}")" -v b_same_med="$BASE_SAME_MED" -v b_same_cpu="$(csv "${BASE_SAME_CPU[@]}")" -v r_same="$RATIO_SAME" \
    -v b_analytics_med="$BASE_ANALYTICS_MED" -v hour_rows="$BASE_HOUR_ROWS" -v day_rows="$BASE_DAY_ROWS" \
    -v c_wall="$(csv "${CATCHUP_WALL[@]}")" -v c_events="$(csv "${CATCHUP_EVENTS[@]}")" -v c_analytics="$(csv "${CATCHUP_ANALYTICS[@]}")" \
    -v c_wall_med="$CATCHUP_WALL_MED" -v c_events_med="$CATCHUP_EVENTS_MED" -v c_analytics_med="$CATCHUP_ANALYTICS_MED" \
    -v c_log="$CATCHUP_LOG" -v ca_rows="$CA_ROWS" \
    -v eps="$EVENTS_PER_S" -v aps="$ANALYTICS_PER_S" -v eps_wall="$EVENTS_PER_S_WALL" -v rps_wall="$ROWS_PER_S_WALL" \
    -v base_eps="$BASE_EVENTS_PER_S" \
    -v i_wall="$(csv "${INC_WALL[@]}")" -v i_events="$(csv "${INC_EVENTS[@]}")" -v i_analytics="$(csv "${INC_ANALYTICS[@]}")" \
    -v i_wall_med="$INC_WALL_MED" -v i_wall_max="$INC_WALL_MAX" -v i_events_med="$INC_EVENTS_MED" \
    -v i_events_max="$INC_EVENTS_MAX" -v i_analytics_med="$INC_ANALYTICS_MED" -v i_analytics_max="$INC_ANALYTICS_MAX" \
    -v i_log="$INC_LOG" -v seq_sub="$SEQ_SUBQUERY" -v seq_bound="$SEQ_BOUND" -v seq_a_bound="$SEQ_ANALYTICS_BOUND" \
    -v x_sub="$EVENTS_EXPLAIN_SUBQUERY" -v x_bound="$EVENTS_EXPLAIN_BOUND" -v x_a_bound="$ANALYTICS_EXPLAIN_BOUND" \
    -v r_hd="$RATIO_HOUR_DAY" -v r_h="$RATIO_HOUR" -v r_sets="$RATIO_SETS" -v r_a="$RATIO_ANALYTICS" -v r_wall="$RATIO_WALL_TOTAL" \
    -v c_passes="$(csv "${CATCHUP_PASSES[@]}")" -v i_passes="$(csv "${INC_PASSES[@]}")" -v max_passes="$MAX_PASSES" \
    -v quiet_timeouts="$QUIET_TIMEOUTS" -v rep_ratios="$(csv "${REP_RATIOS[@]}")" \
    -v b_hour_cpu="$(csv "${BASE_HOUR_CPU[@]}")" -v b_hour_day_cpu="$(csv "${BASE_HOUR_DAY_CPU[@]}")" \
    -v b_sets_cpu="$(csv "${BASE_HOUR_DAY_SETS_CPU[@]}")" -v b_analytics_cpu="$(csv "${BASE_ANALYTICS_CPU[@]}")" \
    -v c_cpu="$(csv "${CATCHUP_CPU[@]}")" -v i_cpu="$(csv "${INC_CPU[@]}")" -v rep_cpu_ratios="$(csv "${REP_CPU_RATIOS[@]}")" \
    -v cpu_ratio_med="$CPU_RATIO_MED" -v cpu_measured="$([[ -n $PM_PID ]] && echo true || echo false)" \
    -v other_backends="$OTHER_BACKENDS" -v load_start="$LOADAVG_START" -v load_end="$LOADAVG_END" -v check="$CHECK" -v total_events="$TOTAL_EVENTS" -v hour_calls="$HOUR_CALLS" -v day_calls="$DAY_CALLS" \
    -v total_analytics="$TOTAL_ANALYTICS" -v hourly_total="$HOURLY_TOTAL" -v bucket_diff="$BUCKET_DIFF" \
    >"$RESULT_FILE" <<'SQL'
SELECT jsonb_pretty(jsonb_build_object(
    'benchmark', 'catchup',
    'timestamp_utc', :'stamp',
    'smoke', :'smoke'::int = 1,
    'machine', jsonb_build_object(
        'nproc', :'nproc'::int, 'mem_total_gb', :'mem_gb'::int, 'free_g', :'free_g', 'cpu', :'cpu', 'kernel', :'kernel'),
    'postgres', jsonb_build_object(
        'version', version(),
        'settings', (SELECT jsonb_object_agg(name, current_setting(name)) FROM pg_settings
                     WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'effective_cache_size',
                                    'max_parallel_workers_per_gather', 'fsync', 'synchronous_commit', 'full_page_writes',
                                    'random_page_cost', 'jit'))),
    'rollupd', jsonb_build_object('binary', :'binary', 'git_commit', :'commit', 'git_dirty', :'dirty'::boolean),
    'parameters', jsonb_build_object(
        'events', :'n'::bigint, 'analytics_events', :'na'::bigint, 'new_events_per_round', :'m'::bigint,
        'new_analytics_per_round', :'ma'::bigint, 'repetitions', :'reps'::int, 'incremental_rounds', :'rounds'::int,
        'seed', 0.17, 'time_zone', 'UTC', 'bulk_start', :'bulk_start', 'bulk_span', :'bulk_span',
        'scratch_tables', 'normal (logged) heap tables without indexes, truncated before each baseline run'),
    'load', jsonb_build_object('load_ms', :'load_ms'::float8, 'vacuum_analyze_ms', :'vacuum_ms'::float8,
        'events_total_bytes', :'events_bytes'::bigint, 'analytics_events_total_bytes', :'analytics_bytes'::bigint),
    'baseline_ms', jsonb_build_object(
        'hour_only', jsonb_build_object('runs', string_to_array(:'b_hour', ',')::float8[], 'median', :'b_hour_med'::float8),
        'hour_and_day', jsonb_build_object('runs', string_to_array(:'b_hour_day', ',')::float8[], 'median', :'b_hour_day_med'::float8,
            'form', 'one INSERT ... SELECT ... UNION ALL SELECT (two scans)'),
        'hour_and_day_grouping_sets', jsonb_build_object('runs', string_to_array(:'b_sets', ',')::float8[], 'median', :'b_sets_med'::float8,
            'form', 'one INSERT ... GROUP BY GROUPING SETS (one scan)'),
        'same_outputs_same_tables', jsonb_build_object('runs', string_to_array(:'b_same', ',')::float8[], 'median', :'b_same_med'::float8,
            'form', 'hour and day buckets (UNION ALL) and per-user days (a CTE) in one statement, into copies of cost_aggregates and user_cost_aggregates with their indexes'),
        'analytics', jsonb_build_object('runs', string_to_array(:'b_analytics', ',')::float8[], 'median', :'b_analytics_med'::float8,
            'form', 'event counts per (hour, event_type) + count(DISTINCT session_id) per hour, one statement'),
        'hour_buckets', :'hour_rows'::bigint, 'day_buckets', :'day_rows'::bigint),
    'catchup', jsonb_build_object(
        'wall_ms', jsonb_build_object('runs', string_to_array(:'c_wall', ',')::float8[], 'median', :'c_wall_med'::float8),
        'events_pass_ms', jsonb_build_object('runs', string_to_array(:'c_events', ',')::float8[], 'median', :'c_events_med'::float8),
        'analytics_pass_ms', jsonb_build_object('runs', string_to_array(:'c_analytics', ',')::float8[], 'median', :'c_analytics_med'::float8),
        'events_per_s_pass', :'eps'::float8, 'analytics_events_per_s_pass', :'aps'::float8,
        'events_per_s_wall', :'eps_wall'::float8, 'all_rows_per_s_wall', :'rps_wall'::float8,
        'baseline_hour_and_day_events_per_s', :'base_eps'::float8,
        'passes_events_analytics', string_to_array(:'c_passes', ',')::int[],
        'cost_aggregates_rows', :'ca_rows'::bigint, 'log_first_run', :'c_log'),
    'incremental', jsonb_build_object(
        'wall_ms', jsonb_build_object('runs', string_to_array(:'i_wall', ',')::float8[], 'median', :'i_wall_med'::float8, 'max', :'i_wall_max'::float8),
        'events_pass_ms', jsonb_build_object('runs', string_to_array(:'i_events', ',')::float8[], 'median', :'i_events_med'::float8, 'max', :'i_events_max'::float8),
        'analytics_pass_ms', jsonb_build_object('runs', string_to_array(:'i_analytics', ',')::float8[], 'median', :'i_analytics_med'::float8, 'max', :'i_analytics_max'::float8),
        'passes_events_analytics', string_to_array(:'i_passes', ',')::int[],
        'log_first_round', :'i_log',
        'range_lookup', jsonb_build_object(
            'events_subquery_seq_scan', :'seq_sub'::boolean, 'events_bound_seq_scan', :'seq_bound'::boolean,
            'analytics_bound_seq_scan', :'seq_a_bound'::boolean,
            'events_subquery_explain_first_round', :'x_sub', 'events_bound_explain_first_round', :'x_bound',
            'analytics_bound_explain_first_round', :'x_a_bound')),
    'interference', jsonb_build_object(
        'max_passes_per_source_and_run', :'max_passes'::int,
        'undisturbed', :'max_passes'::int = 1 AND :'quiet_timeouts'::int = 0,
        'waits_for_quiet_cluster_timed_out', :'quiet_timeouts'::int,
        'loadavg_at_catchup_start', :'load_start', 'loadavg_at_end', :'load_end'),
    'cluster_cpu_ms', jsonb_build_object(
        'measured', :'cpu_measured'::boolean,
        'note', 'CPU of the whole PostgreSQL cluster (postmaster, its reaped and live children) around each psql call or rollupd once; null when the server is not on this machine',
        'baseline_hour_only', string_to_array(:'b_hour_cpu', ',', 'null')::float8[], 'baseline_hour_and_day', string_to_array(:'b_hour_day_cpu', ',', 'null')::float8[],
        'baseline_hour_and_day_grouping_sets', string_to_array(:'b_sets_cpu', ',', 'null')::float8[],
        'baseline_same_outputs_same_tables', string_to_array(:'b_same_cpu', ',', 'null')::float8[], 'baseline_analytics', string_to_array(:'b_analytics_cpu', ',', 'null')::float8[],
        'catchup_rollupd_once', string_to_array(:'c_cpu', ',', 'null')::float8[], 'incremental_rollupd_once', string_to_array(:'i_cpu', ',', 'null')::float8[],
        'catchup_over_baselines_hour_and_day_plus_analytics_per_repetition', string_to_array(:'rep_cpu_ratios', ',', 'null')::float8[],
        'catchup_over_baselines_hour_and_day_plus_analytics_median', nullif(:'cpu_ratio_med', 'null')::float8,
        'other_client_backends_in_cluster_at_start', :'other_backends'::int),
    'ratios', jsonb_build_object(
        'events_pass_over_baseline_hour_and_day', :'r_hd'::float8,
        'events_pass_over_baseline_hour_and_day_per_repetition', string_to_array(:'rep_ratios', ',')::float8[],
        'events_pass_over_baseline_hour_only', :'r_h'::float8,
        'events_pass_over_baseline_hour_and_day_grouping_sets', :'r_sets'::float8,
        'events_pass_over_baseline_same_outputs_same_tables', :'r_same'::float8,
        'analytics_pass_over_baseline_analytics', :'r_a'::float8,
        'wall_over_baselines_events_plus_analytics', :'r_wall'::float8),
    'correctness', jsonb_build_object('result', :'check',
        'events', :'total_events'::bigint, 'hour_call_count_sum', :'hour_calls'::bigint, 'day_call_count_sum', :'day_calls'::bigint,
        'analytics_events', :'total_analytics'::bigint, 'hourly_rollups_total_events', :'hourly_total'::bigint,
        'cost_buckets_differing_from_recomputation', :'bucket_diff'::bigint)
));
SQL

# --- human summary ------------------------------------------------------------------------------------

row() { printf '  %-44s %12s %12s\n' "$@"; }
echo
echo "rollupd catch-up benchmark — N=$EVENTS events + $ANALYTICS analytics_events, M=$NEW (+$NEW_ANALYTICS) per round"
echo "  machine: $(nproc) cores, ${MEM_TOTAL_GB} GB; $(psql_admin -c "SELECT split_part(version(), ' on ', 1)")"
echo
row "" "median ms" "rows/s"
row "baseline events GROUP BY hour" "$BASE_HOUR_MED" "$(per_second "$EVENTS" "$BASE_HOUR_MED")"
row "baseline events hour + day (UNION ALL)" "$BASE_HOUR_DAY_MED" "$BASE_EVENTS_PER_S"
row "baseline events hour + day (GROUPING SETS)" "$BASE_HOUR_DAY_SETS_MED" "$(per_second "$EVENTS" "$BASE_HOUR_DAY_SETS_MED")"
row "baseline all the events pass writes, real tables" "$BASE_SAME_MED" "$(per_second "$EVENTS" "$BASE_SAME_MED")"
row "baseline analytics counts + sessions" "$BASE_ANALYTICS_MED" "$(per_second "$ANALYTICS" "$BASE_ANALYTICS_MED")"
row "catch-up events pass (took_ms)" "$CATCHUP_EVENTS_MED" "$EVENTS_PER_S"
row "catch-up analytics pass (took_ms)" "$CATCHUP_ANALYTICS_MED" "$ANALYTICS_PER_S"
row "catch-up rollupd once, wall" "$CATCHUP_WALL_MED" "$ROWS_PER_S_WALL"
echo
row "incremental ($ROUNDS rounds)" "median ms" "max ms"
row "events pass (took_ms)" "$INC_EVENTS_MED" "$INC_EVENTS_MAX"
row "analytics pass (took_ms)" "$INC_ANALYTICS_MED" "$INC_ANALYTICS_MAX"
row "rollupd once, wall" "$INC_WALL_MED" "$INC_WALL_MAX"
echo
echo "  catch-up took ${RATIO_HOUR_DAY}x the physical limit (events pass / baseline hour + day)"
if [[ $CPU_RATIO_MED != null ]]; then
    echo "  server CPU: rollupd once used ${CPU_RATIO_MED}x the CPU of the two baselines (hour + day, analytics);" \
        "per repetition $(csv "${REP_CPU_RATIOS[@]}" | sed 's/,/x, /g')x"
fi
echo "  per repetition: $(csv "${REP_RATIOS[@]}" | sed 's/,/x, /g')x; load average $LOADAVG_START at the start, $LOADAVG_END at the end"
echo "  ${RATIO_HOUR}x baseline hour only, ${RATIO_SETS}x single-scan GROUPING SETS; analytics ${RATIO_ANALYTICS}x its baseline"
echo "  ${RATIO_SAME}x the same outputs (hour, day, per-user day) written set-based into tables with the real indexes"
echo "  range lookup before the incremental pass: seq scan with rollupd's bound predicate: $SEQ_BOUND" \
    "(analytics: $SEQ_ANALYTICS_BOUND); with the watermark as a subquery: $SEQ_SUBQUERY"
if ((MAX_PASSES > 1 || QUIET_TIMEOUTS > 0)); then
    echo "  WARNING: some rollupd once runs needed up to $MAX_PASSES passes per source: transactions elsewhere in the"
    echo "  cluster held the horizon back, and took_ms/wall include that waiting. Rerun on a quiet cluster."
fi
echo "  correctness: $CHECK (events $TOTAL_EVENTS, hour calls $HOUR_CALLS, day calls $DAY_CALLS;" \
    "analytics $TOTAL_ANALYTICS, hourly total $HOURLY_TOTAL; differing cost buckets $BUCKET_DIFF)"
echo "  results: ${RESULT_FILE#"$REPO"/}"

[[ $CHECK == OK ]] || exit 1
