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

void warn(const char* message) {
  log::Event e{log::EventKind::warning};
  e.message = message;
  log::emit(e);
}

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
  for (int i = 0; i < g_settings.warning_count; ++i) warn(g_settings.warnings[i]);
  if (g_settings.log_ignored) warn("TRUNCGUARD_LOG ignored: secure execution (setuid/setgid program)");
  if (g_settings.debug_help) print_help_and_exit();
}

// Who maps it, for the log: the processes found (with their names) and a
// sentence such as "pid 12 (victim), pid 14 (victim)" or "this process (pid 9)".
struct Who {
  log::Mapper mappers[ScanResult::kMaxPids];
  int count = 0;
  char text[512] = {};
};

void describe_who(Reason reason, const ScanResult& scan, bool self, ElfKind kind, Who* who) {
  char* out = who->text;
  const size_t len = sizeof who->text;
  const pid_t me = sys::getpid();
  int shown = scan.mapped < ScanResult::kMaxPids ? scan.mapped : ScanResult::kMaxPids;
  for (int i = 0; i < shown; ++i) {
    log::Mapper& m = who->mappers[who->count++];
    m.pid = scan.pids[i];
    process_name(scan.pids[i], m.comm, sizeof m.comm);
  }
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
      break;
  }
  size_t o = 0;
  auto add = [&](const char* fmt, auto... args) {
    if (o < len) {
      int n = std::snprintf(out + o, len - o, fmt, args...);
      if (n > 0) o += static_cast<size_t>(n);
    }
  };
  if (self) add("this process (pid %d)", static_cast<int>(me));
  for (int i = 0; i < who->count; ++i) {
    if (who->mappers[i].pid == me) continue;
    char esc[96];
    log::escape(who->mappers[i].comm, esc, sizeof esc);
    add("%spid %d (%s)", o ? ", " : "", static_cast<int>(who->mappers[i].pid), esc);
  }
  if (scan.mapped > shown) add(" and %d more", scan.mapped - shown);
}

void log_decision(const WriteIntent& in, bool act, Reason r) {
  if (!log::enabled(kDecisions)) return;
  log::Event e{log::EventKind::decision};
  e.file = in.path;
  e.entry = in.entry;
  e.act = act;
  e.reason = to_string(r);
  log::emit(e);
}

Outcome log_pass(const WriteIntent& in, Reason r) {
  log_decision(in, false, r);
  return {Outcome::pass, 0};
}

void note(const char* file, const char* key, const char* message) {
  log::Event e{log::EventKind::note};
  e.file = file;
  e.note = key;
  e.message = message;
  log::emit(e);
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

  Verdict v = check_flags(in.flags);
  if (!v.act) return log_pass(in, v.reason);

  Target t;
  if (resolve_target(in.dirfd, in.path, !(in.flags & O_NOFOLLOW), &t) < 0)
    return log_pass(in, Reason::missing);
  v = check_file(t.st, in.new_length);
  if (!v.act) return log_pass(in, v.reason);

  // Replacing a file the caller could not write would turn an EACCES into a
  // success: leave such calls to the kernel. (ETXTBSY is not checked here,
  // which is how a running executable still gets replaced.)
  int acc = sys::faccessat2(t.dir.get(), t.base, W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
  if (acc < 0 && acc != -ENOSYS) return log_pass(in, Reason::no_write_permission);

  sys::Fd src(sys::openat(t.dir.get(), t.base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  ElfKind kind = ElfKind::unreadable;
  if (src.ok()) {
    struct stat st;
    if (sys::fstat(src.get(), &st) == 0 && (st.st_dev != t.st.st_dev || st.st_ino != t.st.st_ino))
      return log_pass(in, Reason::missing);  // swapped under us: nothing we looked at is there
    kind = probe_elf_fd(src.get());
  }
  v = check_elf(kind);
  if (!v.act) return log_pass(in, v.reason);

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
  if (!v.act) return log_pass(in, v.reason);
  log_decision(in, true, v.reason);

  Who who;
  describe_who(v.reason, scan, facts.mapped_by_self, kind, &who);
  log::Event ev{log::EventKind::replaced};
  ev.file = in.path;
  ev.entry = in.entry;
  ev.reason = to_string(v.reason);
  ev.mode = to_string(s.mode);
  ev.old_ino = static_cast<unsigned long>(t.st.st_ino);
  ev.who = who.text;
  ev.mappers = who.mappers;
  ev.mapper_count = who.count;
  ev.mapper_total = scan.mapped;
  ev.by_self = facts.mapped_by_self;
  ev.uninspected = scan.uninspected;

  if (s.mode == Mode::dry_run) {
    ev.kind = log::EventKind::would_replace;
    if (log::enabled(kRewrites)) log::emit(ev);
    return {Outcome::pass, 0};
  }

  // truncate(2) opens nothing for the caller: the new inode is written and closed.
  const bool is_truncate = in.new_length >= 0;
  const int flags = is_truncate ? (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC) : replacement_flags(in.flags);
  const off_t keep = is_truncate ? in.new_length : 0;
  ReplaceReport rep;
  int fd = (keep > 0 && !src.ok()) ? -EACCES : replace_file(t, s.mode, flags, keep, src.get(), &rep);
  if (fd < 0) {
    log::Event fail{log::EventKind::cannot_protect};
    fail.file = in.path;
    fail.entry = in.entry;
    fail.step = rep.failed_step ? rep.failed_step : "cannot read the old file to keep its first bytes";
    fail.error = rep.failed_step ? rep.error : EACCES;
    fail.restored_old = rep.restored_old;
    fail.truncating_anyway = s.on_fail == OnFail::truncate;
    log::emit(fail);  // failures are always reported
    if (fail.truncating_anyway) return {Outcome::pass, 0};
    return {Outcome::fail, ETXTBSY};
  }

  if (log::enabled(kRewrites)) {
    ev.new_ino = static_cast<unsigned long>(rep.new_ino);
    log::emit(ev);
    char msg[log::kPathBuf + 96];
    if (t.via_symlink) {
      char target[log::kPathBuf];
      log::escape(t.base, target, sizeof target);
      std::snprintf(msg, sizeof msg, "is a symlink: it was kept, and its target %s was replaced", target);
      note(in.path, "symlink", msg);
    }
    if (t.st.st_nlink > 1) {
      std::snprintf(msg, sizeof msg, "has %lu hard links; the other names keep the old content",
                    static_cast<unsigned long>(t.st.st_nlink));
      note(in.path, "hard_links", msg);
    }
    if (!rep.owner_kept) {
      std::snprintf(msg, sizeof msg, "owner %u:%u could not be kept (not permitted); the new file is owned by %u:%u",
                    static_cast<unsigned>(t.st.st_uid), static_cast<unsigned>(t.st.st_gid),
                    static_cast<unsigned>(geteuid()), static_cast<unsigned>(getegid()));
      note(in.path, "owner", msg);
    }
    if (rep.xattrs_failed > 0) {
      std::snprintf(msg, sizeof msg, "%d extended attributes could not be copied", rep.xattrs_failed);
      note(in.path, "xattrs", msg);
    }
  }
  if (log::enabled(kBacktrace)) log::backtrace();
  if (is_truncate) {
    sys::close(fd);
    return {Outcome::replaced, 0};
  }
  return {Outcome::replaced, fd};
}

}  // namespace tg
