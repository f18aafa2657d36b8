#!/usr/bin/python3
"""Hostile input on the C2S port, with raw sockets: each case opens its
own connection and expects the right <stream:error/> and the connection
closed; after each case a slixmpp session logged in since the start must
still answer a ping (and get the server's answer to its own), and a fresh
login must still work.

    /usr/bin/python3 test_hostile.py BUILD/icroot [unittest options]
"""
import asyncio
import os
import select
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import q, run  # noqa: E402

C = None
KEEPER = None  # cloud1/keeper, logged in for the whole module

LOL = ("<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
       + ''.join("<!ENTITY lol%d '%s'>" % (i, ('&lol%s;' % (
           i - 1 if i > 2 else '')) * 10) for i in range(2, 11))
       + "]>")
LOL_BODY = "<message><body>&lol10;</body></message>"

PING = "<iq xmlns='jabber:client' type='get' to='%s'><ping xmlns='%s'/></iq>"


def setUpModule():
    global C, KEEPER
    C = H.start_cluster()
    KEEPER = run(H.connect(C, 'cloud1', resource='keeper'), 30)
    H._CLIENTS.remove(KEEPER)  # not closed between tests


def tearDownModule():
    try:
        if KEEPER is not None:
            run(H.disconnect(KEEPER))
    finally:
        H.stop_cluster()


def in_thread(fn, *args):
    """Runs a blocking raw-socket call in a thread while the event loop
    (and so the slixmpp sessions) keeps running."""
    return H.loop().run_in_executor(None, fn, *args)


