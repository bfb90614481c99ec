#!/usr/bin/env bash
# bench/budgets.sh — how long does evaluating 10,000 budgets take?
#
#   bench/budgets.sh [--events N] [--budgets B] [--rounds R] [--smoke] [--keep] [--admin-url CONNINFO]
#
#   Loads N events over the last 30 days (bench/generator.sql, 500 users), rolls them up with
#   `rollupd once`, inserts B budgets (80% user budgets over 10,000 user ids, most of them idle;
#   the rest project, feature, model and global; day, week and month periods; one in ten in
#   America/New_York, whose edges come from UTC hour buckets, and for user budgets from raw
#   events through (project_id, user_id, created_at)), then runs `rollupd once`
#   R+1 times with log.level debug and reads the evaluation's took_ms: the first run records the
#   alerts due, the others find them recorded (the steady state). Baselines in the same run:
#     - per-budget: the same spend computed with one query per budget (what a cron job looping
#       over budgets would do; here in plpgsql, so without any network round trip);
#     - floor: one scan summing this month's day buckets per project (the least any evaluation reads).
#   Checks that recorded threshold alerts carry the spend summed from raw events (a sample).
#
#   --events N   default 1000000 (--smoke 20000)
#   --budgets B  default 10000 (--smoke 300)
#   --rounds R   steady-state evaluations (default 5, --smoke 2)
#
# Environment: ROLLUPD_BINARY (prebuilt binary; unset: release build, see bench/lib.sh).
# Writes bench/results/budgets-<UTC timestamp>.json and prints a summary.
set -euo pipefail
NAME=budgets
BENCH_DB=rollupd_budgets_bench
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

EVENTS=1000000 BUDGETS=10000 ROUNDS=5 eset=0 bset=0
parse_extra() {
    case $1 in
    --events) [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "--events needs a positive integer"; EVENTS=$2 eset=1 ;;
    --budgets) [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "--budgets needs a positive integer"; BUDGETS=$2 bset=1 ;;
    --rounds) [[ ${2-} =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive integer"; ROUNDS=$2 ;;
    *) return 1 ;;
    esac
    EXTRA_SHIFT=2
}
parse_common "$@"
if ((SMOKE)); then ((eset)) || EVENTS=20000; ((bset)) || BUDGETS=300; ROUNDS=2; fi
setup_bench
export ROLLUPD_LOG_LEVEL=debug
LOAD_START=$(loadavg)

say "fresh database $BENCH_DB, migrate, $EVENTS events over 30 days"
fresh_db "$BENCH_DB"
rollupd_migrate
create_generator
load_events 1 "$EVENTS" "$SEED"
psql_bench -c 'VACUUM ANALYZE events'
run_once

