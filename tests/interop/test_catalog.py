#!/usr/bin/python3
"""The catalog service's XEP-0050 commands (docs/protocol.md) driven with
slixmpp: publish (pairs and Turtle), refused publications that change
nothing, admin publication for another cloud, withdraw, describe,
accounts, cancel.

    /usr/bin/python3 test_catalog.py BUILD/icroot [unittest options]
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import run  # noqa: E402

C = None
SESS = {}  # user -> logged-in client, kept for the module


def setUpModule():
    global C
    C = H.start_cluster()


def tearDownModule():
    H.stop_cluster()


def session(user):
    c = SESS.get(user)
    if c is None or c.transport is None:
        c = SESS[user] = run(H.connect(C, user, resource='catalog'), 30)
    return c


def cmd(user, node, payload='', action='execute', sessionid=None):
    return run(session(user).iq(
        H.command_xml(C.service_jid, node, payload, action, sessionid),
        timeout=10), 20)


def seed(user='cloud1'):
    return H.matching_clouds(cmd(user, 'constraint_catalog_resources',
                                 H.SEED_IODATA))


def cloud_in(name):
    return H.iodata_in("<cloud xmlns='%s'>%s</cloud>" % (H.NS_RES, name))


def describe(name, user='cloud1'):
    r = cmd(user, 'describe_cloud', cloud_in(name))
    assert r.get('type') == 'result', H.ET.tostring(r)
    io = H.command_of(r).find(H.q(H.NS_IODATA, 'iodata'))
    ttl = io.find(H.q(H.NS_IODATA, 'out')).find(H.q(H.NS_RES, 'turtle'))
    assert ttl.get('cloud') == name, H.ET.tostring(r)
    return ttl.text or ''


def account_in(user, password=None, admin=None):
    parts = ['<user>%s</user>' % user]
    if password is not None:
        parts.append('<password>%s</password>' % H.xml_escape(password))
    if admin is not None:
        parts.append('<admin>%s</admin>' % admin)
    return H.iodata_in("<account xmlns='%s'>%s</account>" %
                       (H.NS_RES, ''.join(parts)))


def can_login(user, password):
    try:
        c = run(H.connect(C, user, password=password, presence=False,
                          timeout=10), 20)
    except H.LoginFailed as e:
        return e.condition or str(e)
    ok = c.boundjid.bare == C.jid(user)
    run(H.disconnect(c))
    return ok


MATCHING_PAIRS = [  # docs/protocol.md's example: meets the seed query
    ('availabilityQuantity', '99.9999'), ('replicationFactor', '6'),
    ('tierCountries', 'JAPAN, SG'), ('StorageReplicationMethod', 'AMQP'),
    ('InterCloudStorageAccess', 'NFS')]

TTL_PREFIXES = ('@prefix ic: <http://www.csp/resOntology#> .\n'
                '@prefix icc: <http://www.csp/resOntology/country/> .\n')
MATCHING_TTL = TTL_PREFIXES + (
    '<> ic:availability 99.99991 ; ic:replicationFactor 8 ;\n'
    '   ic:country icc:JP ; ic:storageReplicationMethod "AMQP" ;\n'
    '   ic:storageAccessProtocol "NFS", "S3" ;\n'
    '   ic:offers <#turtle-storage> .\n'
    '<#turtle-storage> ic:region "jp-turtle" .\n')


class Catalog(unittest.TestCase):
    """Steps in order on the shared catalog; each states the seed query's
    exact answer afterwards."""

    def assertError(self, r, etype, cond, text=None):
        self.assertEqual(r.get('type'), 'error', H.ET.tostring(r))
        t, c, txt = H.stanza_error_of(r)
        self.assertEqual((t, c), (etype, cond), txt)
        if text is not None:
            self.assertEqual(txt, text)
        return txt

    def assertDone(self, r, note):
        self.assertEqual(r.get('type'), 'result', H.ET.tostring(r))
        self.assertEqual(H.command_of(r).get('status'), 'completed')
        self.assertEqual(H.note_of(r), ('info', note))

    def test_01_baseline(self):
        self.assertEqual(seed(), ['cloud2', 'cloud5'])

    def test_02_publish_pairs(self):
        r = cmd('cloud3', 'publish_resources', H.resources_xml(MATCHING_PAIRS))
        self.assertDone(r, 'published')
        self.assertEqual(H.command_of(r).get('node'), 'publish_resources')
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])
        ttl = describe('cloud3')
        self.assertIn('xmpp:cloud3@%s' % C.domain, ttl)
        self.assertIn('99.9999', ttl)
        self.assertIn('ic:replicationFactor 6', ttl)
        self.assertIn('"AMQP"', ttl)
        self.assertIn('"NFS"', ttl)
        self.assertIn('icc:JP', ttl)
        self.assertIn('icc:SG', ttl)
        self.assertIn('ic:jid "cloud3@%s"' % C.domain, ttl)
        # the description was replaced: the sample's label is gone
        self.assertNotIn('Cloud 3 (private', ttl)

    def test_03_publish_turtle(self):
        low = TTL_PREFIXES + '<> ic:availability 99.9 ; ' \
            'ic:replicationFactor 9 .\n'
        self.assertDone(cmd('cloud3', 'publish_resources',
                            H.turtle_xml(low)), 'published')
        self.assertEqual(seed(), ['cloud2', 'cloud5'])
        self.assertDone(cmd('cloud3', 'publish_resources',
                            H.turtle_xml(MATCHING_TTL)), 'published')
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])
        ttl = describe('cloud3')
        for s in ('99.99991', 'ic:replicationFactor 8', '"jp-turtle"',
                  'xmpp:cloud3@%s#turtle-storage' % C.domain):
            self.assertIn(s, ttl)
        self.assertNotIn('icc:SG', ttl)  # replaced, not merged

    def test_04_bad_turtle_changes_nothing(self):
        before = describe('cloud3')
        bad = TTL_PREFIXES + '<> ic:availability 12.5 ;\n  ic:region .\n'
        txt = self.assertError(cmd('cloud3', 'publish_resources',
                                   H.turtle_xml(bad)),
                               'modify', 'bad-request')
        # line:column of the fault: line 4 (after the two @prefix lines)
        self.assertRegex(txt, r'^turtle:4:\d+: ')
        self.assertEqual(describe('cloud3'), before)
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])

    def test_05_statement_about_another_cloud_changes_nothing(self):
        before3, before4 = describe('cloud3'), describe('cloud4')
        other = TTL_PREFIXES + (
            '<> ic:availability 10 .\n'
            '<xmpp:cloud4@%s> ic:availability 99.99999 .\n' % C.domain)
        txt = self.assertError(cmd('cloud3', 'publish_resources',
                                   H.turtle_xml(other)),
                               'modify', 'bad-request')
        self.assertIn('xmpp:cloud4@%s' % C.domain, txt)
        self.assertEqual(describe('cloud3'), before3)
        self.assertEqual(describe('cloud4'), before4)
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])

    def test_06_unknown_attribute_changes_nothing(self):
        before = describe('cloud3')
        self.assertError(cmd('cloud3', 'publish_resources', H.resources_xml(
            [('availabilityQuantity', '1'), ('fooBar', 'x')])),
            'modify', 'bad-request', "unknown attribute 'fooBar'")
        self.assertError(cmd('cloud3', 'publish_resources', H.resources_xml(
            [('replicationFactor', 'many')])), 'modify', 'bad-request',
            "attribute 'replicationFactor': 'many' is not a valid integer")
        self.assertEqual(describe('cloud3'), before)
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])

    def test_07_publish_for_another_cloud_forbidden(self):
        before = describe('cloud4')
        self.assertError(cmd('cloud3', 'publish_resources', H.resources_xml(
            MATCHING_PAIRS, cloud='cloud4')), 'auth', 'forbidden')
        self.assertError(cmd('cloud3', 'publish_resources', H.turtle_xml(
            MATCHING_TTL, cloud='cloud4')), 'auth', 'forbidden')
        self.assertEqual(describe('cloud4'), before)
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud5'])

    def test_08_admin_publishes_for_another_cloud(self):
        self.assertDone(cmd('admin', 'publish_resources', H.resources_xml(
            MATCHING_PAIRS, cloud='cloud4')), 'published')
        self.assertEqual(seed(), ['cloud2', 'cloud3', 'cloud4', 'cloud5'])
        ttl = describe('cloud4')
        self.assertIn('ic:jid "cloud4@%s"' % C.domain, ttl)
        self.assertIn('icc:SG', ttl)
        self.assertNotIn('admin@', ttl)

    def test_09_withdraw(self):
        self.assertDone(cmd('cloud2', 'withdraw_resources'), 'withdrawn')
        self.assertEqual(seed(), ['cloud3', 'cloud4', 'cloud5'])
        self.assertNotIn('ic:availability', describe('cloud2'))
        # cloud4 withdraws itself; cloud3 goes back to missing the query
        self.assertDone(cmd('cloud4', 'withdraw_resources'), 'withdrawn')
        self.assertDone(cmd('cloud3', 'publish_resources', H.resources_xml(
            [('availabilityQuantity', '99.9995'), ('replicationFactor', '3'),
             ('tierCountries', 'JAPAN'), ('StorageReplicationMethod', 'AMQP'),
             ('InterCloudStorageAccess', 'NFS')])), 'published')
        self.assertEqual(seed(), ['cloud5'])

    # Regression: withdraw_resources once read the cloud's name from an
    # attribute instead of the <cloud> element's text.
    def test_10_admin_withdraws_another_cloud(self):
        try:
            self.assertDone(cmd('admin', 'withdraw_resources',
                                cloud_in('cloud5')), 'withdrawn')
            self.assertEqual(seed(), [])
        finally:
            cmd('cloud5', 'withdraw_resources')
            self.assertEqual(seed(), [])

    # A non-admin naming another cloud is refused with forbidden.
    def test_11_non_admin_withdraw_for_another_cloud_forbidden(self):
        before = describe('cloud1')
        self.assertIn('ic:availability', before)
        try:
            self.assertError(cmd('cloud1', 'withdraw_resources',
                                 cloud_in('cloud3')), 'auth', 'forbidden')
            self.assertEqual(describe('cloud1'), before)
        finally:
            self.assertEqual(seed(), [])

    def test_12_describe_other_cloud(self):
        # cloud8: a sample cloud without an account (misses all five)
        ttl = describe('cloud8', user='cloud3')
        self.assertIn('<xmpp:cloud8@%s>' % C.domain, ttl)
        self.assertIn('ic:availability 99.9 ', ttl)
        self.assertIn('ic:replicationFactor 2 ', ttl)
        self.assertIn('icc:FR', ttl)
        self.assertIn('"Kafka"', ttl)
        self.assertIn('"SMB"', ttl)
        self.assertIn('ic:jid "cloud8@%s"' % C.domain, ttl)

    def test_13_describe_default_is_requester(self):
        r = cmd('cloud1', 'describe_cloud')
        io = H.command_of(r).find(H.q(H.NS_IODATA, 'iodata'))
        self.assertEqual(io.get('type'), 'output')
        ttl = io.find(H.q(H.NS_IODATA, 'out')).find(H.q(H.NS_RES, 'turtle'))
        self.assertEqual(ttl.get('cloud'), 'cloud1')


class Accounts(unittest.TestCase):
    def test_add_account_then_login(self):
        r = cmd('admin', 'add_account', account_in('cloud6', 'first-pass'))
        self.assertEqual(r.get('type'), 'result', H.ET.tostring(r))
        self.assertEqual(H.command_of(r).get('status'), 'completed')
        self.assertIs(can_login('cloud6', 'first-pass'), True)
        # stored as SCRAM-SHA-1 keys too
        c = run(H.connect(C, 'cloud6', password='first-pass',
                          mech='SCRAM-SHA-1', presence=False), 20)
        self.assertEqual(c['feature_mechanisms'].mech.name, 'SCRAM-SHA-1')
        run(H.disconnect(c))

    def test_change_own_password(self):
        r = cmd('admin', 'add_account', account_in('cloud7', 'old-pass'))
        self.assertEqual(r.get('type'), 'result', H.ET.tostring(r))
        c7 = run(H.connect(C, 'cloud7', password='old-pass'), 20)
        r = run(c7.iq(H.command_xml(C.service_jid, 'change_password',
                                    account_in('cloud7', 'new-pass'))))
        self.assertEqual(r.get('type'), 'result', H.ET.tostring(r))
        run(H.disconnect(c7))
        self.assertIs(can_login('cloud7', 'new-pass'), True)
        self.assertEqual(can_login('cloud7', 'old-pass'), 'not-authorized')

    def test_change_another_users_password_forbidden(self):
        r = cmd('cloud2', 'change_password', account_in('cloud1', 'x'))
        self.assertEqual(H.stanza_error_of(r)[:2], ('auth', 'forbidden'))
        self.assertIs(can_login('cloud1', C.password('cloud1')), True)

    def test_non_admin_add_account(self):
        # admin-only commands are hidden from others: item-not-found
        r = cmd('cloud2', 'add_account', account_in('mallory', 'pw'))
        self.assertEqual(r.get('type'), 'error')
        self.assertEqual(H.stanza_error_of(r)[:2],
                         ('cancel', 'item-not-found'))
        self.assertEqual(can_login('mallory', 'pw'), 'not-authorized')


class Sessions(unittest.TestCase):
    def test_cancel(self):
        r = cmd('cloud2', 'publish_resources', H.resources_xml(
            MATCHING_PAIRS), action='cancel', sessionid='s-42')
        self.assertEqual(r.get('type'), 'result')
        c = H.command_of(r)
        self.assertEqual((c.get('status'), c.get('node'), c.get('sessionid')),
                         ('canceled', 'publish_resources', 's-42'))
        self.assertEqual(len(c), 0)

    def test_new_session_ids_differ(self):
        a = H.command_of(cmd('cloud2', 'constraint_catalog_resources',
                             H.SEED_IODATA)).get('sessionid')
        b = H.command_of(cmd('cloud2', 'constraint_catalog_resources',
                             H.SEED_IODATA)).get('sessionid')
        self.assertTrue(a and b and a != b, (a, b))

    def test_unknown_command(self):
        r = cmd('cloud2', 'no_such_command')
        self.assertEqual(H.stanza_error_of(r)[:2],
                         ('cancel', 'item-not-found'))

    def test_unknown_action(self):
        r = cmd('cloud2', 'describe_cloud', action='prev')
        self.assertEqual(H.stanza_error_of(r)[:2], ('modify', 'bad-request'))


def load_tests(loader, tests, pattern):
    # Catalog's steps first (they assert exact query answers), then the
    # rest, which does not touch the catalog.
    suite = unittest.TestSuite()
    for cls in (Catalog, Accounts, Sessions):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    H.main()
