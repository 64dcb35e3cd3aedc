// `truncguard who FILE...` and `truncguard stale`: the scans of inspect.cpp,
// printed as tables for people or as one JSON document for machines.
//
// Exit statuses (documented in truncguard(1)):
//   who:   0 some process maps a FILE   1 none does   2 error
//   stale: 0 nothing is stale           1 stale processes found   2 error
//   both:  3 nothing found, but some processes could not be inspected: a scan
//          that met EACCES proves nothing about them (field notes, section 2)
#include <getopt.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "inspect.hpp"
#include "settings.hpp"

namespace tg::inspect {
namespace {

constexpr int kExitError = 2;
constexpr int kExitIncomplete = 3;

struct Options {
  bool json = false;
  bool quiet = false;
  bool text_maps = false;
};

// Results of one pass over /proc.
struct ScanCounts {
  int inspected = 0;
  std::vector<Uninspected> uninspected;
  bool hidden = false;  // /proc's hidepid left some processes out of the listing
  bool outside_pid_ns = false;  // /proc lists one PID namespace: the processes outside it are not listed
  bool incomplete() const { return hidden || outside_pid_ns || !uninspected.empty(); }
};

// This process's number in /proc: getpid() is the one in our own PID
// namespace, which may not be /proc's (unshare -p without a /proc of its
// own), where it is another process's. -1 if /proc does not list us.
pid_t pid_in_proc() {
  char buf[32];
  const ssize_t n = ::readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return static_cast<pid_t>(std::strtol(buf, nullptr, 10));
}

// Calls on_process(pid, mappings) for every process whose maps can be read,
// except this one. False if /proc itself can't be read.
template <typename Fn>
bool scan_all(const Options& o, ScanCounts* counts, Fn on_process) {
  std::vector<pid_t> pids;
  if (!list_pids(&pids)) return false;
  counts->hidden = proc_hides_processes();
  // TRUNCGUARD_SCOPE=namespace: only this PID namespace's processes count, as for the library.
  Scope scope = Scope::system;
  if (const char* v = getenv("TRUNCGUARD_SCOPE")) parse_scope(v, &scope);
  counts->outside_pid_ns = scope != Scope::pid_namespace && proc_leaves_out_other_pid_namespaces();
  const pid_t self = pid_in_proc();
  std::vector<Mapping> maps;
  for (pid_t pid : pids) {
    if (pid == self) continue;
    switch (read_mappings(pid, o.text_maps, &maps)) {
      case ReadStatus::ok:
        ++counts->inspected;
        keep_names_ending_in_deleted(pid, &maps);
        on_process(pid, maps);
        break;
      case ReadStatus::no_access: {
        Process p = describe_process(pid);
        counts->uninspected.push_back({pid, p.comm});
        break;
      }
      case ReadStatus::gone: break;  // exited while we looked
    }
  }
  return true;
}

// "pid 1 (init), pid 7 (x) and 3 more"
std::string pid_list(const std::vector<Uninspected>& u, size_t max = 10) {
  std::string s;
  for (size_t i = 0; i < u.size() && i < max; ++i) {
    if (i) s += ", ";
    s += "pid " + std::to_string(u[i].pid) + " (" + escaped(u[i].comm) + ")";
  }
  if (u.size() > max) s += " and " + std::to_string(u.size() - max) + " more";
  return s;
}

// Is CAP_SYS_PTRACE in this process's effective set? Root without it (a
// container's default: Docker drops it) is refused other users' maps as any
// user is, and the cause is the missing capability, not the target.
bool has_cap_sys_ptrace() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return true;  // unknown: say what it said before
  return data[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32));
}

