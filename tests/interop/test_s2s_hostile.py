"""Hostile input on S2S (the issue: "hostile S2S input (spoofed from domain,
dialback without a request, a stream that never authenticates) ends that
stream and nothing else"; INTERFACE.md "S2S (federation)").

Raw jabber:server streams (harness.RawS2S: socket + ssl + an incremental
parser) against the node's S2S port. A peer that authenticates does so
with SASL EXTERNAL and a client certificate for evil.example signed by the
cluster's own CA, which the node trusts (XEP-0178). After each hostile
stream the node must still serve C2S logins, the other S2S stream that
was authenticated at the start (a witness), and a new S2S stream.

Run: /usr/bin/python3 tests/interop/test_s2s_hostile.py build/icroot
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (NS_TLS, NS_DIALBACK_FEATURE, RawClient,  # noqa: E402
                     RawS2S, StreamClosed, q)

CLUSTER = None
CERTS = {}
# streams opened at the start and checked by the last test: the node's
# handshake deadline ([c2s] handshake_timeout, 30 s in `icroot dev`)
# must end them
IDLE = {}
HANDSHAKE_TIMEOUT = 30
WITNESS = None   # an authenticated S2S stream kept open throughout
RECEIVER = None  # cloud1's C2S session, where witness messages land


def setUpModule():
    global CLUSTER, WITNESS, RECEIVER
    CLUSTER = harness.start_cluster()
    ca_key = os.path.join(CLUSTER.dir, 'ca.key')
    certdir = os.path.join(CLUSTER.dir, 'peer-certs')
    os.makedirs(certdir)
    for name in ('evil.example', 'good.example'):
        CERTS[name] = harness.issue_cert(certdir, name, [name],
                                         CLUSTER.ca_cert, ca_key)
    # the streams that never authenticate, started first so that their
    # deadline runs while the other tests do
    t0 = time.monotonic()
    silent = socket.create_connection((CLUSTER.host, CLUSTER.s2s_port),
                                      timeout=10)
    IDLE['silent'] = (silent, t0)  # TCP only, not a byte
    after_tls = RawS2S(CLUSTER, 'evil.example', cert=CERTS['evil.example'])
    after_tls.secure()  # features after TLS, then nothing
    IDLE['after_tls'] = (after_tls, time.monotonic())
    RECEIVER = RawClient(CLUSTER)
    RECEIVER.login('cloud1', resource='witness')
    RECEIVER.send('<presence/>')
    WITNESS = RawS2S(CLUSTER, 'good.example', cert=CERTS['good.example'])
    WITNESS.authenticate_external()


def tearDownModule():
    for c in [RECEIVER, WITNESS] + [x[0] for x in IDLE.values()]:
        if c is not None:
            try:
                c.close()
            except OSError:
                pass
    harness.stop_cluster()


_seq = [0]


def witness_delivers():
    """A message over the witness stream reaches cloud1's session."""
    _seq[0] += 1
    body = 'witness %d' % _seq[0]
    WITNESS.send("<message from='peer@good.example/w' to='%s' type='chat'>"
                  "<body>%s</body></message>" % (RECEIVER.jid, body))
    deadline = time.monotonic() + 10
    while True:
        el = RECEIVER.next(max(deadline - time.monotonic(), 0.01))
        if el.tag == q(harness.NS_CLIENT, 'message'):
            b = el.find(q(harness.NS_CLIENT, 'body'))
            if b is not None and b.text == body:
                if el.get('from') != 'peer@good.example/w':
                    raise AssertionError('from changed: %r' % el.get('from'))
                return True


