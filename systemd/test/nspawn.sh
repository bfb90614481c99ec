#!/usr/bin/env bash
# Tests the packaged rollupd under a real systemd: boots Debian 12 in systemd-nspawn (systemd as
# the container's PID 1), installs the .deb there and drives the service with systemctl and
# journalctl: readiness (Type=notify), structured journal fields, the watchdog, reload, a bad
# configuration (exit 78, no restart loop), a clean stop, systemd-analyze verify/security.
#
# Usage: systemd/test/nspawn.sh [--admin-url CONNINFO] [--deb PATH] [--cache PATH] [--mirror URL]
#                               [--database NAME] [--rebuild-cache] [--keep]
#   --admin-url   PostgreSQL to use, reachable from the host network over TCP (env
#                 ROLLUPD_NSPAWN_ADMIN_URL; default "host=127.0.0.1 port=55432 user=postgres
#                 dbname=postgres", the cluster scripts/dev starts). The test database is created
#                 there and dropped at the end.
#   --deb PATH    install this .deb instead of building one with scripts/package-deb (env ROLLUPD_NSPAWN_DEB)
#   --cache PATH  the cached bootstrapped root (env ROLLUPD_NSPAWN_CACHE, default
#                 /var/cache/rollupd-nspawn/bookworm.tar); built by bootstrap-root.sh when missing
#   --mirror URL  Debian mirror for debootstrap (env ROLLUPD_NSPAWN_MIRROR; default: the host's)
#   --database    name of the test database (default rollupd_nspawn)
#   --rebuild-cache  debootstrap again even if the cache is current
#   --keep        leave the container, its root and the database in place for inspection
#
# Needs root (it re-runs itself with sudo otherwise). Installs systemd-container, debootstrap and
# postgresql-client with apt when they are missing. Prints TAP-like "ok - NAME" / "not ok - NAME:
# WHY" lines, timings as "# time" comments, and "nspawn: N passed, M failed" last; exits 1 if
# anything failed.
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
admin_url=${ROLLUPD_NSPAWN_ADMIN_URL:-"host=127.0.0.1 port=55432 user=postgres dbname=postgres"}
deb=${ROLLUPD_NSPAWN_DEB:-}
cache=${ROLLUPD_NSPAWN_CACHE:-/var/cache/rollupd-nspawn/bookworm.tar}
mirror=${ROLLUPD_NSPAWN_MIRROR:-}
dbname=rollupd_nspawn
rebuild_cache=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --admin-url) admin_url=$2; shift 2 ;;
    --deb) deb=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --database) dbname=$2; shift 2 ;;
    --rebuild-cache) rebuild_cache=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nspawn: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$dbname" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "nspawn: --database must be a plain lower-case identifier" >&2; exit 2; }
if [ -n "$deb" ]; then
  [ -f "$deb" ] || { echo "nspawn: no such .deb: $deb" >&2; exit 2; }
  deb=$(readlink -f "$deb")
fi
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "nspawn: needs root (systemd-nspawn, nsenter)" >&2; exit 2; }
  exec sudo -E -- "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PAGER=cat SYSTEMD_PAGER=cat SYSTEMD_COLORS=0

# ---------------------------------------------------------------------------------------------
# Reporting

passed=0
failed=0
t_script=$EPOCHREALTIME
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
note() { printf '# %s\n' "$*"; }
indent() { sed 's/^/#   /'; }
timing() { printf '# time %s: %ss\n' "$1" "$(elapsed "$2")"; }
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
# not_ok NAME WHY [DETAILS]: DETAILS (command output) follow the line, indented.
not_ok() {
  failed=$((failed + 1))
  printf 'not ok - %s: %s\n' "$1" "$2"
  [ -n "${3:-}" ] && printf '%s\n' "$3" | indent
  [ -n "${leader:-}" ] && diagnose
  return 0
}
finish() {
  printf '# time total: %ss\n' "$(elapsed "$t_script")"
  printf 'nspawn: %d passed, %d failed\n' "$passed" "$failed"
}
# A setup step failed: nothing after it can run.
bail() {
  not_ok "$@"
  note "stopping here: the remaining checks need this step"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Clean-up: power the container off, remove its root and cgroups, drop the database.

work=""
work_tmpfs=0
nspawn_pid=""
leader=""
prep_pid=""
cgdirs=()
db_created=0

# Every descendant of a process we started, deepest first.
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    descendants "$child"
    echo "$child"
  done
}

