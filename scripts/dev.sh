#!/bin/sh
# Installs what is missing, builds, and runs `build/icroot dev` with the
# arguments given (see INTERFACE.md). Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
exec build/icroot dev "$@"
