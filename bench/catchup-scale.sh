#!/usr/bin/env bash
# bench/catchup-scale.sh — does catch-up stay linear in the rows now that passes are bounded
# (issue 14)? At each size, two cases over the same N events:
#   adoption  the N rows were in events before `rollupd migrate` (rollupd_xid NULL): rollupd adopts
#             them in key order, rollup.max_rows_per_transaction at a time;
#   backlog   the same N rows written after `migrate` (so they carry xids), in transactions of
#             --tx-rows rows (set-based INSERT ... SELECT), then caught up in xid order.
# Per case, on the same rows in the same run: the set-based limit (one statement writing what the
# events pass writes: hour, day and per-user day, into copies of the real tables with their
# indexes; bench/lib.sh BASELINE_SAME_SQL, the one of bench/catchup.sh), the bare hour + day
# GROUP BY (BASELINE_BARE_SQL), then `rollupd once` with the default bound, `rollupd once` with
# --big-bound, and `rollupd run` (time to the first `catching up` line and to `caught up`, then
# SIGTERM). Each catch-up starts from the rollups as `migrate` left them; its peak RSS
# (/usr/bin/time %M), PostgreSQL temp file bytes of the database (pg_stat_database delta), wall
# time, sum of the events transactions' took_ms (debug log) and number of transactions are kept,
# and its rollups are compared with the set-based baseline's output (any difference stops the
# run). At the end of each case, an oracle recomputes every bucket from the raw events.
#
#   bench/catchup-scale.sh [--sizes "1000000 10000000"] [--tx-rows R] [--bound B] [--big-bound B2]
#                          [--no-run] [--once-only CASES] [--reps K] [--cases "adoption backlog"] [--migrations DIR] [--config FILE]
#                          [--smoke] [--keep]
#                          [--admin-url CONNINFO]
#
#   --sizes "A B ..."  event counts, one fresh database each (default "1000000 10000000";
#                      10M is ~3.5 GB with indexes and ~15 min on 2 cores; 50000000 needs ~20 GB)
#   --tx-rows R        rows per loading transaction in the backlog case (default 200000)
#   --bound B          rollup.max_rows_per_transaction of the default runs (default: the config's,
#                      100000)
#   --big-bound B2     a second `rollupd once` with this bound (default 1000000; 0 skips it)
#   --no-run           skip the `rollupd run` catch-up (time to first progress line)
#   --once-only "..."  cases that get only the baselines and `rollupd once` at the default bound
#                      (no --big-bound, no run): adoption is slow at 10M
#   --reps K           repetitions of both baselines and of `rollupd once` at the default bound
#                      (default 1)
#   --cases "..."      which cases, in this order (default "adoption backlog"); backlog alone
#                      generates its rows after migrate directly (no copy), time order = xid order
#   --migrations DIR   the migrations rollupd applies (default: migrations/ of this tree, copied at
#                      the start); they must be the ones the binary was built with
#   --config FILE      the rollupd.yaml every run reads (default: config/rollupd.yaml of this tree,
#                      copied at the start); it must be one the binary accepts
#   --smoke            sizes "10000 30000", R=2500, bound 4000, big bound 12000 (CI)
#   --keep             keep the database of the last size
#   --admin-url        superuser conninfo on the postgres database
#                      (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: BENCH_BINARY_COMMIT (the commit a prebuilt binary was built from, recorded in the
# JSON), ROLLUPD_BINARY (prebuilt binary, copied to a temporary directory first; unset:
# release build, see bench/lib.sh). Needs psql, /usr/bin/time (GNU), pgrep.
# Writes bench/results/catchup-scale-<UTC timestamp>.json (rewritten after every case) and prints
# a table; exits non-zero when the rollups ever differ from the baseline or the oracle.
set -euo pipefail
NAME=catchup-scale
BENCH_DB=rollupd_catchup_scale_bench
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

