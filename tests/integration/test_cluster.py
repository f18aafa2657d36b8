#!/usr/bin/env python3
"""A real 3-node cluster on loopback (icroot dev, separate processes),
driven only through icrootctl's online verbs:

- the cluster forms and applies its seed on every node;
- writes on any node (followers forward to the leader) are visible on all;
- kill -9 of the leader, then of a follower, during a stream of writes:
  the others go on, the killed node restarts from its data directory and
  catches up;
- history check: every acknowledged write is on every node, each graph
  holds exactly what its one write put there, and all replicas' digests
  are equal once quiet;
- with two of three nodes down, the last one refuses writes (no majority)
  and answers "outcome unknown"; after the others return, the cluster
  takes writes again;
- membership: leadership transferred on request; a node removed (the
  verb, sent to any node, follows the redirect to the leader), the two
  left take writes; the node wiped and started with join = true, added
  back, catches up to equal digests;
- a linearizable query on a follower;
- the dictionary sweep: a value replaced 40 more times leaves the
  dictionary the size it was (on every node, the replicas equal);
- a crash of a node's machine: its store (committed without sync) was
  open under another boot (store.boot) and its pages are torn; the node
  moves it aside, Raft rebuilds it from the snapshot and log, and every
  acknowledged write is there; a kill -9 in the same boot keeps the
  store; a clean stop syncs it and marks it closed;
- a register history: one writer replaces a graph with 1, 2, 3, ...
  through random nodes while readers read it linearizably from random
  nodes, across a kill -9 of the leader and its restart; a small checker
  then proves every read linearizable (its value was written before the
  read ended, and no later value was acknowledged before the read began),
  and the register ends at the last acknowledged value. (It found that
  concurrent icrootctl runs shared one full JID and took each other's
  answers: icrootctl now binds a resource of the server's choosing.)

    test_cluster.py BUILD/icroot BUILD/icrootctl
"""
import os
import random
import re
import shutil
import signal
import sys
import threading
import time

from cluster_harness import Cluster, check, check_register, failures, write

ICROOT, CTL = sys.argv[1], sys.argv[2]


def main():
    c = Cluster(ICROOT, CTL)
    try:
        run(c)
    except Exception as e:  # report, keep the directory
        check(False, 'the test itself failed: %r' % e)
        raise
    finally:
        rc = c.stop()
        check(rc == 0, 'icroot dev stops cleanly on SIGINT (exit %s)' % rc)
        if failures:
            print('--- kept', c.dir)
            for n in (1, 2, 3):
                log = os.path.join(c.dir, 'node%d.log' % n)
                if os.path.exists(log):
                    print('--- node%d.log (tail)' % n)
                    print(''.join(open(log).readlines()[-15:]))
        else:
            shutil.rmtree(c.dir, ignore_errors=True)
    print('%d failure(s)' % len(failures))
    return 1 if failures else 0


