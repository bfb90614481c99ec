#!/usr/bin/env bash
# bench/smoke.sh — every benchmark at its smallest size, so the suite never rots. Benchmarks are
# not tests: no number is checked, only that each script runs to the end, exits 0 (its own
# correctness checks included), and writes one results file that is valid JSON. Every bench/*.sh
# but lib.sh and this one runs with --smoke, so a new benchmark is included (and must have a
# --smoke). `scripts/dev test` runs it last; 1.5-2 minutes on 2 cores.
#
#   bench/smoke.sh [--admin-url CONNINFO]
#
#   --admin-url   superuser conninfo on the postgres database
#                 (default $BENCH_ADMIN_URL, else host=127.0.0.1 port=55432 user=postgres dbname=postgres)
#
# Environment: ROLLUPD_BINARY (the binary every script runs; unset: `swift build` and its debug
# binary, which changes no SQL). Results go to a temporary directory (BENCH_RESULTS_DIR), not
# bench/results, and are removed afterwards; the last lines of a failing script's output are shown.
set -euo pipefail
REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
ADMIN_URL="${BENCH_ADMIN_URL:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"
while (($#)); do
    case $1 in
    --admin-url) [[ -n ${2-} ]] || { echo "smoke: --admin-url needs a value" >&2; exit 2; }; ADMIN_URL=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "smoke: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
say() { printf '==> %s\n' "$*" >&2; }

if [[ -z ${ROLLUPD_BINARY-} ]]; then
    say "swift build --product rollupd"
    (cd "$REPO" && swift build --product rollupd >&2)
    ROLLUPD_BINARY="$(cd "$REPO" && swift build --show-bin-path)/rollupd"
fi
[[ -x $ROLLUPD_BINARY ]] || { echo "smoke: ROLLUPD_BINARY=$ROLLUPD_BINARY is not an executable" >&2; exit 1; }
export ROLLUPD_BINARY BENCH_ADMIN_URL="$ADMIN_URL"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

valid_json() { # $1 file: PostgreSQL parses it (psql is there already; jq may not be)
    printf '%s\n' "SELECT (:'doc')::jsonb IS NOT NULL;" |
        psql -X -q -At -v ON_ERROR_STOP=1 -v doc="$(cat "$1")" -d "$ADMIN_URL" >/dev/null 2>&1
}

failed=() summary=()
started_all=$(date +%s)
for path in "$REPO"/bench/*.sh; do
    script=${path##*/}
    [[ $script == lib.sh || $script == cpu.sh || $script == smoke.sh ]] && continue
    say "bench/$script --smoke"
    # Each script writes into a directory of its own, so its file is the only one there.
    export BENCH_RESULTS_DIR="$TMP/${script%.sh}"
    mkdir -p "$BENCH_RESULTS_DIR"
    log="$TMP/${script%.sh}.log"
    started=$(date +%s)
    rc=0
    "$path" --smoke --admin-url "$ADMIN_URL" >"$log" 2>&1 </dev/null || rc=$?
    took=$(($(date +%s) - started))
    problem=""
    if ((rc != 0)); then
        problem="exit status $rc"
    else
        mapfile -t files < <(find "$BENCH_RESULTS_DIR" -maxdepth 1 -name '*.json')
        if ((${#files[@]} != 1)); then
            problem="expected one results file (*.json), found ${#files[@]}"
        elif ! valid_json "${files[0]}"; then
            problem="${files[0]##*/} is not valid JSON"
        fi
    fi
    if [[ -n $problem ]]; then
        failed+=("$script")
        summary+=("$(printf '%-20s FAILED (%s) after %ss' "$script" "$problem" "$took")")
        say "bench/$script failed: $problem; its last lines:"
        tail -n 30 "$log" | sed 's/^/    /' >&2
    else
        summary+=("$(printf '%-20s ok, %ss' "$script" "$took")")
    fi
done

echo
echo "benchmark smoke run ($(($(date +%s) - started_all)) s, binary $ROLLUPD_BINARY):"
printf '  %s\n' "${summary[@]}"
((${#failed[@]} == 0)) || { echo "failed: ${failed[*]}" >&2; exit 1; }
