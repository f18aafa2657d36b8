#!/usr/bin/env bash
# The Ansible deployment (deploy/), for real: the playbook lays out three
# nodes on this machine (three inventory hosts, all localhost with
# ansible_connection=local, distinct ports and directories under a temp
# dir, service_manager=none, icroot_make_certs=true: a CA and node
# certificates made with openssl, the seed made by the role), then this
# script starts the nodes from the rendered configs and checks with
# icrootctl that they form one cluster of 3 with one leader, that the seed
# (ontology, sample catalog, admin account) was applied and that a catalog
# load through node 1 is visible through node 3. Then it adds a fourth host
# marked icroot_join=true, as README.md tells: the second run changes
# nothing on the first three nodes (beside cluster.json on the control
# node), node 4 starts with join = true, `icrootctl member-add` makes it a
# voter that serves the catalog, `member-remove` takes it out again; a
# final --check run reports changed=0 on every host (idempotence). The
# systemd unit cannot run here (no systemd as PID 1): the role's unit tasks
# render it per node and systemd-analyze verify must pass, and must refuse
# a unit whose executable is missing.
#
# usage: test_ansible.sh ICROOT ICROOTCTL SOURCE_DIR
# Exit 77 (skipped) when ansible-playbook is missing. Ports 27000-27039
# (ICROOT_DEPLOY_BASE_PORT moves them); ICROOT_KEEP_TMP=1 keeps the temp
# dir of a failed run.
set -euo pipefail

if ! command -v ansible-playbook >/dev/null 2>&1; then
    echo "SKIP: ansible-playbook not installed (Debian: ansible-core)"
    exit 77
fi

ICROOT=$(realpath "${1:?usage: $0 ICROOT ICROOTCTL SOURCE_DIR}")
ICROOTCTL=$(realpath "${2:?}")
SRC=$(realpath "${3:?}")
BASE=${ICROOT_DEPLOY_BASE_PORT:-27000}
DOMAIN=intercloudexchg.test

T=$(mktemp -d "${TMPDIR:-/tmp}/icroot-deploy.XXXXXX")
PIDS=()
fail() {
    echo "FAIL: $*" >&2
    for i in 1 2 3 4; do
        if [ -f "$T/node$i.log" ]; then
            echo "---- last lines of node $i's log" >&2
            tail -n 15 "$T/node$i.log" >&2
        fi
    done
    exit 1
}
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ $rc = 0 ] || [ -z "${ICROOT_KEEP_TMP:-}" ]; then
        rm -rf "$T"
    else
        echo "kept $T" >&2
    fi
}
trap cleanup EXIT

export ANSIBLE_CONFIG="$SRC/deploy/ansible.cfg"
export ANSIBLE_LOCAL_TEMP="$T/ansible/tmp"
export ANSIBLE_REMOTE_TEMP="$T/ansible/remote"
export ANSIBLE_HOME="$T/ansible"
export ANSIBLE_NOCOLOR=1
export ANSIBLE_FORCE_COLOR=0
export ANSIBLE_STDOUT_CALLBACK=default
export ANSIBLE_DEPRECATION_WARNINGS=0
export ANSIBLE_PIPELINING=1
export XDG_CACHE_HOME="$T/cache"

# ---- inventory and variables ---------------------------------------------
# host_line I [EXTRA]: inventory host nI on ports BASE+10*(I-1)+0..3
host_line() {
    local i=$1 p=$((BASE + 10 * ($1 - 1)))
    shift
    echo "n$i ansible_host=127.0.0.1 icroot_node_id=$i" \
        "icroot_c2s_port=$p icroot_c2s_tls_port=$((p + 1))" \
        "icroot_s2s_port=$((p + 2)) icroot_raft_port=$((p + 3))" \
        "icroot_prefix=$T/n$i icroot_config_dir=$T/n$i/etc" \
        "icroot_data_dir=$T/n$i/data" "$@"
}
inventory() { # inventory N [JOIN_FROM]: hosts 1..N, those >= JOIN_FROM join
    echo "[icroot]"
    for i in $(seq 1 "$1"); do
        if [ "$i" -ge "${2:-99}" ]; then
            host_line "$i" icroot_join=true
        else
            host_line "$i"
        fi
    done
    echo
    echo "[icroot:vars]"
    echo "ansible_connection=local"
    echo "ansible_python_interpreter=/usr/bin/python3"
}
inventory 3 >"$T/inventory.ini"

