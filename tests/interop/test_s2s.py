#!/usr/bin/python3
"""Federation between two icroot clusters (RFC 6120 S2S, XEP-0220
dialback, RFC 6121 across domains) with slixmpp clients: a root cluster
(intercloudexchg.test, 2 nodes) and an exchange (exch.example, 1 node),
each with its own CA, so their streams authenticate by dialback. Peers are
found by configured routes (`icroot dev --s2s-peer`).

    /usr/bin/python3 test_s2s.py BUILD/icroot [unittest options]
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import dns_responder  # noqa: E402
from harness import q, run, is_presence, is_message, roster_push_item  # noqa

ROOT = EXCH = TLSX = DNS = None
EXCH_DOMAIN = 'exch.example'
TLS_DOMAIN = 'tls.example'  # found only by _xmpps-server SRV (direct TLS)


def closed_port():
    """A loopback port nothing listens on (for an unreachable peer)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setUpModule():
    global ROOT, EXCH, TLSX, DNS
    ports = []
    while len(ports) < 3:
        p = H.pick_base_port(20)
        if all(abs(p - o) >= 20 for o in ports):
            ports.append(p)
    root_port, exch_port, tls_port = ports
    # tls.example: only an _xmpps-server record, to its direct-TLS port
    # (P + 5), under a target name the root resolves with the same DNS
    DNS = dns_responder.DnsResponder().start()
    DNS.add_srv('_xmpps-server._tcp.' + TLS_DOMAIN, 'xmpps.' + TLS_DOMAIN,
                tls_port + 5)
    DNS.add_a('xmpps.' + TLS_DOMAIN, '127.0.0.1')
    ROOT = H.Cluster(nodes=2, base_port=root_port, args=[
        '--s2s-peer', '%s=127.0.0.1:%d' % (EXCH_DOMAIN, exch_port + 2),
        '--s2s-peer', 'nowhere.example=127.0.0.1:%d' % closed_port(),
        '--s2s-dns', DNS.address])
    EXCH = H.Cluster(nodes=1, base_port=exch_port, args=[
        '--domain', EXCH_DOMAIN, '--role', 'exchange', '--no-sample',
        '--s2s-peer', 'intercloudexchg.test=127.0.0.1:%d' % (root_port + 2)])
    TLSX = H.Cluster(nodes=1, base_port=tls_port, args=[
        '--domain', TLS_DOMAIN, '--no-sample',
        '--s2s-peer', 'intercloudexchg.test=127.0.0.1:%d' % (root_port + 2)])
    ROOT.start()
    EXCH.start()
    TLSX.start()


def tearDownModule():
    H.close_all_clients()
    if DNS is not None:
        DNS.stop()
    for c in (ROOT, EXCH, TLSX):
        if c is not None:
            rc, gone = c.stop()
            if rc != 0 or not gone:
                raise AssertionError('icroot dev stop: %r, pid gone %s'
                                     % (rc, gone))


def expect(c, pred, start=0, what='stanza', timeout=10.0):
    return run(c.expect(pred, timeout, start, what), timeout + 5)


ROSTER_GET = ("<iq xmlns='jabber:client' type='get'>"
              "<query xmlns='jabber:iq:roster'/></iq>")


def roster(c):
    r = run(c.iq(ROSTER_GET))
    assert r.get('type') == 'result', H.ET.tostring(r)
    return H.roster_items(r)


def eventually(read, want, timeout=5.0):
    """READ() until it gives WANT (bounded); the last value read."""
    deadline = time.monotonic() + timeout
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = read()
    return got


def body_of(x):
    b = x.find(q(H.NS_CLIENT, 'body'))
    return b.text if b is not None else None


