#!/usr/bin/env bash
# Runs every benchmark of issue 4 and prints the ratios (docs/performance.md
# says what each one measures and why).
#
#   scripts/bench.sh           the full run, a few minutes on 2 cores: prints the
#                              summary, writes the tables of docs/performance.md
#                              and the plot docs/scan-cost.png
#   scripts/bench.sh --quick   everything once, briefly (well under a minute),
#                              to prove the benchmarks work: asserts no time and
#                              leaves docs/ alone (CI may call it as a smoke test)
#   TG_BENCH_BASELINE=DIR scripts/bench.sh [--quick]
#                              also runs the shim and command of another build
#                              directory DIR (the code before a change) in the
#                              same rounds: before/after, for a commit message.
#                              Leaves docs/ alone.
#
# Every figure is a ratio against a baseline measured in the same run,
# paired or interleaved with it where the tool allows (tg_bench_open: the
# median of per-pair ratios, A and B alternated in short slices). Raw results go to
# $TG_BUILD/bench-results (or bench-results-quick); TG_BUILD defaults to build.
# Installs what it needs from Debian (strace, valgrind, gnuplot-nox, python3),
# idempotently, as root or through sudo; the build itself needs none of them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$SECONDS

QUICK=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $a (try --help)" >&2; exit 2 ;;
  esac
done

BUILD=${TG_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

if [ "$QUICK" = 1 ]; then
  GB_MIN=0.005 GB_MIN_DISK=0.005 GB_REPS=1 SLEEPERS=10,100,1000 TREE_DIRS=10 TREE_PER_DIR=20 RUNS=1 WARM=0
  M4_RUNS=1 M4_WARM=0 DEPLOY_N=20 DEPLOY_RUNS=1 EXEC_N=20 STRACE_N=10 CG_N=20 ALLOC_N=100 MEM_SAMPLES=1
  OUT=$BUILD/bench-results-quick
else
  GB_MIN=0.1 GB_MIN_DISK=0.02 GB_REPS=7 SLEEPERS=10,100,1000 TREE_DIRS=50 TREE_PER_DIR=100 RUNS=10 WARM=1
  M4_RUNS=30 M4_WARM=3 DEPLOY_N=200 DEPLOY_RUNS=7 EXEC_N=300 STRACE_N=100 CG_N=1000 ALLOC_N=10000 MEM_SAMPLES=9
  OUT=$BUILD/bench-results
fi
TREE_N=$((TREE_DIRS * TREE_PER_DIR))
BASE=${TG_BENCH_BASELINE:-}
if [ -n "$BASE" ]; then
  BASE=$(cd "$BASE" && pwd)
  for f in "$BASE/shim/libtruncguard.so" "$BASE/shim/truncguard"; do
    [ -e "$f" ] || { echo "bench: TG_BENCH_BASELINE: no $f" >&2; exit 2; }
  done
  OUT=$OUT-vs-baseline
fi

say() { printf '\n== %s  [%ds]\n' "$*" $((SECONDS - START)); }

# ------------------------------------------------------------------ tools

scripts/setup.sh
need=()
command -v strace >/dev/null || need+=(strace)
command -v valgrind >/dev/null || need+=(valgrind)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    if [ "$QUICK" = 1 ]; then
      echo "bench: could not install ${need[*]}; the parts that need them are skipped" >&2
    else
      echo "bench: could not install ${need[*]}" >&2
      exit 1
    fi
  fi
fi
have() { command -v "$1" >/dev/null; }
have python3 || { echo "bench: python3 is needed for the report" >&2; exit 1; }

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
meson compile -C "$BUILD" >/dev/null

SHIM=$BUILD/shim/libtruncguard.so
TG=$BUILD/shim/truncguard
BB=$BUILD/bench
VICTIM=$BUILD/tests/victim/victim
LIB_V1=$BUILD/tests/victim/libvictim_v1.so
LIB_V2=$BUILD/tests/victim/libvictim_v2.so
for f in "$SHIM" "$TG" "$BB/tg_bench_open" "$BB/tg_bench_scan" "$BB/tg_open_loop" "$BB/libtg_alloc_count.so" \
         "$BB/tg_bare_replace" "$BB/tg_mapper" "$BB/tg_abtime" "$BB/tg_syscall_loop" "$VICTIM" "$LIB_V1" "$LIB_V2"; do
  [ -e "$f" ] || { echo "bench: $f was not built" >&2; exit 1; }
done

# ------------------------------------------------------------------ places, cleanup

rm -rf "$OUT"
mkdir -p "$OUT"
DISK=$(mktemp -d "${TMPDIR:-/tmp}/tg-bench.XXXXXX")
MEM=
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ] && [ -w /dev/shm ]; then
  MEM=$(mktemp -d /dev/shm/tg-bench.XXXXXX)
