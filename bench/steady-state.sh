#!/usr/bin/env bash
# bench/steady-state.sh — rollupd run under a steady writer: freshness, CPU, memory; and idle cost.
#
#   bench/steady-state.sh [--duration S] [--idle S] [--base N] [--baseline-binary PATH] [--smoke] [--keep]
#                         [--admin-url CONNINFO]
#
#   For each poll interval (1s, the shipped default, and 250ms) and each writer rate (pgbench -R 500
#   and -R 2000 transactions/s, 10 rows per transaction in one multi-row INSERT, 4 clients), for S
#   seconds (default 60) while `rollupd run` runs:
#     freshness  every 200 ms a probe (a PL/pgSQL procedure in one session, committing after every
#                statement) inserts one event with feature '<run>-probe-<n>', takes clock_timestamp() right
#                after its COMMIT, then polls cost_aggregates for that feature's hour row every 10 ms;
#                freshness = first seen - committed. Probes overlap (a new one every 200 ms whether
#                or not the previous ones were seen). p50/p99/max over all probes.
#     CPU        the daemon (/proc/<pid>/stat utime + stime), its PostgreSQL backends (the backends
#                with application_name rollupd*), and the whole cluster (writer and probe included)
#     memory     the daemon's VmHWM (peak RSS) and VmRSS at the end (/proc/<pid>/status), the
#                binary's pages evicted from the page cache before each start
#     passes     every pass (rollupd_passes_total of the daemon's /metrics, served on a free port),
#                and the passes that wrote (rollupd.sources.total_passes): a pass that finds
#                nothing to do only looks
#   Then idle: the daemon alone, no writer, no probe, for --idle seconds (default 30) at each poll
#   interval: CPU seconds per minute of the daemon, of its backends and of the cluster.
#   Last, the memory floor: rss-floor (bench/floor/main.swift: the static Swift runtime and
#   Foundation, SwiftNIO serving a socket, async-http-client, an open libpq connection, libsystemd;
#   none of rollupd's code), started the same way and idle as long; the table ends with rollupd's
#   idle RSS against it. Built like the daemon: next to ROLLUPD_BINARY, or by the release build.
#
#   --duration S   seconds per writer run (default 60; smoke 3)
#   --idle S       seconds per idle run (default 30; smoke 2)
#   --base N       events loaded (and rolled up) before the runs (default 200000; smoke 10000)
#   --baseline-binary PATH
#                  another rollupd binary (e.g. the previous commit's): every run is measured with
#                  it first, then with the binary under test, on the same database, and the table
#                  ends with their ratios
#   --smoke        the short version (about 20 s after the build: 3 s runs, writer -R 500 only)
#   --keep         keep the database rollupd_steady_bench
#   --admin-url    superuser conninfo on the postgres database
#                  (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: ROLLUPD_BINARY (prebuilt binary; unset: release build, see bench/lib.sh).
# Writes bench/results/steady-state-<UTC timestamp>.json and prints a table.
set -euo pipefail
NAME=steady-state
BENCH_DB=rollupd_steady_bench
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

DURATION=60 IDLE=30 BASE=200000 TAIL=15 dset=0 iset=0 bset=0 BASELINE=""
POLLS=(1s 250ms) RATES=(500 2000)
parse_extra() {
    if [[ $1 == --baseline-binary ]]; then
        [[ -n ${2-} && -x $2 ]] || die "--baseline-binary needs an executable rollupd"
        BASELINE=$(readlink -f "$2") EXTRA_SHIFT=2
        return 0
    fi
    [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"
    case $1 in
    --duration) DURATION=$2 dset=1 ;; --idle) IDLE=$2 iset=1 ;; --base) BASE=$2 bset=1 ;;
    *) return 1 ;;
    esac
    EXTRA_SHIFT=2
}
parse_common "$@"
if ((SMOKE)); then ((dset)) || DURATION=3; ((iset)) || IDLE=2; ((bset)) || BASE=10000; TAIL=5 RATES=(500); fi
setup_bench
LOAD_START=$(loadavg)
HZ=$(getconf CLK_TCK)

