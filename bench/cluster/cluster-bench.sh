#!/bin/sh
# The cluster benchmark (docs/benchmarks-cluster.md): catalog publishes on a
# 3-node `icroot dev` cluster side by side with puts of the same size on a
# 3-member etcd cluster (Debian's etcd-server 3.4), at several
# concurrencies, in the same run; then the seed query on icroot's leader
# and on a follower. Prints a markdown table with the ratios.
#
#   bench/cluster/cluster-bench.sh
#
# Environment:
#   BENCH_DIR           scratch space (default /tmp/icroot-cluster-bench)
#   BENCH_BUILD         build directory with icroot (default build/ at the
#                       top; configured RelWithDebInfo there when missing)
#   BENCH_DURATION      measured seconds per case (10)
#   BENCH_WARMUP        seconds of load before the window opens (2)
#   BENCH_CONCURRENCY   publish clients per level ("1 64 1000")
#   BENCH_QUERY_CLIENTS clients of the query cases (64)
#   BENCH_REPEAT        runs of every case; the table shows medians (1)
#   BENCH_ROLES=0       at concurrency 1, no extra cases with the client
#                       on the leader and on a follower (of both systems)
#   BENCH_ETCD=0        icroot only
#   BENCH_ETCD_PROTO    how etcd-bench puts: grpc (etcd's own KV/Put over
#                       HTTP/2, what etcd's clients use; default) or json
#                       (its HTTP/1.1 JSON gateway, which costs etcd more)
#   BENCH_ETCD_TLS=1    etcd with TLS as icroot has it (clients: server
#                       certificate, ALPN h2; members: mutual TLS), an
#                       RSA-2048 certificate of a CA made here, as icroot
#                       dev's; grpc only
#   BENCH_QUERY=0       no query cases
#   BENCH_PRESENCE=0    no presence case (100 publishers on one node, 100
#                       watchers on another; BENCH_PRESENCE_RATES changes
#                       per publisher per second, "10 50")
#
# Every level starts both systems afresh (new data directories), icroot
# first on odd repeats and etcd first on even ones. Never touches a system
# etcd service: its own data directories and ports under BENCH_DIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${BENCH_DIR:-/tmp/icroot-cluster-bench}
build=${BENCH_BUILD:-$top/build}
dur=${BENCH_DURATION:-10}
warm=${BENCH_WARMUP:-2}
levels=${BENCH_CONCURRENCY:-1 64 1000}
qclients=${BENCH_QUERY_CLIENTS:-64}
repeat=${BENCH_REPEAT:-1}
with_etcd=${BENCH_ETCD:-1}
etcd_proto=${BENCH_ETCD_PROTO:-grpc}
etcd_tls=${BENCH_ETCD_TLS:-0}
with_query=${BENCH_QUERY:-1}
with_presence=${BENCH_PRESENCE:-1}
presence_rates=${BENCH_PRESENCE_RATES:-10 50}
with_roles=${BENCH_ROLES:-1}
kprefix=/icroot-bench/bench

mkdir -p "$work" "$work/logs"
results="$work/results.jsonl"
checks="$work/checks.txt"
presence="$work/presence.jsonl"
: >"$results"
: >"$presence"
: >"$checks"
dev_pid='' etcd_pids=''

say() { printf '%s\n' "$*" >&2; }

