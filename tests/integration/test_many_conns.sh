#!/bin/bash
# Holds N (default 10,000) concurrent authenticated TLS connections on one
# node started by `icroot dev`, with icroot-bench's idle scenario: every
# connection does STARTTLS, SCRAM-SHA-1 and binds, then stays. Checks that
# all are held at once, without errors, and that the node then stops
# cleanly.
#   test_many_conns.sh ICROOT ICROOT_BENCH [N]
set -euo pipefail
icroot=$1 bench=$2 n=${3:-10000}
dir=$(mktemp -d /tmp/icroot-many-XXXXXX)
devpid=

cleanup() {
    [ -z "$devpid" ] || kill -TERM "$devpid" 2>/dev/null || true
    [ -z "$devpid" ] || wait "$devpid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# a free range P..P+9 on 127.0.0.1
port=$(/usr/bin/python3 -c '
import random, socket
for _ in range(200):
    p = random.randrange(20000, 30000, 10)
    try:
        for q in range(p, p + 10):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass')

"$icroot" dev --nodes 1 --dir "$dir" --base-port "$port" >"$dir/dev.out" 2>&1 &
devpid=$!
for _ in $(seq 1 600); do
    [ -s "$dir/cluster.json" ] && break
    kill -0 "$devpid" 2>/dev/null || { cat "$dir/dev.out"; exit 1; }
    sleep 0.1
done
[ -s "$dir/cluster.json" ] || { echo "icroot dev did not start"; exit 1; }
nodepid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["pid"])' "$dir/cluster.json")

out=$("$bench" --scenario idle --host 127.0.0.1 --port "$port" \
    --domain intercloudexchg.test --ca "$dir/ca.pem" \
    --accounts "$dir/cluster.json" --conns "$n" --duration 2 \
    --timeout 600 --server-pid "$nodepid")
echo "$out"
/usr/bin/python3 - "$n" "$out" <<'PY'
import json, sys
n = int(sys.argv[1])
r = json.loads(sys.argv[2].strip().splitlines()[-1])
assert r["conns_held"] == n, ("held", r["conns_held"], "of", n)
assert r["errors"] == 0 and r["conn_errors"] == 0 and r["auth_failures"] == 0, r
print("held %d authenticated connections, %.1f KiB RSS each"
      % (n, r.get("rss_per_conn_kib", 0)))
PY
kill -INT "$devpid"
wait "$devpid"
devpid=
kill -0 "$nodepid" 2>/dev/null && { echo "node still running"; exit 1; }
echo "ok"
