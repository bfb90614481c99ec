#!/usr/bin/env bash
# bench/retention.sh — what rollupd's retention costs the product's inserts: a client inserting at a
# steady rate into `events` while expired rows are deleted, against the same client with nothing
# else running, and against one plain unbatched DELETE of the same rows.
#
#   bench/retention.sh [--rows N] [--expired-fraction F] [--rate R] [--idle-seconds S]
#                      [--admin-url CONNINFO] [--smoke] [--keep]
#
#   --rows N              events to load (default 10000000)
#   --expired-fraction F  share of them created 31-60 days ago, i.e. expired under the default
#                         retention.events = 30d (default 0.3); the rest are 0-28 days old
#   --rate R              the client's target rate, inserts per second over all its connections
#                         (default 500)
#   --idle-seconds S      length of the idle phase (default 60; the other two last as long as
#                         their deletion does)
#   --smoke               N=50000 and phases of a few seconds (CI: keeps this script alive, < 1 min;
#                         explicit --rows / --idle-seconds still win)
#   --keep                keep the loaded database rollupd_retention_bench_template afterwards, e.g.
#                         to EXPLAIN the deletes on a copy of it (drop it yourself)
#   --admin-url CONNINFO  superuser conninfo/URI on the postgres database (default
#                         $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres,
#                         the cluster `scripts/dev` starts)
#
# Environment: ROLLUPD_BINARY (a prebuilt binary, used as is; unset: `swift build --product rollupd`
# first, then $(swift build --show-bin-path)/rollupd), BENCH_ADMIN_URL. Any other ROLLUPD_* variable
# is ignored so a stray setting in the caller's shell cannot change what is measured. Needs psql and
# pgbench (the newest /usr/lib/postgresql/*/bin), awk, sort, date.
#
# How:
#   1. Database rollupd_retention_bench_template: `rollupd migrate`, then N events loaded with
#      set-based INSERT ... SELECT generate_series (setseed fixed, ids md5-derived, so every run has
#      the same rows, their times relative to the load), in created_at order as an application writes them (plus up to 10 minutes of
#      jitter). To load quickly, events' indexes are dropped first and rebuilt afterwards from their
#      own definitions (same names, same definitions as the migrations made them). Then
#      `rollupd once` rolls everything up (retention deletes only rolled-up rows), VACUUM ANALYZE.
#   2. Three phases, each on a fresh copy of it (CREATE DATABASE rollupd_retention_bench TEMPLATE ...),
#      so all three start from identical data; each with the same client: pgbench, single-row
#      INSERTs into events (as bench/ingest-overhead.sh), -R RATE -c 2 -j 2, -l per-transaction log:
#        idle       nothing else runs, for --idle-seconds
#        retention  `rollupd retention` with its defaults (batch_size 10000, batch_pause 100ms,
#                   lock_timeout 1s, statement_timeout 30s) but max_rows_per_run 100000000 so one run
#                   deletes every expired row; the phase lasts as long as the command runs
#        delete     one `DELETE FROM events WHERE created_at < now() - interval '30 days'` with
#                   SET rollupd.capture = 'off' (the change trigger skips its work, as for retention)
#      The client starts a few seconds before the measured window, runs a few seconds after it (then
#      is stopped), and only transactions *scheduled* inside the window are counted, so an insert that
#      was held up by the deletion counts even when it finished just after.
#   3. After the retention phase: every expired row is gone, no loaded row younger than 30 days was
#      deleted, cost_aggregates is unchanged (row count, sum(call_count), sum(total_cost)), no change
#      row was captured, and after one more `rollupd once` sum(call_count) grew by exactly the rows the
#      client inserted. After the delete phase: the same row counts and no change row. A failed check
#      makes the script exit 1 (after writing the results).
#
# The numbers, per phase:
#   tps          client transactions completed inside the window / window length
#   latency_ms   p50/p99/max/mean of pgbench's transaction latency, log column 3. Under -R pgbench
#                measures it from the transaction's *scheduled* start, so it includes the schedule lag
#                (the time an insert waited because this connection was still busy with an earlier
#                one); pgbench's own "latency average" is the mean of the same column. This is what a
#                steady-rate client experiences, and the headline.
#   exec_ms      latency minus schedule lag: from the moment the insert was actually sent.
#   lag_ms       the schedule lag alone (log column 7).
#   deletion     wall time of the deletion (the whole `rollupd retention` process, or the DELETE
#                statement), rows deleted; for retention also its own log line (rows, batches,
#                backlog, took_ms of the events table), and the deletion rate early (10-35% of the
#                rows) and late (65-90%) in the run (pg_stat_user_tables.n_tup_del, sampled every
#                second; it shows up there about a second late).
#   noise        load average at the start of each phase; checkpoints and WAL written during the
#                phase (of the whole cluster: other databases' work, e.g. a CREATE DATABASE, counts
#                too); autovacuum runs on events.
#   timeline     per second of the window: transactions, latency p99 and max, rows deleted,
#                checkpoints and WAL so far, so a stall can be matched with what happened then.
#   ratios       p99(retention)/p99(idle), p99(delete)/p99(idle), for latency_ms and exec_ms.
#
# Writes bench/results/retention-<UTC timestamp>.json and prints a table. Drops its databases at the end
# (the template only without --keep).
set -euo pipefail

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
RESULTS_DIR="${BENCH_RESULTS_DIR:-$REPO/bench/results}"
CONFIG="$REPO/config/rollupd.yaml"
BENCH_DB=rollupd_retention_bench
TEMPLATE_DB=rollupd_retention_bench_template
SEED=0.42
CLIENTS=2
KEEP_DAYS=30 # retention.events' default, which the run below uses

