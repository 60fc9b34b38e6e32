// The chroot isolation: steps where this process may create no namespace at all (inside a
// container under Docker's default seccomp profile, which refuses unshare and clone with
// namespace flags without CAP_SYS_ADMIN). Kaniko's model, with the root kept apart: each step's
// root is a copy of its snapshots (snapshot::copy_merged), a RUN runs under proot (ptrace path
// translation: the only way an unprivileged process can give a program another root without a
// user namespace, and root's chroot(2) would leave the step without /proc), and afterwards the
// copy is diffed into the upperdir exactly as the copy driver does, so layers and digests are
// the same as under any other rung. ocib's own file work (COPY, WORKDIR, unpacking) runs in a
// plain child with fs::step_root() pointing at the copy: it resolves every path inside it.
//
// What is lost, and said once when the rung is chosen: no pid, network, ipc or uts namespace
// (the step sees the container's processes and shares its network: RUN --network=none is not
// honoured), no seccomp filter of ours (the container's applies), /dev, /proc and /sys are the
// container's, and as non-root only the caller's own id exists.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>

#include "base/fd.h"
#include "base/fs.h"
#include "sandbox/internal.h"
#include "sandbox/snapshotter.h"

namespace ocib::sandbox::internal {

namespace {

using fs::kDefaultPath;

int openat2_in_root(int root, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
}

// The host path `sub` names inside `dir`, resolved as if `dir` were "/" (symlinks in it cannot
// leave it).
Result<std::string> resolve_inside(const std::string& dir, const std::string& sub) {
  if (sub.empty() || fs::clean("/" + sub) == "/") return dir;
  UniqueFd d(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return Error::from_errno("sandbox: open " + dir, errno);
  int fd = openat2_in_root(d.get(), fs::clean("/" + sub).substr(1), O_PATH);
  if (fd < 0) return Error::from_errno("sandbox: " + sub + " in " + dir, errno);
  UniqueFd f(fd);
  return fs::real_path("/proc/self/fd/" + std::to_string(fd));
}

// mkdir -p of `abs` inside the root (symlinks on the way resolve inside it); what is created is
// owned by uid:gid (host ids).
Status mkdir_in_root(const std::string& root, const std::string& abs, uid_t uid, gid_t gid) {
  UniqueFd r(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!r.valid()) return Error::from_errno("sandbox: open " + root, errno);
  std::vector<std::string> parts;
  const std::string rel = fs::clean("/" + abs).substr(1);
  for (size_t b = 0; b < rel.size();) {
    size_t e = rel.find('/', b);
    if (e == std::string::npos) e = rel.size();
    parts.push_back(rel.substr(b, e - b));
    b = e + 1;
  }
  std::string cur;
  for (const auto& part : parts) {
    std::string next = cur.empty() ? part : cur + "/" + part;
    int fd = openat2_in_root(r.get(), next, O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      close(fd);
      cur = next;
      continue;
    }
    if (errno != ENOENT) return Error::from_errno("sandbox: working directory /" + next, errno);
    int pfd = cur.empty() ? dup(r.get()) : openat2_in_root(r.get(), cur, O_PATH | O_DIRECTORY);
    if (pfd < 0) return Error::from_errno("sandbox: working directory /" + cur, errno);
    UniqueFd p(pfd);
    if (mkdirat(pfd, part.c_str(), 0755) != 0 && errno != EEXIST)
      return Error::from_errno("sandbox: mkdir /" + next, errno);
    if (fchownat(pfd, part.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 && geteuid() == 0)
      return Error::from_errno("sandbox: chown /" + next, errno);
    cur = next;
  }
  return ok_status();
}

Status copy_file(const std::string& from, const std::string& to) {
  OCIB_ASSIGN_OR_RETURN(std::string data, fs::read_file(from));
  struct stat st;
  if (stat(from.c_str(), &st) != 0) return Error::from_errno("sandbox: stat " + from, errno);
  OCIB_TRY(fs::write_file_atomic(to, data, st.st_mode & 07777));
  return ok_status();
}

// A read-only view for the step (a bind source it must not write through): a copy in scratch.
Status copy_view(const std::string& src, const std::string& dest, const std::string& clock) {
  struct stat st;
  if (stat(src.c_str(), &st) != 0) return Error::from_errno("sandbox: stat " + src, errno);
  if (!S_ISDIR(st.st_mode)) {
    if (S_ISREG(st.st_mode)) return copy_file(src, dest);
    // A socket (an ssh agent) or a device: the step needs the real thing.
    return Error(Errc::kUnsupported, "sandbox: " + src + " cannot be bound in the chroot isolation");
  }
  OCIB_TRY(fs::mkdirs(dest, 0755));
  auto c = snapshot::copy_merged({src}, dest, clock);
  if (!c.ok()) return std::move(c).error().wrap("sandbox: copy " + src);
  return ok_status();
}

// proot runs each program through a small loader embedded in its binary, which it writes to a
// temporary file readable by proot's user only: a step process that drops to another user
// (apt's _apt, su, USER-less daemons) then cannot exec anything. The loader is taken out of the
// binary once (the first ELF image after proot's own whose class and machine are this
// process's, sized by its section headers) and each step gets a world-executable copy
// (PROOT_LOADER). "" when none is found: proot's own then.
std::string embedded_loader(const std::string& proot) {
  static std::mutex mu;
  static std::map<std::string, std::string> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(proot); it != cache.end()) return it->second;
  std::string loader;
  auto bin = fs::read_file(proot);
  if (bin.ok()) {
    const std::string& b = *bin;
    const unsigned char want_class = sizeof(void*) == 8 ? 2 : 1;
#if defined(__x86_64__)
    const uint16_t want_machine = 62;
#elif defined(__aarch64__)
    const uint16_t want_machine = 183;
#else
    const uint16_t want_machine = 0;
#endif
    for (size_t o = b.find("\x7f" "ELF", 1); o != std::string::npos && want_machine; o = b.find("\x7f" "ELF", o + 4)) {
      if (o + 0x40 > b.size() || static_cast<unsigned char>(b[o + 4]) != want_class || want_class != 2) continue;
      uint16_t machine, shentsize, shnum;
      uint64_t shoff;
      std::memcpy(&machine, b.data() + o + 0x12, 2);
      std::memcpy(&shoff, b.data() + o + 0x28, 8);
      std::memcpy(&shentsize, b.data() + o + 0x3A, 2);
      std::memcpy(&shnum, b.data() + o + 0x3C, 2);
      uint64_t end = shoff + static_cast<uint64_t>(shentsize) * shnum;
      if (machine != want_machine || end < 0x40 || o + end > b.size()) continue;
      loader = b.substr(o, end);
      break;
    }
  }
  cache[proot] = loader;
  return loader;
}

// Can every user search each directory from / down to `path`?
bool traversable_by_all(const std::string& path) {
  auto real = fs::real_path(path);
  if (!real.ok()) return false;
  std::string cur = *real;
  for (;;) {
    struct stat st;
    if (::stat(cur.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (cur == "/") return true;
    cur = fs::dirname(cur);
    if (cur.empty()) cur = "/";
  }
}

uid_t host_uid(const IdMapping& ids, int64_t c) {
  if (c < 0) c = 0;
  return ids.container_to_host_uid(static_cast<uint32_t>(c)).value_or(geteuid());
}
gid_t host_gid(const IdMapping& ids, int64_t c) {
  if (c < 0) c = 0;
  return ids.container_to_host_gid(static_cast<uint32_t>(c)).value_or(getegid());
}

// What a step run under `proot -i UID:GID` created (an entry of the upperdir that no lower has)
// belongs to that user, as if the step had run with its ids; what existed below keeps its owner.
Status chown_new_entries(const std::string& upper, const std::vector<std::string>& lowers, uid_t uid, gid_t gid) {
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    std::string dir = rel.empty() ? upper : fs::join(upper, rel);
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return Error::from_errno("sandbox: opendir " + dir, errno);
    std::vector<std::string> names;
    while (struct dirent* de = readdir(d))
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names.push_back(de->d_name);
    closedir(d);
    for (const auto& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      std::string path = fs::join(upper, r);
      struct stat st;
      if (lstat(path.c_str(), &st) != 0) continue;
      if (S_ISCHR(st.st_mode) && st.st_rdev == 0) continue;  // a whiteout
      bool below = false;
      for (const auto& l : lowers) {
        struct stat ls;
        if (lstat(fs::join(l, r).c_str(), &ls) != 0) continue;
        below = !(S_ISCHR(ls.st_mode) && ls.st_rdev == 0);
        break;
      }
      if (!below && lchown(path.c_str(), uid, gid) != 0) return Error::from_errno("sandbox: chown " + path, errno);
      if (S_ISDIR(st.st_mode)) stack.push_back(r);
    }
  }
  return ok_status();
}

}  // namespace

std::string proot_path() { return fs::find_executable("proot"); }

Result<Outcome> run_chroot(const Spec& s, const IdMapping& ids) {
  if (s.upperdir.empty() || s.scratch.empty()) return Error::invalid("sandbox: upperdir and scratch are required");
  if (!s.in_sandbox && s.argv.empty()) return Error::invalid("sandbox: empty argv");
  if (s.cwd.empty() || s.cwd[0] != '/') return Error::invalid("sandbox: working directory must be absolute: " + s.cwd);
  std::string proot;
  if (!s.in_sandbox) {
    proot = proot_path();
    if (proot.empty())
      return Error(Errc::kUnsupported, "sandbox: the chroot isolation runs RUN steps under proot, which is not on PATH (install the proot package)");
  }
  OCIB_TRY(fs::mkdirs(s.scratch, 0755));
  // Everything of this run in a directory of its own (a caller may run several steps in one
  // scratch directory), removed afterwards. A RUN's processes reach their root by its host
  // path (proot translates paths, it does not change the kernel's root), so a process that
  // drops to another user (apt's _apt) must be able to traverse it: where the store's path is
  // not (a 0700 store, /root), the root is made under $TMPDIR or /tmp (and the diff copies
  // instead of linking into the upperdir).
  std::string base = s.scratch;
  if (!s.in_sandbox && !traversable_by_all(s.scratch)) {
    const char* tmp = getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  OCIB_ASSIGN_OR_RETURN(const std::string work, fs::make_temp_dir(base, base == s.scratch ? "chroot-" : "ocib-chroot-"));
  if (base != s.scratch) ::chmod(work.c_str(), 0711);
  fs::TempDir work_guard(work);
  const std::string root = fs::join(work, "root");
  const std::string clock = fs::join(work, "clock");
  OCIB_TRY(fs::mkdirs(root, 0755));
  // An upperdir that already holds something is the top layer of what the step sees (as with
  // overlay and the copy driver); the diff afterwards replaces its contents.
  std::vector<std::string> root_layers = s.lowerdirs;
  root_layers.insert(root_layers.begin(), s.upperdir);
  auto copied = snapshot::copy_merged(root_layers, root, clock);
  if (!copied.ok()) return std::move(copied).error().wrap("sandbox: copy the snapshots into " + root);

  std::vector<UniqueFd> held;
  std::vector<int> fds;
  for (size_t i = 0; i < s.views.size(); ++i) {
    std::string dir = fs::join(work, "view-" + std::to_string(i));
    OCIB_TRY(fs::mkdirs(dir, 0755));
    auto v = snapshot::copy_merged(s.views[i].layers, dir, clock);
    if (!v.ok()) return std::move(v).error().wrap("sandbox: copy a read-only view into " + dir);
    int fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("sandbox: open " + dir, errno);
    held.emplace_back(fd);
    fds.push_back(fd);
  }
  for (const auto& d : s.host_dirs) {
    int fd = open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno("sandbox: open " + d, errno);
    held.emplace_back(fd);
    fds.push_back(fd);
  }
  fds.insert(fds.end(), s.pass_fds.begin(), s.pass_fds.end());

  const uid_t uid = host_uid(ids, s.uid);
  const gid_t gid = host_gid(ids, s.gid);
  const bool real_root = geteuid() == 0;

  // proot's -b binds for a RUN; for ocib's own work, directories moved into the root and back.
  std::vector<std::pair<std::string, std::string>> binds;
  std::vector<std::pair<std::string, std::string>> moved;  // (host, path in root)
  auto move_back = [&moved] {
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) (void)!rename(it->second.c_str(), it->first.c_str());
    moved.clear();
  };
  struct MoveBack {
    std::function<void()> f;
    ~MoveBack() { f(); }
  } move_guard{move_back};

  if (!s.in_sandbox && s.etc_files) {
    OCIB_ASSIGN_OR_RETURN(std::vector<Mount> etc, etc_mounts(s, work, false));
    for (const auto& m : etc) binds.emplace_back(m.source, m.target);
  }
  for (size_t i = 0; i < s.mounts.size(); ++i) {
    const Mount& m = s.mounts[i];
    const std::string mine = fs::join(work, "mnt-" + std::to_string(i));
    std::string src;
    switch (m.type) {
      case Mount::Type::kBind: {
        if (m.chown_uid >= 0 || m.chown_gid >= 0)
          if (chown(m.source.c_str(), host_uid(ids, m.chown_uid), host_gid(ids, m.chown_gid)) != 0 && real_root)
            return Error::from_errno("sandbox: chown " + m.source, errno);
        OCIB_ASSIGN_OR_RETURN(src, resolve_inside(m.source, m.subpath));
        if (m.readonly) {
          OCIB_TRY(copy_view(src, mine, clock));
          src = mine;
        }
        break;
      }
      case Mount::Type::kTmpfs:
        OCIB_TRY(fs::mkdirs(mine, 0755));
        if (chmod(mine.c_str(), m.mode & 07777) != 0) return Error::from_errno("sandbox: chmod " + mine, errno);
        src = mine;
        break;
      case Mount::Type::kOverlayRw: {
        OCIB_TRY(fs::mkdirs(mine, 0755));
        auto c = snapshot::copy_merged(m.lowerdirs, mine, clock);
        if (!c.ok()) return std::move(c).error().wrap("sandbox: copy " + m.target);
        OCIB_ASSIGN_OR_RETURN(src, resolve_inside(mine, m.subpath));
        break;
      }
      case Mount::Type::kData: {
        // No tmpfs can be mounted here: the secret is a 0400-style file in the step's scratch
        // directory (removed with it), never in the root that becomes the layer.
        UniqueFd f(open(mine.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!f.valid()) return Error::from_errno("sandbox: create " + mine, errno);
        if (write(f.get(), m.data.data(), m.data.size()) != static_cast<ssize_t>(m.data.size()))
          return Error::from_errno("sandbox: write " + mine, errno);
        if (fchown(f.get(), host_uid(ids, m.chown_uid), host_gid(ids, m.chown_gid)) != 0 && real_root)
          return Error::from_errno("sandbox: chown " + mine, errno);
        if (fchmod(f.get(), m.mode & 07777) != 0) return Error::from_errno("sandbox: chmod " + mine, errno);
        src = mine;
        break;
      }
    }
    if (!s.in_sandbox) {
      binds.emplace_back(src, m.target);
      continue;
    }
    // ocib's own work (seeding a cache): the directory itself, moved in and back out.
    if (m.type != Mount::Type::kBind || !fs::is_dir(src))
      return Error(Errc::kUnsupported, "sandbox: mount " + m.target + " is not supported for ocib's own steps in the chroot isolation");
    OCIB_TRY(mkdir_in_root(root, fs::dirname(m.target), geteuid(), getegid()));
    UniqueFd rfd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    int pfd = openat2_in_root(rfd.get(), fs::clean(fs::dirname(m.target)).substr(1).empty() ? "." : fs::clean(fs::dirname(m.target)).substr(1), O_PATH | O_DIRECTORY);
    if (pfd < 0) return Error::from_errno("sandbox: mount target " + m.target, errno);
    UniqueFd p(pfd);
    OCIB_ASSIGN_OR_RETURN(std::string parent, fs::real_path("/proc/self/fd/" + std::to_string(pfd)));
    std::string at = fs::join(parent, fs::basename(m.target));
    (void)!rmdir(at.c_str());
    if (rename(src.c_str(), at.c_str()) != 0) return Error::from_errno("sandbox: move " + src + " to " + m.target, errno);
    moved.emplace_back(src, at);
  }

  std::vector<std::string> args;
  std::vector<std::string> env = s.env;
  std::string proot_tmp;
  if (!s.in_sandbox) {
    OCIB_TRY(mkdir_in_root(root, s.cwd, uid, gid));
    proot_tmp = fs::join(work, "proot-tmp");
    OCIB_TRY(fs::mkdirs(proot_tmp, 0700));
    args = {proot, "-r", root, "-w", s.cwd, "-b", "/dev", "-b", "/proc", "-b", "/sys"};
    for (const auto& [host, guest] : binds) {
      args.push_back("-b");
      args.push_back(host + ":" + guest);
    }
    // The step's processes keep this process's ids and proot shows them the step's (-i; -0 for
    // root) and emulates their set*id calls: after a real switch (apt dropping to _apt, su)
    // proot could no longer read the process's memory, which for another user needs
    // CAP_SYS_PTRACE, and containers do not give it. What a USER step creates is given its
    // ids afterwards (chown_new_entries; as non-root only our own id exists).
    if (s.uid != 0 || s.gid != 0) {
      args.push_back("-i");
      args.push_back(std::to_string(s.uid) + ":" + std::to_string(s.gid));
    } else {
      args.push_back("-0");
    }
    args.insert(args.end(), s.argv.begin(), s.argv.end());
    env.push_back("PROOT_TMP_DIR=" + proot_tmp);
    if (std::string loader = embedded_loader(proot); !loader.empty()) {
      const std::string path = fs::join(work, "proot-loader");
      OCIB_TRY(fs::write_file_atomic(path, loader, 0755));
      env.push_back("PROOT_LOADER=" + path);
    }
    if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }))
      env.push_back(std::string("PATH=") + kDefaultPath);
  }
  std::vector<const char*> argv, envp;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  // (Supplementary groups cannot be shown by proot: a step has only its primary group here.)

