#!/usr/bin/python3
"""Client-to-server interop: TLS (STARTTLS, direct TLS with ALPN), SASL
(SCRAM-SHA-1, SCRAM-SHA-256, PLAIN with slixmpp; SCRAM-*-PLUS with
tls-server-end-point with the raw client), resource binding, ping,
service discovery and the seed paper's catalog query.

    /usr/bin/python3 test_c2s.py BUILD/icroot [unittest options]
"""
import asyncio
import os
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import ET, q, run  # noqa: E402

C = None

MECHANISMS = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256',
              'SCRAM-SHA-1', 'PLAIN']


def setUpModule():
    global C
    C = H.start_cluster()


def tearDownModule():
    H.stop_cluster()


class Base(unittest.TestCase):
    def setUp(self):
        self.raws = []

    def tearDown(self):
        for r in self.raws:
            r.close()
        H.close_all_clients()

    def raw(self, **kw):
        r = H.RawClient(C, **kw)
        self.raws.append(r)
        return r

    def login(self, user, **kw):
        return run(H.connect(C, user, **kw), 30)


# ---------------------------------------------------------------------------

class ClusterJson(unittest.TestCase):
    """DIR/cluster.json as INTERFACE.md pins it, for --nodes 1."""

    def test_contract(self):
        info, P = C.info, C.base_port
        self.assertEqual(info['domain'], 'intercloudexchg.test')
        self.assertEqual(info['service_jid'], 'service.intercloudexchg.test')
        self.assertTrue(os.path.isabs(info['ca_cert']))
        self.assertTrue(os.path.isfile(info['ca_cert']))
        self.assertEqual(len(info['nodes']), 1)
        n = info['nodes'][0]
        self.assertEqual((n['id'], n['host'], n['c2s_port'],
                          n['c2s_tls_port'], n['s2s_port'], n['raft_port']),
                         (1, '127.0.0.1', P, P + 1, P + 2, P + 3))
        self.assertTrue(os.path.isfile(n['config']))
        self.assertTrue(os.path.isdir(n['data_dir']))
        self.assertTrue(C.node_alive())
        self.assertNotEqual(n['pid'], C.proc.pid)  # the node itself
        accounts = {a['jid']: a for a in info['accounts']}
        self.assertEqual(set(accounts), {C.jid(u) for u in (
            'cloud1', 'cloud2', 'cloud3', 'cloud4', 'cloud5', 'admin')})
        self.assertEqual([j for j, a in accounts.items() if a.get('admin')],
                         [C.jid('admin')])
        self.assertEqual(len({a['password'] for a in accounts.values()}), 6)


class TLS(Base):
    def test_starttls_required_then_verified_against_ca(self):
        r = self.raw()
        feats = r.open_stream()
        self.assertEqual(r.header.get('from'), C.domain)
        self.assertEqual([ch.tag for ch in feats], [q(H.NS_TLS, 'starttls')])
        self.assertIsNotNone(
            feats.find(q(H.NS_TLS, 'starttls')).find(q(H.NS_TLS, 'required')))
        r.starttls()  # verifies the chain to ca_cert and the host name
        self.assertIn(r.sock.version(), ('TLSv1.2', 'TLSv1.3'))
        sans = r.sock.getpeercert()['subjectAltName']
        self.assertIn(('DNS', C.domain), sans)
        self.assertIn(('DNS', 'service.' + C.domain), sans)
        feats = r.open_stream()
        self.assertIsNone(feats.find(q(H.NS_TLS, 'starttls')))
        self.assertEqual(r.mechanisms(feats), MECHANISMS)
        cb = feats.find(q(H.NS_SASL_CB, 'sasl-channel-binding'))
        self.assertIsNotNone(cb)
        self.assertEqual(sorted(x.get('type') for x in cb),
                         ['tls-exporter', 'tls-server-end-point'])

    def test_starttls_against_another_ca_fails(self):
        other = H.make_other_ca(C.dir)
        r = self.raw(cafile=other)
        r.open_stream()
        with self.assertRaises(ssl.SSLCertVerificationError):
            r.starttls()

    def test_slixmpp_another_ca_fails(self):
        other = H.make_other_ca(C.dir)
        with self.assertRaises(H.LoginFailed):
            self.login('cloud1', cafile=other, timeout=10)

    def test_slixmpp_starttls_verified(self):
        c = self.login('cloud1')
        sslobj = c.transport.get_extra_info('ssl_object')
        self.assertIsNotNone(sslobj)
        self.assertIn(('DNS', C.domain),
                      sslobj.getpeercert()['subjectAltName'])
        self.assertEqual(c.boundjid.bare, C.jid('cloud1'))

    def test_direct_tls_alpn_raw(self):
        r = self.raw(direct_tls=True, alpn=['xmpp-client'])
        self.assertEqual(r.sock.selected_alpn_protocol(), 'xmpp-client')
        feats = r.open_stream()
        self.assertIsNone(feats.find(q(H.NS_TLS, 'starttls')))
        self.assertEqual(r.mechanisms(feats), MECHANISMS)
        self.assertEqual(r.auth_scram('cloud2', C.password('cloud2')),
                         'success')
        r.reset_parser()
        jid = r.bind('direct')
        self.assertEqual(jid, C.jid('cloud2') + '/direct')
        self.assertEqual(r.ping().get('type'), 'result')

    def test_direct_tls_alpn_slixmpp(self):
        c = self.login('cloud2', direct_tls=True, alpn=['xmpp-client'])
        sslobj = c.transport.get_extra_info('ssl_object')
        self.assertEqual(sslobj.selected_alpn_protocol(), 'xmpp-client')
        self.assertEqual(c.boundjid.bare, C.jid('cloud2'))


