# bench/lib.sh — shared by bench/alternatives.sh, bench/steady-state.sh and bench/scale.sh
# (sourced, not run). Sets REPO, ADMIN_URL, BENCH_URL, ROLLUPD, CONFIG, WORK; parses the common
# options --admin-url, --smoke, --keep; provides psql helpers, the deterministic event generator
# (the same rows as bench/catchup.sh), CPU and load readings, and `rollupd once` with its took_ms.
#
# The caller sets BENCH_DB and NAME before sourcing, and may define parse_extra() for its own options.
# Results go to bench/results, or to $BENCH_RESULTS_DIR (bench/smoke.sh uses a temporary one).

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
RESULTS_DIR="${BENCH_RESULTS_DIR:-$REPO/bench/results}"
SEED=${SEED:-0.17}
SMOKE=0
KEEP=0
ADMIN_URL="${BENCH_ADMIN_URL:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$NAME" "$*" >&2
    exit 1
}

parse_common() {
    while (($#)); do
        case $1 in
        --admin-url) [[ -n ${2-} ]] || die "--admin-url needs a value"; ADMIN_URL=$2; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *)
            if declare -F parse_extra >/dev/null && parse_extra "$@"; then shift "$EXTRA_SHIFT"; else die "unknown argument '$1' (see --help)"; fi ;;
        esac
    done
}

# Only the variables this script sets reach rollupd.
scrub_env() { while read -r name; do unset "$name"; done < <(compgen -e | grep '^ROLLUPD_' || true); }

