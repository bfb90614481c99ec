# bench/cpu.sh — CPU readings, sourced by bench/lib.sh and bench/catchup.sh (not run; smoke.sh
# skips it). Needs psql_admin. A reading that cannot be taken is "null", and so is any
# difference or ratio made from one.

# Server CPU: when the server runs on this machine (its postmaster.pid is readable), the CPU time
# of the whole cluster in ms: the postmaster with every child it has reaped, plus its live children
# (backends, parallel workers, autovacuum, WAL writer, ...). Unlike wall time it barely moves when
# other processes compete for the cores; it is exact only when nothing else uses the cluster.
PM_PID=""
find_postmaster() {
    local dir port pidfile
    dir=$(psql_admin -c 'SHOW data_directory') port=$(psql_admin -c 'SHOW port')
    pidfile="$dir/postmaster.pid"
    [[ -r $pidfile ]] || return 0
    mapfile -t lines <"$pidfile"
    if [[ ${lines[1]-} == "$dir" && ${lines[3]-} == "$port" && $(cat "/proc/${lines[0]}/comm" 2>/dev/null) == postgres ]]; then
        PM_PID=${lines[0]}
    fi
}
cluster_cpu_ms() {
    [[ -n $PM_PID ]] || { echo null; return 0; }
    local try out
    # The postmaster's stat is read before and after its children's: when it reaped a child in
    # between (its children's total changed), that child may be counted twice or not at all: retry.
    for ((try = 0; try < 20; try++)); do
        out=$({ cat "/proc/$PM_PID/stat" /proc/[0-9]*/stat "/proc/$PM_PID/stat" 2>/dev/null || true; } |
            awk -v pm="$PM_PID" -v hz="$(getconf CLK_TCK)" '{
                line = $0; sub(/^.*\) /, "", line); split(line, f, " ")   # f[n] is field n + 2 of proc(5)
                if ($1 == pm) { seen++; reaped = f[14] + f[15]; if (seen == 1) first = reaped; own = f[12] + f[13] }
                else if (f[2] == pm) live += f[12] + f[13]
            } END { if (seen < 2 || first != reaped) print "retry"; else printf "%.0f", (own + reaped + live) * 1000 / hz }')
        if [[ $out != retry ]]; then
            echo "$out"
            return 0
        fi
    done
    echo null
}
# CPU ms (utime + stime) of the given pids, summed; pids that are gone count 0.
pids_cpu_ms() {
    local p sum=0 hz v
    hz=$(getconf CLK_TCK)
    for p in "$@"; do
        v=$(awk '{ line = $0; sub(/^.*\) /, "", line); split(line, f, " "); print f[12] + f[13] }' "/proc/$p/stat" 2>/dev/null || echo 0)
        sum=$((sum + v))
    done
    echo $((sum * 1000 / hz))
}
cpu_diff() { [[ $1 != null && $2 != null ]] && echo $(($2 - $1)) || echo null; }
