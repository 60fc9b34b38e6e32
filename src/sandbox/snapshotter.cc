#include "sandbox/snapshotter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"

namespace ocib::sandbox::snapshot {

namespace {

constexpr const char* kOpaqueXattr = "user.overlay.opaque";
constexpr const char* kFuseOpaqueXattr = "user.fuseoverlayfs.opaque";
constexpr const char* kWhiteoutXattr = "user.overlay.whiteout";  // unpack's mknod fallback
constexpr const char* kFuseOpaqueFile = ".wh..wh..opq";

Result<std::vector<std::string>> list_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Error::from_errno("opendir " + path, errno);
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
      names.emplace_back(de->d_name);
    errno = 0;
  }
  if (errno != 0) return Error::from_errno("readdir " + path, errno);
  std::sort(names.begin(), names.end());
  return names;
}

bool xattr_is(const std::string& path, const char* name, const char* want) {
  char v[8];
  ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
  return n == static_cast<ssize_t>(std::strlen(want)) && std::memcmp(v, want, n) == 0;
}

bool is_whiteout(const std::string& path, const struct stat& st) {
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return true;
  return S_ISREG(st.st_mode) && st.st_size == 0 && xattr_is(path, kWhiteoutXattr, "y");
}

bool is_opaque(const std::string& path) {
  return xattr_is(path, kOpaqueXattr, "y") || xattr_is(path, "trusted.overlay.opaque", "y");
}

using XattrList = std::vector<std::pair<std::string, std::string>>;

// The xattrs worth carrying over (overlay's and fuse-overlayfs' own are not).
Result<XattrList> read_xattrs(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, fs::list_xattrs(path));
  XattrList out;
  for (const auto& name : names) {
    if (fs::is_overlay_xattr(name)) continue;
    auto value = fs::get_xattr(path, name);
    // trusted.* needs privileges a user namespace lacks: such an xattr is not carried over.
    if (!value.ok() && (value.error().sys_errno() == EPERM || value.error().sys_errno() == EACCES)) continue;
    if (!value.ok()) return std::move(value).error();
    if (*value) out.emplace_back(name, std::move(**value));
  }
  return out;
}

Status write_xattrs(const std::string& path, const XattrList& xs) {
  for (const auto& [k, v] : xs) {
    if (::lsetxattr(path.c_str(), k.c_str(), v.data(), v.size(), 0) == 0) continue;
    // trusted.* and some security.* need privileges a user namespace does not give; a
    // filesystem may lack user xattrs. The kernel overlay's copy-up drops those too.
    if (errno == EPERM || errno == ENOTSUP || errno == EACCES) {
      log::debug("snapshot: cannot set xattr " + k + " on " + path + ": " + std::strerror(errno));
      continue;
    }
    return Error::from_errno("setxattr " + path + " " + k, errno);
  }
  return {};
}

// Owner, mode, xattrs and times of `st` onto `path` (after its contents, for directories).
Status apply_meta(const std::string& path, const struct stat& st, const XattrList& xs) {
  // EPERM only outside a user namespace as non-root (the chroot isolation), where every file
  // is the caller's anyway (only its own id exists): the copy keeps it.
  if (::lchown(path.c_str(), st.st_uid, st.st_gid) != 0 && !(errno == EPERM && ::geteuid() != 0))
    return Error::from_errno("chown " + path, errno);
  if (!S_ISLNK(st.st_mode) && ::chmod(path.c_str(), st.st_mode & 07777) != 0)
    return Error::from_errno("chmod " + path, errno);
  OCIB_TRY(write_xattrs(path, xs));
  timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("utimensat " + path, errno);
  return {};
}

