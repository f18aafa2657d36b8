#!/bin/sh
# Instructions per publish on a real 3-node cluster: the three nodes of an
# `icroot dev` configuration run under valgrind's callgrind, the cluster
# benchmark's generator publishes for a window, and the instructions the
# three nodes executed in that window are divided by the publishes
# answered (docs/benchmarks-cluster.md, "Session 8").
#
#   bench/cluster/callgrind-cluster.sh [CLIENTS [SECONDS]]   # 32 20
#
# Unlike the cluster benchmark's rates, which move by 20-40 % from one run
# to the next on a shared 2-core machine, the count is close to
# repeatable (the batching still depends on timing: compare builds at the
# same CLIENTS). It counts a `rep movsb`/`rep stosb` copy per byte, so it
# overstates LMDB's page copies; check a change with the cluster
# benchmark too. The nodes run 30-50 times slower: their configurations
# get an election timeout of 3 s and a heartbeat of 100 ms.
#
# Environment:
#   BENCH_BUILD      build directory (default build/ at the top)
#   BENCH_DIR        scratch space (default /tmp/icroot-callgrind)
#   BENCH_BASE_PORT  first port of the cluster (default 43000)
#   BENCH_KEEP=1     keep the callgrind.out files (callgrind_annotate)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-$top/build}
work=${BENCH_DIR:-/tmp/icroot-callgrind}
base=${BENCH_BASE_PORT:-43000}
clients=${1:-32}
secs=${2:-20}
password=callgrind-bench-pw

for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing" >&2; exit 1; }
done
for exe in icroot icrootctl icroot-cluster-bench; do
    [ -x "$build/$exe" ] || { echo "$0: $build/$exe is missing" >&2; exit 1; }
done

pids=
gen_pid=
cleanup() {
    for p in $pids $gen_pid; do kill "$p" 2>/dev/null || true; done
    for p in $pids $gen_pid; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The configurations, certificates and accounts of `icroot dev`.
rm -rf "$work"
mkdir -p "$work"
"$build/icroot" dev --nodes 3 --dir "$work/d" --base-port "$base" \
    >"$work/dev.log" 2>&1 &
dev=$!
i=0
until [ -s "$work/d/cluster.json" ]; do
    i=$((i + 1))
    if [ $i -ge 300 ] || ! kill -0 "$dev" 2>/dev/null; then
        echo "$0: icroot dev did not start ($work/dev.log)" >&2
        exit 1
    fi
    sleep 0.1
done
kill -INT "$dev" 2>/dev/null || true
wait "$dev" 2>/dev/null || true
for n in 1 2 3; do
    sed -i 's/^election_timeout = .*/election_timeout = 3000/;
            s/^heartbeat = .*/heartbeat = 100/' "$work/d/node$n.conf"
    rm -rf "$work/d/node$n"
    mkdir -m 700 "$work/d/node$n"
done

# LMDB's default 64 GiB map is more than valgrind will map.
for n in 1 2 3; do
    ICROOT_MAP_SIZE=4294967296 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$work/callgrind.out.node$n" \
        "$build/icroot" run --config "$work/d/node$n.conf" \
        >"$work/node$n.log" 2>&1 &
    pids="$pids $!"
done
ctl() { "$build/icrootctl" --cluster "$work/d/cluster.json" "$@"; }
has_leader() {
    for n in 1 2 3; do
        [ "$(ctl --node $n status 2>/dev/null |
            awk '$1 == "raft.state" {print $2}')" = leader ] && return 0
    done
    return 1
}
i=0
until has_leader; do
    i=$((i + 1))
    [ $i -lt 120 ] || { echo "$0: no leader after 60 s" >&2; exit 1; }
    sleep 0.5
done

gen="$build/icroot-cluster-bench --cluster $work/d/cluster.json"
$gen --mode create --clients "$clients" --password "$password" \
    >"$work/create.txt" 2>&1
sleep 3 # the followers learn the accounts' commit
$gen --mode publish --clients "$clients" --password "$password" \
    --duration "$secs" --warmup 3 \
    --pids "$(echo "$pids" | sed 's/^ //; s/ /,/g')" >"$work/publish.json" \
    2>"$work/publish.err" &
gen_pid=$!
until grep -q running "$work/publish.err" 2>/dev/null; do
    kill -0 "$gen_pid" 2>/dev/null ||
        { echo "$0: the generator failed ($work/publish.err)" >&2; exit 1; }
    sleep 0.1
done
sleep 3 # its warm-up
for p in $pids; do callgrind_control -i on "$p" >/dev/null 2>&1; done
wait "$gen_pid"
gen_pid=
for p in $pids; do
    callgrind_control -i off "$p" >/dev/null 2>&1
    callgrind_control -d "$p" >/dev/null 2>&1
done
sleep 1
cleanup
pids=

# The window's answers, plus the requests still out when it closed (one
# per client at most), which the nodes also worked on.
# shellcheck disable=SC2046 # three words
set -- $(python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(d["ops"] + d["clients"], d["errors"], d["rate"])' "$work/publish.json")
ops=$1
total=0
for n in 1 2 3; do
    # the dump of the window (the biggest; the one at exit is empty)
    # shellcheck disable=SC2012
    f=$(ls -S "$work"/callgrind.out.node$n* | head -1)
    ir=$(callgrind_annotate "$f" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    echo "node$n: $((ir / ops)) instructions per publish"
    total=$((total + ir))
done
echo "cluster: $((total / ops)) instructions per publish" \
    "($ops publishes, $2 errors, $3/s under valgrind, $clients clients)"
[ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$work"/callgrind.out.*
