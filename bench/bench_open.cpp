// In-process cost of the shim on open(): every benchmark exists twice, in the
// same process, run interleaved:
//
//   NAME/libc         glibc's own open64, looked up in libc.so.6 itself, so no
//                     preload is in the way;
//   NAME/interposed   the open64 that the program would call, found with
//                     dlsym(RTLD_DEFAULT): the shim's when it is preloaded.
//
// Run it with LD_PRELOAD=libtruncguard.so for the figures; run it without as
// the control (both variants are then glibc's, and their ratio shows the
// method's own noise). It does not link the shim.
//
// Timing: the pass-through benchmarks time open+close as a whole. The O_TRUNC
// benchmarks time the open call alone (manual time: one steady_clock read
// before and one after it), then untimed put the file back as it was (its
// content written back, the new file removed, the mapping undone), so every
// iteration takes the same path through the shim.
//
// trunc_text/libc_*_probe replay the shim's own system calls with glibc's
// (see probe() below), to price them and the cheaper sequences suggested in
// docs/performance.md, without changing the shim.
//
// Environment: TG_BENCH_DIR, a directory for the files (default: a new one
// under $TMPDIR or /tmp, removed at the end).
#include <benchmark/benchmark.h>

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

// open + close of an existing file, no O_TRUNC: the pass-through path.
void BM_passthrough(benchmark::State& st, OpenFn open_fn, int flags) {
  const char* p = g_text.path.c_str();
  for (auto _ : st) {
    int fd = open_fn(p, flags);
    if (fd < 0) {
      st.SkipWithError("open failed");
      break;
    }
    close(fd);
  }
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

// open(O_WRONLY|O_TRUNC) of an existing, non-empty file; only the open (and
// the replayed probe, if any) is timed.
void BM_trunc_existing(benchmark::State& st, OpenFn open_fn, const File* f, Probe how) {
  const char* p = f->path.c_str();
  for (auto _ : st) {
    auto t0 = Clock::now();
    int fd;
    if (how == Probe::open_first || how == Probe::open_first_header || how == Probe::lease_on_fd) {
      fd = open_instead(st, p, how);
    } else {
      probe(st, p, how);
      fd = open_fn(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
    }
    auto t1 = Clock::now();
    if (fd < 0) {
      st.SkipWithError("open failed");
      break;
    }
    write_back(st, fd, *f);
    close(fd);
    st.SetIterationTime(seconds(t0, t1));
  }
}

// open(O_WRONLY|O_CREAT|O_TRUNC) of a missing name (a compiler writing a new
// output, a shell's "> new"); only the open is timed.
void BM_trunc_new(benchmark::State& st, OpenFn open_fn) {
  const char* p = g_missing.path.c_str();
  for (auto _ : st) {
    auto t0 = Clock::now();
    int fd = open_fn(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    auto t1 = Clock::now();
    if (fd < 0) {
      st.SkipWithError("open failed");
      break;
    }
    close(fd);
    unlink(p);
    st.SetIterationTime(seconds(t0, t1));
  }
}

// A file this process maps executable gets new content. Timed: the write
// itself, the way each side does it:
//   bare_syscalls: unlink + open(O_CREAT|O_EXCL) + write + close (install(1)'s calls)
//   interposed:    open(O_WRONLY|O_TRUNC) + write + close, which the shim turns
//                  into lease proof (refused), /proc scan, temp file, rename
// Untimed: the mapping is made before and undone after.
void BM_replace_mapped(benchmark::State& st, bool bare) {
  const File& f = g_mapped;
  const char* p = f.path.c_str();
  for (auto _ : st) {
    int rfd = g_libc_open(p, O_RDONLY | O_CLOEXEC);
    void* map = rfd < 0 ? MAP_FAILED : mmap(nullptr, f.content.size(), PROT_READ | PROT_EXEC, MAP_PRIVATE, rfd, 0);
    if (rfd >= 0) close(rfd);
    if (map == MAP_FAILED) {
      st.SkipWithError("cannot map the file");
      break;
    }
    auto t0 = Clock::now();
    int fd;
    if (bare) {
      unlink(p);
      fd = g_libc_open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    } else {
      fd = g_interposed_open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    }
    if (fd >= 0) {
      write_back(st, fd, f);
      close(fd);
    }
    auto t1 = Clock::now();
    munmap(map, f.content.size());
    if (fd < 0) {
      st.SkipWithError("open failed");
      break;
    }
    st.SetIterationTime(seconds(t0, t1));
  }
}

void register_all() {
  struct Side {
    const char* name;
    OpenFn fn;
  } sides[] = {{"libc", g_libc_open}, {"interposed", g_interposed_open}};
  for (const Side& s : sides) {
    std::string n = s.name;
    benchmark::RegisterBenchmark(("passthrough_rdonly/" + n).c_str(), BM_passthrough, s.fn, O_RDONLY | O_CLOEXEC);
    benchmark::RegisterBenchmark(("passthrough_wronly_append/" + n).c_str(), BM_passthrough, s.fn,
                                 O_WRONLY | O_APPEND | O_CLOEXEC);
    benchmark::RegisterBenchmark(("inplace_wronly/" + n).c_str(), BM_passthrough, s.fn, O_WRONLY | O_CLOEXEC);
    benchmark::RegisterBenchmark(("inplace_rdwr/" + n).c_str(), BM_passthrough, s.fn, O_RDWR | O_CLOEXEC);
    benchmark::RegisterBenchmark(("trunc_text/" + n).c_str(), BM_trunc_existing, s.fn, &g_text, Probe::none)
        ->UseManualTime();
    benchmark::RegisterBenchmark(("trunc_et_rel/" + n).c_str(), BM_trunc_existing, s.fn, &g_rel, Probe::none)
        ->UseManualTime();
    benchmark::RegisterBenchmark(("trunc_et_dyn_unmapped/" + n).c_str(), BM_trunc_existing, s.fn, &g_dyn,
                                 Probe::none)
        ->UseManualTime();
    benchmark::RegisterBenchmark(("trunc_new_file/" + n).c_str(), BM_trunc_new, s.fn)->UseManualTime();
  }
  // The replayed probes and the other designs: glibc's open, no preload in the way.
  const struct {
    const char* name;
    Probe how;
  } probes[] = {
      {"trunc_text/libc_shim_like_probe", Probe::shim_like},
      {"trunc_text/libc_noatime_probe", Probe::noatime},
      {"trunc_text/libc_noatime_nofstat_probe", Probe::noatime_nofstat},
      {"trunc_text/libc_fstatat_only_probe", Probe::fstatat_only},
      {"trunc_text/libc_open_first_design", Probe::open_first},
      {"trunc_text/libc_open_first_header_design", Probe::open_first_header},
      {"trunc_text/libc_lease_on_fd_design", Probe::lease_on_fd},
  };
  for (const auto& p : probes)
    benchmark::RegisterBenchmark(p.name, BM_trunc_existing, g_libc_open, &g_text, p.how)->UseManualTime();
  benchmark::RegisterBenchmark("replace_mapped/bare_syscalls", BM_replace_mapped, true)->UseManualTime();
  benchmark::RegisterBenchmark("replace_mapped/interposed", BM_replace_mapped, false)->UseManualTime();
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
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  for (const File* f : {&g_text, &g_rel, &g_dyn, &g_mapped, &g_missing}) unlink(f->path.c_str());
  if (g_remove_dir) rmdir(g_dir.c_str());
  return 0;
}
