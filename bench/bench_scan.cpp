// The "who maps this file" scan of scope `system`, against the number of
// processes, and the write-lease proof that the shim tries before it.
//
// The benchmark starts N sleeping processes (/bin/sleep, each with
// PR_SET_PDEATHSIG, killed and reaped at the end) on top of what the machine
// runs, for each N in TG_BENCH_SLEEPERS (default "10,100,1000"), and walks
// /proc looking for a file that nobody maps (the worst case: every process is
// read to the end). Variants, all over the same processes:
//
//   scan_floor/N      open + close /proc/PID/maps of every process: the floor
//                     any maps-based scan pays;
//   scan_procmap/N    + maps_fd_maps_exec (PROCMAP_QUERY ioctls);
//   scan_text/N       + maps_fd_text_exec: pread() in 4 KiB chunks into the text reader,
//                     as the shim's fallback for kernels before 6.11;
//   scan_processes/N  the shim's own tg::scan_processes(), as the guard calls it.
//
// Counters: pids (numeric /proc entries: user processes and kernel threads),
// inspected (maps read), uninspected (permission refused), and
// us_per_inspected / us_per_pid (microseconds per process).
//
//   snapshot_take/N   tg::take_snapshot(): the same walk, keeping every
//                     executable file mapping (what the first file of a
//                     deploy pays);
//   snapshot_lookup/N tg::lookup() in it: what each further file pays.
//
//   lease_proof/granted  tg::proves_unshared() on a file nobody else has open
//   lease_proof/refused  the same with a second open file on it (a mapping
//                        holds one): what the guard pays before it scans.
#include <benchmark/benchmark.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "maps_reader.hpp"

