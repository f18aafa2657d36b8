"""Federation with Debian's Prosody (the issue: "Interop with Prosody";
INTERFACE.md "S2S (federation)").

Prosody (0.12) runs on loopback as cloud1.example, with its own config,
data, pid file, log and ports (never the system service), next to an
`icroot dev --nodes 1 --domain <D>` cluster (D under .example: libunbound
refuses names under .test). Both find each other through DNS SRV
`_xmpp-server._tcp.<domain>` answered by a small responder on loopback
(dns_responder.py): Prosody through its `unbound` option (lua-unbound),
the cluster through `--s2s-dns` (c-ares).

Two set-ups, one class each, each with its own cluster and Prosody:

  CertificatePath  Prosody's certificate is signed by the cluster's CA and
                   Prosody trusts that CA with s2s_secure_auth = true:
                   SASL EXTERNAL (XEP-0178) both ways.
  DialbackPath     Prosody's certificate comes from another CA, Prosody
                   trusts only its own, s2s_secure_auth = false: dialback
                   (XEP-0220) both ways.

In each: a slixmpp user on Prosody runs the seed paper's query against
service.<D> and gets exactly cloud2 and cloud5; messages and presence
subscriptions flow both ways; the node's and Prosody's logs show which
authentication was used.

Run: /usr/bin/python3 tests/interop/test_s2s_prosody.py build/icroot
Needs prosody and lua-unbound (scripts/install-deps.sh); exits 77 when
Prosody is not installed.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dns_responder  # noqa: E402
from harness import (q, run, connect, disconnect, is_message,  # noqa: E402
                     is_presence)

PROSODY_DOMAIN = 'cloud1.example'
PROSODY_USERS = {'alice': 'alice-secret-1', 'bob': 'bob-secret-2'}
IQ_TIMEOUT = 20.0  # an iq that opens S2S streams on its way


def _prosody_missing():
    if shutil.which('prosody') is None or shutil.which('prosodyctl') is None:
        return 'prosody is not installed'
    return None


def _lua_unbound_missing():
    """Prosody's `unbound` option needs lua-unbound (Debian: lua-unbound,
    which scripts/install-deps.sh installs)."""
    for lua in ('lua5.4', 'lua'):
        if shutil.which(lua):
            r = subprocess.run([lua, '-e', 'require "lunbound"'],
                               capture_output=True, timeout=30)
            return None if r.returncode == 0 else \
                'lua-unbound is not installed (%s)' % r.stderr.decode()[:200]
    return 'no lua interpreter'


def _free_ports(n):
    base = harness.pick_base_port(n)
    return [base + i for i in range(n)]


def _listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


def _localhost_target():
    """A name for the SRV record of cloud1.example that the node resolves
    with the system resolver (its S2S targets go to getaddrinfo) to
    127.0.0.1, where Prosody listens: 'localhost' when it comes first
    as 127.0.0.1, else the address itself."""
    try:
        ai = socket.getaddrinfo('localhost', 1, socket.AF_UNSPEC,
                                socket.SOCK_STREAM)
        if ai and ai[0][4][0] == '127.0.0.1':
            return 'localhost'
    except OSError:
        pass
    return '127.0.0.1'


class Prosody:
    """One Prosody for cloud1.example in DIR."""

    def __init__(self, directory, cert, key, cafile, secure_auth, dns_port):
        self.dir = directory
        self.c2s_port, self.s2s_port = _free_ports(2)
        self.cert, self.key, self.cafile = cert, key, cafile
        self.cfg = os.path.join(directory, 'prosody.cfg.lua')
        self.log = os.path.join(directory, 'prosody.log')
        self.proc = None
        os.makedirs(os.path.join(directory, 'data'), exist_ok=True)
        cafile_line = 'cafile = "%s";' % cafile if cafile else ''
        with open(self.cfg, 'w') as f:
            f.write('''-- written by tests/interop/test_s2s_prosody.py
%(root)s
pidfile = "%(dir)s/prosody.pid"
data_path = "%(dir)s/data"
log = {
	{ levels = { min = "debug" }, to = "file", filename = "%(log)s" };
}
plugin_paths = { }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { %(c2s)d }
c2s_direct_tls_ports = { }
s2s_ports = { %(s2s)d }
s2s_direct_tls_ports = { }
network_settings = { nagle = false }
-- SRV and A records from the test's responder only
unbound = { resolvconf = false; hoststxt = false;
            forward = "127.0.0.1@%(dns)d" }
modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
	"presence"; "s2s";
}
modules_disabled = { "offline"; }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = %(secure)s
s2s_timeout = 20
authentication = "internal_hashed"
ssl = {
	certificate = "%(cert)s";
	key = "%(key)s";
	%(cafile)s
}

VirtualHost "%(domain)s"
''' % {'root': 'run_as_root = true' if os.getuid() == 0 else '',
       'dir': directory, 'log': self.log, 'c2s': self.c2s_port,
       's2s': self.s2s_port, 'dns': dns_port,
       'secure': 'true' if secure_auth else 'false', 'cert': cert,
       'key': key, 'cafile': cafile_line, 'domain': PROSODY_DOMAIN})

    def register(self, user, password):
        r = subprocess.run(['prosodyctl', '--config', self.cfg, 'register',
                            user, PROSODY_DOMAIN, password],
                           capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError('prosodyctl register %s: %s %s' % (
                user, r.stdout.decode()[-500:], r.stderr.decode()[-500:]))

    def start(self, timeout=30.0):
        self.out = open(os.path.join(self.dir, 'prosody.out'), 'wb')
        self.proc = subprocess.Popen(
            ['prosody', '--config', self.cfg, '-F'], stdout=self.out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=harness._die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _listening(self.c2s_port) and _listening(self.s2s_port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError('prosody did not start; see %s and %s' %
                           (self.log, self.out.name))

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        rc = self.proc.returncode
        self.proc = None
        self.out.close()
        return rc

    def log_text(self):
        try:
            with open(self.log, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    # what harness.connect() needs of a "cluster"
    domain = PROSODY_DOMAIN

    @property
    def ca_cert(self):
        return self.client_cafile

    @property
    def info(self):
        return {'nodes': [{'host': '127.0.0.1', 'c2s_port': self.c2s_port,
                           'c2s_tls_port': self.c2s_port}]}

    def jid(self, user):
        return '%s@%s' % (user, PROSODY_DOMAIN)

    def password(self, user):
        return PROSODY_USERS[user]


def bare(jid):
    return str(jid).split('/', 1)[0]


class Federation:
    """The tests; a subclass sets up the certificates and Prosody's
    policy (set_up_prosody) and the authentication it expects (METHOD)."""

    METHOD = None
    DOMAIN = None
    cluster = prosody = dns = None

    @classmethod
    def setUpClass(cls):
        harness.loop()
        cls.dns = dns_responder.DnsResponder().start()
        try:
            cls.cluster = harness.Cluster(args=[
                '--domain', cls.DOMAIN, '--s2s-dns', cls.dns.address]).start()
            d = cls.cluster.domain
            cls.dns.add_xmpp_server(d, 'xmpp.' + d, cls.cluster.s2s_port)
            cls.dns.add_xmpp_server('service.' + d, 'xmpp.' + d,
                                    cls.cluster.s2s_port)
            pdir = os.path.join(cls.cluster.dir, 'prosody')
            os.makedirs(pdir)
            cls.prosody = cls.set_up_prosody(pdir)
            cls.dns.add_xmpp_server(PROSODY_DOMAIN, _localhost_target(),
                                    cls.prosody.s2s_port)
            for u, p in PROSODY_USERS.items():
                cls.prosody.register(u, p)
            cls.prosody.start()
            cls.node_log_start = cls.node_log_size()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        harness.close_all_clients()
        errors = []
        if cls.prosody is not None:
            cls.prosody.stop()
        if cls.cluster is not None:
            rc, gone = cls.cluster.stop()
            if rc != 0 or not gone:
                errors.append('icroot dev stop: exit %r, node gone: %s' %
                              (rc, gone))
        if cls.dns is not None:
            cls.dns.stop()
        if errors:
            raise AssertionError('; '.join(errors))

    @classmethod
    def node_log_path(cls):
        return os.path.join(cls.cluster.dir, 'node1.log')

    @classmethod
    def node_log_size(cls):
        try:
            return os.path.getsize(cls.node_log_path())
        except OSError:
            return 0

    def node_log(self):
        with open(self.node_log_path(), errors='replace') as f:
            f.seek(self.node_log_start)
            return f.read()

    # -- helpers
    async def on_prosody(self, user, **kw):
        return await connect(self.prosody, user, mech='SCRAM-SHA-1',
                             cafile=self.prosody.client_cafile, **kw)

    async def on_cluster(self, user, **kw):
        return await connect(self.cluster, user, **kw)

    # -- the tests
    def test_seed_query_from_prosody(self):
        """alice@cloud1.example runs the seed paper's query against
        service.<D> over S2S: exactly cloud2 and cloud5."""
        async def go():
            alice = await self.on_prosody('alice')
            try:
                r = await alice.iq(harness.seed_query(self.cluster),
                                   timeout=IQ_TIMEOUT)
                self.assertEqual(r.get('from'), self.cluster.service_jid)
                self.assertEqual(sorted(harness.matching_clouds(r)),
                                 ['cloud2', 'cloud5'])
            finally:
                await disconnect(alice)
        run(go(), 60)

    def test_disco_and_ping_across(self):
        """A ping to the cluster's domain from Prosody's user, and disco
        of the service: the answers come back over S2S."""
        async def go():
            bob = await self.on_prosody('bob')
            try:
                r = await bob.iq(
                    "<iq xmlns='jabber:client' type='get' to='%s'>"
                    "<ping xmlns='urn:xmpp:ping'/></iq>" % self.cluster.domain,
                    timeout=IQ_TIMEOUT)
                self.assertEqual(r.get('type'), 'result')
                r = await bob.iq(
                    "<iq xmlns='jabber:client' type='get' to='%s'>"
                    "<query xmlns='%s' node='%s'/></iq>" % (
                        self.cluster.service_jid, harness.NS_DISCO_ITEMS,
                        harness.NS_CMD),
                    timeout=IQ_TIMEOUT)
                self.assertEqual(r.get('type'), 'result')
                nodes = {i.get('node') for i in
                         r.find(q(harness.NS_DISCO_ITEMS, 'query'))}
                self.assertIn('constraint_catalog_resources', nodes)
            finally:
                await disconnect(bob)
            # and the other way: a user of the cluster pings Prosody
            cloud2 = await self.on_cluster('cloud2')
            try:
                r = await cloud2.iq(
                    "<iq xmlns='jabber:client' type='get' to='%s'>"
                    "<ping xmlns='urn:xmpp:ping'/></iq>" % PROSODY_DOMAIN,
                    timeout=IQ_TIMEOUT)
                self.assertEqual(r.get('type'), 'result')
                self.assertEqual(r.get('from'), PROSODY_DOMAIN)
            finally:
                await disconnect(cloud2)
        run(go(), 90)

    def test_messages_both_ways(self):
        async def go():
            alice = await self.on_prosody('alice', resource='msg')
            cloud1 = await self.on_cluster('cloud1', resource='msg')
            try:
                m1 = cloud1.mark()
                alice.send_message(mto=self.cluster.jid('cloud1'),
                                   mbody='hello from prosody', mtype='chat')
                x = await cloud1.expect(
                    lambda x: is_message(x, body='hello from prosody'),
                    IQ_TIMEOUT, m1, 'message from alice')
                self.assertEqual(x.get('from'), str(alice.boundjid))
                self.assertEqual(bare(x.get('to')), self.cluster.jid('cloud1'))
                m2 = alice.mark()
                cloud1.send_message(mto=self.prosody.jid('alice'),
                                    mbody='hello from icroot', mtype='chat')
                x = await alice.expect(
                    lambda x: is_message(x, body='hello from icroot'),
                    IQ_TIMEOUT, m2, 'message from cloud1')
                self.assertEqual(x.get('from'), str(cloud1.boundjid))
                # to a full JID, and a reply to it
                m1 = cloud1.mark()
                alice.send_message(mto=str(cloud1.boundjid), mbody='full',
                                   mtype='chat')
                x = await cloud1.expect(lambda x: is_message(x, body='full'),
                                        IQ_TIMEOUT, m1, 'to the full JID')
                self.assertEqual(x.get('to'), str(cloud1.boundjid))
            finally:
                await disconnect(alice)
                await disconnect(cloud1)
        run(go(), 90)

    def test_presence_subscription_both_ways(self):
        """alice@cloud1.example and cloud3@<D> subscribe to each other,
        each approving; each then sees the other's available and
        unavailable presence."""
        a_jid = self.prosody.jid('alice')
        c_jid = self.cluster.jid('cloud3')

        def subscription(ptype, frm):
            return lambda x: is_presence(x, ptype) and bare(x.get('from')) \
                == frm

        def available_from(full):
            return lambda x: is_presence(x, '') and x.get('from') == full

        def unavailable_from(full):
            return lambda x: is_presence(x, 'unavailable') and \
                x.get('from') == full

        async def roster_of(c):
            r = await c.iq("<iq xmlns='jabber:client' type='get'>"
                           "<query xmlns='jabber:iq:roster'/></iq>")
            return harness.roster_items(r)

        async def go():
            alice = await self.on_prosody('alice', resource='pres')
            cloud3 = await self.on_cluster('cloud3', resource='pres')
            try:
                # interested resources (RFC 6121 2.1.6): Prosody sends
                # subscription states only to sessions that asked for
                # the roster
                await roster_of(alice)
                await roster_of(cloud3)
                # alice -> cloud3
                mc, ma = cloud3.mark(), alice.mark()
                alice.send_presence(pto=c_jid, ptype='subscribe')
                await cloud3.expect(subscription('subscribe', a_jid),
                                    IQ_TIMEOUT, mc, 'subscribe from alice')
                cloud3.send_presence(pto=a_jid, ptype='subscribed')
                await alice.expect(subscription('subscribed', c_jid),
                                   IQ_TIMEOUT, ma, 'subscribed from cloud3')
                await alice.expect(available_from(str(cloud3.boundjid)),
                                   IQ_TIMEOUT, ma, "cloud3's presence")
                # cloud3 -> alice
                mc, ma = cloud3.mark(), alice.mark()
                cloud3.send_presence(pto=a_jid, ptype='subscribe')
                await alice.expect(subscription('subscribe', c_jid),
                                   IQ_TIMEOUT, ma, 'subscribe from cloud3')
                alice.send_presence(pto=c_jid, ptype='subscribed')
                await cloud3.expect(subscription('subscribed', a_jid),
                                    IQ_TIMEOUT, mc, 'subscribed from alice')
                await cloud3.expect(available_from(str(alice.boundjid)),
                                    IQ_TIMEOUT, mc, "alice's presence")
                # both rosters say both
                self.assertEqual((await roster_of(alice))[c_jid]
                                 ['subscription'], 'both')
                self.assertEqual((await roster_of(cloud3))[a_jid]
                                 ['subscription'], 'both')
                # cloud3 goes away and comes back
                ma = alice.mark()
                old = str(cloud3.boundjid)
                await disconnect(cloud3)
                await alice.expect(unavailable_from(old), IQ_TIMEOUT, ma,
                                   "cloud3's unavailable presence")
                ma = alice.mark()
                cloud3 = await self.on_cluster('cloud3', resource='back')
                mc = 0
                await alice.expect(available_from(str(cloud3.boundjid)),
                                   IQ_TIMEOUT, ma, "cloud3's presence again")
                await cloud3.expect(available_from(str(alice.boundjid)),
                                    IQ_TIMEOUT, mc,
                                    "alice's presence (probe answered)")
                # alice goes away
                mc = cloud3.mark()
                old = str(alice.boundjid)
                await disconnect(alice)
                await cloud3.expect(unavailable_from(old), IQ_TIMEOUT, mc,
                                    "alice's unavailable presence")
            finally:
                await disconnect(alice)
                await disconnect(cloud3)
        run(go(), 110)

    def test_authentication_path(self):
        """Streams in both directions authenticated with METHOD, as the
        node's and Prosody's logs say; each side found the other through
        the SRV responder."""
        async def go():
            bob = await self.on_prosody('bob', resource='auth')
            try:
                # cloud1.example -> D (and back D -> cloud1.example)
                r = await bob.iq(
                    "<iq xmlns='jabber:client' type='get' to='%s'>"
                    "<ping xmlns='urn:xmpp:ping'/></iq>" % self.cluster.domain,
                    timeout=IQ_TIMEOUT)
                self.assertEqual(r.get('type'), 'result')
            finally:
                await disconnect(bob)
        run(go(), 60)
        d = self.cluster.domain
        other = 'dialback' if self.METHOD == 'certificate' else 'certificate'
        want_in = re.compile(r'%s <- cloud1\.example up \([^,]*, %s\)' %
                             (re.escape(d), self.METHOD))
        want_out = re.compile(r'%s -> cloud1\.example up \([^,]*, %s\)' %
                              (re.escape(d), self.METHOD))
        deadline = time.monotonic() + 10
        while True:
            log = self.node_log()
            if (want_in.search(log) and want_out.search(log)) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ups = [ln for ln in log.splitlines() if 'cloud1.example up' in ln]
        self.assertRegex(log, want_in, 'no incoming stream up by %s; S2S '
                         'lines: %s' % (self.METHOD, ups))
        self.assertRegex(log, want_out, 'no outgoing stream up by %s; S2S '
                         'lines: %s' % (self.METHOD, ups))
        self.assertNotRegex(log, r'cloud1\.example up \([^,]*, %s\)' % other)
        # Prosody's side (its 0.12 log lines, debug level)
        plog = self.prosody.log_text()
        # D -> cloud1.example: Prosody accepted the node's EXTERNAL, or
        # verified the node's dialback key with the node
        ext_in = 'Accepting SASL EXTERNAL identity from %s' % d
        db_in = re.compile(r"Received\[s2sout(?:_unauthed)?\]: <verify "
                           r"(?=[^>]*type='valid')(?=[^>]*from='%s')"
                           % re.escape(d))
        # cloud1.example -> D: the node accepted Prosody's EXTERNAL, or
        # Prosody's dialback key (checked with Prosody itself)
        ext_out = 'SASL EXTERNAL with %s succeeded' % d
        db_out = re.compile(r"Received\[s2sout(?:_unauthed)?\]: <result "
                            r"(?=[^>]*type='valid')(?=[^>]*from='%s')"
                            % re.escape(d))
        seen = {'EXTERNAL in': ext_in in plog, 'EXTERNAL out': ext_out in plog,
                'dialback in': bool(db_in.search(plog)),
                'dialback out': bool(db_out.search(plog)),
                'dialback started': 'Initiating dialback' in plog,
                'key verified': 'verified dialback key... it is valid' in plog}
        if self.METHOD == 'certificate':
            want = {'EXTERNAL in': True, 'EXTERNAL out': True,
                    'dialback in': False, 'dialback out': False,
                    'dialback started': False, 'key verified': False}
        else:
            want = {'EXTERNAL in': False, 'EXTERNAL out': False,
                    'dialback in': True, 'dialback out': True,
                    'dialback started': True, 'key verified': True}
        self.assertEqual(seen, want, "what Prosody's log (%s) shows"
                         % self.prosody.log)
        # both sides asked the responder
        self.assertTrue(self.dns.asked('_xmpp-server._tcp.' + d, 'SRV'),
                        'Prosody never asked for the SRV record of %s: %s'
                        % (d, self.dns.queries))
        self.assertTrue(self.dns.asked('_xmpp-server._tcp.' + PROSODY_DOMAIN,
                                       'SRV'),
                        'the node never asked for the SRV record of %s: %s'
                        % (PROSODY_DOMAIN, self.dns.queries))


class CertificatePath(Federation, unittest.TestCase):
    """Certificates both ways: Prosody's is from the cluster's CA, Prosody
    trusts that CA, s2s_secure_auth = true."""
    METHOD = 'certificate'
    DOMAIN = 'icr-cert.example'

    @classmethod
    def set_up_prosody(cls, pdir):
        cert, key = harness.issue_cert(
            pdir, PROSODY_DOMAIN, [PROSODY_DOMAIN], cls.cluster.ca_cert,
            os.path.join(cls.cluster.dir, 'ca.key'))
        p = Prosody(pdir, cert, key, cls.cluster.ca_cert, True, cls.dns.port)
        p.client_cafile = cls.cluster.ca_cert
        return p


class DialbackPath(Federation, unittest.TestCase):
    """Dialback both ways: Prosody's certificate is from a CA the cluster
    does not trust, Prosody does not trust the cluster's CA,
    s2s_secure_auth = false."""
    METHOD = 'dialback'
    DOMAIN = 'icr-db.example'

    @classmethod
    def set_up_prosody(cls, pdir):
        other_ca = harness.make_other_ca(pdir)
        cert, key = harness.issue_cert(
            pdir, PROSODY_DOMAIN, [PROSODY_DOMAIN], other_ca,
            os.path.join(pdir, 'other-ca.key'))
        p = Prosody(pdir, cert, key, other_ca, False, cls.dns.port)
        p.client_cafile = other_ca
        return p


if __name__ == '__main__':
    why = _prosody_missing()
    if why:
        print('skipped: %s' % why, file=sys.stderr)
        sys.exit(77)
    why = _lua_unbound_missing()
    if why:
        # not a skip: CI installs it (scripts/install-deps.sh)
        print('error: %s; Prosody needs it to use the test\'s DNS '
              'responder' % why, file=sys.stderr)
        sys.exit(1)
    r = subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'prosody'],
                       capture_output=True, text=True)
    print('Prosody %s' % (r.stdout.strip() or '?'), file=sys.stderr)
    harness.main()
