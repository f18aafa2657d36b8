"""Shared harness for the interop and hostile-input tests.

Each test module starts one `icroot dev --nodes 1` in a fresh temporary
directory on a random free base port (setUpModule), drives it with
slixmpp (Debian's python3-slixmpp, run with /usr/bin/python3) or with the
minimal raw client below, and stops it with SIGINT (tearDownModule),
checking that `icroot dev` exits 0 and that the node process is gone.

The icroot binary is the first command-line argument (CMake passes
$<TARGET_FILE:icroot>), else $ICROOT, else <source>/build/icroot.

Environment:
  IC_LOG_LEVEL=debug     node log with stanza traces (passed through)
  IC_INTEROP_KEEP=1      keep the temporary directory (also kept, and the
                         tail of the node log printed, when a test fails)
  IC_INTEROP_DEBUG=1     slixmpp debug logging on stderr

Every network wait is bounded.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))

NS_STREAM = 'http://etherx.jabber.org/streams'
NS_CLIENT = 'jabber:client'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_STREAM_ERR = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZA_ERR = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_ROSTER = 'jabber:iq:roster'
NS_PING = 'urn:xmpp:ping'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_CMD = 'http://jabber.org/protocol/commands'
NS_IODATA = 'urn:xmpp:tmp:io-data'
NS_RES = 'http://www.csp/resOntology'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'

# The seed paper's request (section 6), byte for byte, trailing blanks and
# the odd line breaks inside start tags included. SEED_IODATA is its
# <iodata>...</iodata>; SEED_IQ the whole <iq> (its to= is the paper's
# service.intercloudexchg.com and is replaced by the cluster's service JID
# before sending; its from='user@cloud1.org' is left for the server to
# overwrite).
SEED_IODATA = (
    "<iodata xmlns= \n      'urn:xmpp:tmp:io-data' type='input'> \n"
    "      <in> \n"
    "      <constraints xmlns='http://www.csp/resOntology'> \n"
    "         \n"
    "        <constraint> \n"
    "         <attribute>availabilityQuanity </attribute> \n"
    "\n"
    "         <value>99.999</value> \n"
    "        </constraint> \n"
    " \n"
    "        <constraint> \n"
    "         <attribute>replicationFactor</attribute> \n"
    "         <value>5</value> \n"
    "        </constraint> \n"
    " \n"
    "        <constraint> \n"
    "         <attribute>tierCountries</attribute> \n"
    "         <value>JAPAN</value> \n"
    "        </constraint> \n"
    " \n"
    "        <constraint> \n"
    "         <attribute>StorageReplicationMethod \n"
    "         </attribute> \n"
    "         <value>AMQP</value> \n"
    "        </constraint> \n"
    " \n"
    "        <constraint> \n"
    "         <attribute>InterCloudStorageAccess \n"
    "         </attribute> \n"
    "         <value>NFS</value> \n"
    "        </constraint> \n"
    " \n"
    "      </constraints> \n"
    "      </in> \n"
    "    </iodata>")

SEED_IQ = (
    "<iq type='set' \n"
    "    from='user@cloud1.org' \n"
    "    to='service.intercloudexchg.com' \n"
    "    id='cloud1_id1'> \n"
    "    <command xmlns= \n"
    "      'http://jabber.org/protocol/commands' \n"
    "      node='constraint_catalog_resources' \n"
    "      action='execute'> \n"
    "      " + SEED_IODATA + " \n"
    "  </command> \n"
    "</iq>")

# The commands every user sees on the catalog service, and the admin-only
# ones (docs/protocol.md).
USER_COMMANDS = {'constraint_catalog_resources', 'publish_resources',
                 'withdraw_resources', 'describe_cloud', 'change_password'}
ADMIN_COMMANDS = {'add_account', 'delete_account', 'load_catalog', 'dump_catalog',
                  'add_node', 'remove_node', 'transfer_leadership',
                  'list_accounts', 'node_status', 'add_delegation',
                  'remove_delegation', 'list_delegations'}


# ---------------------------------------------------------------------------
# The cluster under test

def icroot_path():
    if len(sys.argv) > 1 and not sys.argv[1].startswith('-'):
        return os.path.abspath(sys.argv[1])
    if os.environ.get('ICROOT'):
        return os.environ['ICROOT']
    return os.path.join(SOURCE_DIR, 'build', 'icroot')


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_base_port(span=10):
    """A base port P with P..P+span-1 all free on 127.0.0.1."""
    rnd = random.SystemRandom()
    for _ in range(200):
        # below the ephemeral range (32768-60999): client sockets of
        # parallel tests take ports there
        p = rnd.randrange(20000, 32000 - span)
        if all(_port_free(p + i) for i in range(span)):
            return p
    raise RuntimeError('no free port range found')


def _pid_gone(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        return state in ('Z', 'X')  # exited, not yet reaped by init
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies
    (killed by a CTest timeout, say), so that icroot dev stops its node
    rather than leaking it."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):  # PR_SET_PDEATHSIG is Linux-only
        pass


class Cluster:
    """One `icroot dev --nodes N` (default 1) in a temporary directory."""

    all_dirs = []

    def __init__(self, icroot=None, nodes=1, args=(), base_port=None):
        self.nodes = nodes
        self.args = list(args)  # more `icroot dev` arguments
        self.fixed_port = base_port
        self.icroot = icroot or icroot_path()
        self.proc = None
        self.info = None
        self.dir = None

    def start(self, timeout=30.0):
        if not os.access(self.icroot, os.X_OK):
            raise RuntimeError('icroot binary not found: %s' % self.icroot)
        last = None
        for _attempt in range(3):
            self.dir = tempfile.mkdtemp(prefix='icroot-interop-')
            Cluster.all_dirs.append(self.dir)
            self.base_port = self.fixed_port or pick_base_port(10 * self.nodes)
            self.out = open(os.path.join(self.dir, 'icroot-dev.out'), 'wb')
            self.proc = subprocess.Popen(
                [self.icroot, 'dev', '--nodes', str(self.nodes), '--dir',
                 self.dir,
                 '--base-port', str(self.base_port)] + self.args,
                stdout=self.out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            path = os.path.join(self.dir, 'cluster.json')
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with open(path) as f:
                        self.info = json.load(f)
                    return self
                except (FileNotFoundError, json.JSONDecodeError):
                    time.sleep(0.1)
            last = 'icroot dev exited with %s' % self.proc.poll()
            if self.proc.poll() is None:
                last = 'no cluster.json after %.0f s' % timeout
                self.proc.kill()
                self.proc.wait(10)
            self.out.close()
        raise RuntimeError('%s; see %s' % (last, self.dir))

    def stop(self, timeout=20.0):
        """SIGINT; returns (exit status, whether the node pid is gone)."""
        if self.proc is None:
            return None, True
        pid = self.node['pid'] if self.info else None
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
            rc = 'timeout (killed, %s)' % rc
        gone = True
        if pid is not None:
            deadline = time.monotonic() + 5
            while not _pid_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            gone = _pid_gone(pid)
            if not gone:
                os.kill(pid, signal.SIGKILL)
        self.proc = None
        self.out.close()
        return rc, gone

    # accessors
    @property
    def node(self):
        return self.info['nodes'][0]

    @property
    def domain(self):
        return self.info['domain']

    @property
    def service_jid(self):
        return self.info['service_jid']

    @property
    def ca_cert(self):
        return self.info['ca_cert']

    @property
    def host(self):
        return self.node['host']

    @property
    def s2s_port(self):
        return self.node['s2s_port']

    @property
    def c2s_port(self):
        return self.node['c2s_port']

    @property
    def tls_port(self):
        return self.node['c2s_tls_port']

    def jid(self, user):
        return '%s@%s' % (user, self.domain)

    def password(self, user):
        for a in self.info['accounts']:
            if a['jid'] == self.jid(user):
                return a['password']
        raise KeyError(user)

    def node_alive(self):
        return not _pid_gone(self.node['pid'])

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, 'node1.log'),
                      errors='replace') as f:
                return ''.join(deque(f, n))
        except OSError as e:
            return str(e)


CLUSTER = None


def start_cluster(nodes=1):
    global CLUSTER
    CLUSTER = Cluster(nodes=nodes).start()
    return CLUSTER


def stop_cluster():
    """For tearDownModule: stops the module's cluster and checks the exit."""
    global CLUSTER
    c, CLUSTER = CLUSTER, None
    close_all_clients()
    if c is None:
        return
    rc, gone = c.stop()
    if rc != 0 or not gone:
        raise AssertionError(
            'icroot dev stop: exit status %r (want 0), node pid %s gone: %s'
            % (rc, c.node['pid'], gone))