namespace {

std::vector<pid_t> g_sleepers;
tg::FileId g_target;
std::string g_target_path;

// Starts or stops sleepers until exactly n run. Each is waited for until it
// has exec'd /bin/sleep (a close-on-exec pipe reads EOF), so the maps walked
// are sleep's, not a copy of this process.
void ensure_sleepers(size_t n) {
  const pid_t parent = getpid();
  while (g_sleepers.size() < n) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      std::perror("pipe2");
      std::exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      // argv[0] of its own: scripts/bench.sh counts what is left of these
      // by it, not the machine's other sleeps.
      execl("/bin/sleep", "tg-bench-sleeper", "3600", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(p[0]);
    g_sleepers.push_back(pid);
  }
  while (g_sleepers.size() > n) {
    pid_t pid = g_sleepers.back();
    g_sleepers.pop_back();
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

void stop_all_sleepers() { ensure_sleepers(0); }

struct Tally {
  long pids = 0, inspected = 0, uninspected = 0, mapped = 0;
};

// The /proc walk of tg::scan_processes (tg::for_each_process, tg::open_maps),
// with `per_fd` deciding what is read.
template <typename PerFd>
Tally walk(PerFd per_fd) {
  Tally t;
  tg::for_each_process([&](pid_t pid) {
    ++t.pids;
    int fd = tg::open_maps(pid);
    if (fd < 0) {
      if (fd == -EACCES || fd == -EPERM) ++t.uninspected;
      return true;
    }
    switch (per_fd(fd)) {
      case tg::MapsAnswer::mapped: ++t.mapped; ++t.inspected; break;
      case tg::MapsAnswer::not_mapped: ++t.inspected; break;
      case tg::MapsAnswer::no_access: ++t.uninspected; break;
      case tg::MapsAnswer::gone: break;
    }
    close(fd);
    return true;
  });
  return t;
}

// A kernel thread has no mm: its maps file opens, then reads nothing (text)
// or answers ESRCH (ioctl). The floor counts it as not inspected either way.
tg::MapsAnswer floor_only(int fd) {
  (void)fd;
  return tg::MapsAnswer::not_mapped;
}

void set_counters(benchmark::State& st, const Tally& t) {
  st.counters["pids"] = static_cast<double>(t.pids);
  st.counters["inspected"] = static_cast<double>(t.inspected);
  st.counters["uninspected"] = static_cast<double>(t.uninspected);
  st.counters["mapped"] = static_cast<double>(t.mapped);
  // Seconds per process, as Google Benchmark prints rates inverted: reported in us by the script.
  st.counters["s_per_inspected"] =
      benchmark::Counter(static_cast<double>(t.inspected), benchmark::Counter::kIsIterationInvariantRate |
                                                               benchmark::Counter::kInvert);
  st.counters["s_per_pid"] = benchmark::Counter(
      static_cast<double>(t.pids), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_scan_floor(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  Tally t;
  for (auto _ : st) t = walk(floor_only);
  // The floor opened every maps file; count as "inspected" the ones the other
  // variants could read, so that the per-process figures compare.
  Tally real = walk([](int fd) { return tg::maps_fd_maps_exec(fd, g_target); });
  t.inspected = real.inspected;
  t.uninspected = real.uninspected;
  set_counters(st, t);
}

void BM_scan_procmap(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  Tally t;
  for (auto _ : st) t = walk([](int fd) { return tg::maps_fd_maps_exec(fd, g_target); });
  set_counters(st, t);
}

void BM_scan_text(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  Tally t;
  for (auto _ : st) t = walk([](int fd) { return tg::maps_fd_text_exec(fd, g_target); });
  set_counters(st, t);
}

void BM_scan_processes(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  tg::ScanResult r;
  for (auto _ : st) r = tg::scan_processes(g_target);
  Tally t;
  t.pids = walk(floor_only).pids;
  t.inspected = r.inspected;
  t.uninspected = r.uninspected;
  t.mapped = r.mapped;
  set_counters(st, t);
}

// The snapshot that serves many files of one deploy (tg::take_snapshot):
// the same walk, keeping every executable file mapping; then one file's
// answer from it (tg::lookup), which is what each further file pays.
tg::Snapshot g_snapshot;

void BM_snapshot_take(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  bool ok = true;
  for (auto _ : st) ok = tg::take_snapshot(&g_snapshot);
  if (!ok) st.SkipWithError("the snapshot overflowed");
  Tally t;
  t.pids = walk(floor_only).pids;
  t.inspected = g_snapshot.inspected;
  t.uninspected = g_snapshot.uninspected;
  set_counters(st, t);
  st.counters["exec_mappings"] = static_cast<double>(g_snapshot.count);
}

void BM_snapshot_lookup(benchmark::State& st) {
  ensure_sleepers(static_cast<size_t>(st.range(0)));
  if (!tg::take_snapshot(&g_snapshot)) {
    st.SkipWithError("the snapshot overflowed");
    return;
  }
  tg::ScanResult r;
  for (auto _ : st) benchmark::DoNotOptimize(r = tg::lookup(g_snapshot, g_target));
  st.counters["exec_mappings"] = static_cast<double>(g_snapshot.count);
}

void BM_lease_proof(benchmark::State& st, bool refused) {
  ensure_sleepers(0);
  int fd = open(g_target_path.c_str(), O_RDONLY | O_CLOEXEC);
  int other = refused ? open(g_target_path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0 || (refused && other < 0)) {
    st.SkipWithError("cannot open the target file");
    return;
  }
  bool answer = false;
  for (auto _ : st) answer = tg::proves_unshared(fd);
  if (answer == refused) st.SkipWithError(refused ? "the lease was granted" : "the lease was refused");
  if (other >= 0) close(other);
  close(fd);
}

std::vector<long> sleeper_counts() {
  std::vector<long> v;
  const char* s = std::getenv("TG_BENCH_SLEEPERS");
  std::string list = s && *s ? s : "10,100,1000";
  for (size_t pos = 0; pos < list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    v.push_back(std::atol(list.substr(pos, comma - pos).c_str()));
    pos = comma + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/tg-bench-scan.XXXXXX";
  int fd = mkstemp(templ.data());
  struct stat st;
  if (fd < 0 || write(fd, "\x7f" "ELF", 4) != 4 || fstat(fd, &st) < 0) {
    std::perror("mkstemp");
    return 1;
  }
  close(fd);
  g_target_path = templ;
  g_target = tg::file_id_of(st.st_dev, st.st_ino);

  benchmark::RegisterBenchmark("lease_proof/granted", BM_lease_proof, false);
  benchmark::RegisterBenchmark("lease_proof/refused", BM_lease_proof, true);
  // Grouped by N, smallest first, so the sleepers are started once per N.
  for (long n : sleeper_counts()) {
    benchmark::RegisterBenchmark("scan_floor", BM_scan_floor)->Arg(n)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("scan_procmap", BM_scan_procmap)->Arg(n)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("scan_text", BM_scan_text)->Arg(n)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("scan_processes", BM_scan_processes)->Arg(n)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("snapshot_take", BM_snapshot_take)->Arg(n)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("snapshot_lookup", BM_snapshot_lookup)->Arg(n)->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  stop_all_sleepers();
  unlink(g_target_path.c_str());
  return 0;
}
