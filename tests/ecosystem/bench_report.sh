#!/bin/bash
# bench/report.py and a benchmark that reported an error (Google Benchmark's
# SkipWithError: "error_occurred" in its JSON). Its figure was taken from the
# repetitions that worked, or, where none did, its summary row was left out
# without a word, and the run passed (docs/performance.md rewritten): a
# figure short, or one of fewer repetitions than it says. It is n/a, the
# error is named, and report.py fails without touching the docs.
. "$(dirname "$0")/../e2e/lib.sh"
SRC=${TG_SOURCE_ROOT:-$(cd "$_tg_here/../.." && pwd)}
command -v python3 >/dev/null || skip "no python3"

# One paired benchmark's repetition, as tg_bench_open writes it.
rep() {  # NAME INDEX RATIO [ERROR]
  local err=""
  [ -z "${4:-}" ] || err="\"error_occurred\": true, \"error_message\": \"$4\","
  printf '{"name": "%s/manual_time", "run_name": "%s/manual_time", "run_type": "iteration", "repetitions": 2,
    "repetition_index": %s, "threads": 1, "iterations": 100, %s "real_time": 5000.0, "cpu_time": 5000.0,
    "time_unit": "ns", "a_us": 1.0, "b_us": %s, "pairs": 100.0, "ratio": %s}' "$1" "$1" "$2" "$err" "$3" "$3"
}
mkdir -p "$T/res" || fail "setup"
{
  echo '{"context": {}, "benchmarks": ['
  rep passthrough_rdonly/libc_vs_interposed 0 1.01; echo ,
  rep passthrough_rdonly/libc_vs_interposed 1 1.01; echo ,
  # The second repetition failed (its pairs before the error still counted).
  rep trunc_text/libc_vs_interposed 0 1.10; echo ,
  rep trunc_text/libc_vs_interposed 1 0.50 "open failed"; echo ,
  # Every repetition failed.
  rep trunc_et_rel/libc_vs_interposed 0 1.20 "open failed"; echo ,
  rep trunc_et_rel/libc_vs_interposed 1 1.20 "open failed"
  echo ']}'
} >"$T/res/open_tmpfs.json"
printf 'before\n<!-- bench:summary -->\nold\n<!-- /bench:summary -->\n' >"$T/perf.md"
cp "$T/perf.md" "$T/perf.orig"

out=$(python3 "$SRC/bench/report.py" "$T/res" --docs "$T/perf.md" 2>"$T/err")
st=$?
[ "$st" -ne 0 ] || fail "report.py passed with benchmarks that errored: $out"
grep -qF "trunc_text/libc_vs_interposed: open failed" "$T/err" || fail "the error is not named: $(cat "$T/err")"
grep -qF "trunc_et_rel/libc_vs_interposed: open failed" "$T/err" || fail "the error is not named: $(cat "$T/err")"
cmp -s "$T/perf.md" "$T/perf.orig" || fail "the docs were rewritten from a run with errors: $(cat "$T/perf.md")"
ok "report.py fails, names the errors, leaves the docs alone"

# Control: the benchmark that worked has its figure.
grep -E "^1\. pass-through open\(O_RDONLY\) \+ close, tmpfs +< \+2\.0% +\+1\.0% +met$" <<<"$out" >/dev/null ||
  fail "the figure of the benchmark that worked: $out"
for what in "text file" "ET_REL object"; do
  line=$(grep -F "2. open(O_WRONLY\\|O_TRUNC), $what (open only), tmpfs" <<<"$out") ||
    fail "no summary row for the $what benchmark, which errored: $out"
  grep -qE " n/a +n/a$" <<<"$line" || fail "the $what benchmark errored, its figure is not n/a: $line"
  grep -qF "O_TRUNC), $what (open only) | n/a |" "$T/res/tables.md" ||
    fail "the $what benchmark errored, its cell in the open table is not n/a: $(grep -F "$what" "$T/res/tables.md")"
done
ok "a benchmark that errored (in one repetition or all) reads n/a, in the summary and the table"
