#!/bin/bash
# Every GoogleTest suite of a test binary is run by one meson test, which
# names it in the list of tests/unit/meson.build (or tests/ecosystem's): a
# suite missing from the list never runs, and its cases can't fail. (The
# HandOver cases, the parser of the atomic-mode hand-over, were in that case.)
# Usage: suites_registered.sh BINARY SUITE...
set -u
bin=$1
shift
listed=$("$bin" --gtest_list_tests) || { echo "FAIL: $bin --gtest_list_tests failed"; exit 1; }
suites=$(printf '%s\n' "$listed" | sed -n 's/^\([A-Za-z0-9_]*\)\.$/\1/p')
[ -n "$suites" ] || { echo "FAIL: $bin lists no suite"; exit 1; }
status=0
for s in $suites; do
  found=0
  for r in "$@"; do [ "$r" = "$s" ] && found=1; done
  [ $found = 1 ] || { echo "FAIL: suite $s of $bin is run by no meson test: add it to the list"; status=1; }
done
[ $status = 0 ] && echo "ok: each of the $(printf '%s\n' "$suites" | wc -l) suites of $bin has its meson test"
exit $status
