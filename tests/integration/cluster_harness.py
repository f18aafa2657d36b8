"""Shared pieces of the real-process cluster tests (test_cluster.py,
test_faults.py): a check() that records failures, a free port range, the
`icroot dev` launcher with icrootctl helpers, one write per graph, and the
register linearizability checker.
"""
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time

failures = []

def check(ok, what):
    print(('ok   ' if ok else 'FAIL ') + what, flush=True)
    if not ok:
        failures.append(what)


def free_base():
    for _ in range(200):
        p = random.randrange(20000, 32000, 10)
        socks = []
        try:
            for q in range(p, p + 30):
                s = socket.socket()
                s.bind(('127.0.0.1', q))
                socks.append(s)
            return p
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise RuntimeError('no free ports')



def wait_quiet(status, nodes, timeout, period):
    """Until STATUS(n) of every node in NODES gives the same applied index
    and digest: (True, [(index, digest)...]), or (False, the last seen)
    after TIMEOUT seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        sts = [status(n) for n in nodes]
        if all(sts):
            last = [(s['appliedIndex'], s['digest']) for s in sts]
            if len(set(last)) == 1:
                return True, last
        time.sleep(period)
    return False, last

class Cluster:
    def __init__(self, icroot, ctl):
        self.icroot, self.ctl_path = icroot, ctl
        self.dir = tempfile.mkdtemp(prefix='icroot-cluster-')
        self.base = free_base()
        self.dev = subprocess.Popen(
            [icroot, 'dev', '--nodes', '3', '--dir', self.dir,
             '--base-port', str(self.base)],
            stdout=open(os.path.join(self.dir, 'dev.out'), 'w'),
            stderr=subprocess.STDOUT, start_new_session=True)
        path = os.path.join(self.dir, 'cluster.json')
        deadline = time.time() + 90
        while not os.path.exists(path):
            if self.dev.poll() is not None or time.time() > deadline:
                raise RuntimeError('icroot dev did not start: ' +
                                   open(os.path.join(self.dir, 'dev.out'))
                                   .read()[-2000:])
            time.sleep(0.1)
        self.info = json.load(open(path))
        self.pids = {n['id']: n['pid'] for n in self.info['nodes']}
        self.restarted = []

    def ctl(self, node, *args, timeout=40, env=None):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([self.ctl_path, '--cluster',
                            os.path.join(self.dir, 'cluster.json'),
                            '--node', str(node)] + list(args),
                           capture_output=True, text=True, timeout=timeout,
                           env=e)
        return p.returncode, p.stdout, p.stderr

    def status(self, node):
        rc, out, _ = self.ctl(node, 'status', timeout=20)
        if rc != 0:
            return None
        st = {}
        for line in out.splitlines():
            k, _, v = line.partition(' ')
            if k != 'raft.member':
                st[k] = v.strip()
        return st

    def leader(self, alive):
        for _ in range(100):
            for n in alive:
                st = self.status(n)
                if st and st.get('raft.state') == 'leader':
                    return n
            time.sleep(0.1)
        return None

    def kill(self, node):
        try:
            os.kill(self.pids[node], signal.SIGKILL)
        except ProcessLookupError:
            check(False, 'node %d was still running when killed' % node)
            return
        for _ in range(100):
            try:
                os.kill(self.pids[node], 0)
            except ProcessLookupError:
                return
            # icroot dev reaps it; wait until it is gone
            time.sleep(0.05)

    def port_open(self, node):
        try:
            socket.create_connection(
                ('127.0.0.1', self.base + 10 * (node - 1)), 0.5).close()
            return True
        except OSError:
            return False

    def restart(self, node, empty=False):
        """Starts NODE again; an EMPTY one (no accounts yet) counts as up
        once it accepts connections."""
        conf = os.path.join(self.dir, 'node%d.conf' % node)
        log = open(os.path.join(self.dir, 'node%d.log' % node), 'a')
        p = subprocess.Popen([self.icroot, 'run', '--config', conf], stdout=log,
                             stderr=subprocess.STDOUT)
        self.pids[node] = p.pid
        self.restarted.append(p)
        for _ in range(100):
            if (self.port_open(node) if empty else
                    self.status(node) is not None):
                return True
            time.sleep(0.1)
        return False

    def quiet(self, nodes, timeout=30):
        """Waits until NODES report the same applied index and digest."""
        return wait_quiet(self.status, nodes, timeout, 0.2)

    def stop(self):
        self.dev.send_signal(signal.SIGINT)
        try:
            rc = self.dev.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.dev.pid, signal.SIGKILL)
            rc = -1
        for p in self.restarted:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        return rc


def write(c, node, i):
    """Loads one statement into graph urn:icroot:graph:wI through NODE."""
    path = os.path.join(c.dir, 'w%d.ttl' % i)
    with open(path, 'w') as f:
        f.write('<http://example.org/w%d> <http://example.org/n> "%d" .\n'
                % (i, i))
    rc, out, err = c.ctl(node, 'load', path)
    return rc, err.strip()



def check_register(writes, reads, late_in_doubt=False):
    """Linearizability of a register with one sequential writer of values
    1, 2, 3, ...: WRITES (value, start, end, acknowledged), READS (value,
    start, end; 0 for none). A read of V is linearizable when write V began
    before the read ended and no later value was acknowledged before the
    read began (a write that was not acknowledged may or may not have
    happened, and may be seen from its start on). With LATE_IN_DOUBT a
    write that was not acknowledged may also take effect after later
    writes (a timed-out write still in a Raft log that a new leader
    commits later): a read of such a value is only checked against its
    start."""
    by_value = {v: (t0, t1, ok) for v, t0, t1, ok in writes}
    bad = []
    for v, r0, r1 in reads:
        if v != 0 and (v not in by_value or by_value[v][0] > r1):
            bad.append(('read %d before it was written' % v, r0, r1))
            continue
        if late_in_doubt and v != 0 and not by_value[v][2]:
            continue
        newer = [w for w, (t0, t1, ok) in by_value.items()
                 if w > v and ok and t1 < r0]
        if newer:
            bad.append(('read %d, but %d was acknowledged before' %
                        (v, max(newer)), r0, r1))
    return bad
