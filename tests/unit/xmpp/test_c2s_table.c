/* The client stream's transition table (xmpp/c2s.c) against RFC 6120's
 * order: TLS, then SASL, then binding; nothing skips a step. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xmpp_int.h"

static const struct {
    enum ic_c2s_state from, to;
} expected[] = {
    {C2S_CONNECTED, C2S_FEATURES_TLS},
    {C2S_FEATURES_TLS, C2S_TLS_HANDSHAKE},
    {C2S_TLS_HANDSHAKE, C2S_TLS_STREAM},
    {C2S_TLS_STREAM, C2S_FEATURES_AUTH},
    {C2S_FEATURES_AUTH, C2S_SASL},
    {C2S_FEATURES_AUTH, C2S_AUTHED},
    {C2S_SASL, C2S_AUTHED},
    {C2S_SASL, C2S_FEATURES_AUTH},
    {C2S_AUTHED, C2S_FEATURES_BIND},
    {C2S_FEATURES_BIND, C2S_SESSION},
};

static bool is_expected(enum ic_c2s_state a, enum ic_c2s_state b)
{
    for (size_t i = 0; i < IC_ARRAY_LEN(expected); i++)
        if (expected[i].from == a && expected[i].to == b)
            return true;
    return false;
}

/* Exactly the expected moves, no others. */
static void test_table_is_exact(void **state)
{
    (void)state;
    for (int a = 0; a < C2S__COUNT; a++)
        for (int b = 0; b < C2S__COUNT; b++)
            assert_int_equal(
                ic_xmpp__c2s_allowed((enum ic_c2s_state)a,
                                     (enum ic_c2s_state)b),
                is_expected((enum ic_c2s_state)a, (enum ic_c2s_state)b));
}

/* Every path from CONNECTED to SESSION passes TLS, then SASL, then
 * binding: walk all paths (the graph is small) and check the order. */
static int walk(enum ic_c2s_state s, bool tls, bool auth, int depth)
{
    int paths = 0;

    assert_true(depth < 32);
    if (s == C2S_TLS_STREAM)
        tls = true;
    if (s == C2S_AUTHED) {
        assert_true(tls);
        auth = true;
    }
    if (s == C2S_SESSION) {
        assert_true(tls && auth);
        return 1;
    }
    for (int b = 0; b < C2S__COUNT; b++) {
        if (!ic_xmpp__c2s_allowed(s, (enum ic_c2s_state)b))
            continue;
        /* the SASL retry loop: count it once */
        if (s == C2S_SASL && b == C2S_FEATURES_AUTH)
            continue;
        paths += walk((enum ic_c2s_state)b, tls, auth, depth + 1);
    }
    return paths;
}

static void test_paths_keep_rfc_order(void **state)
{
    (void)state;
    assert_int_equal(walk(C2S_CONNECTED, false, false, 0), 2);
}

/* Nothing leaves SESSION through the table (closing is the connection's
 * one way out), and no state but SESSION lets stanzas through. */
static void test_session_is_terminal(void **state)
{
    (void)state;
    for (int b = 0; b < C2S__COUNT; b++)
        assert_false(ic_xmpp__c2s_allowed(C2S_SESSION, (enum ic_c2s_state)b));
    for (int a = 0; a < C2S__COUNT; a++)
        assert_string_not_equal(ic_xmpp__c2s_state_name((enum ic_c2s_state)a),
                                "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_exact),
        cmocka_unit_test(test_paths_keep_rfc_order),
        cmocka_unit_test(test_session_is_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