// `what`: what they may do, said of several processes ("may map these files
// too"); `none_outside`: when TRUNCGUARD_SCOPE=namespace is right.
void warn_uninspected(const char* cmd, const ScanCounts& c, const char* what, const char* none_outside) {
  const bool root = geteuid() == 0;
  const bool ptrace_cap = has_cap_sys_ptrace();
  if (c.hidden)
    std::fprintf(stderr,
                 "truncguard %s: /proc is mounted with hidepid: the processes this user may not trace are not "
                 "even listed; they %s.\n  %s\n",
                 cmd, what,
                 !root ? "Run as root to see them."
                 : ptrace_cap
                     ? "Even root is not shown a process it may not trace: one of another user namespace, or one a "
                       "security module guards."
                     : "This root lacks CAP_SYS_PTRACE (as in a container by default): run with it (docker run "
                       "--cap-add=SYS_PTRACE) to see other users' processes.");
  if (c.outside_pid_ns)
    std::fprintf(stderr,
                 "truncguard %s: /proc lists the processes of one PID namespace (a container's): those outside "
                 "it are not listed; they %s.\n  Run it where /proc shows the whole system (on the host) to see "
                 "them, or set TRUNCGUARD_SCOPE=namespace if %s.\n",
                 cmd, what, none_outside);
  if (c.uninspected.empty()) return;
  const size_t n = c.uninspected.size();
  std::fprintf(stderr,
               "truncguard %s: %zu process%s could not be inspected (no permission to read /proc/PID/maps): %s.\n"
               "  Nothing is known about %s: %s %s.\n  %s\n",
               cmd, n, n == 1 ? "" : "es", pid_list(c.uninspected).c_str(), n == 1 ? "it" : "them",
               n == 1 ? "it" : "they", what,
               root
                   ? ptrace_cap
                         ? "Even root is refused: such a process usually belongs to another user namespace, or a "
                           "security module guards it."
                         : "This root lacks CAP_SYS_PTRACE (as in a container by default), which reading another "
                           "user's maps needs: run with it (docker run --cap-add=SYS_PTRACE) to inspect them; even "
                           "with it, a process of another user namespace, or one a security module guards, may be "
                           "refused."
                   // Their owner can't read a set-ID program's maps (ptrace
                   // access wants the real, effective and saved IDs to match),
                   // nor those of a process that made itself undumpable
                   // (prctl PR_SET_DUMPABLE 0: ssh-agent): seen as this user's own.
                   : "Run as root to inspect them (or as their owner, unless they run a set-user-ID or "
                     "set-group-ID program, or made themselves undumpable, as ssh-agent does).");
}

std::string json_uninspected(const ScanCounts& c) {
  std::string s = "\"inspected\":" + std::to_string(c.inspected) +
                  ",\"uninspected\":" + std::to_string(c.uninspected.size()) +
                  ",\"hidden_by_hidepid\":" + (c.hidden ? "true" : "false") +
                  ",\"outside_pid_namespace\":" + (c.outside_pid_ns ? "true" : "false") + ",\"uninspected_processes\":[";
  for (size_t i = 0; i < c.uninspected.size(); ++i) {
    if (i) s += ',';
    s += "{\"pid\":" + std::to_string(c.uninspected[i].pid) + ",\"comm\":" + json_string(c.uninspected[i].comm) + "}";
  }
  return s + "]";
}

std::string json_or_null(const std::string& raw) { return raw.empty() ? "null" : json_string(raw); }

std::string json_process(const Process& p) {
  return "\"pid\":" + std::to_string(p.pid) + ",\"user\":" + json_string(p.user) +
         ",\"uid\":" + (p.uid_known ? std::to_string(p.uid) : std::string("null")) +
         ",\"comm\":" + json_string(p.comm) + ",\"exe\":" + json_or_null(p.exe) +
         ",\"unit\":" + json_or_null(p.unit.name) + ",\"unit_manager\":" + json_or_null(p.unit.manager);
}

std::string unit_cell(const Unit& u) {
  if (u.name.empty()) return "-";
  return u.manager.empty() ? escaped(u.name) : escaped(u.manager) + "/" + escaped(u.name);
}

// Parses the options shared by who and stale. Returns -1 to go on, or an exit status.
int parse_options(int argc, char** argv, const char* cmd, void (*usage)(FILE*), Options* o) {
  enum { kJson = 256, kTextMaps };
  static const option kOptions[] = {
      {"json", no_argument, nullptr, kJson},
      {"quiet", no_argument, nullptr, 'q'},
      {"text-maps", no_argument, nullptr, kTextMaps},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  optind = 0;  // GNU getopt: start afresh
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "qh", kOptions, nullptr)) != -1) {
    switch (c) {
      case kJson: o->json = true; break;
      case 'q': o->quiet = true; break;
      case kTextMaps: o->text_maps = true; break;
      case 'h': usage(stdout); return 0;
      default: {
        // optopt as in the command's parser (truncguard.cpp): a known
        // option's value means its long form was given a value (--help=x).
        if (optopt != 0 && (optopt >= 256 || std::strchr("qh", optopt))) {
          const std::string given(argv[optind - 1], std::strcspn(argv[optind - 1], "="));
          std::fprintf(stderr, "truncguard %s: option '%s' takes no value\nTry 'truncguard %s --help' for more information.\n",
                       cmd, escaped(given).c_str(), cmd);
          return kExitError;
        }
        std::string bad = optopt > 0 && optopt < 256 ? std::string("-") + static_cast<char>(optopt) : argv[optind - 1];
        std::fprintf(stderr, "truncguard %s: unrecognized option '%s'\nTry 'truncguard %s --help' for more information.\n",
                     cmd, escaped(bad).c_str(), cmd);
        return kExitError;
      }
    }
  }
  if (o->json && o->quiet) {
    std::fprintf(stderr, "truncguard %s: --json and --quiet exclude each other: choose one\n", cmd);
    return kExitError;
  }
  return -1;
}

