#!/bin/sh
# The federation benchmarks (docs/benchmarks-s2s.md), each run side by side
# with what it compares against, in the same run, reported as ratios:
#
#   S2S messages: icroot-bench --to-domain: N sender connections on server
#   A each send chat messages to one of N receiver connections on server B
#   (another domain), over the S2S stream A -> B; a closed loop (the next
#   message leaves when the receiver got one), latency send -> receipt.
#     p2i   Prosody (cloud1.example) -> icroot (root.example)
#     i2p   icroot (root.example)    -> Prosody (cloud1.example)
#     p2p   Prosody (cloud1.example) -> Prosody (cloud2.example)
#     i2i   icroot (root.example)    -> icroot (exch.example, a second
#           `icroot dev --nodes 1` with the same CA)
#   ratios: p2i / p2p, i2p / p2p and i2i / p2p.
#
#   Delegation: the seed paper's query (icroot-bench --scenario query) on a
#   root (`icroot dev --nodes 1 --domain root.example`) with a one-node
#   exchange (`--role exchange --domain exch.example --no-sample`) that
#   holds one matching cloud (cloud4):
#     q-local  no delegation: the root answers alone (cloud2, cloud5)
#     q-hit    tierCountries=JAPAN delegated to the exchange, TTL 3600,
#              recursive='true': after the first query every answer of
#              the exchange comes from the root's cache
#     q-miss   the same with --vary (default 4096) distinct constraint sets
#              asked in turn: more than the cache holds (1024, oldest out
#              first), so every query is a miss and goes to the exchange
#     q-hit1k  TTL 3600 and 1000 distinct constraint sets in turn: all in
#              the cache after the first 1000 (misses, in the warm-up),
#              then hits on a cache of 1000 answers
#     q-ttl1   the fixed query with the delegation's TTL at 1 s (the
#              minimum): misses once a second, the rest hits
#   (answers: cloud2, cloud4@exch.example, cloud5; anything else counts
#   as an error); ratios: q-hit, q-hit1k, q-miss, q-ttl1 / q-local. Each
#   query case starts the root and the exchange afresh (empty caches). The queries
#   the exchange got (its `icrootctl status` stanzasIn) against those
#   sent give the miss fraction.
#
#   bench/s2s/s2s-bench.sh [CASE ...]      (default: all nine)
#
# Environment:
#   BENCH_DIR        scratch space (default /tmp/icroot-s2s-bench)
#   BENCH_BUILD      build directory with icroot, icrootctl, icroot-bench
#                    (default build-bench2/, else build/, at the top)
#   BENCH_DURATION   measured seconds per case (10); BENCH_DURATION=1 is
#                    the smoke mode
#   BENCH_PAIRS      sender/receiver pairs of the message cases (50)
#   BENCH_CONNS      connections of the query cases (50)
#   BENCH_WINDOW     messages / queries in flight per connection (1)
#   BENCH_VARY       distinct constraint sets of q-miss (4096)
#   BENCH_ROUNDS     run every case this many times, in turn (1); the
#                    table gives the median of each figure and its range
#   BENCH_PIN=0      do not pin the servers to CPU 0 and the generator to
#                    CPU 1 (pinned by default on 2+ CPUs)
#   BENCH_PERF=1     `perf record -g` of the icroot node(s) during the
#                    measured window of each icroot case, top functions
#                    printed at the end (BENCH_DIR/perf-CASE.data)
#   BENCH_BASE       first port (default: the first free of 26000, 26100, ...)
#
# Ports from the base P (127.0.0.1): icroot root P..P+9, exchange P+20..29,
# Prosody cloud1 P+50 (C2S), P+52 (S2S), cloud2 P+60, P+62, the DNS SRV
# responder P+70 (UDP and TCP).
#
# Never touches the system Prosody: its own configs, data, pid files and
# ports under BENCH_DIR (`prosody --version` would start the system
# server, so the version comes from dpkg).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${BENCH_DIR:-/tmp/icroot-s2s-bench}
build=${BENCH_BUILD:-}
if [ -z "$build" ]; then
    build=$top/build-bench2
    [ -x "$build/icroot" ] || build=$top/build
