#!/usr/bin/env bash
# bench/online-prepare.sh — does installing rollupd next to a live product database block the
# product's writes? (issue 13) `rollupd migrate` adds rollupd_xid (xid8, default
# pg_current_xact_id()), its index and two triggers to the product's big `events` table, plus
# rollupd's own tables. Measured: the product's single-row INSERT latency while that runs, against
# the same writer with nothing else running, in the same run on the same rows.
#
#   bench/online-prepare.sh [--rows N] [--rate R] [--seconds T] [--migrations DIR]
#                           [--admin-url CONNINFO] [--smoke]
#
#   --rows N          events loaded before rollupd arrives (default 5000000)
#   --rate R          the writer's target rate, inserts/s over its 2 connections (default 500)
#   --seconds T       length of the idle window (default 20)
#   --migrations DIR  the migration files rollupd applies (default migrations/ of this tree, copied
#                     at the start); they must be the ones the binary expects
#   --smoke           N=50000, T=3 (CI: keeps the script alive; explicit options still win)
#   --admin-url       superuser conninfo/URI on the postgres database (default $BENCH_ADMIN_URL,
#                     else host=127.0.0.1 port=55432 user=postgres dbname=postgres: scripts/dev's)
#
# Environment: ROLLUPD_BINARY, else .build/release/rollupd, else .build/debug/rollupd of this tree
# (never built here); copied to a temporary directory at the start. Other ROLLUPD_* are ignored.
# Needs psql and pgbench (newest /usr/lib/postgresql/*/bin), awk, sort.
#
# How:
#   1. Database bench_online_prepare, owned by a LOGIN role bench_app (created if absent, dropped
#      at the end if this run created it). As bench_app: seed 001's `events` (no indexes yet) and
#      `analytics_events` (empty). N events by bench/generator.sql (set-based, setseed 0.17), then,
#      as bench_app, the primary key and the app's indexes idx_events_feature_time,
#      idx_events_user_time, idx_events_created_at; VACUUM ANALYZE, CHECKPOINT.
#   2. One writer for the whole measurement: pgbench as bench_app, bench/insert-event.pgbench,
#      -R RATE -c 2 -j 2, -l (per-transaction log) and -P 1 (progress, for the drain below).
#      After a warm-up: the idle window (T s, nothing else), then `rollupd migrate` as the
#      superuser (config: database.url, migrations.directory); the prepare window is from its
#      start to its exit. The writer keeps going until at least 2 s after the exit and until its
#      schedule lag is drained (so every insert scheduled in the window has finished), then stops.
#   3. Per window, over the inserts *scheduled* in it (an insert that waited on migrate's locks
#      counts even when it finished later): latency (pgbench's, from the scheduled start, lag
#      included) p50/p99/max/mean, inserts over 100 ms, schedule lag p99. Ratios: prepare p99 /
#      idle p99 and prepare max / idle max. Target: prepare p99 within 2x idle p99.
# Writes bench/results/online-prepare-<UTC>.json (or $BENCH_RESULTS_DIR) and prints a table.
set -euo pipefail
REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
RESULTS_DIR="${BENCH_RESULTS_DIR:-$REPO/bench/results}"
ADMIN_URL="${BENCH_ADMIN_URL:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"
DB=bench_online_prepare APP_ROLE=bench_app CLIENTS=2 SEED=0.17 SLOW_MS=100 TARGET=2
ROWS=5000000 RATE=500 SECONDS_IDLE=20 WARMUP=3 TAIL=2 SMOKE=0 MIGRATIONS="$REPO/migrations"
rows_set=0 secs_set=0

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'online-prepare: error: %s\n' "$*" >&2; exit 1; }
need_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"; }
while (($#)); do
    case $1 in
    --rows) need_int "$1" "${2-}"; ROWS=$2; rows_set=1; shift 2 ;;
    --rate) need_int "$1" "${2-}"; RATE=$2; shift 2 ;;
    --seconds) need_int "$1" "${2-}"; SECONDS_IDLE=$2; secs_set=1; shift 2 ;;
    --migrations) [[ -d ${2-} ]] || die "--migrations needs a directory"; MIGRATIONS=$(readlink -f "$2"); shift 2 ;;
    --admin-url) [[ -n ${2-} ]] || die "--admin-url needs a value"; ADMIN_URL=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if ((SMOKE)); then ((rows_set)) || ROWS=50000; ((secs_set)) || SECONDS_IDLE=3; WARMUP=1; fi