// Did the answer reach standard output? A full disk or a closed stdout is an
// error (exit 2), never a short answer whose exit status says it was read.
bool answer_written(const char* cmd) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  std::fprintf(stderr, "truncguard %s: cannot write the answer to standard output: %s\n", cmd, std::strerror(errno));
  return false;
}

bool no_proc(const char* cmd) {
  std::fprintf(stderr,
               "truncguard %s: cannot read /proc: not mounted, not a proc filesystem, or not readable\n"
               "  /proc must be mounted to see processes (mount -t proc proc /proc).\n",
               cmd);
  return false;
}

// -------------------------------------------------------------------- who

void who_usage(FILE* out) {
  std::fprintf(out,
      "Usage: truncguard who [--json | -q] FILE...\n"
      "List the processes that map each FILE: pid, user, command, whether they map it\n"
      "executable (code) or as data, whether they run the file now at that name\n"
      "(\"current\") or an older one that was replaced or deleted (\"replaced\"), and\n"
      "their systemd unit. Like fuser(1), but matched by device and inode in\n"
      "/proc/PID/maps, and aware of replaced files. A FILE that no longer exists\n"
      "still shows the processes that run a deleted file of that name (through a\n"
      "dangling symlink: the one the link reaches).\n"
      "\n"
      "  --json        one JSON document on stdout (see truncguard(7))\n"
      "  -q, --quiet   print nothing; the exit status answers\n"
      "  --text-maps   read /proc/PID/maps as text even where PROCMAP_QUERY works\n"
      "  -h, --help    show this help and exit\n"
      "\n"
      "Exit status: 0 some process maps a FILE; 1 none does (every process was\n"
      "inspected); 2 error; 3 none found, but some processes could not be inspected.\n"
      "To run a program named \"who\" under truncguard: truncguard -- who\n");
}

// The name the kernel uses in maps lines: absolute, symlinks resolved.
bool resolve_target(const char* arg, Target* t, std::string* error) {
  t->arg = arg;
  if (!*arg) {  // stat("") fails with ENOENT: it would look for "CWD/ (deleted)"
    *error = "an empty name; name a file";
    return false;
  }
  struct stat st;
  if (::stat(arg, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      *error = "is a directory; name the files in it";
      return false;
    }
    t->exists = true;
    t->id = maps_id_of_stat(arg, st);
    char* real = ::realpath(arg, nullptr);
    if (!real) {
      // Deeper than PATH_MAX, or a directory above it unreadable: the file is
      // there all the same, and its inode is what the maps are matched by.
      std::fprintf(stderr,
                   "truncguard who: '%s': its absolute path can't be resolved (%s): matched by inode only, an "
                   "older file replaced at that name is not recognised\n",
                   escaped(arg).c_str(), std::strerror(errno));
      t->path = arg;
      return true;
    }
    t->path = real;
    std::free(real);
    return true;
  }
  if (errno != ENOENT) {
    *error = std::string(std::strerror(errno)) + "; check the path and your permissions on its directories";
    return false;
  }
  // Gone: the directory's real path and the last name, to find "PATH (deleted)".
  std::string a = arg;
  while (a.size() > 1 && a.back() == '/') a.pop_back();
  // A dangling symlink (the soname link of a versioned file since removed,
  // which a process still runs): the kernel named the mapping by the file the
  // link reached, not by the link. Followed as the kernel would, each
  // relative link from its own directory (stat said ENOENT: no loop).
  for (int hops = 0; hops < 40; ++hops) {
    struct stat lst;
    if (::lstat(a.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) break;
    std::vector<char> text(PATH_MAX);
    const ssize_t n = ::readlink(a.c_str(), text.data(), text.size());
    if (n <= 0 || static_cast<size_t>(n) >= text.size()) break;
    std::string to(text.data(), static_cast<size_t>(n));
    const size_t at = a.rfind('/');
    a = (to[0] == '/' || at == std::string::npos) ? to : a.substr(0, at + 1) + to;
    while (a.size() > 1 && a.back() == '/') a.pop_back();
  }
  size_t slash = a.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : a.substr(0, slash));
  std::string base = slash == std::string::npos ? a : a.substr(slash + 1);
  char* real = ::realpath(dir.c_str(), nullptr);
  if (!real) {
    *error = std::string("no such file, and its directory can't be resolved: ") + std::strerror(errno) + "; check the path";
    return false;
  }
  t->path = std::string(real) + (std::strcmp(real, "/") == 0 ? "" : "/") + base;
  std::free(real);
  t->exists = false;
  return true;
}