icroot_stop() {
    [ -z "$dev_pid" ] || {
        kill -INT "$dev_pid" 2>/dev/null || true
        wait "$dev_pid" 2>/dev/null || true
    }
    dev_pid=
}
etcd_stop() {
    for p in $etcd_pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $etcd_pids; do wait "$p" 2>/dev/null || true; done
    etcd_pids=
}
cleanup() {
    icroot_stop
    etcd_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC3045 # ulimit -n: in dash, bash, busybox
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- programs ----
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
need=
for t in icroot icrootctl; do [ -x "$build/$t" ] || need="$need $t"; done
# stale: missing, or older than one of its sources
stale() { # PROGRAM SOURCE...
    p=$1
    shift
    [ -x "$p" ] || return 0
    for f in "$@"; do [ -z "$(find "$here/$f" -newer "$p")" ] || return 0; done
    return 1
}
! stale "$build/icroot-cluster-bench" icroot-cluster-bench.c stats.c \
    report.c cbench.h || need="$need icroot-cluster-bench"
! stale "$build/etcd-bench" etcd-bench.c stats.c cbench.h ||
    need="$need etcd-bench"
! stale "$build/icroot-presence-bench" presence-bench.c icluster.c stats.c \
    report.c cbench.h || need="$need icroot-presence-bench"
if [ -n "$need" ]; then
    say "building$need in $build"
    # shellcheck disable=SC2086 # $need: several targets
    for t in $need; do cmake --build "$build" -j "$(nproc)" --target "$t" >/dev/null; done
fi
gen="$build/icroot-cluster-bench"
ebench="$build/etcd-bench"
pbench="$build/icroot-presence-bench"
if [ "$with_etcd" = 1 ] && ! command -v etcd >/dev/null; then
    say "etcd not found: run scripts/install-deps.sh (Debian's etcd-server, etcd-client)"
    exit 1
fi

# ---- ports: a base P with P..P+29 (3 nodes) and P+100..P+105 (etcd)
# free, below the ephemeral range ----
used=$(ss -Htln | awk '{print $4}' | sed 's/.*://' | sort -u)
port_free() { ! printf '%s\n' "$used" | grep -qx "$1"; }
base=
for p in 21000 22000 23000 24000 25000 26000 27000 28000 29000 30000 31000; do
    ok=1
    for q in $(seq 0 29) 100 101 102 103 104 105; do
        port_free $((p + q)) || { ok=0; break; }
    done
    [ $ok = 0 ] || { base=$p; break; }
done
[ -n "$base" ] || { say "no free port range"; exit 1; }

[ -s "$work/password" ] || od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$work/password"
password=$(cat "$work/password")
"$gen" --print-payload "$work/payload.xml" 2>/dev/null

# ---- icroot: a fresh 3-node cluster ----
idir="$work/icroot"
ctl() { "$build/icrootctl" --cluster "$idir/cluster.json" "$@"; }
raft_state() { ctl --node "$1" status 2>/dev/null | awk '$1 == "raft.state" {print $2}'; }
icroot_start() { # ACCOUNTS
    rm -rf "$idir"
    "$build/icroot" dev --nodes 3 --dir "$idir" --base-port "$base" \
        >>"$work/icroot-dev.log" 2>&1 &
    dev_pid=$!
    i=0
    while [ ! -s "$idir/cluster.json" ]; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$dev_pid" 2>/dev/null; then
            say "icroot dev did not start (see $work/icroot-dev.log)"
            exit 1
        fi
        sleep 0.1
    done
    i=0
    until [ "$(raft_state 1)" = leader ] || [ "$(raft_state 2)" = leader ] ||
        [ "$(raft_state 3)" = leader ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { say "icroot: no Raft leader after 20 s"; exit 1; }
        sleep 0.2
    done
    "$gen" --cluster "$idir/cluster.json" --mode create --clients "$1" \
        --password "$password"
    icroot_settle
}
# Waits until every node has applied as far as the others (at most 10 s):
# add_account is answered once the node the admin uses has applied it, and
# a follower applies a committed entry only when the leader next tells it
# the commit index, so a login on a follower right away may fail.
icroot_settle() {
    t0=$(date +%s%N)
    i=0
    while :; do
        idx=$(for sn in 1 2 3; do ctl --node "$sn" status 2>/dev/null |
            awk '$1 == "appliedIndex" {print $2}'; done | sort -u)
        [ "$(echo "$idx" | wc -l)" != 1 ] || break
        i=$((i + 1))
        [ $i -lt 100 ] || { say "icroot: nodes still apart after 10 s: $idx"; break; }
        sleep 0.1
    done
    echo "accounts: nodes in step after $((($(date +%s%N) - t0) / 1000000)) ms (applied index $(echo "$idx" | tr '\n' ' '))" >>"$checks"
}
icroot_keep_logs() { # CASE: the nodes' logs, one directory per repeat
    mkdir -p "$work/logs/$1.r$r"
    cp "$idir"/node*.log "$work/logs/$1.r$r/" 2>/dev/null || true
}
# The machine's pressure stall totals (us; /proc/pressure, when the kernel
# has it): cpu some, io some, io full.
psi_totals() {
    for f in cpu:some io:some io:full; do
        awk -v k="${f#*:}" '$1 == k {sub("total=", "", $5); print $5}' \
            "/proc/pressure/${f%%:*}" 2>/dev/null || echo 0
    done | tr '\n' ' '
}
icroot_check() { # CASE: the nodes agree (applied index, digest)
    for cn in 1 2 3; do
        printf '%s icroot node%s: %s\n' "$1" "$cn" "$(ctl --node "$cn" status 2>&1 |
            awk '$1 ~ /^(graphs|appliedIndex|digest|raft.state)$/ {printf "%s=%s ", $1, $2}')"
    done >>"$checks"
}

# ---- etcd: a fresh 3-member cluster ----
edir="$work/etcd"
eps="127.0.0.1:$((base + 100)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 104))"
case $etcd_tls in
0) etcd_modes=clear ;;
1) etcd_modes=tls ;;
both) etcd_modes="clear tls" ;;
*) say "BENCH_ETCD_TLS: 0, 1 or both"; exit 2 ;;
esac
tdir="$work/etcd-tls"
if [ "$etcd_tls" != 0 ]; then
    [ "$etcd_proto" = grpc ] || { say "BENCH_ETCD_TLS=$etcd_tls wants BENCH_ETCD_PROTO=grpc"; exit 2; }
    mkdir -p "$tdir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tdir/ca.key" -out "$tdir/ca.crt" \
        -days 2 -subj "/CN=icroot bench etcd CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$tdir/etcd.key" -out "$tdir/etcd.csr" \
        -subj "/CN=etcd" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tdir/ext.cnf"
    openssl x509 -req -in "$tdir/etcd.csr" -CA "$tdir/ca.crt" -CAkey "$tdir/ca.key" \
        -CAcreateserial -out "$tdir/etcd.crt" -days 2 -extfile "$tdir/ext.cnf" 2>/dev/null
