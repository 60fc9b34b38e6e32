// run(): fork → child A unshares the user namespace (the parent writes its id maps), then the
// mount/pid/ipc/uts(/net) namespaces, and forks B, pid 1 of the new pid namespace. B mounts
// the overlay root, views, /proc and /dev, pivots, drops privileges and execs. Children report
// setup failures as {step, errno} over a CLOEXEC pipe and never allocate.

#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio_ext.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/process.h"
#include "sandbox/internal.h"
#include "sandbox/snapshotter.h"

extern char** environ;

namespace ocib::sandbox {

namespace {

// Setup steps reported by the children; kStepNames must follow the order.
enum Step : int32_t {
  kStepPdeathsig,
  kStepUnshareUser,
  kStepJoinShared,
  kStepSync,
  kStepSetRoot,
  kStepUnshareNs,
  kStepForkInit,
  kStepMakePrivate,
  kStepMountOverlay,
  kStepMountView,
  kStepOpenView,
  kStepChdirRoot,
  kStepMkdirMountpoint,
  kStepMountProc,
  kStepMountDev,
  kStepMountDevNode,
  kStepMountDevpts,
  kStepMountShm,
  kStepDevSymlink,
  kStepMaskProc,
  kStepMountSys,
  kStepStdio,
  kStepPivotRoot,
  kStepSethostname,
  kStepLoopback,
  kStepMkdirCwd,
  kStepChdirCwd,
  kStepDropBounding,
  kStepSetgroups,
  kStepSetgid,
  kStepSetuid,
  kStepSetCaps,
  kStepNoNewPrivs,
  kStepSeccomp,
  kStepCloseFds,
  kStepMountTarget,
  kStepUserMount,
  kStepUserOverlay,
  kStepMountFuse,
  kStepBindRoot,
  kStepMountSource,
  kStepApiDir,
  kStepDataMount,
  kStepReportStub,
  kStepSetrlimit,
  kStepCount,
};

constexpr const char* kStepNames[] = {
    "set parent death signal",
    "unshare user namespace",
    "join shared namespaces",
    "wait for id maps",
    "become root in user namespace",
    "unshare namespaces",
    "fork pid 1",
    "make mounts private",
    "mount overlay",
    "mount view",
    "open view",
    "chdir to rootfs",
    "create mountpoint",
    "mount proc",
    "mount tmpfs on /dev",
    "bind device node",
    "mount devpts",
    "mount /dev/shm",
    "create /dev symlink",
    "mask /proc paths",
    "mount /sys",
    "set up stdio",
    "pivot_root",
    "sethostname",
    "bring up loopback",
    "create working directory",
    "chdir to working directory",
    "drop bounding capabilities",
    "setgroups",
    "setresgid",
    "setresuid",
    "set capabilities",
    "set no_new_privs",
    "load seccomp filter",
    "close inherited fds",
    "create mountpoint",
    "mount",
    "mount overlay for",
    "mount fuse-overlayfs",
    "bind rootfs",
    "resolve mount source",
    "check that /proc, /dev and /sys are directories in the image (not symlinks)",
    "write secret file or set a mount's owner",
    "report mountpoint stub",
    "setrlimit (--ulimit above ocib's own hard limit needs it raised first)",
};
static_assert(sizeof(kStepNames) / sizeof(kStepNames[0]) == kStepCount);

struct ChildError {
  int32_t step;
  int32_t err;
  int32_t index;  // Plan::mounts index for the user-mount steps, else -1
  char msg[240];  // what a helper program said (fuse-overlayfs), NUL-terminated
};

constexpr int kSetupFailedExit = 125;

constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
// Mountpoint stubs we may create in the rootfs (and so in upperdir).
constexpr const char* kStubs[] = {"proc", "dev", "sys"};
constexpr const char* kMaskedProc[] = {"proc/kcore", "proc/keys", "proc/timer_list",
                                       "proc/sched_debug", "proc/latency_stats"};
constexpr const char* kReadOnlyProc[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus"};
using fs::kDefaultPath;

// One overlay (or bind) mount, prepared in the parent.
struct LayerPath {
  std::string full, dir, base;
};
struct OverlayPlan {
  std::string target;
  std::vector<LayerPath> lowers;         // topmost first; empty = bind `empty`
  std::optional<LayerPath> upper, work;  // unset for read-only views
  std::string legacy_data;               // mount(2) data for kernels without "lowerdir+"
  std::vector<std::string> fuse_args;    // fuse-overlayfs command line (fuse driver)
  std::vector<const char*> fuse_argv;    // the same for execve, set by run_planned
};

// A merged copy the copy driver makes before the step (root, views, RUN --mount=...,rw).
struct CopyJob {
  std::vector<std::string> lowers;  // topmost first
  std::string dest;                 // an empty directory beneath scratch
};

// One Spec::Mount (or generated /etc file), prepared in the parent.
struct MountPlan {
  Mount::Type type = Mount::Type::kBind;
  std::string source;   // real path (kBind); the file in the data tmpfs (kData)
  std::string subpath;  // resolved in the source's root (kBind, kOverlayRw); "" = the root
  std::string data;     // kData: the file's contents
  uint32_t mode = 0;    // kData: file mode
  int64_t chown_uid = -1, chown_gid = -1;  // Mount::chown_uid/gid
  bool file = false;    // the target is a file (bind of a non-directory); with a subpath: set
                        // by the child from what it resolved to
  bool readonly = false;
  std::string display;                      // cleaned absolute target, for errors
  std::vector<std::string> prefixes;        // "run", "run/secrets", "run/secrets/id"
  std::vector<std::string> names;           // "run", "secrets", "id"
  std::string tmpfs_size, tmpfs_mode;       // fsconfig values
  OverlayPlan overlay;                      // kOverlayRw: mounted at scratch, then moved
};

// A path relative to the root that the sandbox may create in upperdir, and what the lowerdirs
// have there (so the parent can tell its own stubs from the step's work).
struct StubPath {
  std::string rel;
  bool in_lower = false;
  struct stat lower {};
};

// Everything the children need, computed before fork so they only make system calls.
struct Plan {
  const Spec* spec = nullptr;
  Snapshotter driver = Snapshotter::kOverlay;
  std::string fuse_bin;           // fuse driver: absolute path of fuse-overlayfs
  std::vector<CopyJob> copies;    // copy driver: copies[0] is the root
  snapshot::CopyState root_copy;  // copy driver: what copies[0] left for the diff
  OverlayPlan root;
  std::vector<OverlayPlan> views;
  std::vector<MountPlan> mounts;
  std::vector<StubPath> stubs;  // deepest first; filled after the step (collect_stubs)
  std::string data_dir;         // where pid 1 mounts the tmpfs for kData mounts ("" = none)
  std::string data_size;        // its size= option
  std::string shm_opts;         // /dev/shm's tmpfs options (Spec::shm_size)
  std::string empty_dir;
  std::vector<int> host_fds;
  std::vector<int> keep_fds;  // sorted; survive close_range in child A
  std::vector<const char*> argv, envp;
  std::vector<std::string> exec_candidates;  // absolute paths to try for argv[0]
  std::string not_found_msg;
  std::vector<gid_t> groups;
  std::string cwd_rel;  // spec.cwd without leading '/'
  const std::vector<sock_filter>* seccomp = nullptr;
  bool allow_setgroups = true;
  bool new_net = true;  // own network namespace (kNone, kDefault): fresh, or the shared one below
  bool net_stack_shared = false;  // kDefault: joins the process's shared network (start_shared_stack)
  bool outer_proc = false;  // bind the outer /proc instead of mounting a fresh one (ProcIsolation)
  // The process-wide user + network namespace pair for kNone steps (-1: unshare per step).
  int shared_user_fd = -1, shared_net_fd = -1;
  pid_t parent = 0;
  int p2c_read = -1, c2p_write = -1, err_write = -1;
  int stub_write = -1;  // pid 1 reports every entry it creates in the root here (rel paths)
};

std::mutex g_mu;
std::set<pid_t> g_running;  // process groups of running steps
bool g_cancelled = false;

// ---- child side: no allocation, report {step, errno} -------------------------------------

[[noreturn]] void fail(const Plan& p, Step step, int err, int index = -1) {
  ChildError e{step, err, index, {}};
  ssize_t n = write(p.err_write, &e, sizeof e);
  (void)n;
  _exit(kSetupFailedExit);
}

// As fail(), with what a helper program wrote to `fd` (read without blocking) as the message.
[[noreturn]] void fail_with_output(const Plan& p, Step step, int err, int fd) {
  ChildError e{step, err, -1, {}};
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t n = read(fd, e.msg, sizeof e.msg - 1);
  while (n > 0 && (e.msg[n - 1] == '\n' || e.msg[n - 1] == ' ')) --n;
  e.msg[n > 0 ? n : 0] = '\0';
  ssize_t w = write(p.err_write, &e, sizeof e);
  (void)w;
  _exit(kSetupFailedExit);
}

#define CHILD_CHECK(expr, step)           \
  do {                                    \
    if ((expr) < 0) fail(p, step, errno); \
  } while (0)

int fsconfig_str(int fd, const char* key, const char* value) {
  return fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0);
}

int fsconfig_layer(int fs, const char* key, const LayerPath& l) {
  if (chdir(l.dir.c_str()) < 0) return -1;
  return fsconfig_str(fs, key, l.base.c_str());
}

// Mounts an overlay with the new mount API: "lowerdir+" takes one layer per call, so there is
// no page-size limit on the layer list, and each path is passed relative to its parent
// directory (fsconfig strings are limited to 256 bytes). Falls back to mount(2) on kernels
// before 6.8. Changes the cwd.
int mount_overlay(const OverlayPlan& o, bool read_only) {
  if (o.lowers.size() == 1 && !o.upper) {
    const char* src = o.lowers[0].full.c_str();
    if (mount(src, o.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) return errno;
    if (mount(nullptr, o.target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0)
      return errno;
    return 0;
  }
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  bool legacy = fs < 0 && errno == ENOSYS;
  if (fs < 0 && !legacy) return errno;
  if (!legacy && fsconfig_layer(fs, "lowerdir+", o.lowers[0]) < 0) {
    int e = errno;
    close(fs);
    if (e != EINVAL) return e;
    legacy = true;  // kernel < 6.8
  }
  if (legacy) {
    unsigned long flags = read_only ? MS_RDONLY : 0;
    if (mount("overlay", o.target.c_str(), "overlay", flags, o.legacy_data.c_str()) < 0)
      return errno;
    return 0;
  }
  int err = 0;
  for (size_t i = 1; i < o.lowers.size() && !err; ++i)
    if (fsconfig_layer(fs, "lowerdir+", o.lowers[i]) < 0) err = errno;
  if (!err && o.upper && fsconfig_layer(fs, "upperdir", *o.upper) < 0) err = errno;
  if (!err && o.work && fsconfig_layer(fs, "workdir", *o.work) < 0) err = errno;
  if (!err && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) < 0) err = errno;
  if (!err && fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) err = errno;
  int mnt = -1;
  if (!err) {
    mnt = fsmount(fs, FSMOUNT_CLOEXEC, read_only ? MOUNT_ATTR_RDONLY : 0);
    if (mnt < 0) err = errno;
  }
  close(fs);
  if (!err && move_mount(mnt, "", AT_FDCWD, o.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    err = errno;
  if (mnt >= 0) close(mnt);
  return err;
}

// /proc, /dev or /sys beneath the new root (the cwd, before pivot): mount(2) follows a symlink,
// so one in the image ("proc -> /etc") would put the mount on a path outside the root; refuse
// anything but a directory, as runc does.
void mkdir_stub(const Plan& p, const char* path) {
  if (mkdir(path, 0755) < 0 && errno != EEXIST) fail(p, kStepMkdirMountpoint, errno);
  struct stat st;
  CHILD_CHECK(fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW), kStepApiDir);
  if (!S_ISDIR(st.st_mode)) fail(p, kStepApiDir, ENOTDIR);
}

bool write_full(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    s += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Tells the parent where an entry pid 1 just created (`fd`, beneath the root, before pivot)
// really is, relative to the root, whatever symlinks of the image led there: the parent removes
// it afterwards if the step left it empty. Record: uint16 length, then the path.
void report_stub(const Plan& p, int fd) {
  char link[40];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char rec[2 + 4096];
  char* buf = rec + 2;
  ssize_t n = readlink(link, buf, 4096);
  if (n < 0) fail(p, kStepReportStub, errno);
  const std::string& root = p.root.target;
  const size_t rl = root.size();
  if (n >= 4096) fail(p, kStepReportStub, ENAMETOOLONG);
  if (static_cast<size_t>(n) <= rl + 1 || memcmp(buf, root.data(), rl) != 0 || buf[rl] != '/')
    fail(p, kStepReportStub, EXDEV);
  const uint16_t len = static_cast<uint16_t>(static_cast<size_t>(n) - rl - 1);
  memmove(buf, buf + rl + 1, len);
  memcpy(rec, &len, 2);
  if (!write_full(p.stub_write, rec, 2u + len)) fail(p, kStepReportStub, errno);
}

// Creates spec.cwd owned by uid:gid. Called after pivot_root with "/" as the cwd, so that
// symlinks on the way (the image's, or a step's: `ln -s /etc /w` + WORKDIR /w/x) resolve inside
// the container's root, never on the host.
void make_cwd(const Plan& p, const std::string& rel) {
  if (rel.empty()) return;
  char buf[4096];
  if (rel.size() >= sizeof buf) fail(p, kStepMkdirCwd, ENAMETOOLONG);
  memcpy(buf, rel.c_str(), rel.size() + 1);
  for (char* s = buf;; ++s) {
    bool end = *s == '\0';
    if (*s == '/' || end) {
      *s = '\0';
      if (buf[0] != '\0') {
        if (mkdir(buf, 0755) == 0) {
          if (lchown(buf, p.spec->uid, p.spec->gid) < 0) fail(p, kStepMkdirCwd, errno);
        } else if (errno != EEXIST) {
          fail(p, kStepMkdirCwd, errno);
        }
      }
      if (end) break;
      *s = '/';
    }
  }
}

// As write_full, for messages where a failed write has nowhere to be reported.
void write_all(int fd, const char* s, size_t n) { (void)write_full(fd, s, n); }

// Mounts /proc, /dev and /sys beneath the new root (the cwd).
void mount_api_filesystems(const Plan& p) {
  mkdir_stub(p, "proc");
  // ocib's own work (COPY, WORKDIR, unpacking, packing) runs no program of the image: it needs
  // /proc (its descriptors are reached as /proc/self/fd/N) but no devices, /sys or masks, whose
  // ~25 mounts cost a COPY step's sandbox ~3 of its ~15 ms.
  const bool own_work = static_cast<bool>(p.spec->in_sandbox);
  if (!own_work) {
    mkdir_stub(p, "dev");
    mkdir_stub(p, "sys");
  }
  if (p.outer_proc) {
    // Recursively, so the outer masks (submounts over /proc/kcore, ...) stay; a user namespace
    // may not drop them anyway (they are locked).
    CHILD_CHECK(mount("/proc", "proc", nullptr, MS_BIND | MS_REC, nullptr), kStepMountProc);
  } else {
    CHILD_CHECK(mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
                kStepMountProc);
  }
  if (own_work) return;
  CHILD_CHECK(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k"),
              kStepMountDev);
  char path[64];
  for (const char* node : kDevNodes) {
    snprintf(path, sizeof path, "dev/%s", node);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    CHILD_CHECK(fd, kStepMountDevNode);
    close(fd);
    char host[64];
    snprintf(host, sizeof host, "/dev/%s", node);
    CHILD_CHECK(mount(host, path, nullptr, MS_BIND, nullptr), kStepMountDevNode);
  }
  CHILD_CHECK(mkdir("dev/pts", 0755), kStepMountDevpts);
  CHILD_CHECK(mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620"),
              kStepMountDevpts);
  CHILD_CHECK(mkdir("dev/shm", 01777), kStepMountShm);
  CHILD_CHECK(
      mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, p.shm_opts.c_str()),
      kStepMountShm);
  // POSIX message queues of the step's own IPC namespace, as runc gives BuildKit's steps.
  // Best effort: a kernel without mqueue leaves /dev/mqueue out rather than failing the step.
  if (mkdir("dev/mqueue", 01777) == 0 &&
      mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    (void)rmdir("dev/mqueue");
  CHILD_CHECK(symlink("pts/ptmx", "dev/ptmx"), kStepDevSymlink);
  CHILD_CHECK(symlink("/proc/self/fd", "dev/fd"), kStepDevSymlink);
  CHILD_CHECK(symlink("/proc/self/fd/0", "dev/stdin"), kStepDevSymlink);
  CHILD_CHECK(symlink("/proc/self/fd/1", "dev/stdout"), kStepDevSymlink);
  CHILD_CHECK(symlink("/proc/self/fd/2", "dev/stderr"), kStepDevSymlink);

  for (const char* m : kMaskedProc) {
    if (mount("/dev/null", m, nullptr, MS_BIND, nullptr) < 0 && errno != ENOENT)
      fail(p, kStepMaskProc, errno);
  }
  for (const char* m : kReadOnlyProc) {
    if (mount(m, m, nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;
      fail(p, kStepMaskProc, errno);
    }
    CHILD_CHECK(mount(nullptr, m, nullptr,
                      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
                kStepMaskProc);
  }

  // /sys is a convenience: a fresh read-only sysfs when we own the network namespace, else the
  // host's, read-only. Kernels that refuse both leave an empty directory.
  const unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (!(p.new_net && mount("sysfs", "sys", "sysfs", ro, nullptr) == 0)) {
    if (mount("/sys", "sys", nullptr, MS_BIND | MS_REC, nullptr) == 0)
      mount(nullptr, "sys", nullptr, MS_BIND | MS_REMOUNT | ro, nullptr);
  }
}

void bring_up_loopback(const Plan& p) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  CHILD_CHECK(s, kStepLoopback);
  ifreq ifr{};
  strcpy(ifr.ifr_name, "lo");
  CHILD_CHECK(ioctl(s, SIOCGIFFLAGS, &ifr), kStepLoopback);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  CHILD_CHECK(ioctl(s, SIOCSIFFLAGS, &ifr), kStepLoopback);
  close(s);
}

int open_in_root(int rootfd, const char* rel) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, rootfd, rel, &how, sizeof how));
}

// Opens (O_PATH) the target of mount `i`, creating missing components: directories, and an
// empty file for a file bind. Every component resolves inside the new root, so a symlink in the
// image (absolute or "..") cannot point the mount or the mkdir at the host.
int open_mount_target(const Plan& p, int rootfd, size_t i, bool file) {
  const MountPlan& m = p.mounts[i];
  const int idx = static_cast<int>(i);
  int dirfd = rootfd;
  for (size_t k = 0; k < m.prefixes.size(); ++k) {
    const bool last = k + 1 == m.prefixes.size();
    int fd = open_in_root(rootfd, m.prefixes[k].c_str());
    if (fd < 0 && errno == ENOENT) {
      const char* name = m.names[k].c_str();
      if (last && file) {
        int f = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0) fail(p, kStepMountTarget, errno, idx);
        close(f);
      } else if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
        fail(p, kStepMountTarget, errno, idx);
      }
      fd = open_in_root(rootfd, m.prefixes[k].c_str());
      if (fd >= 0) report_stub(p, fd);
    }
    // ENOENT here: a dangling symlink on the way (not followed to create its target).
    if (fd < 0) fail(p, kStepMountTarget, errno, idx);
    if (dirfd != rootfd) close(dirfd);
    dirfd = fd;
  }
  return dirfd;
}

// Mounts Plan::mounts beneath the new root (the cwd, not yet pivoted) with the fd-based mount
// API: open_tree clones a bind source (recursively: a userns may not split locked submounts),
// mount_setattr only *adds* MOUNT_ATTR_RDONLY, so the nosuid/nodev/noexec flags locked on the
// source in a user namespace are kept, and move_mount attaches at the resolved target fd.
void mount_user_mounts(const Plan& p) {
  if (p.mounts.empty()) return;
  int rootfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHILD_CHECK(rootfd, kStepChdirRoot);
  // A clone of `subpath` beneath `src_root`, resolved as if `src_root` were "/": a symlink in
  // a stage or a context (`host -> /`) names a path inside it, never the host's.
  auto clone_beneath = [&](const char* src_root, const MountPlan& m, int idx, bool* file) {
    int r = open(src_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r < 0) fail(p, kStepMountSource, errno, idx);
    int src = open_in_root(r, m.subpath.empty() ? "." : m.subpath.c_str());
    if (src < 0) fail(p, kStepMountSource, errno, idx);
    struct stat st;
    if (fstat(src, &st) < 0) fail(p, kStepMountSource, errno, idx);
    *file = !S_ISDIR(st.st_mode);
    int mnt = open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (mnt < 0) fail(p, kStepUserMount, errno, idx);
    close(src);
    close(r);
    return mnt;
  };
  for (size_t i = 0; i < p.mounts.size(); ++i) {
    const MountPlan& m = p.mounts[i];
    const int idx = static_cast<int>(i);
    bool file = m.file;
    int mnt = -1;
    unsigned attrs = m.readonly ? MOUNT_ATTR_RDONLY : 0;
    bool recursive = true;
    switch (m.type) {
      case Mount::Type::kBind:
        if (m.chown_uid >= 0 || m.chown_gid >= 0) {
          int d = open(m.source.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (d < 0 || fchown(d, static_cast<uid_t>(m.chown_uid), static_cast<gid_t>(m.chown_gid)) < 0)
            fail(p, kStepDataMount, errno, idx);
          close(d);
        }
        if (m.subpath.empty()) {
          mnt = open_tree(AT_FDCWD, m.source.c_str(),
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
          if (mnt < 0) fail(p, kStepUserMount, errno, idx);
        } else {
          mnt = clone_beneath(m.source.c_str(), m, idx, &file);
        }
        break;
      case Mount::Type::kData:
        // A file in pid 1's private tmpfs (written by run_init): memory only.
        mnt = open_tree(AT_FDCWD, m.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (mnt < 0) fail(p, kStepUserMount, errno, idx);
        attrs |= MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        recursive = false;
        break;
      case Mount::Type::kTmpfs: {
        int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0) fail(p, kStepUserMount, errno, idx);
        if ((!m.tmpfs_size.empty() && fsconfig_str(fs, "size", m.tmpfs_size.c_str()) < 0) ||
            fsconfig_str(fs, "mode", m.tmpfs_mode.c_str()) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
          fail(p, kStepUserMount, errno, idx);
        unsigned fattrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if (m.readonly) fattrs |= MOUNT_ATTR_RDONLY;
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, fattrs);
        if (mnt < 0) fail(p, kStepUserMount, errno, idx);
        close(fs);
        attrs = 0;
        break;
      }
      case Mount::Type::kOverlayRw:
        // Mounted at overlay.target by run_init before the rootfs was entered.
        if (m.subpath.empty()) {
          mnt = open_tree(AT_FDCWD, m.overlay.target.c_str(), OPEN_TREE_CLOEXEC);
          if (mnt < 0) fail(p, kStepUserMount, errno, idx);
          recursive = false;
        } else {
          mnt = clone_beneath(m.overlay.target.c_str(), m, idx, &file);
        }
        break;
    }
    if (attrs) {
      // mount_setattr only *adds* these, so the nosuid/nodev/noexec flags locked on a source
      // in a user namespace are kept.
      mount_attr attr{};
      attr.attr_set = attrs;
      if (mount_setattr(mnt, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                        sizeof attr) < 0)
        fail(p, kStepUserMount, errno, idx);
    }
    int target = open_mount_target(p, rootfd, i, file);
    struct stat st;
    CHILD_CHECK(fstat(target, &st), kStepMountTarget);
    if (S_ISDIR(st.st_mode) == file) fail(p, kStepUserMount, file ? EISDIR : ENOTDIR, idx);
    if (move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      fail(p, kStepUserMount, errno, idx);
    close(mnt);
    close(target);
  }
  close(rootfd);
}

// kData mounts: a tmpfs at Plan::data_dir that only this mount namespace has, holding one file
// per mount. Gone with the step's namespaces, so a secret never reaches a disk, not even when
// ocib is SIGKILLed.
void write_data_files(const Plan& p) {
  if (p.data_dir.empty()) return;
  CHILD_CHECK(mount("tmpfs", p.data_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.data_size.c_str()),
              kStepDataMount);
  for (size_t i = 0; i < p.mounts.size(); ++i) {
    const MountPlan& m = p.mounts[i];
    if (m.type != Mount::Type::kData) continue;
    int fd = open(m.source.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) fail(p, kStepDataMount, errno, static_cast<int>(i));
    if (!write_full(fd, m.data.data(), m.data.size()) ||
        ((m.chown_uid >= 0 || m.chown_gid >= 0) &&
         fchown(fd, static_cast<uid_t>(m.chown_uid), static_cast<gid_t>(m.chown_gid)) < 0) ||
        fchmod(fd, m.mode & 07777) < 0)
      fail(p, kStepDataMount, errno, static_cast<int>(i));
    close(fd);
  }
}

// Parent-death handling for pid 1: A holds the write end of `alive`; once A is gone, reading
// the other end reports a hangup. Checked after each (re)arming of PR_SET_PDEATHSIG, which the
// kernel clears when the uid changes.
void arm_death_signal(const Plan& p, int alive_fd) {
  CHILD_CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), kStepPdeathsig);
  pollfd pfd{alive_fd, POLLIN, 0};
  if (poll(&pfd, 1, 0) != 0) _exit(kSetupFailedExit);
}

[[noreturn]] void exec_command(const Plan& p) {
  const char* const* argv = p.argv.data();
  const char* const* envp = p.envp.data();
  // As execvpe(3), but over the container's PATH.
  int err = ENOENT;
  bool eacces = false;
  for (const auto& cand : p.exec_candidates) {
    execve(cand.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    if (errno == EACCES) {
      eacces = true;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      err = errno;
      break;
    }
  }
  if (eacces && err == ENOENT) err = EACCES;
  if (p.spec->argv[0].find('/') == std::string::npos && err == ENOENT) {
    write_all(2, p.not_found_msg.data(), p.not_found_msg.size());
    _exit(127);
  }
  // exec: "/x": <strerror>
  const std::string& a0 = p.spec->argv[0];
  write_all(2, "exec: \"", 7);
  write_all(2, a0.data(), a0.size());
  write_all(2, "\": ", 3);
  const char* msg = strerrordesc_np(err);
  if (msg) write_all(2, msg, strlen(msg));
  write_all(2, "\n", 1);
  _exit(err == ENOENT ? 127 : 126);
}

// pid 1 of the new pid namespace.
[[noreturn]] void run_init(const Plan& p, int alive_fd) {
  const Spec& s = *p.spec;
  arm_death_signal(p, alive_fd);
  CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), kStepMakePrivate);
  // fuse-overlayfs mounts were made by child A; the copy driver's trees are plain directories
  // (a RUN --mount=...,rw copy is bound by mount_user_mounts like any directory).
  if (p.driver == Snapshotter::kOverlay) {
    if (int e = mount_overlay(p.root, false)) fail(p, kStepMountOverlay, e);
    for (size_t i = 0; i < p.mounts.size(); ++i)
      if (p.mounts[i].type == Mount::Type::kOverlayRw)
        if (int e = mount_overlay(p.mounts[i].overlay, false))
          fail(p, kStepUserOverlay, e, static_cast<int>(i));
  } else if (p.driver == Snapshotter::kCopy) {
    // Mount points of their own, as the overlays would be (pivot_root and open_tree need one).
    CHILD_CHECK(
        mount(p.root.target.c_str(), p.root.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr),
        kStepBindRoot);
    for (size_t i = 0; i < p.mounts.size(); ++i) {
      const char* t = p.mounts[i].overlay.target.c_str();
      if (p.mounts[i].type == Mount::Type::kOverlayRw &&
          mount(t, t, nullptr, MS_BIND | MS_REC, nullptr) < 0)
        fail(p, kStepUserOverlay, errno, static_cast<int>(i));
    }
  }

  int fds[512];
  size_t nfds = 0;
  if (p.views.size() + p.host_fds.size() > 512) fail(p, kStepOpenView, EMFILE);
  for (const auto& v : p.views) {
    // Views of several layers are fuse-overlayfs mounts already under the fuse driver.
    if (p.driver != Snapshotter::kFuseOverlayfs || v.lowers.size() == 1)
      if (int e = mount_overlay(v, true)) fail(p, kStepMountView, e);
    int fd = open(v.target.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHILD_CHECK(fd, kStepOpenView);
    fds[nfds++] = fd;
  }
  for (int fd : p.host_fds) fds[nfds++] = fd;

  write_data_files(p);
  CHILD_CHECK(chdir(p.root.target.c_str()), kStepChdirRoot);
  mount_api_filesystems(p);
  mount_user_mounts(p);
  close(p.stub_write);

  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHILD_CHECK(devnull, kStepStdio);
  int out = s.output_fd >= 0 ? s.output_fd : 2;
  CHILD_CHECK(dup2(out, 1), kStepStdio);
  CHILD_CHECK(dup2(out, 2), kStepStdio);
  CHILD_CHECK(dup2(devnull, 0), kStepStdio);
  close(devnull);
  if (s.output_fd > 2) close(s.output_fd);

  CHILD_CHECK(syscall(SYS_pivot_root, ".", "."), kStepPivotRoot);
  CHILD_CHECK(umount2(".", MNT_DETACH), kStepPivotRoot);
  CHILD_CHECK(chdir("/"), kStepPivotRoot);
  if (!p.cwd_rel.empty()) make_cwd(p, p.cwd_rel);
  CHILD_CHECK(sethostname(s.hostname.data(), s.hostname.size()), kStepSethostname);
  if (p.new_net && p.shared_net_fd < 0) bring_up_loopback(p);

  if (!s.insecure)
    if (int e = internal::drop_bounding_set()) fail(p, kStepDropBounding, e);
  for (const auto& u : s.ulimits) {
    struct rlimit rl = {static_cast<rlim_t>(u.soft), static_cast<rlim_t>(u.hard)};
    CHILD_CHECK(setrlimit(u.resource, &rl), kStepSetrlimit);
  }
  if (p.allow_setgroups) CHILD_CHECK(setgroups(p.groups.size(), p.groups.data()), kStepSetgroups);
  CHILD_CHECK(setresgid(s.gid, s.gid, s.gid), kStepSetgid);
  CHILD_CHECK(setresuid(s.uid, s.uid, s.uid), kStepSetuid);
  arm_death_signal(p, alive_fd);  // a uid change cleared it
  close(alive_fd);
  if (int e = internal::set_capabilities(s.uid == 0, s.insecure)) fail(p, kStepSetCaps, e);
  CHILD_CHECK(chdir(s.cwd.c_str()), kStepChdirCwd);
  if (!s.insecure) {
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), kStepNoNewPrivs);
    if (int e = internal::load_seccomp(*p.seccomp)) fail(p, kStepSeccomp, e);
  }