struct WhoKey {
  pid_t pid;
  uint64_t dev_major, dev_minor, ino;
  bool operator<(const WhoKey& o) const {
    return std::tie(pid, dev_major, dev_minor, ino) < std::tie(o.pid, o.dev_major, o.dev_minor, o.ino);
  }
};

}  // namespace

int who_main(int argc, char** argv) {
  Options o;
  if (int st = parse_options(argc, argv, "who", who_usage, &o); st >= 0) return st;
  if (optind >= argc) {
    std::fprintf(stderr,
                 "truncguard who: no FILE given: name the files to look for, e.g.\n"
                 "  truncguard who /usr/lib/x86_64-linux-gnu/libc.so.6\n"
                 "Try 'truncguard who --help' for more information.\n");
    return kExitError;
  }
  bool error = false;
  std::vector<Target> targets;
  for (int i = optind; i < argc; ++i) {
    Target t;
    std::string why;
    if (!resolve_target(argv[i], &t, &why)) {
      std::fprintf(stderr, "truncguard who: cannot examine '%s': %s\n", escaped(argv[i]).c_str(), why.c_str());
      error = true;
      continue;
    }
    targets.push_back(std::move(t));
  }

  // rows[target] : (pid, inode) -> row
  std::vector<std::map<WhoKey, WhoRow>> rows(targets.size());
  ScanCounts counts;
  bool ok = targets.empty() || scan_all(o, &counts, [&](pid_t pid, const std::vector<Mapping>& maps) {
    for (size_t i = 0; i < targets.size(); ++i)
      for (const Mapping& m : maps) {
        Match match = match_target(m, targets[i]);
        if (match == Match::none) continue;
        WhoRow& r = rows[i][WhoKey{pid, m.line.id.dev_major, m.line.id.dev_minor, m.line.id.ino}];
        r.proc.pid = pid;
        r.match = match;
        r.id = m.line.id;
        r.executable = r.executable || m.line.executable;
      }
  });
  if (!ok) {
    no_proc("who");
    return kExitError;
  }
  // Who they are, once per process.
  std::map<pid_t, Process> procs;
  size_t found = 0;
  for (auto& per_target : rows)
    for (auto& [key, r] : per_target) {
      auto it = procs.find(key.pid);
      if (it == procs.end()) it = procs.emplace(key.pid, describe_process(key.pid)).first;
      r.proc = it->second;
      ++found;
    }

  if (o.json) {
    std::string s = "{\"files\":[";
    for (size_t i = 0; i < targets.size(); ++i) {
      const Target& t = targets[i];
      if (i) s += ',';
      s += "{\"file\":" + json_string(t.arg) + ",\"path\":" + json_string(t.path) +
           ",\"exists\":" + (t.exists ? "true" : "false");
      if (t.exists) s += ",\"dev\":\"" + dev_string(t.id) + "\",\"ino\":" + std::to_string(t.id.ino);
      s += ",\"processes\":[";
      bool first = true;
      for (const auto& [key, r] : rows[i]) {
        if (!first) s += ',';
        first = false;
        s += "{" + json_process(r.proc) + ",\"mapping\":\"" + (r.executable ? "exec" : "data") + "\",\"inode\":\"" +
             to_string(r.match) + "\",\"dev\":\"" + dev_string(r.id) + "\",\"ino\":" + std::to_string(r.id.ino) + "}";
      }
      s += "]}";
    }
    s += "]," + json_uninspected(counts) + "}\n";
    std::fputs(s.c_str(), stdout);
  } else if (!o.quiet) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const Target& t = targets[i];
      std::string head = escaped(t.arg);
      if (t.path != t.arg) head += " -> " + escaped(t.path);
      if (t.exists)
        head += " (inode " + std::to_string(t.id.ino) + " on " + dev_string(t.id) + ")";
      else
        head += " (no such file now: showing processes that run a deleted file of that name)";
      if (rows[i].empty()) {
        std::printf("%s%s: no process maps it\n", i ? "\n" : "", head.c_str());
        continue;
      }
      std::vector<std::vector<std::string>> table{{"PID", "USER", "COMMAND", "MAPS", "FILE", "UNIT"}};
      for (const auto& [key, r] : rows[i]) {
        std::string file = r.match == Match::current ? "current"
                                                     : "replaced (inode " + std::to_string(r.id.ino) + ", deleted)";
        table.push_back({std::to_string(r.proc.pid), escaped(r.proc.user), escaped(r.proc.comm),
                         r.executable ? "exec" : "data", file, unit_cell(r.proc.unit)});
      }
      std::printf("%s%s:\n%s", i ? "\n" : "", head.c_str(), format_table(table, "  ").c_str());
    }
  }
  const bool written = answer_written("who");
  warn_uninspected("who", counts, targets.size() == 1 ? "may map this file too" : "may map these files too",
                   targets.size() == 1 ? "nothing outside runs this file" : "nothing outside runs these files");
  if (error || !written) return kExitError;
  if (found > 0) return 0;
  return counts.incomplete() ? kExitIncomplete : 1;
}