# ---------------------------------------------------------------------------

class SASL(Base):
    def check_mech(self, mech):
        c = self.login('cloud1', mech=mech)
        self.assertEqual(c['feature_mechanisms'].mech.name, mech)
        self.assertEqual(c.boundjid.bare, C.jid('cloud1'))
        r = run(c.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                     "<ping xmlns='urn:xmpp:ping'/></iq>" % C.domain))
        self.assertEqual(r.get('type'), 'result')

    def test_slixmpp_scram_sha1(self):
        self.check_mech('SCRAM-SHA-1')

    def test_slixmpp_scram_sha256(self):
        self.check_mech('SCRAM-SHA-256')

    def test_slixmpp_plain(self):
        self.check_mech('PLAIN')

    def plus(self, hash_name):
        r = self.raw()
        self.assertIn('SCRAM-SHA-256-PLUS', r.mechanisms(r.secure()))
        res = r.auth_scram('cloud3', C.password('cloud3'), hash_name,
                           cb_type='tls-server-end-point',
                           cb_data=r.server_end_point())
        self.assertEqual(res, 'success')
        r.reset_parser()
        self.assertTrue(r.bind().startswith(C.jid('cloud3') + '/'))
        self.assertEqual(r.ping().get('type'), 'result')

    def external_client(self, account):
        """A raw client presenting icroot dev's client certificate for
        ACCOUNT (DIR/<account>.pem), up to the SASL features."""
        r = self.raw()
        ctx = r.tls_context()
        ctx.load_cert_chain(os.path.join(C.dir, account + '.pem'),
                            os.path.join(C.dir, account + '.key'))
        r.open_stream()
        r.starttls(ctx=ctx)
        return r, r.mechanisms(r.open_stream())

    def test_external_with_client_certificate(self):
        r, mechs = self.external_client('cloud2')
        self.assertIn('EXTERNAL', mechs)
        r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
               "mechanism='EXTERNAL'>=</auth>")
        kind, cond, _ = r.sasl_result()
        self.assertEqual((kind, cond), ('success', None))
        r.reset_parser()
        self.assertTrue(r.bind().startswith(C.jid('cloud2') + '/'))
        self.assertEqual(r.ping().get('type'), 'result')

    def test_external_authzid_of_another_account_refused(self):
        r, mechs = self.external_client('cloud2')
        self.assertIn('EXTERNAL', mechs)
        r.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
               "mechanism='EXTERNAL'>%s</auth>" % H.b64(C.jid('cloud3')))
        kind, cond, _ = r.sasl_result()
        self.assertEqual(kind, 'failure')
        self.assertEqual(cond, 'invalid-authzid')

    def test_external_not_offered_without_certificate(self):
        r = self.raw()
        self.assertNotIn('EXTERNAL', r.mechanisms(r.secure()))

    def test_scram_sha256_plus_tls_server_end_point(self):
        self.plus('sha256')

    def test_scram_sha1_plus_tls_server_end_point(self):
        self.plus('sha1')

    def test_plus_with_wrong_binding_data_refused(self):
        r = self.raw()
        r.secure()
        res = r.auth_scram('cloud3', C.password('cloud3'), 'sha256',
                           cb_type='tls-server-end-point', cb_data=b'\0' * 32)
        self.assertEqual(res, 'not-authorized')

    def test_plus_tls_unique_refused_then_fallback(self):
        # slixmpp's choice; TLS 1.3 has no tls-unique (RFC 9266)
        r = self.raw()
        r.secure()
        res = r.auth_scram('cloud3', C.password('cloud3'), 'sha256',
                           cb_type='tls-unique', cb_data=b'\0' * 12)
        self.assertEqual(res, 'not-authorized')
        self.assertEqual(r.auth_scram('cloud3', C.password('cloud3')),
                         'success')

    def test_y_flag_refused_when_plus_offered(self):
        # RFC 5802 section 6: 'y' while the server offered -PLUS means
        # someone stripped the -PLUS mechanisms: the server must fail.
        r = self.raw()
        r.secure()
        self.assertEqual(r.auth_scram('cloud3', C.password('cloud3'),
                                      'sha256', flag='y'), 'not-authorized')

    def test_wrong_password_slixmpp(self):
        with self.assertRaises(H.LoginFailed) as cm:
            self.login('cloud1', password='not-the-password', timeout=10)
        self.assertEqual(cm.exception.condition, 'not-authorized')

    def test_wrong_password_raw(self):
        r = self.raw()
        r.secure()
        self.assertEqual(r.auth_scram('cloud1', 'not-the-password'),
                         'not-authorized')
        self.assertEqual(r.auth_plain('cloud1', 'not-the-password'),
                         'not-authorized')
        # the stream goes on: the right password still works
        self.assertEqual(r.auth_plain('cloud1', C.password('cloud1')),
                         'success')


