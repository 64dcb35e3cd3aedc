#include "guard.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <sys/auxv.h>

#include "decision.hpp"
#include "elf_probe.hpp"
#include "log.hpp"
#include "maps_reader.hpp"
#include "replace.hpp"
#include "sys.hpp"

namespace tg {
namespace {

// initial-exec: no __tls_get_addr (which may allocate) on the way in.
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_guard = false;

struct ReentryGuard {
  ReentryGuard() { t_in_guard = true; }
  ~ReentryGuard() { t_in_guard = false; }
};

struct ErrnoKeeper {
  int saved = errno;
  ~ErrnoKeeper() { errno = saved; }
};

Settings g_settings;
std::atomic<int> g_settings_state{0};  // 0 none, 1 being read, 2 ready

void print_help_and_exit() {
  log::line("Valid options for the TRUNCGUARD_DEBUG environment variable are:");
  log::line("%s", "");
  for (const CategoryInfo* c = kCategories; c->name; ++c) log::line("  %-10s %s", c->name, c->help);
  log::line("%s", "");
  log::line("To direct the output into a file instead of standard error, use TRUNCGUARD_LOG=FILE:");
  log::line("the output goes to FILE.PID.");
  _exit(0);  // as LD_DEBUG=help does
}

void load_settings() {
  g_settings = parse_settings([](const char* n) -> const char* { return getenv(n); }, getauxval(AT_SECURE) != 0);
  log::configure(g_settings);
  for (int i = 0; i < g_settings.warning_count; ++i) log::line("warning: %s", g_settings.warnings[i]);
  if (g_settings.log_ignored) log::line("warning: TRUNCGUARD_LOG ignored: secure execution (setuid/setgid program)");
  if (g_settings.debug_help) print_help_and_exit();
}

// "pid 12 (victim), pid 14 (victim)" or "this process".
void describe_mappers(const ScanResult& scan, bool self, char* out, size_t len) {
  size_t o = 0;
  out[0] = '\0';
  auto add = [&](const char* fmt, auto... args) {
    if (o < len) {
      int n = std::snprintf(out + o, len - o, fmt, args...);
      if (n > 0) o += static_cast<size_t>(n);
    }
  };
  const pid_t me = sys::getpid();
  if (self) add("this process (pid %d)", static_cast<int>(me));
  int shown = scan.mapped < ScanResult::kMaxPids ? scan.mapped : ScanResult::kMaxPids;
  for (int i = 0; i < shown; ++i) {
    if (scan.pids[i] == me) continue;
    char comm[32], esc[96];
    process_name(scan.pids[i], comm, sizeof comm);
    log::escape(comm, esc, sizeof esc);
    add("%spid %d (%s)", o ? ", " : "", static_cast<int>(scan.pids[i]), esc);
  }
  if (scan.mapped > shown) add(" and %d more", scan.mapped - shown);
}

void describe_who(Reason reason, const ScanResult& scan, bool self, ElfKind kind, char* out, size_t len) {
  switch (reason) {
    case Reason::scope_elf:
      std::snprintf(out, len, "nobody checked: scope elf, and it is an %s", to_string(kind));
      return;
    case Reason::uninspected_elf:
      if (scan.proc_missing)
        std::snprintf(out, len, "nobody known: /proc could not be read, and it is an %s", to_string(kind));
      else
        std::snprintf(out, len, "no readable process, but %d processes could not be inspected and it is an %s",
                      scan.uninspected, to_string(kind));
      return;
    default:
      describe_mappers(scan, self, out, len);
  }
}

Outcome log_pass(const WriteIntent& in, const char* esc_path, Reason r) {
  if (log::enabled(kDecisions)) log::line("decision file=%s: pass (%s) [%s]", esc_path, to_string(r), in.entry);
  return {Outcome::pass, 0};
}

}  // namespace

bool in_guard() { return t_in_guard; }

const Settings& settings() {
  if (g_settings_state.load(std::memory_order_acquire) == 2) return g_settings;
  int expected = 0;
  if (g_settings_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    load_settings();
    g_settings_state.store(2, std::memory_order_release);
  } else {
    while (g_settings_state.load(std::memory_order_acquire) != 2) sched_yield();
  }
  return g_settings;
}

Outcome guard_write(const WriteIntent& in) {
  ErrnoKeeper keep_errno;
  ReentryGuard reentry;
  const Settings& s = settings();
  char path[log::kPathBuf];
  log::escape(in.path, path, sizeof path);

  Verdict v = check_flags(in.flags);
  if (!v.act) return log_pass(in, path, v.reason);

  Target t;
  if (resolve_target(in.dirfd, in.path, !(in.flags & O_NOFOLLOW), &t) < 0)
    return log_pass(in, path, Reason::missing);
  v = check_file(t.st, in.new_length);
  if (!v.act) return log_pass(in, path, v.reason);

  // Replacing a file the caller could not write would turn an EACCES into a
  // success: leave such calls to the kernel. (ETXTBSY is not checked here,
  // which is how a running executable still gets replaced.)
  int acc = sys::faccessat2(t.dir.get(), t.base, W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
  if (acc < 0 && acc != -ENOSYS) return log_pass(in, path, Reason::no_write_permission);

  sys::Fd src(sys::openat(t.dir.get(), t.base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  ElfKind kind = ElfKind::unreadable;
  if (src.ok()) {
    struct stat st;
    if (sys::fstat(src.get(), &st) == 0 && (st.st_dev != t.st.st_dev || st.st_ino != t.st.st_ino))
      return log_pass(in, path, Reason::missing);  // swapped under us: nothing we looked at is there
    kind = probe_elf_fd(src.get());
  }
  v = check_elf(kind);
  if (!v.act) return log_pass(in, path, v.reason);

  const FileId id = file_id_of(t.st.st_dev, t.st.st_ino);
  MappingFacts facts;
  ScanResult scan;
  if (scope_needs_scan(s.scope) && src.ok() && proves_unshared(src.get())) {
    facts.proven_unshared = true;
  } else if (scope_needs_scan(s.scope)) {
    scan = scan_processes(id);
    const pid_t me = sys::getpid();
    for (int i = 0; i < scan.mapped && i < ScanResult::kMaxPids; ++i)
      if (scan.pids[i] == me) facts.mapped_by_self = true;
    facts.mapped_by_others = scan.mapped - (facts.mapped_by_self ? 1 : 0);
    facts.uninspected = scan.uninspected;
    facts.proc_missing = scan.proc_missing;
  } else if (scope_needs_self(s.scope)) {
    facts.mapped_by_self = process_maps_exec(0, id) == MapsAnswer::mapped;
  }
  v = check_mapping(s.scope, kind, facts);
  if (!v.act) return log_pass(in, path, v.reason);
  if (log::enabled(kDecisions)) log::line("decision file=%s: act (%s) [%s]", path, to_string(v.reason), in.entry);

  char who[512];
  describe_who(v.reason, scan, facts.mapped_by_self, kind, who, sizeof who);
  const unsigned long old_ino = static_cast<unsigned long>(t.st.st_ino);

  if (s.mode == Mode::dry_run) {
    if (log::enabled(kRewrites))
      log::line("would replace file=%s [ino %lu] (mode dry-run); mapped executable by %s", path, old_ino, who);
    return {Outcome::pass, 0};
  }

  // truncate(2) opens nothing for the caller: the new inode is written and closed.
  const bool is_truncate = in.new_length >= 0;
  const int flags = is_truncate ? (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC) : replacement_flags(in.flags);
  const off_t keep = is_truncate ? in.new_length : 0;
  ReplaceReport rep;
  int fd = (keep > 0 && !src.ok()) ? -EACCES : replace_file(t, s.mode, flags, keep, src.get(), &rep);
  if (fd < 0) {
    const char* step = rep.failed_step ? rep.failed_step : "cannot read the old file to keep its first bytes";
    int err = rep.failed_step ? rep.error : EACCES;
    if (s.on_fail == OnFail::truncate) {
      log::line("cannot protect file=%s: %s: %s; truncating anyway (TRUNCGUARD_ON_FAIL=truncate)", path, step,
                strerror(err));
      return {Outcome::pass, 0};
    }
    log::line("cannot protect file=%s: %s: %s%s; failing with ETXTBSY", path, step, strerror(err),
              rep.restored_old ? " (the old file was linked back)" : "");
    return {Outcome::fail, ETXTBSY};
  }

  if (log::enabled(kRewrites)) {
    log::line("replaced file=%s [ino %lu -> %lu] (mode %s); mapped executable by %s", path, old_ino,
              static_cast<unsigned long>(rep.new_ino), to_string(s.mode), who);
    if (t.via_symlink) {
      char target[log::kPathBuf];
      log::escape(t.base, target, sizeof target);
      log::line("note file=%s is a symlink: it was kept, and its target %s was replaced", path, target);
    }
    if (t.st.st_nlink > 1)
      log::line("note file=%s has %lu hard links; the other names keep the old content", path,
                static_cast<unsigned long>(t.st.st_nlink));
    if (!rep.owner_kept)
      log::line("note file=%s: owner %u:%u could not be kept (not permitted); the new file is owned by %u:%u", path,
                static_cast<unsigned>(t.st.st_uid), static_cast<unsigned>(t.st.st_gid),
                static_cast<unsigned>(geteuid()), static_cast<unsigned>(getegid()));
    if (rep.xattrs_failed > 0)
      log::line("note file=%s: %d extended attributes could not be copied", path, rep.xattrs_failed);
  }
  if (log::enabled(kBacktrace)) log::backtrace();
  if (is_truncate) {
    sys::close(fd);
    return {Outcome::replaced, 0};
  }
  return {Outcome::replaced, fd};
}

}  // namespace tg
