// In-process cost of the shim on open(): every benchmark is a pair of
// variants in the same process, measured paired:
//
//   NAME/libc_vs_interposed
//     A: glibc's own open64, looked up in libc.so.6 itself, so no preload is
//        in the way;
//     B: the open64 that the program would call, found with
//        dlsym(RTLD_DEFAULT): the shim's when it is preloaded.
//
// Run it with LD_PRELOAD=libtruncguard.so for the figures; run it without as
// the control (both variants are then glibc's, and their ratio shows the
// method's own noise). It does not link the shim.
//
// Paired: one iteration of a benchmark is a slice of k calls of A and a slice
// of k calls of B back to back, in alternating order (BM_pair below); the
// figure is the median over the pairs of B's slice time / A's, reported as
// the counter "ratio" (with "a_us" and "b_us", each side's median time per
// call). Timing the two variants as separate benchmarks and comparing the
// medians of their repetitions read 16% apart for two identical variants on a
// 2-core host shared with test suites: a load that lasts longer than a
// repetition falls on one variant's repetitions and not the other's. A pair
// lasts tens of microseconds, so the load falls on both halves alike.
//
// Timing of a call: the pass-through benchmarks time open+close as a whole.
// The O_TRUNC benchmarks time the open call alone (one steady_clock read
// before and one after it), then untimed put the file back as it was (its
// content written back, the new file removed, the mapping undone), so every
// call takes the same path through the shim.
//
// trunc_text/libc_vs_libc_*_probe replay the shim's own system calls with
// glibc's (see probe() below) against glibc's open alone, to price them and the
// cheaper sequences suggested in docs/performance.md, without changing the shim.
//
// Environment: TG_BENCH_DIR, a directory for the files (default: a new one
// under $TMPDIR or /tmp, removed at the end); TG_BENCH_SLICE, calls per slice
// (default 16 for open+close, 8 for the O_TRUNC opens, 1 for replace_mapped);
// TG_BENCH_ORDER set: also the counters ratio_a_first and ratio_b_first, the
// median ratio of the pairs where A ran first and of those where B did.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using OpenFn = int (*)(const char*, int, ...);

OpenFn g_libc_open = nullptr;
OpenFn g_interposed_open = nullptr;
// glibc's own syscall(), not the one the program would call: the shim
// interposes syscall() too, and takes SYS_ftruncate and SYS_fcntl in as
// ftruncate() and fcntl() are (found as g_libc_open is).
using SyscallFn = long (*)(long, ...);
SyscallFn g_libc_syscall = nullptr;
std::string g_dir;
bool g_remove_dir = false;

struct File {
  std::string path;
  std::string content;
};
File g_text, g_rel, g_dyn, g_mapped, g_missing;

std::string elf_image(uint16_t type, size_t size) {
  std::string s(size, '\0');
  Elf64_Ehdr h{};
  std::memcpy(h.e_ident, ELFMAG, SELFMAG);
  h.e_ident[EI_CLASS] = ELFCLASS64;
  h.e_ident[EI_DATA] = ELFDATA2LSB;
  h.e_ident[EI_VERSION] = EV_CURRENT;
  h.e_type = type;
  h.e_machine = EM_X86_64;
  h.e_version = EV_CURRENT;
  h.e_ehsize = sizeof h;
  std::memcpy(s.data(), &h, sizeof h);
  return s;
}

void write_file(const File& f) {
  int fd = g_libc_open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd < 0 || write(fd, f.content.data(), f.content.size()) != static_cast<ssize_t>(f.content.size())) {
    std::perror(f.path.c_str());
    std::exit(1);
  }
  close(fd);
}

void write_back(benchmark::State& st, int fd, const File& f) {
  if (write(fd, f.content.data(), f.content.size()) != static_cast<ssize_t>(f.content.size()))
    st.SkipWithError("write back failed");
}