fi
# etcd_mode clear|tls: how the next etcd_start runs etcd and how etcdctl
# and etcd-bench reach it; etcd-bench names the server in its output
# (etcd, etcd-tls) and the report pairs both with icroot's case
etcd_mode() {
    scheme=http etls='' ebench_ca='' elabel=etcd
    unset ETCDCTL_CACERT
    [ "$1" = tls ] || return 0
    scheme=https
    etls="--cert-file $tdir/etcd.crt --key-file $tdir/etcd.key --peer-cert-file $tdir/etcd.crt --peer-key-file $tdir/etcd.key --peer-trusted-ca-file $tdir/ca.crt --peer-client-cert-auth"
    ebench_ca="$tdir/ca.crt" elabel=etcd-tls
    export ETCDCTL_CACERT="$tdir/ca.crt"
}
etcd_start() {
    rm -rf "$edir"
    mkdir -p "$edir"
    ic="e1=$scheme://127.0.0.1:$((base + 101)),e2=$scheme://127.0.0.1:$((base + 103)),e3=$scheme://127.0.0.1:$((base + 105))"
    for i in 1 2 3; do
        cp=$((base + 100 + 2 * (i - 1)))
        pp=$((cp + 1))
        # shellcheck disable=SC2086 # $etls: several words
        etcd --name "e$i" --data-dir "$edir/e$i" \
            --listen-client-urls "$scheme://127.0.0.1:$cp" \
            --advertise-client-urls "$scheme://127.0.0.1:$cp" \
            --listen-peer-urls "$scheme://127.0.0.1:$pp" \
            --initial-advertise-peer-urls "$scheme://127.0.0.1:$pp" \
            --initial-cluster "$ic" --initial-cluster-state new \
            --initial-cluster-token icroot-bench $etls >"$edir/e$i.log" 2>&1 &
        etcd_pids="$etcd_pids $!"
    done
    i=0
    until ETCDCTL_API=3 etcdctl --endpoints "$eps" endpoint health >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 150 ] || { say "etcd did not start (see $edir/e*.log)"; exit 1; }
        sleep 0.2
    done
}
etcd_check() { # CASE: keys written, revision per member
    printf '%s %s: %s keys under %s; %s\n' "$1" "$elabel" \
        "$(ETCDCTL_API=3 etcdctl --endpoints "$eps" get --prefix "$kprefix" --keys-only --limit 1 -w fields 2>/dev/null |
            awk '/"Count"/ {print $3}')" "$kprefix" \
        "$(ETCDCTL_API=3 etcdctl --endpoints "$eps" endpoint status -w fields 2>/dev/null |
            awk '/"Revision"/ {printf "revision=%s ", $3} /"RaftAppliedIndex"/ {printf "applied=%s ", $3}')" \
        >>"$checks"
}