SIZES="1000000 10000000" TX_ROWS=200000 BOUND="" BIG_BOUND=1000000 DO_RUN=1 REPS=1 CASES="adoption backlog" ONCE_ONLY=""
sset=0 tset=0 bset=0 bbset=0
posint() { [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"; }
parse_extra() {
    EXTRA_SHIFT=2
    case $1 in
    --sizes) [[ ${2-} =~ ^[0-9\ ]+$ ]] || die "--sizes needs numbers"; SIZES=$2 sset=1 ;;
    --tx-rows) posint "$@"; TX_ROWS=$2 tset=1 ;;
    --bound) posint "$@"; BOUND=$2 bset=1 ;;
    --big-bound) [[ ${2-} =~ ^[0-9]+$ ]] || die "--big-bound needs a number"; BIG_BOUND=$2 bbset=1 ;;
    --reps) posint "$@"; REPS=$2 ;;
    --cases) [[ ${2-} =~ ^((adoption|backlog)\ ?)+$ ]] || die "--cases takes adoption and/or backlog"; CASES=$2 ;;
    --no-run) DO_RUN=0 EXTRA_SHIFT=1 ;;
    --once-only) [[ ${2-} =~ ^((adoption|backlog)\ ?)*$ ]] || die "--once-only takes adoption and/or backlog"; ONCE_ONLY=$2 ;;
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
    ((sset)) || SIZES="10000 30000"
    ((tset)) || TX_ROWS=2500
    ((bset)) || BOUND=4000
    ((bbset)) || BIG_BOUND=12000
