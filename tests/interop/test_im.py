#!/usr/bin/python3
"""Instant messaging interop (RFC 6121) with slixmpp: rosters,
subscriptions, presence, messages, and the server's 'from' stamping.

    /usr/bin/python3 test_im.py BUILD/icroot [unittest options]
"""
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import q, run, is_presence, is_message, roster_push_item  # noqa

C = None


def setUpModule():
    global C
    C = H.start_cluster()


def tearDownModule():
    H.stop_cluster()


ROSTER_GET = ("<iq xmlns='jabber:client' type='get'>"
              "<query xmlns='jabber:iq:roster'/></iq>")


def roster(c):
    r = run(c.iq(ROSTER_GET))
    assert r.get('type') == 'result', H.ET.tostring(r)
    return H.roster_items(r)


def expect(c, pred, start=0, what='stanza', timeout=5.0):
    return run(c.expect(pred, timeout, start, what), timeout + 5)


def expect_none(c, pred, start=0, what='stanza', wait=0.5):
    run(c.expect_none(pred, wait, start, what), wait + 5)


def last_push(c, jid, start=0):
    """The last roster push for JID received from START on."""
    items = [roster_push_item(x, jid) for x in c.inbox[start:]]
    items = [i for i in items if i is not None]
    return items[-1] if items else None


def status_of(x):
    s = x.find(q(H.NS_CLIENT, 'status'))
    return s.text if s is not None else None


def show_of(x):
    s = x.find(q(H.NS_CLIENT, 'show'))
    return s.text if s is not None else None


def body_of(x):
    b = x.find(q(H.NS_CLIENT, 'body'))
    return b.text if b is not None else None