fi
dur=${BENCH_DURATION:-10}
pairs=${BENCH_PAIRS:-50}
qconns=${BENCH_CONNS:-50}
window=${BENCH_WINDOW:-1}
vary=${BENCH_VARY:-4096}
rounds=${BENCH_ROUNDS:-1}
pin=${BENCH_PIN:-1}
[ "$(nproc)" -ge 2 ] || pin=0
users=$pairs
[ "$qconns" -le "$users" ] || users=$qconns
ROOT=root.example    # icroot (under .example: libunbound refuses .test)
EXCH=exch.example    # the exchange
P1=cloud1.example    # Prosody 1
P2=cloud2.example    # Prosody 2
[ $# -gt 0 ] || set -- p2i i2p p2p i2i q-local q-hit q-hit1k q-miss q-ttl1

say() { printf '%s\n' "$*" >&2; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"
rm -f "$work"/auth-*.txt
: >"$work/misses.jsonl"

# ---- programs ----
for p in icroot icrootctl icroot-bench; do
    [ -x "$build/$p" ] || {
        say "$build/$p missing: cmake -S $top -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $build"
        exit 1
    }
done
if [ -n "$(find "$top/bench/xmpp" -name '*.[ch]' -newer "$build/icroot-bench")" ]; then
    say "$build/icroot-bench is older than bench/xmpp: rebuild it"
    exit 1
fi
bench=$build/icroot-bench
need_prosody=0
for c in "$@"; do case $c in p2i | i2p | p2p) need_prosody=1 ;; esac; done
if [ $need_prosody = 1 ]; then
    command -v prosody >/dev/null || { say "prosody is not installed"; exit 1; }
    lua5.4 -e 'require "lunbound"' 2>/dev/null ||
        { say "lua-unbound is missing (Prosody's unbound option)"; exit 1; }
fi

# ---- ports ----
used=$(ss -Htuln | awk '{print $5}' | sed 's/.*://' | sort -u)
port_free() { ! printf '%s\n' "$used" | grep -qx "$1"; }
base=${BENCH_BASE:-}
if [ -z "$base" ]; then
    for p in 26000 26100 26200 26300 26400 26500 26600 26700 26800 26900; do
        ok=1
        for q in 0 1 2 3 4 5 6 7 8 9 20 21 22 23 24 25 26 27 28 29 50 52 60 62 70; do
            port_free $((p + q)) || { ok=0; break; }
        done
        [ $ok = 0 ] || { base=$p; break; }
    done
fi
[ -n "$base" ] || { say "no free port range in 26000-26999"; exit 1; }
rport=$base eport=$((base + 20))
p1c=$((base + 50)) p1s=$((base + 52)) p2c=$((base + 60)) p2s=$((base + 62))
dnsport=$((base + 70))

# ---- processes: started here, stopped by their own pids ----
dns_pid='' root_pid='' exch_pid='' p1_pid='' p2_pid='' perf_pid=''
stop_pid() { # PID SIGNAL
    [ -z "$1" ] || { kill "-$2" "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
}
cleanup() {
    stop_pid "$perf_pid" INT
    stop_pid "$p1_pid" TERM
    stop_pid "$p2_pid" TERM
    stop_pid "$root_pid" INT
    stop_pid "$exch_pid" INT
    stop_pid "$dns_pid" TERM
    perf_pid='' p1_pid='' p2_pid='' root_pid='' exch_pid='' dns_pid=''
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin_server() { # PID: every thread on CPU 0
    [ "$pin" = 0 ] || taskset -a -pc 0 "$1" >/dev/null
}
gen() {
    if [ "$pin" = 0 ]; then "$bench" "$@"; else taskset -c 1 "$bench" "$@"; fi
}
node_pid() { # cluster.json -> the node's pid
    grep -o '"pid": *[0-9]*' "$1" | head -1 | grep -o '[0-9]*$'
}
wait_file() { # FILE PID WHAT
    i=0
    while [ ! -s "$1" ]; do
        i=$((i + 1))
        if [ $i -gt 900 ] || ! kill -0 "$2" 2>/dev/null; then
            say "$3 did not start (see $work/*.log)"
            exit 1
        fi
        sleep 0.1
    done
}

# ---- the password of the bench accounts (kept: Prosody's stay registered) ----
[ -s "$work/password" ] || od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$work/password"
password=$(cat "$work/password")

# ---- icroot: the root (its CA is everybody's), the exchange ----
rdir=$work/root edir=$work/exch
root_start() {
    rm -f "$rdir/cluster.json"
    "$build/icroot" dev --nodes 1 --dir "$rdir" --base-port "$rport" \
        --domain "$ROOT" --s2s-peer "$P1=127.0.0.1:$p1s" \
        --s2s-peer "$P2=127.0.0.1:$p2s" \
        --s2s-peer "$EXCH=127.0.0.1:$((eport + 2))" \
        >>"$work/root.log" 2>&1 &
    root_pid=$!
    wait_file "$rdir/cluster.json" "$root_pid" "icroot dev (root)"
    sleep 0.2
    root_node=$(node_pid "$rdir/cluster.json")
    pin_server "$root_node"
}
root_stop() { stop_pid "$root_pid" INT; root_pid=''; }
exch_start() {
    rm -f "$edir/cluster.json"
    mkdir -p "$edir"
    # the root's CA: the streams between them authenticate by certificate
    cp "$rdir/ca.pem" "$rdir/ca.key" "$edir/"
    "$build/icroot" dev --nodes 1 --dir "$edir" --base-port "$eport" \
        --role exchange --domain "$EXCH" --no-sample \
        --s2s-peer "$ROOT=127.0.0.1:$((rport + 2))" \
        >>"$work/exch.log" 2>&1 &
    exch_pid=$!
    wait_file "$edir/cluster.json" "$exch_pid" "icroot dev (exchange)"
    sleep 0.2
    exch_node=$(node_pid "$edir/cluster.json")
    pin_server "$exch_node"
    if [ ! -e "$edir/.accounts-$users-$password" ]; then
        say "creating $users accounts in the exchange (add_account)"
        "$bench" --create-accounts --accounts "$edir/cluster.json" --port "$eport" \
            --domain "$EXCH" --ca "$ca" --service "service.$EXCH" \
            --user-prefix bench --users "$users" --password "$password" >/dev/null
        touch "$edir/.accounts-$users-$password"
    fi
}
exch_stop() { stop_pid "$exch_pid" INT; exch_pid=''; }
ctl() { # cluster.json ARGS...
    f=$1
    shift
    "$build/icrootctl" --cluster "$f" "$@"
}

# first start: the CA and the bench accounts (kept in the data directory)
root_start
if [ ! -e "$rdir/.accounts-$users-$password" ]; then
    say "creating $users accounts in icroot (add_account)"
    "$bench" --create-accounts --accounts "$rdir/cluster.json" --port "$rport" \
        --domain "$ROOT" --ca "$rdir/ca.pem" --service "service.$ROOT" \
        --user-prefix bench --users "$users" --password "$password" >/dev/null
    touch "$rdir/.accounts-$users-$password"
fi
root_stop
ca=$rdir/ca.pem

# ---- Prosody: two, with certificates from the root's CA ----
issue_cert() { # DIR DOMAIN
    [ -s "$1/$2.pem" ] && openssl verify -CAfile "$ca" "$1/$2.pem" >/dev/null 2>&1 &&
        return 0
    mkdir -p "$1"
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature,keyEncipherment' \
        'extendedKeyUsage=serverAuth,clientAuth' \
        "subjectAltName=DNS:$2,otherName:1.3.6.1.5.5.7.8.5;UTF8:$2" >"$1/$2.ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$1/$2.key" \
        -out "$1/$2.csr" -subj "/CN=$2" 2>/dev/null
    openssl x509 -req -in "$1/$2.csr" -CA "$ca" -CAkey "$rdir/ca.key" \
        -set_serial "$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')" \
        -out "$1/$2.pem" -days 30 -sha256 -extfile "$1/$2.ext" 2>/dev/null
}
prosody_setup() { # NAME DOMAIN C2S S2S
    d=$work/$1
    mkdir -p "$d/data" "$d/certs"
    issue_cert "$d" "$2"
    root=
    [ "$(id -u)" != 0 ] || root="run_as_root = true"
    sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$3|" -e "s|@S2S_PORT@|$4|" \
        -e "s|@DNS_PORT@|$dnsport|" -e "s|@DOMAIN@|$2|" \
        -e "s|@CERT@|$d/$2.pem|" -e "s|@KEY@|$d/$2.key|" -e "s|@CA@|$ca|" \
        -e "s|@RUN_AS_ROOT@|$root|" "$here/prosody-s2s.cfg.lua.in" >"$d/prosody.cfg.lua"
    if [ ! -e "$d/data/.accounts-$users-$password" ]; then
        say "registering $users accounts in Prosody $2"
        seq 1 "$users" | xargs -P 2 -I{} prosodyctl --config "$d/prosody.cfg.lua" \
            register "bench{}" "$2" "$password" >/dev/null 2>&1
        touch "$d/data/.accounts-$users-$password"
    fi
}
prosody_start() { # NAME C2S -> sets last_pid
    d=$work/$1
    : >"$d/prosody.log"
    prosody --config "$d/prosody.cfg.lua" -F >>"$d/prosody.out" 2>&1 &
    last_pid=$!
    i=0
    until ss -Htln "sport = :$2" | grep -q .; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$last_pid" 2>/dev/null; then
            say "prosody $1 did not start (see $d/prosody.log, $d/prosody.out)"
            exit 1
        fi
        sleep 0.1
    done
    pin_server "$last_pid"
}
p1_start() { prosody_start p1 "$p1c"; p1_pid=$last_pid; }
p2_start() { prosody_start p2 "$p2c"; p2_pid=$last_pid; }
p1_stop() { stop_pid "$p1_pid" TERM; p1_pid=''; }
p2_stop() { stop_pid "$p2_pid" TERM; p2_pid=''; }

if [ $need_prosody = 1 ]; then
    prosody_setup p1 "$P1" "$p1c" "$p1s"
    prosody_setup p2 "$P2" "$p2c" "$p2s"
    # Prosody finds its peers through SRV only: the responder of
    # tests/interop/dns_responder.py, run alone (icroot uses --s2s-peer)
    python3 "$top/tests/interop/dns_responder.py" "$dnsport" \
        "_xmpp-server._tcp.$ROOT=xmpp.$ROOT:$((rport + 2))" \
        "_xmpp-server._tcp.service.$ROOT=xmpp.$ROOT:$((rport + 2))" \
        "_xmpp-server._tcp.$P1=xmpp.$P1:$p1s" \
        "_xmpp-server._tcp.$P2=xmpp.$P2:$p2s" \
        "xmpp.$ROOT=127.0.0.1" "xmpp.$P1=127.0.0.1" "xmpp.$P2=127.0.0.1" \
        >"$work/dns.log" 2>&1 &
    dns_pid=$!
    sleep 0.5
    kill -0 "$dns_pid" 2>/dev/null || { say "DNS responder failed: $work/dns.log"; exit 1; }
fi

log_size() { [ -e "$1" ] && wc -c <"$1" || echo 0; }
log_since() { tail -c +"$(($2 + 1))" "$1"; } # FILE OFFSET

perf_start() { # CASE PID...
    [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null || return 0
    c=$1
    shift
    pids=$(echo "$@" | tr ' ' ',')
    # the measured window starts after the generator's ramp and warm-up
    (sleep 3 && exec perf record -g -o "$work/perf-$c.data" -p "$pids" \
        -- sleep "$dur") >/dev/null 2>&1 &
    perf_pid=$!
}
perf_wait() { [ -z "$perf_pid" ] || { wait "$perf_pid" || true; perf_pid=''; }; }

# ---- S2S message cases ----
# One case: servers A (senders) and B (receivers), started afresh.
msg_case() { # CASE A B  (A, B: icroot p1 p2)
    c=$1 a=$2 b=$3
    for s in "$a" "$b"; do
        case $s in
        icroot) root_start ;;
        exch) exch_start ;;
        p1) p1_start ;;
        p2) p2_start ;;
        esac
    done
    pid_of() { case $1 in icroot) echo "$root_node" ;; exch) echo "$exch_node" ;; p1) echo "$p1_pid" ;; p2) echo "$p2_pid" ;; esac; }
    dom_of() { case $1 in icroot) echo "$ROOT" ;; exch) echo "$EXCH" ;; p1) echo "$P1" ;; p2) echo "$P2" ;; esac; }
    port_of() { case $1 in icroot) echo "$rport" ;; exch) echo "$eport" ;; p1) echo "$p1c" ;; p2) echo "$p2c" ;; esac; }
    rlog0=$(log_size "$rdir/node1.log") elog0=$(log_size "$edir/node1.log")
    args="--scenario message --user-prefix bench --users $users --password $password
        --host 127.0.0.1 --port $(port_of "$a") --domain $(dom_of "$a") --ca $ca
        --to-host 127.0.0.1 --to-port $(port_of "$b") --to-domain $(dom_of "$b")
        --server-pid $(pid_of "$a") --to-server-pid $(pid_of "$b")"
    # warm-up: the S2S stream A -> B (DNS, TCP, TLS, authentication)
    say "$c: warming up the S2S stream $(dom_of "$a") -> $(dom_of "$b")"
    # shellcheck disable=SC2086 # $args: several words
    gen $args --conns 2 --duration 1 --warmup 2 --label warmup --case "$c" \
        >"$work/warmup-$c.json" || say "$c: warm-up failed: $(cat "$work/warmup-$c.json")"
    case "$a $b" in
    "icroot exch") perf_start "$c" "$root_node" "$exch_node" ;;
    *icroot*) perf_start "$c" "$root_node" ;;
    esac
    say "$c: $pairs pairs, $dur s ..."
    # shellcheck disable=SC2086
    gen $args --conns "$pairs" --window "$window" --duration "$dur" \
        --warmup 2 --label "$(dom_of "$a")->$(dom_of "$b")" --case "$c" \
        >>"$results" || say "$c: failed"
    perf_wait
    tail -1 "$results" >&2
    # which authentication each stream used (the logs)
    {
        echo "$c (round $round):"
        for s in "$a" "$b"; do
            case $s in
            icroot) log_since "$rdir/node1.log" "$rlog0" | grep -E ' (<-|->) [a-z0-9.]+ up \(' |
                sed 's/^/  icroot root: /' ;;
            exch) log_since "$edir/node1.log" "$elog0" | grep -E ' (<-|->) [a-z0-9.]+ up \(' |
                sed 's/^/  icroot exch: /' ;;
            p1 | p2) grep -E 'Accepting SASL EXTERNAL|SASL EXTERNAL with|s2s connection .* complete|dialback' \
                "$work/$s/prosody.log" | tail -4 | sed "s/^/  $(dom_of "$s"): /" ;;
            esac
        done
    } >"$work/auth-$c.txt"
    for s in "$a" "$b"; do
        case $s in icroot) root_stop ;; exch) exch_stop ;; p1) p1_stop ;; p2) p2_stop ;; esac
    done
}