// ------------------------------------------------------------------ stale

namespace {

void stale_usage(FILE* out) {
  std::fprintf(out,
      "Usage: truncguard stale [--json | -q]\n"
      "List every process that runs code from a file that was replaced or deleted\n"
      "since it was loaded (an executable mapping whose /proc/PID/maps name ends in\n"
      "\"(deleted)\", or whose inode is no longer the file at that path), grouped by\n"
      "systemd unit: what to restart after a deploy, as needrestart(1) says it.\n"
      "\n"
      "  --json        one JSON document on stdout (see truncguard(7))\n"
      "  -q, --quiet   print nothing; the exit status answers\n"
      "  --text-maps   read /proc/PID/maps as text even where PROCMAP_QUERY works\n"
      "  -h, --help    show this help and exit\n"
      "\n"
      "Exit status: 0 no process runs stale code (every process was inspected);\n"
      "1 some do; 2 error; 3 none found, but some processes could not be inspected.\n"
      "To run a program named \"stale\" under truncguard: truncguard -- stale\n");
}

std::string user_of_manager(const std::string& manager) {
  // "user@1000.service" -> the user's name, for systemctl --user -M NAME@
  std::string uid = manager.substr(5, manager.size() - 5 - std::strlen(".service"));
  char* end = nullptr;
  unsigned long v = std::strtoul(uid.c_str(), &end, 10);
  if (end && *end == '\0' && !uid.empty()) {
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(static_cast<uid_t>(v), &pw, buf.data(), buf.size(), &res) == 0 && res) return res->pw_name;
  }
  return uid;
}

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// A name systemd could have given a unit: letters, digits and ":-_.\\@"
// (its unit_name_is_valid's characters), at most 255 bytes. A cgroup is
// named by whoever made it: a user in the subtree systemd delegates to
// them, a container's root in its own. Such a name, put in a systemctl
// line the summary prints, was a shell command to paste
// ("x;curl ...|sh;.service").
bool valid_unit_name(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  for (unsigned char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && std::strchr(":-_.\\@", c))))
      return false;
  return true;
}

}  // namespace

