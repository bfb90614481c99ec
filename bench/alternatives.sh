#!/usr/bin/env bash
# bench/alternatives.sh — rollupd against what a user would otherwise pick, in one run.
#
#   bench/alternatives.sh [--events N] [--new M] [--rounds R] [--reps K] [--duration S] [--smoke]
#                         [--keep] [--admin-url CONNINFO]
#
#   (a) periodic full recompute (a pg_cron job): BEGIN; DELETE FROM cost_aggregates; INSERT ...
#       SELECT ... GROUP BY hour UNION ALL day over all N events; COMMIT — timed K times, against
#       rollupd's incremental pass over M new events among the same N (`rollupd once` took_ms,
#       R rounds). Both write the same table.
#   (b) per-event trigger (seed 004's approach): an AFTER INSERT row trigger upserting the event
#       into an hourly table, against a bare table and rollupd's schema: pgbench single-row
#       INSERTs, 1 and 8 clients, S seconds each, variants interleaved twice (A B C A B C).
#
#   --events N      events loaded for (a) (default 1000000)
#   --new M         new events per incremental round (default 1000)
#   --rounds R      incremental rounds (default 5)
#   --reps K        repetitions of the full recompute (default 3)
#   --duration S    seconds per pgbench run in (b) (default 15)
#   --smoke         N=20000, M=100, R=1, K=1, S=1, 20,000-row starting tables in (b)
#   --keep          keep the databases afterwards
#   --admin-url     superuser conninfo on the postgres database
#                   (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: ROLLUPD_BINARY (prebuilt binary; unset: release build, see bench/lib.sh).
# Writes bench/results/alternatives-<UTC timestamp>.json and prints a table.
set -euo pipefail
NAME=alternatives
BENCH_DB=rollupd_alt_bench
BENCH_DBS="rollupd_alt_bench rollupd_alt_bare rollupd_alt_rollupd rollupd_alt_trigger"
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

EVENTS=1000000 NEW=1000 ROUNDS=5 REPS=3 DURATION=15 INGEST_BASE=200000
parse_extra() {
    [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"
    case $1 in
    --events) EVENTS=$2 ;; --new) NEW=$2 ;; --rounds) ROUNDS=$2 ;; --reps) REPS=$2 ;; --duration) DURATION=$2 ;;
    *) return 1 ;;
    esac
    EXTRA_SHIFT=2
}
parse_common "$@"
((SMOKE)) && EVENTS=20000 NEW=100 ROUNDS=1 REPS=1 DURATION=1 INGEST_BASE=20000
setup_bench
LOAD_START=$(loadavg)

# ============================== (a) full recompute vs incremental ==============================
say "(a) fresh database $BENCH_DB, migrate, load $EVENTS events (setseed($SEED))"
fresh_db "$BENCH_DB"
rollupd_migrate
create_generator
t0=$(now_ns)
load_events 1 "$EVENTS" "$SEED"
psql_bench -c 'VACUUM ANALYZE events'
LOAD_MS=$(ms_since "$t0")

say "(a) rollupd once: first pass over all $EVENTS events"
run_once
CATCHUP_MS=$ONCE_EVENTS_MS CATCHUP_WALL=$ONCE_WALL_MS


# The recompute writes the same values rollupd holds (every row is below rollupd's watermark), so
# rollupd's later incremental passes stay exact on top of it; the correctness check at the end
# verifies that.
RECOMPUTE_MS=() RECOMPUTE_CPU=()
for ((k = 1; k <= REPS; k++)); do
    say "(a) full recompute $k/$REPS"
    c0=$(cluster_cpu_ms)
    ms=$(psql_bench -c '\timing on' -c 'BEGIN' -c "$RECOMPUTE_SQL" -c 'COMMIT' | awk '/^Time: / { s += $2 } END { printf "%.1f", s }')
    c1=$(cluster_cpu_ms)
    RECOMPUTE_MS+=("$ms") RECOMPUTE_CPU+=("$(cpu_diff "$c0" "$c1")")
done
RECOMPUTE_ROWS=$(psql_bench -c 'SELECT count(*) FROM cost_aggregates')

INC_MS=() INC_WALL=() INC_PASSES=() INC_CPU=()
for ((r = 1; r <= ROUNDS; r++)); do
    say "(a) incremental round $r/$ROUNDS: $NEW new events, rollupd once"
    load_new_events $((EVENTS + (r - 1) * NEW + 1)) "$NEW" "$SEED"
    c0=$(cluster_cpu_ms)
    run_once
    c1=$(cluster_cpu_ms)
    [[ $ONCE_EVENTS_ADDED == "$NEW" ]] || die "round $r: rollupd counted $ONCE_EVENTS_ADDED events, expected $NEW"
    INC_MS+=("$ONCE_EVENTS_MS") INC_WALL+=("$ONCE_WALL_MS") INC_PASSES+=("$ONCE_EVENTS_PASSES") INC_CPU+=("$(cpu_diff "$c0" "$c1")")
