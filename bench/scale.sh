#!/usr/bin/env bash
# bench/scale.sh — does a pass that finds 1,000 new events cost the same among 1M as among 5M rows?
#
#   bench/scale.sh [--sizes "1000000 5000000"] [--new M] [--rounds R] [--smoke] [--keep] [--admin-url CONNINFO]
#
#   One database grows through the sizes (the same generator and seed as bench/catchup.sh; each
#   size adds rows, spread over the same 719 hours, and is caught up by `rollupd once`). At each
#   size, R rounds of: insert M events stamped in the last hour; EXPLAIN (ANALYZE, BUFFERS) of the
#   range lookup the pass makes (the columns it reads, with the watermark and horizon it would use);
#   `rollupd once`, its events took_ms. Also, once per size, the periodic full recompute
#   (DELETE + INSERT ... GROUP BY hour, day of bench/alternatives.sh, rolled back) to show what grows
#   with the table. Reported: the median pass at each size and its ratio to the first size.
#
#   --sizes "A B ..."  table sizes, ascending (default "1000000 5000000"; 10000000 adds ~4 minutes
#                      of loading on 2 cores)
#   --new M            new events per round (default 1000)
#   --rounds R         rounds per size (default 5)
#   --smoke            sizes "20000 60000", M=100, R=2
#   --keep             keep the database rollupd_scale_bench
#   --admin-url        superuser conninfo on the postgres database
#                      (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: ROLLUPD_BINARY (prebuilt binary; unset: release build, see bench/lib.sh).
# Writes bench/results/scale-<UTC timestamp>.json and prints a table.
set -euo pipefail
NAME=scale
BENCH_DB=rollupd_scale_bench
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

SIZES="1000000 5000000" NEW=1000 ROUNDS=5 sset=0
parse_extra() {
    case $1 in
    --sizes) [[ ${2-} =~ ^[0-9\ ]+$ ]] || die "--sizes needs numbers"; SIZES=$2 sset=1 ;;
    --new) [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "--new needs a positive integer"; NEW=$2 ;;
    --rounds) [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive integer"; ROUNDS=$2 ;;
    *) return 1 ;;
    esac
    EXTRA_SHIFT=2
}
parse_common "$@"
if ((SMOKE)); then ((sset)) || SIZES="20000 60000"; NEW=100 ROUNDS=2; fi
setup_bench
LOAD_START=$(loadavg)

say "fresh database $BENCH_DB, migrate"
fresh_db "$BENCH_DB"
rollupd_migrate
create_generator