cat >"$T/vars.json" <<JSON
{
  "service_manager": "none",
  "icroot_become": false,
  "icroot_make_certs": true,
  "icroot_create_user": false,
  "icroot_user": "$(id -un)",
  "icroot_group": "$(id -gn)",
  "icroot_bin_owner": "$(id -un)",
  "icroot_bin_group": "$(id -gn)",
  "icroot_local_dir": "$T/controller",
  "icroot_binary_src": "$ICROOT",
  "icrootctl_binary_src": "$ICROOTCTL",
  "icroot_ontology_src": "$SRC/ontology",
  "icroot_domain": "$DOMAIN",
  "icroot_c2s_address": "127.0.0.1",
  "icroot_s2s_address": "127.0.0.1",
  "icroot_s2s_dialback": true,
  "icroot_s2s_secret": "deploy-test-secret-0123456789",
  "icroot_election_timeout": 500
}
JSON

play() {
    ansible-playbook -i "$T/inventory.ini" -e "@$T/vars.json" \
        "$SRC/deploy/site.yml" "$@"
}

# The PLAY RECAP of LOG: N hosts, nothing failed or unreachable; with
# "nochange", nothing changed either (changed=0 on every host).
recap_ok() {
    local log=$1 n=$2 want=${3:-}
    local lines
    lines=$(sed -n '/^PLAY RECAP/,$p' "$log" | grep -E 'ok=[0-9]+' || true)
    [ "$(echo "$lines" | grep -c 'ok=')" = "$n" ] || return 1
    echo "$lines" | grep -qv 'failed=0 ' && return 1
    echo "$lines" | grep -qE 'unreachable=[1-9]' && return 1
    if [ "$want" = nochange ]; then
        [ "$(echo "$lines" | grep -c ' changed=0 ')" = "$n" ] || return 1
    fi
    return 0
}

