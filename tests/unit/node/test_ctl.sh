#!/usr/bin/env bash
# test_ctl.sh - drives the real icrootctl and icroot binaries on temporary
# data directories.
#
#   test_ctl.sh ICROOTCTL ICROOT SOURCE_DIR [ctl|dev]
set -u

CTL=${1:?usage: test_ctl.sh ICROOTCTL ICROOT SOURCE_DIR}
ICROOT=${2:?}
SRC=${3:?}
MODE=${4:-ctl} # ctl: the operator's tool; dev: icroot dev
ONT=$SRC/ontology
DATA=$SRC/tests/data
PY=/usr/bin/python3

T=$(mktemp -d /tmp/icroot-ctl-XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_eq WHAT GOT WANT
expect_eq() {
    checks=$((checks + 1))
    if [ "$2" != "$3" ]; then
        fail "$1: got [$2], want [$3]"
    fi
}

# expect_rc WHAT GOT WANT
expect_rc() {
    checks=$((checks + 1))
    if [ "$2" -ne "$3" ]; then
        fail "$1: exit status $2, want $3"
    fi
}

expect_contains() {
    checks=$((checks + 1))
    case "$2" in
    *"$3"*) ;;
    *) fail "$1: [$2] does not contain [$3]" ;;
    esac
}

SEED=("availabilityQuanity =99.999" "replicationFactor=5"
      "tierCountries=JAPAN" "StorageReplicationMethod=AMQP"
      "InterCloudStorageAccess=NFS")