say "fresh database $BENCH_DB, migrate, load $BASE events, catch up"
fresh_db "$BENCH_DB"
rollupd_migrate
create_generator
load_events 1 "$BASE" "$SEED"
psql_bench -c 'VACUUM ANALYZE events'
run_once

psql_bench <<'SQL'
CREATE TABLE bench.probe_results (run text, n int, committed_at timestamptz, seen_at timestamptz);
-- One session: a probe every 200 ms, all outstanding probes polled every 10 ms. Every statement
-- is its own short transaction (COMMIT after each), so the probe never holds the horizon back;
-- its polls are read-only and take no transaction id.
CREATE PROCEDURE bench.probe(run_name text, seconds float8, tail_seconds float8) LANGUAGE plpgsql AS $$
DECLARE
    t_end timestamptz := clock_timestamp() + make_interval(secs => seconds);
    t_next timestamptz := clock_timestamp();
    n int := 0;
    names text[] := '{}';
    committed timestamptz[] := '{}';
    seen timestamptz[] := '{}';
    outstanding text[] := '{}';
    found_names text[];
    now_ts timestamptz;
    i int;
BEGIN
    -- Run for `seconds`, then keep polling (up to tail_seconds) for probes not yet seen.
    WHILE clock_timestamp() < t_end OR (cardinality(outstanding) > 0 AND clock_timestamp() < t_end + make_interval(secs => tail_seconds)) LOOP
        IF clock_timestamp() >= t_next AND clock_timestamp() < t_end THEN
            n := n + 1;
            INSERT INTO events (trace_id, span_id, project_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
            VALUES ('probe', 'probe', 'probe', run_name || '-probe-' || n, 'probe', 'probe', 1, 1, 1, 0);
            COMMIT;
            names := names || (run_name || '-probe-' || n);
            committed := committed || clock_timestamp();
            seen := seen || NULL::timestamptz;
            outstanding := outstanding || (run_name || '-probe-' || n);
            t_next := t_next + interval '200 ms';
        END IF;
        IF cardinality(outstanding) > 0 THEN
            SELECT array_agg(feature) INTO found_names FROM cost_aggregates
            WHERE project_id = 'probe' AND feature = ANY (outstanding) AND period = 'hour';
            now_ts := clock_timestamp();
            COMMIT;
            IF found_names IS NOT NULL THEN
                FOR i IN 1 .. cardinality(names) LOOP
                    IF names[i] = ANY (found_names) AND seen[i] IS NULL THEN seen[i] := now_ts; END IF;
                END LOOP;
                outstanding := ARRAY(SELECT x FROM unnest(outstanding) AS x WHERE x <> ALL (found_names));
            END IF;
        END IF;
        PERFORM pg_sleep(0.01);
        COMMIT;
    END LOOP;
    INSERT INTO bench.probe_results SELECT run_name, k, committed[k], seen[k] FROM generate_subscripts(names, 1) AS k;
    COMMIT;
END $$;
SQL

cat >"$WORK/writer.sql" <<'SQL'
\set p random(0, 2)
\set f random(0, 5)
\set m random(0, 4)
INSERT INTO events (trace_id, span_id, project_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd)
SELECT md5(random()::text), 'span-' || g, (ARRAY['acme', 'globex', 'initech'])[1 + (:p + g) % 3],
       (ARRAY['chat', 'search', 'summarize', 'classify', 'extract', 'translate'])[1 + (:f + g) % 6], 'openai',
       (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku', 'claude-3-5-sonnet', 'gemini-1.5-pro'])[1 + (:m + g) % 5],
       50 + g * 37, 10 + g * 11, 40 + g * 90, 0.0001 * g
FROM generate_series(1, 10) AS g;
SQL

DAEMON_PID=""
stop_daemon() {
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    DAEMON_PID=""
}
CLEANUP_HOOK=stop_daemon

# rollupd_passes_total{source="events"} from the running daemon's /metrics (bash's /dev/tcp, so
# no HTTP client is needed); empty if it cannot be read.
passes_total() {
    local fd
    { exec {fd}<>"/dev/tcp/${METRICS_ADDR%:*}/${METRICS_ADDR##*:}"; } 2>/dev/null || return 0
    printf 'GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$METRICS_ADDR" >&"$fd"
    timeout 5 cat <&"$fd" | tr -d '\r' | awk '/^rollupd_passes_total\{/ && /source="events"/ { print $NF; exit }' || true
    exec {fd}>&-
}
passes_written() { psql_bench -c "SELECT total_passes FROM rollupd.sources WHERE source = 'events'"; }

# Starts `rollupd run` ($2, the binary) with poll interval $1, /metrics on a free port; waits for
# its first pass. $3 names the log.
start_daemon() { # $1 poll interval, $2 binary, $3 log name
    local i log="$WORK/daemon-$3.log" n
    # The binary's pages out of the page cache first, so every run starts as after a boot: pages
    # that came into the cache by being written (a fresh build, a copy, strip) made the same
    # binary's RSS up to 3 MB higher than pages read from disk (bench/README.md).
    dd if="$2" iflag=nocache count=0 status=none 2>/dev/null || true
    ROLLUPD_METRICS_LISTEN=127.0.0.1:0 ROLLUPD_ROLLUP_POLL_INTERVAL=$1 env -u JOURNAL_STREAM "$2" run --config "$CONFIG" >"$log" 2>&1 &
    DAEMON_PID=$! METRICS_ADDR=""
    for ((i = 0; i < 400; i++)); do
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$log" >&2; die "rollupd run exited"; }
        [[ -n $METRICS_ADDR ]] || METRICS_ADDR=$(grep -m 1 'serving /metrics' "$log" 2>/dev/null | grep -oP 'address=\K[0-9.]+:[0-9]+' || true)
        if [[ -n $METRICS_ADDR ]]; then
            n=$(passes_total)
            [[ -n $n ]] && ((n >= 1)) && break
        fi
        sleep 0.05
    done
    [[ -n $METRICS_ADDR && -n $(passes_total) ]] || { cat "$log" >&2; die "no rollupd_passes_total on the daemon's /metrics"; }
    sleep 0.3 # past start-up (migration check, first retention run)
    BACKENDS=($(psql_bench -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'rollupd%'"))
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# The memory floor (see the header): sets FLOOR_JSON and FLOOR_HWM.
measure_floor() {
    local floor i pid log="$WORK/rss-floor.log"
    floor="$(dirname "$ROLLUPD")/rss-floor"
    if [[ ! -x $floor ]]; then
        [[ -z ${ROLLUPD_BINARY-} ]] || die "no rss-floor next to ROLLUPD_BINARY ($floor): swift build builds it"
        (cd "$REPO" && swift build -c release --static-swift-stdlib --scratch-path .build-release --product rss-floor >&2) ||
            die "swift build --product rss-floor failed"
    fi
    dd if="$floor" iflag=nocache count=0 status=none 2>/dev/null || true
    "$floor" "$BENCH_URL" >"$log" 2>&1 &
    pid=$!
    for ((i = 0; i < 400; i++)); do
        grep -q '^ready' "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "rss-floor exited"; }
        sleep 0.05
    done
    grep -q '^ready' "$log" || die "rss-floor did not get ready"
    sleep "$IDLE"
    FLOOR_HWM=$(status_kb "$pid" VmHWM)
    FLOOR_JSON="{\"binary\": \"$floor\", \"seconds\": $IDLE, \"vmhwm_kb\": $FLOOR_HWM, \"vmrss_end_kb\": $(status_kb "$pid" VmRSS), \"rss_anon_end_kb\": $(status_kb "$pid" RssAnon), \"rss_file_end_kb\": $(status_kb "$pid" RssFile)}"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Measures one run: sets M_JSON and M_ROW (for the table). $1 poll, $2 rate (0 = idle), $3 seconds,
# $4 binary, $5 its role (measured or baseline).
declare -A BCPU DCPU HWM
measure() {
    local poll=$1 rate=$2 secs=$3 binary=$4 role=$5 run="poll=$1,rate=$2,$5" d0 d1 b0 b1 c0 c1 t0 wall la0 la1 pg_pid="" tps="null" lag="null" lat="null" fresh passes0 passes1 wrote0 wrote1
    start_daemon "$poll" "$binary" "$run"
    la0=$(loadavg)
    passes0=$(passes_total) wrote0=$(passes_written)
    # Other databases' transactions hold the cluster-wide horizon back: sample them every 0.5 s.
    (while :; do
        psql_bench -F ' ' -c "SELECT count(*), coalesce(round(max(extract(epoch FROM clock_timestamp() - xact_start))::numeric, 2), 0)
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()" || true
        sleep 0.5
    done) >"$WORK/horizon-$run.txt" 2>/dev/null &
    local sampler=$!
    d0=$(pids_cpu_ms "$DAEMON_PID") b0=$(pids_cpu_ms "${BACKENDS[@]}") c0=$(cluster_cpu_ms) t0=$(now_ns)
    if ((rate > 0)); then
        (cd "$WORK" && "$(pg_bin)/pgbench" -n -f writer.sql -c 4 -j 2 -R "$rate" -T "$secs" --random-seed=17 "$BENCH_URL" >"pgbench-$run.txt" 2>&1) &
        pg_pid=$!
        psql_bench -c "CALL bench.probe('$run', $secs, $TAIL)"
        wait "$pg_pid" || { cat "$WORK/pgbench-$run.txt" >&2; die "pgbench failed"; }
    else
        sleep "$secs"
    fi
    wall=$(ms_since "$t0")
    d1=$(pids_cpu_ms "$DAEMON_PID") b1=$(pids_cpu_ms "${BACKENDS[@]}") c1=$(cluster_cpu_ms)
    passes1=$(passes_total) wrote1=$(passes_written)
    la1=$(loadavg)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    local hs hheld hmax
    read -r hs hheld hmax < <(awk 'NF == 2 { n++; if ($1 > 0) h++; if ($2 > m) m = $2 } END { printf "%d %d %.2f\n", n, h, m }' "$WORK/horizon-$run.txt")
    local hwm rss
    hwm=$(status_kb "$DAEMON_PID" VmHWM) rss=$(status_kb "$DAEMON_PID" VmRSS)
    local rss_anon rss_file
    rss_anon=$(status_kb "$DAEMON_PID" RssAnon) rss_file=$(status_kb "$DAEMON_PID" RssFile)
    stop_daemon
    local dcpu=$((d1 - d0)) bcpu=$((b1 - b0)) ccpu
    ccpu=$(cpu_diff "$c0" "$c1")
    per_min() { awk -v c="$1" -v w="$wall" 'BEGIN { if (c == "null") print "null"; else printf "%.2f", c / 1000 / (w / 60000) }'; }
    if ((rate > 0)); then
        tps=$(grep -oP 'tps = \K[0-9.]+' "$WORK/pgbench-$run.txt" | head -n 1)
        lat=$(grep -oP 'latency average = \K[0-9.]+' "$WORK/pgbench-$run.txt" | head -n 1)
        lag=$(grep -oP 'rate limit schedule lag: avg \K[0-9.]+' "$WORK/pgbench-$run.txt" | head -n 1 || echo null)
        fresh=$(psql_bench -F ' ' -c "SELECT count(*), count(seen_at),
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
                round(max(ms)::numeric, 1), round(min(ms)::numeric, 1)
            FROM (SELECT seen_at, extract(epoch FROM seen_at - committed_at) * 1000 AS ms FROM bench.probe_results WHERE run = '$run') AS p")
    else
        fresh="0 0 null null null null"
    fi
    local probes seen p50 p99 pmax pmin
    read -r probes seen p50 p99 pmax pmin <<<"$fresh"
    BCPU[$poll,$rate,$role]=$(per_min "$bcpu") DCPU[$poll,$rate,$role]=$(per_min "$dcpu") HWM[$poll,$rate,$role]=$hwm
    M_JSON="{\"binary_role\": \"$role\", \"binary\": \"$binary\", \"poll\": \"$poll\", \"writer_tps_target\": $rate, \"seconds\": $secs, \"wall_ms\": $wall, \"loadavg_before\": $la0, \"loadavg_after\": $la1,
    \"writer_tps\": ${tps:-null}, \"writer_rows_per_s\": $(awk -v t="${tps:-0}" 'BEGIN { printf "%.0f", t * 10 }'), \"writer_latency_avg_ms\": ${lat:-null}, \"writer_schedule_lag_avg_ms\": ${lag:-null},
    \"probes\": $probes, \"probes_seen\": $seen, \"freshness_ms\": {\"p50\": ${p50:-null}, \"p99\": ${p99:-null}, \"max\": ${pmax:-null}, \"min\": ${pmin:-null}},
    \"passes\": $((passes1 - passes0)), \"passes_written\": $((wrote1 - wrote0)),
    \"daemon_backends_cpu_ms_per_pass\": $(ratio "$bcpu" "$((passes1 - passes0))"), \"daemon_cpu_ms\": $dcpu, \"daemon_backends_cpu_ms\": $bcpu, \"daemon_backends\": [$(csv "${BACKENDS[@]}")], \"cluster_cpu_ms\": $ccpu,
    \"daemon_cpu_s_per_min\": $(per_min "$dcpu"), \"daemon_backends_cpu_s_per_min\": $(per_min "$bcpu"), \"cluster_cpu_s_per_min\": $(per_min "$ccpu"),
    \"daemon_vmhwm_kb\": $hwm, \"daemon_vmrss_end_kb\": $rss, \"daemon_rss_anon_end_kb\": $rss_anon, \"daemon_rss_file_end_kb\": $rss_file,
    \"other_db_xid_samples\": $hs, \"other_db_xid_samples_with_open_xid\": $hheld, \"other_db_oldest_xid_holder_max_age_s\": $hmax}"
    M_ROW=$(printf '%-8s %-6s %6s %8.0f %7s %12s %8s %8s %8s %9s %9s %9s %9s %9s %9s %12s' "$role" "$poll" "$rate" "$([[ $tps == null ]] && echo 0 || echo "$tps")" "$probes/$seen" "${lag:-—}" "${p50:-—}" "${p99:-—}" "${pmax:-—}" \
        "$((passes1 - passes0))/$((wrote1 - wrote0))" "$(per_min "$dcpu")" "$(per_min "$bcpu")" "$(per_min "$ccpu")" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$hheld/$hs ${hmax}s")
    say "$M_ROW   load $la1"
}

# With a baseline, each run is measured with it first and then with the binary under test.
BINARIES=("$ROLLUPD") ROLES=(measured)
[[ -n $BASELINE ]] && BINARIES=("$BASELINE" "$ROLLUPD") ROLES=(baseline measured)
RUNS_JSON=() ROWS=()
for poll in "${POLLS[@]}"; do
    for rate in "${RATES[@]}"; do
        for k in "${!BINARIES[@]}"; do
            say "writer -R $rate (x10 rows) for ${DURATION}s, rollupd run poll $poll (${ROLES[k]})"
            measure "$poll" "$rate" "$DURATION" "${BINARIES[k]}" "${ROLES[k]}"
            RUNS_JSON+=("$M_JSON") ROWS+=("$M_ROW")
        done
    done
done
for poll in "${POLLS[@]}"; do
    for k in "${!BINARIES[@]}"; do
        say "idle ${IDLE}s, rollupd run poll $poll (${ROLES[k]})"
        measure "$poll" 0 "$IDLE" "${BINARIES[k]}" "${ROLES[k]}"
        RUNS_JSON+=("$M_JSON") ROWS+=("$M_ROW")
    done
done
say "idle ${IDLE}s, rss-floor (the stack without rollupd)"
measure_floor
LOAD_END=$(loadavg)
OTHER_BACKENDS=$(psql_admin -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM '$BENCH_DB' AND pid <> pg_backend_pid()")

OUT="$RESULTS_DIR/steady-state-$STAMP.json"
{
    printf '{\n "benchmark": "steady-state", "started": "%s", "smoke": %s, "machine": %s,\n' "$STAMP" "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(machine_json)"
    printf ' "baseline_binary": %s,\n' "$([[ -n $BASELINE ]] && printf '"%s"' "$BASELINE" || echo null)"
    printf ' "loadavg_start": %s, "loadavg_end": %s, "base_events": %s, "writer": "pgbench -c 4 -j 2 -R <tps> -T <s>, 10 rows per transaction (one INSERT ... SELECT generate_series(1, 10))",\n' "$LOAD_START" "$LOAD_END" "$BASE"
    printf ' "other_client_backends_in_cluster_at_end": %s, "cpu_note": "cluster CPU includes the writer and the probe; daemon_backends is what rollupd costs the server",\n' "$OTHER_BACKENDS"
    printf ' "rss_floor": %s, "idle_1s_vmhwm_over_floor": %s,\n' "$FLOOR_JSON" "$(ratio "${HWM[1s,0,measured]}" "$FLOOR_HWM")"
    printf ' "runs": [\n  %s\n ]\n}\n' "$(join_by $',\n  ' "${RUNS_JSON[@]}")"
} >"$OUT"

echo
echo "steady state ($([[ $SMOKE == 1 ]] && echo smoke || echo full)): writer runs ${DURATION}s, idle runs ${IDLE}s, $BASE base events; $(nproc) cores; load average at start $LOAD_START, at end $LOAD_END"
echo "freshness = probe commit -> its hour row visible in cost_aggregates (ms); CPU in CPU-seconds per minute; RSS in MiB"
printf '%-8s %-6s %6s %8s %7s %12s %8s %8s %8s %9s %9s %9s %9s %9s %9s %12s\n' binary poll tx/s "got tx/s" probes "sched lag ms" p50 p99 max "passes/wr" "daemon" "its bknds" cluster "RSS peak" "RSS end" "others' xids"
echo "passes/wr: every pass / the passes that wrote; others' xids: samples (every 0.5 s) in which another database had a transaction with an xid open / samples, and its longest age"
printf '%s\n' "${ROWS[@]}"
if [[ -n $BASELINE ]]; then
    echo
    echo "measured / baseline (same run): its backends' CPU, daemon CPU, RSS peak; baseline: $BASELINE"
    for poll in "${POLLS[@]}"; do
        for rate in "${RATES[@]}" 0; do
            key="$poll,$rate"
            printf '%-6s %-6s %9s %9s %9s\n' "$poll" "$([[ $rate == 0 ]] && echo idle || echo "$rate")" \
                "$(ratio "${BCPU[$key,measured]}" "${BCPU[$key,baseline]}")" "$(ratio "${DCPU[$key,measured]}" "${DCPU[$key,baseline]}")" \
                "$(ratio "${HWM[$key,measured]}" "${HWM[$key,baseline]}")"
        done
    done
fi
echo
printf 'memory floor (rss-floor idle %ss): %.1f MiB peak; rollupd idle at 1s: %.1f MiB, %s x the floor, %+.1f MiB\n' "$IDLE" \
    "$(awk -v k="$FLOOR_HWM" 'BEGIN { print k / 1024 }')" "$(awk -v k="${HWM[1s,0,measured]}" 'BEGIN { print k / 1024 }')" \
    "$(ratio "${HWM[1s,0,measured]}" "$FLOOR_HWM")" "$(awk -v a="${HWM[1s,0,measured]}" -v b="$FLOOR_HWM" 'BEGIN { print (a - b) / 1024 }')"
echo
echo "results: $OUT"