# ---- delegation cases ----
deleg_ready=0
deleg_setup() {
    [ $deleg_ready = 0 ] || return 0
    root_start
    exch_start
    # the exchange's cloud4 matches the seed query (Turtle loaded by its admin)
    cat >"$work/cloud4.ttl" <<EOF
@prefix ic: <http://www.csp/resOntology#> .
@prefix icc: <http://www.csp/resOntology/country/> .
<xmpp:cloud4@$EXCH> a ic:Cloud ;
    ic:jid "cloud4@$EXCH" ;
    ic:availability 99.999 ;
    ic:replicationFactor 5 ;
    ic:country icc:JP ;
    ic:storageReplicationMethod "AMQP" ;
    ic:storageAccessProtocol "NFS" .
EOF
    ctl "$edir/cluster.json" load "$work/cloud4.ttl" >/dev/null
    ctl "$edir/cluster.json" query availabilityQuantity=99.999 \
        replicationFactor=5 tierCountries=JAPAN StorageReplicationMethod=AMQP \
        InterCloudStorageAccess=NFS >"$work/exch-query.txt"
    grep -qx cloud4 "$work/exch-query.txt" ||
        { say "the exchange does not answer cloud4: $(cat "$work/exch-query.txt")"; exit 1; }
    ctl "$rdir/cluster.json" delegation-del tierCountries JAPAN >/dev/null 2>&1 || true
    deleg_ready=1
    dlog0=$(log_size "$rdir/node1.log")
}
deleg_teardown() {
    [ $deleg_ready = 1 ] || return 0
    {
        echo "root <-> exchange (round $round):"
        log_since "$rdir/node1.log" "$dlog0" | grep -E ' (<-|->) [a-z0-9.]+ up \(' |
            sed 's/^/  root: /'
    } >"$work/auth-deleg.txt"
    root_stop
    exch_stop
    deleg_ready=0
}
# the exchange's answered queries: the S2S stanzas it took in, from status
exch_stanzas() {
    ctl "$edir/cluster.json" status 2>/dev/null >"$work/exch-status.txt" || true
}
query_case() { # CASE
    c=$1
    deleg_teardown # afresh: an empty answer cache on the root
    deleg_setup
    qargs="--scenario query --user-prefix bench --users $users --password $password
        --host 127.0.0.1 --port $rport --domain $ROOT --ca $ca
        --service service.$ROOT --conns $qconns --window $window
        --server-pid $root_node --to-server-pid $exch_node --recursive"
    case $c in
    q-local)
        ctl "$rdir/cluster.json" delegation-del tierCountries JAPAN >/dev/null 2>&1 || true
        expect=cloud2,cloud5 extra=''
        ;;
    q-hit)
        ctl "$rdir/cluster.json" delegation-add tierCountries JAPAN "service.$EXCH" 3600 >/dev/null
        expect=cloud2,cloud4@$EXCH,cloud5 extra=''
        ;;
    q-miss)
        ctl "$rdir/cluster.json" delegation-add tierCountries JAPAN "service.$EXCH" 3600 >/dev/null
        expect=cloud2,cloud4@$EXCH,cloud5 extra="--vary $vary"
        ;;
    q-hit1k)
        ctl "$rdir/cluster.json" delegation-add tierCountries JAPAN "service.$EXCH" 3600 >/dev/null
        expect=cloud2,cloud4@$EXCH,cloud5 extra="--vary 1000"
        ;;
    q-ttl1)
        ctl "$rdir/cluster.json" delegation-add tierCountries JAPAN "service.$EXCH" 1 >/dev/null
        expect=cloud2,cloud4@$EXCH,cloud5 extra=''
        ;;
    esac
    # warm-up: the S2S streams root <-> exchange, the sessions
    # shellcheck disable=SC2086 # several words
    gen $qargs --conns 2 --duration 1 --warmup 1 --expect "$expect" $extra \
        --label warmup --case "$c" >"$work/warmup-$c.json" ||
        say "$c: warm-up failed: $(cat "$work/warmup-$c.json")"
    ctl "$edir/cluster.json" status >"$work/exch-status-$c-0.txt" 2>&1 || true
    perf_start "$c" "$root_node" "$exch_node"
    say "$c: $qconns connections, $dur s ..."
    # shellcheck disable=SC2086
    gen $qargs --duration "$dur" --warmup 2 --expect "$expect" $extra \
        --label "root.example" --case "$c" >>"$results" || say "$c: failed"
    perf_wait
    ctl "$edir/cluster.json" status >"$work/exch-status-$c-1.txt" 2>&1 || true
    tail -1 "$results" >&2
    # the queries the exchange got (its stanzasIn; the status command's
    # own session adds a few) against the queries sent in the run
    in0=$(awk '$1 == "stanzasIn" {print $2}' "$work/exch-status-$c-0.txt")
    in1=$(awk '$1 == "stanzasIn" {print $2}' "$work/exch-status-$c-1.txt")
    sent=$(tail -1 "$results" | grep -o '"sent_total":[0-9]*' | grep -o '[0-9]*$')
    [ -z "$in0" ] || [ -z "$in1" ] || [ -z "$sent" ] ||
        echo "{\"case\":\"$c\",\"exchange_stanzas_in\":$((in1 - in0)),\"sent_total\":$sent}" >>"$work/misses.jsonl"
}