def run(c):
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'the seed is applied on every node, digests equal %s' % last)
    rc, out, _ = c.ctl(3, 'query', 'replicationFactor=5',
                       'tierCountries=JAPAN', 'StorageReplicationMethod=AMQP',
                       'InterCloudStorageAccess=NFS',
                       'availabilityQuanity=99.999')
    check(rc == 0 and out.split() == ['cloud2', 'cloud5'],
          'the seed query on node 3: %r' % out)

    alive = [1, 2, 3]
    acked, refused = [], []
    leader = c.leader(alive)
    check(leader is not None, 'a leader is elected (%s)' % leader)
    killed_leader = killed_follower = None
    for i in range(1, 31):
        if i == 8:
            killed_leader = c.leader(alive)
            c.kill(killed_leader)
            alive.remove(killed_leader)
        if i == 16:
            check(c.restart(killed_leader),
                  'node %s restarts from its directory' % killed_leader)
            alive.append(killed_leader)
        if i == 20:
            lead = c.leader(alive)
            killed_follower = [n for n in alive if n != lead][0]
            c.kill(killed_follower)
            alive.remove(killed_follower)
        if i == 26:
            check(c.restart(killed_follower),
                  'node %s restarts from its directory' % killed_follower)
            alive.append(killed_follower)
        node = alive[i % len(alive)]
        rc, err = write(c, node, i)
        (acked if rc == 0 else refused).append((i, node, err))
    check(len(acked) >= 25, '%d of 30 writes acknowledged, refused: %s'
          % (len(acked), refused))

    ok, last = c.quiet([1, 2, 3])
    check(ok, 'all replicas equal once quiet (index, digest): %s' % last)
    lost = []
    for n in (1, 2, 3):
        rc, out, err = c.ctl(n, 'dump', '--format', 'nq')
        for i, _, _ in acked:
            line = ('<http://example.org/w%d> <http://example.org/n> "%d" '
                    '<urn:icroot:graph:w%d> .' % (i, i, i))
            if out.count(line) != 1:
                lost.append((n, i))
        extra = [ln for ln in out.splitlines()
                 if '<urn:icroot:graph:w' in ln and
                 not any(('graph:w%d>' % i) in ln for i, _, _ in acked) and
                 not any(('graph:w%d>' % i) in ln for i, _, _ in refused)]
        check(not extra, 'node %d holds no write nobody made: %s' % (n, extra))
    check(not lost, 'no acknowledged write lost (node, write): %s' % lost)

    # no majority: two nodes down, the third refuses (outcome unknown)
    lead = c.leader([1, 2, 3])
    others = [n for n in (1, 2, 3) if n != lead]
    c.kill(lead)
    c.kill(others[0])
    t0 = time.time()
    rc, err = write(c, others[1], 99)
    check(rc != 0 and 'outcome unknown' in err,
          'a node without a majority refuses the write in %.1f s: %s'
          % (time.time() - t0, err))
    for n in (lead, others[0]):
        check(c.restart(n), 'node %d back' % n)
    rc, err = write(c, others[0], 100)
    check(rc == 0, 'writes again once the majority is back: %s' % err)
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'all replicas equal at the end: %s' % last)
    register_history(c)
    terms_swept(c)
    machine_crash(c)
    membership(c)


def register_history(c, seconds=9.0):
    alive = [1, 2, 3]
    writes, reads, lock, log = [], [], threading.Lock(), []
    stop = threading.Event()

    def writer():
        v = 0
        while not stop.is_set():
            v += 1
            path = os.path.join(c.dir, 'reg%d.ttl' % v)
            with open(path, 'w') as f:
                f.write('<http://example.org/reg> <http://example.org/v> '
                        '"%d" .\n' % v)
            t0 = time.monotonic()
            node = random.choice(alive)
            rc, _, _ = c.ctl(node, 'load', path, '--graph',
                             'urn:icroot:graph:reg')
            with lock:
                writes.append((v, t0, time.monotonic(), rc == 0))
                log.append(('w', v, node, t0, time.monotonic(), rc))

    def reader():
        while not stop.is_set():
            t0 = time.monotonic()
            node = random.choice(alive)
            rc, out, _ = c.ctl(node, 'dump', '--graph',
                               'urn:icroot:graph:reg', '--format', 'nq',
                               '--linearizable')
            t1 = time.monotonic()
            if rc == 0:
                m = re.search(r'"(\d+)"', out)
                with lock:
                    reads.append((int(m.group(1)) if m else 0, t0, t1))
                    log.append(('r', int(m.group(1)) if m else 0, node, t0,
                                t1, out.count('\n')))

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(seconds / 3)
    lead = c.leader(list(alive))
    alive.remove(lead)
    c.kill(lead)
    time.sleep(seconds / 3)
    check(c.restart(lead), 'the killed leader restarts')
    alive.append(lead)
    time.sleep(seconds / 3)
    stop.set()
    for t in threads:
        t.join(60)
    rc, out, _ = c.ctl(alive[0], 'dump', '--graph', 'urn:icroot:graph:reg',
                       '--format', 'nq', '--linearizable')
    m = re.search(r'"(\d+)"', out)
    final = int(m.group(1)) if m else 0
    top = max([w[0] for w in writes if w[3]] or [0])
    check(final >= top, 'the register ends at %d, the last acknowledged '
          'write was %d' % (final, top))
    acked = sum(1 for w in writes if w[3])
    check(acked >= 5 and len(reads) >= 10,
          'register history: %d writes (%d acknowledged), %d reads'
          % (len(writes), acked, len(reads)))
    bad = check_register(writes, reads)
    check(not bad, 'every read is linearizable: %s' % bad[:5])
    if bad:
        t = bad[0][1]
        for e in sorted(log, key=lambda e: e[3]):
            if abs(e[3] - t) < 0.15:
                print('   ', e)
    # the checker itself refuses a stale read and a read from the future
    check(check_register([(1, 0, 1, True), (2, 2, 3, True)],
                         [(1, 4, 5)]) != [] and
          check_register([(1, 0, 1, True), (2, 5, 6, True)],
                         [(2, 2, 3)]) != [],
          'the checker catches a stale read and a read from the future')
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'replicas equal after the register history: %s' % last)


