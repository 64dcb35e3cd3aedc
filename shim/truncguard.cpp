// truncguard: run a command with libtruncguard.so preloaded; or, as
// `truncguard who FILE...` and `truncguard stale`, show who maps what.
//
//   truncguard [OPTIONS] [--] COMMAND [ARG...]
//   truncguard who [--json | -q] FILE...
//   truncguard stale [--json | -q]
//
// Prepends the library to LD_PRELOAD (keeping what is there), exports the
// options as TRUNCGUARD_* variables and execs the command, so the exit status
// is the command's own (as eatmydata and faketime do). The subcommands are
// recognised only as the first argument; `truncguard -- who` runs a program
// named who.
#include <climits>
#include <fcntl.h>
#include <getopt.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "elf_probe.hpp"
#include "inspect.hpp"
#include "pending.hpp"
#include "program_check.hpp"
#include "settings.hpp"

#ifndef TG_VERSION
#define TG_VERSION "unknown"
#endif
#ifndef TG_PREFIX
#define TG_PREFIX "/usr/local"
#endif
#ifndef TG_BINDIR
#define TG_BINDIR "bin"
#endif
#ifndef TG_LIBDIR
#define TG_LIBDIR "lib"
#endif

namespace {

constexpr const char* kLibName = "libtruncguard.so";
// Exit statuses of our own failures, as env(1), nice(1) and timeout(1) use them.
constexpr int kExitUsage = 125;
constexpr int kExitCannotRun = 126;
constexpr int kExitNotFound = 127;

void usage(FILE* out) {
  std::fprintf(out,
      "Usage: truncguard [OPTIONS] [--] COMMAND [ARG...]\n"
      "       truncguard who [--json | -q] FILE...\n"
      "       truncguard stale [--json | -q]\n"
      "\n"
      "Run COMMAND so that overwriting a file that a running program has mapped as\n"
      "code (a loaded shared library, a running executable) gives the name a new inode\n"
      "instead of truncating it: running programs keep their code, new ones load the\n"
      "new file. The exit status is COMMAND's.\n"
      "\n"
      "Options (each sets the TRUNCGUARD_* variable named after it):\n"
      "  -s, --scope=SCOPE     which files count as in use (TRUNCGUARD_SCOPE):\n"
      "                          system  mapped executable by any process we can inspect;\n"
      "                                  if some can't be inspected (and the kernel can't\n"
      "                                  prove the file unused), or on a network filesystem\n"
      "                                  (NFS...), any ELF object (default)\n"
      "                          namespace  as system, but only the processes of this PID\n"
      "                                  namespace count (a container whose files nothing\n"
      "                                  outside it runs)\n"
      "                          self    mapped executable by the writing process itself\n"
      "                          elf     every ELF shared object or executable, no scan\n"
      "  -m, --mode=MODE       what to do instead of truncating (TRUNCGUARD_MODE):\n"
      "                          replace  temp file + rename(): the name never goes missing (default)\n"
      "                          atomic   the new file replaces the name when the writer closes it\n"
      "                          unlink   unlink then create, as install(1) does\n"
      "                          dry-run  log what would be done, change nothing\n"
      "      --on-fail=WHAT    if no new inode can be made (TRUNCGUARD_ON_FAIL):\n"
      "                          etxtbsy   fail the write with \"Text file busy\" (default)\n"
      "                          truncate  truncate anyway: the old, unsafe behaviour\n"
      "      --reload=WHAT     dlopen of a path whose file was replaced while the old one\n"
      "                        is still loaded (TRUNCGUARD_RELOAD):\n"
      "                          warn   log a \"stale\" line; the program gets the old object (default)\n"
      "                          fresh  load the new file under a fresh name, as hot-reload tools do\n"
      "  -d, --debug=LIST      log categories, comma-separated (TRUNCGUARD_DEBUG):\n"
      "                          rewrites, reloads (both on by default), decisions,\n"
      "                          backtrace, bindings, files, all, none; help lists them;\n"
      "                          the list replaces the default\n"
      "  -l, --log=FILE        log to FILE.PID instead of stderr (TRUNCGUARD_LOG)\n"
      "      --log-format=F    text (LD_DEBUG style, default) or json: one object per line\n"
      "                        (TRUNCGUARD_LOG_FORMAT)\n"
      "      --json            the same as --log-format=json\n"
      "      --audit           also load the library as an LD_AUDIT module: every real\n"
      "                        load and unload, every PLT binding (adds the bindings and\n"
      "                        files categories unless --debug is given)\n"
      "      --print-library   print the path of libtruncguard.so and exit\n"
      "  -h, --help            show this help and exit\n"
      "  -V, --version         show the version and exit\n"
      "\n"
      "Subcommands (first argument only; 'truncguard -- who' runs a program named who):\n"
      "  who FILE...           the processes that map each FILE: pid, user, command,\n"
      "                        code or data, current or replaced inode, systemd unit\n"
      "  stale                 the processes running code from replaced or deleted\n"
      "                        files, by systemd unit: what to restart after a deploy\n"
      "  (truncguard who --help and truncguard stale --help say more)\n"
      "\n"
      "Examples:\n"
      "  truncguard cp build/libfoo.so /opt/app/lib/libfoo.so\n"
      "  truncguard --mode=dry-run --debug=decisions,rewrites make install\n"
      "  truncguard --json --log=deploy.log ./deploy.sh\n"
      "  LD_PRELOAD=$(truncguard --print-library) legacy-daemon\n"
      "  truncguard who /opt/app/lib/libfoo.so\n"
      "  truncguard stale\n"
      "\n"
      "Exit status: COMMAND's, or 125 for a usage error, 126 if COMMAND can't be run,\n"
      "127 if it was not found. who and stale: 0, 1, 2 or 3 (see their --help).\n"
      "Settings, log format and limits: truncguard(7). The command: truncguard(1).\n");
}

// What the user typed, escaped as who, stale and the log print names: an
// option's value or a command name with an escape sequence or a C1 control
// must not repaint the terminal that reads the error.
std::string shown(const char* raw) { return tg::inspect::escaped(raw); }

[[noreturn]] void die_usage(const char* fmt, const char* a, const char* b = "") {
  std::fprintf(stderr, "truncguard: ");
  std::fprintf(stderr, fmt, shown(a).c_str(), shown(b).c_str());
  std::fprintf(stderr, "\nTry 'truncguard --help' for more information.\n");
  std::exit(kExitUsage);
}

// A regular file this command may read: a FIFO or a device put at the
// library's name would block the command's own read of it (and ld.so's in the
// program) for good.
bool readable_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), R_OK) == 0;
}