ROWS=10000000
EXPIRED_FRACTION=0.3
RATE=500
IDLE_SECONDS=60
WARMUP_SECONDS=5
TAIL_SECONDS=3
SMOKE=0
KEEP=0
ADMIN_URL="${BENCH_ADMIN_URL:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"
rows_set=0 idle_set=0

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'retention: error: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
need_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"; }

while (($#)); do
    case $1 in
    --rows) need_int "$1" "${2-}"; ROWS=$2; rows_set=1; shift 2 ;;
    --expired-fraction)
        [[ ${2-} =~ ^(0?\.[0-9]+|0|1|1\.0*)$ ]] || die "--expired-fraction needs a number between 0 and 1, got '${2-}'"
        EXPIRED_FRACTION=$2; shift 2 ;;
    --rate) need_int "$1" "${2-}"; RATE=$2; shift 2 ;;
    --idle-seconds) need_int "$1" "${2-}"; IDLE_SECONDS=$2; idle_set=1; shift 2 ;;
    --admin-url) [[ -n ${2-} ]] || die "--admin-url needs a value"; ADMIN_URL=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if ((SMOKE)); then
    ((rows_set)) || ROWS=50000
    ((idle_set)) || IDLE_SECONDS=3
    WARMUP_SECONDS=1 TAIL_SECONDS=2
fi
EXPIRED=$(awk -v n="$ROWS" -v f="$EXPIRED_FRACTION" 'BEGIN { printf "%d", n * f + 0.5 }')
YOUNG=$((ROWS - EXPIRED))
MAX_ROWS_PER_RUN=$((ROWS > 100000000 ? ROWS : 100000000))

# Only the variables this script sets reach rollupd.
BINARY=${ROLLUPD_BINARY:-}
while read -r name; do unset "$name"; done < <(compgen -e | grep '^ROLLUPD_' || true)

# A database's conninfo: the admin one with the database replaced.
db_url() {
    if [[ $ADMIN_URL =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
        printf '%s/%s%s' "${BASH_REMATCH[1]}" "$1" "${BASH_REMATCH[4]}"
    else
        printf '%s dbname=%s' "$ADMIN_URL" "$1" # later keywords win in libpq conninfo
    fi
}
BENCH_URL=$(db_url "$BENCH_DB")
TEMPLATE_URL=$(db_url "$TEMPLATE_DB")

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PG_BIN/pgbench && -x $PG_BIN/psql ]] || die "no pgbench/psql under /usr/lib/postgresql/*/bin"
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"
psql() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }
sql() { psql -qAt -c "$2" "$1"; } # one value from one statement
now_us() { date +%s%6N; }
loadavg() { awk '{ printf "[%s,%s,%s]", $1, $2, $3 }' /proc/loadavg; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; } # µs stamps -> s

if [[ -n $BINARY ]]; then
    ROLLUPD=$(readlink -f "$BINARY")
else
    say "swift build --product rollupd"
    (cd "$REPO" && swift build --product rollupd >&2) || die "swift build failed (or set ROLLUPD_BINARY)"
    ROLLUPD="$(cd "$REPO" && swift build --show-bin-path)/rollupd"
fi
[[ -x $ROLLUPD ]] || die "no rollupd binary at $ROLLUPD"
rollupd() {
    env ROLLUPD_DATABASE_URL="$1" ROLLUPD_MIGRATIONS_DIRECTORY="$MIGRATIONS" "${@:3}" \
        "$ROLLUPD" "$2" --config "$CONFIG"
}

sql "$ADMIN_URL" "SELECT 1" >/dev/null || die "cannot connect to $ADMIN_URL (start it with scripts/dev run, or pass --admin-url)"
PG_VERSION_NUM=$(sql "$ADMIN_URL" "SHOW server_version_num")
COPY_STRATEGY=""
((PG_VERSION_NUM >= 150000)) && COPY_STRATEGY="STRATEGY = FILE_COPY" # WAL_LOG would write every page to WAL