fi
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DISK" ${MEM:+"$MEM"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unset LD_PRELOAD TRUNCGUARD_SCOPE TRUNCGUARD_MODE TRUNCGUARD_ON_FAIL TRUNCGUARD_DEBUG TRUNCGUARD_LOG
export LC_ALL=C
# The shim's log lines (one per protected file) go to files, not the terminal.
export TRUNCGUARD_LOG=$DISK/shimlog
VAL=$OUT/validation.txt
: > "$VAL"
check() {  # check DESCRIPTION COMMAND...: a benchmark that measured the wrong thing is not a number
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what" >> "$VAL"
  else
    echo "bench: setup check failed: $what" >&2
    echo "FAILED: $what" >> "$VAL"
    exit 1
  fi
}

# tg_bench_scan's sleepers, by the argv[0] it gives them (another program's
# sleep started meanwhile failed the check when every sleep was counted).
count_sleepers() { pgrep -c -f '^tg-bench-sleeper ' || true; }

{
  echo "cpus=$(nproc)"
  echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "kernel=$(uname -sr)"
  echo "glibc=$(ldd --version | head -1 | sed 's/^ldd //')"
  echo "compiler=$(c++ --version | head -1)"
  echo "buildtype=$(meson introspect --buildoptions "$BUILD" 2>/dev/null | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null || echo '?')"
  echo "disk_dir=${DISK%/*}"
  echo "disk_fs=$(findmnt -n -o FSTYPE --target "$DISK" 2>/dev/null || stat -f -c %T "$DISK") ($(findmnt -n -o OPTIONS --target "$DISK" 2>/dev/null | cut -d, -f1-2))"
  echo "mem_dir=${MEM%/*}"
  echo "mem_fs=$([ -n "$MEM" ] && stat -f -c %T "$MEM" || echo none)"
  echo "pids=$(ls /proc | grep -c '^[0-9]')"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=${TG_BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- shim 2>/dev/null || echo ' + uncommitted changes in shim/')}"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command=scripts/bench.sh$([ "$QUICK" = 1 ] && echo ' --quick')"
  echo "tree_files=$TREE_N"
  echo "exec_n=$EXEC_N"
  echo "deploy_n=$DEPLOY_N"
  echo "baseline=$BASE"
} > "$OUT/machine.txt"

GB_FLAGS=(--benchmark_min_time="$GB_MIN" --benchmark_repetitions="$GB_REPS" --benchmark_out_format=json)
[ "$GB_REPS" -gt 1 ] && GB_FLAGS+=(--benchmark_enable_random_interleaving=true)

# ------------------------------------------------------------------ 1, 2: open() in process

say "1, 2. open() with and without the shim, in one process (Google Benchmark)"
run_open() {  # NAME DIR PRELOAD [FLAGS...]
  local name=$1 dir=$2 preload=$3
  shift 3
  mkdir -p "$dir"
  echo "   $name: files in $dir, preload ${preload:-none}"
  TG_BENCH_DIR=$dir LD_PRELOAD=$preload "$BB/tg_bench_open" "${GB_FLAGS[@]}" "$@" \
    --benchmark_out="$OUT/open_$name.json" > "$OUT/open_$name.txt" 2>&1
}
if [ -n "$MEM" ]; then
  run_open tmpfs "$MEM/open" "$SHIM"
  run_open control "$MEM/open" ""
fi
# On a disk filesystem an O_TRUNC open waits for the writeback that the
# previous close started (ext4's auto_da_alloc): iterations are slow, so this
# run is shorter and leaves out the rows that the report takes from tmpfs.
[ -n "$BASE" ] && [ -n "$MEM" ] && run_open tmpfs_baseline "$MEM/open" "$BASE/shim/libtruncguard.so"
run_open disk "$DISK/open" "$SHIM" --benchmark_min_time="$GB_MIN_DISK" \
  --benchmark_filter='passthrough|trunc_text|trunc_et_rel|trunc_new' 