std::string dirname_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
}

// PREFIX/DIR, or DIR itself when meson was given an absolute directory
// outside the prefix (e.g. -Dlibdir=/opt/lib).
std::string under_prefix(const std::string& prefix, const char* dir) {
  return dir[0] == '/' ? std::string(dir) : prefix + "/" + dir;
}

// The library next to the command (build tree), or in PREFIX/LIBDIR relative to
// where the command is installed (relocatable: a DESTDIR tree, a moved prefix,
// a package unpacked with dpkg -x), or where it was installed.
std::string find_library() {
  std::string self;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    self = buf;
  } else if (const auto* exec_fn = reinterpret_cast<const char*>(getauxval(AT_EXECFN))) {
    // No /proc (a chroot or a container without it): the name this command
    // was executed by (a full path when found through PATH), resolved as the
    // kernel's link would be. Without it, a build tree or a moved install
    // found no library, and refused to run (126).
    char real[PATH_MAX];
    if (realpath(exec_fn, real)) self = real;
  }
  if (!self.empty()) {
    std::string dir = dirname_of(self);
    if (readable_file(dir + "/" + kLibName)) return dir + "/" + kLibName;
    const std::string bindir = std::string("/") + TG_BINDIR;
    if (TG_BINDIR[0] != '/' && TG_LIBDIR[0] != '/' && dir.size() > bindir.size() &&
        dir.compare(dir.size() - bindir.size(), bindir.size(), bindir) == 0) {
      std::string prefix = dir.substr(0, dir.size() - bindir.size());
      std::string lib = prefix + "/" + TG_LIBDIR + "/" + kLibName;
      if (readable_file(lib)) return lib;
    }
  }
  std::string installed = under_prefix(TG_PREFIX, TG_LIBDIR) + "/" + kLibName;
  if (readable_file(installed)) return installed;
  return {};
}

void print_debug_help() {
  std::printf("Valid options for the TRUNCGUARD_DEBUG environment variable (--debug) are:\n\n");
  for (const tg::CategoryInfo* c = tg::kCategories; c->name; ++c) std::printf("  %-10s %s\n", c->name, c->help);
  std::printf("\nTo direct the output into a file instead of standard error, use TRUNCGUARD_LOG=FILE\n"
              "(--log=FILE): the output goes to FILE.PID.\n");
}

void set_env(const char* name, const char* value) {
  if (setenv(name, value, 1) != 0) {
    std::fprintf(stderr, "truncguard: cannot set %s: %s\n", name, std::strerror(errno));
    std::exit(kExitUsage);
  }
}

