#!/bin/sh
# Fails when a C source is not formatted as .clang-format says.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' \
    -not -path './build*')
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "format: ok ($(echo "$files" | wc -w) files)"