  if (s.in_sandbox) {
    // Drop what the caller had buffered on stdout before fork, or the flush below would
    // print it a second time.
    __fpurge(stdout);
    std::vector<int> v(fds, fds + nfds);
    int rc = s.in_sandbox(v);
    fflush(nullptr);
    _exit(rc);
  }
  exec_command(p);
}

constexpr size_t kMaxFuse = 256;
constexpr long kFuseSuperMagic = 0x65735546;

// Starts fuse-overlayfs (foreground, so it stays our child and dies with us) for `o` and waits
// until its mount is up. Its output goes to a pipe: shown only if it fails; the read end stays
// open (*out_fd) so that a later message cannot kill it with SIGPIPE.
pid_t start_fuse(const Plan& p, const OverlayPlan& o, int* out_fd) {
  int out[2];
  CHILD_CHECK(pipe2(out, O_CLOEXEC), kStepMountFuse);
  pid_t pid = fork();
  CHILD_CHECK(pid, kStepMountFuse);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
      _exit(127);
    static const char* const env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", nullptr};
    execve(p.fuse_bin.c_str(), const_cast<char* const*>(o.fuse_argv.data()),
           const_cast<char* const*>(env));
    _exit(127);
  }
  close(out[1]);
  for (int i = 0;; ++i) {
    struct statfs sf;
    if (statfs(o.target.c_str(), &sf) == 0 && sf.f_type == kFuseSuperMagic) break;
    int status = 0;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) fail_with_output(p, kStepMountFuse, EIO, out[0]);
    if (i >= 20000) {  // 10 s
      kill(pid, SIGKILL);
      fail_with_output(p, kStepMountFuse, ETIMEDOUT, out[0]);
    }
    timespec pause{0, 500000};
    nanosleep(&pause, nullptr);
  }
  *out_fd = out[0];
  return pid;
}