# ---------------------------------------------------------------------------

class Bind(Base):
    def test_server_generated_resource(self):
        a = self.login('cloud4')
        b = self.login('cloud4')
        self.assertEqual(a.boundjid.bare, C.jid('cloud4'))
        self.assertTrue(a.boundjid.resource)
        self.assertTrue(b.boundjid.resource)
        self.assertNotEqual(a.boundjid.resource, b.boundjid.resource)

    def test_requested_resource(self):
        c = self.login('cloud4', resource='interop-laptop')
        self.assertEqual(c.boundjid.full, C.jid('cloud4') + '/interop-laptop')

    def test_same_full_jid_twice_first_gets_conflict(self):
        first = self.login('cloud5', resource='dup')
        gone = first.disconnected
        second = self.login('cloud5', resource='dup')
        self.assertEqual(second.boundjid.full, C.jid('cloud5') + '/dup')
        err = run(first.expect(lambda x: x.tag == q(H.NS_STREAM, 'error'),
                               5, what='stream error'))
        self.assertEqual(H.stream_error_of(err)[0], 'conflict')
        run(asyncio.wait_for(asyncio.shield(gone), 5))  # first stream ends
        r = run(second.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                          "<ping xmlns='urn:xmpp:ping'/></iq>" % C.domain))
        self.assertEqual(r.get('type'), 'result')

    def test_same_full_jid_twice_raw(self):
        a = self.raw()
        self.assertEqual(a.login('cloud5', resource='dup2'),
                         C.jid('cloud5') + '/dup2')
        b = self.raw()
        self.assertEqual(b.login('cloud5', resource='dup2'),
                         C.jid('cloud5') + '/dup2')
        self.assertEqual(a.expect_stream_error()[0], 'conflict')
        self.assertTrue(a.wait_closed(5))
        self.assertEqual(b.ping().get('type'), 'result')


# ---------------------------------------------------------------------------

