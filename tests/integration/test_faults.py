#!/usr/bin/env python3
"""Fault tests of a real 3-node cluster (separate `icroot run` processes),
each node in a network namespace of its own, driven through icrootctl:

- disk full: node 3's data directory is a 64 MiB tmpfs in a mount
  namespace of its own; the test fills it with a file, makes node 3 the
  leader and writes catalog data through the others. Node 3 says so once
  ("store full: DIR: ..."), stays up, hands leadership over, and the
  cluster acknowledges every write; once the file is removed node 3
  applies what it held, without a restart, to equal digests.
- partition: the leader is cut off from the two others (blackhole routes
  inside the nodes' namespaces; the test still reaches every node). The
  majority elects a leader and keeps taking writes while a register
  history (one writer, linearizable readers) runs against it; a write
  through the cut-off node is refused ("outcome unknown"). After healing,
  it catches up; every read was linearizable (cluster_harness's checker),
  no acknowledged write is lost and all digests are equal.

With ICROOT_LONG_FAULTS=1 a randomized run follows (ICROOT_LONG_FAULTS_SECONDS,
default 300): kill -9 and restart, partitions and disk-full episodes at
random, under a concurrent register history checked the same way.

Topology (all created here, removed at the end even on failure): a hub
namespace with a bridge 10.77.0.254/24 (icroot dev and icrootctl run
there), nodes i = 1..3 in namespaces of their own at 10.77.0.i, joined to
the bridge by veth pairs; nothing is added to the root namespace but the
namespaces' names under /run/netns.

    test_faults.py [BUILD/icroot BUILD/icrootctl]
        (default: $ICROOT_BUILD/icroot, $ICROOT_BUILD defaults to build/)

Exits 77 (skipped) only when the kernel refuses the namespaces.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cluster_harness import check_register, wait_quiet

HERE = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) >= 3 and not sys.argv[1].startswith('-'):
    ICROOT, CTL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    del sys.argv[1:3]
else:
    BUILD = os.environ.get('ICROOT_BUILD',
                           os.path.join(HERE, '..', '..', 'build'))
    ICROOT = os.path.abspath(os.path.join(BUILD, 'icroot'))
    CTL = os.path.abspath(os.path.join(BUILD, 'icrootctl'))
LONG = os.environ.get('ICROOT_LONG_FAULTS') == '1'
LONG_SECONDS = float(os.environ.get('ICROOT_LONG_FAULTS_SECONDS', '300'))
TAG = 'icf%d' % (os.getpid() % 100000)
NET = '10.77.0.'
BASE = 26400  # inside the namespaces: no other test's ports there
# raft 0.22 preallocates its open segments, 8 MiB each, two or three at
# a time: 24 MiB filled up by itself (a store full, or a restart refused,
# with no filler at all). The disk-full checks fill whatever is free.
TMPFS_MB = int(os.environ.get('ICROOT_FAULTS_TMPFS_MB', '64'))
FULL_NODE = 3


def sh(*args, check=True, timeout=60):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(args), p.stderr.strip()))
    return p


def kernel_allows_namespaces():
    if os.geteuid() != 0:
        return 'not root'
    name = TAG + 'probe'
    try:
        sh('ip', 'netns', 'add', name)
        sh('ip', 'netns', 'del', name)
        sh('unshare', '--mount', '--propagation', 'private', 'true')
    except (RuntimeError, OSError) as e:
        return str(e)
    return None


class Net:
    """The hub and node namespaces, the bridge, the veth pairs, and the
    blackhole routes of partitions."""

    def __init__(self):
        self.hub = TAG + 'h'
        self.ns = {i: '%sn%d' % (TAG, i) for i in (1, 2, 3)}
        self.cut = set()  # (from node, to node) blackholed
        self.made = []
        try:
            self._build()
        except Exception:
            self.remove()
            raise

    def _build(self):
        sh('ip', 'netns', 'add', self.hub)
        self.made.append(self.hub)
        sh('ip', '-n', self.hub, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', self.hub, 'link', 'add', 'br0', 'type', 'bridge')
        sh('ip', '-n', self.hub, 'addr', 'add', NET + '254/24', 'dev', 'br0')
        sh('ip', '-n', self.hub, 'link', 'set', 'br0', 'up')
        for i, ns in self.ns.items():
            sh('ip', 'netns', 'add', ns)
            self.made.append(ns)
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            sh('ip', '-n', self.hub, 'link', 'add', 'p%d' % i, 'type', 'veth',
               'peer', 'name', 'e0', 'netns', ns)
            sh('ip', '-n', self.hub, 'link', 'set', 'p%d' % i, 'master', 'br0')
            sh('ip', '-n', self.hub, 'link', 'set', 'p%d' % i, 'up')
            sh('ip', '-n', ns, 'addr', 'add', NET + '%d/24' % i, 'dev', 'e0')
            sh('ip', '-n', ns, 'link', 'set', 'e0', 'up')

    def run_in(self, where):
        """The command prefix that runs a program in namespace WHERE."""
        return ['nsenter', '--net=/run/netns/' + where]

    def isolate(self, node):
        for j in self.ns:
            if j != node:
                for a, b in ((node, j), (j, node)):
                    sh('ip', '-n', self.ns[a], 'route', 'add', 'blackhole',
                       NET + str(b) + '/32')
                    self.cut.add((a, b))

    def heal(self):
        for a, b in sorted(self.cut):
            sh('ip', '-n', self.ns[a], 'route', 'del', 'blackhole',
               NET + str(b) + '/32', check=False)
        self.cut.clear()

    def remove(self):
        self.heal()
        for ns in reversed(self.made):
            sh('ip', 'netns', 'del', ns, check=False)
        self.made = []


class FaultCluster:
    """Three `icroot run` processes, one per namespace; node FULL_NODE has
    its data directory on a tmpfs in a mount namespace that a holder
    process keeps alive (so the node can be killed and restarted on it)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='icroot-faults-')
        self.net = Net()
        self.procs = {}
        self.holder = None
        self.logpos = {}
        try:
            self._generate()
            self._mount_tmpfs()
            for i in (1, 2, 3):
                self.start(i)
        except Exception:
            self.stop()
            raise

    def _generate(self):
        """icroot dev (in the hub) makes the CA, certificates, seed and
        configs; the configs are rewritten for the nodes' own addresses
        and the data made again from scratch."""
        out = open(os.path.join(self.dir, 'dev.out'), 'w')
        dev = subprocess.Popen(
            self.net.run_in(self.net.hub) +
            [ICROOT, 'dev', '--nodes', '3', '--dir', self.dir,
             '--base-port', str(BASE)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        path = os.path.join(self.dir, 'cluster.json')
        deadline = time.time() + 90
        while not os.path.exists(path):
            if dev.poll() is not None or time.time() > deadline:
                dev.kill()
                raise RuntimeError('icroot dev did not start')
            time.sleep(0.1)
        dev.send_signal(signal.SIGINT)
        dev.wait(60)
        out.close()
        with open(path) as f:
            info = json.load(f)
        peers = ', '.join('%d=%s%d:%d' % (i, NET, i, BASE + 10 * (i - 1) + 3)
                          for i in (1, 2, 3))
        for n in info['nodes']:
            i = n['id']
            n['host'] = NET + str(i)
            with open(n['config']) as f:
                conf = f.read()
            conf = re.sub(r'(?m)^address = .*$', 'address = %s%d' % (NET, i),
                          conf)
            conf = re.sub(r'(?m)^peers = .*$', 'peers = ' + peers, conf)
            conf = re.sub(r'(?m)^join = .*$', 'join = false', conf)
            if os.environ.get('ICROOT_FAULTS_LOG_LEVEL'):
                conf = re.sub(r'(?m)^log_level = .*$', 'log_level = ' +
                              os.environ['ICROOT_FAULTS_LOG_LEVEL'], conf)
            conf = re.sub(r'(?m)^snapshot_threshold = .*$',
                          'snapshot_threshold = 512', conf)
            conf = re.sub(r'(?m)^snapshot_trailing = .*$',
                          'snapshot_trailing = 256', conf)
            with open(n['config'], 'w') as f:
                f.write(conf)
            shutil.rmtree(n['data_dir'])
            os.mkdir(n['data_dir'])
        self.info = info
        self.cluster_json = path
        with open(path, 'w') as f:
            json.dump(info, f)

    def data_dir(self, i):
        return os.path.join(self.dir, 'node%d' % i)

    def _mount_tmpfs(self):
        d = self.data_dir(FULL_NODE)
        self.holder = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
             'mount -t tmpfs -o size=%dm icroot-faults "$0" && echo up && '
             'exec sleep 100000' % TMPFS_MB, d],
            stdout=subprocess.PIPE, text=True)
        if self.holder.stdout.readline().strip() != 'up':
            raise RuntimeError('cannot mount a tmpfs in a mount namespace')

    def in_mount_ns(self, *cmd, check=True):
        return sh('nsenter', '-t', str(self.holder.pid), '-m', *cmd,
                  check=check)

    def start(self, i):
        conf = os.path.join(self.dir, 'node%d.conf' % i)
        log = open(os.path.join(self.dir, 'node%d.log' % i), 'a')
        cmd = self.net.run_in(self.net.ns[i])
        if i == FULL_NODE:
            cmd += ['--mount=/proc/%d/ns/mnt' % self.holder.pid]
        self.procs[i] = subprocess.Popen(
            cmd + [ICROOT, 'run', '--config', conf], stdout=log,
            stderr=subprocess.STDOUT)
        log.close()

    def alive(self, i):
        return self.procs[i].poll() is None

    def started(self, i, timeout=20):
        """After start(I): None once node I answers status, else why not
        (it exited: its last log line)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive(i):
                tail = self.log(i).rstrip().splitlines()[-1:]
                return 'node %d exited %s at its start: %s' % (
                    i, self.procs[i].returncode, tail)
            if self.status(i) is not None:
                return None
            time.sleep(0.2)
        return None  # up but slow to answer (cut off, catching up): fine

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait(30)

    def ctl(self, node, *args, timeout=40):
        p = subprocess.run(
            self.net.run_in(self.net.hub) +
            [CTL, '--cluster', self.cluster_json, '--node', str(node)] +
            list(args), capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr.strip()

    def status(self, node):
        try:
            rc, out, _ = self.ctl(node, 'status', timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if rc != 0:
            return None
        st = {}
        for line in out.splitlines():
            k, _, v = line.partition(' ')
            if k != 'raft.member':
                st[k] = v.strip()
        return st

    def leader(self, nodes, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for n in nodes:
                st = self.status(n)
                if st and st.get('raft.state') == 'leader':
                    return n
            time.sleep(0.2)
        return None

    def quiet(self, nodes=(1, 2, 3), timeout=60):
        return wait_quiet(self.status, nodes, timeout, 0.3)

    def log(self, i):
        with open(os.path.join(self.dir, 'node%d.log' % i),
                  errors='replace') as f:
            return f.read()

    def transfer_to(self, target):
        for _ in range(10):
            lead = self.leader((1, 2, 3))
            if lead == target:
                return True
            if lead is not None:
                self.ctl(lead, 'transfer', str(target))
            time.sleep(0.5)
        return self.leader((1, 2, 3)) == target

    def stop(self):
        """Stops every node with SIGTERM: their exit codes. A node that had
        already exited (a restart refused, a crash) is listed in
        self.died_before_stop with its code."""
        rcs = {}
        self.died_before_stop = {}
        for i, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            else:
                self.died_before_stop[i] = p.returncode
        for i, p in self.procs.items():
            try:
                rcs[i] = p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                rcs[i] = p.wait()
        if self.holder is not None:
            self.holder.kill()  # its mount namespace and tmpfs go with it
            self.holder.wait()
            self.holder.stdout.close()
        self.net.remove()
        return rcs


class History:
    """Writes (each its own graph) and register operations, and the checks
    on them."""

    def __init__(self, c):
        self.c = c
        self.acked, self.refused = [], []  # (i, node, err)
        self.next = 0
        self.lock = threading.Lock()
        self.reg_writes, self.reg_reads = [], []
        self.reg_garbled = []  # dumps that answered rc 0 but no register
        self.reg_value = 0

    def write(self, node, size=1):
        """Graph urn:icroot:graph:fI gets SIZE statements through NODE."""
        with self.lock:
            self.next += 1
            i = self.next
        path = os.path.join(self.c.dir, 'f%d.ttl' % i)
        with open(path, 'w') as f:
            for k in range(size):
                f.write('<http://example.org/f%d/%d> <http://example.org/n> '
                        '"%d %s" .\n' % (i, k, i, 'x' * 200))
        rc, _, err = self.c.ctl(node, 'load', path, '--graph',
                                'urn:icroot:graph:f%d' % i)
        os.unlink(path)
        with self.lock:
            (self.acked if rc == 0 else self.refused).append((i, node, err))
        return rc, err

    def check_all(self, tc, nodes=(1, 2, 3)):
        """No acknowledged write lost, none twice, nothing nobody wrote,
        equal digests."""
        ok, last = self.c.quiet(nodes)
        tc.assertTrue(ok, 'replicas equal once quiet: %s' % (last,))
        acked = {i for i, _, _ in self.acked}
        tried = acked | {i for i, _, _ in self.refused}
        for n in nodes:
            rc, out, err = self.c.ctl(n, 'dump', '--format', 'nq')
            tc.assertEqual(rc, 0, err)
            count = {}
            for m in re.finditer(r'<urn:icroot:graph:f(\d+)> \.$', out,
                                 re.M):
                count[int(m.group(1))] = count.get(int(m.group(1)), 0) + 1
            lost = sorted(i for i in acked if i not in count)
            tc.assertEqual(lost, [], 'node %d lost acknowledged writes' % n)
            size = {i: s for i, s in getattr(self, 'sizes', {}).items()}
            twice = sorted(i for i, k in count.items()
                           if k != size.get(i, 1))
            tc.assertEqual(twice, [], 'node %d: graphs with a wrong number '
                           'of statements' % n)
            extra = sorted(i for i in count if i not in tried)
            tc.assertEqual(extra, [], 'node %d: writes nobody made' % n)

    REG_QUAD = re.compile(r'<http://example\.org/reg> <http://example\.org/v> '
                          r'"(\d+)" <urn:icroot:graph:reg> \.')

    @classmethod
    def parse_register(cls, out):
        """The value of a dump of the register graph: 0 for an empty dump
        (never written yet), -N for N values at once, None for anything
        else (never taken for a value)."""
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        vals = []
        for l in lines:
            m = cls.REG_QUAD.fullmatch(l)
            if m is None:
                return None
            vals.append(int(m.group(1)))
        return vals[0] if len(vals) == 1 else -len(vals)

    # the register: one writer, linearizable readers
    def register(self, nodes_fn, stop, readers=2):
        def writer():
            while not stop.is_set():
                with self.lock:
                    self.reg_value += 1
                    v = self.reg_value
                path = os.path.join(self.c.dir, 'reg%d.ttl' % v)
                with open(path, 'w') as f:
                    f.write('<http://example.org/reg> <http://example.org/v> '
                            '"%d" .\n' % v)
                t0 = time.monotonic()
                try:
                    rc, _, _ = self.c.ctl(random.choice(nodes_fn()), 'load',
                                          path, '--graph',
                                          'urn:icroot:graph:reg')
                except subprocess.TimeoutExpired:
                    rc = -1
                with self.lock:
                    self.reg_writes.append((v, t0, time.monotonic(), rc == 0))
                os.unlink(path)

        def reader():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    rc, out, _ = self.c.ctl(
                        random.choice(nodes_fn()), 'dump', '--graph',
                        'urn:icroot:graph:reg', '--format', 'nq',
                        '--linearizable')
                except subprocess.TimeoutExpired:
                    continue
                t1 = time.monotonic()
                if rc == 0:
                    v = self.parse_register(out)
                    with self.lock:
                        if v is None:
                            self.reg_garbled.append(out)
                        else:
                            self.reg_reads.append((v, t0, t1))

        threads = [threading.Thread(target=writer)] + [
            threading.Thread(target=reader) for _ in range(readers)]
        for t in threads:
            t.start()
        return threads

    def check_register(self, tc, min_acked=3, min_reads=5):
        acked = sum(1 for w in self.reg_writes if w[3])
        tc.assertGreaterEqual(acked, min_acked, 'register writes acknowledged')
        tc.assertGreaterEqual(len(self.reg_reads), min_reads, 'register reads')
        several = [r for r in self.reg_reads if r[0] < 0]
        tc.assertEqual(several, [], 'reads that saw several values at once')
        tc.assertEqual(self.reg_garbled[:3], [], 'reads that did not parse')
        bad = check_register(self.reg_writes, self.reg_reads,
                             late_in_doubt=True)
        tc.assertEqual(bad[:5], [], 'every read is linearizable')
        lead = self.c.leader((1, 2, 3))
        rc, out, err = self.c.ctl(lead, 'dump', '--graph',
                                  'urn:icroot:graph:reg', '--format', 'nq',
                                  '--linearizable')
        tc.assertEqual(rc, 0, err)
        vals = [int(v) for v in re.findall(r'"(\d+)"', out)]
        top = max([w[0] for w in self.reg_writes if w[3]] or [0])
        tc.assertEqual(len(vals), 1, 'the register holds one value: %s' % out)
        started = {w[0]: w for w in self.reg_writes}
        tc.assertTrue(vals[0] == top or
                      (vals[0] > top and not started[vals[0]][3]),
                      'the register ends at %d, the last acknowledged write '
                      'was %d' % (vals[0], top))


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = FaultCluster()
        cls.h = History(cls.c)
        cls.h.sizes = {}
        ok, last = cls.c.quiet(timeout=90)
        if not ok:
            raise RuntimeError('the cluster did not form: %s' % (last,))

    @classmethod
    def tearDownClass(cls):
        rcs = cls.c.stop()
        bad = {i: rc for i, rc in rcs.items() if rc != 0}
        if bad or not cls.ok:
            print('--- kept %s; exits %s' % (cls.c.dir, rcs))
            for i, rc in cls.c.died_before_stop.items():
                print('--- node %d had exited %s before the stop (not on '
                      'SIGTERM): %s' % (i, rc,
                                        cls.c.log(i).rstrip()
                                        .splitlines()[-1:]))
            for i in (1, 2, 3):
                print('--- node%d.log (tail)' % i)
                print(''.join(cls.c.log(i).splitlines(True)[-20:]))
        else:
            shutil.rmtree(cls.c.dir, ignore_errors=True)
        cls.exits = rcs
        cls.died = dict(cls.c.died_before_stop)

    ok = True

    def run(self, result=None):
        r = super().run(result)
        if result is not None and (result.failures or result.errors):
            type(self).ok = False
        return r

    def fill(self):
        """Fills node FULL_NODE's tmpfs to the last byte."""
        d = self.c.data_dir(FULL_NODE)
        self.c.in_mount_ns('sh', '-c', 'dd if=/dev/zero of="$0"/filler bs=64k '
                           '2>/dev/null; true', d)
        df = self.c.in_mount_ns('df', '-k', '--output=avail', d).stdout
        return int(df.split()[-1])

    def unfill(self):
        self.c.in_mount_ns('rm', '-f',
                           os.path.join(self.c.data_dir(FULL_NODE), 'filler'))

    def store_applied(self, node):
        st = self.c.status(node)
        return int(st['appliedIndex']) if st else None

    def test_1_disk_full(self):
        c, h = self.c, self.h
        self.assertTrue(c.transfer_to(FULL_NODE),
                        'node %d leads before its disk fills' % FULL_NODE)
        try:
            self.disk_full_body()
        finally:
            self.unfill()  # even when a check failed: the next tests
        ok, last = c.quiet(timeout=60)
        self.assertTrue(ok, 'node %d caught up once space returned: %s'
                        % (FULL_NODE, last))
        self.assertTrue(c.alive(FULL_NODE) and
                        c.procs[FULL_NODE].pid == self.full_pid,
                        'without a restart')
        self.assertIn('store has room again', c.log(FULL_NODE))
        rc, err = h.write(FULL_NODE)
        self.assertEqual(rc, 0, 'writes through node %d again: %s'
                         % (FULL_NODE, err))
        h.check_all(self)

    def disk_full_body(self):
        c, h = self.c, self.h
        others = [n for n in (1, 2, 3) if n != FULL_NODE]
        self.assertLess(self.fill(), 64, 'the tmpfs is full')
        pid = self.full_pid = c.procs[FULL_NODE].pid
        # ~40 KiB per write (N-Triples in, three indexes, the Raft log)
        for k in range(60):
            i_node = others[k % 2]
            rc, err = h.write(i_node, size=150)
            h.sizes[h.next] = 150
            self.assertEqual(rc, 0, 'write %d through node %d while node %d '
                             'is full: %s' % (h.next, i_node, FULL_NODE, err))
        log = c.log(FULL_NODE)
        full = re.findall(r'store full: (\S+): (no space left on device|'
                          r'store is full)', log)
        self.assertTrue(full, 'node %d says its store is full' % FULL_NODE)
        # one line per episode (the store may catch up and fill again
        # within the 60 writes), not one per entry
        episodes = len(re.findall(r'store full: /', log))
        recovered = len(re.findall(r'store has room again', log))
        self.assertTrue(1 <= episodes <= recovered + 1,
                        '%d "store full" lines for %d recoveries'
                        % (episodes, recovered))
        self.assertIn(c.data_dir(FULL_NODE), full[0][0],
                      'the line names the data directory')
        self.assertTrue(c.alive(FULL_NODE) and c.procs[FULL_NODE].pid == pid,
                        'node %d stays up' % FULL_NODE)
        ok, last = c.quiet(others)
        self.assertTrue(ok, 'the two others agree: %s' % (last,))
        behind = self.store_applied(FULL_NODE)
        self.assertIsNotNone(behind, 'the full node answers status')
        self.assertLess(behind, self.store_applied(others[0]),
                        'the full node\'s store did not apply what did not fit')
        self.assertIn(c.leader((1, 2, 3)), others,
                      'the full node handed leadership over')
        # a linearizable read through the full node sees the last
        # acknowledged write or is refused (it waited 2 s, then read its
        # stale store, before the fix)
        last = h.acked[-1][0]
        t0 = time.monotonic()
        rc, out, err = c.ctl(FULL_NODE, 'dump', '--graph',
                             'urn:icroot:graph:f%d' % last, '--format', 'nq',
                             '--linearizable')
        self.assertTrue(rc != 0 or out.count('\n') == 150,
                        'a linearizable read on the full node is not stale: '
                        'rc %d, %d lines after %.1f s'
                        % (rc, out.count('\n'), time.monotonic() - t0))
        # space returns (the caller removes the filler): caught up
        # without a restart

    def test_2_partition(self):
        c, h = self.c, self.h
        cut = c.leader((1, 2, 3))
        self.assertIsNotNone(cut)
        majority = [n for n in (1, 2, 3) if n != cut]
        stop = threading.Event()
        threads, refused = [], {'r': (None, 'never tried')}
        c.net.isolate(cut)
        t_cut = time.monotonic()
        try:
            new = c.leader(majority, timeout=30)
            self.assertIn(new, majority, 'the majority elects a leader')
            threads = h.register(lambda: majority, stop)

            def minority_write():
                refused['r'] = h.write(cut)

            tm = threading.Thread(target=minority_write)
            tm.start()
            for k in range(10):
                rc, err = h.write(majority[k % 2])
                self.assertEqual(rc, 0, 'the majority takes writes: %s' % err)
            tm.join(60)
            st = c.status(cut)
            self.assertTrue(st is not None and st['raft.state'] != 'leader',
                            'the cut-off node no longer leads: %s' % st)
            rc, out, err = c.ctl(cut, 'query', 'replicationFactor=5')
            self.assertEqual(rc, 0, 'the cut-off node still answers queries '
                             'from its store: %s' % err)
        finally:
            stop.set()
            c.net.heal()
        for t in threads:
            t.join(60)
        rc, err = refused['r']
        self.assertTrue(rc != 0 and 'outcome unknown' in err,
                        'a write through the cut-off node is refused: %s'
                        % err)
        self.assertGreater(time.monotonic() - t_cut, 15)
        h.check_register(self)
        h.check_all(self)

    @unittest.skipUnless(LONG, 'set ICROOT_LONG_FAULTS=1')
    def test_3_long_random(self):
        c, h = self.c, self.h
        rng = random.Random(os.environ.get('ICROOT_FAULTS_SEED'))
        down, cut, full = set(), None, False
        stop = threading.Event()

        def reachable():
            r = [n for n in (1, 2, 3) if n not in down and n != cut]
            return r or [1]

        threads = h.register(reachable, stop, readers=3)
        end = time.time() + LONG_SECONDS
        events = []
        try:
            while time.time() < end:
                what = rng.choice(['kill', 'partition', 'disk', 'writes'])
                n = rng.choice((1, 2, 3))
                events.append((round(time.time() % 1000, 1), what, n))
                if what == 'kill':
                    c.kill(n)
                    down.add(n)
                    time.sleep(rng.uniform(0.5, 6))
                    c.start(n)
                    why = c.started(n)
                    self.assertIsNone(why, 'a node killed comes back')
                    down.discard(n)
                elif what == 'partition':
                    cut = n
                    c.net.isolate(n)
                    time.sleep(rng.uniform(1, 20))
                    c.net.heal()
                    cut = None
                elif what == 'disk' and not full:
                    full = True
                    self.fill()
                    # through the others: one through the full node waits
                    # for its store and ends "outcome unknown" after 15 s
                    # (the readers and the register writer still use it)
                    others = [m for m in reachable() if m != FULL_NODE]
                    for _ in range(rng.randrange(5, 30)):
                        h.write(rng.choice(others or reachable()), size=100)
                        h.sizes[h.next] = 100
                    self.unfill()
                    full = False
                else:
                    for _ in range(rng.randrange(1, 10)):
                        h.write(rng.choice(reachable()))
                time.sleep(rng.uniform(0, 3))
        finally:
            stop.set()
            c.net.heal()
            cut = None
            if full:
                self.unfill()
            for n in list(down):
                if not c.alive(n):
                    c.start(n)
        for t in threads:
            t.join(90)
        print('long run: %d events, %d writes acknowledged, %d refused, '
              '%d register writes (%d acknowledged), %d reads (%d of them '
              'the initial 0)'
              % (len(events), len(h.acked), len(h.refused),
                 len(h.reg_writes), sum(1 for w in h.reg_writes if w[3]),
                 len(h.reg_reads), sum(1 for r in h.reg_reads if r[0] == 0)),
              flush=True)
        print('events: %s' % events, flush=True)
        print('node %d: %d "store full" episodes, %d writes not applied '
              'here in time' % (FULL_NODE, c.log(FULL_NODE).count(
                  'store full: /'), sum(c.log(n).count('not here in time')
                                        for n in (1, 2, 3))), flush=True)
        h.check_register(self, min_acked=10, min_reads=20)
        h.check_all(self)

    def test_4_clean_stop(self):
        """Checked in tearDownClass: every node exits 0 on SIGTERM."""


def main():
    if not (os.access(ICROOT, os.X_OK) and os.access(CTL, os.X_OK)):
        print('no %s or %s: build first' % (ICROOT, CTL))
        return 1
    why = kernel_allows_namespaces()
    if why is not None:
        print('skipped: the kernel refuses namespaces: %s' % why)
        return 77
    prog = unittest.main(exit=False, verbosity=2)
    ok = prog.result.wasSuccessful()
    exits = getattr(Faults, 'exits', {})
    if any(rc != 0 for rc in exits.values()):
        died = getattr(Faults, 'died', {})
        print('FAIL: nodes did not stop cleanly: %s%s' % (
            exits, '; exited before the stop: %s' % died if died else ''))
        ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