run_ctl() {
    # --- load the ontology ---------------------------------------------------
    D=$T/node
    for f in constraints intercloud sample-catalog; do
        out=$("$CTL" --data-dir "$D" load "$ONT/$f.ttl" 2>&1)
        expect_rc "load $f.ttl" $? 0
        expect_contains "load $f.ttl output" "$out" "loaded "
    done
    expect_eq "data dir holds store/" "$(ls "$D")" "store"

    # --- the seed query ------------------------------------------------------
    out=$("$CTL" --data-dir "$D" query "${SEED[@]}")
    expect_rc "seed query" $? 0
    expect_eq "seed query" "$out" $'cloud2\ncloud5'
    # exact bytes, trailing newline included
    "$CTL" --data-dir "$D" query "${SEED[@]}" > "$T/seed.out"
    expect_eq "seed query bytes" "$(od -An -c "$T/seed.out" | tr -s ' ')" \
        "$(printf 'cloud2\ncloud5\n' | od -An -c | tr -s ' ')"
    # -d and the environment variable name the data dir too
    out=$("$CTL" -d "$D" query "${SEED[@]}")
    expect_eq "seed query (-d)" "$out" $'cloud2\ncloud5'
    out=$(ICROOT_DATA_DIR=$D "$CTL" query "${SEED[@]}")
    expect_eq "seed query (ICROOT_DATA_DIR)" "$out" $'cloud2\ncloud5'

    # --- query --xml ---------------------------------------------------------
    "$CTL" --data-dir "$D" query --xml "$DATA/seed-request.xml" > "$T/xml.out"
    expect_rc "query --xml" $? 0
    expect_eq "query --xml" "$(cat "$T/xml.out")" $'cloud2\ncloud5'
    cmp -s "$T/seed.out" "$T/xml.out" || fail "query --xml output differs"
    out=$("$CTL" --data-dir "$D" query --xml - < "$DATA/seed-constraints.xml")
    expect_eq "query --xml -" "$out" $'cloud2\ncloud5'
    printf '<!DOCTYPE x>%s' "$(cat "$DATA/seed-constraints.xml")" > "$T/dtd.xml"
    err=$("$CTL" --data-dir "$D" query --xml "$T/dtd.xml" 2>&1 >/dev/null)
    expect_rc "query --xml with a DTD" $? 1
    expect_contains "query --xml with a DTD" "$err" "DTD"

    # --- query errors --------------------------------------------------------
    err=$("$CTL" --data-dir "$D" query noSuchAttribute=1 2>&1 >/dev/null)
    expect_rc "unknown attribute" $? 1
    expect_contains "unknown attribute" "$err" "noSuchAttribute"
    err=$("$CTL" --data-dir "$D" query replicationFactor=abc 2>&1 >/dev/null)
    expect_rc "bad value" $? 1
    expect_contains "bad value" "$err" "abc"
    "$CTL" --data-dir "$D" query notAPair >/dev/null 2>&1
    expect_rc "query without =" $? 2
    out=$("$CTL" --data-dir "$D" query StorageReplicationMethod=pigeon)
    expect_rc "value nobody has" $? 0
    expect_eq "value nobody has" "$out" ""
    out=$("$CTL" --data-dir "$D" query)
    expect_eq "no constraints" "$out" \
        "$(printf 'cloud%d\n' 1 2 3 4 5 6 7 8)"

    # --- stats ---------------------------------------------------------------
    "$CTL" --data-dir "$D" stats --json > "$T/stats1.json"
    expect_rc "stats --json" $? 0
    quads=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["quads"] > 0 and d["format"] == 2 and d["graphs"] == 10, d
assert d["triples"] > 0 and d["terms"] > 0 and d["used_bytes"] > 0, d
print(d["quads"])' "$T/stats1.json")
    expect_rc "stats --json is valid JSON with quads > 0" $? 0
    out=$("$CTL" --data-dir "$D" stats)
    expect_contains "stats" "$out" "quads         $quads"

    # --- dump and load into a second data dir --------------------------------
    "$CTL" --data-dir "$D" dump --format nq > "$T/dump.nq"
    expect_rc "dump --format nq" $? 0
    expect_eq "dump lines" "$(wc -l < "$T/dump.nq" | tr -d ' ')" "$quads"
    D2=$T/node2
    "$CTL" --data-dir "$D2" load "$T/dump.nq" >/dev/null
    expect_rc "load the dump" $? 0
    out=$("$CTL" --data-dir "$D2" query "${SEED[@]}")
    expect_eq "seed query on the reloaded dump" "$out" $'cloud2\ncloud5'
    q2=$("$CTL" --data-dir "$D2" stats --json |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["quads"])')
    expect_eq "quads after reload" "$q2" "$quads"
    "$CTL" --data-dir "$D2" dump --format nq > "$T/dump2.nq"
    # the same statements, blank node labels aside
    norm() { sed 's/_:[A-Za-z0-9]*/_:B/g' "$1" | LC_ALL=C sort; }
    if ! diff <(norm "$T/dump.nq") <(norm "$T/dump2.nq") >/dev/null; then
        fail "dump of the reloaded store differs"
    fi
    checks=$((checks + 1))
    for fmt in ttl nt trig; do
        "$CTL" --data-dir "$D" dump --format $fmt > "$T/dump.$fmt"
        expect_rc "dump --format $fmt" $? 0
    done
    "$CTL" --data-dir "$D" dump --format xml >/dev/null 2>&1
    expect_rc "dump --format xml" $? 2
    "$CTL" --data-dir "$D" dump --graph "xmpp:cloud5@intercloudexchg.test" \
        --format nq > "$T/cloud5.nq"
    expect_rc "dump --graph" $? 0
    n=$(wc -l < "$T/cloud5.nq" | tr -d ' ')
    checks=$((checks + 1))
    [ "$n" -gt 20 ] || fail "dump --graph: only $n lines"
    g5=' <xmpp:cloud5@intercloudexchg.test> \.$'
    expect_eq "dump --graph: only that graph" \
        "$(grep -vc "$g5" "$T/cloud5.nq")" "0"

    # --- a Turtle file with an error -----------------------------------------
    IC='@prefix ic: <http://www.csp/resOntology#> .'
    printf '%s\n\n%s\n%s\n' "$IC" '<xmpp:x@t> ic:region "a" .' \
        '<xmpp:y@t> ic:region @@ .' > "$T/bad.ttl"
    "$CTL" --data-dir "$D" stats --json > "$T/before.json"
    err=$("$CTL" --data-dir "$D" load "$T/bad.ttl" 2>&1 >/dev/null)
    rc=$?
    checks=$((checks + 1))
    [ $rc -ne 0 ] || fail "a bad Turtle file loaded"
    expect_contains "syntax error position" "$err" "$T/bad.ttl:4:"
    "$CTL" --data-dir "$D" stats --json > "$T/after.json"
    cmp -s "$T/before.json" "$T/after.json" ||
        fail "stats changed after a failed load"
    checks=$((checks + 1))
    out=$("$CTL" --data-dir "$D" query region=a)
    expect_eq "nothing of the bad file" "$out" ""

    # --- merge and replace ---------------------------------------------------
    printf '%s\n%s\n' "$IC" '<xmpp:m@t> a ic:Cloud ; ic:region "one" .' \
        > "$T/m1.ttl"
    printf '%s\n%s\n' "$IC" '<xmpp:m@t> a ic:Cloud ; ic:region "two" .' \
        > "$T/m2.ttl"
    "$CTL" --data-dir "$D" load "$T/m1.ttl" >/dev/null
    "$CTL" --data-dir "$D" load "$T/m2.ttl" >/dev/null
    expect_eq "replace" "$("$CTL" --data-dir "$D" query region=one)" ""
    "$CTL" --data-dir "$D" load --merge "$T/m1.ttl" >/dev/null
    expect_eq "merge" "$("$CTL" --data-dir "$D" query region=one)" "m"
    expect_eq "merge keeps" "$("$CTL" --data-dir "$D" query region=two)" "m"

    # --- a directory that is not ours ----------------------------------------
    X=$T/notours
    mkdir "$X"
    echo "precious" > "$X/thesis.txt"
    err=$("$CTL" --data-dir "$X" load "$ONT/constraints.ttl" 2>&1 >/dev/null)
    rc=$?
    checks=$((checks + 1))
    [ $rc -ne 0 ] || fail "load into a foreign directory succeeded"
    expect_contains "foreign directory" "$err" "not an icroot data directory"
    err=$("$CTL" --data-dir "$X" stats 2>&1 >/dev/null)
    expect_contains "foreign directory (stats)" "$err" \
        "not an icroot data directory"
    expect_eq "foreign directory untouched" "$(ls "$X")" "thesis.txt"
    expect_eq "foreign file untouched" "$(cat "$X/thesis.txt")" "precious"

    # a query on an empty data dir fails without creating anything
    E=$T/empty
    mkdir "$E"
    "$CTL" --data-dir "$E" query "${SEED[@]}" >/dev/null 2>&1
    rc=$?
    checks=$((checks + 1))
    [ $rc -ne 0 ] || fail "query on an empty data dir succeeded"
    expect_eq "empty dir untouched" "$(ls -A "$E")" ""

    # --- usage ---------------------------------------------------------------
    "$CTL" --data-dir "$D" frobnicate >/dev/null 2>&1
    expect_rc "unknown command" $? 2
    "$CTL" >/dev/null 2>&1
    expect_rc "no command" $? 2
    "$CTL" --no-such-option stats >/dev/null 2>&1
    expect_rc "unknown option" $? 2
    out=$("$CTL" --help)
    expect_rc "--help" $? 0
    expect_contains "--help" "$out" "usage"

}