class Federation(unittest.TestCase):
    """cloud1 on the root's node 2, cloud2 on the exchange: iq, messages,
    then subscriptions from none to both, presence, a probe answered to a
    session on node 1, unavailable. The exchange's streams reach node 1,
    so node 1 records cloud2's requests and answers in cloud1's roster
    while node 2 records cloud1's own, within milliseconds: the roster
    changes compose in the state machine."""

    @classmethod
    def setUpClass(cls):
        cls.j1, cls.j2 = ROOT.jid('cloud1'), EXCH.jid('cloud2')
        cls.c1 = run(H.connect(ROOT, 'cloud1', resource='s2s', node=1), 30)
        cls.c2 = run(H.connect(EXCH, 'cloud2', resource='s2s'), 30)

    @classmethod
    def tearDownClass(cls):
        H.close_all_clients()

    def test_01_iq_to_the_other_server(self):
        r = run(self.c1.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                           "<query xmlns='jabber:iq:version'/></iq>"
                           % EXCH_DOMAIN, 15), 20)
        self.assertEqual(r.get('type'), 'result', H.ET.tostring(r))
        self.assertEqual(r.get('from'), EXCH_DOMAIN)

    def test_02_messages_both_ways(self):
        m2 = self.c2.mark()
        self.c1.send_message(mto=self.j2, mbody='hello over s2s')
        x = expect(self.c2, lambda x: is_message(
            x, self.c1.boundjid.full, 'hello over s2s'), m2, 'message')
        self.assertEqual(x.get('to'), self.j2)
        m1 = self.c1.mark()
        self.c2.send_message(mto=self.c1.boundjid.full, mbody='and back')
        expect(self.c1, lambda x: is_message(
            x, self.c2.boundjid.full, 'and back'), m1, 'message')

    def test_03_subscribe_across(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c1.send_presence(pto=self.j2, ptype='subscribe')
        item = roster_push_item(expect(
            c1, lambda x: roster_push_item(x, self.j2) is not None, m1,
            'roster push'), self.j2)
        self.assertEqual((item.get('subscription'), item.get('ask')),
                         ('none', 'subscribe'))
        p = expect(c2, lambda x: is_presence(x, 'subscribe'), m2,
                   'subscribe')
        self.assertEqual(p.get('from'), self.j1)

    def test_04_approve_across(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c2.send_presence(pto=self.j1, ptype='subscribed')
        push2 = roster_push_item(expect(
            c2, lambda x: roster_push_item(x, self.j1) is not None, m2,
            'roster push'), self.j1)
        self.assertEqual(push2.get('subscription'), 'from')
        push1 = roster_push_item(expect(
            c1, lambda x: (roster_push_item(x, self.j2) is not None and
                           roster_push_item(x, self.j2).get(
                               'subscription') == 'to'),
            m1, "roster push 'to'"), self.j2)
        self.assertIsNone(push1.get('ask'))
        expect(c1, lambda x: is_presence(x, 'subscribed', self.j2), m1,
               'subscribed')
        expect(c1, lambda x: is_presence(x, '', self.c2.boundjid.full), m1,
               "cloud2's available presence")

    def test_05_mutual_and_presence(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c2.send_presence(pto=self.j1, ptype='subscribe')
        expect(c1, lambda x: is_presence(x, 'subscribe', self.j2), m1,
               'subscribe')
        c1.send_presence(pto=self.j2, ptype='subscribed')
        expect(c2, lambda x: (roster_push_item(x, self.j1) is not None and
                              roster_push_item(x, self.j1).get(
                                  'subscription') == 'both'),
               m2, "push 'both'")
        expect(c2, lambda x: is_presence(x, '', self.c1.boundjid.full), m2,
               "cloud1's available presence")
        both = {'subscription': 'both', 'ask': None, 'name': None,
                'groups': []}
        # a node's roster read is local: it may lag the cluster by a
        # heartbeat or so, but it converges on every change, whichever
        # nodes made them (the state machine composes them)
        self.assertEqual(eventually(lambda: roster(c1), {self.j2: both}),
                         {self.j2: both})
        self.assertEqual(eventually(lambda: roster(c2), {self.j1: both}),
                         {self.j1: both})
        m1 = c1.mark()
        c2.send_presence(pstatus='across the federation')
        expect(c1, lambda x: (is_presence(x, '', self.c2.boundjid.full) and
                              x.find(q(H.NS_CLIENT, 'status')) is not None),
               m1, 'status change')

    def test_06_probe_on_login(self):
        """A new session of cloud1, on the other node, learns cloud2's
        presence by a probe (its answer arrives on node 1 and is routed)."""
        c3 = run(H.connect(ROOT, 'cloud1', resource='second', node=0,
                           presence=False), 30)
        m3 = c3.mark()
        c3.send_presence()
        expect(c3, lambda x: is_presence(x, '', self.c2.boundjid.full), m3,
               "cloud2's presence, answering the probe")

    def test_07_unavailable_across(self):
        full2 = self.c2.boundjid.full
        m1 = self.c1.mark()
        run(H.disconnect(self.c2))
        expect(self.c1, lambda x: is_presence(x, 'unavailable', full2), m1,
               'unavailable')


def node_logs(cluster):
    text = ''
    for i in range(cluster.nodes):
        with open(os.path.join(cluster.dir, 'node%d.log' % (i + 1)),
                  errors='replace') as f:
            text += f.read()
    return text


class DirectTls(unittest.TestCase):
    """A domain with only an _xmpps-server SRV record is reached with TLS
    from the first byte (XEP-0368), its target resolved through the same
    configured DNS server."""

    def test_message_over_direct_tls(self):
        a = run(H.connect(ROOT, 'cloud4', resource='d'), 30)
        b = run(H.connect(TLSX, 'cloud4', resource='d'), 30)
        try:
            m = b.mark()
            a.send_message(mto=TLSX.jid('cloud4'), mbody='first byte TLS')
            expect(b, lambda x: is_message(x, a.boundjid.full,
                                           'first byte TLS'), m, 'message')
        finally:
            run(H.disconnect(a))
            run(H.disconnect(b))
        self.assertTrue(DNS.asked('_xmpps-server._tcp.' + TLS_DOMAIN, 'SRV'))
        self.assertTrue(DNS.asked('_xmpp-server._tcp.' + TLS_DOMAIN, 'SRV'))
        self.assertTrue(DNS.asked('xmpps.' + TLS_DOMAIN, 'A'),
                        'the SRV target resolved with the configured DNS')
        self.assertIn('-> %s up (127.0.0.1, dialback, direct TLS)'
                      % TLS_DOMAIN, node_logs(ROOT))
        self.assertIn('<- intercloudexchg.test up (127.0.0.1, dialback, '
                      'direct TLS)', node_logs(TLSX))


class Failures(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.c = run(H.connect(ROOT, 'cloud3', resource='f'), 30)

    @classmethod
    def tearDownClass(cls):
        H.close_all_clients()

    def test_unreachable_domain_bounces(self):
        r = run(self.c.iq("<iq xmlns='jabber:client' type='get' "
                          "to='nowhere.example'><ping xmlns='urn:xmpp:ping'/>"
                          "</iq>", 20), 25)
        self.assertEqual(r.get('type'), 'error')
        err = r.find(q(H.NS_CLIENT, 'error'))
        self.assertIsNotNone(
            err.find(q(H.NS_STANZA_ERR, 'remote-server-not-found')),
            H.ET.tostring(r))

    def test_message_to_missing_user_over_s2s(self):
        m = self.c.mark()
        self.c.send_message(mto='nobody@%s' % EXCH_DOMAIN, mbody='hi')
        x = expect(self.c, lambda x: (x.tag == q(H.NS_CLIENT, 'message') and
                                      x.get('type') == 'error'), m,
                   'error message')
        self.assertEqual(x.get('from'), 'nobody@%s' % EXCH_DOMAIN)

    def test_unknown_subdomain_of_a_peer(self):
        """A route covers subdomains; the peer refuses a host it lacks."""
        r = run(self.c.iq("<iq xmlns='jabber:client' type='get' "
                          "to='other.%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                          % EXCH_DOMAIN, 20), 25)
        self.assertEqual(r.get('type'), 'error', H.ET.tostring(r))


if __name__ == '__main__':
    H.main()