bench_url_for() {
    if [[ $ADMIN_URL =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
        echo "${BASH_REMATCH[1]}/$1${BASH_REMATCH[4]}"
    else
        echo "$ADMIN_URL dbname=$1"
    fi
}

export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"
psql_admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
psql_bench() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$BENCH_URL" "$@"; }
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "null") printf "%.2f", a / b; else print "null" }'; }
csv() { local IFS=,; printf '%s' "$*"; }
loadavg() { awk '{ printf "[%s, %s, %s]", $1, $2, $3 }' /proc/loadavg; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

resolve_binary() {
    cd "$REPO"
    if [[ -n ${ROLLUPD_BINARY-} ]]; then
        ROLLUPD=$ROLLUPD_BINARY
        [[ -x $ROLLUPD ]] || die "ROLLUPD_BINARY=$ROLLUPD is not an executable"
    else
        say "swift build -c release --static-swift-stdlib --scratch-path .build-release --product rollupd"
        swift build -c release --static-swift-stdlib --scratch-path .build-release --product rollupd >&2 ||
            die "swift build -c release failed"
        ROLLUPD="$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)/rollupd"
    fi
}

# Preflight, work directory, a fresh database $BENCH_DB, rollupd's environment.
setup_bench() {
    command -v psql >/dev/null || die "psql not found"
    local binary=${ROLLUPD_BINARY-}
    scrub_env
    [[ -n $binary ]] && ROLLUPD_BINARY=$binary
    resolve_binary
    unset ROLLUPD_BINARY
    psql_admin -c 'SELECT 1' >/dev/null || die "cannot connect to $ADMIN_URL (--admin-url)"
    [[ $(psql_admin -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') == t ]] ||
        die "the admin connection must be a superuser"
    BENCH_URL=$(bench_url_for "$BENCH_DB")
    find_postmaster
    WORK="$(mktemp -d)"
    cp "$REPO/config/rollupd.yaml" "$WORK/rollupd.yaml"
    CONFIG="$WORK/rollupd.yaml"
    trap cleanup EXIT
    export ROLLUPD_DATABASE_URL="$BENCH_URL"
    export ROLLUPD_MIGRATIONS_DIRECTORY="$REPO/migrations"
    export ROLLUPD_METRICS_LISTEN=off
    export ROLLUPD_LOG_FORMAT=text
    mkdir -p "$RESULTS_DIR"
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    GIT_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    GIT_DIRTY=$([[ -n $(git -C "$REPO" status --porcelain -- Sources migrations config 2>/dev/null) ]] && echo true || echo false)
    PG_VERSION=$(psql_admin -c 'SHOW server_version')
}

CLEANUP_HOOK=""
cleanup() {
    local rc=$?
    [[ -n $CLEANUP_HOOK ]] && $CLEANUP_HOOK || true
    rm -rf "$WORK"
    if ((KEEP)); then
        say "kept database(s) ${BENCH_DBS:-$BENCH_DB}"
    else
        for db in ${BENCH_DBS:-$BENCH_DB}; do psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true; done
    fi
    exit "$rc"
}

fresh_db() { # $1 name
    psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}

# The product's own tables first (rollupd never creates them), then rollupd's migrations.
rollupd_migrate() {
    psql_bench -q -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
    env -u JOURNAL_STREAM "$ROLLUPD" migrate --config "$CONFIG" >"$WORK/migrate.log" 2>&1 || {
        cat "$WORK/migrate.log" >&2
        die "rollupd migrate failed"
    }
}

# The generator of bench/catchup.sh (the same rows for the same seed and first_i).
create_generator() { psql_bench -f "$REPO/bench/generator.sql"; }

load_events() { # $1 first_i, $2 n, $3 seed
    local start
    start=$(psql_bench -c "SELECT date_trunc('hour', now(), 'UTC') - interval '719 hours'")
    psql_bench -c "SELECT bench.load_events($1, $2, '$start', '719 hours', $3)" >/dev/null
}
# M new events stamped within the last hour (what an incremental pass finds).
load_new_events() { # $1 first_i, $2 n, $3 seed
    psql_bench -c "SELECT bench.load_events($1, $2, now() - interval '1 hour', interval '59 minutes', $3)" >/dev/null
}

source "$REPO/bench/cpu.sh"

# What a pg_cron job would run: cost_aggregates recomputed whole from events (hour and day, UTC).
# The caller wraps it in a transaction (alternatives.sh commits it, scale.sh rolls it back).
RECOMPUTE_SQL="DELETE FROM cost_aggregates;
INSERT INTO cost_aggregates (project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms, avg_latency)
SELECT project_id, feature, model, 'hour', date_trunc('hour', created_at, 'UTC'), sum(coalesce(verified_cost_usd, estimated_cost_usd)),
       sum(input_tokens::bigint + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
FROM events GROUP BY 1, 2, 3, 5
UNION ALL
SELECT project_id, feature, model, 'day', date_trunc('day', created_at, 'UTC'), sum(coalesce(verified_cost_usd, estimated_cost_usd)),
       sum(input_tokens::bigint + output_tokens), count(*), sum(latency_ms), round(avg(latency_ms), 2)
FROM events GROUP BY 1, 2, 3, 5;"

# --- the horizon ------------------------------------------------------------------------------
QUIET_TIMEOUTS=0
wait_quiet() {
    local i
    for ((i = 0; i < 300; i++)); do
        [[ $(psql_bench -c "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()") == 0 ]] && return 0
        sleep 0.1
    done
    QUIET_TIMEOUTS=$((QUIET_TIMEOUTS + 1))
    say "warning: other transactions in the cluster stay open; rollupd's passes will wait for them"
}

# Runs `rollupd once`; sets ONCE_WALL_MS, ONCE_EVENTS_MS (events took_ms, summed over passes),
# ONCE_EVENTS_ADDED, ONCE_EVENTS_PASSES.
run_once() {
    local started log="$WORK/once.log" p0 p1
    wait_quiet
    p0=$(psql_bench -c "SELECT total_passes FROM rollupd.sources WHERE source = 'events'")
    started=$(now_ns)
    env -u JOURNAL_STREAM "$ROLLUPD" once --config "$CONFIG" >"$log" 2>&1 || { cat "$log" >&2; die "rollupd once failed"; }
    ONCE_WALL_MS=$(ms_since "$started")
    p1=$(psql_bench -c "SELECT total_passes FROM rollupd.sources WHERE source = 'events'")
    ONCE_EVENTS_PASSES=$((p1 - p0))
    ONCE_EVENTS_MS=$(awk '/rolled up / && / source=events / { for (i = 1; i <= NF; i++) if (index($i, "took_ms=") == 1) s += substr($i, 9) } END { print s + 0 }' "$log")
    ONCE_EVENTS_ADDED=$(awk '/rolled up / && / source=events / { for (i = 1; i <= NF; i++) if (index($i, "added=") == 1) s += substr($i, 7) } END { print s + 0 }' "$log")
}

machine_json() {
    printf '{"nproc": %s, "cpu": "%s", "mem_gb": %s, "postgres": "%s", "git_commit": "%s", "product_tree_dirty": %s, "binary": "%s"}' \
        "$(nproc)" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
        "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$PG_VERSION" "$GIT_COMMIT" "$GIT_DIRTY" "$ROLLUPD"
}
join_by() { local d=$1 f=$2; shift 2; printf '%s' "$f" "${@/#/$d}"; }

# --- set-based baselines, rollup checks, writer latency (bench/catchup-scale.sh, bench/adoption.sh) ---
# The same statements as bench/catchup.sh's SQL_HOUR_DAY and SQL_SAME_OUTPUTS (kept here so the
# scale and adoption benchmarks measure exactly that limit), and the scratch tables they write.
# They read `events` whole; the caller empties the scratch tables first (BASELINE_TRUNCATE_*).
create_baseline_tables() {
    psql_bench <<'SQL'
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE bench.base_hour_day (period text, project_id text, feature text, model text, period_start timestamptz,
    total_cost numeric, total_tokens bigint, call_count bigint, avg_latency numeric);
CREATE TABLE bench.full_cost (LIKE cost_aggregates INCLUDING ALL);
CREATE TABLE bench.full_user (LIKE rollupd.user_cost_aggregates INCLUDING ALL);
SQL
}
# The bare hour + day GROUP BY (the issue's "physical limit"), into a table without indexes.
BASELINE_BARE_SQL="INSERT INTO bench.base_hour_day
SELECT 'hour', project_id, feature, model, date_trunc('hour', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), avg(latency_ms)
FROM events GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'day', project_id, feature, model, date_trunc('day', created_at, 'UTC'),
       sum(coalesce(verified_cost_usd, estimated_cost_usd)), sum(input_tokens + output_tokens), count(*), avg(latency_ms)
FROM events GROUP BY 2, 3, 4, 5"
BASELINE_TRUNCATE_BARE="TRUNCATE bench.base_hour_day"
# Everything the events pass writes (hour and day buckets, per-user days), set-based in one
# statement, into copies of cost_aggregates and user_cost_aggregates with their indexes.
BASELINE_SAME_SQL="WITH users AS (
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
BASELINE_TRUNCATE_SAME="TRUNCATE bench.full_cost, bench.full_user"

# Bytes and files PostgreSQL wrote to temporary files in the bench database so far (a backend's
# counts arrive when its transaction ends or it exits: read after the client is gone).
db_temp_bytes() { psql_bench -F ' ' -c "SELECT temp_bytes, temp_files FROM pg_stat_database WHERE datname = current_database()"; }

# Runs $1 (setup, untimed) then $2 in one psql session; sets STMT_MS (server round trip of $2,
# psql's \timing) and STMT_TEMP_BYTES (temp file bytes written in the database meanwhile).
time_statement() {
    local t0 f0 t1 f1
    read -r t0 f0 < <(db_temp_bytes)
    STMT_MS=$(psql_bench -c "$1" -c '\timing on' -c "$2" | awk '/^Time: / { s += $2 } END { printf "%.1f", s }')
    sleep 0.5
    read -r t1 f1 < <(db_temp_bytes)
    STMT_TEMP_BYTES=$((t1 - t0))
}

# The rollups back to what `rollupd migrate` left (rollupd.sources as snapshot_sources saved it),
# so the next pass is a first pass over every row again. Rows of events are not touched.
snapshot_sources() { psql_bench -c "DROP TABLE IF EXISTS bench.sources_after_migrate" -c "CREATE TABLE bench.sources_after_migrate AS SELECT * FROM rollupd.sources"; }
reset_rollups() {
    psql_bench <<'SQL'
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cost_aggregates', 'hourly_rollups', 'rollupd.user_cost_aggregates', 'rollupd.hourly_dimension_counts',
        'rollupd.hourly_session_counts', 'rollupd.rejected_rows', 'rollupd.event_changes', 'rollupd.analytics_changes',
        'rollupd.source_changes', 'rollupd.source_cost_buckets', 'rollupd.source_user_cost_buckets',
        'rollupd.source_hourly_dimension_counts', 'rollupd.source_hourly_session_counts', 'rollupd.derived_costs'] LOOP
        IF to_regclass(t) IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t; END IF;
    END LOOP;
END $$;
DELETE FROM rollupd.sources;
INSERT INTO rollupd.sources SELECT * FROM bench.sources_after_migrate;
SQL
}

# Buckets where the rollups differ from the set-based baseline's output (bench.full_cost,
# bench.full_user, written from the same rows): cost buckets (hour and day) and per-user days.
rollups_vs_baseline() {
    psql_bench -c "SELECT (SELECT count(*) FROM (
        (SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms FROM cost_aggregates
         EXCEPT ALL SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms FROM bench.full_cost)
        UNION ALL
        (SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms FROM bench.full_cost
         EXCEPT ALL SELECT project_id, feature, model, period, period_start, total_cost, total_tokens, call_count, total_latency_ms FROM cost_aggregates)) d)
      + (SELECT count(*) FROM (
        (SELECT project_id, user_id, period, period_start, total_cost, total_tokens, call_count FROM rollupd.user_cost_aggregates
         EXCEPT ALL SELECT project_id, user_id, period, period_start, total_cost, total_tokens, call_count FROM bench.full_user)
        UNION ALL
        (SELECT project_id, user_id, period, period_start, total_cost, total_tokens, call_count FROM bench.full_user
         EXCEPT ALL SELECT project_id, user_id, period, period_start, total_cost, total_tokens, call_count FROM rollupd.user_cost_aggregates)) d)"
}
# The oracle: every cost bucket (hour, day) and per-user day recomputed from the raw events in
# one query, independent of the baselines. Prints "events hour_calls day_calls differing_buckets".
rollups_oracle() {
    psql_bench -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM events),
       (SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'hour'),
       (SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'day'),
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
     + (SELECT count(*) FROM (
            (SELECT project_id, user_id, period_start, total_cost, total_tokens, call_count FROM rollupd.user_cost_aggregates WHERE period = 'day'
             EXCEPT ALL
             SELECT project_id, user_id, date_trunc('day', created_at, 'UTC'), sum(coalesce(verified_cost_usd, estimated_cost_usd)),
                    sum(input_tokens + output_tokens), count(*) FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3)
            UNION ALL
            (SELECT project_id, user_id, date_trunc('day', created_at, 'UTC'), sum(coalesce(verified_cost_usd, estimated_cost_usd)),
                    sum(input_tokens + output_tokens), count(*) FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3
             EXCEPT ALL
             SELECT project_id, user_id, period_start, total_cost, total_tokens, call_count FROM rollupd.user_cost_aggregates WHERE period = 'day')) AS u)
SQL
}

# events without its primary key and the app's indexes while rows are bulk-loaded, and back
# (the same definitions as scripts/demo/app_schema.sql, built once over all rows).
drop_app_indexes() {
    psql_bench -c "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey" \
        -c "DROP INDEX IF EXISTS idx_events_feature_time, idx_events_user_time, idx_events_created_at, idx_events_trace"
}
restore_app_indexes() {
    psql_bench -c "SET maintenance_work_mem = '512MB'" -c "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id)" \
        -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
}

# Latency of a pgbench writer's transactions *scheduled* in [t0_us, t1_us) (epoch microseconds),
# from its -l logs (client tx latency_us script epoch_s epoch_us lag_us; a line half written when
# pgbench stopped is dropped). Prints: n p50 p99 max mean over_100ms (ms; "0 null null null null 0" if none).
pgbench_window_stats() { # $1 t0_us, $2 t1_us, files...
    local t0=$1 t1=$2
    shift 2
    for f in "$@"; do if [[ -n $(tail -c 1 "$f") ]]; then sed '$d' "$f"; else cat "$f"; fi; done |
        awk -v t0="$t0" -v t1="$t1" 'NF >= 7 { s = $5 * 1000000 + $6 - $3; if (s >= t0 && s < t1) print $3 }' | sort -n |
        awk '{ a[NR] = $1; s += $1; if ($1 > 100000) over++ }
            function q(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return a[i] / 1000 }
            END { if (NR == 0) { print "0 null null null null 0"; exit }
                  printf "%d %.3f %.3f %.3f %.3f %d\n", NR, q(0.5), q(0.99), a[NR] / 1000, s / NR / 1000, over + 0 }'
}
