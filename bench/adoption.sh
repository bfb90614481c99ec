#!/usr/bin/env bash
# bench/adoption.sh — adopting a big existing table while the product keeps writing (issue 14):
# what does `rollupd once` adopting N pre-existing events (rollupd_xid NULL, adopted in key order,
# rollup.max_rows_per_transaction at a time) cost the product's single-row inserts, and how long
# does it take against the set-based limit over the same rows?
#
#   bench/adoption.sh [--rows N] [--rate R] [--seconds T] [--bound B] [--migrations DIR] [--config FILE] [--smoke] [--keep]
#                     [--admin-url CONNINFO]
#
#   --rows N      events in the table before rollupd arrives (default 5000000; the issue asks 50M)
#   --rate R      the writer's target rate, inserts/s over its 2 connections (default 500)
#   --seconds T   length of the idle window (default 20)
#   --bound B     rollup.max_rows_per_transaction (default: the config's, 100000)
#   --migrations DIR  the migrations rollupd applies (default: migrations/ of this tree, copied at
#                 the start); they must be the ones the binary was built with
#   --config FILE the rollupd.yaml every run reads (default: config/rollupd.yaml of this tree,
#                 copied at the start); it must be one the binary accepts
#   --smoke       N=50000, T=3, bound 7000 (CI)
#   --keep        keep the database rollupd_adoption_bench
#   --admin-url   superuser conninfo on the postgres database
#                 (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# How: N events by bench/generator.sql into seed 001's events (primary key and the app's indexes
# built after the load), then `rollupd migrate` (rollupd_xid NULL on every row), VACUUM ANALYZE,
# CHECKPOINT. One writer for the whole measurement: pgbench, bench/insert-event.pgbench, -R R -c 2
# -j 2, per-transaction log. After a 3 s warm-up, three windows one after the other:
#   idle       T s, nothing else;
#   adoption   `rollupd once` from start to exit (it adopts the N rows, then counts the writer's
#              rows written meanwhile, and exits caught up);
#   set-based  the set-based limit: one statement writing the same outputs as the events pass
#              (bench/lib.sh BASELINE_SAME_SQL: hour, day, per-user day into copies of the real
#              tables with their indexes) over the whole table, the same rows plus the writer's.
# The writer goes on until its schedule lag is drained, then stops. Per window, over the inserts
# *scheduled* in it: latency (pgbench's, from the scheduled start) p50/p99/max/mean and inserts over
# 100 ms. Then a last `rollupd once` and the oracle (every bucket recomputed from the raw events).
# Targets (issue 14): adoption p99 within 2x idle p99; adoption wall within 1.25x the set-based.
#
# Environment: BENCH_BINARY_COMMIT (the commit a prebuilt binary was built from, recorded in the
# JSON), ROLLUPD_BINARY (prebuilt binary, copied first; unset: release build, bench/lib.sh).
# Needs psql, pgbench (newest /usr/lib/postgresql/*/bin), GNU /usr/bin/time.
# Writes bench/results/adoption-<UTC timestamp>.json and prints a table.
set -euo pipefail
NAME=adoption
BENCH_DB=rollupd_adoption_bench
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

ROWS=5000000 RATE=500 IDLE_S=20 BOUND="" WARMUP=3 CLIENTS=2
rset=0 tset=0 bset=0
posint() { [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"; }
parse_extra() {
    EXTRA_SHIFT=2
    case $1 in
    --rows) posint "$@"; ROWS=$2 rset=1 ;;
    --rate) posint "$@"; RATE=$2 ;;
    --seconds) posint "$@"; IDLE_S=$2 tset=1 ;;
    --bound) posint "$@"; BOUND=$2 bset=1 ;;
    --migrations) [[ -d ${2-} ]] || die "--migrations needs a directory"; MIGRATIONS=$(readlink -f "$2") ;;
    --config) [[ -f ${2-} ]] || die "--config needs a file"; CONFIG_FILE=$(readlink -f "$2") ;;
    *) return 1 ;;
    esac
}
parse_common "$@"
# A smoke run (bench/smoke.sh, e.g. from someone else's `scripts/dev test`) must not drop the
# database of a full run in progress on the same cluster.
if ((SMOKE)); then BENCH_DB=${BENCH_DB}_smoke; fi
if ((SMOKE)); then
    ((rset)) || ROWS=50000
    ((tset)) || IDLE_S=3
    ((bset)) || BOUND=7000
    WARMUP=1
