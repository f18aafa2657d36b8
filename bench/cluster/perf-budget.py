#!/usr/bin/env python3
"""Where the nodes' CPU goes, by who runs it (docs/benchmarks-cluster.md,
"Session 13"): reads `perf script` output of a profile taken with call
graphs and gives each sample to the library whose code ran it. A sample
whose leaf is in libc or jemalloc (memcpy, malloc, ...) goes to the
first caller outside them, so LMDB's memcmp is LMDB's and the DOM's
mallocs are icroot's. Then the largest functions of icroot's own code.

    # while the cluster benchmark runs (its BENCH_DURATION long enough):
    perf record -F 999 -g --call-graph dwarf,16384 \\
        -p "$(pgrep -d, -x icroot)" -o perf.data -- sleep 5
    perf script -i perf.data | bench/cluster/perf-budget.py [--top N]
"""
import argparse
import collections
import sys

# Frames that never own work: the owner is the first frame past them.
HELPER_DSOS = ('libc.so.6', 'libjemalloc.so.2', 'inlined')


def samples(lines):
    """Each sample's frames, leaf first, as (symbol, dso)."""
    frames = []
    for line in lines:
        line = line.rstrip('\n')
        if not line.strip():
            if frames:
                yield frames
            frames = []
        elif line.startswith(('\t', ' ')):
            parts = line.split()
            sym = parts[1].split('+')[0] if len(parts) > 1 else '?'
            dso = parts[-1].split('/')[-1].strip('()')
            frames.append((sym, dso))
    if frames:
        yield frames


def owner(frames):
    for sym, dso in frames:
        if dso in HELPER_DSOS or sym.startswith(('__mem', '__str')):
            continue
        return sym, dso
    return frames[-1]


DISK_CALLS = ('io_submit', 'pwrite64', '__libc_pwrite', 'fdatasync',
              'mdb_txn_commit')


def part(frames, sym, dso):
    """The part of the budget of a sample whose owner is SYM in DSO."""
    if 'kallsyms' in dso:
        if any(s in DISK_CALLS for s, _ in frames):
            return 'kernel: disk (raft log, LMDB pages)'
        return 'kernel: sockets, scheduling, other'
    for prefix, name in (('libssl', 'OpenSSL'), ('libcrypto', 'OpenSSL'),
                         ('libexpat', 'expat'), ('libraft', 'raft'),
                         ('liblmdb', 'LMDB'), ('libuv', 'libuv')):
        if dso.startswith(prefix):
            return name
    if sym.startswith('mdb_'):
        return 'LMDB'
    return "icroot's own code"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('file', nargs='?', help="perf script output (stdin)")
    ap.add_argument('--top', type=int, default=20,
                    help="icroot functions to list (20)")
    a = ap.parse_args()
    src = open(a.file, encoding='utf-8', errors='replace') if a.file \
        else sys.stdin
    parts, own = collections.Counter(), collections.Counter()
    total = 0
    for frames in samples(src):
        total += 1
        sym, dso = owner(frames)
        p = part(frames, sym, dso)
        parts[p] += 1
        if p == "icroot's own code":
            own[sym] += 1
    if total == 0:
        sys.exit("perf-budget: no samples with call graphs in the input")
    print(f"{total} samples\n\n| who runs it | share |\n| --- | --- |")
    for name, n in parts.most_common():
        print(f"| {name} | {100 * n / total:.1f} % |")
    print("\nicroot's own code, by function (of all samples):\n")
    for name, n in own.most_common(a.top):
        print(f"  {100 * n / total:5.2f} %  {name}")


if __name__ == '__main__':
    main()
