#include "pending.hpp"

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/auxv.h>

#include "elf_probe.hpp"
#include "hand_over.hpp"
#include "log.hpp"
#include "maps_reader.hpp"
#include "replace.hpp"
#include "scratch.hpp"
#include "signals.hpp"
#include "sys.hpp"

namespace tg::pending {

std::atomic<int> detail::g_live_slots{0};

namespace {
using detail::g_live_slots;

constexpr int kGroups = kMaxFiles;
constexpr int kSlots = 128;  // their fds, dups included
constexpr char kEnvName[] = "TRUNCGUARD_PENDING";

// The library's note: which hand-over it reads (elf_probe.hpp).
struct HandOverNote {
  uint32_t namesz, descsz, type;
  char owner[(sizeof kNoteOwner + 3) & ~size_t{3}];
  uint32_t version;
};
[[gnu::section(".note.truncguard"), gnu::used, gnu::aligned(4)]] const HandOverNote kHandOverNote = {
    sizeof kNoteOwner, 4, kNoteHandOver, "truncguard", kHandOverVersion};

// One file waiting to be published. `state` orders the lifetime:
// free -> filling (one thread owns it) -> live -> publishing -> free.
enum GroupState { kFree, kFilling, kLive, kPublishing };
struct Group {
  std::atomic<int> state{kFree};
  std::atomic<int> refs{0};  // this process's fds on it
  std::atomic<int> write_error{0};  // a write to it failed (ENOSPC...): never publish it
  std::atomic<const char*> unpublished_step{nullptr};  // with write_error: what failed, if not a write
  std::atomic<bool> synced{false};  // the writer synced it (fsync, fdatasync): publish it durably
  std::atomic<pid_t> owner{0};  // only the process that wrote it publishes (not a forked child)
  // Its last fd was closed while this process still mapped it shared and
  // writable: its one slot is a dup of ours, kept until it is unmapped.
  std::atomic<bool> kept_while_mapped{false};
  int dirfd = 0;             // set by new_group before any use; zero keeps the table in .bss
  unsigned long old_ino = 0;
  // The old file's birth time (statx), where its filesystem has one: ext4
  // gives a freed inode's number to the next file made, so a file put at the
  // name after the old one was removed can have the old number (the writer's
  // file was published over it). {0, 0}: not known, the number alone decides.
  long long old_btime_sec = 0;
  unsigned old_btime_nsec = 0;
  dev_t dev = 0;             // the unnamed inode's identity: an fd number reused after
  ino_t ino = 0;             // close_range/closefrom must never get published
  dev_t dir_dev = 0;         // the directory's: nor may a reused dirfd number take
  ino_t dir_ino = 0;         // the file into another directory
  char base[NAME_MAX + 1] = {};
  char path[kLogName] = {};  // the program's name for it, for the log (cut if longer)
};

// One fd on a pending file. The key names the fd as (owning process, fd
// number) in ONE atomic word: after a vfork the child's entries share this
// memory and use the same fd numbers as the parent's, in another fd table.
// A match must be decided by one load: reading the fd number, then the group,
// then the group's owner let a parent's close(x) take a vfork child's slot
// for its own x once the child had freed it and a parent thread reused the
// group in between (issue 5: files never published, EBADF from close).
// A slot is only ever changed by whoever moved its key to kBusy.
constexpr uint64_t kFreeKey = 0;  // (pid 0 is never a process)
constexpr uint64_t kBusyKey = ~uint64_t{0};
struct Slot {
  std::atomic<uint64_t> key{kFreeKey};
  std::atomic<int> group{0};  // read only while the key is live (zero keeps the table in .bss)
};

uint64_t slot_key(pid_t pid, int fd) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(pid)) << 32) | static_cast<uint32_t>(fd);
}
pid_t key_pid(uint64_t key) { return static_cast<pid_t>(key >> 32); }
int key_fd(uint64_t key) { return static_cast<int>(static_cast<uint32_t>(key)); }
bool key_live(uint64_t key) { return key != kFreeKey && key != kBusyKey; }

TG_LARGE_TABLE Group g_groups[kGroups];
TG_LARGE_TABLE Slot g_slots[kSlots];

// A file this process is writing: live (not being published), and its own
// (not a vfork child's left in this shared memory, nor a fork parent's).
bool live_and_mine(const Group& g, pid_t me) {
  return g.state.load(std::memory_order_acquire) == kLive && g.owner.load(std::memory_order_relaxed) == me;
}

// This process's first fd on `group` (for a file kept pending while mapped,
// its one slot: our dup), or -1.
int own_fd_on(int group, pid_t me) {
  for (const Slot& s : g_slots) {
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (key_live(key) && key_pid(key) == me && s.group.load(std::memory_order_relaxed) == group) return key_fd(key);
  }
  return -1;
}

// The group of this process's slot for `fd` (without taking it), or -1.
int find_group(int fd) {
  const uint64_t want = slot_key(sys::getpid(), fd);
  for (Slot& s : g_slots) {
    if (s.key.load(std::memory_order_acquire) != want) continue;
    const int group = s.group.load(std::memory_order_relaxed);
    // Still the same slot (not emptied and refilled meanwhile)?
    if (s.key.load(std::memory_order_acquire) == want) return group;
  }
  return -1;
}