OUT="$RESULTS_DIR/scale-$STAMP.json"
# Written after every size (a partial result survives an interrupted large run) and at the end.
write_json() {
    {
        printf '{\n "benchmark": "scale", "started": "%s", "smoke": %s, "machine": %s,\n' "$STAMP" "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(machine_json)"
        printf ' "loadavg_start": %s, "loadavg_end": %s, "new_per_round": %s, "rounds": %s, "quiet_timeouts": %s, "correct": %s,\n' "$LOAD_START" "${LOAD_END:-$(loadavg)}" "$NEW" "$ROUNDS" "$QUIET_TIMEOUTS" "${CORRECT:-null}"
        printf ' "sizes": [\n  %s\n ]\n}\n' "$(join_by $',\n  ' "${SIZE_JSON[@]}")"
    } >"$OUT"
}
loaded=0 next_new=1000000000 seed_i=0
SIZE_JSON=() ROWS=() FIRST_MED=""
for size in $SIZES; do
    ((size > loaded)) || die "--sizes must be ascending"
    seed_i=$((seed_i + 1))
    say "loading events $((loaded + 1))..$size (setseed(0.1$seed_i))"
    t0=$(now_ns)
    load_events $((loaded + 1)) $((size - loaded)) "0.1$seed_i"
    psql_bench -c 'VACUUM ANALYZE events'
    load_ms=$(ms_since "$t0")
    say "catch-up: rollupd once over $((size - loaded)) new rows"
    run_once
    catchup_ms=$ONCE_EVENTS_MS
    loaded=$size
    total=$(psql_bench -c 'SELECT count(*) FROM events')
    rel=$(psql_bench -c "SELECT pg_size_pretty(pg_relation_size('events')) || ' heap, ' || pg_size_pretty(pg_relation_size('events_rollupd_xid_idx')) || ' xid index'")

    say "full recompute at $total rows (rolled back)"
    rec_ms=$(psql_bench -c '\timing on' -c 'BEGIN' -c "$RECOMPUTE_SQL" -c 'ROLLBACK' | awk '/^Time: / { s += $2 } END { printf "%.1f", s }')

    took=() wall=() passes=() plans=() seq=false bufs=() plan_ms=()
    for ((r = 1; r <= ROUNDS; r++)); do
        load_new_events "$next_new" "$NEW" "$SEED"
        next_new=$((next_new + NEW))
        wait_quiet
        read -r w h < <(psql_bench -F ' ' -c "SELECT watermark, pg_snapshot_xmin(pg_current_snapshot()) FROM rollupd.sources WHERE source = 'events'")
        plan=$(psql_bench -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
            SELECT id, project_id, feature, model, created_at, input_tokens, output_tokens, latency_ms, estimated_cost_usd, verified_cost_usd
            FROM events WHERE (rollupd_xid >= '$w'::xid8 AND rollupd_xid < '$h'::xid8) OR (false AND rollupd_xid IS NULL)")
        grep -q 'Seq Scan' <<<"$plan" && seq=true
        bufs+=("$(grep -m1 -oP 'Buffers: shared \K[^\n]*' <<<"$plan" | sed 's/ /_/g')")
        plan_ms+=("$(grep -oP 'Execution Time: \K[0-9.]+' <<<"$plan")")
        run_once
        [[ $ONCE_EVENTS_ADDED == "$NEW" ]] || die "round $r: rollupd counted $ONCE_EVENTS_ADDED events, expected $NEW"
        took+=("$ONCE_EVENTS_MS") wall+=("$ONCE_WALL_MS") passes+=("$ONCE_EVENTS_PASSES")
        say "  $total rows, round $r: took_ms=$ONCE_EVENTS_MS wall=${ONCE_WALL_MS}ms passes=$ONCE_EVENTS_PASSES lookup=${plan_ms[-1]}ms seq_scan=$seq"
    done
    med=$(median "${took[@]}")
    [[ -n $FIRST_MED ]] || FIRST_MED=$med FIRST_REC=$rec_ms
    plan_json=$(printf '%s' "$plan" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk '{ printf "%s\\n", $0 }')
    la=$(loadavg)
    SIZE_JSON+=("{\"events_before_rounds\": $total, \"load_ms\": $load_ms, \"catchup_took_ms\": $catchup_ms, \"relation_sizes\": \"$rel\",
    \"full_recompute_ms\": $rec_ms, \"pass_took_ms\": [$(csv "${took[@]}")], \"pass_took_median_ms\": $med, \"pass_wall_ms\": [$(csv "${wall[@]}")],
    \"passes_per_once\": [$(csv "${passes[@]}")], \"range_lookup_ms\": [$(csv "${plan_ms[@]}")], \"range_lookup_buffers\": [\"$(join_by '", "' "${bufs[@]}")\"],
    \"seq_scan\": $seq, \"ratio_to_first_size\": $(ratio "$med" "$FIRST_MED"), \"recompute_ratio_to_first_size\": $(ratio "$rec_ms" "$FIRST_REC"), \"loadavg_after\": $la,
    \"last_plan\": \"$plan_json\"}")
    ROWS+=("$(printf '%12s %10s %12s %9s %14s %8s %14s %10s %10s' "$total" "$med" "$(csv "${took[@]}")" "$(ratio "$med" "$FIRST_MED")" "$(median "${plan_ms[@]}")" "$seq" "${bufs[-1]//_/ }" "$rec_ms" "$(ratio "$rec_ms" "$FIRST_REC")")")
    LAST_PLAN=$plan
    write_json
done
CHECK=$(psql_bench -c "SELECT (SELECT count(*) FROM events) = (SELECT sum(call_count) FROM cost_aggregates WHERE period = 'hour')
                          AND (SELECT count(*) FROM events) = (SELECT sum(call_count) FROM cost_aggregates WHERE period = 'day')")
[[ $CHECK == t ]] && CORRECT=true || CORRECT=false
LOAD_END=$(loadavg)

write_json

echo
echo "scale ($([[ $SMOKE == 1 ]] && echo smoke || echo full)): a pass over $NEW new events, $ROUNDS rounds per size; $(nproc) cores; load average at start $LOAD_START, at end $LOAD_END"
printf '%12s %10s %12s %9s %14s %8s %14s %10s %10s\n' "events" "pass ms" "(each round)" "ratio" "lookup ms" "seqscan" "lookup bufs" "recompute" "ratio"
printf '%s\n' "${ROWS[@]}"
echo "range lookup at the largest size (last round):"
sed 's/^/    /' <<<"$LAST_PLAN"
echo "correctness (hour and day call_count = count(*)): $CORRECT"
echo "results: $OUT"
[[ $CORRECT == true ]] || die "correctness check failed"