Status copy_data(const std::string& src, const std::string& dst, mode_t mode) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(src, O_RDONLY | O_NOFOLLOW));
  OCIB_ASSIGN_OR_RETURN(UniqueFd out,
                        fs::open_file(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0700));
  bool plain = false;  // copy_file_range unsupported between these files
  std::unique_ptr<char[]> buf;
  for (;;) {
    ssize_t n;
    if (!plain) {
      n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        plain = true;
        continue;
      }
    } else {
      if (!buf) buf.reset(new char[1 << 17]);
      n = ::read(in.get(), buf.get(), 1 << 17);
      for (ssize_t off = 0; n > 0 && off < n;) {
        ssize_t w = ::write(out.get(), buf.get() + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Error::from_errno("write " + dst, errno);
        off += w;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("copy " + src + " to " + dst, errno);
    if (n == 0) return {};
  }
}

// What the merged lower view holds at one name: the topmost entry, and for a directory every
// layer's directory that merges into it (topmost first, up to an opaque one).
struct Below {
  bool exists = false;
  struct stat st {};
  std::string path;
  std::vector<std::string> dirs;
};

Below lookup(const std::vector<std::string>& dirs, const std::string& name) {
  Below b;
  for (const auto& d : dirs) {
    std::string p = fs::join(d, name);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (!b.exists) {
      if (is_whiteout(p, st)) return b;
      b.exists = true;
      b.st = st;
      b.path = p;
      if (!S_ISDIR(st.st_mode)) return b;
    } else if (!S_ISDIR(st.st_mode)) {
      return b;  // a whiteout or a non-directory ends the merge
    }
    b.dirs.push_back(p);
    if (is_opaque(p)) return b;
  }
  return b;
}

// The merged children of a directory made of `dirs`.
Result<std::map<std::string, Below>> merged_children(const std::vector<std::string>& dirs) {
  std::set<std::string> names;
  for (const auto& d : dirs) {
    OCIB_ASSIGN_OR_RETURN(std::vector<std::string> n, list_dir(d));
    names.insert(n.begin(), n.end());
  }
  std::map<std::string, Below> out;
  for (const auto& n : names) {
    Below b = lookup(dirs, n);
    if (b.exists) out.emplace(n, std::move(b));
  }
  return out;
}

// ---- copy -----------------------------------------------------------------------------------

class Copier {
 public:
  explicit Copier(CopyState* state) : state_(state) {}

  Status children(const std::vector<std::string>& dirs, const std::string& dest,
                  const std::string& rel) {
    OCIB_ASSIGN_OR_RETURN(auto kids, merged_children(dirs));
    for (const auto& [name, b] : kids)
      OCIB_TRY(entry(b, fs::join(dest, name), rel.empty() ? name : rel + "/" + name));
    return {};
  }

 private:
  Status entry(const Below& b, const std::string& dst, const std::string& rel) {
    const struct stat& st = b.st;
    OCIB_ASSIGN_OR_RETURN(XattrList xs, read_xattrs(b.path));
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        if (::mkdir(dst.c_str(), 0700) != 0) return Error::from_errno("mkdir " + dst, errno);
        OCIB_TRY(children(b.dirs, dst, rel));
        break;
      case S_IFREG:
        OCIB_TRY(copy_data(b.path, dst, st.st_mode));
        break;
      case S_IFLNK: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlink(b.path.c_str(), target.data(), target.size());
        if (n < 0) return Error::from_errno("readlink " + b.path, errno);
        target.resize(static_cast<size_t>(n));
        if (::symlink(target.c_str(), dst.c_str()) != 0)
          return Error::from_errno("symlink " + dst, errno);
        break;
      }
      case S_IFIFO:
      case S_IFSOCK:
        if (::mknod(dst.c_str(), (st.st_mode & S_IFMT) | 0600, 0) != 0)
          return Error::from_errno("mknod " + dst, errno);
        break;
      case S_IFCHR:
      case S_IFBLK:
        if (::mknod(dst.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
          if (errno != EPERM) return Error::from_errno("mknod " + dst, errno);
          log::debug("snapshot copy: device node " + rel + " skipped (mknod not permitted)");
          state_->skipped.push_back(rel);
          return {};
        }
        break;
      default:
        return {};
    }
    return apply_meta(dst, st, xs);
  }

  CopyState* state_;
};

// Waits until the filesystem clock (as ctime shows it) has moved past every timestamp the copy
// wrote, so that "ctime > since" means "changed by the step" even with coarse timestamps.
Result<timespec> settle_clock(const std::string& clock) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(clock, O_RDWR | O_CREAT | O_TRUNC, 0600));
  auto ctime_now = [&]() -> Result<timespec> {
    if (::fchmod(fd.get(), 0600) != 0) return Error::from_errno("chmod " + clock, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno("stat " + clock, errno);
    return st.st_ctim;
  };
  auto later = [](const timespec& a, const timespec& b) {
    return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
  };
  OCIB_ASSIGN_OR_RETURN(timespec since, ctime_now());
  for (int i = 0; i < 5000; ++i) {
    OCIB_ASSIGN_OR_RETURN(timespec now, ctime_now());
    if (later(now, since)) {
      ::unlink(clock.c_str());
      return since;
    }
    timespec pause{0, 1000000};
    ::nanosleep(&pause, nullptr);
  }
  return Error(Errc::kGeneric, "snapshot copy: the filesystem clock does not advance");
}