// Empties slot `s`, which held `key` (and, if `only_group` >= 0, belongs to
// that group); returns its group, or -1 if someone else emptied it first.
int take_slot(Slot& s, uint64_t key, int only_group = -1) {
  uint64_t expected = key;
  if (!s.key.compare_exchange_strong(expected, kBusyKey, std::memory_order_acq_rel)) return -1;
  const int group = s.group.load(std::memory_order_relaxed);
  if (only_group >= 0 && group != only_group) {
    s.key.store(key, std::memory_order_release);  // refilled for another file meanwhile: leave it
    return -1;
  }
  s.key.store(kFreeKey, std::memory_order_release);
  g_live_slots.fetch_sub(1, std::memory_order_acq_rel);
  return group;
}

// Takes this process's slot for `fd`: its group, or -1 if it has none.
int take_own_slot(int fd) {
  const uint64_t want = slot_key(sys::getpid(), fd);
  for (Slot& s : g_slots)
    if (s.key.load(std::memory_order_acquire) == want) {
      const int group = take_slot(s, want);
      if (group >= 0) return group;
    }
  return -1;
}

// Takes a free slot (its key kBusy: no lookup matches it): its index, or -1.
int take_free_slot() {
  for (int i = 0; i < kSlots; ++i) {
    uint64_t expected = kFreeKey;
    if (g_slots[i].key.compare_exchange_strong(expected, kBusyKey, std::memory_order_acq_rel)) return i;
  }
  return -1;
}

// Fills slot `i`, taken by take_free_slot, with this process's `fd` on `group`.
void fill_slot(int i, int fd, int group) {
  Slot& s = g_slots[i];
  s.group.store(group, std::memory_order_relaxed);
  g_groups[group].refs.fetch_add(1, std::memory_order_acq_rel);
  g_live_slots.fetch_add(1, std::memory_order_acq_rel);
  s.key.store(slot_key(sys::getpid(), fd), std::memory_order_release);
}

bool add_slot(int fd, int group) {
  const int i = take_free_slot();
  if (i < 0) return false;
  fill_slot(i, fd, group);
  return true;
}

void free_group(Group& g) {
  // Not a number the program closed behind our back and reused: its fd now.
  if (g.dirfd >= 0 && sys::refers_to(g.dirfd, g.dir_dev, g.dir_ino)) sys::close(g.dirfd);
  g.dirfd = -1;
  g.state.store(kFree, std::memory_order_release);
}

// Links the unnamed inode open at `fd` under a temp name, renames it over the
// name, and logs it. Once only: the caller won the kLive -> kPublishing race.
// A file that will not be published, and why.
void report_unpublished(const Group& g, const char* step, int error, const char* outcome) {
  log::Event e{log::EventKind::cannot_protect};
  e.file = g.path;
  e.entry = "close";
  e.step = step;
  e.error = error;
  e.message = outcome;
  log::emit(e);
}

// The new content, linked under the temp name `tmp` and not put at the name,
// could not be removed from it (`error`): it stays there, which the log says.
void report_temp_left(const Group& g, const char* tmp, int error) {
  struct Text {
    char name[log::kPathBuf];
    char msg[log::kPathBuf + 128];
  };
  Scratch<Text> text;
  if (!text) return;
  log::escape(tmp, text->name, sizeof text->name);
  std::snprintf(text->msg, sizeof text->msg,
                "the new file, not published, could not be removed (%s): it stays as %.1100s in its directory",
                strerrordesc_np(error), text->name);
  log::note(g.path, "temp_left", text->msg);
}