fi
command -v /usr/bin/time >/dev/null && /usr/bin/time -f %M true 2>/dev/null || die "needs GNU time at /usr/bin/time"
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
# One log line per transaction of a pass ("rolled up part of events's backlog", debug), for took_ms.
export ROLLUPD_LOG_LEVEL=debug
[[ -n $BOUND ]] && export ROLLUPD_ROLLUP_MAX_ROWS_PER_TRANSACTION=$BOUND
DEFAULT_BOUND=${BOUND:-$(awk '/^ *max_rows_per_transaction:/ { print $2; exit }' "$CONFIG")}
LOAD_START=$(loadavg)
OUT="$RESULTS_DIR/catchup-scale-$STAMP.json"
jlist() { local d=$1; shift; (($#)) && join_by "$d" "$@"; return 0; } # join_by of lib.sh needs one element
per_s() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0 && ms != "null") printf "%.0f", n / (ms / 1000); else print "null" }'; }
jstr() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/ /g' | awk '{ printf "%s\\n", $0 }')"; }

# --- one catch-up ---------------------------------------------------------------------------------
# $1 once|run, $2 bound ("" = default). Starts from the rollups as migrate left them. Sets C_WALL_MS,
# C_TOOK_MS (sum over the events transactions), C_CHUNKS, C_ADDED, C_RSS_KB, C_TEMP_BYTES,
# C_TEMP_FILES, C_PROGRESS_LINES, C_FIRST_PROGRESS_MS and C_CAUGHT_UP_MS (run only; null if none),
# C_CHUNK_MS (median/max/first/last of the events transactions' took_ms), C_DIFF (buckets differing
# from the baseline).
catch_up() {
    local mode=$1 bound=$2 log="$WORK/catchup.log" t0 f0 t1 f1 started pid child i
    reset_rollups
    psql_bench -c "CHECKPOINT" >/dev/null
    wait_quiet
    read -r t0 f0 < <(db_temp_bytes)
    C_FIRST_PROGRESS_MS=null C_CAUGHT_UP_MS=null
    started=$(now_ns)
    if [[ $mode == once ]]; then
        env -u JOURNAL_STREAM ${bound:+ROLLUPD_ROLLUP_MAX_ROWS_PER_TRANSACTION=$bound} \
            /usr/bin/time -f %M -o "$WORK/rss" "$ROLLUPD" once --config "$CONFIG" >"$log" 2>&1 || { cat "$log" >&2; die "rollupd once failed"; }
        C_WALL_MS=$(ms_since "$started")
    else
        env -u JOURNAL_STREAM ${bound:+ROLLUPD_ROLLUP_MAX_ROWS_PER_TRANSACTION=$bound} \
            /usr/bin/time -f %M -o "$WORK/rss" "$ROLLUPD" run --config "$CONFIG" >"$log" 2>&1 &
        pid=$!
        RUN_PID=$pid
        for ((i = 0; ; i++)); do
            if [[ $C_FIRST_PROGRESS_MS == null ]] && grep -q 'catching up.*source=events' "$log"; then C_FIRST_PROGRESS_MS=$(ms_since "$started"); fi
            if grep -q 'caught up.*source=events' "$log"; then C_CAUGHT_UP_MS=$(ms_since "$started"); break; fi
            # A catch-up too short for any progress line ends with the events pass's info line.
            if grep -q 'rolled up events ' "$log"; then C_CAUGHT_UP_MS=$(ms_since "$started"); break; fi
            kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "rollupd run exited before catching up"; }
            ((i < 20 * 3600)) || die "rollupd run did not catch up within an hour"
            sleep 0.05
        done
        C_WALL_MS=$C_CAUGHT_UP_MS
        child=$(pgrep -P "$pid" | head -n 1 || true)
        [[ -n $child ]] && kill -TERM "$child"
        wait "$pid" || true
        RUN_PID=""
    fi
    sleep 1 # the backends' statistics arrive as they exit
    read -r t1 f1 < <(db_temp_bytes)
    C_TEMP_BYTES=$((t1 - t0)) C_TEMP_FILES=$((f1 - f0))
    C_RSS_KB=$(tail -n 1 "$WORK/rss")
    C_PROGRESS_LINES=$(grep -c 'catching up.*source=events' "$log" || true)
    # took_ms and added of every transaction of the events pass, in order. The daemon logs each
    # transaction (debug, the last one info); `once` logs each but the last (debug) and then the
    # whole catch-up (info: the sums), so there the last transaction is the sum less the others.
    awk -v once="$([[ $mode == once ]] && echo 1 || echo 0)" '/rolled up / && / source=events / { t = ""; a = ""
            for (i = 1; i <= NF; i++) { if (index($i, "took_ms=") == 1) t = substr($i, 9); if (index($i, "added=") == 1) a = substr($i, 7) }
            if (once && index($0, "rolled up part of") == 0) { print t - st, a - sa; next }
            st += t; sa += a; print t, a }' "$log" >"$WORK/chunks"
    C_CHUNKS=$(wc -l <"$WORK/chunks")
    ((C_CHUNKS > 0)) || { cat "$log" >&2; die "no 'rolled up' line for events in rollupd's log (log.level debug)"; }
    C_TOOK_MS=$(awk '{ s += $1 } END { print s + 0 }' "$WORK/chunks")
    C_ADDED=$(awk '{ s += $2 } END { print s + 0 }' "$WORK/chunks")
    C_CHUNK_MS="$(median $(cut -d ' ' -f 1 "$WORK/chunks")) $(maximum $(cut -d ' ' -f 1 "$WORK/chunks")) $(head -n 1 "$WORK/chunks" | cut -d ' ' -f 1) $(tail -n 1 "$WORK/chunks" | cut -d ' ' -f 1)"
    C_LOG_TAIL=$(grep -v 'rolled up part' "$log" | tail -n 12)
    C_DIFF=$(rollups_vs_baseline)
    [[ $C_ADDED == "$N" ]] || { cat "$log" >&2; die "$CASE, $mode (bound ${bound:-$DEFAULT_BOUND}): rollupd counted $C_ADDED events, expected $N"; }
    ((C_DIFF == 0)) || { cat "$log" >&2; die "$CASE, $mode (bound ${bound:-$DEFAULT_BOUND}): $C_DIFF buckets differ from the set-based baseline (--keep to look)"; }
}
RUN_PID=""
CLEANUP_HOOK=stop_run
stop_run() { [[ -z $RUN_PID ]] || { pkill -TERM -P "$RUN_PID" 2>/dev/null; wait "$RUN_PID" 2>/dev/null; } || true; }