class Service(Base):
    @classmethod
    def setUpClass(cls):
        cls.user = run(H.connect(C, 'cloud1', resource='svc'), 30)
        cls.admin = run(H.connect(C, 'admin', resource='svc'), 30)
        H._CLIENTS.remove(cls.user)  # kept for the class, not per test
        H._CLIENTS.remove(cls.admin)

    @classmethod
    def tearDownClass(cls):
        run(H.disconnect(cls.user))
        run(H.disconnect(cls.admin))

    def iq(self, xml, who=None):
        return run((who or self.user).iq(xml))

    def test_ping_server(self):
        r = self.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                    "<ping xmlns='urn:xmpp:ping'/></iq>" % C.domain)
        self.assertEqual(r.get('type'), 'result')
        self.assertEqual(r.get('from'), C.domain)
        self.assertEqual(r.get('to'), self.user.boundjid.full)
        self.assertEqual(len(r), 0)

    def test_slixmpp_ping_plugin(self):
        rtt = run(self.user['xep_0199'].ping(jid=C.domain, timeout=5))
        self.assertGreaterEqual(rtt, 0)

    def disco_info(self, jid):
        r = self.iq("<iq xmlns='jabber:client' type='get' to='%s'><query "
                    "xmlns='%s'/></iq>" % (jid, H.NS_DISCO_INFO))
        self.assertEqual(r.get('type'), 'result')
        query = r.find(q(H.NS_DISCO_INFO, 'query'))
        ids = [(i.get('category'), i.get('type'))
               for i in query.findall(q(H.NS_DISCO_INFO, 'identity'))]
        feats = {f.get('var') for f in
                 query.findall(q(H.NS_DISCO_INFO, 'feature'))}
        return ids, feats

    def test_disco_info_server(self):
        ids, feats = self.disco_info(C.domain)
        self.assertEqual(ids, [('server', 'im')])
        self.assertTrue({H.NS_DISCO_INFO, H.NS_DISCO_ITEMS, H.NS_PING}
                        <= feats, feats)

    def test_disco_info_service(self):
        ids, feats = self.disco_info(C.service_jid)
        self.assertEqual(ids, [('directory', 'cloud')])
        self.assertTrue({H.NS_CMD, H.NS_DISCO_INFO, H.NS_DISCO_ITEMS,
                         H.NS_IODATA} <= feats, feats)

    def test_disco_info_service_slixmpp_plugin(self):
        info = run(self.user['xep_0030'].get_info(jid=C.service_jid,
                                                  timeout=5))
        self.assertIn(H.NS_CMD, info['disco_info']['features'])
        self.assertEqual({(i[0], i[1]) for i in
                          info['disco_info']['identities']},
                         {('directory', 'cloud')})

    def test_disco_items_on_server_lists_service(self):
        r = self.iq("<iq xmlns='jabber:client' type='get' to='%s'><query "
                    "xmlns='%s'/></iq>" % (C.domain, H.NS_DISCO_ITEMS))
        jids = [i.get('jid') for i in r.find(q(H.NS_DISCO_ITEMS, 'query'))]
        self.assertIn(C.service_jid, jids)

    def command_nodes(self, who):
        r = self.iq("<iq xmlns='jabber:client' type='get' to='%s'><query "
                    "xmlns='%s' node='%s'/></iq>" %
                    (C.service_jid, H.NS_DISCO_ITEMS, H.NS_CMD), who)
        self.assertEqual(r.get('type'), 'result')
        query = r.find(q(H.NS_DISCO_ITEMS, 'query'))
        self.assertEqual(query.get('node'), H.NS_CMD)
        items = query.findall(q(H.NS_DISCO_ITEMS, 'item'))
        for it in items:
            self.assertEqual(it.get('jid'), C.service_jid)
            self.assertTrue(it.get('name'))
        nodes = [it.get('node') for it in items]
        self.assertEqual(len(nodes), len(set(nodes)), nodes)
        return set(nodes)

    def test_command_list_user(self):
        self.assertEqual(self.command_nodes(self.user), H.USER_COMMANDS)

    def test_command_list_admin(self):
        self.assertEqual(self.command_nodes(self.admin),
                         H.USER_COMMANDS | H.ADMIN_COMMANDS)

    def test_seed_query(self):
        r = self.iq(H.seed_query(C))
        self.assertEqual(r.get('from'), C.service_jid)
        cmd = H.command_of(r)
        self.assertEqual(cmd.get('node'), 'constraint_catalog_resources')
        self.assertEqual(cmd.get('status'), 'completed')
        self.assertTrue(cmd.get('sessionid'))
        self.assertEqual(H.matching_clouds(r), ['cloud2', 'cloud5'])

    def test_seed_query_verbatim_raw(self):
        # The paper's whole <iq>, byte for byte but for its to='...'
        r = self.raw()
        me = r.login('cloud1', resource='paper')
        wire = H.SEED_IQ.replace("to='service.intercloudexchg.com'",
                                 "to='%s'" % C.service_jid)
        self.assertIn(H.SEED_IODATA, wire)
        ans = r.iq(wire, 'cloud1_id1')
        self.assertEqual(ans.get('type'), 'result', ET.tostring(ans))
        self.assertEqual(ans.get('to'), me)  # not the paper's from=
        self.assertEqual(ans.get('from'), C.service_jid)
        self.assertEqual(H.matching_clouds(ans), ['cloud2', 'cloud5'])
        mc = H.command_of(ans).find(q(H.NS_IODATA, 'iodata')).find(
            q(H.NS_IODATA, 'out')).find(q(H.NS_RES, 'matchingClouds'))
        self.assertEqual(mc.tag, '{http://www.csp/resOntology}matchingClouds')

    def test_seed_query_pairs_form(self):
        r = self.iq(H.command_xml(
            C.service_jid, 'constraint_catalog_resources',
            H.constraints_xml(H.SEED_PAIRS)))
        self.assertEqual(H.matching_clouds(r), ['cloud2', 'cloud5'])

    def test_unknown_attribute(self):
        r = self.iq(H.command_xml(
            C.service_jid, 'constraint_catalog_resources',
            H.constraints_xml(H.SEED_PAIRS[:2] + [('fooBar', '1')])))
        self.assertEqual(r.get('type'), 'error')
        self.assertEqual(H.stanza_error_of(r), (
            'modify', 'bad-request', "unknown attribute 'fooBar'"))

    def test_bad_value(self):
        r = self.iq(H.command_xml(
            C.service_jid, 'constraint_catalog_resources',
            H.constraints_xml([('replicationFactor', 'abc')])))
        self.assertEqual(H.stanza_error_of(r), (
            'modify', 'bad-request',
            "attribute 'replicationFactor': 'abc' is not a valid integer"))


