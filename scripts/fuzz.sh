#!/usr/bin/env bash
# libFuzzer targets (fuzz/fuzz_*.cpp), built with clang++ and ASan+UBSan:
#   settings  the TRUNCGUARD_* parser, with a fuzzer-driven environment
#   maps      /proc/PID/maps lines, and the matcher fed in random chunks
#   escape    tg::escape: no raw control byte, valid UTF-8, reversible, cut cleanly
#   log       one log event, text and JSON: one well-formed line
#   handover  atomic mode's exec hand-over entries: read only as written
#   fdinfo    the lock lines of /proc/PID/fdinfo an fd move takes again
#
#   scripts/fuzz.sh [--quick | --ci | --time=SECONDS] [TARGET...]
#     default 60 s per target; --quick 10 s; --ci 4 s (the CI's brief run).
# Each run starts from the committed seed corpus fuzz/corpus/TARGET and
# writes what it finds to build-fuzz/corpus/TARGET (never into the tree);
# a crash leaves its input in build-fuzz/artifacts/. Ends with one line
#   N passed, N failed, N skipped
# (one test per target); exits non-zero if a target failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=()
for a in "$@"; do
  case $a in
    --quick) seconds=10 ;;
    --ci) seconds=4 ;;
    --time=*) seconds=${a#--time=} ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $a" >&2; exit 2 ;;
    *) targets+=("$a") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(settings maps escape log handover fdinfo)

# clang-14 and libclang-rt-14-dev (libFuzzer), as the other scripts install
# what they need: on a fresh machine this script alone skipped every target.
scripts/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; echo "fuzz: setup failed" >&2; exit 1; }

# The shim sources each target needs.
declare -A deps=(
  [settings]="shim/settings.cpp shim/escape.cpp"
  [maps]="shim/maps_reader.cpp"
  [escape]="shim/escape.cpp"
  [log]="shim/log.cpp shim/escape.cpp shim/settings.cpp shim/fork_gate.cpp shim/owner_lock.cpp"
  [handover]="shim/hand_over.cpp"
  [fdinfo]="shim/fdinfo_locks.cpp"
)
declare -A libs=([log]="-lunwind -ldl")

B=build-fuzz
mkdir -p "$B/bin" "$B/artifacts"
passed=0 failed=0 skipped=0

CXX=${FUZZ_CXX:-}
if [ -z "$CXX" ]; then
  for c in clang++-14 clang++; do command -v "$c" >/dev/null && { CXX=$c; break; }; done
fi
if [ -z "$CXX" ]; then
  echo "fuzz: SKIP: no clang++ (scripts/setup.sh installs clang-14)" >&2
  echo "0 passed, 0 failed, ${#targets[@]} skipped"
  exit 0
fi
# Can this compiler link a libFuzzer binary at all (libclang-rt-14-dev)?
probe=$B/probe.cpp
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' >"$probe"
if ! "$CXX" -fsanitize=fuzzer "$probe" -o "$B/probe" 2>"$B/probe.err"; then
  echo "fuzz: SKIP: $CXX cannot link with -fsanitize=fuzzer (install libclang-rt-14-dev): $(head -n1 "$B/probe.err")" >&2
  echo "0 passed, 0 failed, ${#targets[@]} skipped"
  exit 0
fi

flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -U_FORTIFY_SOURCE -U_FILE_OFFSET_BITS -Ishim -Ifuzz -Wall -Wno-unused-result)
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in "${targets[@]}"; do
  if [ -z "${deps[$t]:-}" ]; then
    echo "fuzz: $t: FAIL: no such target (settings maps escape log handover fdinfo)" >&2
    failed=$((failed + 1))
    continue
  fi
  bin=$B/bin/fuzz_$t
  # shellcheck disable=SC2086  # word lists
  if ! "$CXX" "${flags[@]}" "fuzz/fuzz_$t.cpp" ${deps[$t]} ${libs[$t]:-} -o "$bin" 2>"$B/$t.build.log"; then
    echo "fuzz: $t: FAIL: does not build:" >&2
    cat "$B/$t.build.log" >&2
    failed=$((failed + 1))
    continue
  fi
  mkdir -p "$B/corpus/$t" "fuzz/corpus/$t"
  log=$B/$t.log
  echo "fuzz: $t: ${seconds}s from fuzz/corpus/$t ($(ls fuzz/corpus/$t | wc -l) seeds)"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/$t-" "$B/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  st=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  if [ "$st" -eq 0 ]; then
    echo "fuzz: $t: ok, ${runs:-?} runs, corpus $(ls "$B/corpus/$t" | wc -l) files"
    passed=$((passed + 1))
  else
    echo "fuzz: $t: FAIL (exit $st) after ${runs:-?} runs:" >&2
    grep -E "FUZZ CHECK FAILED|ERROR: |runtime error|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -n 20 >&2
    echo "fuzz: $t: reproduce with: $bin $(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n1)" >&2
    failed=$((failed + 1))
  fi
done
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
