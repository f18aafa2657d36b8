#!/usr/bin/python3
"""The table of bench/s2s/s2s-bench.sh (docs/benchmarks-s2s.md): one row
per case from the JSON lines of icroot-bench (the median of the rounds
when a case ran more than once, with the range of its rate), and the
ratios of each icroot case to the case it is compared with, run in the
same run.

    python3 bench/s2s/report.py RESULTS.jsonl [MISSES.jsonl]
"""
import json
import statistics
import sys

WHAT = {
    'p2i': 'S2S messages Prosody cloud1 -> icroot root',
    'i2p': 'S2S messages icroot root -> Prosody cloud1',
    'p2p': 'S2S messages Prosody cloud1 -> Prosody cloud2',
    'i2i': 'S2S messages icroot root -> icroot exch',
    'q-local': 'seed query, answered locally',
    'q-hit': 'seed query, recursive, cache hits',
    'q-miss': 'seed query, recursive, cache misses',
    'q-hit1k': 'seed query, recursive, hits on 1000 cached sets',
    'q-ttl1': 'seed query, recursive, TTL 1 s',
}
CASES = ['p2i', 'i2p', 'p2p', 'i2i', 'q-local', 'q-hit', 'q-hit1k', 'q-miss',
         'q-ttl1']
# ratio: case / baseline (rate; p50 and p99 latency; server CPU per op)
RATIOS = [('p2i', 'p2p'), ('i2p', 'p2p'), ('i2i', 'p2p'),
          ('q-hit', 'q-local'), ('q-hit1k', 'q-local'), ('q-miss', 'q-local'),
          ('q-ttl1', 'q-local')]


def fmt_us(v):
    return '%.2f ms' % (v / 1000) if v >= 1000 else '%.0f us' % v


def cpu_per_op(r):
    return r.get('server_cpu_us_per_op', 0) + \
        r.get('to_server_cpu_us_per_op', 0)


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                out.setdefault(r['case'], []).append(r)
    return out


def med(runs, key):
    return statistics.median([key(r) if callable(key) else r.get(key, 0)
                              for r in runs])


def main(path, misses_path=None):
    rows = load(path)
    misses = {}
    if misses_path:
        try:
            misses = load(misses_path)
        except OSError:
            pass
    print('| case | what | rounds | ops/s (median) | range | p50 | p99 '
          '| errors | CPU A (s/s) | CPU B (s/s) | server CPU us/op (A+B) '
          '| generator CPU (s/s) | other processes (cores) |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: '
          '| ---: | ---: | ---: | ---: |')
    for c in CASES:
        runs = rows.get(c)
        if not runs:
            continue
        r0 = runs[0]
        conns = ('%d pairs' % r0['pairs']) if 'pairs' in r0 else \
            ('%d conns' % r0['conns'])
        rates = [r['rate'] for r in runs]
        print('| %s | %s (%s, window %d) | %d | %.0f | %.0f-%.0f | %s | %s '
              '| %d | %.2f | %.2f | %.1f | %.2f | %.2f |' % (
                  c, WHAT.get(c, c), conns, r0['window'], len(runs),
                  med(runs, 'rate'), min(rates), max(rates),
                  fmt_us(med(runs, 'p50_us')), fmt_us(med(runs, 'p99_us')),
                  sum(r['errors'] + r['conn_errors'] for r in runs),
                  med(runs, 'server_cpu_share'),
                  med(runs, 'to_server_cpu_share'),
                  med(runs, cpu_per_op), med(runs, 'gen_cpu_share'),
                  med(runs, 'other_cpu_cores')))
        for r in runs:
            if r.get('first_error'):
                print('|  | first error: %s |  |  |  |  |  |  |  |  |  |  |  |'
                      % r['first_error'].replace('|', '/'))
                break
    print()
    print('Ratios: the median over the rounds of each round\'s ratio (the two '
          'cases ran minutes apart at most), and its range.')
    print()
    print('| ratio | ops/s | range | p50 | p99 | server CPU per op |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for c, base in RATIOS:
        r, b = rows.get(c), rows.get(base)
        if not r or not b:
            continue
        n = min(len(r), len(b))

        def per_round(key):
            v = []
            for x, y in zip(r[:n], b[:n]):
                kx = key(x) if callable(key) else x.get(key, 0)
                ky = key(y) if callable(key) else y.get(key, 0)
                if ky:
                    v.append(kx / ky)
            return v

        def ratio(key):
            v = per_round(key)
            return '%.2f' % statistics.median(v) if v else '-'
        rates = per_round('rate')
        print('| %s / %s | %s | %s | %s | %s | %s |' % (
            c, base, ratio('rate'),
            '%.2f-%.2f' % (min(rates), max(rates)) if rates else '-',
            ratio('p50_us'), ratio('p99_us'), ratio(cpu_per_op)))
    if misses:
        print()
        print('| case | queries sent (whole runs) | stanzas the exchange got '
              '| share sent on to the exchange (misses) |')
        print('| --- | ---: | ---: | ---: |')
        for c in CASES:
            ms = misses.get(c)
            if not ms:
                continue
            sent = sum(m['sent_total'] for m in ms)
            got = sum(m['exchange_stanzas_in'] for m in ms)
            print('| %s | %d | %d | %.1f %% |' % (
                c, sent, got, 100.0 * got / max(sent, 1)))
    print()
    print('CPU A: the senders\' server (query cases: the root), CPU B: the '
          'receivers\' server (query cases: the exchange), in CPU seconds '
          'per second of the measured window. The stanzas the exchange got '
          'include a few of the status command\'s own session.')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