// ---- diff -----------------------------------------------------------------------------------

bool after(const statx_timestamp& t, const timespec& since) {
  return t.tv_sec != since.tv_sec ? t.tv_sec > since.tv_sec : t.tv_nsec > since.tv_nsec;
}

// A non-directory copied on its own (when link(2) cannot: another filesystem).
Status copy_nondir(const std::string& src, const std::string& dst) {
  struct stat st;
  if (::lstat(src.c_str(), &st) != 0) return Error::from_errno("lstat " + src, errno);
  OCIB_ASSIGN_OR_RETURN(XattrList xs, read_xattrs(src));
  if (S_ISREG(st.st_mode)) {
    OCIB_TRY(copy_data(src, dst, st.st_mode));
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
    if (n < 0) return Error::from_errno("readlink " + src, errno);
    target.resize(static_cast<size_t>(n));
    if (::symlink(target.c_str(), dst.c_str()) != 0)
      return Error::from_errno("symlink " + dst, errno);
  } else if (::mknod(dst.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
    return Error::from_errno("mknod " + dst, errno);
  }
  return apply_meta(dst, st, xs);
}

struct UpperDir {
  UpperDir* parent = nullptr;
  std::string path;
  bool created = false;
};

Status ensure(UpperDir& d) {
  if (d.created) return {};
  if (d.parent) OCIB_TRY(ensure(*d.parent));
  if (::mkdir(d.path.c_str(), 0700) != 0) return Error::from_errno("mkdir " + d.path, errno);
  d.created = true;
  return {};
}

Status make_whiteout(const std::string& path) {
  if (::mknod(path.c_str(), S_IFCHR, makedev(0, 0)) != 0)
    return Error::from_errno("mknod whiteout " + path, errno);
  return {};
}

class Differ {
 public:
  explicit Differ(const CopyState& state) : state_(state) {
    skipped_.insert(state.skipped.begin(), state.skipped.end());
  }

  Status dir(const std::vector<std::string>& dirs, const std::string& root, UpperDir& up,
             const std::string& rel) {
    OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(root));
    OCIB_ASSIGN_OR_RETURN(auto below, merged_children(dirs));
    std::set<std::string> present(names.begin(), names.end());
    for (const auto& [name, b] : below) {
      if (present.count(name) || skipped_.count(join_rel(rel, name))) continue;
      OCIB_TRY(ensure(up));
      OCIB_TRY(make_whiteout(fs::join(up.path, name)));
    }
    for (const auto& name : names) {
      std::string src = fs::join(root, name);
      struct statx sx {};
      if (::statx(AT_FDCWD, src.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME,
                  &sx) != 0)
        return Error::from_errno("statx " + src, errno);
      auto it = below.find(name);
      const Below* b = it == below.end() ? nullptr : &it->second;
      const bool changed = after(sx.stx_ctime, state_.since);
      if (S_ISDIR(sx.stx_mode)) {
        UpperDir sub{&up, fs::join(up.path, name), false};
        const bool born = (sx.stx_mask & STATX_BTIME) && after(sx.stx_btime, state_.since);
        const bool recreated = b && (!S_ISDIR(b->st.st_mode) || born);
        std::vector<std::string> sub_below;
        if (!b || recreated) {
          OCIB_TRY(ensure(sub));
          if (recreated && ::setxattr(sub.path.c_str(), kOpaqueXattr, "y", 1, 0) != 0) {
            if (errno != ENOTSUP && errno != EPERM)
              return Error::from_errno("setxattr " + sub.path, errno);
            // No opaque marker here: hide what is below entry by entry instead.
            if (S_ISDIR(b->st.st_mode)) sub_below = b->dirs;
          }
        } else {
          sub_below = b->dirs;
          if (changed) OCIB_TRY(ensure(sub));
        }
        OCIB_TRY(dir(sub_below, src, sub, join_rel(rel, name)));
        if (sub.created) {
          struct stat st;
          if (::lstat(src.c_str(), &st) != 0) return Error::from_errno("lstat " + src, errno);
          OCIB_ASSIGN_OR_RETURN(XattrList xs, read_xattrs(src));
          OCIB_TRY(apply_meta(sub.path, st, xs));
        }
        continue;
      }
      const bool same_type = b && (b->st.st_mode & S_IFMT) == (sx.stx_mode & S_IFMT);
      if (b && same_type && !changed) continue;
      OCIB_TRY(ensure(up));
      std::string dst = fs::join(up.path, name);
      // The root copy is discarded after the diff: the upperdir takes over its inodes, and
      // hardlinks made by the step stay hardlinks.
      if (::link(src.c_str(), dst.c_str()) != 0) {
        if (errno != EXDEV) return Error::from_errno("link " + src + " to " + dst, errno);
        OCIB_TRY(copy_nondir(src, dst));
      }
    }
    return {};
  }

 private:
  static std::string join_rel(const std::string& rel, const std::string& name) {
    return rel.empty() ? name : rel + "/" + name;
  }

  const CopyState& state_;
  std::set<std::string> skipped_;
};