BINARY=${ROLLUPD_BINARY:-}
while read -r name; do unset "$name"; done < <(compgen -e | grep '^ROLLUPD_' || true)
if [[ -z $BINARY ]]; then
    for b in "$REPO/.build/release/rollupd" "$REPO/.build/debug/rollupd"; do [[ -x $b ]] && { BINARY=$b; break; }; done
fi
[[ -n $BINARY && -x $BINARY ]] || die "no rollupd binary (set ROLLUPD_BINARY, or build .build/debug/rollupd)"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PG_BIN/pgbench && -x $PG_BIN/psql ]] || die "no pgbench/psql under /usr/lib/postgresql/*/bin"
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"
psql() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now_us() { date +%s%6N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
loadavg() { awk '{ printf "[%s,%s,%s]", $1, $2, $3 }' /proc/loadavg; }
# The admin conninfo with other keywords (later keywords win in a conninfo; URIs take them as parameters).
url_with() {
    if [[ $ADMIN_URL =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?(.*))?$ ]]; then
        local q=${BASH_REMATCH[5]} extra
        extra=$(printf '%s' "${1-}" | tr ' ' '&')
        q=${q:+$q${extra:+&}}$extra
        printf '%s/%s%s' "${BASH_REMATCH[1]}" "$DB" "${q:+?$q}"
    else
        printf '%s dbname=%s %s' "$ADMIN_URL" "$DB" "${1-}"
    fi
}
psql -d "$ADMIN_URL" -c 'SELECT 1' >/dev/null || die "cannot connect to $ADMIN_URL (scripts/dev start, or --admin-url)"
[[ $(psql -d "$ADMIN_URL" -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') == t ]] || die "the admin connection must be a superuser"

WORK=$(mktemp -d) PGBENCH_PID="" ROLE_CREATED=0
cleanup() {
    local rc=$?
    set +e
    [[ -n $PGBENCH_PID ]] && { kill -TERM "$PGBENCH_PID"; wait "$PGBENCH_PID"; } 2>/dev/null
    psql -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    ((ROLE_CREATED)) && psql -d "$ADMIN_URL" -c "DROP ROLE IF EXISTS $APP_ROLE" >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
nap() { sleep "$1" & wait $!; } # a signal's trap runs at once, not after the sleep
cp "$BINARY" "$WORK/rollupd" && ROLLUPD="$WORK/rollupd" # a rebuild during the run changes nothing
cp -r "$MIGRATIONS" "$WORK/migrations"
"$ROLLUPD" --version >/dev/null 2>&1 || die "$BINARY does not run (still being linked?)"
BINARY_INFO="$(readlink -f "$BINARY"), $(date -u -r "$BINARY" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$ROLLUPD" | cut -c1-12)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ) LOAD_START=$(loadavg)
say "load average $LOAD_START ($(nproc) CPUs); $ROWS events, writer at $RATE inserts/s"
APP_PASSWORD=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
psql -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
if [[ -z $(psql -d "$ADMIN_URL" -c "SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE'") ]]; then
    psql -d "$ADMIN_URL" -c "CREATE ROLE $APP_ROLE LOGIN PASSWORD '$APP_PASSWORD'" >/dev/null && ROLE_CREATED=1
else
    psql -d "$ADMIN_URL" -c "ALTER ROLE $APP_ROLE LOGIN PASSWORD '$APP_PASSWORD'" >/dev/null
fi
psql -d "$ADMIN_URL" -c "CREATE DATABASE $DB OWNER $APP_ROLE" >/dev/null
BENCH_URL=$(url_with) APP_URL=$(url_with "user=$APP_ROLE password=$APP_PASSWORD")

# --- 1. the product's database, before rollupd ----------------------------------------------------
t=$(now_us)
psql -d "$APP_URL" <<'SQL'
CREATE TABLE events (
    id uuid NOT NULL DEFAULT gen_random_uuid(), trace_id text NOT NULL, span_id text NOT NULL,
    parent_span_id text, project_id text NOT NULL DEFAULT 'default', feature text NOT NULL, user_id text,
    provider text NOT NULL, model text NOT NULL, input_tokens integer NOT NULL, output_tokens integer NOT NULL,
    cached_tokens integer NOT NULL DEFAULT 0, latency_ms integer NOT NULL,
    estimated_cost_usd numeric(12, 6) NOT NULL, verified_cost_usd numeric(12, 6),
    is_cache_hit boolean NOT NULL DEFAULT false, metadata jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE analytics_events (
    id text PRIMARY KEY DEFAULT gen_random_uuid()::text, user_id text, session_id text NOT NULL,
    event_type text NOT NULL, tool_name text, action text, properties jsonb,
    demo_mode boolean NOT NULL DEFAULT true, occurred_at timestamptz NOT NULL DEFAULT now(),
    received_at timestamptz NOT NULL DEFAULT now());
SQL
psql -d "$BENCH_URL" -f "$REPO/bench/generator.sql"
CHUNK=1000000
for ((lo = 1; lo <= ROWS; lo += CHUNK)); do # the last 30 days, evenly in insertion order
    n=$((lo + CHUNK - 1 <= ROWS ? CHUNK : ROWS - lo + 1))
    psql -d "$BENCH_URL" -c "SELECT bench.load_events($lo, $n, now() - interval '30 days' + interval '30 days' * ($lo - 1) / $ROWS,
        interval '30 days' * $n / $ROWS, $SEED)" >/dev/null
    say "loaded $((lo + n - 1)) of $ROWS ($(secs "$t" "$(now_us)") s)"
done
psql -d "$BENCH_URL" -c "DROP SCHEMA bench CASCADE"
psql -d "$APP_URL" <<'SQL'
SET maintenance_work_mem = '256MB';
ALTER TABLE events ADD PRIMARY KEY (id);
CREATE INDEX idx_events_feature_time ON events (project_id, feature, created_at);
CREATE INDEX idx_events_user_time ON events (project_id, user_id, created_at);
CREATE INDEX idx_events_created_at ON events (created_at);
SQL
psql -d "$BENCH_URL" -c "VACUUM ANALYZE" -c "CHECKPOINT"
LOAD_S=$(secs "$t" "$(now_us)")
EVENTS_MB=$(psql -d "$BENCH_URL" -c "SELECT pg_total_relation_size('events') / 1048576")
say "loaded and indexed in $LOAD_S s; events $EVENTS_MB MB with indexes"

# --- 2. the writer, idle, then rollupd migrate ------------------------------------------------------
yaml_quote() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
cat >"$WORK/rollupd.yaml" <<YAML
database:
  url: $(yaml_quote "$BENCH_URL")
migrations:
  directory: $(yaml_quote "$WORK/migrations")
metrics:
  listen: "off"
log:
  format: text
YAML
"$ROLLUPD" check-config --config "$WORK/rollupd.yaml" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; die "rollupd check-config rejects the benchmark's configuration"; }
cp "$REPO/bench/insert-event.pgbench" "$WORK/insert.pgbench"
(cd "$WORK" && exec "$PG_BIN/pgbench" -n -f insert.pgbench -c "$CLIENTS" -j "$CLIENTS" -R "$RATE" -T 86400 -P 1 \
    -l --log-prefix=writer "$APP_URL" >writer.out 2>writer.progress) &
PGBENCH_PID=$!
nap "$WARMUP"
writer_alive() { kill -0 "$PGBENCH_PID" 2>/dev/null || { cat "$WORK/writer.out" "$WORK/writer.progress" >&2; die "the writer stopped early"; }; }
writer_alive
say "idle window: ${SECONDS_IDLE} s"
IDLE_T0=$(now_us)
nap "$SECONDS_IDLE"
IDLE_T1=$(now_us)
writer_alive
say "rollupd migrate"
LOAD_MIGRATE=$(loadavg)
PREP_T0=$(now_us)
rc=0
env -u JOURNAL_STREAM "$ROLLUPD" migrate --config "$WORK/rollupd.yaml" >"$WORK/migrate.log" 2>&1 || rc=$?
PREP_T1=$(now_us)
((rc == 0)) || { cat "$WORK/migrate.log" >&2; die "rollupd migrate failed (exit $rc)"; }
MIGRATE_S=$(secs "$PREP_T0" "$PREP_T1")
say "migrate took $MIGRATE_S s; draining the writer"
# Stop once TAIL s have passed and the last progress second shows no backlog (lag < 20 ms), at most 120 s.
DRAINED=false
for ((i = 0; i < 120 * 5; i++)); do
    nap 0.2
    writer_alive
    lag=$(grep '^progress:' "$WORK/writer.progress" | tail -n 1 | sed -n 's/.*, lag \([0-9.]*\) ms.*/\1/p')
    if (($(now_us) - PREP_T1 >= TAIL * 1000000)) && [[ $lag =~ ^[0-9.]+$ ]] && awk -v l="$lag" 'BEGIN { exit !(l < 20) }'; then
        DRAINED=true
        break
    fi
done
[[ $DRAINED == true ]] || say "warning: the writer's schedule lag did not drain within 120 s; late inserts may be missing"
kill -TERM "$PGBENCH_PID"
wait "$PGBENCH_PID" 2>/dev/null || true
PGBENCH_PID=""
if grep -qiE 'error|abort' "$WORK/writer.out" "$WORK/writer.progress"; then cat "$WORK/writer.out" "$WORK/writer.progress" >&2; die "the writer failed"; fi
LOAD_END=$(loadavg)

# --- 3. the numbers ---------------------------------------------------------------------------------
# pgbench -l lines: client_id tx_no latency_us script_no epoch_s epoch_us(end) schedule_lag_us. A line
# half written when pgbench was stopped is dropped.
for f in "$WORK"/writer.*[0-9]; do if [[ -n $(tail -c 1 "$f") ]]; then sed '$d' "$f"; else cat "$f"; fi; done >"$WORK/lines"
# Prints: inserts expected p50 p99 max mean over_100ms lag_p99 (ms) for those scheduled in [t0, t1).
stats() {
    awk -v t0="$1" -v t1="$2" 'NF >= 7 { s = $5 * 1000000 + $6 - $3; if (s >= t0 && s < t1) print $3, $7 }' "$WORK/lines" >"$WORK/win"
    [[ -s $WORK/win ]] || die "no insert was scheduled in a window (see the writer's output)"
    local lag99
    lag99=$(sort -n -k2,2 "$WORK/win" | awk '{ a[NR] = $2 } END { i = int(0.99 * NR); if (i < 0.99 * NR) i++; printf "%.3f", a[i] / 1000 }')
    sort -n -k1,1 "$WORK/win" | awk -v exp_n="$(awk -v a="$1" -v b="$2" -v r="$RATE" 'BEGIN { printf "%d", (b - a) / 1e6 * r }')" \
        -v slow="$SLOW_MS" -v lag99="$lag99" '{ a[NR] = $1; s += $1; if ($1 > slow * 1000) over++ }
        function q(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return a[i] / 1000 }
        END { printf "%d %d %.3f %.3f %.3f %.3f %d %s\n", NR, exp_n, q(0.5), q(0.99), a[NR] / 1000, s / NR / 1000, over, lag99 }'
}
read -r I_N I_EXP I_P50 I_P99 I_MAX I_MEAN I_SLOW I_LAG < <(stats "$IDLE_T0" "$IDLE_T1")
read -r P_N P_EXP P_P50 P_P99 P_MAX P_MEAN P_SLOW P_LAG < <(stats "$PREP_T0" "$PREP_T1")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "null" }'; }
R_P99=$(ratio "$P_P99" "$I_P99") R_MAX=$(ratio "$P_MAX" "$I_MAX")
MET=$(awk -v r="$R_P99" -v t="$TARGET" 'BEGIN { print (r != "null" && r <= t) ? "true" : "false" }')
MIGRATIONS_JSON=$(psql -d "$BENCH_URL" -c "SELECT coalesce(json_agg(json_build_object('version', version, 'name', name,
    'duration_ms', duration_ms) ORDER BY version), '[]') FROM rollupd.schema_migrations" 2>/dev/null || echo null)