class S2SHostile(unittest.TestCase):

    def assertStreamEnded(self, s, cond, timeout=10):
        """A <stream:error/> with COND, then the stream closes."""
        try:
            got, text = s.expect_stream_error(timeout)
        except StreamClosed:
            self.fail('stream closed without a stream error (want %s)' % cond)
        self.assertEqual(got, cond, 'stream error text: %r' % text)
        self.assertTrue(s.wait_closed(timeout),
                        'the node did not close the connection')

    def assertNodeServes(self):
        """The node, the witness S2S stream and C2S logins go on, and a
        new S2S stream authenticates."""
        self.assertTrue(CLUSTER.node_alive(), 'the node died')
        c = RawClient(CLUSTER)
        try:
            self.assertTrue(c.login('cloud2'))
            self.assertEqual(c.ping().get('type'), 'result')
        finally:
            c.close()
        self.assertTrue(witness_delivers())
        s = RawS2S(CLUSTER, 'evil.example', cert=CERTS['evil.example'])
        try:
            s.authenticate_external()
        finally:
            s.close()

    def evil(self, **kw):
        s = RawS2S(CLUSTER, 'evil.example', cert=CERTS['evil.example'], **kw)
        self.addCleanup(s.close)
        return s

    # -- a stream that never authenticates
    def test_stanza_before_tls(self):
        s = self.evil()
        feats = s.open_stream()
        self.assertIsNotNone(feats.find(q(NS_TLS, 'starttls')))
        s.send("<message from='x@evil.example' to='%s'><body>hi</body>"
               "</message>" % CLUSTER.jid('cloud1'))
        self.assertStreamEnded(s, 'not-authorized')
        self.assertNodeServes()

    def test_stanza_after_tls_before_authentication(self):
        s = self.evil()
        feats = s.secure()
        self.assertIn('EXTERNAL', s.mechanisms(feats))
        s.send("<message from='x@evil.example' to='%s'><body>hi</body>"
               "</message>" % CLUSTER.jid('cloud1'))
        self.assertStreamEnded(s, 'not-authorized')
        self.assertNodeServes()

    def test_stanza_when_external_refused(self):
        """A certificate that does not name the header's from: no
        EXTERNAL offered, EXTERNAL asked anyway is refused, the stream
        ends."""
        s = self.evil()
        feats = s.secure(frm='other.example')
        self.assertNotIn('EXTERNAL', s.mechanisms(feats))
        self.assertEqual(s.auth_external('other.example'), 'not-authorized')
        self.assertTrue(s.wait_closed(10))
        self.assertNodeServes()

    def test_zz_unauthenticated_streams_time_out(self):
        """Runs last: the streams opened in setUpModule that never
        authenticated were closed by the node's handshake deadline."""
        sock, t0 = IDLE['silent']
        left = t0 + HANDSHAKE_TIMEOUT + 15 - time.monotonic()
        sock.settimeout(max(left, 1))
        data = b''
        try:
            while True:
                d = sock.recv(65536)
                if not d:
                    break
                data += d
        except socket.timeout:
            self.fail('a silent TCP connection is still open %.0f s after it '
                      'was made' % (time.monotonic() - t0))
        except ConnectionError:
            pass
        s, t1 = IDLE['after_tls']
        left = t1 + HANDSHAKE_TIMEOUT + 15 - time.monotonic()
        self.assertStreamEnded(s, 'connection-timeout', max(left, 1))
        self.assertNodeServes()

    # -- dialback
    def test_unsolicited_dialback_verdict(self):
        s = self.evil()
        feats = s.secure()
        self.assertIsNotNone(feats.find(q(NS_DIALBACK_FEATURE, 'dialback')))
        s.send("<db:result from='evil.example' to='%s' type='valid'/>"
               % CLUSTER.domain)
        self.assertStreamEnded(s, 'not-authorized')
        self.assertNodeServes()

    def test_unsolicited_dialback_verdict_before_tls(self):
        s = self.evil()
        s.open_stream()
        s.send("<db:result from='evil.example' to='%s' type='valid'/>"
               % CLUSTER.domain)
        self.assertStreamEnded(s, 'not-authorized')
        self.assertNodeServes()

    def test_unsolicited_dialback_verdict_after_authentication(self):
        s = self.evil()
        s.authenticate_external()
        s.send("<db:result from='evil.example' to='%s' type='valid'/>"
               % CLUSTER.domain)
        self.assertStreamEnded(s, 'not-authorized')
        self.assertNodeServes()

    def test_dialback_key_for_another_domain(self):
        """A <db:result/> with a key, to a domain the stream is not
        for."""
        s = self.evil()
        s.secure()
        s.send("<db:result from='evil.example' to='elsewhere.example'>"
               "%s</db:result>" % ('ab' * 32))
        self.assertStreamEnded(s, 'host-unknown')
        self.assertNodeServes()

    # -- authenticated, then hostile stanzas
    def test_authenticated_stream_delivers(self):
        """The positive control of the tests below: EXTERNAL as
        evil.example, a stanza from evil.example is delivered."""
        s = self.evil()
        s.authenticate_external()
        s.send("<message from='mallory@evil.example/x' to='%s' type='chat'>"
               "<body>control</body></message>" % RECEIVER.jid)
        deadline = time.monotonic() + 10
        while True:
            el = RECEIVER.next(max(deadline - time.monotonic(), 0.01))
            b = el.find(q(harness.NS_CLIENT, 'body'))
            if b is not None and b.text == 'control':
                self.assertEqual(el.get('from'), 'mallory@evil.example/x')
                break

    def test_spoofed_from(self):
        s = self.evil()
        s.authenticate_external()
        s.send("<message from='someone@other.example' to='%s' type='chat'>"
               "<body>spoofed</body></message>" % RECEIVER.jid)
        self.assertStreamEnded(s, 'invalid-from')
        self.assertNodeServes()
        # and the spoofed message was not delivered
        mark = time.monotonic() + 0.5
        while time.monotonic() < mark:
            try:
                el = RECEIVER.next(0.1)
            except TimeoutError:
                continue
            b = el.find(q(harness.NS_CLIENT, 'body'))
            self.assertFalse(b is not None and b.text == 'spoofed',
                             'the spoofed message was delivered')

    def test_spoofed_from_cluster_domain(self):
        """A peer claiming to speak for the cluster's own domain."""
        s = self.evil()
        s.authenticate_external()
        s.send("<iq type='get' id='x1' from='admin@%s/r' to='%s'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>"
               % (CLUSTER.domain, CLUSTER.domain))
        self.assertStreamEnded(s, 'invalid-from')
        self.assertNodeServes()

    def test_stanza_to_unhosted_domain(self):
        s = self.evil()
        s.authenticate_external()
        s.send("<message from='mallory@evil.example' to='x@elsewhere.example'"
               "><body>relay me</body></message>")
        self.assertStreamEnded(s, 'host-unknown')
        self.assertNodeServes()

    def test_header_to_unhosted_domain(self):
        s = self.evil(to_domain='elsewhere.example')
        s.send(s.header_xml())
        self.assertStreamEnded(s, 'host-unknown')
        self.assertNodeServes()

    def test_client_namespace(self):
        s = self.evil()
        s.send(s.header_xml(ns=harness.NS_CLIENT))
        self.assertStreamEnded(s, 'invalid-namespace')
        self.assertNodeServes()

    # -- restricted XML
    def test_doctype_before_header(self):
        s = self.evil()
        s.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x "
               "'boom'>]>" + s.header_xml().split('?>', 1)[1])
        self.assertStreamEnded(s, 'restricted-xml')
        self.assertNodeServes()

    def test_doctype_in_restarted_stream(self):
        """After TLS: the new stream starts with a DTD."""
        s = self.evil()
        s.open_stream()
        s.starttls()
        s.send("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" +
               s.header_xml().split('?>', 1)[1])
        self.assertStreamEnded(s, 'restricted-xml')
        self.assertNodeServes()

    def test_entity_reference_after_authentication(self):
        s = self.evil()
        s.authenticate_external()
        s.send("<message from='mallory@evil.example' to='%s'><body>&xxe;"
               "</body></message>" % RECEIVER.jid)
        # as on C2S (test_hostile.py): an undefined entity
        self.assertStreamEnded(s, 'not-well-formed')
        self.assertNodeServes()

    def test_starttls_twice(self):
        s = self.evil()
        s.secure()
        s.send("<starttls xmlns='%s'/>" % NS_TLS)
        try:
            cond, _text = s.expect_stream_error(10)
        except StreamClosed:
            self.fail('stream closed without a stream error')
        self.assertIsNotNone(cond)
        self.assertTrue(s.wait_closed(10))
        self.assertNodeServes()


if __name__ == '__main__':
    harness.main()