// Does `list`, split at `seps` as ld.so splits it, name the file at `path`
// (a path to the same device and inode)?
bool list_names(const char* list, const char* seps, const std::string& path) {
  struct stat want;
  if (stat(path.c_str(), &want) != 0) return false;
  for (const char* p = list; *p;) {
    const size_t n = std::strcspn(p, seps);
    const std::string entry(p, n);
    struct stat st;
    if (entry.find('/') != std::string::npos && stat(entry.c_str(), &st) == 0 && st.st_dev == want.st_dev &&
        st.st_ino == want.st_ino)
      return true;
    p += n;
    if (*p) ++p;
  }
  return false;
}

// NAME=ITEM:old value (ld.so's lists, split at `seps`), or NAME=ITEM; the
// list as it is if it names ITEM already (a nested truncguard): ld.so loads
// an audit module once per entry, and every line came twice.
void prepend_to_list(const char* name, const char* seps, const std::string& item) {
  std::string list = item;
  if (const char* old = getenv(name); old && *old) {
    if (list_names(old, seps, item)) return;
    list += ":";
    list += old;
  }
  set_env(name, list.c_str());
}

// Why the library found is not of this command's version, or "": its ELF
// note says which hand-over it reads (elf_probe.hpp), a build older than the
// note has none. Such a library (an install half upgraded, a command copied
// without its library that found an older one installed) may not know the
// settings this command passes: each process then warns on its own, in the
// library's words, without saying why.
std::string other_version(const std::string& lib) {
  const int fd = open(lib.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return {};
  const unsigned v = tg::hand_over_version(fd);
  close(fd);
  if (v == tg::pending::kHandOverVersion) return {};
  if (v == 0) return "it has no truncguard version note: an older build than this command's, or not truncguard";
  return "its hand-over version is " + std::to_string(v) + ", this command's " +
         std::to_string(tg::pending::kHandOverVersion);
}

// Why `cmd` could not be run (execvp's errno `e`), pointing at the cause.
std::string cannot_run_hint(const char* cmd, int e) {
  const bool bare = !std::strchr(cmd, '/');
  const std::string where = !*cmd ? "" : bare ? tg::found_in_path(cmd, false) : cmd;
  struct stat st;
  const bool exists = !where.empty() && stat(where.c_str(), &st) == 0;
  switch (e) {
    case ENOENT:
      if (!*cmd) return "the command name is empty";
      if (!exists) return bare ? "check its name, or give its path: it was not found in PATH" : "check the path";
      return (bare ? "found as " + where + ", but its" : std::string("it exists, but its")) +
             " interpreter (the #! line) or its ELF loader does not";
    case EACCES: {
      if (exists && S_ISDIR(st.st_mode)) return (bare ? where : std::string("it")) + " is a directory";
      // An executable file on a noexec mount (/tmp, /dev/shm, a USB stick
      // are often mounted so): its mode is not the cause, and was all the
      // hint spoke of.
      struct statvfs fs;
      if (exists && S_ISREG(st.st_mode) && (st.st_mode & 0111) && statvfs(where.c_str(), &fs) == 0 &&
          (fs.f_flag & ST_NOEXEC))
        return (bare ? "found as " + where + ", but its" : std::string("its")) +
               " filesystem is mounted noexec: run a copy of it from another filesystem";
      // Executable to us: the kernel's exec of its #! interpreter or ELF
      // loader was refused (one without x bits), or a security module said no.
      if (exists && S_ISREG(st.st_mode) && access(where.c_str(), X_OK) == 0)
        return (bare ? "found as " + where + ", which" : std::string("it")) +
               " may be run: its interpreter (the #! line) or its ELF loader may not, or a security module "
               "refuses it";
      return "check that it is an executable file and that you may run it";
    }
    case E2BIG:
      return "the arguments and the environment are too large for one exec (see getconf ARG_MAX); "
             "truncguard adds LD_PRELOAD and its settings to the environment";
    case ELIBBAD:
      // The kernel's word for an ELF loader (PT_INTERP) that is no ELF
      // file for this machine: the program itself is fine.
      return "its ELF loader (or its #! interpreter's) is not an ELF program for this machine";
    case ENOEXEC:
    case EINVAL:
      return "check that it is a program for this machine";
    default:
      return {};
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Subcommands: the first argument only, so options and `--` keep their meaning.
  if (argc > 1 && std::strcmp(argv[1], "who") == 0) return tg::inspect::who_main(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "stale") == 0) return tg::inspect::stale_main(argc - 1, argv + 1);

  enum { kOnFail = 256, kPrintLibrary, kLogFormat, kJson, kReload, kAudit };
  static const option kOptions[] = {
      {"scope", required_argument, nullptr, 's'},
      {"mode", required_argument, nullptr, 'm'},
      {"on-fail", required_argument, nullptr, kOnFail},
      {"reload", required_argument, nullptr, kReload},
      {"debug", required_argument, nullptr, 'd'},
      {"log", required_argument, nullptr, 'l'},
      {"log-format", required_argument, nullptr, kLogFormat},
      {"json", no_argument, nullptr, kJson},
      {"print-library", no_argument, nullptr, kPrintLibrary},
      {"audit", no_argument, nullptr, kAudit},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  bool print_library = false;
  bool audit = false;
  bool debug_given = false;
  opterr = 0;
  int c;
  // '+': stop at the command, so `truncguard cp -r a b` leaves -r to cp.
  // ':' after '+': a missing argument returns ':', told apart from an unknown option.
  while ((c = getopt_long(argc, argv, "+:s:m:d:l:hV", kOptions, nullptr)) != -1) {
    switch (c) {
      case 's': {
        tg::Scope s;
        if (!tg::parse_scope(optarg, &s)) die_usage("invalid --scope '%s' (expected system, namespace, self or elf)", optarg);
        set_env("TRUNCGUARD_SCOPE", optarg);
        break;
      }
      case 'm': {
        tg::Mode m;
        if (!tg::parse_mode(optarg, &m)) die_usage("invalid --mode '%s' (expected replace, atomic, unlink or dry-run)", optarg);
        set_env("TRUNCGUARD_MODE", optarg);
        break;
      }
      case kOnFail: {
        tg::OnFail f;
        if (!tg::parse_on_fail(optarg, &f)) die_usage("invalid --on-fail '%s' (expected etxtbsy or truncate)", optarg);
        set_env("TRUNCGUARD_ON_FAIL", optarg);
        break;
      }
      case 'd': {
        unsigned bits = 0;
        bool help = false;
        bool named = false;
        char bad[64];
        if (!tg::parse_debug(optarg, &bits, &help, bad, sizeof bad, &named))
          die_usage("unknown debug category '%s' in --debug=%s (try --debug=help)", bad, optarg);
        // An empty list (--debug="$UNSET") would keep the default, not replace it.
        if (!named) die_usage("--debug='%s' names no category (try --debug=help; --debug=none logs none)", optarg);
        if (help) {
          print_debug_help();
          return 0;
        }
        set_env("TRUNCGUARD_DEBUG", optarg);
        debug_given = true;
        break;
      }
      case 'l': {
        if (!*optarg) die_usage("--log needs a file name%s", "");
        // Absolute, so commands that change directory still log to one place.
        std::string path = optarg;
        if (path[0] != '/') {
          char cwd[4096];
          if (!getcwd(cwd, sizeof cwd)) die_usage("cannot resolve --log '%s': %s", optarg, std::strerror(errno));
          path = std::string(cwd) + "/" + path;
        }
        set_env("TRUNCGUARD_LOG", path.c_str());
        break;
      }
      case kReload: {
        tg::Reload r;
        if (!tg::parse_reload(optarg, &r)) die_usage("invalid --reload '%s' (expected warn or fresh)", optarg);
        set_env("TRUNCGUARD_RELOAD", optarg);
        break;
      }
      case kLogFormat: {
        tg::LogFormat f;
        if (!tg::parse_log_format(optarg, &f)) die_usage("invalid --log-format '%s' (expected text or json)", optarg);
        set_env("TRUNCGUARD_LOG_FORMAT", optarg);
        break;
      }
      case kJson: set_env("TRUNCGUARD_LOG_FORMAT", "json"); break;
      case kPrintLibrary: print_library = true; break;
      case kAudit: audit = true; break;
      case 'h': usage(stdout); return 0;
      case 'V': std::printf("truncguard %s\n", TG_VERSION); return 0;
      case ':': {
        // The option as it was written (--scope, not the -s it stands for).
        const char* given = argv[optind - 1];
        char opt[3] = {'-', static_cast<char>(optopt), '\0'};
        die_usage("option '%s' needs a value%s", std::strncmp(given, "--", 2) == 0 ? given : opt, "");
      }
      case '?':
      default:
        // getopt_long's optopt: 0 for an unknown or ambiguous long option;
        // the option's value for one given a value it does not take
        // (--help=x, --json=1, as written in argv[optind - 1], which it
        // stepped past); an unknown short option's character otherwise
        // (whose argv element may be a cluster, -Vz).
        if (optopt > 0 && optopt < 256 && !std::strchr("smdlhV", optopt)) {
          char opt[3] = {'-', static_cast<char>(optopt), '\0'};
          die_usage("invalid option: '%s'%s", opt, "");
        }
        if (optopt != 0) {
          const std::string given(argv[optind - 1], std::strcspn(argv[optind - 1], "="));
          die_usage("option '%s' takes no value%s", given.c_str(), "");
        }
        die_usage("invalid option: '%s'%s", argv[optind - 1]);
    }
  }

  const std::string lib = find_library();
  if (lib.empty()) {
    std::fprintf(stderr,
                 "truncguard: cannot find %s next to this command or in %s\n"
                 "Reinstall truncguard, or run it from its build directory.\n",
                 kLibName, under_prefix(TG_PREFIX, TG_LIBDIR).c_str());
    return kExitCannotRun;
  }
  if (const std::string why = other_version(lib); !why.empty())
    std::fprintf(stderr, "truncguard: warning: %s is not of this command's version (%s); install the command "
                         "and the library together\n", shown(lib.c_str()).c_str(), why.c_str());
  if (print_library) {
    std::printf("%s\n", lib.c_str());
    return 0;
  }
  if (optind >= argc) die_usage("no command given: name the command to run, e.g. 'truncguard cp new.so /opt/app/lib/libfoo.so'%s", "");
  // ld.so splits LD_PRELOAD at spaces and colons (not tabs: that is
  // /etc/ld.so.preload's list): such a path can't be carried.
  if (lib.find_first_of(": ") != std::string::npos) {
    std::fprintf(stderr, "truncguard: the library path '%s' contains a space or a colon, which LD_PRELOAD can't carry;\n"
                         "install truncguard under a path without them.\n", shown(lib.c_str()).c_str());
    return kExitCannotRun;
  }

  // ld.so skips, without a word, an LD_AUDIT entry of NAME_MAX (255) bytes
  // or more: glibc 2.36's elf/rtld.c audit_list_next copies an entry only if
  // `len < sizeof (list->fname)`, and elf/dl-main.h declares that buffer
  // `char fname[SECURE_NAME_LIMIT]`, SECURE_NAME_LIMIT being NAME_MAX (an
  // LD_PRELOAD entry may be up to PATH_MAX - 1). From a build tree under a
  // long path, --audit did nothing at all. A short name would do, but it
  // must outlive this command (which execs, and LD_AUDIT is inherited by
  // every descendant): /proc/self/fd/N names another file in a descendant
  // that closed N, and a symlink under /tmp would be left behind with no
  // one to remove it. So it is refused, as a path ld.so can't split.
  constexpr size_t kAuditEntryMax = NAME_MAX - 1;
  if (audit && lib.size() > kAuditEntryMax) {
    std::fprintf(stderr, "truncguard: --audit: the library path is %zu bytes long and ld.so ignores an LD_AUDIT entry "
                         "longer than %zu: '%s';\n"
                         "install truncguard under a shorter path, or run without --audit.\n",
                 lib.size(), kAuditEntryMax, shown(lib.c_str()).c_str());
    return kExitCannotRun;
  }

  // Prepend, keeping what is already preloaded (as heaptrack and eatmydata do).
  prepend_to_list("LD_PRELOAD", " :", lib);
  if (audit) {
    // The same library as an rtld-audit module too: every real load and
    // unload, every PLT binding. Without --debug, it says so: the categories
    // it prints are added to those already chosen.
    prepend_to_list("LD_AUDIT", ":", lib);
    if (!debug_given) {
      const char* old = getenv("TRUNCGUARD_DEBUG");
      std::string cats = old && *old ? old : "rewrites,reloads";
      cats += ",bindings,files";
      set_env("TRUNCGUARD_DEBUG", cats.c_str());
    }
  }

  // Once, here: the library can't say it from inside a program it is not in.
  if (const std::string why = tg::why_unprotected(argv[optind]); !why.empty())
    std::fprintf(stderr, "truncguard: warning: %s %s\n", shown(argv[optind]).c_str(), shown(why.c_str()).c_str());

  execvp(argv[optind], argv + optind);
  const int e = errno;
  const std::string hint = cannot_run_hint(argv[optind], e);
  std::fprintf(stderr, "truncguard: cannot run '%s': %s%s%s%s\n", shown(argv[optind]).c_str(), std::strerror(e),
               hint.empty() ? "" : " (", shown(hint.c_str()).c_str(), hint.empty() ? "" : ")");
  return e == ENOENT ? kExitNotFound : kExitCannotRun;
}