catchup_json() { # $1 label, $2 bound
    local cm=($C_CHUNK_MS)
    printf '{"mode": "%s", "bound": %s, "wall_ms": %s, "events_took_ms_sum": %s, "rows_per_s_wall": %s, "rows_per_s_took": %s, "transactions": %s, "transaction_took_ms": {"median": %s, "max": %s, "first": %s, "last": %s, "all": [%s]}, "peak_rss_kb": %s, "temp_bytes": %s, "temp_files": %s, "progress_lines": %s, "first_progress_ms": %s, "caught_up_ms": %s, "over_same_outputs_wall": %s, "over_bare_wall": %s, "buckets_differing_from_baseline": %s, "log_tail": %s}' \
        "$1" "$2" "$C_WALL_MS" "$C_TOOK_MS" "$(per_s "$N" "$C_WALL_MS")" "$(per_s "$N" "$C_TOOK_MS")" "$C_CHUNKS" "${cm[0]}" "${cm[1]}" "${cm[2]}" "${cm[3]}" "$(cut -d ' ' -f 1 "$WORK/chunks" | paste -sd, -)" \
        "$C_RSS_KB" "$C_TEMP_BYTES" "$C_TEMP_FILES" "$C_PROGRESS_LINES" "$C_FIRST_PROGRESS_MS" "$C_CAUGHT_UP_MS" \
        "$(ratio "$C_WALL_MS" "$SAME_MED")" "$(ratio "$C_WALL_MS" "$BARE_MED")" "$C_DIFF" "$(jstr "$C_LOG_TAIL")"
}
ROWS_TXT=()
table_row() { # label ms temp rss extra
    ROWS_TXT+=("$(printf '%9s %-9s %-30s %10s %10s %8s %8s %10s %8s %s' "$N" "$CASE" "$1" "$2" "$(per_s "$N" "$2")" "$(ratio "$2" "$SAME_MED")" "$(ratio "$2" "$BARE_MED")" "$(awk -v b="$3" 'BEGIN { printf "%.0f", b / 1048576 }')" "$4" "${5-}")")
}