cleanup() {
  local rc=$? t0 t; t0=$(now); t=$t0
  trap - EXIT
  # Finish cleaning up whatever arrives now; a second Ctrl-C must not leave a container behind.
  trap 'note "signal during clean-up: finishing it first"' INT TERM HUP
  if [ "$keep" = 1 ] && [ -n "$leader" ]; then
    note "--keep: container leader PID $leader (nspawn PID $nspawn_pid), root $work/root, database $dbname"
    note "  enter:   nsenter -t $leader -a /bin/bash"
    note "  journal: nsenter -t $leader -a journalctl -u rollupd"
    note "  end:     kill $nspawn_pid; umount $work; rm -rf --one-file-system $work; psql '$admin_url' -c 'DROP DATABASE $dbname WITH (FORCE)'"
    [ ${#cgdirs[@]} -gt 0 ] && note "           find ${cgdirs[*]} -depth -type d -exec rmdir {} +"
    finish
    [ "$failed" -gt 0 ] && rc=1
    exit "$rc"
  fi
  if [ -n "$prep_pid" ] && kill -0 "$prep_pid" 2>/dev/null; then
    # shellcheck disable=SC2046  # a list of PIDs
    kill $(descendants "$prep_pid") "$prep_pid" 2>/dev/null
    wait "$prep_pid" 2>/dev/null
  fi
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null  # nspawn asks the container's systemd to power off
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      note "container did not power off within 20 s; killing it"
      # shellcheck disable=SC2046  # a list of PIDs
      kill -KILL $(descendants "$nspawn_pid") "$nspawn_pid" 2>/dev/null
    fi
    wait "$nspawn_pid" 2>/dev/null
    timing "cleanup: container power-off" "$t"
  fi
  local d pid
  t=$(now)
  for d in "${cgdirs[@]}"; do
    [ -d "$d" ] || continue
    # Anything left in the container's cgroups was started by this run.
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.2
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && note "could not remove cgroup $d"
  done
  [ ${#cgdirs[@]} -gt 0 ] && timing "cleanup: cgroups" "$t"
  if [ -n "$work" ] && [ -d "$work" ]; then
    t=$(now)
    findmnt -rno TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    [ "$work_tmpfs" = 1 ] && umount -l "$work"
    rm -rf --one-file-system "$work"
    timing "cleanup: remove the root" "$t"
  fi
  [ -n "${machine:-}" ] && rmdir "/run/systemd/nspawn/propagate/$machine" 2>/dev/null
  if [ "$db_created" = 1 ]; then
    t=$(now)
    psql_admin -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1 \
      || note "could not drop database $dbname"
    timing "cleanup: drop database" "$t"
  fi
  timing "cleanup (all)" "$t0"
  finish
  [ "$failed" -gt 0 ] && rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'not_ok interrupted "by a signal"; exit 130' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Helpers

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$admin_url" "$@"; }
psql_test() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$test_url" "$@"; }

# Runs a command inside the container, in all of its PID 1's namespaces, with a clean environment.
in_ct() {
  nsenter --target "$leader" --all -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb \
    SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 SYSTEMD_LOG_COLOR=0 "$@"
}
show() { in_ct systemctl show -P "$1" rollupd.service; }
# "ActiveState=active SubState=running ..." for messages.
state() {
  in_ct systemctl show -p ActiveState -p SubState -p Result -p MainPID -p ExecMainStatus -p NRestarts rollupd.service \
    | tr '\n' ' ' | sed 's/ $//'
}
# The journal's current end, to look only at what comes after it.
cursor() { in_ct journalctl -q -n1 -o export | sed -n 's/^__CURSOR=//p'; }
# Journal entries after a cursor that match journalctl matches, in -o verbose. journalctl 252's
# --after-cursor loses the first match when the cursor's own entry does not match, so this reads
# from the cursor (inclusive) and drops the cursor's entry itself.
entries_after() {
  local c=$1; shift
  in_ct journalctl -q --no-pager -o verbose --cursor="$c" "$@" \
    | awk -v c="[$c]" '/^[^ \t]/ { skip = index($0, c) > 0 } !skip'
}
# Just their messages, one a line.
messages_after() { entries_after "$@" | sed -n 's/^    MESSAGE=//p'; }
# The first thing systemd said went wrong with the unit after a cursor.
unit_failure() { messages_after "$1" UNIT=rollupd.service | grep -m1 -iE 'fail|error|denied|not found|no such'; }
# Waits up to $2 seconds for such an entry; prints it.
wait_entry() {
  local c=$1 limit=$2 out deadline; shift 2
  deadline=$(( $(date +%s) + limit ))
  while :; do
    out=$(entries_after "$c" "$@")
    [ -n "$out" ] && { printf '%s\n' "$out"; return 0; }
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.25
  done
}
# Waits up to $1 seconds until `systemctl show` has the given Property=value pairs.
wait_state() {
  local limit=$1 deadline pair good; shift
  deadline=$(( $(date +%s) + limit ))
  while :; do
    good=1
    for pair in "$@"; do
      [ "$(show "${pair%%=*}")" = "${pair#*=}" ] || { good=0; break; }
    done
    [ "$good" = 1 ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.25
  done
}
# What a failed check leaves for whoever reads the CI log.
diagnose() {
  note "state: $(state 2>&1)"
  note "journal (last 25 entries of rollupd.service):"
  in_ct journalctl -q --no-pager -u rollupd.service -n 25 -o short-monotonic 2>&1 | indent
}
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }
write_config() {  # poll_interval [time_zone]
  cat > "$root/etc/rollupd/rollupd.yaml" <<EOF
# written by systemd/test/nspawn.sh
database:
  url: $(yaml_quote "$test_url")
rollup:
  poll_interval: $1
  time_zone: ${2:-UTC}
log:
  level: info
EOF
  chmod 0644 "$root/etc/rollupd/rollupd.yaml"
}
# Sessions of the whole cluster whose transactions keep a pass from counting new rows.
horizon_blockers() {
  psql_admin -c "SELECT datname || ' pid ' || pid || ' xid ' || coalesce(backend_xid::text, '-') || ' xmin '
                   || coalesce(backend_xmin::text, '-') || ' for ' || (now() - xact_start)::text || ': ' || left(query, 80)
                 FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL
                 ORDER BY xact_start LIMIT 5" 2>&1
}
insert_events() {  # count
  psql_test -c "INSERT INTO events (trace_id, span_id, feature, provider, model, input_tokens, output_tokens,
                  latency_ms, estimated_cost_usd)
                SELECT 'nspawn-' || g, 'span-' || g, 'chat', 'openai', 'gpt-4o', 100, 20, 250, 0.0012
                FROM generate_series(1, $1) g"
}

# ---------------------------------------------------------------------------------------------
# Prerequisites

t=$(now)
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
if [ ${#missing[@]} -gt 0 ]; then
  note "installing ${missing[*]}"
  if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } > /tmp/rollupd-nspawn-apt.$$.log 2>&1; then
    bail prerequisites "apt-get install ${missing[*]} failed" "$(tail -n 20 /tmp/rollupd-nspawn-apt.$$.log)"
  fi
  rm -f /tmp/rollupd-nspawn-apt.$$.log
fi
case "$admin_url" in
  postgres://*|postgresql://*)
    # Replace the URI's path (the database), keep its query string.
    test_url=$(printf '%s' "$admin_url" | sed -E "s,^(postgres(ql)?://[^/?]*)(/[^?]*)?,\1/$dbname,") ;;
  *) test_url="$admin_url dbname=$dbname" ;;  # libpq: the last dbname wins
esac
psql_admin -c 'SELECT 1' >/dev/null 2>&1 || bail prerequisites "PostgreSQL is not reachable at '$admin_url' (--admin-url)"
timing prerequisites "$t"

work=$(mktemp -d /var/tmp/rollupd-nspawn.XXXXXX)
# In memory when possible (~300 MB): unpacking, dpkg and removal then do not wait for a disk that
# builds and other tests keep busy.
if mount -t tmpfs -o mode=0700,size=2g rollupd-nspawn "$work" 2>/dev/null; then work_tmpfs=1; else work_tmpfs=0; fi
root=$work/root
machine="rollupd-nspawn-$$"
note "work directory $work$([ "$work_tmpfs" = 1 ] && echo " (tmpfs)"), machine $machine, database $dbname"

# ---------------------------------------------------------------------------------------------
# The root (cached tarball, fresh copy per run) and the .deb, side by side: the first run's
# debootstrap is mostly downloading while the release build is mostly compiling.

prepare_root() {
  local t0=$EPOCHREALTIME args=(--cache "$cache") tarball
  [ -n "$mirror" ] && args+=(--mirror "$mirror")
  [ "$rebuild_cache" = 1 ] && args+=(--force)
  if [ "$rebuild_cache" = 1 ] || ! [ -s "$cache" ]; then echo "bootstrap" > "$work/root.kind"; else echo "cached" > "$work/root.kind"; fi
  tarball=$("$here/bootstrap-root.sh" "${args[@]}") || return 1
  echo "$(elapsed "$t0")" > "$work/root.bootstrap-time"
  t0=$EPOCHREALTIME
  mkdir "$root" && tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -xf "$tarball" || return 1
  echo "$(elapsed "$t0")" > "$work/root.unpack-time"
}
prepare_root > "$work/root.log" 2>&1 &
prep_pid=$!

t=$(now)
if [ -z "$deb" ]; then
  note "building the .deb with scripts/package-deb (a first release build takes minutes)"
  if ! "$repo/scripts/package-deb" > "$work/package-deb.log" 2>&1; then
    bail package "scripts/package-deb failed" "$(tail -n 30 "$work/package-deb.log")"
  fi
  deb=$(tail -n1 "$work/package-deb.log")
  [ -f "$deb" ] || bail package "scripts/package-deb did not print a .deb path (got '$deb')"
  timing "package (scripts/package-deb)" "$t"
else
  note "using $deb"
fi

if ! wait "$prep_pid"; then
  prep_pid=""
  bail root "bootstrapping or unpacking the cached root failed" "$(tail -n 30 "$work/root.log")"
fi
prep_pid=""
if [ "$(cat "$work/root.kind")" = bootstrap ]; then
  printf '# time root bootstrap (debootstrap, cache written to %s): %ss\n' "$cache" "$(cat "$work/root.bootstrap-time")"
else
  printf '# time root cache check: %ss\n' "$(cat "$work/root.bootstrap-time")"
fi
printf '# time root unpack (fresh copy of the cache): %ss\n' "$(cat "$work/root.unpack-time")"

# Per-run identity, and the package where dpkg inside can read it.
systemd-id128 new > "$root/etc/machine-id" 2>/dev/null || tr -d '-' < /proc/sys/kernel/random/uuid > "$root/etc/machine-id"
echo "$machine" > "$root/etc/hostname"
cp "$deb" "$root/root/rollupd.deb"

# ---------------------------------------------------------------------------------------------
# Boot. When PID 1 of the host is not systemd, nspawn --keep-unit splits the cgroup it runs in
# into payload/ and supervisor/; give it a cgroup of its own so runs do not share those.

if ! [ -d /run/systemd/system ]; then
  cg_name="rollupd-nspawn.$$"
  own_path() { sed -n "s|^$1:||p" /proc/self/cgroup | head -n1; }
  if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
    hier=("/sys/fs/cgroup 0:")
  else
    hier=("/sys/fs/cgroup/systemd [0-9]*:name=systemd" "/sys/fs/cgroup/unified 0:")
  fi
  for h in "${hier[@]}"; do
    mnt=${h%% *}; sel=${h#* }
    [ -d "$mnt" ] || continue
    p=$(own_path "$sel"); p=${p%/}
    if mkdir -p "$mnt$p/$cg_name" 2>/dev/null; then cgdirs+=("$mnt$p/$cg_name"); fi
  done
fi

t=$(now)
(
  for d in "${cgdirs[@]}"; do echo "$BASHPID" > "$d/cgroup.procs" 2>/dev/null; done
  exec systemd-nspawn --quiet --register=no --keep-unit --boot --directory="$root" --machine="$machine" \
    --console=read-only --link-journal=no
) > "$work/console.log" 2>&1 < /dev/null &
nspawn_pid=$!

# The leader is nspawn's child once it has become systemd.
deadline=$(( $(date +%s) + 30 ))
while :; do
  kill -0 "$nspawn_pid" 2>/dev/null || bail boot "systemd-nspawn exited" "$(tail -n 30 "$work/console.log")"
  for c in $(ps -o pid= --ppid "$nspawn_pid"); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && leader=$c
  done
  [ -n "$leader" ] && break
  [ "$(date +%s)" -ge "$deadline" ] && bail boot "no systemd in the container after 30 s" "$(tail -n 30 "$work/console.log")"
  sleep 0.1
done
# systemctl answers once PID 1 has set up its private bus; then wait for the boot to finish.
system_state=""
for _ in $(seq 1 100); do
  system_state=$(in_ct timeout 60 systemctl is-system-running --wait 2>/dev/null) && break
  case "$system_state" in running|degraded) break ;; esac
  sleep 0.2
done
case "$system_state" in
  running) ok "boot: systemd is PID 1 of the container and the system is running" ;;
  degraded)
    ok "boot: systemd is PID 1 of the container (system degraded)"
    in_ct systemctl --failed --no-legend 2>&1 | indent ;;
  *) bail boot "is-system-running says '$system_state'" "$(tail -n 30 "$work/console.log")" ;;
esac
timing boot "$t"

# ---------------------------------------------------------------------------------------------
# Install the package, configure it against the test database.

t=$(now)
db_created=1
psql_admin -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1
psql_admin -c "CREATE DATABASE $dbname" >/dev/null || bail database "cannot create database $dbname"
# The product's tables, as the app would have them before rollupd is installed.
psql_test -f "$repo/scripts/demo/app_schema.sql" >/dev/null || bail database "cannot create the product's tables in $dbname"
timing "database create" "$t"

t=$(now)
if ! out=$(in_ct dpkg -i /root/rollupd.deb 2>&1); then
  bail install "dpkg -i rollupd.deb failed in the container" "$out"
fi
write_config 200ms
mkdir -p "$root/etc/systemd/system/rollupd.service.d"
cat > "$root/etc/systemd/system/rollupd.service.d/50-nspawn-test.conf" <<'EOF'
# written by systemd/test/nspawn.sh: a quick watchdog check
[Service]
WatchdogSec=5s
EOF
in_ct systemctl daemon-reload
why=""; out=""
[ -x "$root/usr/bin/rollupd" ] || why="no /usr/bin/rollupd"
[ -z "$why" ] && [ "$(show LoadState)" != loaded ] && why="rollupd.service is $(show LoadState)"
[ -z "$why" ] && [[ "$(show DropInPaths)" != *50-nspawn-test.conf* ]] && why="the test drop-in is not loaded (DropInPaths=$(show DropInPaths))"
if [ -z "$why" ] && ! out=$(in_ct /usr/bin/rollupd check-config --config /etc/rollupd/rollupd.yaml 2>&1); then
  why="rollupd check-config failed in the container (the static binary should run without a toolchain)"
fi
[ -n "$why" ] && bail install "$why" "$out"
ok "install: dpkg -i in the container, /usr/bin/rollupd runs, unit loaded with the test drop-in"
timing install "$t"

# ---------------------------------------------------------------------------------------------
# 1. Start: Type=notify, so `systemctl start` returns once READY=1 arrived.

t=$(now)
name="start: active (running) after READY=1, StatusText starts with 'leader'"
if ! out=$(in_ct timeout 60 systemctl start rollupd.service 2>&1); then
  not_ok "$name" "systemctl start failed or timed out after 60 s ($(state))" "$out"
else
  active=$(show ActiveState); sub=$(show SubState); status=$(show StatusText)
  if [ "$active/$sub" != active/running ]; then
    not_ok "$name" "ActiveState=$active SubState=$sub"
  elif [ "$(show WatchdogUSec)" != 5s ]; then
    not_ok "$name" "WatchdogUSec=$(show WatchdogUSec), expected the test drop-in's 5s"
  elif [[ "$status" != leader* ]]; then
    not_ok "$name" "StatusText='$status'"
  else
    ok "$name"
    note "StatusText=$status"
  fi
fi
timing "check start" "$t"

# ---------------------------------------------------------------------------------------------
# 2. Structured journal entries: a pass over new rows logs ROLLUPD_* fields and a PRIORITY.

t=$(now)
name="journal: native entries with ROLLUPD_SOURCE/ROLLUPD_ADDED and PRIORITY"
c=$(cursor)
if ! insert_events 3 >/dev/null; then
  not_ok "$name" "cannot insert into events of $dbname"
elif ! entry=$(wait_entry "$c" 60 _SYSTEMD_UNIT=rollupd.service ROLLUPD_SOURCE=events ROLLUPD_ADDED=3); then
  not_ok "$name" "no entry with ROLLUPD_SOURCE=events ROLLUPD_ADDED=3 within 60 s of inserting 3 rows"
  note "transactions that hold back the horizon (a pass counts rows only below the oldest running xid of the cluster):"
  horizon_blockers | indent
else
  why=""
  for field in 'PRIORITY=6' 'MESSAGE=rolled up events' 'SYSLOG_IDENTIFIER=rollupd' 'ROLLUPD_BUCKETS=' 'ROLLUPD_TOOK_MS='; do
    grep -q "^    $field" <<< "$entry" || why+="${why:+, }no $field"
  done
  if [ -n "$why" ]; then
    not_ok "$name" "$why" "$entry"
  else
    ok "$name"
    grep -E '^    (MESSAGE|PRIORITY|ROLLUPD_[A-Z_]+)=' <<< "$entry" | indent
  fi
fi
timing "check journal" "$t"

# ---------------------------------------------------------------------------------------------
# 3. Watchdog: a stopped main process stops pinging; systemd kills and restarts it.

t=$(now)
name="watchdog: SIGSTOPped main process is killed and restarted"
pid0=$(show MainPID); restarts0=$(show NRestarts); c=$(cursor)
if [ -z "$pid0" ] || [ "$pid0" = 0 ]; then
  not_ok "$name" "no MainPID to stop ($(state))"
else
  in_ct /bin/sh -c "kill -STOP $pid0"
  t_stop=$(now)
  deadline=$(( $(date +%s) + 30 ))
  while :; do
    pid=$(show MainPID); restarts=$(show NRestarts); active=$(show ActiveState); sub=$(show SubState)
    [ "$restarts" -gt "$restarts0" ] && [ "$pid" != 0 ] && [ "$pid" != "$pid0" ] \
      && [ "$active/$sub" = active/running ] && break
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.25
  done
  took=$(elapsed "$t_stop")
  in_ct /bin/sh -c "kill -CONT $pid0 2>/dev/null"  # in case systemd did not act, do not leave it stopped
  if ! [ "$restarts" -gt "$restarts0" ] || [ "$pid" = "$pid0" ] || [ "$active/$sub" != active/running ]; then
    not_ok "$name" "after 30 s: NRestarts $restarts0 -> $restarts, MainPID $pid0 -> $pid, $active/$sub"
  elif ! messages_after "$c" _PID=1 UNIT=rollupd.service | grep -q 'Watchdog timeout'; then
    not_ok "$name" "restarted, but systemd logged no 'Watchdog timeout' for rollupd.service"
  elif awk -v s="$took" 'BEGIN { exit !(s > 20) }'; then
    not_ok "$name" "took ${took}s from SIGSTOP to running again (expected ~10 s: WatchdogSec=5s + RestartSec=5s)"
  else
    ok "$name"
    note "NRestarts $restarts0 -> $restarts, MainPID $pid0 -> $pid, active again ${took}s after SIGSTOP"
    messages_after "$c" _PID=1 UNIT=rollupd.service | indent
  fi
fi
timing "check watchdog" "$t"

# ---------------------------------------------------------------------------------------------
# 4. Reload: a valid change applies; an invalid file is refused and the old configuration stays.

t=$(now)
name="reload: new poll_interval applied (configuration reloaded)"
c=$(cursor); pid0=$(show MainPID)
write_config 300ms
if ! out=$(in_ct timeout 30 systemctl reload rollupd.service 2>&1); then
  not_ok "$name" "systemctl reload failed: $(unit_failure "$c")" "$out"
elif ! entry=$(wait_entry "$c" 10 _SYSTEMD_UNIT=rollupd.service "MESSAGE=configuration reloaded"); then
  not_ok "$name" "no 'configuration reloaded' in the journal within 10 s"
elif ! grep -q '^    ROLLUPD_POLL_INTERVAL=300ms$' <<< "$entry"; then
  not_ok "$name" "'configuration reloaded' without ROLLUPD_POLL_INTERVAL=300ms" "$entry"
elif ! wait_state 10 ActiveState=active SubState=running || [ "$(show MainPID)" != "$pid0" ]; then
  not_ok "$name" "not active (running) with the same MainPID $pid0 after the reload ($(state))"
else
  ok "$name"
  grep -E '^    (MESSAGE|ROLLUPD_[A-Z_]+)=' <<< "$entry" | indent
fi

name="reload: invalid value refused, service keeps running with the old configuration"
c=$(cursor)
write_config soon
if ! out=$(in_ct timeout 30 systemctl reload rollupd.service 2>&1); then
  not_ok "$name" "systemctl reload failed: $(unit_failure "$c")" "$out"
elif ! entry=$(wait_entry "$c" 10 _SYSTEMD_UNIT=rollupd.service PRIORITY=3); then
  not_ok "$name" "no error entry in the journal within 10 s"
elif ! grep -q '^    MESSAGE=reload refused' <<< "$entry"; then
  not_ok "$name" "the error entry is not 'reload refused ...'" "$entry"
elif entries_after "$c" _SYSTEMD_UNIT=rollupd.service "MESSAGE=configuration reloaded" | grep -q .; then
  not_ok "$name" "the invalid file was applied"
elif ! wait_state 10 ActiveState=active SubState=running || [ "$(show MainPID)" != "$pid0" ]; then
  not_ok "$name" "not active (running) with the same MainPID $pid0 ($(state))"
else
  # Still passing: each pass rewrites STATUS= ("leader; last pass HH:MM:SS ...").
  status0=$(show StatusText); status=$status0
  for _ in $(seq 1 40); do
    status=$(show StatusText)
    [ "$status" != "$status0" ] && break
    sleep 0.25
  done
  if [ "$status" = "$status0" ] || [[ "$status" != leader* ]]; then
    not_ok "$name" "StatusText did not move on from '$status0' within 10 s: no passes after the refused reload"
  else
    ok "$name"
    grep -E '^    MESSAGE=' <<< "$entry" | indent
    note "StatusText=$status"
  fi
fi
write_config 200ms
timing "check reload" "$t"

# ---------------------------------------------------------------------------------------------
# 5. Bad configuration: exit 78, and RestartPreventExitStatus=78 means no restart loop.

t=$(now)
name="bad config: restart ends failed with ExecMainStatus=78 and no restart loop"
c=$(cursor)
write_config 200ms Mars/Olympus
in_ct timeout 60 systemctl restart rollupd.service >/dev/null 2>&1
restart_rc=$?
if ! wait_state 15 ActiveState=failed; then
  not_ok "$name" "not failed 15 s after the restart ($(state); systemctl restart exited $restart_rc)"
else
  status=$(show ExecMainStatus); restarts_a=$(show NRestarts)
  sleep 10
  restarts_b=$(show NRestarts); active=$(show ActiveState)
  if [ "$status" != 78 ]; then
    not_ok "$name" "ExecMainStatus=$status"
  elif [ "$restarts_b" != "$restarts_a" ] || [ "$active" != failed ]; then
    not_ok "$name" "NRestarts $restarts_a -> $restarts_b and ActiveState=$active 10 s later: a restart loop"
  elif [ "$restart_rc" = 0 ]; then
    not_ok "$name" "systemctl restart exited 0 although the start failed"
  elif ! messages_after "$c" _SYSTEMD_UNIT=rollupd.service | grep -q 'rollup.time_zone'; then
    not_ok "$name" "the journal does not name the bad key rollup.time_zone"
  else
    ok "$name"
    note "ExecMainStatus=78, NRestarts stayed $restarts_a for 10 s, systemctl restart exited $restart_rc"
    messages_after "$c" _SYSTEMD_UNIT=rollupd.service | indent
  fi
fi

name="bad config: after fixing it, reset-failed and start bring it back"
write_config 200ms
in_ct systemctl reset-failed rollupd.service
if ! out=$(in_ct timeout 60 systemctl start rollupd.service 2>&1); then
  not_ok "$name" "systemctl start failed ($(state))" "$out"
elif ! wait_state 10 ActiveState=active SubState=running; then
  not_ok "$name" "$(state)"
else
  ok "$name"
fi
timing "check bad config" "$t"

# ---------------------------------------------------------------------------------------------
# 6. Stop: SIGTERM, the pass finishes, exit 0, "stopped" in the journal.

t=$(now)
name="stop: inactive, ExecMainStatus=0, 'stopped' in the journal"
c=$(cursor); pid0=$(show MainPID)
if ! out=$(in_ct timeout 60 systemctl stop rollupd.service 2>&1); then
  not_ok "$name" "systemctl stop failed ($(state))" "$out"
else
  active=$(show ActiveState); result=$(show Result); status=$(show ExecMainStatus)
  if [ "$active" != inactive ] || [ "$status" != 0 ] || [ "$result" != success ]; then
    not_ok "$name" "ActiveState=$active Result=$result ExecMainStatus=$status"
  elif wait_entry "$c" 5 _SYSTEMD_UNIT=rollupd.service MESSAGE=stopped >/dev/null; then
    ok "$name"
  elif wait_entry "$c" 1 SYSLOG_IDENTIFIER=rollupd "_PID=$pid0" MESSAGE=stopped >/dev/null; then
    not_ok "$name" "'stopped' is in the journal but not attributed to the unit (journalctl -u rollupd misses it)"
  else
    not_ok "$name" "no 'stopped' entry in the journal"
  fi
fi
timing "check stop" "$t"

# ---------------------------------------------------------------------------------------------
# 7. systemd-analyze on the installed unit, next to the binary it names.

t=$(now)
name="systemd-analyze verify rollupd.service: nothing about rollupd.service"
out=$(in_ct systemd-analyze verify rollupd.service 2>&1); rc=$?
bad=$(grep -i 'rollupd' <<< "$out")
if [ -n "$bad" ]; then
  not_ok "$name" "$(wc -l <<< "$bad") line(s) about rollupd (exit $rc)" "$bad"
else
  ok "$name"
  [ -n "$out" ] && { note "other output (exit $rc):"; printf '%s\n' "$out" | indent; }
fi

name="systemd-analyze security rollupd.service: exposure 1.5 or lower"
out=$(in_ct systemd-analyze security --no-pager rollupd.service 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for rollupd\.service: \([0-9.]*\).*/\1/p' <<< "$out")
offline=$(in_ct systemd-analyze security --no-pager --offline=true /lib/systemd/system/rollupd.service 2>&1 \
  | sed -n 's/.*Overall exposure level for rollupd\.service: \([0-9.]*\).*/\1/p')
if [ -z "$exposure" ]; then
  not_ok "$name" "no overall exposure level in the output" "$(tail -n 20 <<< "$out")"
elif awk -v e="$exposure" 'BEGIN { exit !(e > 1.5) }'; then
  not_ok "$name" "exposure $exposure" "$(grep -E '^✗' <<< "$out")"
else
  ok "$name"
  note "exposure $exposure (loaded unit with drop-ins), ${offline:-?} (offline, the shipped file)"
fi
timing "check systemd-analyze" "$t"
exit 0