done
CHECK=$(psql_bench -c "SELECT (SELECT count(*) FROM events) = (SELECT sum(call_count) FROM cost_aggregates WHERE period = 'hour')
                          AND (SELECT count(*) FROM events) = (SELECT sum(call_count) FROM cost_aggregates WHERE period = 'day')")
[[ $CHECK == t ]] && CORRECT=true || CORRECT=false
psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)"

REC_MED=$(median "${RECOMPUTE_MS[@]}") INC_MED=$(median "${INC_MS[@]}") INC_WALL_MED=$(median "${INC_WALL[@]}")
REC_CPU_MED=$(median "${RECOMPUTE_CPU[@]}") INC_CPU_MED=$(median "${INC_CPU[@]}")

# ============================== (b) ingest: bare / rollupd / per-event trigger ==============================
setup_variant() { # $1 variant
    local db=rollupd_alt_$1 url
    url=$(bench_url_for "$db")
    fresh_db "$db"
    # The product's table as the app has it, then what each variant adds to it.
    psql -X -q -v ON_ERROR_STOP=1 -d "$url" -f "$REPO/scripts/demo/app_schema.sql" >/dev/null
    case $1 in
    bare) ;;
    rollupd) # what `rollupd migrate` adds, as installed
        ROLLUPD_DATABASE_URL="$url" env -u JOURNAL_STREAM "$ROLLUPD" migrate --config "$CONFIG" >"$WORK/migrate-$1.log" 2>&1 \
            || { cat "$WORK/migrate-$1.log" >&2; die "rollupd migrate failed"; } ;;
    trigger)
        psql -X -q -v ON_ERROR_STOP=1 -d "$url" >/dev/null <<'SQL'
CREATE TABLE hourly_costs (project_id text, feature text, model text, hour timestamptz,
    total_cost numeric NOT NULL, total_tokens bigint NOT NULL, call_count bigint NOT NULL, total_latency_ms bigint NOT NULL,
    PRIMARY KEY (project_id, feature, model, hour));
CREATE FUNCTION bump_hourly_costs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hourly_costs VALUES (NEW.project_id, NEW.feature, NEW.model, date_trunc('hour', NEW.created_at, 'UTC'),
        coalesce(NEW.verified_cost_usd, NEW.estimated_cost_usd), NEW.input_tokens::bigint + NEW.output_tokens, 1, NEW.latency_ms)
    ON CONFLICT (project_id, feature, model, hour) DO UPDATE SET
        total_cost = hourly_costs.total_cost + excluded.total_cost,
        total_tokens = hourly_costs.total_tokens + excluded.total_tokens,
        call_count = hourly_costs.call_count + 1,
        total_latency_ms = hourly_costs.total_latency_ms + excluded.total_latency_ms;
    RETURN NULL;
END $$;
CREATE TRIGGER bump_hourly_costs AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION bump_hourly_costs();
SQL
        ;;
    esac
    # A realistic starting size (as bench/ingest-overhead.sh), loaded before the trigger matters:
    # the trigger variant gets the same rows, its hourly table filled by the trigger.
    psql -X -q -v ON_ERROR_STOP=1 -d "$url" -c "SELECT setseed($SEED)" -c "INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd, created_at)
        SELECT md5(i::text), 's', 'f' || (i % 6), 'openai', 'm' || (i % 5), 100, 50, 300, 0.001, now() - (i % 100000) * interval '1 second'
        FROM generate_series(1, $INGEST_BASE) i" -c "VACUUM ANALYZE events" >/dev/null
}

VARIANTS=(bare rollupd trigger)
for v in "${VARIANTS[@]}"; do
    say "(b) setting up variant $v ($INGEST_BASE starting rows)"
    setup_variant "$v"
done
PGBENCH="$(pg_bin)/pgbench"
ING_JSON=()
declare -A TPS=() P99=() MEAN=()
for clients in 1 8; do
    for rep in 1 2; do
        for v in "${VARIANTS[@]}"; do
            rm -f "$WORK"/pgbench_log.*
            (cd "$WORK" && "$PGBENCH" -n -f "$REPO/bench/insert-event.pgbench" -c "$clients" -j "$clients" -T "$DURATION" --random-seed=17 -l \
                "$(bench_url_for rollupd_alt_$v)" >out.txt 2>&1) || { cat "$WORK/out.txt" >&2; die "pgbench failed"; }
            tps=$(grep -oP 'tps = \K[0-9.]+' "$WORK/out.txt" | head -n 1)
            tps=$(printf "%.0f" "$tps")
            read -r mean p99 < <(cat "$WORK"/pgbench_log.* | awk '{ print $3 }' | sort -n |
                awk '{ a[NR] = $1; s += $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f %.3f\n", s / NR / 1000, a[i] / 1000 }')
            la=$(loadavg)
            printf '    %-8s clients=%s rep=%s tps=%s mean=%sms p99=%sms load=%s\n' "$v" "$clients" "$rep" "$tps" "$mean" "$p99" "$la" >&2
            TPS[$v,$clients]+="$tps " P99[$v,$clients]+="$p99 " MEAN[$v,$clients]+="$mean "
            ING_JSON+=("{\"variant\": \"$v\", \"clients\": $clients, \"rep\": $rep, \"tps\": $tps, \"mean_ms\": $mean, \"p99_ms\": $p99, \"loadavg\": $la}")
        done
    done