# --- one case ---------------------------------------------------------------------------------------
measure_case() {
    local rep same=() bare=() same_tb=() bare_tb=() onces=() j
    say "$N events, $CASE: baselines, then catch-ups"
    for ((rep = 1; rep <= REPS; rep++)); do
        wait_quiet
        time_statement "$BASELINE_TRUNCATE_SAME" "$BASELINE_SAME_SQL"
        same+=("$STMT_MS") same_tb+=("$STMT_TEMP_BYTES")
        time_statement "$BASELINE_TRUNCATE_BARE" "$BASELINE_BARE_SQL"
        bare+=("$STMT_MS") bare_tb+=("$STMT_TEMP_BYTES")
        SAME_MED=$(median "${same[@]}") BARE_MED=$(median "${bare[@]}")
        say "  set-based same outputs ${same[-1]} ms, bare hour + day ${bare[-1]} ms; rollupd once (bound $DEFAULT_BOUND)"
        catch_up once ""
        say "  rollupd once: ${C_WALL_MS} ms wall, $C_CHUNKS transactions, took_ms sum $C_TOOK_MS, RSS ${C_RSS_KB} kB, temp $C_TEMP_BYTES B"
        onces+=("$(catchup_json once "$DEFAULT_BOUND")")
        table_row "once, bound $DEFAULT_BOUND (rep $rep)" "$C_WALL_MS" "$C_TEMP_BYTES" "$C_RSS_KB" "tx=$C_CHUNKS took_sum=${C_TOOK_MS}ms"
        ONCE_WALLS+=("$C_WALL_MS")
    done
    local big=null run=null only=0
    [[ " $ONCE_ONLY " == *" $CASE "* ]] && only=1
    if ((BIG_BOUND > 0 && !only)); then
        say "  rollupd once, bound $BIG_BOUND"
        catch_up once "$BIG_BOUND"
        big=$(catchup_json once "$BIG_BOUND")
        table_row "once, bound $BIG_BOUND" "$C_WALL_MS" "$C_TEMP_BYTES" "$C_RSS_KB" "tx=$C_CHUNKS took_sum=${C_TOOK_MS}ms"
    fi
    if ((DO_RUN && !only)); then
        say "  rollupd run (bound $DEFAULT_BOUND) until caught up"
        catch_up run ""
        run=$(catchup_json run "$DEFAULT_BOUND")
        say "  rollupd run: caught up after ${C_WALL_MS} ms, first progress line at ${C_FIRST_PROGRESS_MS} ms ($C_PROGRESS_LINES lines), $C_CHUNKS transactions, RSS ${C_RSS_KB} kB, temp $C_TEMP_BYTES B"
        table_row "run, bound $DEFAULT_BOUND" "$C_WALL_MS" "$C_TEMP_BYTES" "$C_RSS_KB" "first progress ${C_FIRST_PROGRESS_MS}ms, lines=$C_PROGRESS_LINES"
    fi
    say "  oracle: every bucket recomputed from the raw events"
    local ev hc dc diff
    # (retried: on a shared cluster, another session has terminated this long query once)
    for attempt in 1 2 3; do
        if read -r ev hc dc diff < <(rollups_oracle) && [[ -n ${diff-} ]]; then break; fi
        say "  oracle query failed (attempt $attempt); again"
    done
    [[ $ev == "$N" && $hc == "$N" && $dc == "$N" && $diff == 0 ]] || die "$CASE at $N: oracle failed (events $ev, hour calls $hc, day calls $dc, differing buckets $diff)"
    ROWS_TXT+=("$(printf '%9s %-9s %-30s %10s %10s %8s %8s %10s' "$N" "$CASE" "baseline: set-based same outputs" "$SAME_MED" "$(per_s "$N" "$SAME_MED")" 1 "$(ratio "$SAME_MED" "$BARE_MED")" "$(awk -v b="${same_tb[0]}" 'BEGIN { printf "%.0f", b / 1048576 }')")")
    ROWS_TXT+=("$(printf '%9s %-9s %-30s %10s %10s %8s %8s %10s' "$N" "$CASE" "baseline: bare hour + day" "$BARE_MED" "$(per_s "$N" "$BARE_MED")" "$(ratio "$BARE_MED" "$SAME_MED")" 1 "$(awk -v b="${bare_tb[0]}" 'BEGIN { printf "%.0f", b / 1048576 }')")")
    CASE_JSON+=("{\"events\": $N, \"case\": \"$CASE\", \"load\": $LOAD_JSON, \"loadavg_after\": $(loadavg),
    \"baseline_same_outputs_ms\": {\"runs\": [$(csv "${same[@]}")], \"median\": $SAME_MED, \"rows_per_s\": $(per_s "$N" "$SAME_MED"), \"temp_bytes\": [$(csv "${same_tb[@]}")]},
    \"baseline_bare_hour_day_ms\": {\"runs\": [$(csv "${bare[@]}")], \"median\": $BARE_MED, \"rows_per_s\": $(per_s "$N" "$BARE_MED"), \"temp_bytes\": [$(csv "${bare_tb[@]}")]},
    \"once_default_bound\": [$(join_by ', ' "${onces[@]}")],
    \"once_big_bound\": $big,
    \"run_default_bound\": $run,
    \"oracle\": {\"events\": $ev, \"hour_call_count_sum\": $hc, \"day_call_count_sum\": $dc, \"buckets_differing\": $diff}}")
    # For the size-to-size throughput ratio: the median wall of `once` at the default bound.
    SIZE_ONCE_MED["$CASE $N"]=$(median "${ONCE_WALLS[@]}")
    SIZE_SAME_MED["$CASE $N"]=$SAME_MED
    ONCE_WALLS=()
    write_json
}