def main():
    """unittest.main() without our argv[1]; keeps the data on failure."""
    argv = [sys.argv[0]] + [a for a in sys.argv[2:]] \
        if len(sys.argv) > 1 and not sys.argv[1].startswith('-') \
        else list(sys.argv)
    import importlib.util
    if importlib.util.find_spec('slixmpp') is None:
        print('skipped: python3-slixmpp is not installed for %s'
              % sys.executable, file=sys.stderr)
        sys.exit(77)  # CTest SKIP_RETURN_CODE
    if os.environ.get('IC_INTEROP_DEBUG'):
        logging.basicConfig(level=logging.DEBUG)
    else:
        logging.basicConfig(level=logging.CRITICAL)
    t0 = time.monotonic()
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    ok = prog.result.wasSuccessful()
    for d in Cluster.all_dirs:
        if ok and not os.environ.get('IC_INTEROP_KEEP'):
            shutil.rmtree(d, ignore_errors=True)
        else:
            log = os.path.join(d, 'node1.log')
            print('\n--- kept %s' % d, file=sys.stderr)
            if not ok and os.path.exists(log):
                with open(log, errors='replace') as f:
                    print(''.join(deque(f, 30)), file=sys.stderr)
    print('%s: %.1f s' % (os.path.basename(sys.argv[0]),
                          time.monotonic() - t0), file=sys.stderr)
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------------------
# Raw client: socket + ssl + an incremental XML parser, for what slixmpp
# cannot do (byte-exact input, hostile input, SCRAM -PLUS).