round=1
while [ $round -le "$rounds" ]; do
    say "round $round of $rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for c in "$@"; do
        case $c in
        p2i) deleg_teardown; msg_case p2i p1 icroot ;;
        i2p) deleg_teardown; msg_case i2p icroot p1 ;;
        p2p) deleg_teardown; msg_case p2p p1 p2 ;;
        i2i) deleg_teardown; msg_case i2i icroot exch ;;
        q-local | q-hit | q-hit1k | q-miss | q-ttl1) query_case "$c" ;;
        *) say "unknown case $c"; exit 2 ;;
        esac
    done
    deleg_teardown
    round=$((round + 1))
done
cleanup

{
    echo
    echo "Run of $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r), $(openssl version | cut -d' ' -f1-2); load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "Prosody $(dpkg -s prosody 2>/dev/null | sed -n 's/^Version: //p'); $dur s measured per case, $rounds round(s), medians; servers pinned to CPU 0 and the generator to CPU 1: $([ "$pin" = 0 ] && echo no || echo yes)"
    echo
    python3 "$here/report.py" "$results" "$work/misses.jsonl"
    echo
    echo "S2S authentication (the servers' logs):"
    cat "$work"/auth-*.txt
} | tee "$work/results.md"
if [ "${BENCH_PERF:-0}" = 1 ]; then
    for f in "$work"/perf-*.data; do
        [ -s "$f" ] || continue
        echo
        echo "$(basename "$f" .data) (perf, self time, icroot only):"
        perf report -i "$f" --no-children --sort dso,sym --stdio -g none \
            2>/dev/null | grep '%' | head -20
    done
fi