# "TASK NAME|HOST" for every task result reported changed in LOG
changed_tasks() {
    awk '/^(TASK|RUNNING HANDLER) \[/ { t = $0; sub(/^[A-Z ]+\[/, "", t); sub(/\] \**$/, "", t) }
         /^changed: \[/ { h = $2; gsub(/[\[\]]/, "", h); print t "|" h }' "$1" | sort -u
}

step() { echo "== [${SECONDS}s] $*"; }

# ---- syntax, lint ------------------------------------------------------------
step "ansible-playbook --syntax-check"
play --syntax-check >"$T/syntax.log" 2>&1 || {
    cat "$T/syntax.log"
    fail "syntax check"
}
if command -v ansible-lint >/dev/null 2>&1; then
    step "ansible-lint"
    (cd "$SRC/deploy" && ansible-lint --offline --nocolor site.yml) \
        >"$T/lint.log" 2>&1 || {
        cat "$T/lint.log"
        fail "ansible-lint"
    }
else
    echo "(ansible-lint not installed: skipped)"
fi

# ---- first run ------------------------------------------------------------
step "ansible-playbook (first run)"
t0=$(date +%s)
play >"$T/run1.log" 2>&1 || {
    cat "$T/run1.log"
    fail "first run"
}
recap_ok "$T/run1.log" 3 || {
    cat "$T/run1.log"
    fail "first run recap"
}
echo "   $(($(date +%s) - t0)) s"

# ---- what it laid out ------------------------------------------------------
step "files, modes, certificates"
mode() { stat -c %a "$1"; }
CJ=$T/controller/cluster.json
[ -f "$CJ" ] || fail "no cluster.json on the control node"
[ "$(mode "$T/controller")" = 700 ] || fail "control dir mode $(mode "$T/controller")"
[ "$(mode "$T/controller/ca.key")" = 600 ] || fail "ca.key mode"
for i in 1 2 3; do
    d=$T/n$i
    for f in bin/icroot bin/icrootctl etc/icroot.conf etc/seed.cmd \
        etc/tls/node.pem etc/tls/node.key etc/tls/ca.pem; do
        [ -f "$d/$f" ] || fail "node $i: no $f"
    done
    [ "$(mode "$d/etc/icroot.conf")" = 600 ] || fail "node $i: config mode"
    [ "$(mode "$d/etc/tls/node.key")" = 600 ] || fail "node $i: key mode"
    [ "$(mode "$d/etc/seed.cmd")" = 600 ] || fail "node $i: seed mode"
    [ "$(mode "$d/etc")" = 750 ] || fail "node $i: config dir mode"
    [ "$(mode "$d/data")" = 700 ] || fail "node $i: data dir mode"
    cmp -s "$d/bin/icroot" "$ICROOT" || fail "node $i: icroot differs"
    grep -qx "peers = 1=127.0.0.1:$((BASE + 3)), 2=127.0.0.1:$((BASE + 13)), 3=127.0.0.1:$((BASE + 23))" \
        "$d/etc/icroot.conf" || fail "node $i: peers line"
    grep -qx "link_port = $((BASE + 10 * (i - 1) + 4))" "$d/etc/icroot.conf" ||
        fail "node $i: link_port"
    grep -qx "join = false" "$d/etc/icroot.conf" || fail "node $i: join"
    grep -qx "secret = deploy-test-secret-0123456789" "$d/etc/icroot.conf" ||
        fail "node $i: secret"
    for purpose in sslserver sslclient; do
        openssl verify -CAfile "$d/etc/tls/ca.pem" -purpose $purpose \
            -verify_hostname "service.$DOMAIN" "$d/etc/tls/node.pem" \
            >/dev/null || fail "node $i: certificate does not verify ($purpose)"
    done
    openssl x509 -in "$d/etc/tls/node.pem" -noout -subject -nameopt RFC2253 |
        grep -q "OU=node $i," || fail "node $i: no OU=node $i in the subject"
    san=$(openssl x509 -in "$d/etc/tls/node.pem" -noout -ext subjectAltName)
    echo "$san" | grep -q "DNS:$DOMAIN" || fail "node $i: SAN lacks $DOMAIN"
    echo "$san" | grep -q "DNS:service.$DOMAIN" || fail "node $i: SAN lacks service"
    openssl x509 -in "$d/etc/tls/node.pem" -noout -ext extendedKeyUsage |
        grep -q "TLS Web Server Authentication, TLS Web Client Authentication" ||
        fail "node $i: extendedKeyUsage"
done

# ---- the systemd unit ------------------------------------------------------
# The run above had service_manager none; the role's unit tasks
# (tasks/unit.yml: render, then systemd-analyze verify) run here alone,
# into a directory per node, and must pass; then once more with a unit
# whose ExecStart names no executable, which the check must refuse.
step "systemd unit: rendered by the role, systemd-analyze verify"
command -v systemd-analyze >/dev/null 2>&1 ||
    fail "systemd-analyze missing (Debian: systemd; scripts/install-deps.sh)"
cat >"$T/unit.yml" <<'YML'
- name: The role's systemd unit alone
  hosts: icroot
  gather_facts: false
  tasks:
    - name: Unit tasks of the icroot role
      ansible.builtin.include_role:
        name: icroot
        tasks_from: unit.yml
      vars:
        icroot_unit_dir: "{{ icroot_prefix }}/units"
YML
unit_play() {
    ANSIBLE_ROLES_PATH="$SRC/deploy/roles" ansible-playbook \
        -i "$T/inventory.ini" -e "@$T/vars.json" "$T/unit.yml" "$@"
}
mkdir -p "$T/n1/units" "$T/n2/units" "$T/n3/units"
unit_play >"$T/unit.log" 2>&1 || {
    cat "$T/unit.log"
    fail "rendering and checking the unit"
}
for i in 1 2 3; do
    u=$T/n$i/units/icroot.service
    [ -f "$u" ] || fail "node $i: no unit"
    grep -qx "ExecStart=$T/n$i/bin/icroot run --config $T/n$i/etc/icroot.conf" \
        "$u" || fail "node $i: ExecStart: $(grep ExecStart "$u")"
    grep -qx "ReadWritePaths=$T/n$i/data" "$u" || fail "node $i: ReadWritePaths"
    out=$(systemd-analyze verify "$u" 2>&1) || fail "node $i: verify: $out"
    [ -z "$out" ] || fail "node $i: systemd-analyze verify: $out"
done
if unit_play --limit n1 -e "icroot_bin_dir=$T/nowhere" >"$T/unit-bad.log" 2>&1; then
    cat "$T/unit-bad.log"
    fail "a unit without its executable passed the check"
fi
grep -q "icroot.service: Command $T/nowhere/icroot is not executable" \
    "$T/unit-bad.log" ||
    fail "the bad unit failed elsewhere: $(tail -n 20 "$T/unit-bad.log")"

# ---- the nodes, started from the rendered configs ------------------------
step "start 3 nodes"
for i in 1 2 3; do
    "$T/n$i/bin/icroot" run --config "$T/n$i/etc/icroot.conf" \
        >"$T/node$i.log" 2>&1 &
    PIDS+=($!)
done
CTL=("$T/n1/bin/icrootctl" --cluster "$CJ" --timeout 5)

step "wait for a leader (30 s at most)"
members=""
for _ in $(seq 1 60); do
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || fail "a node exited"
    done
    if members=$("${CTL[@]}" --node 2 members 2>"$T/members.err"); then
        leader=$(echo "$members" | awk '$1 == "leader" {print $2}')
        if [ -n "$leader" ] && [ "$leader" != 0 ]; then
            break
        fi
    fi
    sleep 0.5
done
echo "$members"
leader=$(echo "$members" | awk '$1 == "leader" {print $2}')
if [ -z "$leader" ] || [ "$leader" = 0 ]; then
    cat "$T/members.err" >&2
    fail "no leader"
fi

step "3 members, one leader, the same on every node"
n_members=$(echo "$members" | grep -cE '^member +[1-3] 127\.0\.0\.1:[0-9]+ voter$' || true)
[ "$n_members" = 3 ] || fail "members: $n_members voters, not 3"
for i in 1 2 3; do
    m=$("${CTL[@]}" --node $i members) || fail "members on node $i"
    [ "$(echo "$m" | awk '$1 == "leader" {print $2}')" = "$leader" ] ||
        fail "node $i names another leader"
done
leaders=0
for i in 1 2 3; do
    st=$("${CTL[@]}" --node $i members | awk '$1 == "state" {print $2}')
    [ "$st" = leader ] && leaders=$((leaders + 1))
done
[ $leaders = 1 ] || fail "$leaders nodes say they lead"

step "the seed: ontology, sample catalog, admin account (query on node 2)"
clouds=$("${CTL[@]}" --node 2 query --linearizable \
    availabilityQuantity=99.999 replicationFactor=5 tierCountries=JAPAN \
    StorageReplicationMethod=AMQP InterCloudStorageAccess=NFS | sort | tr '\n' ' ')
[ "$clouds" = "cloud2 cloud5 " ] || fail "the paper's query gave '$clouds'"

step "load through node 1, dump through node 3"
cat >"$T/extra.ttl" <<TTL
@prefix ic: <http://www.csp/resOntology#> .
@prefix icc: <http://www.csp/resOntology/country/> .
<xmpp:cloud9@$DOMAIN> a ic:Cloud ;
    ic:jid "cloud9@$DOMAIN" ;
    ic:availability 99.9 ;
    ic:replicationFactor 9 ;
    ic:country icc:NZ .
TTL
"${CTL[@]}" --node 1 load "$T/extra.ttl" >"$T/load.out" 2>&1 || {
    cat "$T/load.out"
    fail "load through node 1"
}
dump=$("${CTL[@]}" --node 3 dump --linearizable --graph "xmpp:cloud9@$DOMAIN") ||
    fail "dump through node 3"
echo "$dump" | grep -q "cloud9@$DOMAIN" || fail "node 3 does not have cloud9: $dump"
echo "$dump" | grep -q "replicationFactor" || fail "node 3's cloud9 lacks its statements"

# ---- a node added later (icroot_join) -----------------------------------------
step "second run with a 4th host marked icroot_join=true"
inventory 4 4 >"$T/inventory.ini"
play >"$T/run2.log" 2>&1 || {
    cat "$T/run2.log"
    fail "second run"
}
recap_ok "$T/run2.log" 4 || {
    cat "$T/run2.log"
    fail "second run recap"
}
# n1 carries the run_once tasks on the control node: only cluster.json
# (now listing node 4) may change there; nothing on nodes 1-3 themselves.
bad=$(changed_tasks "$T/run2.log" | grep -E '\|n[123]( |$)' |
    grep -vx 'icroot : Write cluster.json for icrootctl --cluster|n1' || true)
[ -z "$bad" ] || {
    cat "$T/run2.log"
    fail "the second run changed the first nodes: $bad"
}
c4=$T/n4/etc/icroot.conf
grep -qx "join = true" "$c4" || fail "node 4: join"
grep -q "^seed" "$c4" && fail "node 4 names the seed"
grep -qx "peers = 1=127.0.0.1:$((BASE + 3)), 2=127.0.0.1:$((BASE + 13)), 3=127.0.0.1:$((BASE + 23)), 4=127.0.0.1:$((BASE + 33))" \
    "$c4" || fail "node 4: peers line"
grep -q "\"c2s_port\": $((BASE + 30))" "$CJ" || fail "cluster.json lacks node 4"

step "start node 4 (join), member-add 4, wait for 4 voters"
"$T/n4/bin/icroot" run --config "$c4" >"$T/node4.log" 2>&1 &
PIDS+=($!)
"${CTL[@]}" --node 1 member-add 4 "127.0.0.1:$((BASE + 33))" >"$T/add.out" 2>&1 || {
    cat "$T/add.out"
    fail "member-add 4"
}
voters=0
for _ in $(seq 1 60); do
    kill -0 "${PIDS[3]}" 2>/dev/null || fail "node 4 exited"
    voters=$("${CTL[@]}" --node 1 members 2>/dev/null |
        grep -cE '^member +[1-4] 127\.0\.0\.1:[0-9]+ voter$' || true)
    [ "$voters" = 4 ] && break
    sleep 0.5
done
[ "$voters" = 4 ] || fail "node 4 did not become a voter"
dump=$("${CTL[@]}" --node 4 dump --linearizable --graph "xmpp:cloud9@$DOMAIN") ||
    fail "dump through node 4"
echo "$dump" | grep -q "replicationFactor" || fail "node 4 lacks cloud9"

step "member-remove 4: 3 voters again"
"${CTL[@]}" --node 2 member-remove 4 >"$T/remove.out" 2>&1 || {
    cat "$T/remove.out"
    fail "member-remove 4"
}
m=$("${CTL[@]}" --node 1 members) || fail "members after the removal"
[ "$(echo "$m" | grep -c '^member ')" = 3 ] || fail "after member-remove: $m"
echo "$m" | grep -q '^member  *4 ' && fail "node 4 is still a member"

# ---- idempotence ---------------------------------------------------------------
step "--check run: changed=0 on every host"
play --check >"$T/check.log" 2>&1 || {
    cat "$T/check.log"
    fail "check run"
}
recap_ok "$T/check.log" 4 nochange || {
    cat "$T/check.log"
    fail "the check run would change something"
}

# ---- a clean stop ----------------------------------------------------------------
step "SIGTERM: every node exits 0"
for i in 0 1 2 3; do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
done
for i in 0 1 2 3; do
    rc=0
    for _ in $(seq 1 150); do
        kill -0 "${PIDS[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "${PIDS[$i]}" 2>/dev/null &&
        fail "node $((i + 1)) still runs 15 s after SIGTERM"
    wait "${PIDS[$i]}" || rc=$?
    [ $rc = 0 ] || fail "node $((i + 1)) exited $rc on SIGTERM"
done
PIDS=()
echo "PASS"