// A writer that synced its file (fsync, fdatasync, O_SYNC, O_DSYNC, or all of
// its files: sync, syncfs, msync) was promised that the name holds it, crash
// or not: without truncguard its sync made the writes to the name's own inode
// durable. Here the name gets the file only now, by a link and a rename, which
// are on disk only once the directory is synced (a crash, even seconds later,
// showed the old file). Without read access to the directory, or on a
// filesystem with no fsync for directories (EINVAL: legacy 9p, a FUSE server
// that refuses FSYNCDIR), the file's own fsync, which on journaling
// filesystems commits the rename with it. Returns 0 or the errno, and in
// `step` what failed.
int sync_publication(const Group& g, int fd, const char** step) {
  sys::Fd dir(sys::openat(g.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  *step = dir.ok() ? "cannot sync the directory after the rename" : "cannot sync the file after the rename";
  long r = sys::call(SYS_fsync, dir.ok() ? dir.get() : fd);
  if (r == -EINVAL && dir.ok()) {
    *step = "cannot sync the file after the rename (the filesystem has no fsync for directories)";
    // Without truncguard the writer's close would not fail here: its sync
    // was of the file, which the kernel accepted.
    r = sys::call(SYS_fsync, fd);
    if (r == 0 && log::enabled(kRewrites))  // the publication's detail: nothing failed
      log::note(g.path, "dir_sync",
                "the filesystem has no fsync for directories (EINVAL): the rename was synced with the file's "
                "own fsync instead, which commits it on a journaling filesystem");
  }
  return r < 0 ? static_cast<int>(-r) : 0;
}

// What ended a pending file, for its "published" line: the call (JSON's
// entry) and the words of the text line.
struct Ending {
  const char* entry;
  const char* text;
};
constexpr Ending kClosed{"close", "the writer closed it"};
constexpr Ending kRenamed{"rename", "the writer renames it"};
constexpr Ending kUnmapped{"munmap", "the writer's shared mapping of it ended"};
constexpr Ending kExited{"exit", "the writer exits"};
constexpr Ending kExeced{"execve", "the writer execs, and the new program does not take it over"};
constexpr Ending kDuplicated{"dup", "the writer duplicates an fd on it, and truncguard has no room to follow the copy"};

// The file at `base` in `dirfd` (not followed): 0 and its inode number and
// birth time ({0, 0} where the filesystem has none), or -errno.
int identity(int dirfd, const char* base, unsigned long* ino, long long* btime_sec, unsigned* btime_nsec) {
  struct statx sx;
  const long r = sys::call(SYS_statx, dirfd, base, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &sx);
  if (r < 0 && r != -ENOENT && r != -ENOTDIR) {
    // No statx (a seccomp filter that refuses it): the number alone, as before.
    struct stat st;
    if (const int e = sys::fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW)) return e;
    *ino = st.st_ino;
    *btime_sec = 0;
    *btime_nsec = 0;
    return 0;
  }
  if (r < 0) return static_cast<int>(r);
  *ino = sx.stx_ino;
  const bool born = (sx.stx_mask & STATX_BTIME) != 0;
  *btime_sec = born ? sx.stx_btime.tv_sec : 0;
  *btime_nsec = born ? sx.stx_btime.tv_nsec : 0;
  return 0;
}

// Is the file at the group's name still the old file? Its number, and its
// birth time where both are known: not another file given the old one's
// number once it was freed. -errno where nothing is at the name.
int holds_old_file(const Group& g) {
  unsigned long ino;
  long long sec;
  unsigned nsec;
  if (const int r = identity(g.dirfd, g.base, &ino, &sec, &nsec)) return r;
  const bool known = (g.old_btime_sec || g.old_btime_nsec) && (sec || nsec);
  return ino == g.old_ino && (!known || (sec == g.old_btime_sec && nsec == g.old_btime_nsec));
}

int publish(Group& g, int fd, const Ending& how) {
  Publication pub{g.base, g.old_ino, 0, 0, nullptr};
  if (!sys::refers_to(fd, g.dev, g.ino)) {
    // The fd was closed behind our back (close_range, a raw syscall) and its
    // number reused: linking it would put an unrelated file at the name.
    report_unpublished(g, "the writer's fd no longer refers to the new file (closed without close())", EBADF,
                       "the old file is unchanged and the new content is lost");
    return EBADF;
  }
  if (!sys::refers_to(g.dirfd, g.dir_dev, g.dir_ino)) {
    // The program closed every fd it did not open (a close loop, closefrom)
    // and may have reused the number: never link into whatever it is now.
    report_unpublished(g, "the directory's fd was closed behind truncguard's back", EBADF,
                       "the old file is unchanged and the new content is lost");
    return EBADF;
  }
  // Another file was put at the name since the open (a package manager,
  // another deploy, another atomic writer of the same name that closed
  // first): without truncguard the writer's content went into the old inode,
  // which no longer has that name, and the newer file stayed. The rename must
  // not silently put the writer's over it. (A name removed meanwhile is
  // created again: nothing there to lose.)
  if (holds_old_file(g) == 0) {
    report_unpublished(g, "another file was put at the name since the writer opened it", EEXIST,
                       "not published: the name keeps the newer file");
    return 0;
  }
  pub.new_ino = g.ino;
  char tmp[NAME_MAX + 1];
  int r = -EEXIST, left = 0;
  for (int attempt = 0; attempt < 16 && r == -EEXIST; ++attempt) {
    temp_name(g.base, tmp, sizeof tmp);
    char proc[32];
    sys::fd_link(fd, proc, sizeof proc);
    r = sys::linkat(AT_FDCWD, proc, g.dirfd, tmp, AT_SYMLINK_FOLLOW);
    // Without /proc, AT_EMPTY_PATH does the same (it needs CAP_DAC_READ_SEARCH).
    if (r == -ENOENT) r = sys::linkat(fd, "", g.dirfd, tmp, AT_EMPTY_PATH);
  }
  if (r < 0) {
    pub.failed_step = "cannot link the new file into the directory";
    pub.error = -r;
  } else if ((r = sys::renameat(g.dirfd, tmp, g.dirfd, g.base)) < 0) {
    left = remove_temp(g.dirfd, tmp, fd);
    pub.failed_step = "cannot rename the new file over the name";
    pub.error = -r;
  }
  if (pub.failed_step) {
    report_unpublished(g, pub.failed_step, pub.error,
                       left < 0 ? "the old file is unchanged" : "the old file is unchanged and the new content is lost");
    if (left < 0) report_temp_left(g, tmp, -left);
    return pub.error;
  }
  const long fl = sys::call(SYS_fcntl, fd, F_GETFL);
  if (g.synced.load(std::memory_order_acquire) || (fl >= 0 && (fl & O_DSYNC))) {
    const char* step = nullptr;
    if ((pub.error = sync_publication(g, fd, &step)) != 0)
      report_unpublished(g, step, pub.error,
                         "published, but a crash may still show the old file");
  }
  if (log::enabled(kRewrites)) {
    log::Event e{log::EventKind::published};
    e.file = g.path;
    e.entry = how.entry;
    e.message = how.text;
    e.mode = "atomic";
    e.old_ino = pub.old_ino;
    e.new_ino = pub.new_ino;
    log::emit(e);
  }
  return pub.error;
}

// The last of this group's fds is going away: publish. Returns the errno of
// a failed publication (the writer's close reports it), or 0.
// The one end of a pending file, whoever ends it (last close, exit, exec):
// the caller won the kLive -> kPublishing race. Publishes through `fd`
// unless a write to the file failed, then frees the group. Returns the errno
// of a failed publication, or 0.
int finish(Group& g, int fd, const Ending& how) {
  const log::KeepOutOf not_into_the_file(fd);  // its lines, where fd 2 is the file
  int err = 0;
  if (const int werr = g.write_error.load(std::memory_order_acquire)) {
    // The writer was told (its write failed); the old file must stay whole.
    const char* step = g.unpublished_step.load(std::memory_order_acquire);
    report_unpublished(g, step ? step : "a write to the new file failed", werr,
                       "not published: the old file is unchanged");
  } else {
    err = publish(g, fd, how);
  }
  free_group(g);
  return err;
}

// Claims a live group for finishing; false if someone else did.
bool claim(Group& g) {
  int expected = kLive;
  return g.state.compare_exchange_strong(expected, kPublishing, std::memory_order_acq_rel);
}

int release_group(int group, int fd, const Ending& how) {
  Group& g = g_groups[group];
  if (g.refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return 0;
  return claim(g) ? finish(g, fd, how) : 0;
}

// Ends this process's pending file `group` now (exit, exec): takes each of
// this process's slots on it, as closing each fd would, so that none is left
// pointing at a group that is freed and reused. The last one publishes,
// through its fd (still open: nothing is closed here).
int end_group_now(int group, const Ending& how) {
  SignalsHeld held;  // a handler that jumps out must not leave it half-published (signals.hpp)
  held.hold();
  const pid_t me = sys::getpid();
  int err = 0;
  for (Slot& s : g_slots) {
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (!key_live(key) || key_pid(key) != me || s.group.load(std::memory_order_relaxed) != group) continue;
    if (take_slot(s, key, group) < 0) continue;  // another thread closed that fd meanwhile
    if (const int e = release_group(group, key_fd(key), how)) err = e;
  }
  return err;
}

// Is `dirfd` the directory fd of one of this process's pending files already?
// Each file keeps its own (publication closes it).
bool dir_taken(int dirfd) {
  const pid_t me = sys::getpid();
  for (const Group& g : g_groups)
    if (live_and_mine(g, me) && g.dirfd == dirfd) return true;
  return false;
}

// Entries a vfork child left in this (shared) memory when it exited or
// exec'ed: their owner is gone. Their dirfd is a number in the child's fd
// table, so it is never closed here.
void reclaim_dead_owners() {
  const pid_t me = sys::getpid();
  for (Slot& s : g_slots) {
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (!key_live(key) || key_pid(key) == me || sys::call(SYS_kill, key_pid(key), 0) != -ESRCH) continue;
    const int group = take_slot(s, key);  // the group is read only once the slot is ours
    if (group < 0) continue;
    Group& g = g_groups[group];
    if (g.refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      g.dirfd = -1;
      g.state.store(kFree, std::memory_order_release);
    }
  }
}

int new_group(int dirfd, const char* base, const char* path, unsigned long old_ino) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt == 1) reclaim_dead_owners();
    for (int i = 0; i < kGroups; ++i) {
    int expected = kFree;
    if (!g_groups[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) continue;
    Group& g = g_groups[i];
    g.owner.store(sys::getpid(), std::memory_order_relaxed);
    g.dirfd = dirfd;
    g.old_ino = old_ino;
    // The old file's birth time, taken while the name still holds it (the
    // writer's open has just looked at it); a number that is not its, or none.
    unsigned long ino = 0;
    long long sec = 0;
    unsigned nsec = 0;
    const bool same = identity(dirfd, base, &ino, &sec, &nsec) == 0 && ino == old_ino;
    g.old_btime_sec = same ? sec : 0;
    g.old_btime_nsec = same ? nsec : 0;
    g.dev = 0;
    g.ino = 0;
    struct stat dir;
    const bool dir_known = sys::fstat(dirfd, &dir) == 0;
    g.dir_dev = dir_known ? dir.st_dev : 0;
    g.dir_ino = dir_known ? dir.st_ino : 0;
    g.write_error.store(0, std::memory_order_relaxed);
    g.unpublished_step.store(nullptr, std::memory_order_relaxed);
    g.synced.store(false, std::memory_order_relaxed);
    g.kept_while_mapped.store(false, std::memory_order_relaxed);
    g.refs.store(0, std::memory_order_relaxed);
    std::snprintf(g.base, sizeof g.base, "%s", base);
    std::snprintf(g.path, sizeof g.path, "%s", path);
    return i;
    }
  }
  return -1;
}

}  // namespace