  const pid_t parent = getpid();
  const int out_fd = s.output_fd;
  OCIB_ASSIGN_OR_RETURN(pid_t pid, spawn_tracked([&]() -> int {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent) return 1;
    setsid();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, 0);
    int out = out_fd >= 0 ? out_fd : 2;
    dup2(out, 1);
    dup2(out, 2);
    for (const auto& u : s.ulimits) {
      struct rlimit rl;
      rl.rlim_cur = u.soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(u.soft);
      rl.rlim_max = u.hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(u.hard);
      if (setrlimit(u.resource, &rl) != 0) {
        dprintf(2, "sandbox: setrlimit %d: %s\n", u.resource, strerror(errno));
        return 126;
      }
    }
    if (s.in_sandbox) {
      fs::set_step_root(root);
      fs::set_step_owner_fixed(!real_root);
      return s.in_sandbox(fds);
    }
    if (real_root && !s.insecure) (void)drop_bounding_set();
    if (!s.insecure) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execve(argv[0], const_cast<char* const*>(argv.data()), const_cast<char* const*>(envp.data()));
    dprintf(2, "sandbox: exec %s: %s\n", argv[0], strerror(errno));
    return 127;
  }));
  bool cancelled = false;
  int status = reap_tracked(pid, &cancelled);
  move_back();
  if (cancelled) return Error(Errc::kCancelled, "sandbox: cancelled");
  OCIB_TRY(clear_dir(s.upperdir));
  Status diff = snapshot::diff_to_upper(s.lowerdirs, root, *copied, s.upperdir);
  if (!diff.ok()) return std::move(diff).error().wrap("sandbox: diff the step's root into its upperdir");
  if (!s.in_sandbox && real_root && (uid != geteuid() || gid != getegid()))
    OCIB_TRY(chown_new_entries(s.upperdir, s.lowerdirs, uid, gid));
  Outcome o;
  if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
    o.exit_code = 128 + o.signal;
  } else {
    o.exit_code = WEXITSTATUS(status);
  }
  return o;
}

}  // namespace ocib::sandbox::internal
