#!/bin/bash
# Writers whose threads have small stacks: coroutines (boost.context, libco,
# Lua/C), servers that start threads with 16-64 KiB stacks (PTHREAD_STACK_MIN
# is 16 KiB). A cp-like write from such a thread works without truncguard,
# and must work with it: the shim runs on the writer's own stack. (Before:
# protecting a library in use took ~40 KiB of it, and a 32 KiB thread died
# of SIGSEGV inside the shim.)
#
# For each path (stack_probe.c runs one operation on a stack of exactly N
# bytes, a guard below it, so an overflow is a clean SIGSEGV):
#  1. the smallest coroutine stack that works, without and with truncguard,
#     measured here: the shim may add at most 8 KiB (1 KiB where it only
#     looks: the pass-through path and a file that is not ELF);
#  2. a thread with 16 KiB more stack than the same operation needs without
#     truncguard (measured here, on threads): no crash, the same result as
#     without truncguard; where a victim runs the library, it survives and
#     its control (the same write without truncguard) kills it.
# Under ASan (frames several times larger, by design) step 1 is skipped and
# step 2 runs on a thread of 8 MiB: the results and the victims still count.
. "$(dirname "$0")/rlib.sh"
need_victims
need_shim
: "${TG_STACK_PROBE:=$TG_BUILD/tests/reliability/stack_probe}"
[ -x "$TG_STACK_PROBE" ] || fail "helper program not built: $TG_STACK_PROBE"
ulimit -c 0  # too small a stack crashes, by design

asan=
if readelf -dW "$TG_SHIM" 2>/dev/null | grep -q 'NEEDED.*libasan'; then
  asan=1
  note "ASan build: its frames are several times larger by design; the stack sizes are not checked," \
       "the paths run on a thread of 8 MiB (results and victims are)"
fi

TEXT=$T/text.src  # a text file, longer than an ELF header: it is opened and read
for ((i = 0; i < 128; i++)); do echo "line $i of a configuration file that is not code"; done >"$TEXT"

# The operation of the current case: its environment, a wrapper (a seccomp
# filter), the probe's options and operation, the file.
C_ENV=()
C_WRAP=()
C_ARGS=()

# run plain|shim PROBE-ARGS...: the probe, as the case says, without or with truncguard.
run() {
  local how=$1
  shift
  if [ "$how" = shim ]; then
    env "${C_ENV[@]}" "${C_WRAP[@]}" "$TG_CMD" "$TG_STACK_PROBE" "$@"
  else
    env "${C_ENV[@]}" "${C_WRAP[@]}" "$TG_STACK_PROBE" "$@"
  fi
}

# min_stack plain|shim [--thread]: the smallest stack the case's operation works on
# ("<=N" for a thread that works at the smallest stack a thread may have).
min_stack() {
  local how=$1 out
  shift
  out=$(run "$how" --min "$@" "${C_ARGS[@]}" 2>>"$T/probe.err" | tail -n1)
  case $out in
    "min=none"*) fail "$C_NAME ($how): it does not work even on 1 MiB of stack: $out" ;;
    min=*) echo "${out#min=}" ;;
    *) fail "$C_NAME ($how): the probe said \"$out\": $(tail -n3 "$T/probe.err")" ;;
  esac
}