bool is_pending(int fd) { return find_group(fd) >= 0; }

bool reserve(int fd, int dirfd, const char* base, const char* path, unsigned long old_ino, Reservation* r) {
  struct stat st;
  if (sys::fstat(fd, &st) != 0) return false;
  int group = new_group(dirfd, base, path, old_ino);  // kFilling: no lookup sees it
  if (group < 0) return false;
  g_groups[group].dev = st.st_dev;
  g_groups[group].ino = st.st_ino;
  const int slot = take_free_slot();  // kBusy: no lookup sees it
  if (slot < 0) {
    g_groups[group].dirfd = -1;  // the caller keeps its dirfd
    g_groups[group].state.store(kFree, std::memory_order_release);
    return false;
  }
  *r = {group, slot};
  return true;
}

void commit(const Reservation& r, int fd) {
  fill_slot(r.slot, fd, r.group);
  g_groups[r.group].state.store(kLive, std::memory_order_release);
}

bool add(int fd, int dirfd, const char* base, const char* path, unsigned long old_ino) {
  Reservation r;
  if (!reserve(fd, dirfd, base, path, old_ino, &r)) return false;
  commit(r, fd);
  return true;
}

namespace {

// Does this process still map the file open at `fd` shared and writable?
bool written_through_memory(int fd) {
  struct stat st;
  return sys::fstat(fd, &st) == 0 && self_maps_shared_writable(maps_id_of(fd, st));
}

// The program closes `fd`, the last fd on `group`'s file, while it still
// maps the file shared and writable: close, then write through the mapping,
// then munmap is a common way to write a file, and publishing at the close
// put the file at the name before its content (zeros, where the writer had
// only set its size). A dup of `fd` takes its place until the file is
// unmapped (unmapped()), the process exits or execs. False where there is
// nothing to keep (or no fd to keep it with): then the close publishes.
bool keep_while_mapped(int group, int fd) {
  Group& g = g_groups[group];
  if (g.refs.load(std::memory_order_acquire) != 1 || g.kept_while_mapped.load(std::memory_order_acquire) ||
      !written_through_memory(fd))
    return false;
  const int dup = sys::dup_high(fd);
  if (dup < 0) return false;
  if (!add_slot(dup, group)) {
    sys::close(dup);
    return false;
  }
  g.kept_while_mapped.store(true, std::memory_order_release);
  const int taken = take_own_slot(fd);
  if (taken >= 0) release_group(taken, fd, kClosed);  // not the last one now: publishes nothing
  return true;
}

}  // namespace