done
TRIGGER_HOURLY_ROWS=$(psql -X -At -d "$(bench_url_for rollupd_alt_trigger)" -c 'SELECT count(*) FROM hourly_costs')
LOAD_END=$(loadavg)

# ============================== output ==============================
OUT="$RESULTS_DIR/alternatives-$STAMP.json"
{
    printf '{\n "benchmark": "alternatives", "started": "%s", "smoke": %s, "machine": %s,\n' "$STAMP" "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(machine_json)"
    printf ' "loadavg_start": %s, "loadavg_end": %s, "quiet_timeouts": %s,\n' "$LOAD_START" "$LOAD_END" "$QUIET_TIMEOUTS"
    printf ' "recompute": {"events": %s, "load_ms": %s, "recompute_ms": [%s], "recompute_median_ms": %s, "recompute_cluster_cpu_ms": [%s], "cost_aggregates_rows": %s,\n' \
        "$EVENTS" "$LOAD_MS" "$(csv "${RECOMPUTE_MS[@]}")" "$REC_MED" "$(csv "${RECOMPUTE_CPU[@]}")" "$RECOMPUTE_ROWS"
    printf '   "rollupd_catchup_took_ms": %s, "rollupd_catchup_wall_ms": %s,\n' "$CATCHUP_MS" "$CATCHUP_WALL"
    printf '   "incremental_new_events": %s, "incremental_took_ms": [%s], "incremental_took_median_ms": %s, "incremental_wall_ms": [%s], "incremental_wall_median_ms": %s, "incremental_passes": [%s], "incremental_cluster_cpu_ms": [%s],\n' \
        "$NEW" "$(csv "${INC_MS[@]}")" "$INC_MED" "$(csv "${INC_WALL[@]}")" "$INC_WALL_MED" "$(csv "${INC_PASSES[@]}")" "$(csv "${INC_CPU[@]}")"
    printf '   "ratio_recompute_over_incremental_took": %s, "ratio_recompute_over_incremental_wall": %s, "ratio_recompute_cpu_over_incremental_cpu": %s, "correct": %s},\n' \
        "$(ratio "$REC_MED" "$INC_MED")" "$(ratio "$REC_MED" "$INC_WALL_MED")" "$(ratio "$REC_CPU_MED" "$INC_CPU_MED")" "$CORRECT"
    printf ' "ingest": {"duration_s": %s, "starting_rows": %s, "order": "clients 1 then 8; within each: bare rollupd trigger, twice", "trigger_hourly_rows_at_end": %s, "runs": [\n  %s\n ]}\n}\n' \
        "$DURATION" "$INGEST_BASE" "$TRIGGER_HOURLY_ROWS" "$(join_by $',\n  ' "${ING_JSON[@]}")"
} >"$OUT"

echo
echo "alternatives ($([[ $SMOKE == 1 ]] && echo smoke || echo full)); load average at start $LOAD_START, at end $LOAD_END; $(nproc) cores"
echo
printf '%-62s %12s\n' "(a) $EVENTS events" "median"
printf '%-62s %9s ms   (%s)\n' "full recompute (DELETE + INSERT ... GROUP BY hour, day)" "$REC_MED" "$(csv "${RECOMPUTE_MS[@]}")"
printf '%-62s %9s ms\n' "rollupd first pass over all rows (took_ms)" "$CATCHUP_MS"
printf '%-62s %9s ms   (%s)\n' "rollupd incremental pass, $NEW new events (took_ms)" "$INC_MED" "$(csv "${INC_MS[@]}")"
printf '%-62s %9s ms\n' "rollupd once wall, $NEW new events" "$INC_WALL_MED"
printf '%-62s %9sx\n' "recompute / incremental took_ms" "$(ratio "$REC_MED" "$INC_MED")"
printf '%-62s %9sx\n' "recompute / incremental, server CPU" "$(ratio "$REC_CPU_MED" "$INC_CPU_MED")"
printf '%-62s %9s\n' "correctness (hour and day call_count = count(*))" "$CORRECT"
echo
printf '(b) single-row INSERTs, %s s per run, %s starting rows; tps per run (rep1 rep2), p99 ms per run\n' "$DURATION" "$INGEST_BASE"
printf '%-8s %7s %22s %10s %18s %10s\n' variant clients "tps (rep1 rep2)" "tps/bare" "p99 ms (rep1 rep2)" "p99/bare"
for clients in 1 8; do
    bt=$(median ${TPS[bare,$clients]}) bp=$(median ${P99[bare,$clients]})
    for v in "${VARIANTS[@]}"; do
        t=$(median ${TPS[$v,$clients]}) p=$(median ${P99[$v,$clients]})
        printf '%-8s %7s %22s %10s %18s %10s\n' "$v" "$clients" "${TPS[$v,$clients]}" "$(ratio "$t" "$bt")" "${P99[$v,$clients]}" "$(ratio "$p" "$bp")"
    done
done
echo
echo "results: $OUT"
[[ $CORRECT == true ]] || die "correctness check failed"