using Clock = std::chrono::steady_clock;
inline double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the shim does before a truncating open of a non-ELF file, replayed with
// glibc's calls (no preload needed), to price each of its system calls and
// the variants suggested in docs/performance.md:
//   shim_like        fstatat, open(O_RDONLY), fstat, pread(18 bytes), close
//   noatime          the same, the open with O_NOATIME (no atime update on
//                    disk filesystems with relatime: the pread of a file
//                    modified since it was last read writes its inode)
//   noatime_nofstat  and without the fstat that checks the open found the
//                    file that fstatat saw
//   fstatat_only     the fstatat alone: what a file too small to be ELF
//                    (under 52 bytes) or a file proven not ELF would cost
// And other designs, which replace the caller's open(O_TRUNC) itself:
//   open_first       open(O_WRONLY) without O_TRUNC, fstat on that fd, then
//                    ftruncate: what a file known small would cost if the
//                    caller's own open came first
//   open_first_header the same with the header read in between (open
//                    O_RDONLY|O_NOATIME, pread, close): a file of 52 bytes
//                    or more, whose header a write-only fd can't read
//   lease_on_fd      open(O_WRONLY), then the kernel asked for a write lease
//                    on that very fd (F_SETSIG, F_SETLEASE, F_UNLCK, F_SETSIG
//                    back) around the ftruncate: no header read at all
enum class Probe { none, shim_like, noatime, noatime_nofstat, fstatat_only, open_first, open_first_header,
                   lease_on_fd };

// The designs that replace the open: returns the fd, truncated. Raw system
// calls, as the shim would make them: this process runs preloaded, and the
// shim's own ftruncate and fcntl wrappers must not be in the way.
int open_instead(benchmark::State& st, const char* p, Probe how) {
  int fd = g_libc_open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fd;
  struct stat a;
  if (how != Probe::lease_on_fd && g_libc_syscall(SYS_fstat, fd, &a) < 0) st.SkipWithError("fstat failed");
  if (how == Probe::open_first_header) {
    int r = g_libc_open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOATIME);
    unsigned char h[18];
    if (r < 0 || pread(r, h, sizeof h, 0) < 0) st.SkipWithError("header read failed");
    benchmark::DoNotOptimize(h);
    g_libc_syscall(SYS_close, r);
  }
  if (how == Probe::lease_on_fd) {
    if (g_libc_syscall(SYS_fcntl, fd, F_SETSIG, SIGURG) < 0 || g_libc_syscall(SYS_fcntl, fd, F_SETLEASE, F_WRLCK) < 0)
      st.SkipWithError("lease refused");
  }
  if (g_libc_syscall(SYS_ftruncate, fd, 0) < 0) st.SkipWithError("ftruncate failed");
  if (how == Probe::lease_on_fd) {
    g_libc_syscall(SYS_fcntl, fd, F_SETLEASE, F_UNLCK);
    g_libc_syscall(SYS_fcntl, fd, F_SETSIG, 0);
  }
  return fd;
}

inline void probe(benchmark::State& st, const char* p, Probe how) {
  if (how == Probe::none) return;
  struct stat a, b;
  if (fstatat(AT_FDCWD, p, &a, 0) < 0) st.SkipWithError("fstatat failed");
  if (how == Probe::fstatat_only) return;
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  if (how != Probe::shim_like) flags |= O_NOATIME;
  int fd = g_libc_open(p, flags);
  if (fd < 0) {
    st.SkipWithError("probe open failed");
    return;
  }
  if (how != Probe::noatime_nofstat && fstat(fd, &b) < 0) st.SkipWithError("fstat failed");
  unsigned char h[18];
  if (pread(fd, h, sizeof h, 0) < 0) st.SkipWithError("pread failed");
  benchmark::DoNotOptimize(h);
  close(fd);
}