int closing(int fd) {
  const int group = find_group(fd);
  if (group < 0) return 0;
  // A handler that jumps out of close() must not leave the file half-published:
  // its temp name on disk, the group never freed (signals.hpp).
  SignalsHeld held;
  held.hold();
  if (keep_while_mapped(group, fd)) return 0;
  const int taken = take_own_slot(fd);
  return taken < 0 ? 0 : release_group(taken, fd, kClosed);
}

// Ends a file kept pending while mapped (its one slot, `kept`, a dup of
// ours): publishes it and closes that dup, once. A munmap and a rename in two
// threads may both come here for the same file: only the one that takes the
// slot closes the number, which the other would otherwise close after the
// program had reused it (another of its files closed behind its back).
// Returns the errno of a failed publication, or 0.
int end_kept(int kept, const Ending& how) {
  SignalsHeld held;
  held.hold();
  const int taken = take_own_slot(kept);
  if (taken < 0) return 0;
  const int err = release_group(taken, kept, how);
  sys::close(kept);
  return err;
}

void unmapped() {
  const pid_t me = sys::getpid();
  for (int gi = 0; gi < kGroups; ++gi) {
    Group& g = g_groups[gi];
    if (!g.kept_while_mapped.load(std::memory_order_acquire) || !live_and_mine(g, me)) continue;
    const int kept = own_fd_on(gi, me);
    if (kept >= 0 && !written_through_memory(kept)) end_kept(kept, kUnmapped);
  }
}

int closing_range(unsigned first, unsigned last) {
  const pid_t me = sys::getpid();
  int err = 0;
  for (Slot& s : g_slots) {
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (!key_live(key) || key_pid(key) != me) continue;
    const unsigned fd = static_cast<unsigned>(key_fd(key));
    if (fd < first || fd > last) continue;
    if (const int e = closing(static_cast<int>(fd))) err = e;
  }
  return err;
}