# field NAME FACTS: the value of NAME=... in a line of facts.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# stack_case NAME EXTRA-BUDGET EXPECT [VAR=VALUE...] [deny SPEC] -- PROBE-OPTIONS... OP FILE
# EXPECT: "same" (nothing to protect: the very facts of the write without
# truncguard), "content" (the same result and content; whether the name keeps
# its inode is the shim's choice, which depends on what it may inspect here:
# lease_proof tests it), "victim" (a victim runs FILE: it survives, FILE is a
# new inode with the content the write gave it; without truncguard it dies).
stack_case() {
  C_NAME=$1
  local budget=$2 expect=$3 op file n plain shim base_co shim_co base_th
  shift 3
  C_ENV=()
  C_WRAP=()
  while [ "$1" != -- ]; do
    if [ "$1" = deny ]; then
      C_WRAP=("$TG_RTOOL" deny "$2")
      shift 2
    else
      C_ENV+=("$1")
      shift
    fi
  done
  shift
  C_ARGS=("$@")
  op=${C_ARGS[$((${#C_ARGS[@]} - 2))]}
  file=${C_ARGS[$((${#C_ARGS[@]} - 1))]}
  note "---- $C_NAME"

  if [ -z "$asan" ]; then
    base_co=$(min_stack plain) || exit 1
    shim_co=$(min_stack shim) || exit 1
    local extra=$((shim_co - base_co))
    if [ "$extra" -gt "$budget" ]; then
      fail "$C_NAME: a coroutine needs $shim_co bytes of stack with truncguard, $base_co without: $extra more, the budget is $budget"
    fi
    ok "$C_NAME: a coroutine needs $base_co bytes of stack without truncguard, $shim_co with (+$extra, budget $budget)"
    base_th=$(min_stack plain --thread) || exit 1
    n=$((${base_th#<=} + 16384))
    note "a thread needs ${base_th/<=/at most } bytes without truncguard: the threads below have $n"
  else
    n=$((8 << 20))
  fi

  plain=$(run plain --thread "${C_ARGS[@]:0:$((${#C_ARGS[@]} - 2))}" "$op" "$n" "$file" 2>>"$T/probe.err")
  log_reset
  shim=$(run shim --thread "${C_ARGS[@]:0:$((${#C_ARGS[@]} - 2))}" "$op" "$n" "$file" 2>>"$T/probe.err")
  note "without truncguard: $plain"
  note "with truncguard:    $shim"
  [ "$(field result "$plain")" = ok ] || fail "$C_NAME: control: without truncguard, on $n bytes of stack: $plain"
  [ "$(field result "$shim")" = ok ] ||
    fail "$C_NAME: with truncguard, a thread with $n bytes of stack (16 KiB more than it needs without): $shim"
  [ "$(field content "$shim")" = "$(field content "$plain")" ] ||
    fail "$C_NAME: the file holds \"$(field content "$shim")\" with truncguard, \"$(field content "$plain")\" without"
  case $expect in
    same)
      [ "$(field inode "$shim")" = "$(field inode "$plain")" ] ||
        fail "$C_NAME: inode $(field inode "$shim") with truncguard, $(field inode "$plain") without"
      ok "$C_NAME: from a thread with a $n-byte stack, the same result as without truncguard"
      ;;
    content)
      ok "$C_NAME: from a thread with a $n-byte stack, the same result and content as without truncguard"
      ;;
    victim)
      case $(field victim "$plain") in
        killed:* | changed) ok "$C_NAME: control: without truncguard the victim was $(field victim "$plain")" ;;
        *) fail "$C_NAME: control: without truncguard the victim $(field victim "$plain"), expected it to die" ;;
      esac
      [ "$(field victim "$shim")" = survived ] || fail "$C_NAME: with truncguard the victim $(field victim "$shim")"
      [ "$(field inode "$shim")" = new ] || fail "$C_NAME: with truncguard the name kept its inode"
      expect_log "replaced file=$file [ino " "mapped executable by pid "
      ok "$C_NAME: from a thread with a $n-byte stack, the victim survived: $(log_lines "replaced file=$file" | tail -n1 | cut -f2-)"
      ;;
  esac
}

M=$T/mapped.so
# The pass-through path: nothing to examine.
stack_case "open O_RDONLY (pass-through)" 1024 same -- --fresh="$TEXT" open-rdonly "$T/text"
# Examined, and passed: not ELF.
stack_case "open O_TRUNC of a text file" 1024 same -- --fresh="$TEXT" open-trunc "$T/text"
# An ELF file nobody maps: the lease proves it, and it is truncated in place.
stack_case "open O_TRUNC of a library nobody runs" 8192 content -- --fresh="$V1" --data="$V2" open-trunc "$T/unused.so"
# The full protection: the /proc scan, the new inode, the log line.
stack_case "cp over a library in use" 8192 victim -- \
  --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" open-trunc "$M"
# The same where the maps are read as text (kernels before 6.11, as Debian 12's).
stack_case "cp over a library in use, PROCMAP_QUERY denied" 8192 victim deny ioctl=PROCMAP_QUERY:EPERM -- \
  --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" open-trunc "$M"
# Atomic mode: open, write, and the close that publishes.
stack_case "cp over a library in use, mode atomic" 8192 victim TRUNCGUARD_MODE=atomic -- \
  --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" open-trunc "$M"
expect_log "published file=$M [ino "
ok "and the close published it: $(log_lines "published file=$M" | tail -n1 | cut -f2-)"
# Atomic mode: exec with the file pending, handed over to the new image.
stack_case "exec with a file pending, mode atomic" 8192 victim TRUNCGUARD_MODE=atomic -- \
  --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" exec "$M"
expect_log "published file=$M [ino "
ok "and the new image published it: $(log_lines "published file=$M" | tail -n1 | cut -f2-)"
# ftruncate of an fd opened before the victim mapped the file: the copy-up.
stack_case "ftruncate of a library in use" 8192 victim -- --fresh="$V1" --victim="$TG_VICTIM" ftruncate "$M"
# dlopen and dlclose, watched and logged (category files).
stack_case "dlopen and dlclose, TRUNCGUARD_DEBUG=files" 8192 same TRUNCGUARD_DEBUG=files -- \
  --fresh="$V1" dlopen "$T/plugin.so"
expect_log "file=$T/plugin.so [0];  dlopen by "
expect_log "file=$T/plugin.so [0];  dlclose by "
ok "and both were logged: $(log_lines "file=$T/plugin.so [0];  dlclose by " | tail -n1 | cut -f2-)"
# dlsym, watched and logged (categories bindings and files).
stack_case "dlsym, TRUNCGUARD_DEBUG=bindings,files" 8192 same TRUNCGUARD_DEBUG=bindings,files -- \
  --fresh="$V1" dlsym "$T/plugin.so"
expect_log "binding file $T/plugin.so [0] to $T/plugin.so [0]: normal symbol \`tg_version'"
ok "and logged: $(log_lines "binding file $T/plugin.so [0] to " | tail -n1 | cut -f2-)"

# ---------------------------------------------------- no memory to work in
# The memory a protected write works in is mapped when it happens. Where no
# mapping can be made (RLIMIT_AS reached, ENOMEM), the write fails as any
# write that can't be protected: ETXTBSY and a log line, the victim and the
# file untouched; never a crash. A write that needs no protection needs no
# memory either.
note "---- no memory to work in (RLIMIT_AS at the address space in use)"
n=32768
[ -z "$asan" ] || n=$((8 << 20))
plain=$("$TG_STACK_PROBE" --no-memory --thread --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" open-trunc "$n" "$M" 2>>"$T/probe.err")
case $(field victim "$plain") in
  killed:* | changed) ok "control: without truncguard the write works and the victim was $(field victim "$plain")" ;;
  *) fail "control: without truncguard, no memory: $plain" ;;
esac
log_reset
shim=$("$TG_CMD" "$TG_STACK_PROBE" --no-memory --thread --fresh="$V1" --data="$V2" --victim="$TG_VICTIM" open-trunc "$n" "$M" 2>>"$T/probe.err")
[ "$(field result "$shim")" = error:ETXTBSY ] || fail "no memory: expected the write to fail with ETXTBSY: $shim"
[ "$(field victim "$shim")" = survived ] || fail "no memory: the victim $(field victim "$shim")"
[ "$(field inode "$shim") $(field content "$shim")" = "same old" ] || fail "no memory: the file was changed: $shim"
expect_cannot_protect "$M" "no memory to work in" "Cannot allocate memory"
ok "no memory: the write failed with ETXTBSY, the victim survived, the library is intact"
shim=$("$TG_CMD" "$TG_STACK_PROBE" --no-memory --thread --fresh="$TEXT" open-trunc "$n" "$T/text" 2>>"$T/probe.err")
[ "$(field result "$shim") $(field content "$shim")" = "ok data" ] || fail "no memory: a text file could not be written: $shim"
ok "no memory: a text file is written as usual"