say "$BUDGETS budgets"
psql_bench -c "
INSERT INTO rollupd.budgets (name, scope, scope_value, period, limit_usd, thresholds, time_zone)
SELECT 'bench ' || i, scope,
       CASE scope
           WHEN 'user' THEN 'user-' || (hashtext('user' || i) & 16383) % 10000
           WHEN 'project' THEN (ARRAY['acme', 'globex', 'initech'])[1 + i % 3]
           WHEN 'feature' THEN (ARRAY['chat', 'search', 'summarize', 'classify', 'extract', 'translate'])[1 + i % 6]
           WHEN 'model' THEN (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku', 'claude-3-5-sonnet', 'gemini-1.5-pro'])[1 + i % 5]
       END,
       (ARRAY['day', 'week', 'month'])[1 + i % 3],
       -- Limits scale with the data, so some budgets are over, some under, at any --events.
       round((5 + (hashtext('limit' || i) & 1023))::numeric * CASE WHEN scope = 'user' THEN 0.01 ELSE 1 END * $EVENTS / 1000000, 4),
       '{50,80,100}', CASE WHEN i % 10 = 0 THEN 'America/New_York' END
FROM generate_series(1, $BUDGETS) AS i
CROSS JOIN LATERAL (SELECT CASE WHEN i % 100 < 80 THEN 'user' WHEN i % 100 < 88 THEN 'project'
                                WHEN i % 100 < 94 THEN 'feature' WHEN i % 100 < 98 THEN 'model' ELSE 'global' END AS scope) AS s;
ANALYZE rollupd.budgets;"

evaluation_ms() { awk '/budgets evaluated/ { for (i = 1; i <= NF; i++) if (index($i, "took_ms=") == 1) print substr($i, 9) }' "$WORK/once.log"; }
run_once
FIRST_MS=$(evaluation_ms)
RECORDED=$(psql_bench -c 'SELECT count(*) FROM rollupd.budget_alerts')
STEADY=()
for ((r = 1; r <= ROUNDS; r++)); do
    run_once
    STEADY+=("$(evaluation_ms)")
done
STEADY_MED=$(median "${STEADY[@]}")
[[ $(psql_bench -c 'SELECT count(*) FROM rollupd.budget_alerts') == "$RECORDED" ]] || die "a steady-state evaluation recorded alerts again"

say "baselines: one query per budget; the floor scan"
# Sums the same rollups as rollupd, one query per budget through the same indexes (day buckets
# of the rollup zone, as a cron job that ignores budget zones would read them).
psql_bench -c "
CREATE OR REPLACE FUNCTION bench.per_budget_spend() RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE b record; total numeric := 0; s numeric; ps timestamptz; pe timestamptz; z text;
BEGIN
    FOR b IN SELECT * FROM rollupd.budgets WHERE enabled LOOP
        z := coalesce(b.time_zone, 'UTC');
        ps := date_trunc(b.period, now(), z);
        pe := (date_trunc(b.period, now() AT TIME ZONE z) + ('1 ' || b.period)::interval) AT TIME ZONE z;
        IF b.scope = 'user' THEN
            SELECT sum(total_cost) INTO s FROM rollupd.user_cost_aggregates
            WHERE user_id = b.scope_value AND period = 'day' AND period_start >= ps AND period_start < pe;
        ELSE
            SELECT sum(total_cost) INTO s FROM cost_aggregates
            WHERE period = 'day' AND period_start >= ps AND period_start < pe
              AND CASE b.scope WHEN 'project' THEN project_id = b.scope_value WHEN 'feature' THEN feature = b.scope_value
                               WHEN 'model' THEN model = b.scope_value ELSE true END;
        END IF;
        total := total + coalesce(s, 0);
    END LOOP;
    RETURN total;
END \$\$;"
timed() { psql_bench -c '\timing on' -c "$1" | awk '/^Time: / { printf "%.1f", $2 }'; }
PER_BUDGET=() FLOOR=()
for ((r = 1; r <= ROUNDS; r++)); do
    PER_BUDGET+=("$(timed 'SELECT bench.per_budget_spend()')")
    FLOOR+=("$(timed "SELECT project_id, sum(total_cost) FROM cost_aggregates WHERE period = 'day' AND period_start >= date_trunc('month', now(), 'UTC') GROUP BY 1")")
done
PER_MED=$(median "${PER_BUDGET[@]}") FLOOR_MED=$(median "${FLOOR[@]}")

# Correctness: threshold alerts carry their scope's spend summed from raw events. Checked on a
# sample of 40 distinct (scope, period) pairs, non-user ones first (each costs a scan of the period).
CHECKED=$(psql_bench -c "
SELECT count(*) FROM (SELECT DISTINCT scope, scope_value, period_start, period_end FROM rollupd.budget_alerts WHERE kind = 'threshold' LIMIT 40) AS s")
WRONG=$(psql_bench -c "
WITH sample AS (
    SELECT * FROM (SELECT DISTINCT scope, scope_value, period_start, period_end FROM rollupd.budget_alerts WHERE kind = 'threshold') AS d
    ORDER BY scope = 'user', period_end - period_start, scope_value LIMIT 40
), raw AS MATERIALIZED (
    SELECT s.*, (SELECT coalesce(sum(coalesce(e.verified_cost_usd, e.estimated_cost_usd)), 0) FROM events e
                 WHERE e.created_at >= s.period_start AND e.created_at < s.period_end
                   AND CASE s.scope WHEN 'user' THEN e.user_id = s.scope_value WHEN 'project' THEN e.project_id = s.scope_value
                                    WHEN 'feature' THEN e.feature = s.scope_value WHEN 'model' THEN e.model = s.scope_value
                                    ELSE true END) AS spend
    FROM sample s
)
SELECT count(*) FROM raw r JOIN rollupd.budget_alerts a USING (scope, period_start, period_end)
WHERE a.kind = 'threshold' AND a.scope_value IS NOT DISTINCT FROM r.scope_value AND a.spend_usd <> r.spend")
[[ $WRONG == 0 ]] && CORRECT=true || CORRECT=false
LOAD_END=$(loadavg)

OUT="$RESULTS_DIR/budgets-$STAMP.json"
cat >"$OUT" <<JSON
{
 "benchmark": "budgets", "started": "$STAMP", "smoke": $([[ $SMOKE == 1 ]] && echo true || echo false), "machine": $(machine_json),
 "loadavg_start": $LOAD_START, "loadavg_end": $LOAD_END, "events": $EVENTS, "budgets": $BUDGETS,
 "alerts_recorded": $RECORDED, "first_evaluation_ms": $FIRST_MS,
 "steady_evaluation_ms": [$(csv "${STEADY[@]}")], "steady_evaluation_median_ms": $STEADY_MED,
 "per_budget_queries_ms": [$(csv "${PER_BUDGET[@]}")], "per_budget_queries_median_ms": $PER_MED,
 "floor_scan_ms": [$(csv "${FLOOR[@]}")], "floor_scan_median_ms": $FLOOR_MED,
 "ratio_to_per_budget": $(ratio "$STEADY_MED" "$PER_MED"), "ratio_to_floor": $(ratio "$STEADY_MED" "$FLOOR_MED"),
 "correct": $CORRECT, "correctness_sample": $CHECKED
}
JSON

echo
echo "budgets ($([[ $SMOKE == 1 ]] && echo smoke || echo full)): $BUDGETS budgets over $EVENTS events; $(nproc) cores; load average at start $LOAD_START, at end $LOAD_END"
printf '  %-42s %10s\n' "first evaluation (records $RECORDED alerts)" "$FIRST_MS ms"
printf '  %-42s %10s   (%s)\n' "steady evaluation, median" "$STEADY_MED ms" "$(csv "${STEADY[@]}")"
printf '  %-42s %10s   ratio %s\n' "one query per budget (plpgsql), median" "$PER_MED ms" "$(ratio "$STEADY_MED" "$PER_MED")"
printf '  %-42s %10s   ratio %s\n' "floor: one scan of this month's day buckets" "$FLOOR_MED ms" "$(ratio "$STEADY_MED" "$FLOOR_MED")"
echo "correctness (alert spend = raw events' spend, $CHECKED sampled scope-periods): $CORRECT"
echo "results: $OUT"
[[ $CORRECT == true ]] || die "correctness check failed"