int kept_fds_in(unsigned first, unsigned last, int* out, int max) {
  const pid_t me = sys::getpid();
  int n = 0;
  for (Group& g : g_groups) {
    if (n == max) break;
    // kLive: its dirfd was written before the state (release), read after it (acquire).
    if (!live_and_mine(g, me)) continue;
    const int fd = g.dirfd;
    if (fd < 0 || static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) continue;
    // Closed behind our back and the number reused: the program's, to close.
    if (!sys::refers_to(fd, g.dir_dev, g.dir_ino)) continue;
    int i = n++;
    for (; i > 0 && out[i - 1] > fd; --i) out[i] = out[i - 1];  // insertion, ascending
    out[i] = fd;
  }
  // Each file keeps its own dup, but a group being reused as this runs could repeat one.
  int m = 0;
  for (int i = 0; i < n; ++i)
    if (m == 0 || out[m - 1] != out[i]) out[m++] = out[i];
  return m;
}

void synced(int fd) {
  const int group = find_group(fd);
  if (group >= 0) g_groups[group].synced.store(true, std::memory_order_release);
}

void synced_all() {
  const pid_t me = sys::getpid();
  for (Group& g : g_groups)
    if (live_and_mine(g, me)) g.synced.store(true, std::memory_order_release);
}

void write_failed(int fd, int error) {
  // Only errors that lose data; EINTR, EAGAIN and short writes are not.
  if (error != ENOSPC && error != EDQUOT && error != EIO && error != EFBIG) return;
  const int group = find_group(fd);
  if (group >= 0) g_groups[group].write_error.store(error, std::memory_order_release);
}

void never_publish(int fd, const char* step, int error) {
  const int group = find_group(fd);
  if (group < 0) return;
  g_groups[group].unpublished_step.store(step, std::memory_order_release);
  g_groups[group].write_error.store(error ? error : EIO, std::memory_order_release);
}

void duplicated(int oldfd, int newfd) {
  if (oldfd == newfd || newfd < 0) return;
  const int group = find_group(oldfd);
  if (group < 0) return;
  if (!add_slot(newfd, group)) {
    // No room to follow the dup: publish now, all of its fds' slots taken,
    // rather than lose track. (Taking oldfd's slot alone published nothing
    // while other fds were followed: the file was published at their close,
    // "the writer closed it", while it still wrote through the two others.)
    char msg[192];
    std::snprintf(msg, sizeof msg,
                  "is published at a dup of its fd, before the writer is done with it: truncguard follows at most %d "
                  "fds on pending files in a process; its later writes arrive in place, as in mode replace",
                  kSlots);
    log::note(g_groups[group].path, "atomic_fallback", msg);
    end_group_now(group, kDuplicated);
  }
}

namespace {

// Is `path` (relative to `dirfd`), whose inode is the group's old one, the
// group's own entry (its base name, in its directory, the directory reached
// by whatever path), not another hard link of the old file? Another name
// keeps the old file in atomic mode: its rename is none of the writer's file.
bool the_groups_entry(int dirfd, const char* path, const Group& g) {
  const char* slash = std::strrchr(path, '/');
  if (std::strcmp(slash ? slash + 1 : path, g.base) != 0) return false;
  struct stat dir;
  if (!slash) return sys::fstatat(dirfd, ".", &dir, 0) == 0 && dir.st_dev == g.dir_dev && dir.st_ino == g.dir_ino;
  const size_t len = static_cast<size_t>(slash - path);
  if (len >= PATH_MAX) return false;
  const long mem = map_scratch(PATH_MAX);  // off the stack (scratch.hpp); a rare path
  if (mem < 0) return false;
  char* parent = reinterpret_cast<char*>(mem);
  std::memcpy(parent, path, len);
  parent[len] = '\0';
  const bool same = sys::fstatat(dirfd, len ? parent : "/", &dir, 0) == 0 && dir.st_dev == g.dir_dev &&
                    dir.st_ino == g.dir_ino;
  unmap_scratch(parent, PATH_MAX);
  return same;
}

}  // namespace