write_json() {
    {
        printf '{\n "benchmark": "catchup-scale", "started": "%s", "smoke": %s, "machine": %s,\n' "$STAMP" "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(machine_json)"
        printf ' "rollupd": {"tree_head_at_run": "%s", "binary_built_from": "%s", "binary_sha256_12": "%s", "binary_copied_from": "%s"},\n' "$GIT_COMMIT" "$BINARY_COMMIT" "$BINARY_SHA" "$BINARY_SOURCE"
        printf ' "postgres_settings": "%s",\n' "$(psql_admin -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
            WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_parallel_workers_per_gather', 'jit')")"
        printf ' "loadavg_start": %s, "loadavg_end": %s, "default_bound": %s, "big_bound": %s, "load_tx_rows": %s, "reps": %s, "quiet_timeouts": %s,\n' \
            "$LOAD_START" "$(loadavg)" "$DEFAULT_BOUND" "$BIG_BOUND" "$TX_ROWS" "$REPS" "$QUIET_TIMEOUTS"
        printf ' "throughput_ratios": {%s},\n' "$(jlist ', ' "${SIZE_RATIOS[@]}")"
        printf ' "cases": [\n  %s\n ]\n}\n' "$(jlist $',\n  ' "${CASE_JSON[@]}")"
    } >"$OUT"
}

# --- sizes ------------------------------------------------------------------------------------------
declare -A SIZE_ONCE_MED SIZE_SAME_MED
CASE_JSON=() SIZE_RATIOS=() SIZE_LINES=() ONCE_WALLS=() PREV_N=""
EVENT_COLS="id, trace_id, span_id, parent_span_id, project_id, feature, user_id, provider, model, input_tokens, output_tokens,
    cached_tokens, latency_ms, estimated_cost_usd, verified_cost_usd, is_cache_hit, metadata, created_at"