class StreamClosed(Exception):
    pass


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def xml_escape(s):
    return (s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def stream_error_of(el):
    """(condition, text) of a <stream:error/>."""
    cond, text = None, None
    for ch in el:
        if ch.tag == q(NS_STREAM_ERR, 'text'):
            text = ch.text or ''
        elif ch.tag.startswith('{%s}' % NS_STREAM_ERR):
            cond = ch.tag.split('}', 1)[1]
    return cond, text


def stanza_error_of(el):
    """(type, condition, text) of a stanza's <error/>, or None."""
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        err = el.find('error')
    if err is None:
        return None
    cond, text = None, None
    for ch in err:
        if ch.tag == q(NS_STANZA_ERR, 'text'):
            text = ch.text or ''
        elif ch.tag.startswith('{%s}' % NS_STANZA_ERR):
            cond = ch.tag.split('}', 1)[1]
    return err.get('type'), cond, text


class RawClient:
    def __init__(self, cluster, port=None, direct_tls=False, alpn=None,
                 cafile=None, timeout=10.0):
        self.cluster = cluster
        self.domain = cluster.domain
        self.cafile = cafile or cluster.ca_cert
        self.timeout = timeout
        self.sock = socket.create_connection(
            (cluster.host, port or
             (cluster.tls_port if direct_tls else cluster.c2s_port)),
            timeout=timeout)
        self.tls = False
        self.jid = None
        self.stanzas = deque()  # stanzas read while waiting for another
        self.reset_parser()
        if direct_tls:
            self.wrap_tls(alpn)

    # -- transport
    def tls_context(self, alpn=None):
        ctx = ssl.create_default_context(cafile=self.cafile)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def wrap_tls(self, alpn=None, ctx=None):
        ctx = ctx or self.tls_context(alpn)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True
        self.reset_parser()

    def reset_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.root = None
        self.header = None
        self.pending = deque()
        self.stream_ended = False  # </stream:stream> seen
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_until_answered(self, chunks):
        """Sends CHUNKS (an iterable of bytes) one by one, stopping as
        soon as the server has sent something or the connection fails;
        returns the number of bytes sent. For oversized input that the
        server must refuse without reading it all."""
        import select
        sent = 0
        for chunk in chunks:
            if self.pending or (self.tls and self.sock.pending()) or \
                    select.select([self.sock], [], [], 0)[0]:
                break
            try:
                self.sock.sendall(chunk)
            except (OSError, ssl.SSLError):
                break
            sent += len(chunk)
        return sent

    def _feed(self, data):
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == 'start':
                self.depth += 1
                if self.depth == 1:
                    self.root = self.header = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)
                    self.root.remove(el)
                elif self.depth == 0:
                    self.stream_ended = True

    def recv_some(self, timeout):
        """Reads once; b'' at EOF, None on timeout."""
        if self.eof:
            return b''
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
            return None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
            data = b''
        except ssl.SSLError as e:
            if 'EOF' in str(e) or 'shutdown' in str(e).lower():
                data = b''
            else:
                raise
        if not data:
            self.eof = True
            return b''
        self._feed(data)
        return data

    def next(self, timeout=None):
        """The next top-level element; StreamClosed at the stream's end."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.pending:
            if self.stream_ended or self.eof:
                raise StreamClosed('stream closed')
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no element in time')
            self.recv_some(left)
        return self.pending.popleft()

    def expect(self, tag, timeout=None):
        el = self.next(timeout)
        if el.tag != tag:
            raise AssertionError('expected %s, got %s' %
                                 (tag, ET.tostring(el)[:500]))
        return el

    def wait_closed(self, timeout=10.0):
        """Reads to EOF; True when the peer closed in time."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.recv_some(left)
        return True

    def expect_stream_error(self, timeout=10.0):
        """Skips stanzas up to a <stream:error/>; returns (cond, text)."""
        deadline = time.monotonic() + timeout
        while True:
            el = self.next(max(deadline - time.monotonic(), 0.01))
            if el.tag == q(NS_STREAM, 'error'):
                return stream_error_of(el)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- stream set-up
    def header_xml(self, to=None, ns=NS_CLIENT, stream_ns=NS_STREAM,
                   version='1.0'):
        return ("<?xml version='1.0'?><stream:stream xmlns='%s' "
                "xmlns:stream='%s' to='%s' version='%s'>" %
                (ns, stream_ns, to or self.domain, version))

    def open_stream(self, **kw):
        """Sends a header; returns the server's <stream:features/>."""
        self.reset_parser()
        self.send(self.header_xml(**kw))
        return self.expect(q(NS_STREAM, 'features'))

    def starttls(self, alpn=None, ctx=None):
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.expect(q(NS_TLS, 'proceed'))
        self.wrap_tls(alpn, ctx)

    def secure(self):
        """Header, STARTTLS (unless on direct TLS), header: the features
        offering SASL."""
        feats = self.open_stream()
        if not self.tls:
            if feats.find(q(NS_TLS, 'starttls')) is None:
                raise AssertionError('no STARTTLS offered')
            self.starttls()
            feats = self.open_stream()
        return feats

    @staticmethod
    def mechanisms(feats):
        m = feats.find(q(NS_SASL, 'mechanisms'))
        return [x.text for x in m] if m is not None else []

    # -- SASL
    def sasl_result(self):
        el = self.next()
        if el.tag == q(NS_SASL, 'failure'):
            conds = [c.tag.split('}', 1)[1] for c in el
                     if c.tag != q(NS_SASL, 'text')]
            return 'failure', conds[0] if conds else None, el
        return el.tag.split('}', 1)[1], None, el

    def auth_plain(self, user, password):
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" %
                  (NS_SASL, b64('\0%s\0%s' % (user, password))))
        kind, cond, _el = self.sasl_result()
        return 'success' if kind == 'success' else cond

    def auth_scram(self, user, password, hash_name='sha256', cb_type=None,
                   cb_data=None, flag='n', cb_override=None):
        """SCRAM-SHA-1/256[-PLUS] (RFC 5802, 7677). Returns 'success' or
        the failure condition; raises on a bad server signature.
        cb_type: a channel-binding type for -PLUS with cb_data its data;
        cb_override replaces the c= value sent (for tampering)."""
        mech = 'SCRAM-SHA-1' if hash_name == 'sha1' else 'SCRAM-SHA-256'
        if cb_type:
            mech += '-PLUS'
            gs2 = 'p=%s,,' % cb_type
        else:
            gs2 = '%s,,' % flag
        cnonce = b64(os.urandom(18))
        first_bare = 'n=%s,r=%s' % (user, cnonce)
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" %
                  (NS_SASL, mech, b64(gs2 + first_bare)))
        kind, cond, el = self.sasl_result()
        if kind != 'challenge':
            return cond if kind == 'failure' else 'unexpected ' + kind
        server_first = base64.b64decode(el.text or '').decode()
        attrs = dict(a.split('=', 1) for a in server_first.split(','))
        if not attrs['r'].startswith(cnonce):
            raise AssertionError('server nonce does not extend ours')
        salt = base64.b64decode(attrs['s'])
        iters = int(attrs['i'])
        cbind = cb_override if cb_override is not None else \
            b64(gs2.encode() + (cb_data or b''))
        final_wo_proof = 'c=%s,r=%s' % (cbind, attrs['r'])
        salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt,
                                     iters)

        def H(d):
            return hashlib.new(hash_name, d).digest()

        def HM(k, d):
            return hmac.new(k, d, hash_name).digest()

        client_key = HM(salted, b'Client Key')
        auth_msg = ('%s,%s,%s' % (first_bare, server_first,
                                  final_wo_proof)).encode()
        sig = HM(H(client_key), auth_msg)
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send("<response xmlns='%s'>%s</response>" %
                  (NS_SASL, b64('%s,p=%s' % (final_wo_proof, b64(proof)))))
        kind, cond, el = self.sasl_result()
        if kind != 'success':
            return cond if kind == 'failure' else 'unexpected ' + kind
        server_sig = HM(HM(salted, b'Server Key'), auth_msg)
        got = base64.b64decode(el.text or '').decode()
        if got != 'v=' + b64(server_sig):
            raise AssertionError('bad server signature: %r' % got)
        return 'success'

    def server_end_point(self):
        """tls-server-end-point (RFC 5929) for a SHA-256-signed cert."""
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).digest()

    def bind(self, resource=None):
        feats = self.open_stream()
        if feats.find(q(NS_BIND, 'bind')) is None:
            raise AssertionError('no bind feature: %r' % ET.tostring(feats))
        res = '<resource>%s</resource>' % xml_escape(resource) \
            if resource else ''
        self.send("<iq type='set' id='bind1'><bind xmlns='%s'>%s</bind></iq>"
                  % (NS_BIND, res))
        el = self.wait_iq('bind1')
        if el.get('type') != 'result':
            raise AssertionError('bind failed: %r' % ET.tostring(el))
        self.jid = el.find(q(NS_BIND, 'bind')).find(q(NS_BIND, 'jid')).text
        return self.jid

    def login(self, user, password=None, resource=None, mech='SCRAM-SHA-256'):
        """TLS, SASL and binding; returns the full JID."""
        password = password or self.cluster.password(user)
        self.secure()
        if mech == 'PLAIN':
            r = self.auth_plain(user, password)
        else:
            r = self.auth_scram(user, password,
                                'sha1' if mech == 'SCRAM-SHA-1' else 'sha256')
        if r != 'success':
            raise AssertionError('login %s: %s' % (user, r))
        self.reset_parser()
        return self.bind(resource)

    # -- stanzas
    def wait_iq(self, iq_id, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            el = self.next(max(deadline - time.monotonic(), 0.01))
            if el.tag == q(NS_CLIENT, 'iq') and el.get('id') == iq_id:
                return el
            self.stanzas.append(el)

    def iq(self, xml, iq_id, timeout=None):
        self.send(xml)
        return self.wait_iq(iq_id, timeout)

    def ping(self, to=None, iq_id=None, timeout=None):
        iq_id = iq_id or 'ping%d' % random.randrange(1 << 30)
        return self.iq("<iq type='get' to='%s' id='%s'><ping xmlns='%s'/></iq>"
                       % (to or self.domain, iq_id, NS_PING), iq_id, timeout)


def make_other_ca(directory):
    """A throwaway CA (PEM path) that signed nothing of the cluster's."""
    key = os.path.join(directory, 'other-ca.key')
    pem = os.path.join(directory, 'other-ca.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                    '-nodes', '-keyout', key, '-out', pem, '-days', '2',
                    '-subj', '/O=Someone Else/CN=other test CA',
                    '-addext', 'basicConstraints=critical,CA:TRUE',
                    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return pem


# ---------------------------------------------------------------------------
# slixmpp clients on one event loop per module

_LOOP = None
_CLIENTS = []


def loop():
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def run(coro, timeout=30.0):
    """Runs a coroutine on the module's loop, bounded."""
    return loop().run_until_complete(asyncio.wait_for(coro, timeout))


def _slixmpp():
    import slixmpp  # noqa: late import: raw-only modules do not need it
    return slixmpp


class LoginFailed(Exception):
    def __init__(self, reason, condition=None):
        super().__init__(reason)
        self.condition = condition


def make_client_class():
    slixmpp = _slixmpp()

    class Client(slixmpp.ClientXMPP):
        """A slixmpp client that records every element it receives
        (self.inbox) and auto-answers no subscription request."""

        def __init__(self, cluster, user, password=None, resource=None,
                     mech='SCRAM-SHA-256', cafile=None, alpn=None,
                     channel_binding=False):
            jid = cluster.jid(user) + ('/' + resource if resource else '')
            cfg = {'feature_mechanisms': {'use_mech': mech}} if mech else {}
            super().__init__(jid, password if password is not None
                             else cluster.password(user), plugin_config=cfg)
            self.cluster = cluster
            self.ssl_context = ssl.create_default_context(
                cafile=cafile or cluster.ca_cert)
            if alpn:
                self.ssl_context.set_alpn_protocols(alpn)
            self.register_plugin('xep_0030')
            self.register_plugin('xep_0199')
            self.auto_authorize = None
            self.auto_subscribe = False
            self.whitespace_keepalive = False
            if not channel_binding:
                # slixmpp 1.8.3 binds only with tls-unique, which TLS 1.3
                # lacks, and then sends the gs2 flag 'y' ("I could bind,
                # you cannot") to a server that offered -PLUS: RFC 5802
                # makes the server refuse that (a downgrade). Tell it it
                # has no binding, so it sends 'n'.
                fm = self['feature_mechanisms']
                orig = fm.sasl_callback

                def creds(required, optional, orig=orig):
                    r = orig(required, optional)
                    if 'channel_binding' in r:
                        r['channel_binding'] = None
                    return r
                fm.sasl_callback = creds
            self.inbox = []
            self.changed = asyncio.Event()
            self.session = asyncio.get_event_loop().create_future()
            self.auth_failure = None
            self.add_filter('in', self._record)
            self.add_event_handler('session_start', self._on_session)
            self.add_event_handler('failed_auth', self._on_failed_auth)
            self.add_event_handler('failed_all_auth', self._on_fail_all)
            self.add_event_handler('disconnected', self._on_disconnected)
            self.add_event_handler('connection_failed', self._on_conn_failed)

        # -- recording
        def _record(self, stanza):
            self.inbox.append(stanza.xml)
            self.changed.set()
            return stanza

        async def expect(self, pred, timeout=5.0, start=0, what='stanza'):
            """The first received element from index START on for which
            PRED(el) holds; waits up to TIMEOUT."""
            deadline = loop().time() + timeout
            i = start
            while True:
                while i < len(self.inbox):
                    if pred(self.inbox[i]):
                        return self.inbox[i]
                    i += 1
                left = deadline - loop().time()
                if left <= 0:
                    raise AssertionError(
                        '%s: no %s within %.1f s; got: %s' %
                        (self.boundjid, what, timeout,
                         [ET.tostring(x)[:300] for x in self.inbox[start:]]))
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

        async def expect_none(self, pred, wait=0.5, start=0, what='stanza'):
            """Asserts that nothing matching PRED arrives within WAIT."""
            await asyncio.sleep(wait)
            for x in self.inbox[start:]:
                if pred(x):
                    raise AssertionError('%s: unexpected %s: %s' % (
                        self.boundjid, what, ET.tostring(x)[:500]))

        def mark(self):
            return len(self.inbox)

        # -- life cycle
        def _on_session(self, _ev):
            if not self.session.done():
                self.session.set_result(True)

        def _on_failed_auth(self, stanza):
            self.auth_failure = stanza['condition']

        def _on_fail_all(self, _ev):
            if not self.session.done():
                self.session.set_exception(
                    LoginFailed('authentication failed', self.auth_failure))

        def _on_disconnected(self, reason):
            if not self.session.done():
                self.session.set_exception(
                    LoginFailed('disconnected: %s' % (reason,),
                                self.auth_failure))

        def _on_conn_failed(self, reason):
            if not self.session.done():
                self.session.set_exception(
                    LoginFailed('connection failed: %s' % (reason,)))
            self.cancel_connection_attempt()

        async def iq(self, xml, timeout=5.0):
            """Sends an <iq/> given as XML text (to, type, payload; the id
            is ours) and returns the answer element, result or error."""
            el = ET.fromstring(xml)
            if el.tag != q(NS_CLIENT, 'iq'):
                raise ValueError('give the iq with xmlns=jabber:client')
            iq = self.Iq(xml=el)
            iq['id'] = self.new_id()
            start = self.mark()
            iq_id = iq['id']
            fut = iq.send(timeout=timeout + 5)
            # we read the answer from the inbox: mark slixmpp's own
            # future's outcome as retrieved
            fut.add_done_callback(
                lambda f: f.cancelled() or f.exception())
            return await self.expect(
                lambda x: x.tag == q(NS_CLIENT, 'iq') and
                x.get('id') == iq_id and x.get('type') in ('result', 'error'),
                timeout, start, 'iq answer %s' % iq_id)

    return Client


_CLIENT_CLASS = None


def client(cluster, user, **kw):
    """A Client (not connected)."""
    global _CLIENT_CLASS
    loop()
    if _CLIENT_CLASS is None:
        _CLIENT_CLASS = make_client_class()
    return _CLIENT_CLASS(cluster, user, **kw)


async def connect(cluster, user, presence=True, priority=None, status=None,
                  direct_tls=False, timeout=15.0, node=0, **kw):
    """A logged-in slixmpp client (session started, initial presence sent
    unless presence=False) on node index NODE. Raises LoginFailed."""
    c = client(cluster, user, **kw)
    _CLIENTS.append(c)
    n = cluster.info['nodes'][node]
    c.connect((n['host'], n['c2s_tls_port'] if direct_tls
               else n['c2s_port']), use_ssl=direct_tls)
    try:
        await asyncio.wait_for(asyncio.shield(c.session), timeout)
    except asyncio.TimeoutError:
        c.abort()
        raise LoginFailed('no session within %.0f s' % timeout)
    except LoginFailed:
        await disconnect(c)
        raise
    if presence:
        kw = {}
        if priority is not None:
            kw['ppriority'] = priority
        if status is not None:
            kw['pstatus'] = status
        c.send_presence(**kw)
    return c


async def disconnect(c, wait=3.0):
    """Closes the stream and waits (bounded) until the TCP connection is
    gone."""
    if c.transport is not None:
        fut = c.disconnected
        c.disconnect(wait=wait)
        try:
            await asyncio.wait_for(asyncio.shield(fut), wait + 2)
        except asyncio.TimeoutError:
            c.abort()
    c.cancel_connection_attempt()
    task = getattr(c, '_run_out_filters', None)
    if task is not None and not task.done():
        task.cancel()  # slixmpp leaves its sender task pending
        await asyncio.sleep(0)
    if c in _CLIENTS:
        _CLIENTS.remove(c)


def close_all_clients():
    if _LOOP is None:
        return
    for c in list(_CLIENTS):
        try:
            run(disconnect(c), 10)
        except Exception:  # noqa: best effort at the end
            c.abort()
    _CLIENTS.clear()


# ---------------------------------------------------------------------------
# Helpers on stanzas (ElementTree elements as slixmpp received them)

def is_iq(x, type_=None):
    return x.tag == q(NS_CLIENT, 'iq') and (type_ is None or
                                            x.get('type') == type_)


def is_presence(x, type_=None, frm=None):
    if x.tag != q(NS_CLIENT, 'presence'):
        return False
    if type_ is not None and (x.get('type') or '') != type_:
        return False
    return frm is None or x.get('from') == frm


def is_message(x, frm=None, body=None):
    if x.tag != q(NS_CLIENT, 'message'):
        return False
    if frm is not None and x.get('from') != frm:
        return False
    if body is not None:
        b = x.find(q(NS_CLIENT, 'body'))
        if b is None or b.text != body:
            return False
    return True


def roster_push_item(x, jid=None):
    """The <item/> of a roster push (iq set with jabber:iq:roster), or
    None."""
    if not is_iq(x, 'set'):
        return None
    query = x.find(q(NS_ROSTER, 'query'))
    if query is None:
        return None
    item = query.find(q(NS_ROSTER, 'item'))
    if item is None or (jid is not None and item.get('jid') != jid):
        return None
    return item


def roster_items(iq):
    query = iq.find(q(NS_ROSTER, 'query'))
    if query is None:
        raise AssertionError('no roster query in %r' % ET.tostring(iq))
    out = {}
    for it in query.findall(q(NS_ROSTER, 'item')):
        out[it.get('jid')] = {
            'subscription': it.get('subscription'),
            'ask': it.get('ask'),
            'name': it.get('name'),
            'groups': sorted(g.text or '' for g in
                             it.findall(q(NS_ROSTER, 'group')))}
    return out


def command_xml(service_jid, node, payload='', action='execute',
                sessionid=None):
    attrs = " action='%s'" % action if action else ''
    if sessionid:
        attrs += " sessionid='%s'" % sessionid
    return ("<iq xmlns='jabber:client' type='set' to='%s'><command xmlns='%s'"
            " node='%s'%s>%s</command></iq>" %
            (service_jid, NS_CMD, node, attrs, payload))


def iodata_in(inner):
    return ("<iodata xmlns='%s' type='input'><in>%s</in></iodata>" %
            (NS_IODATA, inner))


def constraints_xml(pairs):
    return iodata_in(
        "<constraints xmlns='%s'>%s</constraints>" % (NS_RES, ''.join(
            '<constraint><attribute>%s</attribute><value>%s</value>'
            '</constraint>' % (xml_escape(a), xml_escape(v))
            for a, v in pairs)))


def resources_xml(pairs, cloud=None):
    attr = " cloud='%s'" % cloud if cloud else ''
    return iodata_in(
        "<resources xmlns='%s'%s>%s</resources>" % (NS_RES, attr, ''.join(
            '<resource><attribute>%s</attribute><value>%s</value>'
            '</resource>' % (xml_escape(a), xml_escape(v))
            for a, v in pairs)))


def turtle_xml(text, cloud=None):
    attr = " cloud='%s'" % cloud if cloud else ''
    return iodata_in("<turtle xmlns='%s'%s>%s</turtle>" %
                     (NS_RES, attr, xml_escape(text)))


def command_of(iq):
    return iq.find(q(NS_CMD, 'command'))


def matching_clouds(iq):
    """The <cloudName/> texts of a query result, in order; asserts the
    result's shape (status completed, iodata output, matchingClouds)."""
    if iq.get('type') != 'result':
        raise AssertionError('not a result: %r' % ET.tostring(iq))
    cmd = command_of(iq)
    if cmd is None or cmd.get('status') != 'completed':
        raise AssertionError('command not completed: %r' % ET.tostring(iq))
    io = cmd.find(q(NS_IODATA, 'iodata'))
    if io is None or io.get('type') != 'output':
        raise AssertionError('no iodata output: %r' % ET.tostring(iq))
    out = io.find(q(NS_IODATA, 'out'))
    mc = out.find(q(NS_RES, 'matchingClouds')) if out is not None else None
    if mc is None:
        raise AssertionError('no matchingClouds: %r' % ET.tostring(iq))
    names = []
    for ch in mc:
        if ch.tag != q(NS_RES, 'cloudName'):
            raise AssertionError('unexpected %s in matchingClouds' % ch.tag)
        names.append(ch.text)
    return names


def note_of(iq):
    cmd = command_of(iq)
    n = cmd.find(q(NS_CMD, 'note')) if cmd is not None else None
    return (n.get('type'), n.text) if n is not None else None


SEED_PAIRS = [('availabilityQuanity ', '99.999'), ('replicationFactor', '5'),
              ('tierCountries', 'JAPAN'), ('StorageReplicationMethod', 'AMQP'),
              ('InterCloudStorageAccess', 'NFS')]


def seed_query(cluster):
    return command_xml(cluster.service_jid, 'constraint_catalog_resources',
                       SEED_IODATA)


# ---------------------------------------------------------------------------
# S2S helpers (tests/interop/test_s2s_*.py): certificates from a cluster's
# CA and a raw jabber:server stream.

NS_SERVER = 'jabber:server'
NS_DIALBACK = 'jabber:server:dialback'
NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback'


def issue_cert(directory, name, domains, ca_pem=None, ca_key=None,
               xmpp_addrs=True):
    """A certificate (PEM path, key path) for DOMAINS (subjectAltName
    dNSName, and XmppAddr unless xmpp_addrs=False; serverAuth and
    clientAuth) signed by CA_PEM/CA_KEY (a cluster's ca.pem and ca.key),
    or self-signed when ca_pem is None."""
    key = os.path.join(directory, name + '.key')
    pem = os.path.join(directory, name + '.pem')
    ext = os.path.join(directory, name + '.ext')
    san = ','.join(['DNS:%s' % d for d in domains] +
                   (['otherName:1.3.6.1.5.5.7.8.5;UTF8:%s' % d
                     for d in domains] if xmpp_addrs else []))
    with open(ext, 'w') as f:
        f.write('basicConstraints=critical,CA:FALSE\n'
                'keyUsage=critical,digitalSignature,keyEncipherment\n'
                'extendedKeyUsage=serverAuth,clientAuth\n'
                'subjectAltName=%s\n' % san)
    run_ = dict(check=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=60)
    if ca_pem is None:
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                        '-nodes', '-keyout', key, '-out', pem, '-days', '2',
                        '-subj', '/CN=%s' % domains[0], '-extensions', 'v3',
                        '-config', _openssl_cnf(directory, name, ext)],
                       **run_)
        return pem, key
    csr = os.path.join(directory, name + '.csr')
    subprocess.run(['openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                    '-keyout', key, '-out', csr, '-subj',
                    '/CN=%s' % domains[0]], **run_)
    subprocess.run(['openssl', 'x509', '-req', '-in', csr, '-CA', ca_pem,
                    '-CAkey', ca_key, '-set_serial',
                    str(random.randrange(1, 1 << 62)), '-out', pem,
                    '-days', '2', '-sha256', '-extfile', ext], **run_)
    return pem, key