# Which node leads (L) or follows (F): "L 2", "F 1", "F 3".
icroot_roles() {
    for rn in 1 2 3; do
        case $(raft_state "$rn") in
        leader) echo "L $rn" ;;
        follower) echo "F $rn" ;;
        esac
    done
}
etcd_roles() {
    ETCDCTL_API=3 etcdctl --endpoints "$eps" endpoint status -w fields 2>/dev/null |
        awk '/"MemberID"/ {m = $3} /"Leader"/ {l = $3}
             /"Endpoint"/ {gsub(/"/, "", $3); print (m == l ? "L" : "F"), $3}'
}

# ---- the cases ----
limit=$((warm + dur + 240))
icroot_publish() { # N CASE [NODE]
    say "$2 on icroot ..."
    timeout "$limit" "$gen" --cluster "$idir/cluster.json" --mode publish \
        --clients "$1" --password "$password" --duration "$dur" \
        --warmup "$warm" --case "$2" ${3:+--node "$3"} >>"$results" ||
        say "$2 on icroot: failed"
    tail -1 "$results" | cut -c1-400 >&2
}
etcd_put() { # N CASE ENDPOINTS
    # shellcheck disable=SC2086 # $etcd_pids: several words
    pids=$(echo $etcd_pids | tr ' ' ',')
    say "$2 on $elabel ..."
    timeout "$limit" "$ebench" --endpoints "$3" --value-file "$work/payload.xml" \
        --clients "$1" --duration "$dur" --warmup "$warm" --case "$2" \
        --proto "$etcd_proto" ${ebench_ca:+--tls-ca "$ebench_ca"} --label "$elabel" \
        --key-prefix "$kprefix" --pids "$pids" >>"$results" || say "$2 on $elabel: failed"
    tail -1 "$results" | cut -c1-400 >&2
}
publish_icroot() { # N CASE
    icroot_start "$1"
    icroot_publish "$1" "$2"
    if [ "$1" = 1 ] && [ "$with_roles" = 1 ]; then
        roles=$(icroot_roles)
        echo "$2 icroot roles: $roles" | tr '\n' ' ' >>"$checks"
        echo >>"$checks"
        icroot_publish 1 "$2-leader" "$(echo "$roles" | awk '$1 == "L" {print $2; exit}')"
        icroot_publish 1 "$2-follower" "$(echo "$roles" | awk '$1 == "F" {print $2; exit}')"
    fi
    icroot_check "$2"
    icroot_keep_logs "$2"
    icroot_stop
}
publish_etcd() { # N CASE MODE
    etcd_mode "$3"
    etcd_start
    etcd_put "$1" "$2" "$eps"
    if [ "$1" = 1 ] && [ "$with_roles" = 1 ]; then
        roles=$(etcd_roles)
        echo "$2 $elabel roles: $roles" | tr '\n' ' ' >>"$checks"
        echo >>"$checks"
        etcd_put 1 "$2-leader" "$(echo "$roles" | awk '$1 == "L" {print $2; exit}')"
        etcd_put 1 "$2-follower" "$(echo "$roles" | awk '$1 == "F" {print $2; exit}')"
    fi
    etcd_check "$2"
    etcd_stop
}

r=1
while [ $r -le "$repeat" ]; do
    for n in $levels; do
        # odd repeats: icroot, then etcd's modes; even ones the reverse
        modes=$etcd_modes
        [ $((r % 2)) = 1 ] || modes=$(echo "$etcd_modes" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')
        [ $((r % 2)) = 0 ] || publish_icroot "$n" "publish-$n"
        if [ "$with_etcd" = 1 ]; then
            for m in $modes; do publish_etcd "$n" "publish-$n" "$m"; done
        fi
        [ $((r % 2)) = 1 ] || publish_icroot "$n" "publish-$n"
    done
    if [ "$with_query" = 1 ]; then
        icroot_start "$qclients"
        leader='' follower=''
        for qn in 1 2 3; do
            s=$(raft_state "$qn")
            [ "$s" != leader ] || leader=$qn
            [ "$s" != follower ] || [ -n "$follower" ] || follower=$qn
        done
        say "query: leader node $leader, follower node $follower"
        order="leader follower"
        [ $((r % 2)) = 1 ] || order="follower leader"
        for role in $order; do
            node=$leader
            [ "$role" = leader ] || node=$follower
            say "query-$role (node $node) ..."
            timeout "$limit" "$gen" --cluster "$idir/cluster.json" --mode query \
                --node "$node" --clients "$qclients" --password "$password" \
                --duration "$dur" --warmup "$warm" --case "query-$role" \
                >>"$results" || say "query-$role: failed"
            tail -1 "$results" | cut -c1-400 >&2
        done
        icroot_check query
        icroot_keep_logs query
        icroot_stop
    fi
    if [ "$with_presence" = 1 ]; then
        icroot_start 200
        # the worst placement: publishers and watchers on the two
        # followers (each batch forwarded to the leader; the watchers'
        # node applies it once the leader's commit index reaches it)
        pub='' watch=''
        for qn in 1 2 3; do
            [ "$(raft_state "$qn")" = follower ] || continue
            if [ -z "$pub" ]; then pub=$qn; elif [ -z "$watch" ]; then watch=$qn; fi
        done
        [ -n "$watch" ] || { pub=1 watch=2; }
        for rate in $presence_rates; do
            say "presence: 100 pairs x $rate changes/s (node $pub -> node $watch, followers) ..."
            p0=$(psi_totals)
            timeout "$limit" "$pbench" --cluster "$idir/cluster.json" \
                --password "$password" --pairs 100 --rate "$rate" \
                --pub-node "$pub" --watch-node "$watch" --duration "$dur" \
                --warmup "$warm" >>"$presence" ||
                say "presence-$rate: failed"
            # shellcheck disable=SC2086,SC2046 # word lists
            echo $p0 $(psi_totals) | awk -v c="presence-$rate (repeat $r, node $pub -> node $watch)" \
                '{printf "%s: the machine stalled (/proc/pressure) cpu some %.0f ms, io some %.0f ms, io full %.0f ms\n", c, ($4-$1)/1000, ($5-$2)/1000, ($6-$3)/1000}' >>"$checks"
        done
        icroot_keep_logs presence
        icroot_stop
    fi
    r=$((r + 1))
done

# How etcd-bench reached etcd, for the report's header.
etcd_transport() {
    tls="over TLS (RSA-2048; members over mutual TLS)"
    case $etcd_proto/$etcd_tls in
    grpc/1) echo "gRPC over HTTP/2 $tls, one connection per client," ;;
    grpc/both) echo "gRPC over HTTP/2 (h2c) and, in the rows 'etcd with TLS', $tls, one connection per client," ;;
    grpc/*) echo "gRPC over HTTP/2 (h2c), one connection per client," ;;
    *) echo "HTTP/1.1 JSON gateway," ;;
    esac
}
{
    echo
    echo "Run of $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r); $dur s measured per case after $warm s of warm-up; $repeat run(s) per case (medians shown); fresh clusters per level"
    echo "icroot: 3 nodes (icroot dev), STARTTLS + SCRAM per client, publish_resources window 1; etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'): 3 members, $(etcd_transport) $(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' "$results" | head -1), window 1; data in $work ($(df -PT "$work" | awk 'NR == 2 {print $2}')); nothing pinned"
    echo
    "$gen" --compare "$results"
    echo
    if [ -s "$presence" ]; then
        echo "Presence across nodes (publishers on one follower, watchers on the other: each batch goes to the leader and back):"
        echo
        echo "| changes/s asked | sent/s | received/s | p50 / p99 / p99.9 ms | servers' CPU (cores) | generator CPU |"
        echo "| --- | --- | --- | --- | --- | --- |"
        python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print("| %s | %.0f | %.0f | %.1f / %.1f / %.1f | %.2f | %.0f %% |" % (
        d["case"].split("-")[1], d["sent_per_s"], d["rate"],
        d["p50_us"] / 1e3, d["p99_us"] / 1e3, d["p999_us"] / 1e3,
        d["server_cpu_cores"], 100 * d["gen_cpu_share"]))' "$presence"
        echo
    fi
    echo "Checks after each case (the nodes agree; etcd's keys and revisions):"
    echo
    sed 's/^/    /' "$checks"
} | tee "$work/results.md"