// What one timed call is. Every benchmark is a pair of Ops that differ in one
// thing (the open64 called, or a replayed probe before it) and run the same
// code below.
enum class Kind {
  open_close,      // open + close of an existing file, no O_TRUNC (pass-through, in place); all timed
  trunc_existing,  // open(O_WRONLY|O_TRUNC) of an existing, non-empty file; the open (and probe) timed
  trunc_new,       // open(O_WRONLY|O_CREAT|O_TRUNC) of a missing name; the open timed
  replace_mapped,  // a file this process maps executable gets new content; the write timed
};
struct Op {
  Kind kind;
  OpenFn fn;          // open_close, trunc_*: the open64 called
  int flags;          // open_close: the open's flags
  const File* file;   // trunc_existing, replace_mapped: the file
  Probe how;          // trunc_existing: the replayed probe or design, if any
  bool bare;          // replace_mapped: unlink + create instead of an open through fn
};

// The pass-through benchmarks time open+close as a whole. The O_TRUNC ones
// time the open call alone (one steady_clock read before and one after it),
// then untimed put the file back as it was (its content written back, the new
// file removed), so every call takes the same path through the shim.
// replace_mapped times open(O_TRUNC)+write+close through fn against install(1)'s
// unlink + open(O_CREAT|O_EXCL) + write + close:
//   bare_syscalls  unlink + open(O_CREAT|O_EXCL) + write + close
//   interposed     open(O_WRONLY|O_TRUNC) + write + close, which the shim turns
//                  into lease proof (refused), /proc scan, temp file, rename
// the mapping made before and undone after, untimed.
//
// Returns the timed seconds of k calls, or a negative number on an error
// (already reported to st).
double run_slice(benchmark::State& st, const Op& op, int k) {
  double t = 0;
  switch (op.kind) {
    case Kind::open_close: {
      const char* p = g_text.path.c_str();
      auto t0 = Clock::now();
      for (int i = 0; i < k; ++i) {
        int fd = op.fn(p, op.flags);
        if (fd < 0) {
          st.SkipWithError("open failed");
          return -1;
        }
        close(fd);
      }
      return seconds(t0, Clock::now());
    }
    case Kind::trunc_existing: {
      const File& f = *op.file;
      const char* p = f.path.c_str();
      for (int i = 0; i < k; ++i) {
        auto t0 = Clock::now();
        int fd;
        if (op.how == Probe::open_first || op.how == Probe::open_first_header || op.how == Probe::lease_on_fd) {
          fd = open_instead(st, p, op.how);
        } else {
          probe(st, p, op.how);
          fd = op.fn(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        }
        auto t1 = Clock::now();
        if (fd < 0) {
          st.SkipWithError("open failed");
          return -1;
        }
        t += seconds(t0, t1);
        write_back(st, fd, f);
        close(fd);
      }
      return t;
    }
    case Kind::trunc_new: {
      const char* p = g_missing.path.c_str();
      for (int i = 0; i < k; ++i) {
        auto t0 = Clock::now();
        int fd = op.fn(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        auto t1 = Clock::now();
        if (fd < 0) {
          st.SkipWithError("open failed");
          return -1;
        }
        t += seconds(t0, t1);
        close(fd);
        unlink(p);
      }
      return t;
    }
    case Kind::replace_mapped: {
      const File& f = *op.file;
      const char* p = f.path.c_str();
      for (int i = 0; i < k; ++i) {
        int rfd = g_libc_open(p, O_RDONLY | O_CLOEXEC);
        void* map =
            rfd < 0 ? MAP_FAILED : mmap(nullptr, f.content.size(), PROT_READ | PROT_EXEC, MAP_PRIVATE, rfd, 0);
        if (rfd >= 0) close(rfd);
        if (map == MAP_FAILED) {
          st.SkipWithError("cannot map the file");
          return -1;
        }
        auto t0 = Clock::now();
        int fd;
        if (op.bare) {
          unlink(p);
          fd = g_libc_open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        } else {
          fd = op.fn(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        }
        if (fd >= 0) {
          write_back(st, fd, f);
          close(fd);
        }
        auto t1 = Clock::now();
        munmap(map, f.content.size());
        if (fd < 0) {
          st.SkipWithError("open failed");
          return -1;
        }
        t += seconds(t0, t1);
      }
      return t;
    }
  }
  return -1;
}

double median_of(std::vector<double>& v) {
  if (v.empty()) return 0;
  size_t m = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + m, v.end());
  double hi = v[m];
  if (v.size() % 2) return hi;
  return (hi + *std::max_element(v.begin(), v.begin() + m)) / 2;
}

// Slice length (calls per slice): TG_BENCH_SLICE overrides every kind's.
int g_slice_override = 0;
bool g_order_counters = std::getenv("TG_BENCH_ORDER") != nullptr;
int slice_calls(Kind kind) {
  if (g_slice_override > 0) return g_slice_override;
  switch (kind) {
    case Kind::open_close: return 16;
    case Kind::trunc_existing:
    case Kind::trunc_new: return 8;
    case Kind::replace_mapped: return 1;
  }
  return 1;
}

// The paired measurement. One iteration is one pair: a slice of k calls of A
// and a slice of k calls of B, back to back (A first in even pairs, B first in
// odd ones, so that what the first slice of a pair pays, the second doesn't,
// falls on both alike). A pair lasts tens of microseconds, so what the
// machine's other work does to it mostly does the same to both halves; a
// preemption that falls on one half makes that pair's ratio an outlier, which
// the median ignores. Reported as counters:
//   ratio   the median over the pairs of B's slice time / A's: the figure
//   a_us    A's median time per call, over the slices (us)
//   b_us    B's
//   pairs   how many pairs
// The iteration time (manual) is the timed part of the pair: Google Benchmark
// uses it to choose how many pairs make --benchmark_min_time.
void BM_pair(benchmark::State& st, Op a, Op b) {
  const int k = slice_calls(a.kind);
  std::vector<double> ra, rb, ratios, first[2];
  const size_t expect = std::min<size_t>(st.max_iterations, size_t{1} << 20);
  ra.reserve(expect);
  rb.reserve(expect);
  ratios.reserve(expect);
  bool a_first = true;
  for (auto _ : st) {
    double ta, tb;
    if (a_first) {
      ta = run_slice(st, a, k);
      tb = ta < 0 ? -1 : run_slice(st, b, k);
    } else {
      tb = run_slice(st, b, k);
      ta = tb < 0 ? -1 : run_slice(st, a, k);
    }
    a_first = !a_first;
    if (ta <= 0 || tb <= 0) {
      if (!st.error_occurred()) st.SkipWithError("no time measured");
      break;
    }
    st.SetIterationTime(ta + tb);
    ra.push_back(ta / k);
    rb.push_back(tb / k);
    ratios.push_back(tb / ta);
    first[a_first].push_back(tb / ta);  // a_first was flipped: 1 = B ran first
  }
  if (ratios.empty()) return;
  st.counters["pairs"] = static_cast<double>(ratios.size());
  st.counters["ratio"] = median_of(ratios);
  st.counters["a_us"] = median_of(ra) * 1e6;
  st.counters["b_us"] = median_of(rb) * 1e6;
  if (g_order_counters) {
    st.counters["ratio_a_first"] = median_of(first[0]);
    st.counters["ratio_b_first"] = median_of(first[1]);
  }
}

void register_all() {
  // name, kind, flags, file: NAME/libc_vs_interposed, A glibc's open64, B the program's.
  const struct {
    const char* name;
    Kind kind;
    int flags;
    const File* file;
  } rows[] = {
      {"passthrough_rdonly", Kind::open_close, O_RDONLY | O_CLOEXEC, nullptr},
      {"passthrough_wronly_append", Kind::open_close, O_WRONLY | O_APPEND | O_CLOEXEC, nullptr},
      {"inplace_wronly", Kind::open_close, O_WRONLY | O_CLOEXEC, nullptr},
      {"inplace_rdwr", Kind::open_close, O_RDWR | O_CLOEXEC, nullptr},
      {"trunc_text", Kind::trunc_existing, 0, &g_text},
      {"trunc_et_rel", Kind::trunc_existing, 0, &g_rel},
      {"trunc_et_dyn_unmapped", Kind::trunc_existing, 0, &g_dyn},
      {"trunc_new_file", Kind::trunc_new, 0, nullptr},
  };
  for (const auto& r : rows) {
    Op a{r.kind, g_libc_open, r.flags, r.file, Probe::none, false};
    Op b = a;
    b.fn = g_interposed_open;
    benchmark::RegisterBenchmark((std::string(r.name) + "/libc_vs_interposed").c_str(), BM_pair, a, b)
        ->UseManualTime();
  }
  // The replayed probes and the other designs, each against glibc's open
  // alone: no preload in the way.
  const struct {
    const char* name;
    Probe how;
  } probes[] = {
      {"libc_shim_like_probe", Probe::shim_like},
      {"libc_noatime_probe", Probe::noatime},
      {"libc_noatime_nofstat_probe", Probe::noatime_nofstat},
      {"libc_fstatat_only_probe", Probe::fstatat_only},
      {"libc_open_first_design", Probe::open_first},
      {"libc_open_first_header_design", Probe::open_first_header},
      {"libc_lease_on_fd_design", Probe::lease_on_fd},
  };
  for (const auto& p : probes) {
    Op a{Kind::trunc_existing, g_libc_open, 0, &g_text, Probe::none, false};
    Op b = a;
    b.how = p.how;
    benchmark::RegisterBenchmark((std::string("trunc_text/libc_vs_") + p.name).c_str(), BM_pair, a, b)
        ->UseManualTime();
  }
  Op bare{Kind::replace_mapped, g_libc_open, 0, &g_mapped, Probe::none, true};
  Op through = bare;
  through.fn = g_interposed_open;
  through.bare = false;
  benchmark::RegisterBenchmark("replace_mapped/bare_syscalls_vs_interposed", BM_pair, bare, through)
      ->UseManualTime();
}

}  // namespace

int main(int argc, char** argv) {
  void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  g_libc_open = libc ? reinterpret_cast<OpenFn>(dlsym(libc, "open64")) : nullptr;
  g_libc_syscall = libc ? reinterpret_cast<SyscallFn>(dlsym(libc, "syscall")) : nullptr;
  g_interposed_open = reinterpret_cast<OpenFn>(dlsym(RTLD_DEFAULT, "open64"));
  if (!g_libc_open || !g_interposed_open || !g_libc_syscall) {
    std::fprintf(stderr, "tg_bench_open: cannot find glibc's open64 and syscall\n");
    return 1;
  }

  if (const char* d = std::getenv("TG_BENCH_DIR")) {
    g_dir = d;
  } else {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/tg-bench-open.XXXXXX";
    if (!mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    g_dir = templ;
    g_remove_dir = true;
  }
  g_text = {g_dir + "/notes.txt", std::string(200, 'x') + "\n"};
  g_rel = {g_dir + "/module.o", elf_image(ET_REL, 4096)};
  g_dyn = {g_dir + "/libunmapped.so", elf_image(ET_DYN, 16384)};
  g_mapped = {g_dir + "/libmapped.so", elf_image(ET_DYN, 16384)};
  g_missing = {g_dir + "/new-output.txt", ""};
  for (const File* f : {&g_text, &g_rel, &g_dyn, &g_mapped}) write_file(*f);
  unlink(g_missing.path.c_str());

  benchmark::AddCustomContext("preloaded", g_libc_open != g_interposed_open ? "yes" : "no");
  benchmark::AddCustomContext("files_in", g_dir);
  if (const char* k = std::getenv("TG_BENCH_SLICE")) g_slice_override = std::atoi(k);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  for (const File* f : {&g_text, &g_rel, &g_dyn, &g_mapped, &g_missing}) unlink(f->path.c_str());
  if (g_remove_dir) rmdir(g_dir.c_str());
  return 0;
}