for N in $SIZES; do
    DIRECT=0
    if [[ " $CASES " != *" adoption "* ]]; then
        # Backlog only: written after migrate straight from the generator, --tx-rows per
        # transaction, each covering its share of the 719 hours in order (so xid order is time
        # order, as in a real backlog). The same distribution, not the same rows as the adoption case.
        DIRECT=1
        say "size $N: fresh database $BENCH_DB, migrate, then $N events in transactions of $TX_ROWS (setseed($SEED))"
        fresh_db "$BENCH_DB"
        psql_bench -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
        create_generator
        rollupd_migrate
        snapshot_sources
        create_baseline_tables
        drop_app_indexes
        bulk_start=$(psql_bench -c "SELECT date_trunc('hour', now(), 'UTC') - interval '719 hours'")
        t0=$(now_ns)
        for ((lo = 1; lo <= N; lo += TX_ROWS)); do
            n=$((lo + TX_ROWS - 1 <= N ? TX_ROWS : N - lo + 1))
            psql_bench -c "SELECT bench.load_events($lo, $n, '$bulk_start'::timestamptz + interval '719 hours' * (($lo - 1)::float8 / $N),
                interval '719 hours' * ($n::float8 / $N), $SEED)" >/dev/null
        done
        load_ms=$(ms_since "$t0")
        t0=$(now_ns)
        restore_app_indexes
        index_ms=$(ms_since "$t0")
        psql_bench -c "VACUUM ANALYZE events" -c "CHECKPOINT"
    fi
    ((DIRECT)) || say "size $N: fresh database $BENCH_DB, $N events before rollupd (setseed($SEED)), then migrate"
    ((DIRECT)) || fresh_db "$BENCH_DB"
    if ((!DIRECT)); then
    psql_bench -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
    create_generator
    drop_app_indexes
    t0=$(now_ns)
    load_events 1 "$N" "$SEED"
    gen_ms=$(ms_since "$t0")
    # The same rows again later, for the backlog case (no xid column yet).
    if [[ " $CASES " == *" backlog "* ]]; then psql_bench -c "CREATE UNLOGGED TABLE bench.staging AS SELECT * FROM events"; fi
    t0=$(now_ns)
    restore_app_indexes
    index_ms=$(ms_since "$t0")
    rollupd_migrate
    snapshot_sources
    create_baseline_tables
    psql_bench -c "VACUUM ANALYZE events" -c "CHECKPOINT"
    fi
    for CASE in $CASES; do
        if [[ $CASE == backlog ]] && ((DIRECT)); then
            read -r xids nulls < <(psql_bench -F ' ' -c "SELECT count(DISTINCT rollupd_xid), count(*) FILTER (WHERE rollupd_xid IS NULL) FROM events")
            ((nulls == 0)) || die "backlog: $nulls rows without an xid"
            LOAD_JSON="{\"transactions\": $xids, \"generate_ms\": $load_ms, \"index_ms\": $index_ms, \"rows\": \"generated after migrate\"}"
        elif [[ $CASE == backlog ]]; then
            say "backlog: the same $N events written after migrate, $TX_ROWS rows per transaction"
            reset_rollups
            psql_bench -c "TRUNCATE events"
            drop_app_indexes
            blocks=$(psql_bench -c "SELECT pg_relation_size('bench.staging') / current_setting('block_size')::int")
            ntx=$(((N + TX_ROWS - 1) / TX_ROWS))
            step=$(((blocks + ntx) / ntx))
            t0=$(now_ns)
            for ((b = 0; b <= blocks; b += step)); do
                psql_bench -c "INSERT INTO events ($EVENT_COLS) SELECT $EVENT_COLS FROM bench.staging
                    WHERE ctid >= '($b,0)'::tid AND ctid < '($((b + step)),0)'::tid"
            done
            load_ms=$(ms_since "$t0")
            t0=$(now_ns)
            restore_app_indexes
            index_ms=$(ms_since "$t0")
            psql_bench -c "DROP TABLE bench.staging" -c "VACUUM ANALYZE events" -c "CHECKPOINT"
            read -r xids nulls < <(psql_bench -F ' ' -c "SELECT count(DISTINCT rollupd_xid), count(*) FILTER (WHERE rollupd_xid IS NULL) FROM events")
            ((nulls == 0)) || die "backlog: $nulls rows without an xid"
            LOAD_JSON="{\"transactions\": $xids, \"insert_ms\": $load_ms, \"index_ms\": $index_ms}"
        else
            nulls=$(psql_bench -c "SELECT count(*) FROM events WHERE rollupd_xid IS NULL")
            ((nulls == N)) || die "adoption: $nulls of $N rows without an xid"
            LOAD_JSON="{\"generate_ms\": $gen_ms, \"index_ms\": $index_ms}"
        fi
        LOAD_JSON="${LOAD_JSON%\}}, \"events_total_bytes\": $(psql_bench -c "SELECT pg_total_relation_size('events')")}"
        measure_case
    done
    if [[ -n $PREV_N ]]; then
        for CASE in $CASES; do
            # Throughput at N over throughput at PREV_N (1 = linear; < 1 slower per row at N).
            r=$(awk -v a="${SIZE_ONCE_MED["$CASE $PREV_N"]}" -v b="${SIZE_ONCE_MED["$CASE $N"]}" -v na="$PREV_N" -v nb="$N" 'BEGIN { printf "%.2f", (nb / b) / (na / a) }')
            rs=$(awk -v a="${SIZE_SAME_MED["$CASE $PREV_N"]}" -v b="${SIZE_SAME_MED["$CASE $N"]}" -v na="$PREV_N" -v nb="$N" 'BEGIN { printf "%.2f", (nb / b) / (na / a) }')
            SIZE_RATIOS+=("\"${CASE}_${N}_over_${PREV_N}\": {\"once_throughput\": $r, \"same_outputs_throughput\": $rs}")
            SIZE_LINES+=("$CASE: throughput at $N / at $PREV_N = ${r}x for rollupd once, ${rs}x for the set-based statement")
        done
    fi
    PREV_N=$N
    write_json
done

echo
echo "catch-up at scale ($([[ $SMOKE == 1 ]] && echo smoke || echo full)); $(nproc) cores; load average $LOAD_START -> $(loadavg); rollupd $GIT_COMMIT ($BINARY_SHA)"
printf '%9s %-9s %-30s %10s %10s %8s %8s %10s %8s %s\n' events case measurement wall_ms rows/s "/same" "/bare" temp_MiB rss_kB notes
printf '%s\n' "${ROWS_TXT[@]}"
((${#SIZE_LINES[@]} == 0)) || printf '%s\n' "${SIZE_LINES[@]}"
echo "correctness: every catch-up equal to the set-based baseline's output; oracle at the end of every case: ok"
echo "results: $OUT"
