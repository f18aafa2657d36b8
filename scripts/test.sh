#!/bin/sh
# Installs what is missing, builds, and runs every test: formatting, the
# unit and integration tests under AddressSanitizer and UBSan, and a short
# bounded run of each libFuzzer target. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

./scripts/install-deps.sh

echo "== format (clang-format 14)"
./scripts/check-format.sh

echo "== build: build/ (warnings are errors)"
cmake -S . -B build -DIC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== build: build-asan/ (ASan + UBSan)"
cmake -S . -B build-asan -DIC_WERROR=ON -DIC_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"

echo "== build: build-fuzz/ (clang, libFuzzer)"
CC=clang cmake -S . -B build-fuzz -DIC_WERROR=ON -DIC_FUZZ=ON \
    -DIC_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j "$jobs"

echo "== tests"
status=0
(cd build-asan && ctest --output-on-failure -j "$jobs") || status=1
(cd build-fuzz && ctest --output-on-failure) || status=1
exit $status
