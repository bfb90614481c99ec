#!/usr/bin/env bash
# What rollupd's change capture costs the product's own inserts.
#
# Three tables with the same columns and the app's indexes (seed 001), loaded by pgbench with
# single-row INSERTs the way an app writes one row per AI call:
#   bare      - events as the app created it
#   rollupd   - after rollupd's migrations: rollupd_xid column (DEFAULT pg_current_xact_id()),
#               its btree index, and the UPDATE/DELETE capture triggers (which inserts never fire)
#   stmt_trig - the alternative rollupd did not pick: an AFTER INSERT statement trigger that logs
#               each inserted row's bucket into a delta table through a transition table
# Each variant runs for DURATION seconds with 1 and 8 clients; reported: tps, mean and p99 latency.
# With --reps R the whole sequence runs R times, variants interleaved within each repetition so a
# neighbour's load hits them alike; the summary uses each variant's median tps and p99.
#
# Usage: bench/ingest-overhead.sh [--admin-url CONNINFO] [--duration SECONDS] [--reps R] [--durable] [--smoke]
#   --smoke: 1 s per run on 20,000-row tables (CI: keeps the script working; the numbers mean nothing)
#   --durable: instead of --admin-url, a throwaway cluster this script starts on disk under /var/tmp
#     with PostgreSQL's default durability (fsync, synchronous_commit, full_page_writes on), so
#     every commit waits for its WAL flush as in production; scripts/dev's cluster has them off.
# Environment: BENCH_ADMIN_URL; BENCH_RESULTS_DIR (default bench/results).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
admin_url=${BENCH_ADMIN_URL:-"host=127.0.0.1 port=55432 user=postgres dbname=postgres"}
duration=15
base_rows=200000
smoke=false
durable=false
reps=1
while [ $# -gt 0 ]; do
  case "$1" in
    --admin-url) admin_url=$2; shift 2 ;;
    --durable) durable=true; shift ;;
    --reps) reps=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --smoke) duration=1; base_rows=20000; smoke=true; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
db=rollupd_ingest_bench
# The `rollupd` variant is what `rollupd migrate` adds: $ROLLUPD_BINARY (bench/smoke.sh sets it), else a built one.
rollupd_bin=${ROLLUPD_BINARY:-}
if [ -z "$rollupd_bin" ]; then
  for candidate in "$repo/.build/release/rollupd" "$repo/.build/debug/rollupd"; do
    [ -x "$candidate" ] && { rollupd_bin=$candidate; break; }
  done
fi
[ -x "$rollupd_bin" ] || { echo "ingest-overhead: no rollupd binary (set ROLLUPD_BINARY or run swift build)" >&2; exit 1; }
work=$(mktemp -d)
durable_dir=""
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  rm -rf "$work"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "$durable_dir" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$durable_dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$durable_dir"
  fi
}
trap cleanup EXIT
if $durable; then
  durable_port=${ROLLUPD_DURABLE_PGPORT:-55498}
  durable_dir=$(mktemp -d /var/tmp/rollupd-ingest-durable.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$durable_dir"
  as_postgres "$pg_bin/initdb" -D "$durable_dir/data" -U postgres -A trust >/dev/null
  as_postgres "$pg_bin/pg_ctl" -D "$durable_dir/data" -l "$durable_dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$durable_port -c unix_socket_directories= -c shared_buffers=256MB" start >/dev/null ||
    { cat "$durable_dir/postgres.log" >&2; echo "ingest-overhead: cannot start the durable cluster on port $durable_port" >&2; exit 1; }
  admin_url="host=127.0.0.1 port=$durable_port user=postgres dbname=postgres"
fi

url="$admin_url dbname=$db"
export PGOPTIONS="-c client_min_messages=warning"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null

setup_variant() {
  psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DROP SCHEMA IF EXISTS rollupd CASCADE;
DROP TABLE IF EXISTS events, cost_aggregates, hourly_rollups, analytics_events, delta_log CASCADE;
DROP FUNCTION IF EXISTS log_deltas() CASCADE;
SQL
  # The product's table as the app has it, then what each variant adds to it.
  psql "$url" -q -v ON_ERROR_STOP=1 -f "$repo/scripts/demo/app_schema.sql" >/dev/null
  case "$1" in
    bare) ;;
    rollupd)
      # What `rollupd migrate` adds (the migration files fill in @app_schema@, and the column and its
      # index come from migrate itself): the same as a real install.
      printf 'database:\n  url: "%s"\nmigrations:\n  directory: "%s"\nmetrics:\n  listen: "off"\n' "$url" "$repo/migrations" >"$work/migrate.yaml"
      env -u JOURNAL_STREAM -u ROLLUPD_DATABASE_URL -u ROLLUPD_MIGRATIONS_DIRECTORY "$rollupd_bin" migrate --config "$work/migrate.yaml" >/dev/null 2>"$work/migrate.log" \
        || { cat "$work/migrate.log" >&2; exit 1; } ;;
    stmt_trig)
      psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE delta_log (project_id text, feature text, model text, hour timestamptz, calls bigint, cost numeric);