def terms_swept(c):
    """Values replaced over and over leave the dictionary: the leader's
    sweep removes the terms no quad uses, the same on every replica. Two
    rounds of 40 replaced values each, the dictionary settled after each
    (passes start at most every 10 s): the second round leaves it the
    size the first did (without the sweep it grows by 40)."""
    def terms():
        sts = [c.status(n) for n in (1, 2, 3)]
        if not all(sts):
            return None
        return tuple(int(st['terms']) for st in sts)

    def settled(timeout=60):
        """The three nodes' term counts, once equal and unchanged for 12 s
        (more than a sweep pass's period)."""
        deadline, last, since = time.time() + timeout, None, time.time()
        while time.time() < deadline:
            now = terms()
            if now != last:
                last, since = now, time.time()
            elif (now and len(set(now)) == 1 and
                  time.time() - since >= 12):
                return now[0]
            time.sleep(1)
        return None

    path = os.path.join(c.dir, 'sweep.ttl')
    sizes = []
    for rnd in range(2):
        for v in range(1, 41):
            with open(path, 'w') as f:
                f.write('<http://example.org/sw> <http://example.org/v> '
                        '"swept-%d-%d" .\n' % (rnd, v))
            rc, _, err = c.ctl(1 + v % 3, 'load', path, '--graph',
                               'urn:icroot:graph:sweep')
            if rc != 0:
                check(False, 'sweep write %d/%d: %s' % (rnd, v, err))
                return
        sizes.append(settled())
    ok, last = c.quiet([1, 2, 3])
    check(None not in sizes and sizes[0] == sizes[1] and ok,
          'the replaced values left the dictionary on every node (terms '
          'after each round of 40: %s; replicas equal: %s)' % (sizes, ok))
    rc, out, _ = c.ctl(2, 'dump', '--graph', 'urn:icroot:graph:sweep',
                       '--format', 'nq')
    check(rc == 0 and '"swept-1-40"' in out and out.count('\n') == 1,
          'the graph still holds its last value: %r' % out)


def node_log(c, node):
    with open(os.path.join(c.dir, 'node%d.log' % node), errors='replace') as f:
        return f.read()


def machine_crash(c):
    rebuilt = 'rebuilt from the Raft snapshot and log'
    lead = c.leader([1, 2, 3])
    victim = [n for n in (1, 2, 3) if n != lead][0]
    rc, err = write(c, victim, 200)
    check(rc == 0, 'a write through node %d: %s' % (victim, err))
    c.kill(victim)
    d = os.path.join(c.dir, 'node%d' % victim)
    marker = os.path.join(d, 'store.boot')
    with open('/proc/sys/kernel/random/boot_id') as f:
        boot = f.read().strip()
    with open(marker) as f:
        fields = f.read().split()
    check(fields == [boot, 'open'],
          'a running node marks its store open under this boot: %s' % fields)
    # what a crash of the machine leaves: the marker names the boot that
    # ended, and the unsynced store holds garbage past its meta pages
    with open(marker, 'w') as f:
        f.write('00000000-0000-4000-8000-000000000000 open\n')
    db = os.path.join(d, 'store', 'data.mdb')
    with open(db, 'r+b') as f:
        f.seek(2 * 4096)
        f.write(os.urandom(max(0, min(os.path.getsize(db) - 8192,
                                      256 * 4096))))
    rc, err = write(c, lead, 201)
    check(rc == 0, 'a write while node %d is down: %s' % (victim, err))
    before = node_log(c, victim).count(rebuilt)
    check(c.restart(victim), 'node %d restarts after the crash' % victim)
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'replicas equal after the rebuild: %s' % last)
    check(node_log(c, victim).count(rebuilt) == before + 1,
          'node %d says it rebuilt its store' % victim)
    check(os.path.exists(os.path.join(d, 'store.unsynced', 'data.mdb')),
          'the torn store is kept aside in store.unsynced')
    rc, out, _ = c.ctl(victim, 'dump', '--format', 'nq')
    missing = [i for i in (200, 201)
               if '<http://example.org/w%d>' % i not in out]
    check(rc == 0 and not missing,
          'node %d has the writes from before and during its crash: '
          'missing %s' % (victim, missing))
    # kill -9, same boot: the page cache has every commit, store kept
    c.kill(victim)
    check(c.restart(victim), 'node %d restarts after kill -9' % victim)
    check(node_log(c, victim).count(rebuilt) == before + 1,
          'a kill -9 in the same boot keeps the store')
    # a clean stop syncs the store and marks it closed
    proc = [p for p in c.restarted if p.pid == c.pids[victim]][0]
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    with open(marker) as f:
        fields = f.read().split()
    check(fields == [boot, 'closed'],
          'a clean stop marks the store closed: %s' % fields)
    check(c.restart(victim), 'node %d back after its clean stop' % victim)
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'replicas equal after the crash tests: %s' % last)