// Child A: user namespace, then the other namespaces, then waits for pid 1.
[[noreturn]] void run_outer(const Plan& p) {
  // A session of our own: no controlling terminal, so nothing in the step can open the caller's
  // (/dev/tty gives ENXIO) or queue input into it with TIOCSTI. Also our process group, which
  // cancel_all() kills.
  CHILD_CHECK(setsid(), kStepPdeathsig);
  // Its own autogroup too: started by lowered-priority work (packing a layer early, flattening
  // a chain), it would otherwise take a full share beside a compiling RUN step (25% of the
  // machine, measured).
  lower_session_priority();
  CHILD_CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), kStepPdeathsig);
  if (getppid() != p.parent) _exit(kSetupFailedExit);
  // Other threads' children may hold fds of the caller; ours keep nothing but what we need.
  {
    unsigned int lo = 3;
    for (int fd : p.keep_fds) {
      if (fd < 3) continue;
      if (static_cast<unsigned>(fd) > lo) syscall(SYS_close_range, lo, fd - 1, 0);
      lo = static_cast<unsigned>(fd) + 1;
    }
    CHILD_CHECK(syscall(SYS_close_range, lo, ~0U, 0), kStepCloseFds);
  }
  if (p.shared_user_fd >= 0) {
    CHILD_CHECK(setns(p.shared_user_fd, CLONE_NEWUSER), kStepJoinShared);
    CHILD_CHECK(setns(p.shared_net_fd, CLONE_NEWNET), kStepJoinShared);
    close(p.shared_user_fd);
    close(p.shared_net_fd);
  } else {
    CHILD_CHECK(unshare(CLONE_NEWUSER), kStepUnshareUser);
  }
  char c = 'u';
  CHILD_CHECK(write(p.c2p_write, &c, 1), kStepSync);
  ssize_t n;
  do n = read(p.p2c_read, &c, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(kSetupFailedExit);  // the parent gave up and reports why
  CHILD_CHECK(setresgid(0, 0, 0), kStepSetRoot);
  CHILD_CHECK(setresuid(0, 0, 0), kStepSetRoot);
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (p.new_net && p.shared_net_fd < 0) flags |= CLONE_NEWNET;
  pid_t fuse[kMaxFuse];
  int fuse_out[kMaxFuse], fuse_root[kMaxFuse];
  size_t nfuse = 0;
  if (p.driver == Snapshotter::kFuseOverlayfs) {
    // The daemons live in our user and mount namespaces but outside the step's pid namespace
    // (the step does not see them), in our process group (cancel_all kills them too).
    CHILD_CHECK(unshare(flags & ~CLONE_NEWPID), kStepUnshareNs);
    CHILD_CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), kStepMakePrivate);
    auto start = [&](const OverlayPlan& o) {
      if (nfuse == kMaxFuse) fail(p, kStepMountFuse, EMFILE);
      fuse[nfuse] = start_fuse(p, o, &fuse_out[nfuse]);
      fuse_root[nfuse] = open(o.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ++nfuse;
    };
    start(p.root);
    for (const auto& m : p.mounts)
      if (m.type == Mount::Type::kOverlayRw) start(m.overlay);
    for (const auto& v : p.views)
      if (v.lowers.size() > 1) start(v);
    // The step gets a mount namespace of its own: pivot_root moves the root of every process
    // in its namespace that is at the old root, and the daemons must keep theirs.
    CHILD_CHECK(unshare(CLONE_NEWPID | CLONE_NEWNS), kStepUnshareNs);
  } else {
    CHILD_CHECK(unshare(flags), kStepUnshareNs);
  }
  int alive[2];
  CHILD_CHECK(pipe2(alive, O_CLOEXEC), kStepForkInit);
  pid_t init = fork();
  CHILD_CHECK(init, kStepForkInit);
  if (init == 0) {
    close(alive[1]);
    run_init(p, alive[0]);
  }
  close(alive[0]);
  int status = 0;
  while (waitpid(init, &status, 0) < 0) {
    if (errno != EINTR) fail(p, kStepForkInit, errno);
  }
  // Every process of the step is gone. Pages the kernel still caches dirty (a shared mmap) go to
  // the daemons first; then they stop, before the parent reads the upperdir.
  for (size_t i = 0; i < nfuse; ++i) {
    if (fuse_root[i] >= 0) {
      syncfs(fuse_root[i]);
      close(fuse_root[i]);
    }
    kill(fuse[i], SIGKILL);
    while (waitpid(fuse[i], nullptr, 0) < 0 && errno == EINTR) {
    }
    close(fuse_out[i]);
  }
  CHILD_CHECK(write(p.c2p_write, &status, sizeof status), kStepSync);
  _exit(0);
}

