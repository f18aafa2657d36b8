#!/bin/sh
# The XMPP benchmark (docs/benchmarks-xmpp.md): runs every scenario of
# icroot-bench against `icroot dev --nodes 1` and against Debian's Prosody
# with an equivalent configuration, in the same run, each server started
# afresh for each scenario, then prints a table with both figures and the
# ratios.
#
#   bench/xmpp/xmpp-bench.sh [CASE ...]
#       CASE: login login-plain ping message query idle (default: all)
#
# Environment:
#   BENCH_DIR          scratch space (default /tmp/icroot-xmpp-bench)
#   BENCH_BUILD        build directory with icroot (default build/ at the
#                      top; made RelWithDebInfo there when icroot is missing)
#   BENCH_KEY          certificate key of both servers: rsa (RSA-2048,
#                      default) or ec (ECDSA P-256), from `icroot dev`'s CA
#   BENCH_DURATION     measured seconds per case (10)
#   BENCH_CONNS        connections for ping, message, query (100)
#   BENCH_WINDOW       requests in flight per connection (1)
#   BENCH_LOGIN_CONNS  concurrent logins in the login cases (50)
#   BENCH_USERS        accounts bench1..N on both servers (200)
#   BENCH_IDLE_CONNS   idle connections (10000); BENCH_BIG=1: 100000
#   BENCH_PROSODY_IDLE_CONNS  idle connections for Prosody (the same)
#   BENCH_PROSODY=0    icroot only
#   BENCH_PIN=0        do not pin the server to CPU 0 and the generator to
#                      CPU 1 (pinned by default on 2+ CPUs)
#   BENCH_PERF=1       record `perf record -g` of icroot during ping into
#                      BENCH_DIR/perf-CASE.data (BENCH_PERF_CASE, default ping) and print the top functions
#
# Never touches the system Prosody: its own config, data, pid file and
# ports under BENCH_DIR (`prosody --version` would start the system server,
# so the version comes from dpkg).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${BENCH_DIR:-/tmp/icroot-xmpp-bench}
build=${BENCH_BUILD:-$top/build}
keytype=${BENCH_KEY:-rsa}
case $keytype in
rsa) keydesc="RSA-2048" ;;
ec) keydesc="ECDSA P-256" ;;
*) echo "BENCH_KEY: rsa or ec" >&2; exit 2 ;;
esac
dur=${BENCH_DURATION:-10}
conns=${BENCH_CONNS:-100}
window=${BENCH_WINDOW:-1}
login_conns=${BENCH_LOGIN_CONNS:-50}
users=${BENCH_USERS:-200}
idle=${BENCH_IDLE_CONNS:-10000}
[ "${BENCH_BIG:-0}" != 1 ] || idle=${BENCH_IDLE_CONNS:-100000}
p_idle=${BENCH_PROSODY_IDLE_CONNS:-$idle}
with_prosody=${BENCH_PROSODY:-1}
pin=${BENCH_PIN:-1}
[ "$(nproc)" -ge 2 ] || pin=0
domain=intercloudexchg.test
[ $# -gt 0 ] || set -- login login-plain ping message query idle

mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"
dev_pid='' prosody_pid=''

cleanup() {
    [ -z "$dev_pid" ] || { kill -INT "$dev_pid" 2>/dev/null; wait "$dev_pid" 2>/dev/null || true; }
    [ -z "$prosody_pid" ] || { kill -TERM "$prosody_pid" 2>/dev/null; wait "$prosody_pid" 2>/dev/null || true; }
    dev_pid='' prosody_pid=''
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }

# Many connections: raise the open-file limit for the servers and the
# generator (the hard limit too where allowed: CAP_SYS_RESOURCE). One
# process cannot hold more connections than that limit.
# shellcheck disable=SC3045 # ulimit -n: in dash, bash, busybox
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# shellcheck disable=SC3045
nofile=$(ulimit -n)
capped=
if [ "$nofile" != unlimited ] && { [ "$idle" -gt $((nofile - 200)) ] ||
    [ "$p_idle" -gt $((nofile - 200)) ]; }; then
    capped="idle connections capped at $((nofile - 200)) (asked: $idle): the open-file limit is $nofile and cannot be raised here"
    [ "$idle" -le $((nofile - 200)) ] || idle=$((nofile - 200))
    [ "$p_idle" -le $((nofile - 200)) ] || p_idle=$((nofile - 200))
    say "$capped"
fi

# ---- programs ----
if [ ! -x "$build/icroot" ]; then
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j "$(nproc)" --target icroot >/dev/null
fi
# stale: missing, or older than a source file
stale() { [ ! -x "$1" ] || [ -n "$(find "$here" -name '*.[ch]' -newer "$1")" ]; }
bench="$build/icroot-bench"
if stale "$bench"; then
    bench="$work/icroot-bench"
    if stale "$bench"; then
        say "building $bench"
        # shellcheck disable=SC2046
        cc -O2 -g -std=c11 -Wall -Wextra -o "$bench" "$here"/*.c \
            $(pkg-config --cflags --libs libuv openssl expat jansson) -lpthread
    fi
fi

# ---- ports: a base P with P..P+9 and P+100, P+101 not listened on, below
# the ephemeral range (the generator's own connections take those) ----
used=$(ss -Htln | awk '{print $4}' | sed 's/.*://' | sort -u)
port_free() { ! printf '%s\n' "$used" | grep -qx "$1"; }
base=
for p in 21000 22000 23000 24000 25000 26000 27000 28000 29000 30000 31000; do
    ok=1
    for q in 0 1 2 3 4 5 6 7 8 9 100 101; do
        port_free $((p + q)) || { ok=0; break; }
    done
    [ $ok = 0 ] || { base=$p; break; }
done
[ -n "$base" ] || { say "no free port range"; exit 1; }
pport=$((base + 100))

# ---- the password of the bench accounts (kept: Prosody's stay registered) ----
[ -s "$work/password" ] || od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$work/password"
password=$(cat "$work/password")

# ---- icroot ----
idir="$work/icroot"
icroot_start() {
    rm -f "$idir/cluster.json"
    ICROOT_DEV_KEY=$keytype "$build/icroot" dev --nodes 1 --dir "$idir" --base-port "$base" \
        >>"$work/icroot.log" 2>&1 &
    dev_pid=$!
    i=0
    while [ ! -s "$idir/cluster.json" ]; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$dev_pid" 2>/dev/null; then
            say "icroot dev did not start (see $work/icroot.log)"
            exit 1
        fi
        sleep 0.1
    done
    sleep 0.2
    server_pid=$(grep -o '"pid": *[0-9]*' "$idir/cluster.json" | head -1 | grep -o '[0-9]*$')
    port=$base
    [ "$pin" = 0 ] || taskset -pc 0 "$server_pid" >/dev/null
}
icroot_stop() {
    kill -INT "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
    dev_pid=
}

# ---- Prosody ----
pdir="$work/prosody"
pcfg="$pdir/prosody.cfg.lua"
prosody_setup() {
    mkdir -p "$pdir/data" "$pdir/certs"
    root=
    [ "$(id -u)" != 0 ] || root="run_as_root = true"
    sed -e "s|@DIR@|$pdir|g" -e "s|@PORT@|$pport|" \
        -e "s|@TLS_PORT@|$((pport + 1))|" -e "s|@DOMAIN@|$domain|" \
        -e "s|@CERT@|$idir/node1.pem|" -e "s|@KEY@|$idir/node1.key|" \
        -e "s|@RUN_AS_ROOT@|$root|" "$here/prosody.cfg.lua.in" >"$pcfg"
    have=$(find "$pdir/data" -path '*/accounts/*.dat' | wc -l)
    if [ "$have" -lt "$users" ] || [ ! -e "$pdir/data/.pw-$password" ]; then
        say "registering $users accounts in Prosody"
        seq 1 "$users" | xargs -P 2 -I{} prosodyctl --config "$pcfg" \
            register "bench{}" "$domain" "$password" >/dev/null 2>&1
        touch "$pdir/data/.pw-$password"
    fi
}
prosody_start() {
    prosody --config "$pcfg" -F >>"$work/prosody.out" 2>&1 &
    prosody_pid=$!
    i=0
    until ss -Htln "sport = :$pport" | grep -q .; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$prosody_pid" 2>/dev/null; then
            say "prosody did not start (see $pdir/prosody.log, $work/prosody.out)"
            exit 1
        fi
        sleep 0.1
    done
    server_pid=$prosody_pid
    port=$pport
    [ "$pin" = 0 ] || taskset -pc 0 "$server_pid" >/dev/null
}
prosody_stop() {
    kill -TERM "$prosody_pid" 2>/dev/null || true
    wait "$prosody_pid" 2>/dev/null || true
    prosody_pid=
}

# ---- one case on one server ----
gen() {
    if [ "$pin" = 0 ]; then "$bench" "$@"; else taskset -c 1 "$bench" "$@"; fi
}
run_case() { # CASE SERVER ARGS...
    c=$1 srv=$2
    shift 2
    "${srv}_start"
    say "$c on $srv ..."
    if [ "$c" = "${BENCH_PERF_CASE:-ping}" ] && [ "$srv" = icroot ] &&
        [ "${BENCH_PERF:-0}" = 1 ] &&
        command -v perf >/dev/null; then
        perf record -g -o "$work/perf-$c.data" -p "$server_pid" \
            -- sleep "$((dur + 2))" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    gen --case "$c" --label "$srv" --host 127.0.0.1 --port "$port" \
        --domain "$domain" --ca "$idir/ca.pem" --user-prefix bench \
        --users "$users" --password "$password" --server-pid "$server_pid" \
        --duration "$dur" "$@" >>"$results" || say "$c on $srv: failed"
    [ -z "${perf_pid:-}" ] || { wait "$perf_pid" || true; perf_pid=; }
    "${srv}_stop"
    tail -1 "$results" >&2
}

# ---- accounts: icroot's through the admin command, Prosody's with prosodyctl ----
icroot_start
say "creating $users accounts in icroot (add_account)"
"$bench" --create-accounts --accounts "$idir/cluster.json" --port "$port" \
    --domain "$domain" --ca "$idir/ca.pem" --service "service.$domain" \
    --user-prefix bench --users "$users" --password "$password" >/dev/null
icroot_stop
[ "$with_prosody" = 0 ] || prosody_setup

for c in "$@"; do
    case $c in
    login) args="--scenario login --conns $login_conns --mech scram-sha-1" ;;
    login-plain) args="--scenario login --conns $login_conns --mech plain" ;;
    ping) args="--scenario ping --conns $conns --window $window" ;;
    message) args="--scenario message --conns $conns --window $window" ;;
    query) args="--scenario query --conns $conns --window $window --service service.$domain" ;;
    idle) args="--scenario idle --duration 5 --timeout 3600" ;;
    *) say "unknown case $c"; exit 2 ;;
    esac
    if [ "$c" = idle ]; then
        # shellcheck disable=SC2086 # $args: several words
        run_case idle icroot $args --conns "$idle"
        # shellcheck disable=SC2086
        [ "$with_prosody" = 0 ] || run_case idle prosody $args --conns "$p_idle"
        continue
    fi
    # shellcheck disable=SC2086
    run_case "$c" icroot $args
    # shellcheck disable=SC2086
    [ "$with_prosody" = 0 ] || [ "$c" = query ] || run_case "$c" prosody $args
done

{
    echo
    echo "Run of $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r), $(openssl version | cut -d' ' -f1-2)"
    [ -z "$capped" ] || echo "Note: $capped."
    echo "Prosody $(dpkg -s prosody 2>/dev/null | sed -n 's/^Version: //p'); both: $keydesc certificate from the same CA, TLS required, 4096 SCRAM iterations, Nagle off; $dur s measured per case; server pinned to CPU 0 and generator to CPU 1: $([ "$pin" = 0 ] && echo no || echo yes)"
    echo
    "$bench" --compare "$results"
} | tee "$work/results.md"
if [ "${BENCH_PERF:-0}" = 1 ] && [ -s "$work/perf-${BENCH_PERF_CASE:-ping}.data" ]; then
    echo
    echo "icroot during ping (perf, self time), by library, then by function:"
    perf report -i "$work/perf-${BENCH_PERF_CASE:-ping}.data" --no-children --sort dso --stdio \
        -g none 2>/dev/null | grep '%' | head -10
    perf report -i "$work/perf-${BENCH_PERF_CASE:-ping}.data" --no-children --sort dso,sym \
        --stdio -g none 2>/dev/null | grep '%' | head -25
fi
