/*
 * test_rosters.c - the roster update the state machine applies
 * (node/rosters.c): changes from several nodes compose on the stored item.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "app.h"

/* RECORD (NULL: none) after the change EV of CONTACT's item. */
static char *step(const char *record,
                  const char *contact,
                  enum ic_roster_event ev,
                  const struct ic_roster_item *fields)
{
    char *arg = ic_node__roster_change(contact, ev, fields);
    struct ic_kv old = {record, record ? strlen(record) : 0}, out;
    char *txt;

    assert_int_equal(ic_node__roster_update(record ? &old : NULL,
                                            (struct ic_kv){arg, strlen(arg)},
                                            &out),
                     0);
    ic_free(arg);
    if (out.data == NULL)
        return NULL;
    txt = ic_strndup(out.data, out.len);
    ic_free((void *)out.data);
    return txt;
}

static char *then(char *record,
                  const char *contact,
                  enum ic_roster_event ev,
                  const struct ic_roster_item *fields)
{
    char *next = step(record, contact, ev, fields);

    ic_free(record);
    return next;
}

#define C "bob@other.example"

/* The case two nodes used to lose: node 2 asks (OUT_SUBSCRIBE), node 1
 * records the contact's approval and request (IN_SUBSCRIBED,
 * IN_SUBSCRIBE), node 2 approves (OUT_SUBSCRIBED) having seen only its
 * own ask: applied in log order, the item ends 'both'. */
static void test_changes_compose(void **state)
{
    char *r = step(NULL, C, IC_ROSTER_OUT_SUBSCRIBE, NULL);

    (void)state;
    assert_non_null(strstr(r, "\"sub\":\"none\",\"ask\":true"));
    r = then(r, C, IC_ROSTER_IN_SUBSCRIBED, NULL);
    r = then(r, C, IC_ROSTER_IN_SUBSCRIBE, NULL);
    assert_non_null(strstr(r, "\"sub\":\"to\",\"ask\":false,\"pending\":true"));
    r = then(r, C, IC_ROSTER_OUT_SUBSCRIBED, NULL);
    assert_non_null(
        strstr(r, "\"sub\":\"both\",\"ask\":false,\"pending\":false"));
    /* repeated (a retry, or a change the view already had): the same */
    {
        char *again = step(r, C, IC_ROSTER_OUT_SUBSCRIBED, NULL);
        assert_string_equal(again, r);
        ic_free(again);
    }
    r = then(r, C, IC_ROSTER_IN_UNSUBSCRIBE, NULL);
    assert_non_null(strstr(r, "\"sub\":\"to\""));
    r = then(r, C, IC_ROSTER_OUT_UNSUBSCRIBE, NULL);
    assert_non_null(strstr(r, "\"sub\":\"none\""));
    ic_free(r);
}

/* SET keeps the subscription; REMOVE drops the item, the record goes
 * with its last item; other items are untouched. */
static void test_set_and_remove(void **state)
{
    char g1[] = "friends", g2[] = "work", name[] = "Bob";
    char *groups[] = {g1, g2};
    struct ic_roster_item f = {0};
    char *r;

    (void)state;
    f.name = name;
    f.groups = groups;
    f.ngroups = 2;
    r = step(NULL, C, IC_ROSTER_IN_SUBSCRIBED, NULL);
    r = then(r, "carol@x.example", IC_ROSTER_SET, NULL);
    r = then(r, C, IC_ROSTER_SET, &f);
    assert_non_null(strstr(r, "\"name\":\"Bob\",\"sub\":\"to\""));
    assert_non_null(strstr(r, "[\"friends\",\"work\"]"));
    assert_non_null(strstr(r, "carol@x.example"));
    r = then(r, C, IC_ROSTER_REMOVE, NULL);
    assert_null(strstr(r, C));
    r = then(r, "carol@x.example", IC_ROSTER_REMOVE, NULL);
    assert_null(r);
}

/* What is not a change, or a record that is not one, changes nothing. */
static void test_refusals(void **state)
{
    static const char *const bad[] = {"",
                                      "{",
                                      "[]",
                                      "{\"c\":\"b@x\"}",
                                      "{\"c\":\"b@x\",\"e\":0}",
                                      "{\"c\":\"b@x\",\"e\":99}",
                                      "{\"c\":7,\"e\":1}"};
    struct ic_kv out;
    char *arg = ic_node__roster_change(C, IC_ROSTER_SET, NULL);
    struct ic_kv old = {"{\"not\":\"an array\"}", 18};

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            ic_node__roster_update(NULL, (struct ic_kv){bad[i], strlen(bad[i])},
                                   &out),
            IC_EVALUE);
    assert_int_equal(
        ic_node__roster_update(&old, (struct ic_kv){arg, strlen(arg)}, &out),
        IC_EVALUE);
    ic_free(arg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_compose),
        cmocka_unit_test(test_set_and_remove),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