WORK=$(mktemp -d)
# The configuration and migrations as they are now, so that edits during a long run change nothing.
cp "$CONFIG" "$WORK/rollupd.yaml" && CONFIG="$WORK/rollupd.yaml"
cp -r "$REPO/migrations" "$WORK/migrations" && MIGRATIONS="$WORK/migrations"
"$ROLLUPD" check-config --config "$CONFIG" >/dev/null || die "rollupd check-config rejects $REPO/config/rollupd.yaml"
PGBENCH_PID="" POLLER_PID=""
cleanup() {
    local rc=$?
    [[ -n $PGBENCH_PID ]] && kill -TERM "$PGBENCH_PID" 2>/dev/null
    [[ -n $POLLER_PID ]] && { touch "$WORK/stop"; wait "$POLLER_PID" 2>/dev/null; }
    sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    if ((KEEP)); then
        sql "$ADMIN_URL" "ALTER DATABASE $TEMPLATE_DB WITH ALLOW_CONNECTIONS true" >/dev/null 2>&1 &&
            say "kept database $TEMPLATE_DB"
    else
        sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $TEMPLATE_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOAD_AT_START=$(loadavg)
say "load average at start: $LOAD_AT_START ($(nproc) CPUs)"

# --- 1. the template database ------------------------------------------------------------------
sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $TEMPLATE_DB WITH (FORCE)" >/dev/null
sql "$ADMIN_URL" "CREATE DATABASE $TEMPLATE_DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$TEMPLATE_URL" -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
rollupd "$TEMPLATE_URL" migrate 2>"$WORK/migrate.log" || { cat "$WORK/migrate.log" >&2; die "rollupd migrate failed"; }

CHUNK=1000000
say "loading $ROWS events ($EXPIRED expired) in chunks of up to $CHUNK"
t=$(now_us)
{
    cat <<SQL
CREATE TEMP TABLE bench_indexes AS
    SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, con.conname, pg_get_constraintdef(con.oid) AS condef
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
    WHERE i.indrelid = 'events'::regclass;
SELECT format('DROP INDEX %I', name) FROM bench_indexes WHERE conname IS NULL \gexec
SELECT format('ALTER TABLE events DROP CONSTRAINT %I', conname) FROM bench_indexes WHERE conname IS NOT NULL \gexec
SELECT now() AS ref \gset
SELECT setseed($SEED) \\gset
SQL
    for ((lo = 1; lo <= ROWS; lo += CHUNK)); do
        hi=$((lo + CHUNK - 1 < ROWS ? lo + CHUNK - 1 : ROWS))
        # Expired rows i <= E: 31 to 60 days before the load; the others 0 to 28 days (a margin of two
        # days, so none expires while the benchmark runs); up to 10 minutes of jitter.
        cat <<SQL
INSERT INTO events (id, trace_id, span_id, project_id, feature, user_id, provider, model, input_tokens,
    output_tokens, cached_tokens, latency_ms, estimated_cost_usd, verified_cost_usd, created_at)
SELECT md5('rollupd-retention-bench:' || i)::uuid, md5('trace:' || i), 'load',
    'p' || (1 + floor(random() * 3)::int), 'f' || (1 + floor(random() * 6)::int), 'u' || floor(random() * 1000)::int,
    'openai', 'm' || (1 + floor(random() * 5)::int), 100 + floor(random() * 1900)::int, 20 + floor(random() * 480)::int,
    0, 50 + floor(random() * 1950)::int, round((random() * 0.02)::numeric, 6),
    CASE WHEN random() < 0.1 THEN round((random() * 0.02)::numeric, 6) END,
    CASE WHEN i <= $EXPIRED
         THEN :'ref'::timestamptz - interval '31 days' - ($EXPIRED - i)::float8 / greatest($EXPIRED, 1) * interval '29 days'
         ELSE :'ref'::timestamptz - ($ROWS - i)::float8 / greatest($YOUNG, 1) * interval '28 days'
    END - random() * interval '10 minutes'
FROM generate_series($lo, $hi) AS i;
\\echo loaded $hi of $ROWS
SQL
    done
    cat <<SQL
\\echo rebuilding the indexes of events
SET maintenance_work_mem = '256MB';
SELECT format('ALTER TABLE events ADD CONSTRAINT %I %s', conname, condef) FROM bench_indexes WHERE conname IS NOT NULL \gexec
SELECT def FROM bench_indexes WHERE conname IS NULL \gexec
SQL
} | psql -q "$TEMPLATE_URL" | while read -r line; do say "$line ($(elapsed "$t" "$(now_us)") s)"; done
LOAD_S=$(elapsed "$t" "$(now_us)")

say "rollupd once (rolls up all $ROWS events)"
t=$(now_us)
rollupd "$TEMPLATE_URL" once ROLLUPD_DATABASE_STATEMENT_TIMEOUT=2h 2>"$WORK/once.log" || { cat "$WORK/once.log" >&2; die "rollupd once failed"; }
ONCE_S=$(elapsed "$t" "$(now_us)")
say "rolled up in $ONCE_S s; VACUUM ANALYZE"
t=$(now_us)
psql -q -c "VACUUM ANALYZE" -c "CHECKPOINT" "$TEMPLATE_URL"
VACUUM_S=$(elapsed "$t" "$(now_us)")
read -r T_TOTAL T_EXPIRED T_CALLS EVENTS_BYTES DB_BYTES < <(sql "$TEMPLATE_URL" "
    SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE created_at < now() - interval '$KEEP_DAYS days'),
           (SELECT coalesce(sum(call_count), 0) FROM cost_aggregates WHERE period = 'hour'),
           pg_total_relation_size('events'), pg_database_size(current_database())" | tr '|' ' ')
[[ $T_TOTAL == "$ROWS" && $T_EXPIRED == "$EXPIRED" && $T_CALLS == "$ROWS" ]] ||
    die "template has $T_TOTAL events ($T_EXPIRED expired, $T_CALLS rolled up); expected $ROWS ($EXPIRED, $ROWS)"
sql "$ADMIN_URL" "ALTER DATABASE $TEMPLATE_DB WITH ALLOW_CONNECTIONS false" >/dev/null # no autovacuum worker in the way of the copies
say "template ready: events $((EVENTS_BYTES / 1048576)) MB, database $((DB_BYTES / 1048576)) MB"

# --- 2. the phases -----------------------------------------------------------------------------
cat >"$WORK/insert.sql" <<'SQL'
\set p random(1, 3)
\set f random(1, 6)
\set m random(1, 5)
\set u random(0, 999)
INSERT INTO events (trace_id, span_id, project_id, feature, user_id, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
VALUES (md5(random()::text), 'span', 'p' || :p, 'f' || :f, 'u' || :u, 'openai', 'm' || :m, 1200, 300, 850, 0.0042);
SQL

# checkpoints, autovacuum runs on events, rows deleted from events, WAL position (bytes), as "a b c d"
counters() {
    sql "$BENCH_URL" "SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
        autovacuum_count, n_tup_del, pg_current_wal_lsn() - '0/0'::pg_lsn
        FROM pg_stat_user_tables WHERE relid = 'events'::regclass" | tr '|' ' '
}
# The same every second during a phase, with a timestamp: "epoch_us wal_bytes checkpoints n_tup_del"
SAMPLE_SQL="SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint, pg_current_wal_lsn() - '0/0'::pg_lsn,
    (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter), n_tup_del
    FROM pg_stat_user_tables WHERE relid = 'events'::regclass;"
# loaded rows still there younger than 30 days, expired rows left, client rows, cost_aggregates
# rows, sum(call_count) of the hour rows (one per event), sum(total_cost), captured change rows
state() {
    sql "$BENCH_URL" "SELECT e.*, a.*, (SELECT count(*) FROM rollupd.event_changes)
        FROM (SELECT count(*) FILTER (WHERE span_id = 'load' AND created_at >= now() - interval '$KEEP_DAYS days'),
                     count(*) FILTER (WHERE created_at < now() - interval '$KEEP_DAYS days'),
                     count(*) FILTER (WHERE span_id = 'span') FROM events) AS e,
             (SELECT count(*), coalesce(sum(call_count) FILTER (WHERE period = 'hour'), 0),
                     coalesce(sum(total_cost), 0) FROM cost_aggregates) AS a" | tr '|' ' '
}

# Latency statistics of the transactions scheduled in [t0, t1) (µs), from pgbench's -l logs:
# client_id transaction_no latency_us script_no epoch_s epoch_us schedule_lag_us.
# Prints: transactions tps | latency p50 p99 max mean | exec p50 p99 max mean | lag p50 p99 max mean
analyze() {
    local prefix=$1 t0=$2 t1=$3 f
    : >"$WORK/lines"; : >"$WORK/lat"; : >"$WORK/exec"; : >"$WORK/lag"
    for f in "$prefix".*; do
        # pgbench was stopped with SIGTERM: drop a last line it had only half written.
        if [[ -n $(tail -c 1 "$f") ]]; then sed '$d' "$f"; else cat "$f"; fi >>"$WORK/lines"
    done
    awk -v t0="$t0" -v t1="$t1" -v dir="$WORK" '
        NF >= 7 {
            end = $5 * 1000000 + $6; sched = end - $3
            if (end >= t0 && end < t1) done++
            if (sched >= t0 && sched < t1) { print $3 > (dir "/lat"); print $3 - $7 > (dir "/exec"); print $7 > (dir "/lag") }
        }
        END { printf "%d %.1f\n", NR, done / ((t1 - t0) / 1e6) > (dir "/done") }' "$WORK/lines"
    local n tps
    n=$(wc -l <"$WORK/lat")
    ((n > 0)) || die "no client transaction was scheduled inside the window (see $prefix.*)"
    read -r _ tps <"$WORK/done"
    printf '%s %s' "$n" "$tps"
    for f in lat exec lag; do
        sort -n "$WORK/$f" | awk '{ a[NR] = $1; s += $1 }
            function q(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return a[i] / 1000 }
            END { printf " %.3f %.3f %.3f %.3f", q(0.5), q(0.99), a[NR] / 1000, s / NR / 1000 }'
    done
    echo
    rm -f "$WORK/lat" "$WORK/exec" "$WORK/lag"
}

# One entry per second of the window (by scheduled start): [second, transactions, p99 ms, max ms of
# the latency, then rows deleted from events, checkpoints and WAL MB since the window started, as
# sampled at the end of that second]. Uses $WORK/lines from analyze.
timeline() {
    local t0=$1 t1=$2 samples=$3
    awk -v t0="$t0" -v t1="$t1" 'NF >= 7 { sched = $5 * 1000000 + $6 - $3
        if (sched >= t0 && sched < t1) printf "%d %d\n", int((sched - t0) / 1e6), $3 }' "$WORK/lines" |
        sort -k1,1n -k2,2n >"$WORK/persec"
    awk -v t0="$t0" '
        FNR == NR { ns++; ts[ns] = $1; wal[ns] = $2; cp[ns] = $3; del[ns] = $4; if ($1 <= t0) b = ns; next }
        function flush(  i, k) {
            if (!n) return
            k = 0; for (i = 1; i <= ns; i++) if (ts[i] <= t0 + (cur + 1) * 1e6) k = i
            if (!b) b = 1; if (!k) k = b
            i = int(0.99 * n); if (i < 0.99 * n) i++
            printf "%s[%d,%d,%.1f,%.1f,%d,%d,%.1f]", (out++ ? "," : ""), cur, n, a[i] / 1000, a[n] / 1000,
                del[k] - del[b], cp[k] - cp[b], (wal[k] - wal[b]) / 1048576
            n = 0
        }
        $1 != cur { flush(); cur = $1 }
        { a[++n] = $2 }
        END { flush() }' "$samples" "$WORK/persec"
}

declare -A R # results, by "phase.key"
CHECKS_OK=1
check() { # name, condition result (0/1), detail
    R[check.$1]=$2
    if (($2)); then say "check $1: ok ($3)"; else say "check $1: FAILED ($3)"; CHECKS_OK=0; fi
}

run_phase() {
    local phase=$1 t t0 t1 rc=0
    say "phase $phase: copying the template"
    sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    t=$(now_us)
    sql "$ADMIN_URL" "CREATE DATABASE $BENCH_DB TEMPLATE $TEMPLATE_DB $COPY_STRATEGY" >/dev/null
    R[$phase.copy_s]=$(elapsed "$t" "$(now_us)")
    # The same full scan before every phase, so each starts with the same cache.
    read -r S0_YOUNG S0_EXPIRED _ S0_AGG_ROWS S0_CALLS S0_COST S0_CHANGES < <(state)
    read -r CP0 AV0 DEL0 WAL0 < <(counters)
    R[$phase.load_avg]=$(loadavg)

    # Deletion progress, checkpoints and WAL every second, over one connection (in every phase).
    rm -f "$WORK/stop"
    while [[ ! -e $WORK/stop ]]; do
        echo "$SAMPLE_SQL"
        sleep 1
    done | psql -qAt -F ' ' "$BENCH_URL" >"$WORK/$phase.samples" &
    POLLER_PID=$!

    # The client; stopped with SIGTERM once the window is over (-T is only a safety net).
    (cd "$WORK" && exec "$PG_BIN/pgbench" -n -f insert.sql -c "$CLIENTS" -j "$CLIENTS" -R "$RATE" -T 86400 \
        -l --log-prefix="$phase" "$BENCH_URL" >"$phase.pgbench" 2>&1) &
    PGBENCH_PID=$!
    sleep "$WARMUP_SECONDS"
    kill -0 "$PGBENCH_PID" 2>/dev/null || { cat "$WORK/$phase.pgbench" >&2; die "pgbench stopped early"; }

    say "phase $phase: measuring"
    t0=$(now_us)
    case $phase in
    idle) sleep "$IDLE_SECONDS" ;;
    retention)
        rollupd "$BENCH_URL" retention ROLLUPD_RETENTION_MAX_ROWS_PER_RUN="$MAX_ROWS_PER_RUN" 2>"$WORK/retention.log" || rc=$?
        ;;
    delete)
        psql -c "SET rollupd.capture = 'off'" -c "SET statement_timeout = 0" \
            -c "DELETE FROM events WHERE created_at < now() - interval '$KEEP_DAYS days'" "$BENCH_URL" >"$WORK/delete.out" 2>&1 || rc=$?
        ;;
    esac
    t1=$(now_us)
    sleep "$TAIL_SECONDS"
    kill -0 "$PGBENCH_PID" 2>/dev/null || { cat "$WORK/$phase.pgbench" >&2; die "pgbench stopped early"; }
    kill -TERM "$PGBENCH_PID"
    wait "$PGBENCH_PID" 2>/dev/null || true
    PGBENCH_PID=""
    touch "$WORK/stop"
    wait "$POLLER_PID" || true
    POLLER_PID=""
    if grep -qiE 'error|abort' "$WORK/$phase.pgbench"; then cat "$WORK/$phase.pgbench" >&2; die "the client failed"; fi
    case $phase in
    retention) ((rc == 0)) || { cat "$WORK/retention.log" >&2; die "rollupd retention failed (exit $rc)"; } ;;
    delete) ((rc == 0)) || { cat "$WORK/delete.out" >&2; die "the DELETE failed"; } ;;
    esac

    R[$phase.window_s]=$(elapsed "$t0" "$t1")
    local stats key i=0
    read -ra stats < <(analyze "$WORK/$phase" "$t0" "$t1")
    ((${#stats[@]} == 14)) || die "could not analyze the client's log"
    for key in n tps lat_p50 lat_p99 lat_max lat_mean exec_p50 exec_p99 exec_max exec_mean lag_p50 lag_p99 lag_max lag_mean; do
        R[$phase.$key]=${stats[i++]}
    done
    R[$phase.timeline]=$(timeline "$t0" "$t1" "$WORK/$phase.samples")
    read -r CP1 AV1 DEL1 WAL1 < <(counters)
    R[$phase.checkpoints]=$((CP1 - CP0))
    R[$phase.autovacuums]=$((AV1 - AV0))
    R[$phase.wal_mb]=$(awk -v a="$WAL0" -v b="$WAL1" 'BEGIN { printf "%.0f", (b - a) / 1048576 }')

    case $phase in
    retention)
        local line
        line=$(grep 'retention of events ' "$WORK/retention.log" || true)
        [[ -n $line ]] || { cat "$WORK/retention.log" >&2; die "no 'retention of events' line in rollupd's log"; }
        for key in rows batches backlog took_ms; do
            [[ $line =~ (^|[[:space:]])$key=([0-9]+) ]] || die "no $key= in: $line"
            R[retention.$key]=${BASH_REMATCH[2]}
        done
        R[retention.error]=null
        if [[ $line == *" error="* ]]; then # the whole line: the message may contain spaces and '='
            R[retention.error]="\"$(printf '%s' "$line" | sed 's/\\/\\\\/g; s/"/\\"/g')\""
        fi
        R[retention.deleted]=${R[retention.rows]}
        # Deletion rate early (from 10% to 35% of the rows) and late (65% to 90%), from the n_tup_del
        # samples; inner stretches, so the ~1 s the statistics take to show up cancels out.
        R[retention.rates]=$(awk -v t0="$t0" -v t1="$t1" -v d0="$DEL0" -v rows="${R[retention.rows]}" '
            $1 >= t0 { t[++n] = $1; d[n] = $4 - d0 }
            function at(frac,  k) { for (k = 1; k <= n; k++) if (d[k] >= frac * rows) return k; return 0 }
            function rate(a, b,  i, j) {
                i = at(a); j = at(b)
                return (i && j > i) ? sprintf("%.0f", (d[j] - d[i]) / ((t[j] - t[i]) / 1e6)) : "null"
            }
            END { printf "%s %s", rate(0.10, 0.35), rate(0.65, 0.90) }' "$WORK/retention.samples")

        local young expired client agg_rows calls cost changes
        read -r young expired client agg_rows calls cost changes < <(state)
        check retention_deleted_every_expired_row "$((R[retention.rows] == EXPIRED && expired == 0))" \
            "rows=${R[retention.rows]} of $EXPIRED, $expired expired rows left, backlog=${R[retention.backlog]}"
        check retention_kept_young_rows "$((young == S0_YOUNG && young == YOUNG))" \
            "loaded rows younger than ${KEEP_DAYS} days: $S0_YOUNG before, $young after, $YOUNG loaded"
        check retention_deleted_nothing_else "$((DEL1 - DEL0 == EXPIRED))" "n_tup_del grew by $((DEL1 - DEL0))"
        check retention_left_cost_aggregates_unchanged \
            "$([[ $agg_rows == "$S0_AGG_ROWS" && $calls == "$S0_CALLS" && $cost == "$S0_COST" ]] && echo 1 || echo 0)" \
            "rows $S0_AGG_ROWS -> $agg_rows, sum(call_count) $S0_CALLS -> $calls, sum(total_cost) $S0_COST -> $cost"
        check retention_captured_no_change "$((changes == S0_CHANGES && changes == 0))" "event_changes: $changes"
        R[retention.calls_before]=$S0_CALLS R[retention.calls_after]=$calls
        rollupd "$BENCH_URL" once 2>"$WORK/once2.log" || { cat "$WORK/once2.log" >&2; die "rollupd once after retention failed"; }
        read -r _ _ client _ calls _ _ < <(state)
        check rollups_exact_after_next_pass "$((calls == S0_CALLS + client))" \
            "sum(call_count) $S0_CALLS + $client client rows = $calls after one more pass"
        ;;
    delete)
        local out young expired changes
        out=$(grep -oE '^DELETE [0-9]+' "$WORK/delete.out" || true)
        R[delete.deleted]=${out#DELETE }
        read -r young expired _ _ _ _ changes < <(state)
        check delete_deleted_every_expired_row "$((R[delete.deleted] == EXPIRED && expired == 0 && young == YOUNG))" \
            "deleted ${R[delete.deleted]} of $EXPIRED, $expired expired and $young of $YOUNG young loaded rows left"
        check delete_captured_no_change "$((changes == 0))" "event_changes: $changes"
        ;;
    esac
    R[$phase.deletion_s]=${R[$phase.window_s]}
    sql "$ADMIN_URL" "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    say "phase $phase: ${R[$phase.n]} inserts, p99 ${R[$phase.lat_p99]} ms (exec ${R[$phase.exec_p99]} ms), window ${R[$phase.window_s]} s"
}

LOAD_BEFORE_PHASES=$(loadavg)
for phase in idle retention delete; do run_phase "$phase"; done
LOAD_AT_END=$(loadavg)
FINISHED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
say "load average at end: $LOAD_AT_END"

# --- 3. output ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "null" }'; }
for m in lat exec; do
    R[ratio.${m}_retention]=$(ratio "${R[retention.${m}_p99]}" "${R[idle.${m}_p99]}")
    R[ratio.${m}_delete]=$(ratio "${R[delete.${m}_p99]}" "${R[idle.${m}_p99]}")
done

server_settings=$(sql "$ADMIN_URL" "SELECT json_object_agg(n, current_setting(n)) FROM unnest(ARRAY['shared_buffers',
    'max_wal_size', 'checkpoint_timeout', 'fsync', 'synchronous_commit', 'full_page_writes', 'autovacuum',
    'synchronize_seqscans', 'work_mem', 'random_page_cost']) AS n")
pg_version=$(sql "$ADMIN_URL" "SELECT version()" | sed 's/"/\\"/g')
git_commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
git_dirty=$([[ -n $(git -C "$REPO" status --porcelain -- Sources migrations Package.swift 2>/dev/null) ]] && echo true || echo false)
stats_json() { # phase, metric prefix
    printf '{"p50":%s,"p99":%s,"max":%s,"mean":%s}' "${R[$1.$2_p50]}" "${R[$1.$2_p99]}" "${R[$1.$2_max]}" "${R[$1.$2_mean]}"
}
phase_json() {
    local p=$1
    printf '{"window_s":%s,"load_avg_start":%s,"copy_s":%s,"transactions":%s,"tps":%s,' \
        "${R[$p.window_s]}" "${R[$p.load_avg]}" "${R[$p.copy_s]}" "${R[$p.n]}" "${R[$p.tps]}"
    printf '"latency_ms":%s,"exec_ms":%s,"lag_ms":%s,"checkpoints":%s,"wal_mb":%s,"autovacuums_of_events":%s,' \
        "$(stats_json "$p" lat)" "$(stats_json "$p" exec)" "$(stats_json "$p" lag)" "${R[$p.checkpoints]}" \
        "${R[$p.wal_mb]}" "${R[$p.autovacuums]}"
    printf '"timeline_columns":["second","transactions","latency_p99_ms","latency_max_ms","rows_deleted","checkpoints","wal_mb"],'
    printf '"timeline":[%s]' "${R[$p.timeline]}"
    case $p in
    retention)
        read -r early late <<<"${R[retention.rates]}"
        printf ',"deletion":{"wall_s":%s,"rows":%s,"batches":%s,"backlog":%s,"events_took_ms":%s,"error":%s,' \
            "${R[retention.deletion_s]}" "${R[retention.rows]}" "${R[retention.batches]}" "${R[retention.backlog]}" \
            "${R[retention.took_ms]}" "${R[retention.error]}"
        printf '"rows_per_s_early":%s,"rows_per_s_late":%s}' "$early" "$late"
        ;;
    delete) printf ',"deletion":{"wall_s":%s,"rows":%s}' "${R[delete.deletion_s]}" "${R[delete.deleted]}" ;;
    esac
    printf '}'
}
checks_json=$(for k in "${!R[@]}"; do
    if [[ $k == check.* ]]; then printf '"%s":%s\n' "${k#check.}" "$([[ ${R[$k]} == 1 ]] && echo true || echo false)"; fi
done | sort | paste -sd, -)

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/retention-$STAMP.json"
{
    printf '{"benchmark":"retention","started_at":"%s","finished_at":"%s","git_commit":"%s","git_dirty":%s,\n' \
        "$STARTED_AT" "$FINISHED_AT" "$git_commit" "$git_dirty"
    printf '"machine":{"nproc":%s,"mem_total_mb":%s,"cpu":"%s","postgresql":"%s","server_settings":%s,' \
        "$(nproc)" "$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo | sed 's/"/\\"/g')" "$pg_version" "$server_settings"
    printf '"load_avg_start":%s,"load_avg_before_phases":%s,"load_avg_end":%s},\n' "$LOAD_AT_START" "$LOAD_BEFORE_PHASES" "$LOAD_AT_END"
    printf '"parameters":{"rows":%s,"expired_fraction":%s,"expired_rows":%s,"rate":%s,"clients":%s,"threads":%s,' \
        "$ROWS" "$EXPIRED_FRACTION" "$EXPIRED" "$RATE" "$CLIENTS" "$CLIENTS"
    printf '"idle_s":%s,"warmup_s":%s,"tail_s":%s,"smoke":%s,"seed":%s,"retention_keep":"%sd",' \
        "$IDLE_SECONDS" "$WARMUP_SECONDS" "$TAIL_SECONDS" "$( ((SMOKE)) && echo true || echo false)" "$SEED" "$KEEP_DAYS"
    printf '"retention_max_rows_per_run":%s,"retention_other_settings":"defaults of config/rollupd.yaml","rollupd":"%s"},\n' \
        "$MAX_ROWS_PER_RUN" "$ROLLUPD"
    printf '"setup":{"load_and_index_s":%s,"rollup_once_s":%s,"vacuum_analyze_s":%s,"events_bytes":%s,"database_bytes":%s},\n' \
        "$LOAD_S" "$ONCE_S" "$VACUUM_S" "$EVENTS_BYTES" "$DB_BYTES"
    printf '"phases":{\n"idle":%s,\n"retention":%s,\n"delete":%s},\n' "$(phase_json idle)" "$(phase_json retention)" "$(phase_json delete)"
    printf '"ratios":{"p99_latency_retention_vs_idle":%s,"p99_latency_delete_vs_idle":%s,' \
        "${R[ratio.lat_retention]}" "${R[ratio.lat_delete]}"
    printf '"p99_exec_retention_vs_idle":%s,"p99_exec_delete_vs_idle":%s},\n' "${R[ratio.exec_retention]}" "${R[ratio.exec_delete]}"
    printf '"checks":{%s}}\n' "$checks_json"
} >"$OUT"
if command -v jq >/dev/null; then jq . "$OUT" >/dev/null || die "wrote invalid JSON to $OUT"; fi