fi
PGBENCH="$(pg_bin)/pgbench"
[[ -x $PGBENCH ]] || die "no pgbench under /usr/lib/postgresql/*/bin"
/usr/bin/time -f %M true 2>/dev/null || die "needs GNU time at /usr/bin/time"
setup_bench
# Copies taken now: a rebuild, or an edit of migrations/ while the benchmark runs (rollupd refuses
# an applied migration whose file changed), changes nothing.
cp -r "${MIGRATIONS:-$REPO/migrations}" "$WORK/migrations"
export ROLLUPD_MIGRATIONS_DIRECTORY="$WORK/migrations"
[[ -z ${CONFIG_FILE-} ]] || cp "$CONFIG_FILE" "$CONFIG"
cp "$ROLLUPD" "$WORK/rollupd"
BINARY_SOURCE=$ROLLUPD ROLLUPD="$WORK/rollupd"
BINARY_SHA=$(sha256sum "$ROLLUPD" | cut -c1-12)
GIT_COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
# The commit the binary was built from, when the caller knows it (a prebuilt ROLLUPD_BINARY may
# be older than the tree's HEAD, which is recorded too).
BINARY_COMMIT=${BENCH_BINARY_COMMIT:-unknown}
export ROLLUPD_LOG_LEVEL=debug
[[ -n $BOUND ]] && export ROLLUPD_ROLLUP_MAX_ROWS_PER_TRANSACTION=$BOUND
DEFAULT_BOUND=${BOUND:-$(awk '/^ *max_rows_per_transaction:/ { print $2; exit }' "$CONFIG")}
PGBENCH_PID=""
stop_writer() { [[ -z $PGBENCH_PID ]] || { kill -TERM "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null; } || true; PGBENCH_PID=""; }
CLEANUP_HOOK=stop_writer
now_us() { date +%s%6N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
nap() { sleep "$1" & wait $!; }
LOAD_START=$(loadavg)

# --- 1. the product's table, before rollupd ---------------------------------------------------------
say "fresh database $BENCH_DB: $ROWS events before rollupd (setseed($SEED)), indexes, migrate"
fresh_db "$BENCH_DB"
psql_bench -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
create_generator
drop_app_indexes
t0=$(now_ns)
load_events 1 "$ROWS" "$SEED"
restore_app_indexes
LOAD_MS=$(ms_since "$t0")
rollupd_migrate
create_baseline_tables
psql_bench -c "VACUUM ANALYZE events" -c "CHECKPOINT"
NULLS=$(psql_bench -c "SELECT count(*) FROM events WHERE rollupd_xid IS NULL")
((NULLS == ROWS)) || die "$NULLS of $ROWS rows without an xid after migrate"
EVENTS_MB=$(psql_bench -c "SELECT pg_total_relation_size('events') / 1048576")
say "loaded and indexed in $LOAD_MS ms; events $EVENTS_MB MB with indexes"

# --- 2. the writer; idle, adoption, set-based ---------------------------------------------------------
mkdir -p "$WORK/writer"
cp "$REPO/bench/insert-event.pgbench" "$WORK/writer/insert.pgbench"
(cd "$WORK/writer" && exec "$PGBENCH" -n -f insert.pgbench -c "$CLIENTS" -j "$CLIENTS" -R "$RATE" -T 86400 -P 1 \
    -l --log-prefix=writer "$BENCH_URL" >writer.out 2>writer.progress) &
PGBENCH_PID=$!
writer_alive() { kill -0 "$PGBENCH_PID" 2>/dev/null || { cat "$WORK/writer/writer.out" "$WORK/writer/writer.progress" >&2; die "the writer stopped early"; }; }
nap "$WARMUP"
writer_alive
say "idle window: $IDLE_S s (writer at $RATE inserts/s)"
IDLE_T0=$(now_us)
nap "$IDLE_S"
IDLE_T1=$(now_us)
writer_alive

say "adoption: rollupd once (bound $DEFAULT_BOUND)"
LOAD_ADOPT=$(loadavg)
read -r tb0 tf0 < <(db_temp_bytes)
ADOPT_T0=$(now_us)
env -u JOURNAL_STREAM /usr/bin/time -f %M -o "$WORK/rss" "$ROLLUPD" once --config "$CONFIG" >"$WORK/once.log" 2>&1 ||
    { cat "$WORK/once.log" >&2; die "rollupd once failed"; }
ADOPT_T1=$(now_us)
ADOPT_S=$(secs "$ADOPT_T0" "$ADOPT_T1")
writer_alive
sleep 1
read -r tb1 tf1 < <(db_temp_bytes)
ADOPT_TEMP=$((tb1 - tb0)) ADOPT_RSS=$(tail -n 1 "$WORK/rss")
field() { awk -v key="$1=" '/rolled up events / && / source=events / { for (i = 1; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1) }' "$WORK/once.log" | tail -n 1; }
ADOPT_ADDED=$(field added) ADOPT_TOOK=$(field took_ms) ADOPT_TX=$(field pass)
ADOPT_PROGRESS=$(grep -c 'catching up.*source=events' "$WORK/once.log" || true)
((ADOPT_ADDED >= ROWS)) || { cat "$WORK/once.log" >&2; die "rollupd once counted $ADOPT_ADDED events, expected at least $ROWS"; }
say "adoption took $ADOPT_S s ($ADOPT_TX transactions, $ADOPT_ADDED rows); set-based baseline"
nap 1
writer_alive
SAME_T0=$(now_us)
time_statement "$BASELINE_TRUNCATE_SAME" "$BASELINE_SAME_SQL"
SAME_T1=$(now_us)
SAME_MS=$STMT_MS SAME_TEMP=$STMT_TEMP_BYTES
SAME_ROWS=$(psql_bench -c "SELECT sum(call_count) FROM bench.full_cost WHERE period = 'hour'")
say "set-based: $SAME_MS ms over $SAME_ROWS rows; draining the writer"
DRAINED=false
for ((i = 0; i < 60 * 5; i++)); do
    nap 0.2
    writer_alive
    lag=$(grep '^progress:' "$WORK/writer/writer.progress" | tail -n 1 | sed -n 's/.*, lag \([0-9.]*\) ms.*/\1/p')
    if (($(now_us) - SAME_T1 >= 2000000)) && [[ $lag =~ ^[0-9.]+$ ]] && awk -v l="$lag" 'BEGIN { exit !(l < 20) }'; then DRAINED=true; break; fi
done
stop_writer
[[ $DRAINED == true ]] || say "warning: the writer's lag did not drain within 60 s"
grep -qiE 'error|abort' "$WORK/writer/writer.out" "$WORK/writer/writer.progress" && { cat "$WORK/writer/writer.out" >&2; die "the writer failed"; }
LOAD_END=$(loadavg)

# --- 3. correctness, numbers --------------------------------------------------------------------------
say "last rollupd once, then the oracle"
run_once
read -r EV HC DC DIFF < <(rollups_oracle)
[[ $HC == "$EV" && $DC == "$EV" && $DIFF == 0 ]] || die "oracle failed: events $EV, hour calls $HC, day calls $DC, differing buckets $DIFF"

shopt -s nullglob
LOGS=("$WORK"/writer/writer.[0-9]*)
read -r I_N I_P50 I_P99 I_MAX I_MEAN I_SLOW < <(pgbench_window_stats "$IDLE_T0" "$IDLE_T1" "${LOGS[@]}")
read -r A_N A_P50 A_P99 A_MAX A_MEAN A_SLOW < <(pgbench_window_stats "$ADOPT_T0" "$ADOPT_T1" "${LOGS[@]}")
read -r S_N S_P50 S_P99 S_MAX S_MEAN S_SLOW < <(pgbench_window_stats "$SAME_T0" "$SAME_T1" "${LOGS[@]}")
R_P99=$(ratio "$A_P99" "$I_P99") R_MAX=$(ratio "$A_MAX" "$I_MAX") R_S_P99=$(ratio "$S_P99" "$I_P99")
ADOPT_MS=$(awk -v s="$ADOPT_S" 'BEGIN { printf "%.1f", s * 1000 }')
R_TIME=$(ratio "$ADOPT_MS" "$SAME_MS") R_TOOK=$(ratio "$ADOPT_TOOK" "$SAME_MS")
MET_P99=$(awk -v r="$R_P99" 'BEGIN { print (r != "null" && r <= 2) ? "true" : "false" }')
MET_TIME=$(awk -v r="$R_TIME" 'BEGIN { print (r != "null" && r <= 1.25) ? "true" : "false" }')
win() { printf '{"window_s": %s, "inserts": %s, "latency_ms": {"p50": %s, "p99": %s, "max": %s, "mean": %s}, "over_100ms": %s}' "$(secs "$1" "$2")" "$3" "$4" "$5" "$6" "$7" "$8"; }
OUT="$RESULTS_DIR/adoption-$STAMP.json"
{
    printf '{"benchmark": "adoption", "started": "%s", "smoke": %s, "machine": %s,\n' "$STAMP" "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(machine_json)"
    printf ' "rollupd": {"tree_head_at_run": "%s", "binary_built_from": "%s", "binary_sha256_12": "%s", "binary_copied_from": "%s"},\n' "$GIT_COMMIT" "$BINARY_COMMIT" "$BINARY_SHA" "$BINARY_SOURCE"
    printf ' "postgres_settings": "%s",\n' "$(psql_admin -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem', 'max_parallel_workers_per_gather')")"
    printf ' "loadavg": {"start": %s, "before_adoption": %s, "end": %s},\n' "$LOAD_START" "$LOAD_ADOPT" "$LOAD_END"
    printf ' "params": {"rows": %s, "rate": %s, "clients": %s, "idle_s": %s, "bound": %s, "seed": %s}, "load_ms": %s, "events_mb": %s,\n' \
        "$ROWS" "$RATE" "$CLIENTS" "$IDLE_S" "$DEFAULT_BOUND" "$SEED" "$LOAD_MS" "$EVENTS_MB"
    printf ' "adoption": {"wall_s": %s, "events_took_ms": %s, "transactions": %s, "rows_counted": %s, "progress_lines": %s, "peak_rss_kb": %s, "temp_bytes": %s},\n' \
        "$ADOPT_S" "$ADOPT_TOOK" "$ADOPT_TX" "$ADOPT_ADDED" "$ADOPT_PROGRESS" "$ADOPT_RSS" "$ADOPT_TEMP"
    printf ' "set_based": {"ms": %s, "rows": %s, "temp_bytes": %s},\n' "$SAME_MS" "$SAME_ROWS" "$SAME_TEMP"
    printf ' "writer": {"idle": %s,\n  "adoption": %s,\n  "set_based": %s, "drained": %s},\n' \
        "$(win "$IDLE_T0" "$IDLE_T1" "$I_N" "$I_P50" "$I_P99" "$I_MAX" "$I_MEAN" "$I_SLOW")" \
        "$(win "$ADOPT_T0" "$ADOPT_T1" "$A_N" "$A_P50" "$A_P99" "$A_MAX" "$A_MEAN" "$A_SLOW")" \
        "$(win "$SAME_T0" "$SAME_T1" "$S_N" "$S_P50" "$S_P99" "$S_MAX" "$S_MEAN" "$S_SLOW")" "$DRAINED"
    printf ' "ratios": {"adoption_p99_over_idle_p99": %s, "adoption_max_over_idle_max": %s, "set_based_p99_over_idle_p99": %s, "adoption_wall_over_set_based": %s, "adoption_took_over_set_based": %s},\n' \
        "$R_P99" "$R_MAX" "$R_S_P99" "$R_TIME" "$R_TOOK"
    printf ' "targets": {"p99_within_2x_idle": %s, "adoption_within_1.25x_set_based": %s},\n' "$MET_P99" "$MET_TIME"
    printf ' "oracle": {"events": %s, "hour_call_count_sum": %s, "day_call_count_sum": %s, "buckets_differing": %s}}\n' "$EV" "$HC" "$DC" "$DIFF"
} >"$OUT"

printf '\nadoption of %s existing events (%s MB) under a writer at %s inserts/s (-c %s); %s cores; load average %s -> %s\n\n' \
    "$ROWS" "$EVENTS_MB" "$RATE" "$CLIENTS" "$(nproc)" "$LOAD_START" "$LOAD_END"
printf '%-10s %9s %8s %9s %9s %10s %9s %8s\n' window window_s inserts p50_ms p99_ms max_ms mean_ms ">100ms"
printf '%-10s %9s %8s %9s %9s %10s %9s %8s\n' idle "$(secs "$IDLE_T0" "$IDLE_T1")" "$I_N" "$I_P50" "$I_P99" "$I_MAX" "$I_MEAN" "$I_SLOW"
printf '%-10s %9s %8s %9s %9s %10s %9s %8s\n' adoption "$ADOPT_S" "$A_N" "$A_P50" "$A_P99" "$A_MAX" "$A_MEAN" "$A_SLOW"
printf '%-10s %9s %8s %9s %9s %10s %9s %8s\n' set-based "$(secs "$SAME_T0" "$SAME_T1")" "$S_N" "$S_P50" "$S_P99" "$S_MAX" "$S_MEAN" "$S_SLOW"
printf '\nadoption: %s s wall (%s transactions of <= %s, events took_ms %s, %s rows), peak RSS %s kB, temp %s bytes\n' \
    "$ADOPT_S" "$ADOPT_TX" "$DEFAULT_BOUND" "$ADOPT_TOOK" "$ADOPT_ADDED" "$ADOPT_RSS" "$ADOPT_TEMP"
printf 'set-based limit over the same rows: %s ms (temp %s bytes)\n' "$SAME_MS" "$SAME_TEMP"
printf 'adoption p99 / idle p99 = %sx (target <= 2x: %s); max / idle max = %sx; set-based p99 / idle p99 = %sx\n' \
    "$R_P99" "$([[ $MET_P99 == true ]] && echo met || echo 'NOT met')" "$R_MAX" "$R_S_P99"
printf 'adoption wall / set-based = %sx (target <= 1.25x: %s); took_ms / set-based = %sx\n' "$R_TIME" \
    "$([[ $MET_TIME == true ]] && echo met || echo 'NOT met')" "$R_TOOK"
printf 'correctness (oracle after a last rollupd once): ok, %s events\nresults: %s\n' "$EV" "$OUT"