def members(c, node):
    rc, out, _ = c.ctl(node, 'members')
    return sorted(int(line.split()[1]) for line in out.splitlines()
                  if line.startswith('member'))


def membership(c):
    lead = c.leader([1, 2, 3])
    target = [n for n in (1, 2, 3) if n != lead][0]
    rc, out, err = c.ctl(lead, 'transfer', str(target))
    if rc != 0 and 'timed out' in err:
        # raft gives the target one election timeout to win; on a loaded
        # machine (ASan nodes, tests in parallel) it may not, and the
        # leader says so: an operator asks again, so does the test
        print('note transfer timed out once, asking again: %s' % err.strip())
        lead = c.leader([1, 2, 3])
        if lead != target:  # or it did lead in the end
            rc, out, err = c.ctl(lead, 'transfer', str(target))
        else:
            rc = 0
    check(rc == 0, 'transfer leadership to node %d: %s' % (target, err))
    check(c.leader([1, 2, 3]) == target, 'node %d leads now' % target)

    victim = [n for n in (1, 2, 3) if n != target][0]
    other = [n for n in (1, 2, 3) if n not in (target, victim)][0]
    # sent to a follower: it answers with a redirect, icrootctl follows it
    rc, out, err = c.ctl(other, 'member-remove', str(victim))
    check(rc == 0, 'member-remove %d via a follower: %s' % (victim, err))
    check(members(c, target) == sorted([target, other]),
          'members after the removal: %s' % members(c, target))
    os.kill(c.pids[victim], signal.SIGTERM)
    time.sleep(1)
    rc, err = write(c, other, 200)
    check(rc == 0, 'the two remaining nodes take writes: %s' % err)

    # back as a new, empty node that joins
    shutil.rmtree(os.path.join(c.dir, 'node%d' % victim))
    conf = os.path.join(c.dir, 'node%d.conf' % victim)
    text = open(conf).read()
    check('join = false' in text, 'the config writes join = false')
    open(conf, 'w').write(text.replace('join = false', 'join = true'))
    check(c.restart(victim, empty=True),
          'node %d starts empty with join = true' % victim)
    raft_port = c.base + 10 * (victim - 1) + 3
    rc, out, err = c.ctl(other, 'member-add', str(victim),
                         '127.0.0.1:%d' % raft_port)
    check(rc == 0, 'member-add %d: %s' % (victim, err))
    check(members(c, target) == [1, 2, 3],
          'members after adding it back: %s' % members(c, target))
    ok, last = c.quiet([1, 2, 3])
    check(ok, 'the new node caught up, digests equal: %s' % last)
    rc, out, _ = c.ctl(victim, 'dump', '--graph', 'urn:icroot:graph:w200',
                       '--format', 'nq')
    check('"200"' in out, 'the new node has a write made while it was out')

    # a linearizable query on a follower
    rc, out, err = c.ctl(victim, 'query', '--linearizable',
                         'replicationFactor=5')
    check(rc == 0 and 'cloud2' in out.split(),
          'a linearizable query on a follower: %r %s' % (out, err))

if __name__ == '__main__':
    sys.exit(main())