// ---- fuse-overlayfs upperdir ------------------------------------------------------------------

Status remove_fuse_xattrs(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, fs::list_xattrs(path));
  for (const auto& n : names)
    if (n.starts_with("user.fuseoverlayfs.") && ::lremovexattr(path.c_str(), n.c_str()) != 0 &&
        errno != ENODATA)
      return Error::from_errno("removexattr " + path + " " + n, errno);
  return {};
}

Status normalize_dir(const std::vector<std::string>& dirs, const std::string& up) {
  struct stat self;
  if (::lstat(up.c_str(), &self) != 0) return Error::from_errno("lstat " + up, errno);
  OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(up));
  std::set<std::string> present(names.begin(), names.end());
  bool touched = false;
  auto remove = [&](const std::string& p) -> Status {
    if (::unlink(p.c_str()) != 0) return Error::from_errno("unlink " + p, errno);
    touched = true;
    return {};
  };
  for (const auto& name : names) {
    std::string p = fs::join(up, name);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return Error::from_errno("lstat " + p, errno);
    if (name == kFuseOpaqueFile) {
      OCIB_TRY(remove(p));  // read by the parent (see below)
    } else if (name == ".wh..opq" && is_whiteout(p, st)) {
      OCIB_TRY(remove(p));  // fuse-overlayfs' companion of the opaque marker
    } else if (name.starts_with(".wh.") && S_ISREG(st.st_mode)) {
      // A whiteout fuse-overlayfs could not mknod.
      std::string target = name.substr(4);
      OCIB_TRY(remove(p));
      if (!target.empty() && !present.count(target) && lookup(dirs, target).exists)
        OCIB_TRY(make_whiteout(fs::join(up, target)));
    } else if (is_whiteout(p, st)) {
      if (!lookup(dirs, name).exists) OCIB_TRY(remove(p));  // nothing below to hide
    } else {
      const bool marked = S_ISDIR(st.st_mode) &&
                          (xattr_is(p, kFuseOpaqueXattr, "y") || xattr_is(p, kOpaqueXattr, "y") ||
                           fs::exists(fs::join(p, kFuseOpaqueFile)));
      OCIB_TRY(remove_fuse_xattrs(p));
      if (!S_ISDIR(st.st_mode)) continue;
      Below b = lookup(dirs, name);
      // The kernel marks a directory opaque only when it hides something below.
      const bool opaque = marked && b.exists;
      if (opaque) {
        if (::setxattr(p.c_str(), kOpaqueXattr, "y", 1, 0) != 0)
          return Error::from_errno("setxattr " + p, errno);
      } else if (::lremovexattr(p.c_str(), kOpaqueXattr) != 0 && errno != ENODATA) {
        return Error::from_errno("removexattr " + p, errno);
      }
      OCIB_TRY(normalize_dir(opaque ? std::vector<std::string>{} : b.dirs, p));
    }
  }
  if (touched) {
    timespec ts[2] = {self.st_atim, self.st_mtim};
    if (::utimensat(AT_FDCWD, up.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::from_errno("utimensat " + up, errno);
  }
  return {};
}


// ---- flatten ----------------------------------------------------------------------------------

class Flattener {
 public:
  explicit Flattener(std::string dest) : dest_(std::move(dest)) {}

  Status layer(const std::string& root) {
    dirs_[""] = root;  // the topmost layer's root is the merged root
    return walk(root, dest_, "");
  }

  // Directory metadata last, children before parents (a descendant sorts after its ancestor),
  // as adding entries changed the times.
  Status finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      struct stat st;
      if (::lstat(it->second.c_str(), &st) != 0) return Error::from_errno("lstat " + it->second, errno);
      OCIB_ASSIGN_OR_RETURN(XattrList xs, read_xattrs(it->second));
      OCIB_TRY(apply_meta(it->first.empty() ? dest_ : fs::join(dest_, it->first), st, xs));
    }
    return {};
  }

 private:
  Status walk(const std::string& src, const std::string& dst, const std::string& rel) {
    OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(src));
    for (const auto& name : names) {
      const std::string s = fs::join(src, name), d = fs::join(dst, name);
      const std::string r = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(s.c_str(), &st) != 0) return Error::from_errno("lstat " + s, errno);
      if (is_whiteout(s, st)) {
        OCIB_TRY(remove(d, r));
        continue;
      }
      struct stat have;
      const bool exists = ::lstat(d.c_str(), &have) == 0;
      if (!exists && errno != ENOENT) return Error::from_errno("lstat " + d, errno);
      if (S_ISDIR(st.st_mode)) {
        // A directory merges with one below unless it is opaque; anything else it replaces.
        if (!exists || !S_ISDIR(have.st_mode) || is_opaque(s)) {
          if (exists) OCIB_TRY(remove(d, r));
          if (::mkdir(d.c_str(), 0700) != 0) return Error::from_errno("mkdir " + d, errno);
        }
        dirs_[r] = s;
        OCIB_TRY(walk(s, d, r));
        continue;
      }
      if (exists) OCIB_TRY(remove(d, r));
      if (::link(s.c_str(), d.c_str()) == 0) continue;
      if (errno != EMLINK && errno != EXDEV && errno != EPERM) return Error::from_errno("link " + s + " to " + d, errno);
      OCIB_TRY(copy_nondir(s, d));  // EPERM: protected_hardlinks outside a user namespace
    }
    return {};
  }

  // Removes what a whiteout or a replacing entry hides (nothing there is fine).
  Status remove(const std::string& d, const std::string& r) {
    struct stat st;
    if (::lstat(d.c_str(), &st) != 0) return errno == ENOENT ? Status{} : Error::from_errno("lstat " + d, errno);
    if (!S_ISDIR(st.st_mode)) {
      if (::unlink(d.c_str()) != 0) return Error::from_errno("unlink " + d, errno);
      return {};
    }
    OCIB_TRY(fs::remove_all(d));
    dirs_.erase(r);
    const std::string prefix = r + "/";
    for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && it->first.starts_with(prefix);) it = dirs_.erase(it);
    return {};
  }

  std::string dest_;
  std::map<std::string, std::string> dirs_;  // merged directory (relative) -> its topmost version
};

}  // namespace

Result<CopyState> copy_merged(const std::vector<std::string>& lowers, const std::string& dest,
                              const std::string& clock) {
  CopyState state;
  Copier c(&state);
  OCIB_TRY(c.children(lowers, dest, ""));
  OCIB_ASSIGN_OR_RETURN(state.since, settle_clock(clock));
  return state;
}

Status diff_to_upper(const std::vector<std::string>& lowers, const std::string& root,
                     const CopyState& state, const std::string& upper) {
  UpperDir top{nullptr, upper, true};
  Differ d(state);
  return d.dir(lowers, root, top, "");
}

Status flatten(const std::vector<std::string>& lowers, const std::string& dest) {
  Flattener f(dest);
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) OCIB_TRY(f.layer(*it));
  return f.finish();
}

Status normalize_fuse_upper(const std::vector<std::string>& lowers, const std::string& upper) {
  OCIB_TRY(remove_fuse_xattrs(upper));
  return normalize_dir(lowers, upper);
}

}  // namespace ocib::sandbox::snapshot