# ------------------------------------------------------------------ system calls and instructions

SC=$DISK/sc
mkdir -p "$SC"
printf '%0200d\n' 0 > "$SC/notes.txt"
cp "$BB/tg_open_loop.p/open_loop.c.o" "$SC/module.o"
cp "$LIB_V1" "$SC/libunmapped.so"
cp "$LIB_V1" "$SC/libmapped.so"
loop_args() {  # MODE -> tg_open_loop's mode and file
  case $1 in
    rdonly|append|inplace|inplace_rdwr) echo "$1 $SC/notes.txt" ;;
    trunc_text) echo "trunc $SC/notes.txt" ;;
    trunc_et_rel) echo "trunc $SC/module.o" ;;
    trunc_et_dyn_unmapped) echo "trunc $SC/libunmapped.so" ;;
    new) echo "new $SC/new.txt" ;;
    mapped) echo "mapped $SC/libmapped.so" ;;
    fopen_w) echo "fopen_w $SC/notes.txt" ;;
  esac
}

if have strace; then
  say "2. system calls per operation (strace, $STRACE_N operations between two markers)"
  : > "$OUT/syscalls.tsv"
  for mode in rdonly append inplace inplace_rdwr trunc_text trunc_et_rel trunc_et_dyn_unmapped new mapped; do
    read -r lm file <<< "$(loop_args $mode)"
    n=$STRACE_N
    [ "$mode" = mapped ] && n=$(( STRACE_N / 10 > 0 ? STRACE_N / 10 : 1 ))
    for variant in plain shim; do
      env_args=()
      [ $variant = shim ] && env_args=(-E "LD_PRELOAD=$SHIM")
      strace "${env_args[@]}" -o "$OUT/strace.$mode.$variant" "$BB/tg_open_loop" "$lm" "$n" "$file" > /dev/null
      awk -v mode="$mode" -v variant="$variant" -v n="$n" '
        /getppid\(/ { marks++; next }
        marks == 1 { name = $0; sub(/\(.*/, "", name); sub(/^[0-9]+ +/, "", name); c[name]++ }
        END { for (k in c) printf "%s\t%s\t%s\t%g\n", mode, variant, k, c[k] / n }' \
        "$OUT/strace.$mode.$variant" >> "$OUT/syscalls.tsv"
    done
    printf '   %-22s %s\n' "$mode" "$(awk -F'\t' -v m="$mode" '$1==m { t[$2] += $4 } END { printf "plain %g, shim %g calls per op", t["plain"], t["shim"] }' "$OUT/syscalls.tsv")"
  done
else
  echo "   (strace missing: skipped)"
fi

if have valgrind; then
  say "instructions per operation in user space (callgrind, $CG_N operations)"
  : > "$OUT/callgrind.tsv"
  for mode in rdonly append inplace inplace_rdwr trunc_text new; do
    read -r lm file <<< "$(loop_args $mode)"
    for variant in plain shim; do
      pre=
      [ $variant = shim ] && pre=$SHIM
      LD_PRELOAD=$pre valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$mode.$variant" \
        --toggle-collect=run_loop "$BB/tg_open_loop" "$lm" "$CG_N" "$file" > /dev/null 2> "$OUT/callgrind.$mode.$variant.log"
      ir=$(sed -n 's/^totals: //p' "$OUT/callgrind.$mode.$variant" | awk '{print $1}')
      printf '%s\t%s\t%s\t%s\n' "$mode" "$variant" "$CG_N" "$ir" >> "$OUT/callgrind.tsv"
    done
    printf '   %-22s %s\n' "$mode" "$(awk -F'\t' -v m="$mode" '$1==m { t[$2] = $4 / $3 } END { printf "plain %.0f, shim %.0f instructions per op", t["plain"], t["shim"] }' "$OUT/callgrind.tsv")"
  done
  # syscall() of numbers the shim passes on (gettid, futex, getrandom): its
  # wrapper's switch. Counted over the whole of main (a few prints besides).
  n=$(( CG_N * 10 ))
  for variant in plain shim; do
    pre=
    [ $variant = shim ] && pre=$SHIM
    LD_PRELOAD=$pre valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.syscall.$variant" \
      --toggle-collect=main "$BB/tg_syscall_loop" "$n" > /dev/null 2> "$OUT/callgrind.syscall.$variant.log"
    ir=$(sed -n 's/^totals: //p' "$OUT/callgrind.syscall.$variant" | awk '{print $1}')
    printf '%s\t%s\t%s\t%s\n' syscall "$variant" "$(( 3 * n ))" "$ir" >> "$OUT/callgrind.tsv"
  done
  printf '   %-22s %s\n' "syscall()" "$(awk -F'\t' '$1=="syscall" { t[$2] = $4 / $3 } END { printf "plain %.0f, shim %.0f instructions per call", t["plain"], t["shim"] }' "$OUT/callgrind.tsv")"
  callgrind_annotate --auto=yes "$OUT/callgrind.trunc_text.shim" > "$OUT/callgrind.trunc_text.shim.annotated.txt" 2>/dev/null || true
else
  echo "   (valgrind missing: skipped)"
fi

# ------------------------------------------------------------------ 3: whole processes

say "3. whole processes: cp -r of $TREE_N files, a bash loop of $TREE_N redirections, $EXEC_N execs"
make_tree() {  # DIR
  local d f
  mkdir -p "$1/src" "$1/sh"
  for ((d = 0; d < TREE_DIRS; d++)); do
    mkdir -p "$1/src/d$d"
    for ((f = 0; f < TREE_PER_DIR; f++)); do
      printf 'file %d/%d: %0150d\n' "$d" "$f" 0 > "$1/src/d$d/f$f.txt"
    done
  done
  cp -r "$1/src" "$1/dst"
  bash -c "for ((i = 0; i < $TREE_N; i++)); do echo \$i > '$1/sh/f'\$i; done"
}
BASH_LOOP='for ((i = 0; i < '$TREE_N'; i++)); do echo $i > sh/f$i; done'
whole() {  # TAG DIR [extra variants...]
  local tag=$1 dir=$2
  shift 2
  make_tree "$dir"
  echo "   $tag ($dir):"
  (cd "$dir" && "$BB/tg_abtime" -r "$RUNS" -w "$WARM" -o "$OUT/samples.tsv" -t "$tag" \
    -n cp_plain -- cp -r src/. dst/ \; \
    -n cp_truncguard -- "$TG" cp -r src/. dst/ \; \
    -n bash_plain -- bash -c "$BASH_LOOP" \; \
    -n bash_truncguard -- "$TG" bash -c "$BASH_LOOP" \; "$@") | sed 's/^/     /'
}
BASE_WHOLE=()
[ -n "$BASE" ] && BASE_WHOLE=(-n cp_baseline -- "$BASE/shim/truncguard" cp -r src/. dst/ \;
                              -n bash_baseline -- "$BASE/shim/truncguard" bash -c "$BASH_LOOP" \;)
whole disk "$DISK/tree" "${BASE_WHOLE[@]}"
[ -n "$MEM" ] && whole tmpfs "$MEM/tree" "${BASE_WHOLE[@]}"
# The header read of a file modified since it was last read updates its atime
# (relatime): the same cp, with every destination file read before each run.
READ_ALL='find dst -type f -exec cat {} + > /dev/null'
echo "   atime ($DISK/tree, every destination file read before each run):"
(cd "$DISK/tree" && "$BB/tg_abtime" -r "$(( RUNS > 6 ? 6 : RUNS ))" -w "$WARM" -o "$OUT/samples.tsv" -t atime \
  -n cp_plain_readfirst -p "$READ_ALL" -- cp -r src/. dst/ \; \
  -n cp_truncguard_readfirst -p "$READ_ALL" -- "$TG" cp -r src/. dst/ \;) | sed 's/^/     /'
echo "   start-up of one process:"
UNWIND=$(ldd "$SHIM" | awk '/libunwind/ { print $3 }')
"$BB/tg_abtime" -r "$M4_RUNS" -w "$M4_WARM" -o "$OUT/samples.tsv" -t startup \
  -n true -- /bin/true \; \
  -n preload_true -e "LD_PRELOAD=$SHIM" -- /bin/true \; \
  ${UNWIND:+-n preload_libunwind_true -e "LD_PRELOAD=$UNWIND" -- /bin/true \;} \
  -n truncguard_true -- "$TG" /bin/true \; | sed 's/^/     /'
echo "   exec:"
EXEC_LOOP='for ((i = 0; i < '$EXEC_N'; i++)); do /bin/true; done'
"$BB/tg_abtime" -r "$RUNS" -w "$WARM" -o "$OUT/samples.tsv" -t exec \
  -n exec_plain -- bash -c "$EXEC_LOOP" \; \
  -n exec_truncguard -- "$TG" bash -c "$EXEC_LOOP" \; | sed 's/^/     /'
check "bash's redirection over an existing text file goes through the guard and passes as not ELF" \
  bash -c "cd '$DISK/tree' && env -u TRUNCGUARD_LOG TRUNCGUARD_DEBUG=decisions '$TG' bash -c 'echo x > sh/f1' 2>&1 | grep -q 'not an ELF'"

# ------------------------------------------------------------------ 4: a mapped library

say "4. replacing a library that a running victim maps"
M4=$DISK/mapped
mkdir -p "$M4"
cp "$LIB_V1" "$M4/keep.so"
ln "$M4/keep.so" "$M4/lib.so"
"$VICTIM" "$M4/keep.so" 600000 "$M4/ready" > "$M4/victim.out" 2>&1 &
VPID=$!
PIDS+=("$VPID")
for ((i = 0; i < 200; i++)); do [ -e "$M4/ready" ] && break; sleep 0.05; done
check "the victim maps the library" test -e "$M4/ready"
# Before each run, lib.so is made the victim's inode again (a hard link to
# keep.so, which the victim loaded): every run replaces a mapped file.
RELINK="ln -f '$M4/keep.so' '$M4/lib.so'"
"$BB/tg_abtime" -r "$M4_RUNS" -w "$M4_WARM" -o "$OUT/samples.tsv" -t mapped \
  -n bare -p "$RELINK" -- "$BB/tg_bare_replace" "$LIB_V2" "$M4/lib.so" \; \
  -n install -p "$RELINK" -- install "$LIB_V2" "$M4/lib.so" \; \
  -n cp_remove_destination -p "$RELINK" -- cp --remove-destination "$LIB_V2" "$M4/lib.so" \; \
  -n truncguard_cp -p "$RELINK" -- "$TG" cp "$LIB_V2" "$M4/lib.so" \; \
  -n preload_cp -p "$RELINK" -e "LD_PRELOAD=$SHIM" -- cp "$LIB_V2" "$M4/lib.so" \; \
  -n truncguard_elf_cp -p "$RELINK" -- "$TG" --scope=elf cp "$LIB_V2" "$M4/lib.so" \; \
  ${BASE:+-n truncguard_cp_baseline -p "$RELINK" -- "$BASE/shim/truncguard" cp "$LIB_V2" "$M4/lib.so" \;} \
  | sed 's/^/   /'
ln -f "$M4/keep.so" "$M4/lib.so"
check "truncguard cp replaces the mapped library (scan found the victim)" \
  bash -c "env -u TRUNCGUARD_LOG '$TG' cp '$LIB_V2' '$M4/lib.so' 2>&1 | grep -q 'mapped executable by pid $VPID'"
rm -f "$M4/ready"
wait "$VPID" && vstatus=0 || vstatus=$?
PIDS=()
check "the victim survived every replacement (exit $vstatus: $(tail -1 "$M4/victim.out"))" \
  grep -q 'released, still version 1' "$M4/victim.out"

# ------------------------------------------------------------------ 5: the scan

say "5. who maps this file: the /proc scan against $SLEEPERS sleeping processes"
before=$(count_sleepers)
TG_BENCH_SLEEPERS=$SLEEPERS "$BB/tg_bench_scan" --benchmark_min_time="$GB_MIN" \
  --benchmark_repetitions="$([ "$QUICK" = 1 ] && echo 1 || echo 3)" --benchmark_out_format=json \
  --benchmark_out="$OUT/scan.json" > "$OUT/scan.txt" 2>&1
awk '/^(lease_proof|scan_processes|snapshot_take|snapshot_lookup)\// && ($1 ~ /_median$/ || $1 !~ /_(mean|median|stddev|cv)$/ && !seen[$1]++)' \
  "$OUT/scan.txt" | awk '{ k = $1; sub(/_median$/, "", k); if (!done[k]++) print "   " $0 }' | grep -v '_(mean|stddev|cv)' || true
check "the benchmark's sleepers are gone ($(count_sleepers) left, $before before)" \
  test "$(count_sleepers)" -le "$before"

say "5. a deploy that replaces $DEPLOY_N libraries, each mapped by its own sleeping process"
D=$DISK/deploy
mkdir -p "$D/keep" "$D/src" "$D/unmapped"
for ((i = 0; i < DEPLOY_N; i++)); do
  cp "$LIB_V1" "$D/keep/lib$i.so"
  cp "$LIB_V2" "$D/src/lib$i.so"
  cp "$LIB_V1" "$D/unmapped/lib$i.so"
done
cp -al "$D/keep" "$D/dst"
for ((i = 0; i < DEPLOY_N; i++)); do
  "$BB/tg_mapper" 900 "$D/ready.$i" "$D/keep/lib$i.so" &
  PIDS+=($!)
done
for ((i = 0; i < DEPLOY_N; i++)); do
  for ((t = 0; t < 400; t++)); do [ -e "$D/ready.$i" ] && break; sleep 0.02; done
  [ -e "$D/ready.$i" ] || { echo "bench: mapper $i did not start" >&2; exit 1; }
done
echo "deploy_pids=$(ls /proc | grep -c '^[0-9]')" >> "$OUT/machine.txt"
RELINK_ALL="cp -al --remove-destination '$D/keep/.' '$D/dst/'"
(cd "$D" && "$BB/tg_abtime" -r "$DEPLOY_RUNS" -w "$WARM" -o "$OUT/samples.tsv" -t deploy \
  -n cp_remove_destination -p "$RELINK_ALL" -- cp -r --remove-destination src/. dst/ \; \
  -n truncguard_cp -p "$RELINK_ALL" -- "$TG" cp -r src/. dst/ \; \
  -n truncguard_elf_cp -p "$RELINK_ALL" -- "$TG" --scope=elf cp -r src/. dst/ \; \
  -n cp_unmapped -- cp -r src/. unmapped/ \; \
  -n truncguard_cp_unmapped -- "$TG" cp -r src/. unmapped/ \; \
  ${BASE:+-n truncguard_cp_baseline -p "$RELINK_ALL" -- "$BASE/shim/truncguard" cp -r src/. dst/ \;}) \
  | sed 's/^/   /'
eval "$RELINK_ALL"
replaced=$(cd "$D" && env -u TRUNCGUARD_LOG "$TG" cp -r src/. dst/ 2>&1 | grep -c '^ *[0-9]*:.replaced' || true)
check "truncguard cp -r replaced all $DEPLOY_N mapped libraries ($replaced log lines)" test "$replaced" -eq "$DEPLOY_N"
alive=0
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "all $DEPLOY_N mappers are alive after the deploys" test "$alive" -eq "$DEPLOY_N"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()

# ------------------------------------------------------------------ 6: memory

say "6. memory: resident cost, allocations"
: > "$OUT/memory.tsv"
rollup() {  # PID -> "rss pss uss shim_rss" in KiB
  awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {u+=$2} END {printf "%d\t%d\t%d", r, p, u}' "/proc/$1/smaps_rollup"
  awk '/^[0-9a-f]+-[0-9a-f]+ / { own = ($6 ~ /libtruncguard|libunwind|liblzma/) } own && /^Rss:/ { s += $2 } END { printf "\t%d\n", s }' "/proc/$1/smaps"
}
for ((k = 0; k < MEM_SAMPLES; k++)); do
  for variant in plain shim; do
    pre=
    [ $variant = shim ] && pre=$SHIM
    LD_PRELOAD=$pre sleep 30 &
    sp=$!
    for ((t = 0; t < 100; t++)); do
      [ "$(readlink "/proc/$sp/exe" 2>/dev/null)" = "$(readlink -f "$(command -v sleep)")" ] && break
      sleep 0.01
    done
    sleep 0.1
    printf 'sleep\t%s\t%s\n' "$variant" "$(rollup "$sp")" >> "$OUT/memory.tsv"
    kill "$sp"
    wait "$sp" 2>/dev/null || true
  done
done
for ((k = 0; k < MEM_SAMPLES; k++)); do
  for variant in plain shim; do
    pre=
    [ $variant = shim ] && pre=$SHIM
    line=$(LD_PRELOAD=$pre "$BB/tg_open_loop" trunc 1000 "$SC/notes.txt" --mem)
    rss=$(sed 's/.* rss_kb=\([0-9]*\).*/\1/' <<< "$line")
    pss=$(sed 's/.* pss_kb=\([0-9]*\).*/\1/' <<< "$line")
    uss=$(sed 's/.* uss_kb=\([0-9]*\).*/\1/' <<< "$line")
    own=$(sed 's/.*shim_rss_kb=\([0-9]*\).*/\1/' <<< "$line")
    printf 'tg_open_loop after 1000 O_TRUNC opens\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$rss" "$pss" "$uss" "$own" >> "$OUT/memory.tsv"
  done
done
awk -F'\t' '{ r[$1 FS $2] += $3; n[$1 FS $2]++ } END { for (k in r) printf "   %-45s Rss %6.0f KiB\n", k, r[k] / n[k] }' "$OUT/memory.tsv" | sort

: > "$OUT/allocs.tsv"
for mode in rdonly append inplace inplace_rdwr trunc_text trunc_et_rel trunc_et_dyn_unmapped new mapped fopen_w; do
  read -r lm file <<< "$(loop_args $mode)"
  n=$ALLOC_N
  [ "$mode" = mapped ] && n=$(( ALLOC_N / 100 > 0 ? ALLOC_N / 100 : 1 ))
  for variant in plain shim; do
    pre=$BB/libtg_alloc_count.so
    [ $variant = shim ] && pre="$pre $SHIM"
    line=$(LD_PRELOAD=$pre "$BB/tg_open_loop" "$lm" "$n" "$file")
    first=$(sed 's/.*first_allocs=\([-0-9]*\).*/\1/' <<< "$line")
    allocs=$(sed 's/.* allocs=\([-0-9]*\).*/\1/' <<< "$line")
    frees=$(sed 's/.*frees=\([-0-9]*\).*/\1/' <<< "$line")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$variant" "$n" "$first" "$allocs" "$frees" >> "$OUT/allocs.tsv"
  done
done
awk -F'\t' '$2 == "shim" { printf "   %-22s %6s calls: %s allocations (first call: %s)\n", $1, $3, $5, $4 }' "$OUT/allocs.tsv"
check "the counting allocator counts (fopen_w: 2 allocations per call)" \
  awk -F'\t' '$1 == "fopen_w" && $5 != 2 * $3 { bad = 1 } END { exit bad }' "$OUT/allocs.tsv"

# ------------------------------------------------------------------ report

echo "duration=$((SECONDS - START))" >> "$OUT/machine.txt"
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
say "summary (ratios against baselines of the same run; medians)"
DOCS=()
[ "$QUICK" = 0 ] && [ -z "$BASE" ] && DOCS=(--docs docs/performance.md)
python3 bench/report.py "$OUT" "${DOCS[@]}"
[ "$QUICK" = 1 ] && echo "(quick mode: one short run of each, to prove they work; these are not measurements)"

PNG=$OUT/scan-cost.png
[ "$QUICK" = 0 ] && [ -z "$BASE" ] && PNG=docs/scan-cost.png
if have gnuplot; then
  gnuplot -e "datafile='$OUT/scan.dat'; outfile='$PNG'; subtitle='$(sed -n 's/^kernel=//p' "$OUT/machine.txt"), $(nproc) CPUs, commit $(sed -n 's/^commit=//p' "$OUT/machine.txt"), load average $(sed -n 's/^load_start=\([^ ]*\).*/\1/p' "$OUT/machine.txt") at the start'" bench/scan-cost.gp
  echo "plot: $PNG"
else
  echo "(gnuplot missing: no plot)"
fi
echo "raw results: $OUT ($((SECONDS - START)) s)"
