#!/bin/sh
# The catalog benchmark: for each size, generates a synthetic catalog
# (bench/gen/gen-catalog), loads it into the icroot store and into Oxigraph
# (npm package, under Node.js) in the same run, runs the seed paper's
# constraint query on both, and prints the figures and the ratios.
#
#   bench/catalog-bench.sh [CLOUDS ...]  default: 1000 10000 100000 500000 1000000
#
# Environment: BENCH_DIR (scratch space, default /tmp/icroot-catalog-bench),
# BENCH_SEED (generator seed, default 1), BENCH_SKIP_OXIGRAPH_ABOVE (sizes
# above this are not given to Oxigraph, whose WASM heap tops out at 4 GiB;
# default 700000, recorded as "not run").
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/icroot-catalog-bench}
seed=${BENCH_SEED:-1}
ox_max=${BENCH_SKIP_OXIGRAPH_ABOVE:-700000}
[ $# -gt 0 ] || set -- 1000 10000 100000 500000 1000000

if [ ! -x "$top/build/icroot-catalog-bench" ] || [ ! -x "$top/build/gen-catalog" ]; then
    cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$top/build" -j "$(nproc)" >/dev/null
fi
if [ ! -d "$top/bench/oxigraph/node_modules/oxigraph" ]; then
    (cd "$top/bench/oxigraph" && npm ci --silent --no-audit --no-fund)
fi
mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"

for n in "$@"; do
    nt="$work/c$n.nt"
    [ -s "$nt" ] || "$top/build/gen-catalog" "$n" "$seed" >"$nt"
    q=2000
    [ "$n" -le 100000 ] || q=300
    rm -rf "$work/store$n"
    ours=$("$top/build/icroot-catalog-bench" --dir "$work/store$n" \
        --attrmap "$top/ontology/constraints.ttl" --load "$nt" --queries "$q")
    rm -rf "$work/store$n"
    if [ "$n" -le "$ox_max" ]; then
        oq=50
        [ "$n" -le 10000 ] || oq=10
        ox=$(node "$top/bench/oxigraph/query.mjs" "$nt" "$oq" || true)
    else
        ox='{"engine":"oxigraph","error":"not run: above the 4 GiB WASM heap"}'
    fi
    printf '{"clouds":%s,"icroot":%s,"oxigraph":%s}\n' "$n" "$ours" \
        "${ox:-null}" >>"$results"
done
node "$top/bench/compare-catalog.mjs" "$results"