# ---------------------------------------------------------------------------

class Throttle(unittest.TestCase):
    """Failed-login throttling (10 per source address per minute), on a
    cluster of its own since it locks 127.0.0.1 out for a minute."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = H.Cluster().start()

    @classmethod
    def tearDownClass(cls):
        H.close_all_clients()
        rc, gone = cls.cluster.stop()
        assert rc == 0 and gone, (rc, gone)

    # Regression: refusals of a client's first SCRAM message (the gs2 flag
    # 'y' after -PLUS was offered) once counted against the address like
    # wrong passwords, so slixmpp's default fallback (two such refusals
    # per good login) got the 5th good login within a minute throttled.
    # Only a checked proof or password counts.
    def test_a_default_slixmpp_logins_are_not_throttled(self):
        for i in range(6):
            try:
                c = run(H.connect(self.cluster, 'cloud1', mech=None,
                                  channel_binding=True, timeout=15), 30)
            except H.LoginFailed as e:
                self.fail('good login %d refused: %s' % (i + 1, e.condition))
            self.assertEqual(c.boundjid.bare, self.cluster.jid('cloud1'),
                             'login %d' % (i + 1))
            run(H.disconnect(c))

    def test_b_wrong_passwords_are_throttled(self):
        for i in range(10):
            r = H.RawClient(self.cluster)
            r.secure()
            self.assertIn(r.auth_scram('cloud2', 'wrong'),
                          ('not-authorized', 'temporary-auth-failure'))
            r.close()
        r = H.RawClient(self.cluster)
        r.secure()
        self.assertEqual(
            r.auth_scram('cloud2', self.cluster.password('cloud2')),
            'temporary-auth-failure')
        r.close()


if __name__ == '__main__':
    H.main()