INDEXES_JSON=$(psql -d "$BENCH_URL" -c "SELECT json_agg(indexrelid::regclass::text ORDER BY 1) FROM pg_index WHERE indrelid = 'events'::regclass")
XID_COL=$(psql -d "$BENCH_URL" -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'rollupd_xid' AND NOT attisdropped")
((XID_COL == 1)) || die "migrate exited 0 but events has no rollupd_xid column"

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/online-prepare-$STAMP.json"
window_json() { printf '{"window_s":%s,"inserts":%s,"expected_at_rate":%s,"latency_ms":{"p50":%s,"p99":%s,"max":%s,"mean":%s},"over_%sms":%s,"lag_p99_ms":%s}' \
    "$(secs "$1" "$2")" "$3" "$4" "$5" "$6" "$7" "$8" "$SLOW_MS" "$9" "${10}"; }
MIGRATE_LOG_JSON=$(tail -n 20 "$WORK/migrate.log" | sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/ /g; s/^/"/; s/$/"/' | paste -sd, -)
{
    printf '{"benchmark":"online-prepare","started":"%s","smoke":%s,' "$STAMP" "$( ((SMOKE)) && echo true || echo false)"
    printf '"machine":{"nproc":%s,"cpu":"%s","postgres":"%s","git_commit":"%s","binary":"%s"},' "$(nproc)" \
        "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(psql -d "$ADMIN_URL" -c 'SHOW server_version')" \
        "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$BINARY_INFO"
    printf '"server_settings":"%s",' "$(psql -d "$ADMIN_URL" -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'maintenance_work_mem', 'lock_timeout')")"
    printf '"load_avg":{"start":%s,"before_migrate":%s,"end":%s},' "$LOAD_START" "$LOAD_MIGRATE" "$LOAD_END"
    printf '"params":{"rows":%s,"rate":%s,"clients":%s,"idle_s":%s,"warmup_s":%s,"seed":%s},' "$ROWS" "$RATE" "$CLIENTS" "$SECONDS_IDLE" "$WARMUP" "$SEED"
    printf '"setup":{"load_and_index_s":%s,"events_mb":%s},' "$LOAD_S" "$EVENTS_MB"
    printf '"idle":%s,' "$(window_json "$IDLE_T0" "$IDLE_T1" "$I_N" "$I_EXP" "$I_P50" "$I_P99" "$I_MAX" "$I_MEAN" "$I_SLOW" "$I_LAG")"
    printf '"prepare":%s,' "$(window_json "$PREP_T0" "$PREP_T1" "$P_N" "$P_EXP" "$P_P50" "$P_P99" "$P_MAX" "$P_MEAN" "$P_SLOW" "$P_LAG")"
    printf '"migrate":{"duration_s":%s,"applied":%s,"events_indexes_after":%s,"log_tail":[%s]},' "$MIGRATE_S" "$MIGRATIONS_JSON" "$INDEXES_JSON" "$MIGRATE_LOG_JSON"
    printf '"writer_drained":%s,"ratios":{"prepare_p99_over_idle_p99":%s,"prepare_max_over_idle_max":%s},' "$DRAINED" "$R_P99" "$R_MAX"
    printf '"target":{"prepare_p99_within_x_idle_p99":%s,"met":%s}}\n' "$TARGET" "$MET"
} >"$OUT"

printf '\nonline preparation: %s events (%s MB), writer %s inserts/s (-c %s), load average %s -> %s\n\n' \
    "$ROWS" "$EVENTS_MB" "$RATE" "$CLIENTS" "$LOAD_START" "$LOAD_END"
printf '%-8s %9s %8s %9s %9s %10s %9s %9s %10s\n' window window_s inserts p50_ms p99_ms max_ms mean_ms lag_p99 ">${SLOW_MS}ms"
printf '%-8s %9s %8s %9s %9s %10s %9s %9s %10s\n' idle "$(secs "$IDLE_T0" "$IDLE_T1")" "$I_N" "$I_P50" "$I_P99" "$I_MAX" "$I_MEAN" "$I_LAG" "$I_SLOW"
printf '%-8s %9s %8s %9s %9s %10s %9s %9s %10s\n' prepare "$MIGRATE_S" "$P_N" "$P_P50" "$P_P99" "$P_MAX" "$P_MEAN" "$P_LAG" "$P_SLOW"
printf '\nrollupd migrate: %s s; longest stall %s ms; %s inserts waited over %s ms\n' "$MIGRATE_S" "$P_MAX" "$P_SLOW" "$SLOW_MS"
printf 'prepare p99 / idle p99 = %sx (target <= %sx: %s); prepare max / idle max = %sx\n' "$R_P99" "$TARGET" \
    "$([[ $MET == true ]] && echo met || echo 'NOT met')" "$R_MAX"
printf 'results: %s\n' "$OUT"
