#!/bin/sh
# Installs every build, test and benchmark dependency of the Intercloud Root
# on Debian 12 (bookworm), as root. Idempotent: when everything is present it
# only checks and returns.
#
# bookworm-backports is enabled by adding the suite to the machine's existing
# Debian sources entry (deb822 or one-line format); no host name is written.
set -eu

PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
 llvm libuv1-dev libssl-dev openssl libexpat1 libexpat1-dev liblmdb-dev libc-ares-dev
 lmdb-utils libserd-dev serdi libsord-dev libinih-dev libjansson-dev
 libcmocka-dev libidn-dev libjemalloc-dev libnghttp2-dev python3-slixmpp prosody lua-unbound util-linux
 iproute2 systemd
 etcd-server etcd-client
 ansible-core"

RAFT_MIN=0.22

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: run as root" >&2
        exit 1
    fi
}

# Add bookworm-backports to the entry that lists bookworm-updates.
enable_backports() {
    if grep -rqs 'bookworm-backports' /etc/apt/sources.list \
        /etc/apt/sources.list.d/ 2>/dev/null; then
        return 1
    fi
    f=/etc/apt/sources.list.d/debian.sources
    if [ -f "$f" ] && grep -q '^Suites:.*bookworm-updates' "$f"; then
        sed -i '0,/^Suites:\(.*\)bookworm-updates/s//Suites:\1bookworm-updates bookworm-backports/' "$f"
        return 0
    fi
    f=/etc/apt/sources.list
    if [ -f "$f" ] && grep -qE '^deb [^#]* bookworm main' "$f"; then
        line=$(grep -E '^deb [^#]* bookworm main' "$f" | head -n 1)
        echo "$line" | sed 's/ bookworm main/ bookworm-backports main/' >>"$f"
        return 0
    fi
    echo "install-deps: no Debian bookworm sources entry found" >&2
    exit 1
}

raft_ok() {
    v=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null || true)
    [ -n "$v" ] && dpkg --compare-versions "$v" ge "$RAFT_MIN"
}

missing() {
    out=""
    for p in $PKGS; do
        s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$s" in
        *"install ok installed"*) ;;
        *) out="$out $p" ;;
        esac
    done
    echo "$out"
}

# The expat security update exports XML_SetReparseDeferralEnabled.
expat_ok() {
    v=$(dpkg-query -W -f='${Version}' libexpat1 2>/dev/null || true)
    [ -n "$v" ] && dpkg --compare-versions "$v" ge 2.5.0-1+deb12u1
}

main() {
    need_root
    updated=0
    if enable_backports; then
        updated=1
        apt-get update -q
    fi
    m=$(missing)
    command -v npm >/dev/null 2>&1 || m="$m nodejs npm"
    if [ -z "$m" ] && raft_ok && expat_ok; then
        echo "install-deps: everything present"
        return 0
    fi
    [ $updated = 1 ] || apt-get update -q
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $PKGS
    # Node.js runs the oxigraph side of the benchmark; a machine may already
    # carry its own build of it (with npm inside), so only add Debian's
    # when there is none.
    if ! command -v npm >/dev/null 2>&1; then
        apt-get install -y -q --no-install-recommends nodejs npm
    fi
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
        libraft-dev libraft0
    apt-get install -y -q --only-upgrade libexpat1 libexpat1-dev
    # Debian's prosody package starts the system service; the tests run
    # their own instances with their own config, so keep it stopped.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now prosody >/dev/null 2>&1 || true
    fi
    if ! raft_ok; then
        echo "install-deps: libraft-dev >= $RAFT_MIN not installed" >&2
        exit 1
    fi
    echo "install-deps: done"
}

main "$@"