class Hostile(unittest.TestCase):
    def setUp(self):
        self.raws = []
        self.addCleanup(self.node_goes_on)
        self.addCleanup(self.close_raws)

    def close_raws(self):
        for r in self.raws:
            r.close()

    def raw(self, **kw):
        r = H.RawClient(C, **kw)
        self.raws.append(r)
        return r

    def node_goes_on(self):
        self.assertTrue(C.node_alive(), 'the node process died')
        # a fresh login, which pings the kept session; the kept session
        # pings the server meanwhile
        fresh = H.RawClient(C)
        try:
            me = fresh.login('cloud2')
            fresh.send("<iq type='get' id='k1' to='%s'><ping xmlns='%s'/>"
                       "</iq>" % (KEEPER.boundjid.full, H.NS_PING))

            async def both():
                mine = await KEEPER.iq(PING % (C.domain, H.NS_PING))
                theirs = await in_thread(fresh.wait_iq, 'k1', 10)
                return mine, theirs
            mine, theirs = run(both(), 20)
            self.assertEqual(mine.get('type'), 'result')
            self.assertEqual(theirs.get('type'), 'result')
            self.assertEqual(theirs.get('from'), KEEPER.boundjid.full)
            self.assertEqual(theirs.get('to'), me)
        finally:
            fresh.close()

    def assertStreamError(self, r, cond, text=None, timeout=10):
        got, txt = r.expect_stream_error(timeout)
        self.assertEqual(got, cond, txt)
        if text is not None:
            self.assertEqual(txt, text)
        self.assertTrue(r.wait_closed(timeout), 'connection left open')
        return txt

    # -- restricted XML (RFC 6120 11.1)

    # A DOCTYPE after the stream header is not XML at all there (a DTD
    # may only stand in the prolog): the stream ends as not well-formed,
    # the same however the bytes are split (a DOCTYPE in the prolog, where
    # XML allows it, is refused as restricted-xml:
    # test_doctype_before_stream_header).
    def test_billion_laughs_in_stream(self):
        r = self.raw()
        r.open_stream()
        r.send(LOL + LOL_BODY)
        self.assertStreamError(r, 'not-well-formed')

    def test_billion_laughs_in_stream_is_harmless(self):
        r = self.raw()
        r.open_stream()
        t0 = time.monotonic()
        r.send(LOL + LOL_BODY)
        cond, _ = r.expect_stream_error(10)
        self.assertIn(cond, ('restricted-xml', 'not-well-formed'))
        self.assertTrue(r.wait_closed(10))
        self.assertLess(time.monotonic() - t0, 5)

    def test_undeclared_entity_after_login(self):
        r = self.raw()
        r.login('cloud4')
        r.send(LOL_BODY.replace('&lol10;', '&lol;'))
        txt = self.assertStreamError(r, 'not-well-formed')
        self.assertIn('undefined entity', txt)

    def test_billion_laughs_after_login_is_harmless(self):
        r = self.raw()
        r.login('cloud4')
        r.send(LOL + LOL_BODY)
        cond, _ = r.expect_stream_error(10)
        self.assertIn(cond, ('restricted-xml', 'not-well-formed'))
        self.assertTrue(r.wait_closed(10))

    def test_doctype_before_stream_header(self):
        r = self.raw()
        r.send("<?xml version='1.0'?>" + LOL +
               r.header_xml()[len("<?xml version='1.0'?>"):])
        self.assertStreamError(r, 'restricted-xml',
                               'a DOCTYPE is not allowed')
        self.assertEqual(r.header.tag, q(H.NS_STREAM, 'stream'))

    def test_comment(self):
        r = self.raw()
        r.open_stream()
        r.send('<!-- a comment -->')
        self.assertStreamError(r, 'restricted-xml',
                               'a comment is not allowed')

    def test_comment_before_stream_header(self):
        r = self.raw()
        r.send("<?xml version='1.0'?><!-- hi -->" +
               r.header_xml()[len("<?xml version='1.0'?>"):])
        self.assertStreamError(r, 'restricted-xml')

    def test_comment_inside_stanza_after_login(self):
        r = self.raw()
        r.login('cloud4')
        r.send("<message to='%s'><body>x<!-- y --></body></message>" %
               C.jid('cloud1'))
        self.assertStreamError(r, 'restricted-xml')

    def test_processing_instruction(self):
        r = self.raw()
        r.open_stream()
        r.send("<?evil payload='1'?>")
        self.assertStreamError(r, 'restricted-xml',
                               'a processing instruction is not allowed')

    # -- malformed input

    def test_malformed_xml(self):
        r = self.raw()
        r.open_stream()
        r.send('<message><body>unclosed</message>')
        txt = self.assertStreamError(r, 'not-well-formed')
        self.assertIn('mismatched tag', txt)

    def test_text_between_stanzas(self):
        r = self.raw()
        r.open_stream()
        # refused at the latest when the next element starts
        r.send('hello<message/>')
        self.assertStreamError(r, 'bad-format', 'text between stanzas')

    def test_other_encoding(self):
        r = self.raw()
        r.send("<?xml version='1.0' encoding='ISO-8859-1'?>" +
               r.header_xml()[len("<?xml version='1.0'?>"):])
        self.assertStreamError(r, 'unsupported-encoding')

    def test_too_deep(self):
        r = self.raw()
        r.login('cloud4')
        r.send("<message to='%s'>" % C.jid('cloud1') + '<a>' * 40)
        self.assertStreamError(r, 'policy-violation')

    # -- size limits

    def test_10mib_stanza_after_login(self):
        r = self.raw()
        r.login('cloud4')
        head = ("<message to='%s'><body>" % r.jid).encode()
        sent = r.send_until_answered(
            [head] + [b'x' * 65536] * (10 << 4))  # 10 MiB of body
        self.assertStreamError(r, 'policy-violation',
                               'a stanza is larger than 262144 bytes')
        sys.stderr.write('[10 MiB stanza: stream error after %d KiB sent] '
                         % (sent >> 10))

    def test_64kib_stanza_before_auth(self):
        r = self.raw()
        r.secure()  # TLS on, not authenticated: the 16 KiB limit
        r.send_until_answered([b'<message><body>'] + [b'x' * 4096] * 16 +
                              [b'</body></message>'])
        self.assertStreamError(r, 'policy-violation',
                               'a stanza is larger than 16384 bytes')

    def test_64kib_stanza_before_starttls(self):
        r = self.raw()
        r.open_stream()
        r.send_until_answered([b'<message><body>'] + [b'x' * 4096] * 16 +
                              [b'</body></message>'])
        self.assertStreamError(r, 'policy-violation',
                               'a stanza is larger than 16384 bytes')

    def test_64kib_stanza_after_login_is_fine(self):
        # after authentication the limit is max_stanza (256 KiB)
        r = self.raw()
        me = r.login('cloud4')
        body = 'y' * 65536
        r.send("<message to='%s' id='big'><body>%s</body></message>" %
               (me, body))
        m = r.next()
        self.assertEqual((m.tag, m.get('id')), (q(H.NS_CLIENT, 'message'),
                                                'big'))
        self.assertEqual(m.find(q(H.NS_CLIENT, 'body')).text, body)

    # -- out of order

    def test_message_before_starttls(self):
        # RFC 6120 4.9.3.12 <not-authorized/> covers "stanzas ... before
        # the stream has been authenticated"; with STARTTLS required and
        # not yet done the server answers <policy-violation/> (as
        # ejabberd does); both are stream errors that close the stream.
        r = self.raw()
        r.open_stream()
        r.send("<message to='%s'><body>early</body></message>" %
               C.jid('cloud1'))
        self.assertStreamError(r, 'policy-violation',
                               'STARTTLS is required first')

    def test_message_before_auth(self):
        r = self.raw()
        r.secure()
        r.send("<message to='%s'><body>early</body></message>" %
               C.jid('cloud1'))
        self.assertStreamError(r, 'not-authorized')

    def test_message_before_bind(self):
        r = self.raw()
        r.secure()
        self.assertEqual(r.auth_scram('cloud4', C.password('cloud4')),
                         'success')
        r.open_stream()
        r.send("<message to='%s'><body>early</body></message>" %
               C.jid('cloud1'))
        self.assertStreamError(r, 'not-authorized')

    # -- stream headers

    def test_wrong_stream_namespace(self):
        r = self.raw()
        r.send(r.header_xml(stream_ns='http://example.com/not-streams'))
        self.assertStreamError(r, 'invalid-namespace')

    # RFC 6120 4.9.3.10: a content namespace other than jabber:client on
    # a client stream is <invalid-namespace/>.
    def test_unsupported_content_namespace(self):
        r = self.raw()
        r.send(r.header_xml(ns='urn:example:bogus'))
        self.assertStreamError(r, 'invalid-namespace', timeout=3)

    def test_wrong_host(self):
        r = self.raw()
        r.send(r.header_xml(to='wrong.example'))
        self.assertStreamError(r, 'host-unknown')
        self.assertEqual(r.header.get('from'), C.domain)

    def test_unsupported_version(self):
        r = self.raw()
        r.send(r.header_xml(version='2.0'))
        self.assertStreamError(r, 'unsupported-version')

    # -- STARTTLS injection (CVE-2011-0411 style)

    def test_plaintext_after_starttls_is_dropped(self):
        r = self.raw()
        r.open_stream()
        m0 = KEEPER.mark()
        r.send("<starttls xmlns='%s'/><iq type='get' id='inj' to='%s'>"
               "<ping xmlns='%s'/></iq><message to='%s'><body>injected"
               "</body></message>" % (H.NS_TLS, C.domain, H.NS_PING,
                                      KEEPER.boundjid.full))
        r.expect(q(H.NS_TLS, 'proceed'))
        r.wrap_tls()  # the handshake must work: nothing else was read
        feats = r.open_stream()
        self.assertIn('SCRAM-SHA-256', r.mechanisms(feats))
        self.assertEqual(r.auth_scram('cloud4', C.password('cloud4')),
                         'success')
        r.reset_parser()
        r.bind()
        self.assertEqual(r.ping().get('type'), 'result')
        self.assertEqual([x for x in r.stanzas if x.get('id') == 'inj'], [])
        run(asyncio.sleep(0.3))
        self.assertEqual([x for x in KEEPER.inbox[m0:]
                          if H.is_message(x, body='injected')], [])

    # -- slow and never-authenticating clients

    def test_unauthenticated_stream_left_open_for_a_while(self):
        # The handshake timeout is [c2s] handshake_timeout (dev default
        # 30 s): too slow here; only check it is not instant.
        r = self.raw()
        r.open_stream()
        self.assertIsNone(r.recv_some(2.0))
        self.assertFalse(r.eof)
        r.starttls()
        self.assertIn('PLAIN', r.mechanisms(r.open_stream()))

    # -- flood

    def test_flood(self):
        n = 5000
        r = self.raw()
        me = r.login('cloud3', resource='flood')

        def flood():
            got, err, sent = 0, None, 0
            deadline = time.monotonic() + 60
            while got < n and err is None and time.monotonic() < deadline:
                if sent < n and sent - got < 1000:
                    k = min(100, n - sent)
                    try:
                        r.send(''.join(
                            "<message to='%s' type='chat' id='f%d'><body>"
                            "flood %d</body></message>" % (me, i, i)
                            for i in range(sent, sent + k)))
                    except (OSError, ssl.SSLError):
                        sent = n  # cut off: read what the server said
                        continue
                    sent += k
                    if not (r.sock.pending() or
                            select.select([r.sock], [], [], 0)[0]):
                        continue
                if r.recv_some(5.0) == b'':
                    break
                while r.pending:
                    el = r.pending.popleft()
                    if el.tag == q(H.NS_CLIENT, 'message'):
                        got += 1
                    elif el.tag == q(H.NS_STREAM, 'error'):
                        err = H.stream_error_of(el)
            return got, err, sent

        async def during():
            fut = in_thread(flood)
            pings = 0
            while not fut.done():
                ans = await KEEPER.iq(PING % (C.domain, H.NS_PING), 10)
                self.assertEqual(ans.get('type'), 'result')
                pings += 1
                await asyncio.sleep(0.02)
            return await fut, pings
        t0 = time.monotonic()
        (got, err, sent), pings = run(during(), 90)
        sys.stderr.write('[flood: %d sent, %d echoed, error %s, %d pings '
                         'answered meanwhile, %.1f s] ' %
                         (sent, got, err, pings, time.monotonic() - t0))
        self.assertGreaterEqual(pings, 1)
        if err is None:  # no flood control: everything delivered
            self.assertEqual((sent, got), (n, n))
            self.assertEqual(r.ping().get('type'), 'result')
        else:  # or the flooder's stream ends with a proper condition
            self.assertIn(err[0], ('policy-violation',
                                   'resource-constraint'))
            self.assertTrue(r.wait_closed(10))

    def test_flood_without_reading(self):
        # The flooder never reads its echoes: the server's write queue
        # to it fills, it stops reading from it (back-pressure), and the
        # flooder's writes block. Everyone else must go on meanwhile.
        r = self.raw()
        me = r.login('cloud3', resource='deaf')
        batch = ''.join("<message to='%s' type='chat'><body>%s</body>"
                        "</message>" % (me, 'z' * 200)
                        for _ in range(100)).encode()

        def blast():
            r.sock.settimeout(3.0)
            sent = 0
            try:
                for _ in range(400):  # 40000 messages, ~10 MiB
                    r.sock.sendall(batch)
                    sent += len(batch)
            except (OSError, ssl.SSLError):
                pass  # blocked (timeout) or cut off
            return sent

        async def during():
            fut = in_thread(blast)
            pings = 0
            while not fut.done():
                ans = await KEEPER.iq(PING % (C.domain, H.NS_PING), 10)
                self.assertEqual(ans.get('type'), 'result')
                pings += 1
                await asyncio.sleep(0.05)
            return await fut, pings
        sent, pings = run(during(), 60)
        sys.stderr.write('[deaf flooder: %d KiB written, %d pings answered '
                         'meanwhile] ' % (sent >> 10, pings))
        self.assertGreaterEqual(pings, 1)
        r.close()


if __name__ == '__main__':
    H.main()