int renaming(int dirfd, const char* path, char* published_as) {
  struct stat st;
  if (sys::fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  const pid_t me = sys::getpid();
  for (int gi = 0; gi < kGroups; ++gi) {
    Group& g = g_groups[gi];
    if (!live_and_mine(g, me) ||
        g.old_ino != st.st_ino)
      continue;
    // The same directory entry: the group's name still holds the inode the
    // rename moves, the old file (not a newer one given its freed number).
    struct stat at_name;
    if (sys::fstatat(g.dirfd, g.base, &at_name, AT_SYMLINK_NOFOLLOW) != 0 || at_name.st_dev != st.st_dev ||
        at_name.st_ino != st.st_ino || holds_old_file(g) != 1 || !the_groups_entry(dirfd, path, g))
      continue;
    // Said before the publication, which logs its own outcome (published, or
    // cannot protect: the rename then fails). In category rewrites, as that
    // "published" line: no error, no warning (TRUNCGUARD_DEBUG=none printed
    // it alone).
    if (log::enabled(kRewrites))
      log::note(g.path, "renamed",
                "the writer renames it before its last close: publishing it first, so that the rename moves the "
                "new file");
    const dev_t new_dev = g.dev;
    const ino_t new_ino = g.ino;
    const int write_error = g.write_error.load(std::memory_order_acquire);
    std::memcpy(published_as, g.path, kLogName);  // kept: the publication frees the group
    int err = 0;
    if (!g.kept_while_mapped.load(std::memory_order_acquire)) {
      err = end_group_now(gi, kRenamed);
    } else {
      // Its fds are closed, one dup of ours kept while it is mapped: closing
      // that publishes (as unmapped() does).
      if (const int kept = own_fd_on(gi, me); kept >= 0) err = end_kept(kept, kRenamed);
    }
    // Not published (no room for its link, a write to it failed): the rename
    // would move the old file, and the writer, whose close now has nothing
    // to report, would never be told. It fails instead, with that error, as
    // the close would have (README: "close() returns that error").
    if (err || write_error) {
      struct stat now;
      if (sys::fstatat(dirfd, path, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != new_dev ||
          now.st_ino != new_ino) {
        published_as[0] = '\0';  // not published
        return err ? err : write_error;
      }
    }
  }
  return 0;
}

void rename_failed(const char* published_as, int error) {
  const int e = errno;
  char msg[192];
  std::snprintf(msg, sizeof msg,
                "the writer's rename of it failed (%s): the new file, published for that rename, stays at this "
                "name, as in mode replace",
                strerrordesc_np(error));
  log::note(published_as, "renamed", msg);
  errno = e;
}

void publish_all() {
  const pid_t me = sys::getpid();
  for (Slot& s : g_slots) {
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (!key_live(key) || key_pid(key) != me) continue;
    end_group_now(s.group.load(std::memory_order_relaxed), kExited);
  }
}

const char* prepare_exec(const char* no_hand_over) {
  // Static: exec may come from a vfork child, where nothing may be allocated.
  TG_LARGE_TABLE static char entry[8192];
  size_t o = static_cast<size_t>(std::snprintf(entry, sizeof entry, "%s=", kEnvName));
  const size_t empty = o;
  const pid_t me = sys::getpid();
  for (int gi = 0; gi < kGroups; ++gi) {
    Group& g = g_groups[gi];
    if (!live_and_mine(g, me)) continue;
    // Which of its fds survive exec?
    char fds[256];
    size_t f = 0;
    int any_fd = -1;
    bool all_listed = true;  // an fd left out would go on writing the file after the new image published it
    for (const Slot& s : g_slots) {
      const uint64_t key = s.key.load(std::memory_order_acquire);
      if (!key_live(key) || key_pid(key) != me || s.group.load(std::memory_order_relaxed) != gi) continue;
      const int fd = key_fd(key);
      any_fd = fd;
      long fl = sys::call(SYS_fcntl, fd, F_GETFD);
      if (fl >= 0 && !(fl & FD_CLOEXEC)) {
        if (f + 12 < sizeof fds) f += static_cast<size_t>(std::snprintf(fds + f, sizeof fds - f, "%s%d", f ? "," : "", fd));
        else all_listed = false;
      }
    }
    // The entry (hand_over.hpp; synced: the new image's publication syncs
    // the directory, as ours would have) is written straight into `entry`
    // (exec may come from a thread with a small stack). One that does not
    // fit is not handed over; nor is a directory fd the program closed and
    // reused: the new image would take whatever it is now for the directory.
    const bool dir_ours = sys::refers_to(g.dirfd, g.dir_dev, g.dir_ino);
    // The new image adopts only a file of its own user's (adopt_from_environment):
    // one that took the old file's other owner is published now instead.
    const char* why_not = no_hand_over;
    struct stat st;
    if (!why_not && any_fd >= 0 && sys::fstat(any_fd, &st) == 0 && st.st_uid != geteuid())
      why_not = "its new file has the old file's owner, another user, and a program adopts only its own user's files";
    size_t e = o;
    bool fits = false;
    if (f && dir_ours && why_not) {
      char msg[384];  // the longest reason fits
      std::snprintf(msg, sizeof msg,
                    "is published at exec, before the program exec'ed writes it: %s, so nothing would publish it "
                    "at its close; its content arrives in place, as in mode replace",
                    why_not);
      log::note(g.path, "atomic_fallback", msg);
    } else if (f && dir_ours) {
      // The entry carries the old file's number, not its birth time (the new
      // image takes that from the name at its start): where another file is
      // already at the name, given the old file's freed number, it names
      // number 0, which no file has, so that the new image leaves that file
      // alone too.
      const unsigned long old_ino = holds_old_file(g) == 0 ? 0 : g.old_ino;
      fits = all_listed && hand_over::append(entry, sizeof entry, &e, fds, g.dirfd, old_ino,
                                             g.synced.load(std::memory_order_acquire), g.base, g.path);
      if (!fits)
        log::note(g.path, "atomic_fallback",
                  all_listed ? "is published at exec, before the program exec'ed writes it: the hand-over to it "
                               "(TRUNCGUARD_PENDING, at most 8 KiB, each file's names written in hex) has no room "
                               "left for this file; its content arrives in place, as in mode replace"
                             : "is published at exec, before the program exec'ed writes it: it has too many fds "
                               "open for the hand-over to list them all; its content arrives in place, as in mode "
                               "replace");
    }
    // The new image takes it over: the directory fd must survive exec too.
    // Where it can't (a seccomp filter refusing F_SETFD), the new image would
    // find no directory, adopt nothing, and the file was lost, unpublished,
    // without a word: published now instead.
    if (fits) {
      if (const long r = sys::call(SYS_fcntl, g.dirfd, F_SETFD, 0); r < 0) {
        fits = false;
        char msg[256];
        std::snprintf(msg, sizeof msg,
                      "is published at exec, before the program exec'ed writes it: its directory's fd can't be kept "
                      "open across the exec (F_SETFD: %s); its content arrives in place, as in mode replace",
                      strerrordesc_np(static_cast<int>(-r)));
        log::note(g.path, "atomic_fallback", msg);
      }
    }
    entry[fits ? e : o] = '\0';
    if (fits) {
      o = e;
    } else if (any_fd >= 0) {
      // Every fd closes at exec (or no room to hand it over, or its directory
      // is gone: then the publication fails and says so): publish now,
      // and take its slots, which must not outlive the group (a vfork child
      // leaves them in its parent's memory, where the group is reused).
      end_group_now(gi, kExeced);
    }
  }
  return o > empty ? entry : nullptr;
}

void exec_failed() {
  const pid_t me = sys::getpid();
  for (Group& g : g_groups)
    if (live_and_mine(g, me) &&
        sys::refers_to(g.dirfd, g.dir_dev, g.dir_ino))
      sys::call(SYS_fcntl, g.dirfd, F_SETFD, FD_CLOEXEC);
}

// TRUNCGUARD_PENDING is read and removed in `environ` itself, not through
// getenv/unsetenv: a program may define its own (bash does, for its variable
// table, and before its main() its unsetenv removes nothing), and the entry
// would then reach every program it starts, which would adopt fds and a
// directory fd that are not theirs.
const char* environ_value(const char* name, size_t len) {
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return nullptr;
}

void environ_remove(const char* name, size_t len) {
  char** e = environ;
  while (e && *e) {
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
      char** d = e;
      do d[0] = d[1];
      while (*d++);
    } else {
      ++e;
    }
  }
}

void adopt_from_environment() {
  constexpr size_t kLen = sizeof kEnvName - 1;
  const char* v = environ_value(kEnvName, kLen);
  if (!v) return;
  // Under secure execution (setuid/setgid) the environment is the caller's:
  // it must not be able to make this process rename files of its choosing.
  if (!*v || getauxval(AT_SECURE)) {
    environ_remove(kEnvName, kLen);
    return;
  }
  // Entries (hand_over.hpp), each ending with ';'. (One of a build before
  // the synced mark has none, and is adopted unsynced, as that build would
  // have it.)
  for (const char* p = v; *p;) {
    const char* end = std::strchr(p, ';');
    if (!end) break;
    hand_over::Entry h;
    struct stat dir, st;  // the directory fd came with the entry: an open directory, or nothing to adopt
    // Only an unnamed inode (O_TMPFILE, no link yet) of this process's own
    // user is ever published: the environment and the fds may come from
    // another user (sudo -E, a service's environment file), who must not
    // make this process link a file of theirs over a name of their choosing.
    // Anything else is left alone, the fds the entry names included (they
    // may be the program's own).
    // An entry the shim wrote names each fd once, every one on its file, and
    // a directory fd of its own; one written by hand (or left over from
    // another program) may not: an fd already taken, or one that is not on
    // the file (the program's stdin), would have been given this file's end,
    // and the program's close of it failed (EBADF) with the file lost.
    if (hand_over::parse(p, end, &h) && !dir_taken(h.dirfd) && sys::fstat(h.dirfd, &dir) == 0 &&
        S_ISDIR(dir.st_mode) && find_group(h.first_fd) < 0 && sys::fstat(h.first_fd, &st) == 0 &&
        S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_uid == geteuid()) {
      const int group = new_group(h.dirfd, h.base, h.path, h.old_ino);
      if (group >= 0) {
        sys::call(SYS_fcntl, h.dirfd, F_SETFD, FD_CLOEXEC);
        g_groups[group].dev = st.st_dev;
        g_groups[group].ino = st.st_ino;
        g_groups[group].synced.store(h.synced, std::memory_order_relaxed);  // published with kLive below
        hand_over::each_fd(h.fds, h.fds_len, [&](int fd) {
          if (find_group(fd) < 0 && sys::refers_to(fd, st.st_dev, st.st_ino)) add_slot(fd, group);
        });
        g_groups[group].state.store(kLive, std::memory_order_release);
      }
    }
    p = end + 1;
  }
  environ_remove(kEnvName, kLen);  // not for this program's own children
}

}  // namespace tg::pending