def _openssl_cnf(directory, name, ext):
    """A minimal openssl config whose [v3] section is EXT's lines (for
    `req -x509`)."""
    cnf = os.path.join(directory, name + '.cnf')
    with open(ext) as f:
        lines = f.read()
    with open(cnf, 'w') as f:
        f.write('[req]\ndistinguished_name=dn\n[dn]\n[v3]\n' + lines)
    return cnf


class RawS2S(RawClient):
    """A raw jabber:server stream to a node's S2S port: header (with
    from= and the dialback namespace), STARTTLS with an optional client
    certificate, SASL EXTERNAL, dialback elements by hand.

        s = RawS2S(cluster, 'evil.example', cert=(pem, key))
        s.authenticate_external()   # TLS, EXTERNAL, restarted stream
        s.send("<message from='x@evil.example' to='...'>...</message>")
    """

    def __init__(self, cluster, from_domain, to_domain=None, cert=None,
                 port=None, timeout=10.0):
        super().__init__(cluster, port=port or cluster.s2s_port,
                         timeout=timeout)
        self.from_domain = from_domain
        self.to_domain = to_domain or cluster.domain
        self.cert = cert

    def tls_context(self, alpn=None):
        ctx = ssl.create_default_context(cafile=self.cafile)
        if self.cert:
            ctx.load_cert_chain(self.cert[0], self.cert[1])
        return ctx

    def wrap_tls(self, alpn=None, ctx=None):
        ctx = ctx or self.tls_context(alpn)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.to_domain)
        self.tls = True
        self.reset_parser()

    def header_xml(self, to=None, ns=NS_SERVER, stream_ns=NS_STREAM,
                   version='1.0', frm=None):
        frm = self.from_domain if frm is None else frm
        return ("<?xml version='1.0'?><stream:stream xmlns='%s' "
                "xmlns:stream='%s' xmlns:db='%s'%s to='%s' version='%s'>" %
                (ns, stream_ns, NS_DIALBACK,
                 " from='%s'" % frm if frm else '', to or self.to_domain,
                 version))

    def secure(self, **kw):
        """Header, STARTTLS, header: the features after TLS."""
        feats = self.open_stream(**kw)
        if feats.find(q(NS_TLS, 'starttls')) is None:
            raise AssertionError('no STARTTLS offered: %r' %
                                 ET.tostring(feats))
        self.starttls()
        return self.open_stream(**kw)

    def auth_external(self, authzid=None):
        """<auth mechanism='EXTERNAL'/>; 'success' or the failure
        condition."""
        text = '=' if authzid is None else b64(authzid)
        self.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" %
                  (NS_SASL, text))
        kind, cond, _el = self.sasl_result()
        return 'success' if kind == 'success' else cond

    def authenticate_external(self):
        """TLS, EXTERNAL (asserts success), the restarted stream's
        features."""
        feats = self.secure()
        if 'EXTERNAL' not in self.mechanisms(feats):
            raise AssertionError('EXTERNAL not offered to %s: %r' %
                                 (self.from_domain, ET.tostring(feats)))
        r = self.auth_external(self.from_domain)
        if r != 'success':
            raise AssertionError('EXTERNAL as %s: %s' % (self.from_domain, r))
        return self.open_stream()