CREATE FUNCTION log_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delta_log SELECT project_id, feature, model, date_trunc('hour', created_at, 'UTC'), count(*),
         sum(coalesce(verified_cost_usd, estimated_cost_usd)) FROM new_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;
CREATE TRIGGER log_deltas AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION log_deltas();
SQL
      ;;
  esac
  # A realistic starting size, so index depths are not those of an empty table.
  psql "$url" -q -v ON_ERROR_STOP=1 -c "INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens, latency_ms, estimated_cost_usd, created_at)
    SELECT md5(i::text), 's', 'f' || (i % 6), 'openai', 'm' || (i % 5), 100, 50, 300, 0.001, now() - (i % 100000) * interval '1 second'
    FROM generate_series(1, $base_rows) i" -c "VACUUM ANALYZE events" >/dev/null
}


printf '%-4s %-10s %7s %10s %10s %10s\n' rep variant clients tps mean_ms p99_ms
results="["
declare -A tps_of p99_of
for ((rep = 1; rep <= reps; rep++)); do
for clients in 1 8; do
  for variant in bare rollupd stmt_trig; do
    setup_variant "$variant"
    rm -f "$work"/pgbench_log.*
    (cd "$work" && "$pg_bin/pgbench" -n -f "$repo/bench/insert-event.pgbench" -c "$clients" -j "$clients" -T "$duration" -l "$url" > out.txt 2>&1)
    tps=$(grep -oP 'tps = \K[0-9.]+' "$work/out.txt" | head -n 1)
    # pgbench -l: the third column is the transaction's latency in microseconds.
    read -r mean p99 < <(cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.3f %.3f\n", s/NR/1000, a[int(NR*0.99)]/1000}')
    printf '%-4s %-10s %7s %10s %10s %10s\n' "$rep" "$variant" "$clients" "$tps" "$mean" "$p99"
    tps_of[$variant,$clients]+="$tps " p99_of[$variant,$clients]+="$p99 "
    results+="{\"rep\":$rep,\"variant\":\"$variant\",\"clients\":$clients,\"tps\":$tps,\"mean_ms\":$mean,\"p99_ms\":$p99},"
  done
done
done
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
results_dir=${BENCH_RESULTS_DIR:-$repo/bench/results}
mkdir -p "$results_dir"
out="$results_dir/ingest-$(date -u +%Y%m%dT%H%M%SZ).json"
settings=$(psql "$admin_url" -Atc "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')")
printf '{"duration_s":%s,"reps":%s,"base_rows":%s,"smoke":%s,"durable_cluster":%s,"server_settings":"%s","nproc":%s,"results":%s]}\n' \
  "$duration" "$reps" "$base_rows" "$smoke" "$durable" "$settings" "$(nproc)" "${results%,}" > "$out"
echo "server: $settings"
for clients in 1 8; do
  for variant in rollupd stmt_trig; do
    awk -v v="$variant" -v c="$clients" -v r="$reps" -v t="$(median "${tps_of[$variant,$clients]}")" -v b="$(median "${tps_of[bare,$clients]}")" \
      -v p="$(median "${p99_of[$variant,$clients]}")" -v q="$(median "${p99_of[bare,$clients]}")" \
      'BEGIN { printf "%-10s %d clients, median of %d: tps %.2fx bare (overhead %.1f%%), p99 %.2fx bare\n", v, c, r, t / b, (1 - t / b) * 100, (q > 0 ? p / q : 0) }'
  done
done
echo "results: $out"