printf '\nretention benchmark: %s events, %s expired, client %s inserts/s (-c %s), load average %s -> %s\n\n' \
    "$ROWS" "$EXPIRED" "$RATE" "$CLIENTS" "$LOAD_AT_START" "$LOAD_AT_END"
printf '%-10s %8s %8s %9s %9s %9s %9s %9s %10s %9s\n' phase window_s tps p50_ms p99_ms max_ms exec_p99 lag_p99 deleted delete_s
for p in idle retention delete; do
    printf '%-10s %8s %8s %9s %9s %9s %9s %9s %10s %9s\n' "$p" "${R[$p.window_s]}" "${R[$p.tps]}" "${R[$p.lat_p50]}" \
        "${R[$p.lat_p99]}" "${R[$p.lat_max]}" "${R[$p.exec_p99]}" "${R[$p.lag_p99]}" "${R[$p.deleted]:--}" \
        "$([[ $p == idle ]] && echo - || echo "${R[$p.deletion_s]}")"
done
printf '\np99 latency vs idle: retention %sx, unbatched DELETE %sx (execution only: %sx, %sx)\n' \
    "${R[ratio.lat_retention]}" "${R[ratio.lat_delete]}" "${R[ratio.exec_retention]}" "${R[ratio.exec_delete]}"
read -r early late <<<"${R[retention.rates]}"
printf 'rollupd retention: %s rows in %s batches, events took_ms=%s, rows/s early %s, late %s\n' \
    "${R[retention.rows]}" "${R[retention.batches]}" "${R[retention.took_ms]}" "$early" "$late"
printf 'results: %s\n' "$OUT"
((CHECKS_OK)) || die "a correctness check failed (see above)"
