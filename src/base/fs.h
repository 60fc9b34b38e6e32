#pragma once
// Small filesystem helpers over POSIX calls; every one returns Result/Status.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace ocib::fs {

/// open(2) with O_CLOEXEC added.
Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0644);
Result<std::string> read_file(const std::string& path);
/// Writes via temp file in the same directory + fsync + rename: readers see old or new, never half.
/// The temp file is "PATH.tmp-<pid>-<random>" (see tmp_name_pid).
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

/// Temp files beside their final name are "NAME.tmp-<pid>-<random>" (write_file_atomic, the
/// exporters): the pid of the writer that made `name` (a file name, not a path); nullopt when
/// it has no such part.
std::optional<pid_t> tmp_name_pid(std::string_view name);
/// True when no process has this pid (kill(pid, 0) fails with ESRCH). A live process of another
/// user (EPERM) counts as alive; so does a reused pid, which only ever keeps a file longer.
bool pid_is_dead(pid_t pid);
/// Removes what killed writers left in `dir`: regular files named "<prefix>.tmp-<pid>-..." (any
/// name before ".tmp-" when `prefix` is empty) whose pid is dead. Files of live writers, and names
/// without a pid, are left alone. Returns how many were removed.
size_t remove_stale_tmp_files(const std::string& dir, std::string_view prefix);
/// mkdir -p; existing directories are fine.
Status mkdirs(const std::string& path, mode_t mode = 0755);
/// rm -rf; a missing path is fine. Makes unwritable dirs writable to delete their entries.
Status remove_all(const std::string& path);
bool exists(const std::string& path);
bool is_dir(const std::string& path);
/// Joins with exactly one '/' between parts.
std::string join(std::string_view a, std::string_view b);
/// Lexically cleans an absolute-or-relative path: collapses '//', '.', and '..' (never above root
/// for absolute paths). "" → ".".
std::string clean(std::string_view path);
std::string dirname(std::string_view path);
std::string basename(std::string_view path);
/// Creates a unique directory "<parent>/<prefix>XXXXXX" and returns its path.
Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix);
/// Absolute path of `path` (realpath).
Result<std::string> real_path(const std::string& path);

/// The PATH a process gets where none is set (also a step's default).
inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The first executable `name` in the directories of $PATH (kDefaultPath when unset), then of
/// `extra` (':'-separated); relative directories never count. "" when there is none.
std::string find_executable(const std::string& name, const std::string& extra = "");

/// Where a sandboxed function's "/" is: "/" after pivot_root (the namespaced sandboxes), or the
/// host path of the step's root where the process cannot change its root (the chroot isolation
/// runs ocib's own file work in a plain child and sets this there). Code that writes into a
/// step's root (COPY, WORKDIR) resolves paths inside it (openat2 RESOLVE_IN_ROOT) and prefixes
/// them with this. Process-wide; only ever set in a forked child.
const std::string& step_root();
void set_step_root(std::string root);
/// Under the chroot isolation as an unprivileged user only the caller's own id exists: every
/// file is the caller's (root in the image) and a step's chown has nothing to set. Set in the
/// forked child, as step_root.
bool step_owner_fixed();
void set_step_owner_fixed(bool fixed);
/// lchown(2), or nothing (0) when step_owner_fixed().
int step_lchown(const std::string& path, uid_t uid, gid_t gid);
/// step_root() + "/" + rel (rel already resolved inside the root, no "..", no symlinks).
std::string in_step_root(std::string_view rel);

/// Names of the extended attributes of `path` (a symlink's own), sorted; none where the
/// filesystem has no xattrs.
Result<std::vector<std::string>> list_xattrs(const std::string& path);
/// The value of one (a symlink's own); nullopt when it is not there (e.g. removed since it
/// was listed). Other failures keep their errno (Error::sys_errno).
Result<std::optional<std::string>> get_xattr(const std::string& path, const std::string& name);
/// The overlay snapshots' own bookkeeping (kernel overlay's trusted./user.overlay.*,
/// fuse-overlayfs' user.fuseoverlayfs.*), never image content.
bool is_overlay_xattr(std::string_view name);

/// Removes a directory tree when it goes out of scope unless released.
class TempDir {
 public:
  TempDir() = default;
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir();
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string release() { return std::exchange(path_, {}); }

 private:
  std::string path_;
};

/// An exclusive flock(2) on a lock file, released on destruction.
class FileLock {
 public:
  FileLock() = default;
  /// Blocks until the lock is held.
  static Result<FileLock> acquire(const std::string& path);
  /// Blocks until a shared lock is held (any number of shared holders, no exclusive one).
  static Result<FileLock> acquire_shared(const std::string& path);
  /// Returns a lock that is not held() if another process holds it.
  static Result<FileLock> try_acquire(const std::string& path);
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

}  // namespace ocib::fs