// ---- parent side --------------------------------------------------------------------------

std::string overlay_legacy_data(const OverlayPlan& o) {
  std::string d = "lowerdir=";
  for (size_t i = 0; i < o.lowers.size(); ++i) d += (i ? ":" : "") + o.lowers[i].full;
  if (o.upper) d += ",upperdir=" + o.upper->full + ",workdir=" + o.work->full;
  return d + ",userxattr";
}

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return {};
}

Status check_mapped(const IdMapping& ids, const Spec& s) {
  auto unmapped = [&](const char* what, uint32_t id) {
    return Error(Errc::kInvalidArgument,
                 "sandbox: " + std::string(what) + " " + std::to_string(id) +
                     " is not mapped in the user namespace (" + ids.description + ")");
  };
  if (!ids.container_to_host_uid(s.uid)) return unmapped("uid", s.uid);
  if (!ids.container_to_host_gid(s.gid)) return unmapped("gid", s.gid);
  return ok_status();
}

Status write_proc(pid_t pid, const char* file, const std::string& data) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(path, O_WRONLY));
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    return Error::from_errno("sandbox: write " + std::string(file), errno);
  return ok_status();
}

Status run_helper(const char* prog, pid_t pid, const std::vector<IdRange>& ranges) {
  std::vector<std::string> args = {prog, std::to_string(pid)};
  for (const auto& r : ranges) {
    args.push_back(std::to_string(r.container));
    args.push_back(std::to_string(r.host));
    args.push_back(std::to_string(r.count));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t h;
  int rc = posix_spawnp(&h, prog, nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return Error::from_errno(std::string("sandbox: run ") + prog, rc);
  int status = 0;
  while (waitpid(h, &status, 0) < 0)
    if (errno != EINTR) return Error::from_errno(std::string("sandbox: wait for ") + prog, errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Error(Errc::kGeneric, std::string("sandbox: ") + prog + " failed (status " +
                                     std::to_string(status) + ")");
  return ok_status();
}

Status write_id_maps(pid_t pid, const IdMapping& ids, bool deny_setgroups) {
  if (ids.needs_helpers) {
    OCIB_TRY(run_helper("newuidmap", pid, ids.uids));
    return run_helper("newgidmap", pid, ids.gids);
  }
  if (deny_setgroups) OCIB_TRY(write_proc(pid, "setgroups", "deny"));
  OCIB_TRY(write_proc(pid, "uid_map", format_id_map(ids.uids)));
  return write_proc(pid, "gid_map", format_id_map(ids.gids));
}

// Opens `rel` beneath `dirfd` without following any symlink (nor "..", nor a mount crossing).
int open_beneath(int dirfd, const std::string& rel, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return static_cast<int>(syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

// What the lowerdirs show at `rel` (topmost wins; a whiteout, or a non-directory on the way,
// means nothing). Never follows a symlink of a layer.
StubPath lookup_lower(const std::vector<std::string>& dirs, const std::string& rel) {
  StubPath sp;
  sp.rel = rel;
  for (const auto& d : dirs) {
    UniqueFd dfd(open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dfd.valid()) continue;
    int fd = open_beneath(dfd.get(), rel, O_PATH);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return sp;  // ELOOP/ENOTDIR: this layer hides the path (or it is not a plain one)
    }
    UniqueFd f(fd);
    struct stat st;
    if (fstat(fd, &st) < 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return sp;
    sp.in_lower = true;
    sp.lower = st;
    return sp;
  }
  return sp;
}

bool is_opaque(int fd) {
  char v[4];
  return fgetxattr(fd, "user.overlay.opaque", v, sizeof v) > 0 ||
         fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v) > 0;
}

bool is_opaque(const std::string& path) {
  UniqueFd d(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return d.valid() && is_opaque(d.get());
}

// What pid 1 reported creating (report_stub), with every parent directory of each (which the
// overlay may have copied up to hold it), plus /proc, /dev and /sys; with what the lowerdirs
// have there. Deepest first.
std::vector<StubPath> collect_stubs(const Spec& s, int stub_read) {
  std::set<std::string> rels = {"proc", "dev", "sys"};
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = read(stub_read, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
  }
  for (size_t pos = 0; pos + 2 <= buf.size();) {
    uint16_t len;
    memcpy(&len, buf.data() + pos, 2);
    if (pos + 2 + len > buf.size()) break;
    std::string rel = buf.substr(pos + 2, len);
    pos += 2 + len;
    for (std::string r = rel; !r.empty() && r != "."; r = fs::dirname(r)) {
      rels.insert(r);
      if (r.find('/') == std::string::npos) break;
    }
  }
  std::vector<StubPath> out;
  for (const auto& rel : rels) out.push_back(lookup_lower(s.lowerdirs, rel));
  // Deepest first: "a/b" before "a".
  std::stable_sort(out.begin(), out.end(), [](const StubPath& a, const StubPath& b) {
    return std::count(a.rel.begin(), a.rel.end(), '/') > std::count(b.rel.begin(), b.rel.end(), '/');
  });
  return out;
}

// Removes the empty mountpoint stubs the sandbox created in upperdir (BuildKit does the same),
// so `FROM scratch` + RUN does not ship /proc or /dev, and a secret's mountpoint never lands in
// a layer. Deepest first, so parents created for a target go too once they are empty. A
// directory that exists below and was only copied up to hold a stub (still empty, not opaque,
// same mode and owner as below) is removed as well: the merged view is the same without it.
// Everything is resolved beneath an upperdir fd without following symlinks: the step may have
// replaced a stub's parent with a link to a host path.
void remove_stubs(const Plan& p) {
  const Spec& s = *p.spec;
  UniqueFd up(open(s.upperdir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!up.valid()) return;
  for (const StubPath& sp : p.stubs) {
    const std::string parent = sp.rel.find('/') == std::string::npos ? "." : fs::dirname(sp.rel);
    const std::string name = fs::basename(sp.rel);
    int pfd = open_beneath(up.get(), parent, O_PATH | O_DIRECTORY);
    if (pfd < 0) continue;
    UniqueFd pf(pfd);
    struct stat st;
    if (fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (!sp.in_lower) {
      if (S_ISDIR(st.st_mode))
        unlinkat(pfd, name.c_str(), AT_REMOVEDIR);  // fails (fine) when the step put something there
      else if (S_ISREG(st.st_mode) && st.st_size == 0)
        unlinkat(pfd, name.c_str(), 0);
    } else if (S_ISDIR(st.st_mode) && S_ISDIR(sp.lower.st_mode) &&
               st.st_mode == sp.lower.st_mode && st.st_uid == sp.lower.st_uid &&
               st.st_gid == sp.lower.st_gid) {
      UniqueFd d(openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (d.valid() && !is_opaque(d.get())) unlinkat(pfd, name.c_str(), AT_REMOVEDIR);
    }
  }
}

// Splits a layer path for fsconfig(2), whose strings are limited to 256 bytes: the child
// chdir()s to `dir` and passes the single component `base`.
Result<LayerPath> layer_path(const std::string& path, const char* what) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0)
    return Error::from_errno("sandbox: " + std::string(what) + " " + path, errno);
  if (!S_ISDIR(st.st_mode))
    return Error::from_errno("sandbox: " + std::string(what) + " " + path, ENOTDIR);
  OCIB_ASSIGN_OR_RETURN(std::string full, fs::real_path(path));
  LayerPath l;
  l.full = full;
  l.dir = fs::dirname(full);
  l.base = full == "/" ? "." : fs::basename(full);
  return l;
}

Status resolve_layers(OverlayPlan& o, const std::vector<std::string>& lowers,
                      const std::string& upper, const std::string& work) {
  for (const auto& l : lowers) {
    OCIB_ASSIGN_OR_RETURN(LayerPath lp, layer_path(l, "lowerdir"));
    o.lowers.push_back(std::move(lp));
  }
  if (!upper.empty()) {
    OCIB_ASSIGN_OR_RETURN(o.upper, layer_path(upper, "upperdir"));
  }
  if (!work.empty()) {
    OCIB_ASSIGN_OR_RETURN(o.work, layer_path(work, "workdir"));
  }
  return ok_status();
}

Status write_scratch_file(const std::string& path, const std::string& data) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    return Error::from_errno("sandbox: write " + path, errno);
  return ok_status();
}

// The step's /etc/hosts, /etc/hostname and /etc/resolv.conf, generated under scratch.
}  // namespace

namespace internal {

Result<std::vector<Mount>> etc_mounts(const Spec& s, const std::string& scratch, bool net_stack) {
  std::string dir = fs::join(scratch, "etc");
  OCIB_TRY(fs::mkdirs(dir));
  std::string hosts = "127.0.0.1\tlocalhost " + s.hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& [host, ip] : s.extra_hosts) hosts += ip + "\t" + host + "\n";
  std::string resolv;
  if (net_stack) {
    // slirp4netns' DNS forwarder; it relays to the nameservers of the host's resolv.conf.
    resolv = "nameserver 10.0.2.3\n";
  } else if (s.network != Network::kNone) {  // kHost, or kDefault without a stack
    auto host = fs::read_file("/etc/resolv.conf");
    if (host.ok()) resolv = *host;
  }
  std::vector<Mount> out;
  const std::pair<const char*, std::string> files[] = {
      {"hosts", hosts}, {"hostname", s.hostname + "\n"}, {"resolv.conf", resolv}};
  for (const auto& [name, data] : files) {
    Mount m;
    m.source = fs::join(dir, name);
    m.target = std::string("/etc/") + name;
    OCIB_TRY(write_scratch_file(m.source, data));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace internal

namespace {

using internal::etc_mounts;

// Resolves Spec::mounts (after the generated /etc files). Where the child creates mountpoints it
// reports afterwards (report_stub, collect_stubs).
Status plan_mounts(Plan& p, const std::string& scratch) {
  const Spec& s = *p.spec;
  std::vector<Mount> all;
  if (s.etc_files && !s.in_sandbox) {
    OCIB_ASSIGN_OR_RETURN(all, etc_mounts(s, scratch, p.net_stack_shared));
  }
  all.insert(all.end(), s.mounts.begin(), s.mounts.end());
  size_t data_bytes = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const Mount& m = all[i];
    MountPlan mp;
    mp.type = m.type;
    mp.readonly = m.readonly;
    if (m.target.empty() || m.target[0] != '/')
      return Error::invalid("sandbox: mount target must be absolute: \"" + m.target + "\"");
    mp.display = fs::clean(m.target);
    if (mp.display == "/") return Error::invalid("sandbox: cannot mount over /");
    std::string rel = mp.display.substr(1);
    for (size_t pos = 0;;) {
      size_t slash = rel.find('/', pos);
      std::string prefix = rel.substr(0, slash);
      mp.prefixes.push_back(prefix);
      mp.names.push_back(rel.substr(pos, slash == std::string::npos ? slash : slash - pos));
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    switch (m.type) {
      case Mount::Type::kBind: {
        struct stat st;
        if (stat(m.source.c_str(), &st) < 0)
          return Error::from_errno("sandbox: mount source " + m.source, errno);
        OCIB_ASSIGN_OR_RETURN(mp.source, fs::real_path(m.source));
        mp.file = !S_ISDIR(st.st_mode);
        mp.subpath = m.subpath;
        mp.chown_uid = m.chown_uid;
        mp.chown_gid = m.chown_gid;
        if (!mp.subpath.empty() && mp.file)
          return Error::from_errno("sandbox: mount source " + m.source, ENOTDIR);
        break;
      }
      case Mount::Type::kData: {
        if (p.data_dir.empty()) {
          p.data_dir = fs::join(scratch, "data");
          OCIB_TRY(fs::mkdirs(p.data_dir, 0700));
        }
        mp.source = fs::join(p.data_dir, std::to_string(i));
        mp.data = m.data;
        mp.mode = m.mode;
        mp.chown_uid = m.chown_uid;
        mp.chown_gid = m.chown_gid;
        mp.file = true;
        data_bytes += m.data.size() + 4096;
        break;
      }
      case Mount::Type::kTmpfs: {
        if (m.tmpfs_size) mp.tmpfs_size = std::to_string(m.tmpfs_size);
        char mode[16];
        snprintf(mode, sizeof mode, "%o", m.mode & 07777);
        mp.tmpfs_mode = mode;
        break;
      }
      case Mount::Type::kOverlayRw: {
        std::string base = fs::join(scratch, "mount" + std::to_string(i));
        mp.overlay.target = fs::join(base, "mnt");
        for (const char* d : {"mnt", "upper", "work"}) OCIB_TRY(fs::mkdirs(fs::join(base, d)));
        const std::vector<std::string> only_empty = {p.empty_dir};
        OCIB_TRY(resolve_layers(mp.overlay, m.lowerdirs.empty() ? only_empty : m.lowerdirs,
                                fs::join(base, "upper"), fs::join(base, "work")));
        mp.overlay.legacy_data = overlay_legacy_data(mp.overlay);
        mp.subpath = m.subpath;
        break;
      }
    }
    p.mounts.push_back(std::move(mp));
  }
  if (!p.data_dir.empty()) p.data_size = "mode=0700,size=" + std::to_string(data_bytes + 65536);
  return ok_status();
}

// The user namespace (with `ids` mapped) and the empty network namespace (lo up) that kNone
// steps join instead of creating their own: creating and, above all, tearing down a network
// namespace per step is a large part of a step's cost. Created once per process and mapping by
// a helper child that exits once we hold the namespace fds.
struct SharedNs {
  std::string key;
  UniqueFd user, net;
  UniqueFd stack_exit;  // with a network stack: its --exit-fd's other end, held for the process
};
std::mutex g_shared_mu;
std::vector<std::unique_ptr<SharedNs>> g_shared;  // never freed: children use the fds

Result<UniqueFd> open_ns(pid_t pid, const char* ns) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("sandbox: open " + path, errno);
  return UniqueFd(fd);
}

Status start_shared_stack(SharedNs& sh);

// `with_stack`: the network namespace of kDefault steps, with slirp4netns attached once for the
// whole process (see start_shared_stack).
Result<const SharedNs*> shared_namespaces(const IdMapping& ids, bool with_stack = false) {
  std::string key = format_id_map(ids.uids) + "|" + format_id_map(ids.gids) +
                    (ids.needs_helpers ? "|helpers" : "") + (with_stack ? "|stack" : "");
  std::lock_guard lock(g_shared_mu);
  for (const auto& s : g_shared)
    if (s->key == key) return s.get();
  const bool deny_setgroups = !(ids.needs_helpers || geteuid() == 0);
  int p2c[2], c2p[2];
  if (pipe2(p2c, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd p2c_r(p2c[0]), p2c_w(p2c[1]);
  if (pipe2(c2p, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd c2p_r(c2p[0]), c2p_w(c2p[1]);
  pid_t pid = fork();
  if (pid < 0) return Error::from_errno("sandbox: fork", errno);
  if (pid == 0) {
    // No allocation: report one byte per stage, 'x' on failure.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    close(p2c[1]);
    close(c2p[0]);
    char c = 'u';
    auto say = [&](char ch) { c = ch; return write(c2p[1], &c, 1) == 1; };
    auto hear = [&] { return read(p2c[0], &c, 1) == 1; };
    if (unshare(CLONE_NEWUSER) < 0 || !say('u') || !hear()) _exit(1);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || unshare(CLONE_NEWNET) < 0) {
      say('x');
      _exit(1);
    }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    strcpy(ifr.ifr_name, "lo");
    if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
      say('x');
      _exit(1);
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
      say('x');
      _exit(1);
    }
    say('r');
    hear();  // the parent has opened our namespaces
    _exit(0);
  }
  p2c_r.reset();
  c2p_w.reset();
  auto finish = [&](Status st) -> Status {
    if (!st.ok()) kill(pid, SIGKILL);
    p2c_w.reset();
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return st;
  };
  auto hear = [&](char want) {
    char c = 0;
    ssize_t n;
    do n = read(c2p_r.get(), &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 && c == want;
  };
  auto sh = std::make_unique<SharedNs>();
  sh->key = key;
  Status st = hear('u') ? write_id_maps(pid, ids, deny_setgroups)
                        : Error(Errc::kGeneric, "sandbox: shared namespace helper failed");
  if (st.ok() && write(p2c_w.get(), "g", 1) != 1) st = Error::from_errno("sandbox: sync", errno);
  if (st.ok() && !hear('r'))
    st = Error(Errc::kGeneric, "sandbox: shared network namespace could not be set up");
  if (st.ok()) {
    auto u = open_ns(pid, "user");
    auto n = open_ns(pid, "net");
    if (!u.ok()) st = std::move(u).error();
    else if (!n.ok()) st = std::move(n).error();
    else {
      sh->user = std::move(*u);
      sh->net = std::move(*n);
    }
  }
  OCIB_TRY(finish(std::move(st)));
  if (with_stack) OCIB_TRY(start_shared_stack(*sh));
  g_shared.push_back(std::move(sh));
  return g_shared.back().get();
}

// RUN's default network, as rootless BuildKit has it (its steps share RootlessKit's network
// namespace and its slirp4netns): one network namespace per process and id mapping, its
// outbound access through one slirp4netns started here, joined by every kDefault step. A
// stack per step cost ~35 ms a step (fork, exec, configure, teardown: manyruns 2.6x of
// --network=none); shared, the default network costs what --network=none does. Concurrent
// steps share one loopback (and its ports), as under rootless BuildKit.
// slirp4netns rather than pasta: it is the long-proven rootless choice (rootless BuildKit,
// podman), sets up tap0, its address and the default route with --configure and says when
// that is done on --ready-fd; --disable-host-loopback keeps the host's 127.0.0.1 (and the
// gateway address standing for it) unreachable. pasta would be faster, but bookworm's is an
// early snapshot. It joins the namespaces by their fds' paths and exits when this process does
// (--exit-fd: the pipe's other end is never closed).
Status start_shared_stack(SharedNs& sh) {
  const std::string bin = network_stack_path();
  const std::string self = "/proc/" + std::to_string(getpid()) + "/fd/";
  std::vector<std::string> args = {bin, "--configure", "--mtu=65520", "--disable-host-loopback",
                                   "--ready-fd=3", "--exit-fd=4", "--netns-type=path",
                                   "--userns-path=" + self + std::to_string(sh.user.get()),
                                   self + std::to_string(sh.net.get()), "tap0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  UniqueFd log(memfd_create("ocib-slirp4netns-log", MFD_CLOEXEC));
  if (!log.valid()) return Error::from_errno("sandbox: memfd_create", errno);
  int ready[2], ex[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (pipe2(ex, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd exit_r(ex[0]), exit_w(ex[1]);
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error::from_errno("sandbox: fork", errno);
  if (pid == 0) {
    setsid();  // not in a step's process group: cancel_all must not kill it
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(log.get(), 1) < 0 || dup2(log.get(), 2) < 0 ||
        dup2(ready_w.get(), 3) < 0 || fcntl(3, F_SETFD, 0) < 0 || dup2(exit_r.get(), 4) < 0 ||
        fcntl(4, F_SETFD, 0) < 0)
      _exit(127);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ready_w.reset();
  exit_r.reset();
  auto failed = [&](const std::string& why) -> Error {
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    std::string said(4096, '\0');
    ssize_t n = pread(log.get(), said.data(), said.size(), 0);
    said.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    for (char& ch : said)
      if (ch == '\n') ch = ';';
    return Error(Errc::kGeneric, "sandbox: network stack " + bin + " " + why + (said.empty() ? "" : ": " + said));
  };
  pollfd pfd{ready_r.get(), POLLIN, 0};
  int rc;
  do rc = poll(&pfd, 1, 10000);
  while (rc < 0 && errno == EINTR);
  if (rc == 0) return failed("not ready after 10 s");
  char c = 0;
  ssize_t n;
  do n = read(ready_r.get(), &c, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1 || c != '1') return failed("exited before it was ready");
  sh.stack_exit = std::move(exit_w);
  log::debug("default network: " + bin + " started (pid " + std::to_string(pid) + ")");
  return ok_status();
}

bool identity_mapping(const IdMapping& ids) {
  auto same = [](const std::vector<IdRange>& rs) {
    return std::all_of(rs.begin(), rs.end(),
                       [](const IdRange& r) { return r.container == r.host; });
  };
  return same(ids.uids) && same(ids.gids);
}

// Runs `fn` where the snapshots' files show their container owners and we hold every capability
// over them: in-process as real root under an identity mapping, else in a forked child that
// joins this process's user namespace for `ids` (see shared_namespaces). Its error or result
// string comes back. The child may allocate (glibc's fork leaves malloc usable).
Result<std::string> as_container_root(const IdMapping& ids,
                                      const std::function<Result<std::string>()>& fn) {
  if (geteuid() == 0 && !ids.needs_helpers && identity_mapping(ids)) return fn();
  OCIB_ASSIGN_OR_RETURN(const SharedNs* ns, shared_namespaces(ids));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd rd(fds[0]), wr(fds[1]);
  const pid_t parent = getpid();
  pid_t pid;
  {
    std::lock_guard lock(g_mu);
    if (g_cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
    pid = fork();
    if (pid < 0) return Error::from_errno("sandbox: fork", errno);
    if (pid == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (getppid() != parent) _exit(1);
      std::string out;
      if (setns(ns->user.get(), CLONE_NEWUSER) != 0) {
        out = std::string("Esandbox: join the user namespace: ") + strerror(errno);
      } else {
        auto r = fn();
        out = r.ok() ? "O" + *r : "E" + r.error().str();
      }
      write_all(wr.get(), out.data(), out.size());
      _exit(0);
    }
    setpgid(pid, pid);
    g_running.insert(pid);
  }
  wr.reset();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  siginfo_t si;
  while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(g_mu);
    g_running.erase(pid);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (out.empty()) {
    std::lock_guard lock(g_mu);
    if (g_cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
    return Error(Errc::kGeneric, "sandbox: helper in the user namespace died (status " +
                                     std::to_string(status) + ")");
  }
  if (out[0] == 'E') return Error(Errc::kIo, out.substr(1));
  return out.substr(1);
}

}  // namespace

namespace internal {

Result<pid_t> spawn_tracked(const std::function<int()>& child) {
  std::lock_guard lock(g_mu);
  if (g_cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error::from_errno("sandbox: fork", errno);
  if (pid == 0) {
    setpgid(0, 0);
    _exit(child());
  }
  setpgid(pid, pid);
  g_running.insert(pid);
  return pid;
}

int reap_tracked(pid_t pid, bool* cancelled) {
  siginfo_t si;
  while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(g_mu);
    g_running.erase(pid);
    *cancelled = g_cancelled;
  }
  kill(-pid, SIGKILL);  // whatever the step left running in its process group
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) *cancelled = false;
  return status;
}

}  // namespace internal

namespace {

std::vector<std::string> full_paths(const OverlayPlan& o) {
  std::vector<std::string> v;
  for (const auto& l : o.lowers) v.push_back(l.full);
  return v;
}

// The copy driver: every tree to copy before the step; views of several layers become a view of
// their merged copy.
Status plan_copies(Plan& p, const std::string& scratch) {
  // An upperdir that already holds something is the top layer of what the step sees (as with
  // overlay); the diff afterwards replaces its contents.
  std::vector<std::string> root_layers = full_paths(p.root);
  root_layers.insert(root_layers.begin(), p.root.upper->full);
  p.copies.push_back({root_layers, p.root.target});
  for (size_t i = 0; i < p.views.size(); ++i) {
    OverlayPlan& v = p.views[i];
    if (v.lowers.size() < 2) continue;
    std::string merged = fs::join(scratch, "view" + std::to_string(i) + "-copy");
    OCIB_TRY(fs::mkdirs(merged));
    p.copies.push_back({full_paths(v), merged});
    OCIB_ASSIGN_OR_RETURN(LayerPath lp, layer_path(merged, "view"));
    v.lowers = {lp};
  }
  for (const auto& m : p.mounts)
    if (m.type == Mount::Type::kOverlayRw)
      p.copies.push_back({full_paths(m.overlay), m.overlay.target});
  return ok_status();
}

Result<std::string> find_fuse_overlayfs() {
  // Also the usual places: sudo and service managers often strip PATH.
  std::string bin = fs::find_executable("fuse-overlayfs", "/usr/bin:/usr/local/bin");
  if (bin.empty()) return Error(Errc::kNotFound, "fuse-overlayfs is not installed (not on PATH)");
  return bin;
}

// The fuse driver: a fuse-overlayfs command line per overlay (its option syntax has no escapes).
Status plan_fuse(Plan& p) {
  OCIB_ASSIGN_OR_RETURN(p.fuse_bin, find_fuse_overlayfs());
  auto plan = [](OverlayPlan& o) -> Status {
    auto checked = [](const std::string& path) -> Result<std::string> {
      if (path.find_first_of(",:\\") != std::string::npos)
        return Error::invalid("sandbox: fuse-overlayfs cannot take a path with ',', ':' or '\\': " +
                              path);
      return path;
    };
    std::string opt = "lowerdir=";
    for (size_t i = 0; i < o.lowers.size(); ++i) {
      OCIB_ASSIGN_OR_RETURN(std::string l, checked(o.lowers[i].full));
      opt += (i ? ":" : "") + l;
    }
    if (o.upper) {
      OCIB_ASSIGN_OR_RETURN(std::string u, checked(o.upper->full));
      OCIB_ASSIGN_OR_RETURN(std::string w, checked(o.work->full));
      opt += ",upperdir=" + u + ",workdir=" + w;
    }
    o.fuse_args = {"fuse-overlayfs", "-f", "-o", opt, o.target};
    return ok_status();
  };
  OCIB_TRY(plan(p.root));
  for (auto& m : p.mounts)
    if (m.type == Mount::Type::kOverlayRw) OCIB_TRY(plan(m.overlay));
  for (auto& v : p.views)
    if (v.lowers.size() > 1) OCIB_TRY(plan(v));
  return ok_status();
}

std::string encode_copy_state(const snapshot::CopyState& st) {
  std::string out = std::to_string(st.since.tv_sec) + " " + std::to_string(st.since.tv_nsec) + "\n";
  for (const auto& s : st.skipped) out += s + '\0';
  return out;
}

snapshot::CopyState decode_copy_state(const std::string& in) {
  snapshot::CopyState st;
  size_t nl = in.find('\n');
  std::sscanf(in.substr(0, nl).c_str(), "%ld %ld", &st.since.tv_sec, &st.since.tv_nsec);
  for (size_t i = nl == std::string::npos ? in.size() : nl + 1; i < in.size();) {
    size_t end = in.find('\0', i);
    if (end == std::string::npos) end = in.size();
    st.skipped.push_back(in.substr(i, end - i));
    i = end + 1;
  }
  return st;
}

// Copy driver, before the step: the merged copies, as container root.
Status make_copies(Plan& p, const IdMapping& ids) {
  std::string clock = fs::join(fs::dirname(p.root.target), "clock");
  auto r = as_container_root(ids, [&]() -> Result<std::string> {
    std::string root_state;
    for (size_t i = 0; i < p.copies.size(); ++i) {
      auto st = snapshot::copy_merged(p.copies[i].lowers, p.copies[i].dest, clock);
      if (!st.ok()) return st.error().wrap("sandbox: copy the snapshots into " + p.copies[i].dest);
      if (i == 0) root_state = encode_copy_state(*st);
    }
    return root_state;
  });
  if (!r.ok()) return std::move(r).error();
  p.root_copy = decode_copy_state(*r);
  return ok_status();
}

}  // namespace

namespace internal {

// Empties `dir` (keeps the directory itself).
Status clear_dir(const std::string& dir) {
  std::vector<std::string> names;
  {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return Error::from_errno("sandbox: opendir " + dir, errno);
    while (struct dirent* de = readdir(d))
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
        names.push_back(de->d_name);
    closedir(d);
  }
  for (const auto& n : names) OCIB_TRY(fs::remove_all(fs::join(dir, n)));
  return ok_status();
}

}  // namespace internal

namespace {

using internal::clear_dir;

// After the step: the copy driver's diff into upperdir (then its copies go), or the fuse
// driver's upperdir in kernel overlay format.
Status finish_snapshot(const Plan& p, const IdMapping& ids) {
  const Spec& s = *p.spec;
  if (p.driver == Snapshotter::kOverlay) return ok_status();
  std::vector<std::string> lowers = full_paths(p.root);
  auto r = as_container_root(ids, [&]() -> Result<std::string> {
    if (p.driver == Snapshotter::kFuseOverlayfs) {
      Status st = snapshot::normalize_fuse_upper(lowers, s.upperdir);
      if (!st.ok()) return st.error().wrap("sandbox: normalise the fuse-overlayfs upperdir");
      return std::string();
    }
    OCIB_TRY(clear_dir(s.upperdir));
    Status st = snapshot::diff_to_upper(lowers, p.root.target, p.root_copy, s.upperdir);
    if (!st.ok()) return st.error().wrap("sandbox: diff the step's root into its upperdir");
    for (const auto& c : p.copies) OCIB_TRY(fs::remove_all(c.dest));
    return std::string();
  });
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

Result<Plan> make_plan(const Spec& s, const IdMapping& ids) {
  if (s.upperdir.empty() || s.scratch.empty())
    return Error::invalid("sandbox: upperdir and scratch are required");
  if (!s.in_sandbox && s.argv.empty()) return Error::invalid("sandbox: empty argv");
  if (s.cwd.empty() || s.cwd[0] != '/')
    return Error::invalid("sandbox: working directory must be absolute: \"" + s.cwd + "\"");
  OCIB_TRY(check_mapped(ids, s));

  Plan p;
  p.spec = &s;
  p.shm_opts = "mode=1777,size=" + (s.shm_size ? std::to_string(s.shm_size) : std::string("65536k"));
  OCIB_TRY(fs::mkdirs(s.scratch, 0700));
  OCIB_ASSIGN_OR_RETURN(std::string scratch, fs::real_path(s.scratch));
  if (s.network == Network::kDefault && network_stack_unavailable().empty()) {
    // The process's shared default network (start_shared_stack); unusable: the host's
    // network, as kHost (the caller says so).
    OCIB_ASSIGN_OR_RETURN(const SharedNs* shared, shared_namespaces(ids, true));
    p.shared_user_fd = shared->user.get();
    p.shared_net_fd = shared->net.get();
    p.net_stack_shared = true;
  }
  p.empty_dir = fs::join(scratch, "empty");
  OCIB_TRY(fs::mkdirs(p.empty_dir));
  p.root.target = fs::join(scratch, "root");
  OCIB_TRY(fs::mkdirs(p.root.target));
  OCIB_TRY(fs::mkdirs(fs::join(scratch, "work")));
  const std::vector<std::string> only_empty = {p.empty_dir};
  OCIB_TRY(resolve_layers(p.root, s.lowerdirs.empty() ? only_empty : s.lowerdirs, s.upperdir,
                          fs::join(scratch, "work")));
  p.root.legacy_data = overlay_legacy_data(p.root);
  for (size_t i = 0; i < s.views.size(); ++i) {
    OverlayPlan v;
    v.target = fs::join(scratch, "view" + std::to_string(i));
    OCIB_TRY(fs::mkdirs(v.target));
    const auto& layers = s.views[i].layers;
    OCIB_TRY(resolve_layers(v, layers.empty() ? only_empty : layers, {}, {}));
    v.legacy_data = overlay_legacy_data(v);
    p.views.push_back(std::move(v));
  }
  p.cwd_rel = fs::clean(s.cwd).substr(1);
  OCIB_TRY(plan_mounts(p, scratch));
  p.driver = s.snapshotter;
  if (p.driver == Snapshotter::kAuto) {
    OCIB_ASSIGN_OR_RETURN(SnapshotDriver d, snapshot_driver(ids));
    p.driver = d.driver;
  }
  if (p.driver == Snapshotter::kCopy) OCIB_TRY(plan_copies(p, scratch));
  if (p.driver == Snapshotter::kFuseOverlayfs) OCIB_TRY(plan_fuse(p));

  for (const auto& a : s.argv) p.argv.push_back(a.c_str());
  p.argv.push_back(nullptr);
  for (const auto& e : s.env) p.envp.push_back(e.c_str());
  p.envp.push_back(nullptr);
  if (!s.argv.empty()) {
    const std::string& a0 = s.argv[0];
    if (a0.find('/') != std::string::npos) {
      p.exec_candidates.push_back(a0);
    } else if (!a0.empty()) {
      std::string path = env_value(s.env, "PATH");
      if (path.empty()) path = kDefaultPath;
      size_t start = 0;
      while (start <= path.size()) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        std::string dir = path.substr(start, end - start);
        p.exec_candidates.push_back(fs::join(dir.empty() ? "." : dir, a0));
        start = end + 1;
      }
    }
    p.not_found_msg = "exec: \"" + a0 + "\": executable file not found in $PATH\n";
  }
  OCIB_ASSIGN_OR_RETURN(p.seccomp, internal::seccomp_program());
  p.allow_setgroups = ids.needs_helpers || geteuid() == 0;
  if (p.allow_setgroups)
    for (uint32_t g : s.groups) {
      if (!ids.container_to_host_gid(g))
        return Error::invalid("sandbox: supplementary group " + std::to_string(g) +
                              " is not mapped in the user namespace (" + ids.description + ")");
      p.groups.push_back(g);
    }
  for (const auto& m : s.mounts) {
    if (m.chown_uid >= 0 && !ids.container_to_host_uid(static_cast<uint32_t>(m.chown_uid)))
      return Error::invalid("sandbox: mount " + m.target + ": uid " + std::to_string(m.chown_uid) +
                            " is not mapped in the user namespace (" + ids.description + ")");
    if (m.chown_gid >= 0 && !ids.container_to_host_gid(static_cast<uint32_t>(m.chown_gid)))
      return Error::invalid("sandbox: mount " + m.target + ": gid " + std::to_string(m.chown_gid) +
                            " is not mapped in the user namespace (" + ids.description + ")");
  }
  OCIB_ASSIGN_OR_RETURN(ProcIsolation proc, proc_isolation());
  p.outer_proc = !proc.fresh;
  p.new_net = s.network == Network::kNone || p.net_stack_shared;
  if (s.network == Network::kNone && s.shared_netns) {
    OCIB_ASSIGN_OR_RETURN(const SharedNs* shared, shared_namespaces(ids));
    p.shared_user_fd = shared->user.get();
    p.shared_net_fd = shared->net.get();
  }
  p.parent = getpid();
  return p;
}

Result<Outcome> run_planned(Plan& p, const IdMapping& ids) {
  const Spec& s = *p.spec;
  if (p.driver == Snapshotter::kFuseOverlayfs) {
    auto argv = [](OverlayPlan& o) {
      o.fuse_argv.clear();
      for (const auto& a : o.fuse_args) o.fuse_argv.push_back(a.c_str());
      o.fuse_argv.push_back(nullptr);
    };
    argv(p.root);
    for (auto& m : p.mounts) argv(m.overlay);
    for (auto& v : p.views) argv(v);
  }
  if (p.driver == Snapshotter::kCopy) OCIB_TRY(make_copies(p, ids));
  std::vector<UniqueFd> host;
  for (const auto& d : s.host_dirs) {
    int fd = open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("sandbox: open " + d, errno);
    host.emplace_back(fd);
    p.host_fds.push_back(fd);
  }
  p.host_fds.insert(p.host_fds.end(), s.pass_fds.begin(), s.pass_fds.end());
  int p2c[2], c2p[2], errp[2];
  if (pipe2(p2c, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd p2c_r(p2c[0]), p2c_w(p2c[1]);
  if (pipe2(c2p, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd c2p_r(c2p[0]), c2p_w(c2p[1]);
  if (pipe2(errp, O_CLOEXEC) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  // Non-blocking: read only after the step, so a full pipe fails the setup, never hangs it.
  int stubp[2];
  if (pipe2(stubp, O_CLOEXEC | O_NONBLOCK) < 0) return Error::from_errno("sandbox: pipe", errno);
  UniqueFd stub_r(stubp[0]), stub_w(stubp[1]);
  fcntl(stub_w.get(), F_SETPIPE_SZ, 1 << 20);  // best effort; 64 KiB holds a few dozen paths
  p.stub_write = stub_w.get();
  p.p2c_read = p2c_r.get();
  p.c2p_write = c2p_w.get();
  p.err_write = err_w.get();
  p.keep_fds = p.host_fds;
  if (p.shared_user_fd >= 0) p.keep_fds.insert(p.keep_fds.end(), {p.shared_user_fd, p.shared_net_fd});
  p.keep_fds.insert(p.keep_fds.end(), {p.p2c_read, p.c2p_write, p.err_write, p.stub_write});
  if (s.output_fd >= 0) p.keep_fds.push_back(s.output_fd);
  std::sort(p.keep_fds.begin(), p.keep_fds.end());

  pid_t pid;
  {
    std::lock_guard lock(g_mu);
    if (g_cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
    pid = fork();
    if (pid < 0) return Error::from_errno("sandbox: fork", errno);
    if (pid == 0) run_outer(p);
    // The child makes itself a session (and group) leader; cancel_all() also signals the pid
    // itself in case that has not happened yet.
    g_running.insert(pid);
  }
  p2c_r.reset();
  c2p_w.reset();
  err_w.reset();
  stub_w.reset();

  auto reap = [&](int* status) {
    // Wait without reaping, so that cancel_all() never signals a recycled pid.
    siginfo_t si;
    while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    {
      std::lock_guard lock(g_mu);
      g_running.erase(pid);
    }
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
  };
  auto child_error = [&]() -> std::optional<Error> {
    fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
    ChildError e{};
    if (read(err_r.get(), &e, sizeof e) != sizeof e) return std::nullopt;
    std::string step = e.step >= 0 && e.step < kStepCount ? kStepNames[e.step] : "setup";
    if (e.index >= 0 && static_cast<size_t>(e.index) < p.mounts.size())
      step += " " + p.mounts[static_cast<size_t>(e.index)].display;
    if (e.step == kStepMountOverlay || e.step == kStepBindRoot) step += " on " + p.root.target;
    // overlayfs stacks at most 500 lower layers (OVL_MAX_STACK), and before Linux 6.8 takes
    // them in one page of mount options: name the limit and the fix rather than a bare EINVAL.
    if (e.step == kStepMountOverlay && e.err == EINVAL && p.spec->lowerdirs.size() >= 128)
      step += " (" + std::to_string(p.spec->lowerdirs.size()) +
              " snapshot layers: overlayfs stacks at most 500 lower layers; ocib flattens the bottom of a "
              "deeper chain into one merged lower unless OCIB_FLATTEN=0 or OCIB_FLATTEN_MAX is set above "
              "the limit, so unset those; else join RUN steps with &&)";
    else if (e.step == kStepMountOverlay && e.err == EINVAL && p.root.legacy_data.size() >= 4096)
      step += " (" + std::to_string(p.spec->lowerdirs.size()) + " snapshot layers make " +
              std::to_string(p.root.legacy_data.size()) +
              " bytes of overlay mount options, and before Linux 6.8 they must fit in a page (4096 "
              "bytes): use a shorter store path (OCIB_ROOT), or leave flattening on (OCIB_FLATTEN, "
              "OCIB_FLATTEN_MAX) so the chain stays short)";
    if (e.step == kStepMountProc && !p.outer_proc)
      step += " (a fresh /proc is refused here, as inside a container with masked /proc paths; "
              "OCIB_ISOLATION=auto or procfs-less binds the outer /proc instead)";
    e.msg[sizeof e.msg - 1] = '\0';
    // fuse-overlayfs' own words, without its warning about mount options it does not know.
    std::string said;
    for (std::string_view rest = e.msg; !rest.empty();) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.empty() || line.starts_with("unknown argument ignored")) continue;
      said += (said.empty() ? "" : "; ") + std::string(line);
    }
    if (!said.empty()) step += " (" + said + ")";
    return Error::from_errno("sandbox: " + step, e.err);
  };

  char c;
  ssize_t n;
  do n = read(c2p_r.get(), &c, 1);
  while (n < 0 && errno == EINTR);
  Status maps = n != 1 ? Status(Error(Errc::kGeneric, "sandbox: child exited during setup"))
                : p.shared_user_fd >= 0 ? ok_status()  // mapped once, when it was created
                                        : write_id_maps(pid, ids, !p.allow_setgroups);
  if (maps.ok()) {
    c = 'g';
    if (write(p2c_w.get(), &c, 1) != 1) maps = Error::from_errno("sandbox: sync", errno);
  }
  p2c_w.reset();
  int status = 0;
  if (!maps.ok()) kill(-pid, SIGKILL);
  reap(&status);
  bool cancelled = false;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
    std::lock_guard lock(g_mu);
    cancelled = g_cancelled;
  }
  std::optional<Error> setup_error = cancelled ? std::nullopt : child_error();
  Status finished = !cancelled && !setup_error && maps.ok() ? finish_snapshot(p, ids) : ok_status();
  p.stubs = collect_stubs(s, stub_r.get());
  remove_stubs(p);
  if (cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
  if (setup_error) return std::move(*setup_error);
  if (!maps.ok()) return std::move(maps).error();
  OCIB_TRY(finished);

  int init_status = 0;
  fcntl(c2p_r.get(), F_SETFL, O_NONBLOCK);
  bool have_init = read(c2p_r.get(), &init_status, sizeof init_status) == sizeof init_status;
  if (have_init) status = init_status;
  if (!have_init && !(WIFSIGNALED(status)))
    return Error(Errc::kGeneric, "sandbox: setup process exited with status " +
                                     std::to_string(WEXITSTATUS(status)));
  Outcome out;
  if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
    out.exit_code = 128 + out.signal;
  } else {
    out.exit_code = WEXITSTATUS(status);
  }
  return out;
}

}  // namespace

Result<Outcome> run(const Spec& spec, const IdMapping& ids) {
  {
    std::lock_guard lock(g_mu);
    if (g_cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
  }
  OCIB_ASSIGN_OR_RETURN(ProcIsolation iso, proc_isolation());
  if (!iso.namespaces) return internal::run_chroot(spec, ids);
  OCIB_ASSIGN_OR_RETURN(Plan plan, make_plan(spec, ids));
  return run_planned(plan, ids);
}

void cancel_all() {
  std::lock_guard lock(g_mu);
  g_cancelled = true;
  for (pid_t pg : g_running) {
    kill(-pg, SIGKILL);
    kill(pg, SIGKILL);
  }
}

Status remove_tree(const std::string& path, const IdMapping& ids) {
  struct stat st;
  if (lstat(path.c_str(), &st) < 0)
    return errno == ENOENT ? ok_status() : Error::from_errno("sandbox: stat " + path, errno);
  if (fs::remove_all(path).ok()) return ok_status();
  OCIB_ASSIGN_OR_RETURN(std::string abs, fs::real_path(path));
  std::string parent = fs::dirname(abs);
  OCIB_ASSIGN_OR_RETURN(std::string dir, fs::make_temp_dir(parent, ".ocib-rm-"));
  Spec s;
  s.upperdir = fs::join(dir, "upper");
  s.scratch = fs::join(dir, "scratch");
  OCIB_TRY(fs::mkdirs(s.upperdir));
  s.host_dirs = {parent};
  std::string name = fs::basename(abs);
  s.in_sandbox = [&name](const std::vector<int>& fds) {
    // The host directory is reachable through its fd's magic link in our fresh /proc.
    std::string target = "/proc/self/fd/" + std::to_string(fds[0]) + "/" + name;
    auto rm = [](const char* p, const struct stat*, int, FTW*) { return remove(p) < 0 ? 1 : 0; };
    return nftw(target.c_str(), rm, 64, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : 1;
  };
  auto r = run(s, ids);
  Status cleanup = fs::remove_all(dir);
  if (!r.ok()) return std::move(r).error();
  if (r->exit_code != 0) return Error(Errc::kIo, "sandbox: could not remove " + path);
  return cleanup;
}

namespace {

const char* driver_name(Snapshotter d) {
  switch (d) {
    case Snapshotter::kOverlay:
      return "overlay";
    case Snapshotter::kFuseOverlayfs:
      return "fuse-overlayfs";
    case Snapshotter::kCopy:
      return "copy";
    case Snapshotter::kAuto:
      break;
  }
  return "auto";
}

// One probe step with driver `d`, in a temp dir beneath `dir`: a lower file is deleted and a
// lower directory replaced (a whiteout and an opaque directory: what overlay needs user xattrs
// and whiteout device nodes for), and the upperdir must show both in kernel overlay format.
Status probe_driver(const IdMapping& ids, Snapshotter d, const std::string& dir) {
  std::string parent = dir;
  std::string prefix = std::to_string(getpid()) + "-probe-";
  if (parent.empty()) {
    const char* tmp = getenv("TMPDIR");
    parent = tmp && *tmp ? tmp : "/tmp";
    prefix = "ocib-probe-";
  }
  OCIB_ASSIGN_OR_RETURN(std::string top, fs::make_temp_dir(parent, prefix));
  // Everything in it is owned by the caller (container root): no need for remove_tree, which
  // would run a sandbox step with the driver being chosen.
  fs::TempDir cleanup(top);
  Spec s;
  s.snapshotter = d;
  s.lowerdirs = {fs::join(top, "lower")};
  s.upperdir = fs::join(top, "upper");
  s.scratch = fs::join(top, "scratch");
  for (const auto& sub : {"lower/d", "upper", "scratch"}) OCIB_TRY(fs::mkdirs(fs::join(top, sub)));
  OCIB_TRY(fs::write_file_atomic(fs::join(top, "lower/d/f"), "f"));
  OCIB_TRY(fs::write_file_atomic(fs::join(top, "lower/x"), "x"));
  s.in_sandbox = [](const std::vector<int>&) {
    // fs::in_step_root: "/" after pivot_root, the root's copy under the chroot isolation.
    if (unlink(fs::in_step_root("x").c_str()) < 0) return 10;
    if (unlink(fs::in_step_root("d/f").c_str()) < 0 || rmdir(fs::in_step_root("d").c_str()) < 0) return 11;
    if (mkdir(fs::in_step_root("d").c_str(), 0755) < 0) return 12;
    int fd = open(fs::in_step_root("d/g").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return 13;
    close(fd);
    return 0;
  };
  OCIB_ASSIGN_OR_RETURN(Outcome out, run(s, ids));
  if (out.exit_code != 0)
    return Error(Errc::kUnsupported, "the probe step failed with status " +
                                         std::to_string(out.exit_code) +
                                         " (10: delete a lower file, 11: a lower directory, "
                                         "12: mkdir over it, 13: create a file in it)");
  struct stat st;
  std::string x = fs::join(s.upperdir, "x"), dd = fs::join(s.upperdir, "d");
  if (lstat(x.c_str(), &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0))
    return Error(Errc::kUnsupported, "the probe's deleted file left no whiteout in the upperdir");
  if (!is_opaque(dd) || !fs::exists(fs::join(dd, "g")) || fs::exists(fs::join(dd, "f")))
    return Error(Errc::kUnsupported,
                 "the probe's replaced directory is not opaque in the upperdir");
  return ok_status();
}

// Can this process create a user namespace? 0 or the errno of unshare(CLONE_NEWUSER).
int userns_errno() {
  fflush(nullptr);
  pid_t child = fork();
  if (child < 0) return 0;  // leave the verdict to the probes
  if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0x7f));
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

Result<SnapshotDriver> choose_driver(const IdMapping& ids, const ProbeOptions& opts) {
  SnapshotDriver out;
  if (auto iso = proc_isolation(); iso.ok() && !iso->namespaces) {
    // No mount namespace: each step's root is a copy (the copy driver's merge and diff).
    const char* forced = getenv("OCIB_SNAPSHOTTER");
    if (forced && *forced && strcmp(forced, "auto") != 0 && strcmp(forced, "copy") != 0)
      return Error(Errc::kUnsupported, std::string("OCIB_SNAPSHOTTER=") + forced +
                                           " cannot be used in the chroot isolation, which copies each step's root");
    out.driver = Snapshotter::kCopy;
    out.name = driver_name(out.driver);
    out.reason = "the chroot isolation copies each step's root (no mount namespace here)";
    Status works = probe_driver(ids, Snapshotter::kCopy, opts.dir);
    if (!works.ok()) return std::move(works).error().wrap("the chroot isolation does not work here");
    return out;
  }
  if (const char* forced = getenv("OCIB_SNAPSHOTTER");
      forced && *forced && strcmp(forced, "auto") != 0) {
    std::string f = forced;
    if (f == "overlay" || f == "overlayfs")
      out.driver = Snapshotter::kOverlay;
    else if (f == "fuse-overlayfs")
      out.driver = Snapshotter::kFuseOverlayfs;
    else if (f == "copy")
      out.driver = Snapshotter::kCopy;
    else
      return Error::invalid("OCIB_SNAPSHOTTER=" + f +
                            ": expected overlay, fuse-overlayfs, copy or auto");
    if (out.driver == Snapshotter::kFuseOverlayfs)
      if (std::string why = fuse_overlayfs_unavailable(); !why.empty())
        return Error(Errc::kUnsupported, "OCIB_SNAPSHOTTER=fuse-overlayfs: " + why);
    out.name = driver_name(out.driver);
    out.reason = "set by OCIB_SNAPSHOTTER";
    Status works = probe_driver(ids, out.driver, opts.dir);
    if (!works.ok()) {
      Error e = std::move(works).error();
      return e.wrap("OCIB_SNAPSHOTTER=" + f + " does not work here");
    }
    return out;
  }
  if (geteuid() != 0) {
    auto v = fs::read_file("/proc/sys/kernel/unprivileged_userns_clone");
    if (v.ok() && !v->empty() && (*v)[0] == '0')
      return Error(Errc::kUnsupported,
                   "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone=0");
  }
  auto m = fs::read_file("/proc/sys/user/max_user_namespaces");
  if (m.ok() && !m->empty() && (*m)[0] == '0')
    return Error(Errc::kUnsupported, "user namespaces are disabled: user.max_user_namespaces=0");
  // The kernel allows user namespaces, but this process may not create one: inside a container
  // that is its seccomp profile (Docker's and containerd's default refuse unshare/clone with
  // namespace flags without CAP_SYS_ADMIN), or an LSM (Ubuntu's AppArmor userns restriction).
  // Say so, with what to change, instead of blaming every snapshot driver in turn.
  if (userns_errno() == EPERM)
    return Error(Errc::kUnsupported,
                 "creating a user namespace is refused here (unshare: Operation not permitted) although the "
                 "kernel allows them: a seccomp profile (Docker's and containerd's default refuse unshare and "
                 "clone with namespace flags) or an LSM (AppArmor's unprivileged userns restriction) forbids it. "
                 "Run the container with --security-opt seccomp=unconfined (Kubernetes: "
                 "securityContext.seccompProfile.type: Unconfined), or allow userns in the AppArmor profile; "
                 "ocib needs no extra capability and no --privileged. Or install proot: ocib then builds in "
                 "the chroot isolation (no namespaces at all, the container as the only boundary).");

  out.driver = Snapshotter::kOverlay;
  out.name = driver_name(out.driver);
  if (!opts.cache_file.empty()) {
    auto cached = fs::read_file(opts.cache_file);
    // "ok": written by versions that only knew kernel overlay.
    if (cached.ok() && (*cached == "overlay\n" || *cached == "ok\n")) {
      out.reason = "kernel overlayfs works in a user namespace here (probed before)";
      return out;
    }
  }
  Status overlay = probe_driver(ids, Snapshotter::kOverlay, opts.dir);
  if (overlay.ok()) {
    out.reason = "kernel overlayfs works in a user namespace here";
    if (!opts.cache_file.empty()) (void)fs::write_file_atomic(opts.cache_file, "overlay\n");
    return out;
  }
  std::string why =
      "kernel overlayfs does not work in a user namespace here: " + overlay.error().str();
  out.fallback = true;
  std::string fuse_why = fuse_overlayfs_unavailable();
  if (fuse_why.empty()) {
    Status fuse = probe_driver(ids, Snapshotter::kFuseOverlayfs, opts.dir);
    if (fuse.ok()) {
      out.driver = Snapshotter::kFuseOverlayfs;
      out.name = driver_name(out.driver);
      out.reason = why;
      return out;
    }
    fuse_why = "its probe failed: " + fuse.error().str();
  }
  Status copy = probe_driver(ids, Snapshotter::kCopy, opts.dir);
  if (!copy.ok()) {
    Error e = std::move(copy).error();
    return e.wrap("no snapshot driver works here (" + why + "; fuse-overlayfs: " + fuse_why +
                  "); copy");
  }
  out.driver = Snapshotter::kCopy;
  out.name = driver_name(out.driver);
  out.reason = why + "; fuse-overlayfs: " + fuse_why;
  return out;
}

std::mutex g_driver_mu;
std::optional<Result<SnapshotDriver>> g_driver;

}  // namespace

std::string network_stack_path() {
  // PATH only (not also the usual directories, as for fuse-overlayfs): hiding it from PATH is
  // how a caller opts out.
  return fs::find_executable("slirp4netns");
}

IdMapping id_mapping() {
  auto iso = proc_isolation();
  if (iso.ok() && !iso->namespaces && geteuid() != 0) {
    IdMapping m = IdMapping::single(getuid(), getgid());
    m.description = "the caller's own ids only (chroot isolation: no user namespace)";
    return m;
  }
  return IdMapping::detect();
}

void prepare_default_network(const IdMapping& ids) {
  if (!network_stack_unavailable().empty()) return;
  // An error here is met again, and reported, by the step that needs the network.
  (void)shared_namespaces(ids, true);
}

std::string network_stack_unavailable() {
  if (auto iso = proc_isolation(); iso.ok() && !iso->namespaces)
    return "the chroot isolation has no network namespaces";
  if (network_stack_path().empty())
    return "slirp4netns is not installed (not on PATH; install the slirp4netns package)";
  // slirp4netns opens it in the step's namespaces with our host uid: the same permission check.
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return std::string("slirp4netns cannot be used: cannot open /dev/net/tun read-write (") +
           strerror(errno) + ")";
  close(fd);
  return {};
}

std::string fuse_overlayfs_unavailable() {
  auto bin = find_fuse_overlayfs();
  if (!bin.ok()) return bin.error().message();
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open /dev/fuse: ") + strerror(errno);
  close(fd);
  return {};
}

namespace {

// Can a fresh procfs be mounted here, in a user + mount + pid namespace of our own (as a step
// would)? A child maps only our own id, so this needs no helpers. Returns 0 or the errno.
int probe_fresh_proc() {
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) < 0) _exit(100);  // no user namespaces: the driver probe says so
    auto put = [](const char* file, const char* data) {
      int fd = open(file, O_WRONLY | O_CLOEXEC);
      if (fd < 0) return false;
      bool ok = write(fd, data, strlen(data)) == static_cast<ssize_t>(strlen(data));
      close(fd);
      return ok;
    };
    char map[64];
    put("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1\n", static_cast<unsigned>(uid));
    if (!put("/proc/self/uid_map", map)) _exit(100);
    snprintf(map, sizeof map, "0 %u 1\n", static_cast<unsigned>(gid));
    if (!put("/proc/self/gid_map", map)) _exit(100);
    if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) _exit(100);
    pid_t init = fork();
    if (init < 0) _exit(100);
    if (init == 0) {
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) _exit(100);
      if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
        _exit(errno & 0x7f);
      _exit(0);
    }
    int st = 0;
    while (waitpid(init, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
  return code == 100 ? 0 : code;  // other setup failures: leave the verdict to the driver probe
}

std::mutex g_proc_mu;
std::optional<Result<ProcIsolation>> g_proc;

std::string chroot_loss(bool root) {
  return std::string("each RUN runs under proot in a copy of its root, as ") +
         (root ? "this container's root (ids in layers are real)"
               : "this process's own user (only its own id exists: every file in a layer is owned by root)") +
         ", with no pid, network, ipc or uts namespace of its own (it sees and can signal this container's "
         "processes and shares its network: --network=none is not honoured) and no seccomp filter beyond the "
         "container's: the container is the only boundary, as with kaniko";
}

Result<ProcIsolation> choose_proc_isolation() {
  ProcIsolation out;
  const char* forced = getenv("OCIB_ISOLATION");
  std::string f = forced ? forced : "";
  if (f == "chroot") {
    if (internal::proot_path().empty())
      return Error(Errc::kUnsupported, "OCIB_ISOLATION=chroot: proot is not on PATH (install the proot package)");
    out.fresh = false;
    out.namespaces = false;
    out.name = "chroot";
    out.reason = std::string("set by OCIB_ISOLATION: ") + chroot_loss(geteuid() == 0);
    return out;
  }
  if (f == "full") {
    out.name = "full";
    out.reason = "set by OCIB_ISOLATION";
    return out;
  }
  if (f == "procfs-less") {
    out.fresh = false;
    out.name = "procfs-less";
    out.reason = "set by OCIB_ISOLATION: steps see the outer /proc (its processes)";
    return out;
  }
  if (!f.empty() && f != "auto")
    return Error::invalid("OCIB_ISOLATION=" + f + ": want auto, full, procfs-less or chroot");
  if (int uerr = userns_errno(); uerr != 0 && !internal::proot_path().empty()) {
    out.fresh = false;
    out.namespaces = false;
    out.fallback = true;
    out.name = "chroot";
    out.reason = (uerr == EPERM ? std::string("creating a user namespace is refused here (unshare: Operation not permitted: "
                                              "a seccomp profile such as Docker's and containerd's default, which refuse "
                                              "unshare and clone with namespace flags without CAP_SYS_ADMIN, or an LSM)")
                                : std::string("user namespaces are not available here (unshare: ") + strerrordesc_np(uerr) + ")") +
                 ", so " + chroot_loss(geteuid() == 0) +
                 ". For full isolation run the container with --security-opt seccomp=unconfined (Kubernetes: "
                 "securityContext.seccompProfile.type: Unconfined; on Ubuntu hosts allow user namespaces in AppArmor); "
                 "OCIB_ISOLATION=full refuses to step down";
    return out;
  }
  fflush(nullptr);  // the probe forks
  int err = probe_fresh_proc();
  if (err == 0) {
    out.name = "full";
    out.reason = "a fresh /proc mounts in the step's namespaces";
    return out;
  }
  out.fresh = false;
  out.fallback = true;
  out.name = "procfs-less";
  out.reason = std::string("a fresh /proc cannot be mounted here (") + strerrordesc_np(err) +
               "; the outer /proc has masked or read-only paths, as in a container), so steps see "
               "the outer /proc and its processes; for full isolation give the container an "
               "unmasked /proc (docker run --security-opt systempaths=unconfined, Kubernetes "
               "securityContext.procMount: Unmasked) or set OCIB_ISOLATION=full to refuse";
  return out;
}

}  // namespace

Result<ProcIsolation> proc_isolation() {
  std::lock_guard lock(g_proc_mu);
  if (!g_proc) g_proc.emplace(choose_proc_isolation());
  return *g_proc;
}

Result<SnapshotDriver> snapshot_driver(const IdMapping& ids, const ProbeOptions& opts) {
  std::lock_guard lock(g_driver_mu);
  if (!g_driver) g_driver.emplace(choose_driver(ids, opts));
  return *g_driver;
}

std::string snapshot_driver_name(const IdMapping& ids) {
  auto d = snapshot_driver(ids);
  return d.ok() ? d->name : "unavailable";
}

Status check_support(const IdMapping& ids) {
  auto d = snapshot_driver(ids);
  if (!d.ok()) return std::move(d).error();
  return ok_status();
}

}  // namespace ocib::sandbox