int stale_main(int argc, char** argv) {
  Options o;
  if (int st = parse_options(argc, argv, "stale", stale_usage, &o); st >= 0) return st;
  if (optind < argc) {
    std::fprintf(stderr,
                 "truncguard stale: unexpected argument '%s': stale takes no files, it looks at every process.\n"
                 "To ask about particular files, use: truncguard who FILE...\n",
                 escaped(argv[optind]).c_str());
    return kExitError;
  }
  std::vector<StaleProcess> stale;
  ScanCounts counts;
  bool ok = scan_all(o, &counts, [&](pid_t pid, const std::vector<Mapping>& maps) {
    StaleProcess sp;
    for (const Mapping& m : maps) {
      // Code only: a deleted data file (a log, a cache) needs no restart.
      if (!m.line.executable || is_pseudo_path(m.path)) continue;
      Staleness why = staleness(m, m.deleted ? PathNow{} : path_now_for_process(pid, m.path, m.line.id));
      if (why == Staleness::fresh) continue;
      add_stale_file(&sp, StaleFile{m.path, m.line.id, why});
    }
    if (sp.files.empty()) return;
    sp.proc = describe_process(pid);
    stale.push_back(std::move(sp));
  });
  if (!ok) {
    no_proc("stale");
    return kExitError;
  }
  const std::vector<UnitGroup> groups = group_by_unit(stale);

  if (o.json) {
    std::string s = "{\"processes\":[";
    bool first = true;
    for (const UnitGroup& g : groups)
      for (const StaleProcess* p : g.procs) {
        if (!first) s += ',';
        first = false;
        s += "{" + json_process(p->proc) + ",\"files\":[";
        for (size_t i = 0; i < p->files.size(); ++i) {
          const StaleFile& f = p->files[i];
          if (i) s += ',';
          s += "{\"path\":" + json_string(f.path) + ",\"dev\":\"" + dev_string(f.id) +
               "\",\"ino\":" + std::to_string(f.id.ino) + ",\"why\":\"" + to_string(f.why) + "\"}";
        }
        s += "]}";
      }
    s += "],\"units\":[";
    first = true;
    for (const UnitGroup& g : groups) {
      if (g.unit.name.empty()) continue;
      if (!first) s += ',';
      first = false;
      s += "{\"unit\":" + json_string(g.unit.name) + ",\"manager\":" + json_or_null(g.unit.manager) + ",\"pids\":[";
      for (size_t i = 0; i < g.procs.size(); ++i) s += (i ? "," : "") + std::to_string(g.procs[i]->proc.pid);
      s += "]}";
    }
    s += "]," + json_uninspected(counts) + "}\n";
    std::fputs(s.c_str(), stdout);
  } else if (!o.quiet) {
    if (stale.empty()) {
      std::printf("No process runs code from a replaced or deleted file (%d inspected).\n", counts.inspected);
    } else {
      std::vector<std::vector<std::string>> table{{"UNIT", "PID", "USER", "COMMAND", "WHY", "FILE"}};
      for (const UnitGroup& g : groups)
        for (const StaleProcess* p : g.procs)
          for (const StaleFile& f : p->files)
            table.push_back({unit_cell(g.unit), std::to_string(p->proc.pid), escaped(p->proc.user),
                             escaped(p->proc.comm), to_string(f.why), escaped(f.path)});
      std::fputs(format_table(table).c_str(), stdout);
      std::printf("\n%zu process%s run%s code from replaced or deleted files.\n", stale.size(),
                  stale.size() == 1 ? "" : "es", stale.size() == 1 ? "s" : "");
      // What to restart: services by systemctl; the rest by hand.
      std::string system_services;
      std::map<std::string, std::string> user_services;  // manager -> units
      std::string by_hand;
      for (const UnitGroup& g : groups) {
        if (!g.unit.name.empty() && ends_with(g.unit.name, ".service") && valid_unit_name(g.unit.name) &&
            (g.unit.manager.empty() || valid_unit_name(g.unit.manager))) {
          std::string& list = g.unit.manager.empty() ? system_services : user_services[g.unit.manager];
          list += " " + escaped(g.unit.name);
          continue;
        }
        for (const StaleProcess* p : g.procs) {
          by_hand += by_hand.empty() ? "" : ", ";
          by_hand += "pid " + std::to_string(p->proc.pid) + " (" + escaped(p->proc.comm) + ")";
          if (!g.unit.name.empty()) by_hand += " in " + unit_cell(g.unit);
        }
      }
      if (!system_services.empty()) std::printf("Restart:\n  systemctl restart%s\n", system_services.c_str());
      for (const auto& [manager, units] : user_services)
        std::printf("Restart (units of %s):\n  systemctl --user -M %s@ restart%s\n", escaped(manager).c_str(),
                    escaped(user_of_manager(manager)).c_str(), units.c_str());
      if (!by_hand.empty()) std::printf("Restart by hand (not in a restartable systemd service): %s\n", by_hand.c_str());
    }
  }
  const bool written = answer_written("stale");
  warn_uninspected("stale", counts, "may run stale code too", "only this namespace's processes are yours to restart");
  if (!written) return kExitError;
  if (!stale.empty()) return 1;
  return counts.incomplete() ? kExitIncomplete : 0;
}

}  // namespace tg::inspect