# The online verbs against a running `icroot dev` in DIR.
run_online() {
    local dev=$1 cl=(--cluster "$1/cluster.json") out err rc pw
    out=$("$CTL" "${cl[@]}" status 2>&1)
    expect_rc "online status ($out)" $? 0
    expect_contains "status names the domain" "$out" "intercloudexchg.test"
    expect_contains "status counts sessions" "$out" "sessions          1"
    out=$("$CTL" "${cl[@]}" accounts)
    expect_eq "online accounts" "$out" \
        $'admin (admin)\ncloud1\ncloud2\ncloud3\ncloud4\ncloud5'
    out=$("$CTL" "${cl[@]}" query "${SEED[@]}")
    expect_eq "online seed query" "$out" $'cloud2\ncloud5'
    out=$("$CTL" "${cl[@]}" query --xml "$DATA/seed-request.xml")
    expect_eq "online seed query --xml" "$out" $'cloud2\ncloud5'
    err=$("$CTL" "${cl[@]}" query foo=bar 2>&1)
    expect_rc "online query, unknown attribute" $? 1
    expect_contains "its error" "$err" "bad-request: unknown attribute 'foo'"

    # accounts: add (random password), log in with it, change it, delete
    out=$("$CTL" "${cl[@]}" account-add cloud9)
    expect_rc "account-add" $? 0
    pw=${out##*: }
    expect_eq "a 36-character password" "${#pw}" 36
    out=$(ICROOT_PASSWORD=$pw "$CTL" "${cl[@]}" --user cloud9 query \
        "${SEED[@]}" 2>&1)
    expect_eq "cloud9 logs in with the new password" "$out" \
        $'cloud2\ncloud5'
    err=$(ICROOT_PASSWORD=$pw "$CTL" "${cl[@]}" --user cloud9 accounts 2>&1)
    expect_rc "a non-admin cannot list accounts" $? 1
    # admin commands are hidden from others (as in disco)
    expect_contains "its error" "$err" "item-not-found"
    printf 'n3w p4ssword\n' > "$T/pw"
    "$CTL" "${cl[@]}" passwd cloud9 --password-file "$T/pw"
    expect_rc "passwd" $? 0
    err=$(ICROOT_PASSWORD=$pw "$CTL" "${cl[@]}" --user cloud9 status 2>&1)
    expect_rc "the old password fails" $? 1
    expect_contains "its error" "$err" "not-authorized"
    out=$("$CTL" "${cl[@]}" --user cloud9 --password-file "$T/pw" query \
        "${SEED[@]}" 2>&1)
    expect_eq "the new password works" "$out" $'cloud2\ncloud5'
    "$CTL" "${cl[@]}" account-del cloud9
    expect_rc "account-del" $? 0
    err=$("$CTL" "${cl[@]}" --user cloud9 --password-file "$T/pw" status 2>&1)
    expect_contains "a deleted account cannot log in" "$err" "not-authorized"
    err=$("$CTL" "${cl[@]}" account-del cloud9 2>&1)
    expect_rc "account-del of nobody" $? 1
    expect_contains "its error" "$err" "item-not-found"

    # catalog: load online, dump online, read offline
    printf '@prefix ex: <http://example.org/> .\nex:a ex:b "online" .\n' \
        > "$T/extra.ttl"
    out=$("$CTL" "${cl[@]}" load "$T/extra.ttl")
    expect_rc "online load ($out)" $? 0
    out=$("$CTL" "${cl[@]}" dump --graph urn:icroot:graph:extra --format nq)
    expect_eq "online dump of the loaded graph" "$out" \
        '<http://example.org/a> <http://example.org/b> "online" <urn:icroot:graph:extra> .'
    out=$("$CTL" --data-dir "$dev/node1" dump --graph urn:icroot:graph:extra \
        --format nt)
    expect_eq "the loaded graph is in the store" "$out" \
        '<http://example.org/a> <http://example.org/b> "online" .'
    printf 'ex:a ex:b "unterminated .\n' > "$T/bad.ttl"
    err=$("$CTL" "${cl[@]}" load "$T/bad.ttl" 2>&1)
    expect_rc "online load of bad Turtle" $? 1
    expect_contains "its error" "$err" "bad-request"

    # delegations: add, list, referral in the query, recursion without a
    # reachable exchange (partial), bad input, non-admins, removal
    out=$("$CTL" "${cl[@]}" delegations)
    expect_rc "no delegations" $? 0
    expect_eq "no delegations listed" "$out" ""
    out=$("$CTL" "${cl[@]}" delegation-add ' tierCountries' JAPAN \
        service.exch.example 300 2>&1)
    expect_rc "delegation-add ($out)" $? 0
    out=$("$CTL" "${cl[@]}" delegation-add availabilityQuanity 99.999 \
        service.exch.example 60 --fingerprint "sha256:$(printf 'aB%.0s' \
        $(seq 32))" 2>&1)
    expect_rc "delegation-add with a fingerprint ($out)" $? 0
    out=$("$CTL" "${cl[@]}" delegations)
    expect_eq "delegations listed" "$out" "availabilityQuanity=99.999 \
service.exch.example 60 sha256:$(printf 'ab%.0s' $(seq 32))
tierCountries=JAPAN service.exch.example 300"
    # the same scope by the other spelling: replaced
    "$CTL" "${cl[@]}" delegation-add availabilityQuantity 99.999 \
        service.exch.example 30 >/dev/null
    out=$("$CTL" "${cl[@]}" delegations)
    expect_eq "a scope has one delegation" "$out" \
        "availabilityQuantity=99.999 service.exch.example 30
tierCountries=JAPAN service.exch.example 300"
    out=$("$CTL" "${cl[@]}" query "${SEED[@]}" 2>"$T/q.err")
    expect_eq "a query in a delegated scope keeps its local matches" "$out" \
        $'cloud2\ncloud5'
    expect_eq "and gets one referral per exchange" "$(cat "$T/q.err")" \
        "referral: service.exch.example (ttl 30)"
    out=$("$CTL" "${cl[@]}" query --recursive "${SEED[@]}" 2>"$T/q.err")
    expect_eq "recursive, exchange unreachable: local matches" "$out" \
        $'cloud2\ncloud5'
    expect_contains "its referral stays" "$(cat "$T/q.err")" \
        "referral: service.exch.example (ttl 30)"
    expect_contains "and it is partial" "$(cat "$T/q.err")" "partial"
    out=$("$CTL" "${cl[@]}" query replicationFactor=5 2>"$T/q.err")
    expect_eq "outside the scopes: no referral" "$(cat "$T/q.err")" ""
    for bad in "tierCountries JP a@@b 300|not a valid JID" \
        "tierCountries JP service.exch.example 0|ttl '0'" \
        "tierCountries JP service.exch.example 604801|ttl" \
        "tierCountries JP service.exch.example 1h|ttl" \
        "foo JP service.exch.example 60|unknown attribute 'foo'" \
        "replicationFactor abc service.exch.example 60|not a valid integer" \
        "tierCountries JP service.exch.example 60 --fingerprint sha256:00|fingerprint"; do
        # shellcheck disable=SC2086
        err=$("$CTL" "${cl[@]}" delegation-add ${bad%%|*} 2>&1)
        expect_rc "delegation-add ${bad%%|*}" $? 1
        expect_contains "its error" "$err" "bad-request"
        expect_contains "its error" "$err" "${bad#*|}"
    done
    "$CTL" "${cl[@]}" delegation-add tierCountries JP 2>/dev/null
    expect_rc "delegation-add without exchange and TTL" $? 2
    err=$("$CTL" "${cl[@]}" --user cloud1 --cert "$dev/cloud1.pem" \
        --key "$dev/cloud1.key" delegations 2>&1)
    expect_rc "a non-admin cannot list delegations" $? 1
    expect_contains "its error" "$err" "item-not-found"
    err=$("$CTL" "${cl[@]}" --user cloud1 --cert "$dev/cloud1.pem" \
        --key "$dev/cloud1.key" delegation-del tierCountries JAPAN 2>&1)
    expect_rc "a non-admin cannot remove a delegation" $? 1
    "$CTL" "${cl[@]}" delegation-del "tierCountries " " JAPAN" >/dev/null
    expect_rc "delegation-del" $? 0
    "$CTL" "${cl[@]}" delegation-del availabilityQuanity 99.999 >/dev/null
    expect_rc "delegation-del by the other spelling" $? 0
    out=$("$CTL" "${cl[@]}" delegations)
    expect_eq "no delegations left" "$out" ""
    err=$("$CTL" "${cl[@]}" delegation-del tierCountries JAPAN 2>&1)
    expect_rc "delegation-del of none" $? 1
    expect_contains "its error" "$err" "item-not-found"

    # EXTERNAL with the client certificate icroot dev made
    out=$("$CTL" "${cl[@]}" --user cloud1 --cert "$dev/cloud1.pem" \
        --key "$dev/cloud1.key" query "${SEED[@]}" 2>&1)
    expect_eq "EXTERNAL login" "$out" $'cloud2\ncloud5'

    # failures: wrong password, wrong CA, nobody listening, bad verbs
    err=$(ICROOT_PASSWORD=wrong "$CTL" "${cl[@]}" --user cloud1 status 2>&1)
    expect_rc "wrong password" $? 1
    expect_contains "its error" "$err" "not-authorized"
    # a trust anchor that did not issue the node's certificate
    err=$("$CTL" "${cl[@]}" --ca "$dev/cloud1.pem" status 2>&1)
    expect_rc "a CA that did not sign the node" $? 1
    expect_contains "its error" "$err" "certificate"
    err=$("$CTL" --server 127.0.0.1:1 --domain intercloudexchg.test \
        --password-file "$T/pw" status 2>&1)
    expect_rc "nobody listening" $? 1
    expect_contains "its error" "$err" "connect"
    "$CTL" "${cl[@]}" frobnicate 2>/dev/null
    expect_rc "an unknown verb" $? 2
    "$CTL" "${cl[@]}" stats 2>/dev/null
    expect_rc "stats is offline only" $? 2
}

run_dev() {
    # Since the XMPP node landed, `icroot dev` stays in the foreground
    # (INTERFACE.md) and writes DIR/cluster.json once its nodes are up;
    # before, it prepared the catalog, printed the seed query's answer and
    # exited. Both are accepted: the answer is read from node1's catalog.
    local dev=$T/dev port pid rc running=0 i
    # a free range P..P+9 below the ephemeral ports (other tests' client
    # sockets take those)
    port=$("$PY" -c '
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000, 10)
    try:
        for q in range(p, p + 10):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass')
    "$ICROOT" dev --dir "$dev" --nodes 1 --base-port "$port" \
        > "$T/dev.out" 2> "$T/dev.err" &
    pid=$!
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        [ -f "$dev/cluster.json" ] && break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        running=1
    fi
    out=$("$CTL" --data-dir "$dev/node1" query "${SEED[@]}")
    expect_eq "the seed query on icroot dev's node1" "$out" $'cloud2\ncloud5'
    if [ $running -eq 1 ]; then
        run_online "$dev"
        kill -INT "$pid"
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    wait "$pid"
    rc=$?
    expect_rc "icroot dev (stderr: $(head -c 300 "$T/dev.err"))" $rc 0
    if [ $running -eq 0 ]; then
        out=$(cat "$T/dev.out")
        seed_lines=$(printf '%s\n' "$out" |
            sed -n '/^seed query/,/^domain/p' | grep -E '^  ' | tr -d ' ')
        expect_eq "icroot dev prints the seed query's answer" "$seed_lines" \
            $'cloud2\ncloud5'
    fi
    "$ICROOT" dev --nodes 0 --dir "$dev" >/dev/null 2>&1
    expect_rc "icroot dev --nodes 0" $? 2
}

# icroot seed: a new cluster's seed for operators (the Ansible role's)
run_seed() {
    local pw="$T/admin.pw" out="$T/seed.cmd"
    printf 'correct horse battery\n' >"$pw"
    "$ICROOT" seed --domain root.example --ontology "$ONT" \
        --account "admin=$pw:admin" >/dev/null 2>&1
    expect_rc "icroot seed without --out" $? 2
    "$ICROOT" seed --out "$out" --account "admin" >/dev/null 2>&1
    expect_rc "icroot seed --account without a password file" $? 2
    "$ICROOT" seed --out "$out" --account "admin=$T/none.pw" >/dev/null 2>&1
    expect_rc "icroot seed, password file missing" $? 2
    "$ICROOT" seed --out "$out" --account "a b=$pw" >/dev/null 2>&1
    expect_rc "icroot seed, bad account name" $? 2
    mkdir -p "$T/no-ttl"
    "$ICROOT" seed --out "$out" --ontology "$T/no-ttl" --account "admin=$pw" \
        >/dev/null 2>&1
    expect_rc "icroot seed, no .ttl in the ontology dir" $? 1
    "$ICROOT" seed --out "$out" --domain root.example --ontology "$ONT" \
        --account "admin=$pw:admin" --account "bob=$pw"
    expect_rc "icroot seed" $? 0
    expect_eq "the seed is private" "$(stat -c %a "$out")" "600"
    # what a cluster applies: the ontology, the sample rewritten to the
    # domain, the accounts' SCRAM keys and never the password
    if grep -q "correct horse" "$out"; then
        fail "the seed holds a password"
    fi
    checks=$((checks + 1))
    expect_contains "the sample is in the domain" \
        "$(grep -a -o 'cloud2@root.example' "$out" | head -1)" "cloud2@root.example"
}

case $MODE in
ctl)
    run_ctl
    run_seed
    ;;
dev) run_dev ;;
*)
    echo "unknown mode $MODE" >&2
    exit 2
    ;;
esac

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