class Subscriptions(unittest.TestCase):
    """cloud1 and cloud2, both online, from no relation to 'both' and
    back (RFC 6121 sections 2 and 3). The steps run in order and share
    the two sessions."""

    @classmethod
    def setUpClass(cls):
        cls.j1, cls.j2 = C.jid('cloud1'), C.jid('cloud2')
        cls.c1 = run(H.connect(C, 'cloud1', resource='im'), 30)
        cls.c2 = run(H.connect(C, 'cloud2', resource='im'), 30)

    @classmethod
    def tearDownClass(cls):
        H.close_all_clients()

    def test_01_rosters_empty(self):
        self.assertEqual(roster(self.c1), {})
        self.assertEqual(roster(self.c2), {})

    def test_02_subscribe(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c1.send_presence(pto=self.j2, ptype='subscribe')
        item = expect(c1, lambda x: roster_push_item(x, self.j2) is not None,
                      m1, 'roster push')
        item = roster_push_item(item, self.j2)
        self.assertEqual(item.get('subscription'), 'none')
        self.assertEqual(item.get('ask'), 'subscribe')
        p = expect(c2, lambda x: is_presence(x, 'subscribe'), m2,
                   'subscribe')
        self.assertEqual(p.get('from'), self.j1)  # the bare JID
        # the contact's roster gets no item for a mere request
        expect_none(c2, lambda x: roster_push_item(x) is not None, m2,
                    'roster push')
        self.assertEqual(roster(c2), {})
        self.assertEqual(roster(c1), {self.j2: {
            'subscription': 'none', 'ask': 'subscribe', 'name': None,
            'groups': []}})

    def test_03_approve(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c2.send_presence(pto=self.j1, ptype='subscribed')
        push2 = roster_push_item(expect(
            c2, lambda x: roster_push_item(x, self.j1) is not None, m2,
            'roster push'), self.j1)
        self.assertEqual(push2.get('subscription'), 'from')
        self.assertIsNone(push2.get('ask'))
        push1 = roster_push_item(expect(
            c1, lambda x: roster_push_item(x, self.j2) is not None, m1,
            'roster push'), self.j2)
        self.assertEqual(push1.get('subscription'), 'to')
        self.assertIsNone(push1.get('ask'))
        p = expect(c1, lambda x: is_presence(x, 'subscribed'), m1,
                   'subscribed')
        self.assertEqual(p.get('from'), self.j2)
        expect(c1, lambda x: is_presence(x, '', self.c2.boundjid.full), m1,
               "cloud2's available presence")

    def test_04_mutual(self):
        c1, c2 = self.c1, self.c2
        m1, m2 = c1.mark(), c2.mark()
        c2.send_presence(pto=self.j1, ptype='subscribe')
        p = expect(c1, lambda x: is_presence(x, 'subscribe'), m1,
                   'subscribe')
        self.assertEqual(p.get('from'), self.j2)
        push2 = roster_push_item(expect(
            c2, lambda x: roster_push_item(x, self.j1) is not None, m2,
            'roster push'), self.j1)
        self.assertEqual((push2.get('subscription'), push2.get('ask')),
                         ('from', 'subscribe'))
        m1, m2 = c1.mark(), c2.mark()
        c1.send_presence(pto=self.j2, ptype='subscribed')
        expect(c1, lambda x: (roster_push_item(x, self.j2) is not None and
                              roster_push_item(x, self.j2).get(
                                  'subscription') == 'both'),
               m1, "push 'both'")
        expect(c2, lambda x: (roster_push_item(x, self.j1) is not None and
                              roster_push_item(x, self.j1).get(
                                  'subscription') == 'both'),
               m2, "push 'both'")
        expect(c2, lambda x: is_presence(x, 'subscribed', self.j1), m2,
               'subscribed')
        expect(c2, lambda x: is_presence(x, '', self.c1.boundjid.full), m2,
               "cloud1's available presence")
        both = {'subscription': 'both', 'ask': None, 'name': None,
                'groups': []}
        self.assertEqual(roster(c1), {self.j2: both})
        self.assertEqual(roster(c2), {self.j1: both})

    def test_05_presence_broadcast(self):
        m1 = self.c1.mark()
        self.c2.send_presence(pstatus='crunching numbers', pshow='dnd')
        p = expect(self.c1, lambda x: (is_presence(
            x, '', self.c2.boundjid.full) and
            status_of(x) == 'crunching numbers'), m1, 'status change')
        self.assertEqual(show_of(p), 'dnd')

    def test_06_unavailable_on_disconnect(self):
        full2 = self.c2.boundjid.full
        m1 = self.c1.mark()
        run(H.disconnect(self.c2))
        expect(self.c1, lambda x: is_presence(x, 'unavailable', full2), m1,
               'unavailable')

    def test_07_roster_set_name_and_groups(self):
        c1 = self.c1
        m1 = c1.mark()
        r = run(c1.iq(
            "<iq xmlns='jabber:client' type='set'><query xmlns='%s'>"
            "<item jid='%s' name='Cloud Two'><group>Partners</group>"
            "<group>Storage</group></item></query></iq>" %
            (H.NS_ROSTER, self.j2)))
        self.assertEqual(r.get('type'), 'result')
        push = roster_push_item(expect(
            c1, lambda x: roster_push_item(x, self.j2) is not None, m1,
            'roster push'), self.j2)
        self.assertEqual(push.get('name'), 'Cloud Two')
        self.assertEqual(push.get('subscription'), 'both')
        self.assertEqual(sorted(g.text for g in
                                push.findall(q(H.NS_ROSTER, 'group'))),
                         ['Partners', 'Storage'])
        self.assertEqual(roster(c1), {self.j2: {
            'subscription': 'both', 'ask': None, 'name': 'Cloud Two',
            'groups': ['Partners', 'Storage']}})

    def test_08_roster_remove(self):
        c1 = self.c1
        c2 = run(H.connect(C, 'cloud2', resource='back'), 30)
        expect(c1, lambda x: is_presence(x, '', c2.boundjid.full), 0,
               "cloud2's presence")
        m1, m2 = c1.mark(), c2.mark()
        r = run(c1.iq(
            "<iq xmlns='jabber:client' type='set'><query xmlns='%s'>"
            "<item jid='%s' subscription='remove'/></query></iq>" %
            (H.NS_ROSTER, self.j2)))
        self.assertEqual(r.get('type'), 'result')
        expect(c1, lambda x: (roster_push_item(x, self.j2) is not None and
                              roster_push_item(x, self.j2).get(
                                  'subscription') == 'remove'),
               m1, "push 'remove'")
        self.assertEqual(last_push(c1, self.j2, m1).get('subscription'),
                         'remove')
        self.assertEqual(roster(c1), {})
        # RFC 6121 2.5.2: the contact is told both ways, and stops
        # seeing the user
        expect(c2, lambda x: is_presence(x, 'unsubscribe', self.j1), m2,
               'unsubscribe')
        expect(c2, lambda x: is_presence(x, 'unsubscribed', self.j1), m2,
               'unsubscribed')
        expect(c2, lambda x: is_presence(x, 'unavailable',
                                         self.c1.boundjid.full), m2,
               "cloud1's unavailable presence")
        self.assertEqual(last_push(c2, self.j1, m2).get('subscription'),
                         'none')
        self.assertEqual(roster(c2)[self.j1]['subscription'], 'none')


class Pending(unittest.TestCase):
    def setUp(self):
        self.addCleanup(H.close_all_clients)

    def test_request_delivered_when_contact_comes_online(self):
        j3, j4 = C.jid('cloud3'), C.jid('cloud4')
        c3 = run(H.connect(C, 'cloud3', resource='pend'), 30)
        m3 = c3.mark()
        c3.send_presence(pto=j4, ptype='subscribe')
        push = roster_push_item(expect(
            c3, lambda x: roster_push_item(x, j4) is not None, m3,
            'roster push'), j4)
        self.assertEqual((push.get('subscription'), push.get('ask')),
                         ('none', 'subscribe'))
        c4 = run(H.connect(C, 'cloud4', resource='later', presence=False),
                 30)
        run(asyncio.sleep(0.3))
        self.assertFalse([x for x in c4.inbox
                          if is_presence(x, 'subscribe')],
                         'delivered before the initial presence')
        m4 = c4.mark()
        c4.send_presence()
        p = expect(c4, lambda x: is_presence(x, 'subscribe'), m4,
                   'pending subscribe')
        self.assertEqual(p.get('from'), j3)
        self.assertNotIn(j3, roster(c4))
        # and it can still be approved
        m3 = c3.mark()
        c4.send_presence(pto=j3, ptype='subscribed')
        expect(c3, lambda x: is_presence(x, 'subscribed', j4), m3,
               'subscribed')
        expect(c3, lambda x: is_presence(x, '', c4.boundjid.full), m3,
               "cloud4's presence")
        self.assertEqual(roster(c3)[j4]['subscription'], 'to')
        self.assertEqual(roster(c4)[j3]['subscription'], 'from')


class Messages(unittest.TestCase):
    """cloud3 (no roster relation with cloud5) writes to cloud5, which
    has two resources: 'lo' (priority 1) and 'hi' (priority 5)."""

    def setUp(self):
        self.addCleanup(H.close_all_clients)
        self.c3 = run(H.connect(C, 'cloud3', resource='desk'), 30)
        self.lo = run(H.connect(C, 'cloud5', resource='lo', priority=1), 30)
        self.hi = run(H.connect(C, 'cloud5', resource='hi', priority=5), 30)
        # RFC 6121 4.2.2: initial presence goes to all of the user's
        # available resources, the sender included: once these arrive,
        # the server has both sessions available with their priorities
        for c in (self.c3, self.lo, self.hi):
            expect(c, lambda x: is_presence(x, '', c.boundjid.full), 0,
                   'own presence')
        expect(self.lo, lambda x: is_presence(x, '', self.hi.boundjid.full),
               0, "hi's presence")

    def marks(self):
        return self.lo.mark(), self.hi.mark()

    def test_full_jid_delivery(self):
        ml, mh = self.marks()
        self.c3.send_message(mto=self.lo.boundjid.full, mbody='hello lo',
                             mtype='chat')
        m = expect(self.lo, lambda x: is_message(x, body='hello lo'), ml)
        self.assertEqual(m.get('from'), self.c3.boundjid.full)
        self.assertEqual(m.get('type'), 'chat')
        expect_none(self.hi, lambda x: is_message(x), mh, 'message')

    def test_bare_jid_to_highest_priority(self):
        ml, mh = self.marks()
        self.c3.send_message(mto=C.jid('cloud5'), mbody='to the bare JID',
                             mtype='chat')
        m = expect(self.hi, lambda x: is_message(x, body='to the bare JID'),
                   mh)
        self.assertEqual(m.get('from'), self.c3.boundjid.full)
        expect_none(self.lo, lambda x: is_message(x), ml, 'message')

    def test_missing_resource_goes_to_bare(self):
        # RFC 6121 8.5.3.2.1: chat to an unknown resource -> as to bare
        ml, mh = self.marks()
        self.c3.send_message(mto=C.jid('cloud5') + '/nosuch',
                             mbody='lost resource', mtype='chat')
        expect(self.hi, lambda x: is_message(x, body='lost resource'), mh)
        expect_none(self.lo, lambda x: is_message(x), ml, 'message')

    def test_offline_user_service_unavailable(self):
        m3 = self.c3.mark()
        msg = self.c3.make_message(mto=C.jid('admin'), mbody='anyone?',
                                   mtype='chat')
        msg['id'] = 'offline1'
        msg.send()
        err = expect(self.c3, lambda x: (x.tag == q(H.NS_CLIENT, 'message')
                                         and x.get('id') == 'offline1'), m3)
        self.assertEqual(err.get('type'), 'error')
        self.assertEqual(err.get('from'), C.jid('admin'))
        self.assertEqual(H.stanza_error_of(err)[:2],
                         ('cancel', 'service-unavailable'))

    def test_iq_to_missing_full_jid(self):
        r = run(self.c3.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                           "<ping xmlns='urn:xmpp:ping'/></iq>" %
                           (C.jid('cloud5') + '/nosuch')))
        self.assertEqual(r.get('type'), 'error')
        self.assertEqual(H.stanza_error_of(r)[:2],
                         ('cancel', 'service-unavailable'))

    def test_iq_to_full_jid_is_answered_by_that_client(self):
        r = run(self.c3.iq("<iq xmlns='jabber:client' type='get' to='%s'>"
                           "<ping xmlns='urn:xmpp:ping'/></iq>" %
                           self.lo.boundjid.full))
        self.assertEqual(r.get('type'), 'result')
        self.assertEqual(r.get('from'), self.lo.boundjid.full)

    def test_from_is_stamped(self):
        mh = self.hi.mark()
        msg = self.c3.make_message(mto=self.hi.boundjid.full,
                                   mbody='spoofed', mtype='chat',
                                   mfrom=C.jid('admin') + '/x')
        msg.send()
        m = expect(self.hi, lambda x: is_message(x, body='spoofed'), mh)
        self.assertEqual(m.get('from'), self.c3.boundjid.full)

    def test_directed_presence_to_non_contact(self):
        ml, mh = self.marks()
        self.c3.send_presence(pto=self.hi.boundjid.full,
                              pstatus='directed to hi')
        p = expect(self.hi, lambda x: (is_presence(
            x, '', self.c3.boundjid.full) and status_of(x) ==
            'directed to hi'), mh)
        self.assertEqual(p.get('to'), self.hi.boundjid.full)
        expect_none(self.lo, lambda x: is_presence(
            x, frm=self.c3.boundjid.full), ml, 'presence')
        # to the bare JID: every available resource
        ml, mh = self.marks()
        self.c3.send_presence(pto=C.jid('cloud5'), pstatus='to all')
        for c, m in ((self.lo, ml), (self.hi, mh)):
            expect(c, lambda x: (is_presence(x, '', self.c3.boundjid.full)
                                 and status_of(x) == 'to all'), m)

    def test_directed_presence_withdrawn_when_the_session_ends(self):
        # RFC 6121 4.6.3: an entity that got directed available presence
        # and is no subscriber gets unavailable when the sender goes.
        tmp = run(H.connect(C, 'cloud4', resource='directed1'), 30)
        mh = self.hi.mark()
        tmp.send_presence(pto=self.hi.boundjid.full, pstatus='hello hi')
        expect(self.hi, lambda x: is_presence(x, '', tmp.boundjid.full), mh)
        mh = self.hi.mark()
        full = tmp.boundjid.full
        run(H.disconnect(tmp))
        expect(self.hi, lambda x: is_presence(x, 'unavailable', full), mh,
               'unavailable after the disconnect')

    def test_directed_unavailable_is_remembered(self):
        # Directed unavailable ends the directed presence: the session's
        # end then sends nothing more to that recipient.
        tmp = run(H.connect(C, 'cloud4', resource='directed2'), 30)
        full = tmp.boundjid.full
        mh = self.hi.mark()
        tmp.send_presence(pto=self.hi.boundjid.full)
        expect(self.hi, lambda x: is_presence(x, '', full), mh)
        tmp.send_presence(pto=self.hi.boundjid.full, ptype='unavailable')
        expect(self.hi, lambda x: is_presence(x, 'unavailable', full), mh)
        mh = self.hi.mark()
        run(H.disconnect(tmp))
        expect_none(self.hi, lambda x: is_presence(x, frm=full), mh,
                    'presence', wait=1.0)


if __name__ == '__main__':
    H.main()
