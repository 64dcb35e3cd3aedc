#!/bin/bash
# The systemd example, as meson installs it (the drop-in names the installed
# library), passes `systemd-analyze verify` together with the example deploy
# unit, without a single warning; and a broken line in the drop-in is
# reported, so the drop-in is really read. systemd-analyze works without a
# running systemd; where it is not installed, that part is skipped (the rest,
# the drop-in's settings run on the unit's command and the system-call list,
# runs).
. "$(dirname "$0")/../e2e/lib.sh"
BUILD=${TG_BUILD_ROOT:-${MESON_BUILD_ROOT:-$TG_BUILD}}
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
DROPIN=$BUILD/man/truncguard.conf     # configured by man/meson.build
[ -f "$DROPIN" ] || fail "no configured drop-in at $DROPIN (meson configure the build)"

if command -v systemd-analyze >/dev/null; then
  units=$T/units
  mkdir -p "$units/app-deploy.service.d"
  cp "$SRC/examples/systemd/app-deploy.service" "$units/"
  cp "$DROPIN" "$units/app-deploy.service.d/truncguard.conf"
  grep -q '^Environment=LD_PRELOAD=/.*/libtruncguard\.so$' "$units/app-deploy.service.d/truncguard.conf" ||
    fail "the drop-in does not set LD_PRELOAD to an absolute libtruncguard.so: $(grep LD_PRELOAD "$DROPIN")"

  verify() { SYSTEMD_UNIT_PATH=$units: systemd-analyze verify --man=no "$units/app-deploy.service" 2>&1; }
  out=$(verify)
  st=$?
  [ "$st" -eq 0 ] || fail "systemd-analyze verify failed (exit $st): $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns about the example: $out"
  ok "systemd-analyze verify: app-deploy.service with truncguard.conf, no warnings ($(systemd-analyze --version | head -n 1))"

  echo "NotAKnownKey=1" >>"$units/app-deploy.service.d/truncguard.conf"
  out=$(verify)
  grep -q "truncguard.conf.*NotAKnownKey" <<<"$out" ||
    fail "a broken line in the drop-in is not reported, so it may not be read at all: $out"
  ok "a broken drop-in line is reported: the drop-in is read"

  # The other way (docs/systemd.md): wrap the command in a drop-in, the old
  # line cleared first with an empty ExecStart=: verify accepts it; without
  # the empty line, a unit that is not Type=oneshot is refused (two commands).
  rm -f "$units/app-deploy.service.d/truncguard.conf"
  printf '[Service]\nExecStart=\nExecStart=%s /bin/cp /srv/build/libapp.so /opt/app/lib/libapp.so\n' "$TG_CMD" \
    >"$units/app-deploy.service.d/wrap.conf"
  out=$(verify)
  [ $? -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify of the wrapping drop-in: $out"
  sed -i '/^ExecStart=$/d' "$units/app-deploy.service.d/wrap.conf"
  sed -i 's/^Type=oneshot$/Type=simple/' "$units/app-deploy.service"
  out=$(verify)
  grep -q "more than one ExecStart=" <<<"$out" || fail "control: a second ExecStart= in a simple service is not refused: $out"
  ok "a drop-in that wraps the command (an empty ExecStart= first) passes verify; without the empty line, refused"
else
  note "systemd-analyze is not installed (apt-get install systemd): systemd-analyze verify not run"
fi

# The drop-in's settings run, as systemd would apply them to the example
# unit (no systemd runs units here): its active Environment= lines (the
# library at the build's path: the installed one may not be there), then
# app-deploy.service's ExecStart= with its two paths in $T, the application
# running the library (control: without them it dies). The application
# survives, the name holds the new library, and the service's stderr (the journal) has one JSON object
# per line, the replaced event among them. Then the commented alternative:
# TRUNCGUARD_LOG=/var/log/truncguard/deploy gives files deploy.PID.
need_victims
need_shim
mapfile -t envs < <(sed -n 's/^Environment=//p' "$DROPIN" | sed "s|^LD_PRELOAD=.*|LD_PRELOAD=$TG_SHIM|")
[ "${#envs[@]}" -ge 2 ] || fail "the drop-in sets fewer settings than documented: ${envs[*]}"
cmd=$(sed -n 's/^ExecStart=//p' "$SRC/examples/systemd/app-deploy.service")
[ -n "$cmd" ] || fail "no ExecStart= in app-deploy.service"
mkdir -p "$T/srv/build" "$T/opt/app/lib" && cp "$V2" "$T/srv/build/libapp.so" && cp "$V1" "$T/opt/app/lib/libapp.so" || fail "setup"
cmd=${cmd// \/srv\// $T/srv/}
read -ra argv <<<"${cmd// \/opt\// $T/opt/}"
start_victim "$T/opt/app/lib/libapp.so"
env -u LD_PRELOAD "${argv[@]}" >/dev/null 2>&1
stop_victim
expect_killed "control: app-deploy.service's command without the drop-in"
cp "$V1" "$T/opt/app/lib/libapp.so.new" && mv "$T/opt/app/lib/libapp.so.new" "$T/opt/app/lib/libapp.so" || fail "setup"
start_victim "$T/opt/app/lib/libapp.so"
env -u TRUNCGUARD_LOG -u TRUNCGUARD_DEBUG -u TRUNCGUARD_LOG_FORMAT "${envs[@]}" "${argv[@]}" >"$T/unit.out" 2>"$T/unit.err"
st=$?
stop_victim
[ "$st" -eq 0 ] || fail "the example unit's command under the drop-in's settings exited $st: $(cat "$T/unit.err")"
expect_survived "app-deploy.service's command (${argv[*]}) under truncguard.conf's settings"
expect_same_content "$T/opt/app/lib/libapp.so" "$V2" "the library after the deploy"
python3 -c '
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert any(e["event"] == "replaced" and e["file"] == sys.argv[2] for e in events), events' "$T/unit.err" "$T/opt/app/lib/libapp.so" ||
  fail "the service's stderr is not one JSON object per line with the replaced event: $(cat "$T/unit.err")"
logenv=$(sed -n 's/^#Environment=\(TRUNCGUARD_LOG=.*\)/\1/p' "$DROPIN")
[ "$logenv" = "TRUNCGUARD_LOG=/var/log/truncguard/deploy" ] || fail "the drop-in's commented log file is now '$logenv'"
cp "$V1" "$T/opt/app/lib/libapp.so" && mkdir -p "$T/logs" || fail "setup"
start_victim "$T/opt/app/lib/libapp.so"
env -u TRUNCGUARD_DEBUG "${envs[@]}" "TRUNCGUARD_LOG=$T/logs/deploy" "${argv[@]}" 2>"$T/unit.err"
st=$?
stop_victim
[ "$st" -eq 0 ] && [ ! -s "$T/unit.err" ] || fail "the deploy with TRUNCGUARD_LOG: exit $st, stderr $(cat "$T/unit.err")"
expect_survived "the same, TRUNCGUARD_LOG=DIR/deploy"
ls "$T/logs" | grep -qx 'deploy\.[0-9]*' && grep -q '"event":"replaced"' "$T"/logs/deploy.* ||
  fail "TRUNCGUARD_LOG=DIR/deploy: no deploy.PID file with the replaced event: $(ls "$T/logs")"
ok "truncguard.conf's settings on app-deploy.service's command: protected, JSON lines on the service's stderr (or in deploy.PID)"

# MemoryDenyWriteExecute= "doesn't get in the way" (docs/systemd.md): the
# kernel's own form of it (PR_SET_MDWE, Linux 6.3+, kept across exec; systemd
# uses a seccomp filter with the same rule: no memory both writable and
# executable, no mprotect that adds PROT_EXEC), set before the command runs
# cp over a library a victim runs, with a backtrace (libunwind) too. Control:
# a writable and executable mapping is refused under it.
LIB=$T/sc/lib.so
mkdir -p "$T/sc"
if python3 -c 'import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0 else 1)' 2>/dev/null; then
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  old=$(inode "$LIB")
  env -u TRUNCGUARD_LOG python3 -c '
import ctypes, mmap, os, sys
ctypes.CDLL(None).prctl(65, 1, 0, 0, 0)            # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
try:
    mmap.mmap(-1, 4096, prot=7)
    sys.exit("control: a writable and executable mapping was allowed under PR_SET_MDWE")
except PermissionError:
    pass
os.execvp(sys.argv[1], sys.argv[1:])' "$TG_CMD" -d rewrites,backtrace cp "$V2" "$LIB" >"$T/mdwe.out" 2>&1
  st=$?
  stop_victim
  [ "$st" -eq 0 ] || fail "cp under truncguard with PR_SET_MDWE exited $st: $(cat "$T/mdwe.out")"
  expect_survived "cp under truncguard with PR_SET_MDWE"
  grep -qF "replaced file=$LIB [ino $old -> $(inode "$LIB")]" "$T/mdwe.out" && grep -q "backtrace:" "$T/mdwe.out" ||
    fail "cp under truncguard with PR_SET_MDWE: no replaced line and backtrace: $(cat "$T/mdwe.out")"
  ok "memory that is never writable and executable (PR_SET_MDWE): the library loads, replaces, takes a backtrace"
else
  note "no PR_SET_MDWE here (Linux < 6.3): MemoryDenyWriteExecute= not checked"
fi

# docs/systemd.md's list of the system calls the library makes on a
# program's behalf (for a service's own seccomp allow-list), measured: each
# case runs under strace with and without the library, and every call made
# only with it must be named in the list's items for that kind of work (the
# paragraph after the list counts only for TRUNCGUARD_DEBUG=backtrace), and
# be in systemd's @system-service set unless the text says "`CALL` is not
# in". Bug: the list named no kcmp (said made only with
# TRUNCGUARD_DEBUG=backtrace) nor gettid for an fd moved to the new file
# (`truncate -s 0` of a library in use: killed by a filter that kills on
# kcmp), and "all of them are in @system-service" left out backtrace's
# mincore, which is not (its first backtrace killed under
# SystemCallFilter=@system-service).
command -v strace >/dev/null || { note "strace is not installed: the list of system calls was not checked"; exit 0; }
command -v systemd-analyze >/dev/null || { note "no systemd-analyze (the @system-service set): the list of system calls was not checked"; exit 0; }
need_victims
need_shim
# A sanitizer build's shim brings the ASan runtime, whose own calls are not the
# library's; and LeakSanitizer can't run under ptrace.
shim_has_asan && { note "the list of system calls is checked with a build without sanitizers"; exit 0; }
LIB=$T/sc/lib.so
mkdir -p "$T/sc"
seq 1 100 >"$T/sc/text.txt"
cases=()
measure() {  # measure NAME ENV... -- CMD...: strace CMD without and with the library, a victim running LIB
  local name=$1 vars=() envs=()
  shift
  while [ "$1" != -- ]; do vars+=("$1"); envs+=(-E "$1"); shift; done
  shift
  fresh_copy "$V1" "$LIB"
  env "${vars[@]}" strace -f -qq -o "$T/sc/$name.without" "$@" >/dev/null 2>&1
  fresh_copy "$V1" "$LIB"
  start_victim "$LIB"
  strace -f -qq "${envs[@]}" -E LD_PRELOAD="$TG_SHIM" -o "$T/sc/$name.with" "$@" >/dev/null 2>"$T/sc/$name.out" ||
    fail "$name under truncguard and strace failed: $(cat "$T/sc/$name.out")"
  stop_victim
  expect_survived "the victim of $name"
  cases+=("$name")
}
measure cp_replace -- cp "$V2" "$LIB"
measure cp_unlink TRUNCGUARD_MODE=unlink -- cp "$V2" "$LIB"
measure dd_atomic_fsync TRUNCGUARD_MODE=atomic -- dd if="$V2" of="$LIB" conv=fsync status=none
measure dd_in_place -- dd if="$V2" of="$LIB" conv=notrunc status=none
measure truncate_fd -- truncate -s 0 "$LIB"
measure rdwr_open -- sh -c ': 1<>"$1"' sh "$LIB"
measure text_file -- sh -c 'echo x >"$1"' sh "$T/sc/text.txt"
measure read -- cat "$LIB" "$T/sc/text.txt"
measure append -- sh -c 'echo x >>"$1"' sh "$T/sc/text.txt"
measure log_file TRUNCGUARD_LOG="$T/sc/tglog" -- cp "$V2" "$LIB"
measure dlopen -- python3 -c 'import ctypes, _ctypes, sys; _ctypes.dlclose(ctypes.CDLL(sys.argv[1])._handle)' "$V1"
measure backtrace TRUNCGUARD_DEBUG=rewrites,backtrace -- cp "$V2" "$LIB"
systemd-analyze syscall-filter >"$T/sc/groups.txt" 2>&1 || fail "systemd-analyze syscall-filter failed: $(cat "$T/sc/groups.txt")"
python3 - "$SRC/docs/systemd.md" "$T/sc" "$T/sc/groups.txt" "${cases[@]}" <<'PY' || fail "docs/systemd.md's list of system calls is not what was measured"
import re, sys
doc, d, groups_path, cases = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
text = open(doc).read()
section = text[text.index("the calls it may make are:"):text.index("The calls above that the program itself never makes")]
head, _, rest = section.partition("\n  - ")
items, after = [], ""
for chunk in ("  - " + rest).split("\n  - "):
    body, sep, tail = chunk.partition("\n\n")
    items.append(body)
    if sep:
        after = tail
names = lambda s: set(re.findall(r"`([a-z_][a-z0-9_]*)", s))
pick = lambda word: names(next(i for i in items if word in i.split("\n")[0]))
start = pick("at start-up")
quiet = start | pick("a call that can't change")
common = start | pick("an open for writing") | pick("`O_RDWR` open") | pick("an ELF file") | pick("each log line")
allowed = {c: common for c in cases}
allowed["dlopen"] = common | pick("a `dlopen` or `dlclose`")
allowed["read"] = allowed["append"] = quiet
allowed["backtrace"] = common | names(after)
groups, cur = {}, None
for line in open(groups_path):
    if line.startswith("@"):
        cur = groups.setdefault(line.split()[0], [])
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.append(line.strip())
def expand(g):
    return set().union(*[expand(x) if x.startswith("@") else {x} for x in groups.get(g, [])])
service = expand("@system-service")
assert len(service) > 100, "no @system-service set from systemd-analyze"
def calls(path):
    out = set()
    for line in open(path):
        m = re.match(r"\d+ +(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)", line)
        if m:
            out.add(m.group(1))
    return out
bad = []
for c in cases:
    extra = calls("%s/%s.with" % (d, c)) - calls("%s/%s.without" % (d, c))
    for n in sorted(extra - allowed[c]):
        bad.append("%s: %s is made but not in the list's items for it" % (c, n))
    for n in sorted(extra - service):
        if "`%s` is not in" % n not in section:
            bad.append("%s: %s is not in @system-service, and the text does not say so" % (c, n))
    print("%s: %s" % (c, " ".join(sorted(extra))))
for b in bad:
    print("NOT AS DOCUMENTED:", b)
sys.exit(1 if bad else 0)
PY
ok "docs/systemd.md's system calls: every call the library added, in ${#cases[@]} cases, is in the list (and in @system-service, or said not to be)"
