// The operator's view: who maps a file (`truncguard who`), and which processes
// run code from a replaced or deleted file (`truncguard stale`), as fuser and
// needrestart answer them, but from the same (dev, inode) facts the shim uses.
//
// Pure parts (parsing, matching, grouping, formatting) are separate from the
// /proc reading so the unit tests (tests/ecosystem) call them directly.
// This is the command's code, not the shim's: it may allocate and throw.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maps_reader.hpp"

namespace tg::inspect {

// ------------------------------------------------------------------ parsing

// One file-backed mapping of a process.
struct Mapping {
  MapsLine line;        // addresses, permissions, device, inode
  std::string path;     // raw bytes of the name the kernel gives, " (deleted)" removed
  bool deleted = false; // the kernel said " (deleted)": the name no longer leads to this inode
};

// Parses one /proc/PID/maps text line with its path. The kernel writes a
// newline in a name as "\012" (seq_path's escape); that is undone here, so
// paths compare equal to the ones PROCMAP_QUERY and stat(2) use. False for a
// malformed line. Anonymous lines ([heap], inode 0) parse with an empty path.
bool parse_mapping(std::string_view line, Mapping* out);

// Removes a trailing " (deleted)" (what d_path() appends for an unlinked
// dentry); true if there was one.
bool strip_deleted(std::string* path);

// Paths a deploy never replaces: memfd, SysV and POSIX shared memory,
// anonymous shared mappings (/dev/zero), and names that are not absolute
// ("anon_inode:...", "[heap]"). Their " (deleted)" means nothing here.
bool is_pseudo_path(std::string_view path);

// Undoes "\012" (the only escape seq_path applies to maps text).
std::string unescape_maps_path(std::string_view p);

// ------------------------------------------------------------- processes

// The systemd unit a process belongs to, from the text of /proc/PID/cgroup.
struct Unit {
  std::string name;     // "nginx.service", "session-3.scope"; empty: none found
  std::string manager;  // "user@1000.service" for a unit of a user's manager; empty: system
  bool operator==(const Unit&) const = default;
};
// cgroup v2 ("0::/system.slice/foo.service") or v1's "name=systemd" line; the
// innermost path component that names a unit (.service, .scope, .socket,
// .mount, .swap) wins, so "/system.slice/foo.service/worker" is foo.service.
Unit unit_from_cgroup(std::string_view cgroup_text);

// "Uid:\t0\t1000\t..." from /proc/PID/status: the effective uid (as ps shows).
std::optional<uid_t> effective_uid_from_status(std::string_view status_text);

struct Process {
  pid_t pid = 0;
  uid_t uid = 0;
  bool uid_known = false;
  std::string user;   // name, or the number if unknown
  std::string comm;   // raw
  std::string exe;    // raw; empty if unreadable
  Unit unit;
};

// ------------------------------------------------------------------ who

// What `who FILE` looks for.
struct Target {
  std::string arg;        // as given
  std::string path;       // absolute, symlinks resolved (the name maps lines use); else `arg`
  bool exists = false;    // false: only mappings of the deleted PATH can match
  FileId id;              // when exists
};

enum class Match { none, current, replaced };
// current: the mapping is the inode now at the path. replaced: the kernel
// names this path " (deleted)" for a different inode on the same device (if
// the path exists): an older file that was at this name (replaced by rename
// or unlink) and still runs.
Match match_target(const Mapping& m, const Target& t);

// One row of `who`: one process and one inode of the file.
struct WhoRow {
  Process proc;
  Match match = Match::none;
  FileId id;            // the inode the process maps
  bool executable = false;  // some mapping of it is executable (code), else data only
};

// ------------------------------------------------------------------ stale

// What is at a mapping's path now, seen from the mapping process's root.
struct PathNow {
  enum Kind { file, nothing, unknown } kind = unknown;  // unknown: could not check
  FileId id;                                           // when kind == file
};

// An NFS client's name for a file unlinked or renamed over while in use
// (".nfs" and 24 hex digits): the client moves it there, not " (deleted)",
// until the last user lets go ("silly rename").
bool is_nfs_silly_name(std::string_view path);

enum class Staleness { fresh, deleted, replaced, missing };
// deleted: the kernel says " (deleted)" (the name was unlinked or renamed
// over: what `install`, dpkg and truncguard do), or an NFS client moved it
// to its silly-rename name for that (the name leads to it). replaced: another inode is
// at the path now. missing: nothing is at the path now. The device is compared
// only when the inode numbers agree: overlayfs and btrfs report another st_dev
// than the maps line for the same file. unknown (no permission) counts as fresh.
Staleness staleness(const Mapping& m, const PathNow& now);

struct StaleFile {
  std::string path;  // raw
  FileId id;
  Staleness why = Staleness::deleted;
};
struct StaleProcess {
  Process proc;
  std::vector<StaleFile> files;
};
// Adds a file to a process's list once per (inode, path).
void add_stale_file(StaleProcess* p, StaleFile f);

struct UnitGroup {
  Unit unit;                          // empty name: outside any unit
  std::vector<const StaleProcess*> procs;  // by pid
};
// System units first, then user units (by manager), by name; processes
// outside any unit last.
std::vector<UnitGroup> group_by_unit(const std::vector<StaleProcess>& procs);

// ----------------------------------------------------------- reading /proc

enum class ReadStatus { ok, no_access, gone };

// The file-backed mappings of a process (pid 0: self). Uses PROCMAP_QUERY
// (Linux 6.11+: raw names, no text parsing) unless `force_text`, or the kernel
// lacks it. no_access: the maps file could not be opened (EACCES/EPERM),
// which proves nothing about that process. gone: exited, or a kernel thread.
ReadStatus read_mappings(pid_t pid, bool force_text, std::vector<Mapping>* out);

// Every numeric entry of /proc, ascending. False if /proc can't be read.
bool list_pids(std::vector<pid_t>* out);

// comm, uid, user name, exe, unit. Best effort: unreadable parts stay empty.
Process describe_process(pid_t pid);

// What is now at the path a maps line of process `pid` names, whose inode
// is `mapped`. The kernel names a file from our root where we can reach it
// (a chrooted process's files by their full path), else from the root of
// its mount namespace (a container's; everybody's, if we are chrooted): the
// view that leads to `mapped`, if one does; else ours for a process of our
// mount namespace, through /proc/PID/root for another's (if it is open to us).
PathNow path_now_for_process(pid_t pid, const std::string& path, const FileId& mapped);

// A file may be named "x.so (deleted)" for real: the maps line is then the
// same as a deleted "x.so"'s. Where the whole name leads to the mapped inode
// (as process `pid` sees it), the mapping is that file, not deleted.
void keep_names_ending_in_deleted(pid_t pid, std::vector<Mapping>* maps);

// How the maps name the file at `path`, which stat() gave as `st`: the
// file's own answer for a regular file (btrfs, overlayfs), stat()'s for
// anything else, which is never opened.
FileId maps_id_of_stat(const std::string& path, const struct stat& st);

// A process whose maps could not be read.
struct Uninspected {
  pid_t pid;
  std::string comm;
};

// ---------------------------------------------------------------- output

// tg::escape for a std::string: \n, \t, \\, \xHH for control characters and
// bytes that are not UTF-8 (a name can't forge a table row or a log line).
std::string escaped(std::string_view raw);
// escaped(), then quoted as a JSON string: how the JSON log spells names too.
std::string json_string(std::string_view raw);
// Display width of escaped text (UTF-8 code points).
size_t display_width(std::string_view s);
// Aligned columns, two spaces apart; the last column is not padded. Cells
// must already be escaped.
std::string format_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent = "");
// "254:0"
std::string dev_string(const FileId& id);
const char* to_string(Match m);       // "current", "replaced", "none"
const char* to_string(Staleness s);   // "fresh", "deleted", "replaced", "missing"

// ------------------------------------------------------------- commands

// `truncguard who [OPTIONS] FILE...` and `truncguard stale [OPTIONS]`
// (shim/inspect_cmd.cpp); argv[0] is the subcommand. Return the exit status.
int who_main(int argc, char** argv);
int stale_main(int argc, char** argv);

}  // namespace tg::inspect
