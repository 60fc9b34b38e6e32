#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <random>

namespace ocib::fs {

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Error::from_errno("open " + path, errno);
  return UniqueFd(fd);
}

Result<std::string> read_file(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read " + path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

static std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(8, 'x');
  for (auto& c : s) c = kChars[rng() % (sizeof kChars - 1)];
  return s;
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  // A FIFO or a device (--metadata-file /dev/null) is written in place: a rename over it would
  // replace it with a file.
  if (struct stat st; ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) return Error::from_errno("open " + path, errno);
    for (size_t off = 0; off < data.size();) {
      ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("write " + path, errno);
      off += static_cast<size_t>(n);
    }
    return {};
  }
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + random_suffix();
  {
    OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, mode));
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::unlink(tmp.c_str());
        return Error::from_errno("write " + tmp, e);
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return Error::from_errno("fsync " + tmp, e);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Error::from_errno("rename " + tmp + " -> " + path, e);
  }
  return {};
}

std::optional<pid_t> tmp_name_pid(std::string_view name) {
  size_t at = name.rfind(".tmp-");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = name.substr(at + 5);
  size_t digits = 0;
  while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
  // "<pid>-": bare digits would also match an old-style random suffix.
  if (digits == 0 || digits > 9 || digits >= rest.size() || rest[digits] != '-') return std::nullopt;
  long pid = std::stol(std::string(rest.substr(0, digits)));
  if (pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool pid_is_dead(pid_t pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

size_t remove_stale_tmp_files(const std::string& dir, std::string_view prefix) {
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return 0;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    size_t at = name.rfind(".tmp-");
    if (at == std::string_view::npos || (!prefix.empty() && name.substr(0, at) != prefix)) continue;
    auto pid = tmp_name_pid(name);
    if (pid && pid_is_dead(*pid)) stale.emplace_back(name);
  }
  ::closedir(d);
  size_t removed = 0;
  for (const auto& name : stale) {
    std::string p = join(dir.empty() ? "." : dir, name);
    struct stat st;
    // Never a directory or what a symlink points to.
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(p.c_str()) == 0) ++removed;
  }
  return removed;
}

Status mkdirs(const std::string& path, mode_t mode) {
  if (path.empty()) return {};
  if (::mkdir(path.c_str(), mode) == 0) return {};
  if (errno == EEXIST) {
    if (is_dir(path)) return {};
    return Error::from_errno("mkdir " + path, ENOTDIR);
  }
  if (errno != ENOENT) return Error::from_errno("mkdir " + path, errno);
  std::string parent = dirname(path);
  if (parent == path) return Error::from_errno("mkdir " + path, ENOENT);
  OCIB_TRY(mkdirs(parent, mode));
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return Error::from_errno("mkdir " + path, errno);
  return {};
}

static int remove_cb(const char* p, const struct stat* st, int type, struct FTW*) {
  (void)st;
  if (type == FTW_DP || type == FTW_D || type == FTW_DNR) return ::rmdir(p) == 0 ? 0 : errno;
  return ::unlink(p) == 0 ? 0 : errno;
}

static int chmod_cb(const char* p, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_D && (st->st_mode & 0700) != 0700) ::chmod(p, st->st_mode | 0700);
  return 0;
}

Status remove_all(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error::from_errno("stat " + path, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::from_errno("unlink " + path, errno);
    return {};
  }
  // Directories without write/exec permission (e.g. a RUN did chmod 500) block deletion.
  ::nftw(path.c_str(), chmod_cb, 64, FTW_PHYS);
  int rc = ::nftw(path.c_str(), remove_cb, 64, FTW_DEPTH | FTW_PHYS);
  if (rc != 0) return Error::from_errno("remove " + path, rc > 0 ? rc : errno);
  return {};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  while (!out.empty() && out.back() == '/' && out.size() > 1) out.pop_back();
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

std::string clean(std::string_view path) {
  bool abs = !path.empty() && path.front() == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") parts.pop_back();
      else if (!abs) parts.push_back(part);
    } else {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out = abs ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  if (out.empty()) out = ".";
  return out;
}

std::string dirname(std::string_view path) {
  std::string p = clean(path);
  auto pos = p.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return p.substr(0, pos);
}

std::string basename(std::string_view path) {
  std::string p = clean(path);
  if (p == "/") return "/";
  auto pos = p.rfind('/');
  return pos == std::string::npos ? p : p.substr(pos + 1);
}

Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix) {
  OCIB_TRY(mkdirs(parent));
  std::string tmpl = join(parent, prefix + "XXXXXX");
  if (!::mkdtemp(tmpl.data())) return Error::from_errno("mkdtemp " + tmpl, errno);
  return tmpl;
}

std::string find_executable(const std::string& name, const std::string& extra) {
  const char* env = std::getenv("PATH");
  std::string path = std::string(env && *env ? env : kDefaultPath) + (extra.empty() ? "" : ":" + extra);
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string cand = join(dir, name);
    if (!dir.empty() && dir[0] == '/' && ::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return {};
}

namespace {
std::string& step_root_storage() {
  static std::string root = "/";
  return root;
}
}  // namespace

namespace {
bool g_step_owner_fixed = false;
}  // namespace

const std::string& step_root() { return step_root_storage(); }
bool step_owner_fixed() { return g_step_owner_fixed; }
void set_step_owner_fixed(bool fixed) { g_step_owner_fixed = fixed; }
int step_lchown(const std::string& path, uid_t uid, gid_t gid) {
  return g_step_owner_fixed ? 0 : ::lchown(path.c_str(), uid, gid);
}
void set_step_root(std::string root) { step_root_storage() = root.empty() ? "/" : std::move(root); }
std::string in_step_root(std::string_view rel) {
  const std::string& r = step_root();
  std::string c = clean(std::string("/") + std::string(rel));
  if (r == "/") return c;
  return c == "/" ? r : r + c;
}

Result<std::string> real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return Error::from_errno("realpath " + path, errno);
  return std::string(buf);
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)remove_all(path_);
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) (void)remove_all(path_);
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

Result<FileLock> FileLock::acquire(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDWR | O_CREAT, 0644));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error::from_errno("flock " + path, errno);
  }
  FileLock l;
  l.fd_ = std::move(fd);
  return l;
}

Result<FileLock> FileLock::acquire_shared(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDWR | O_CREAT, 0644));
  while (::flock(fd.get(), LOCK_SH) != 0) {
    if (errno != EINTR) return Error::from_errno("flock " + path, errno);
  }
  FileLock l;
  l.fd_ = std::move(fd);
  return l;
}

Result<FileLock> FileLock::try_acquire(const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDWR | O_CREAT, 0644));
  FileLock l;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return l;
    return Error::from_errno("flock " + path, errno);
  }
  l.fd_ = std::move(fd);
  return l;
}

Result<std::vector<std::string>> list_xattrs(const std::string& path) {
  std::string buf;
  for (;;) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP || errno == ENODATA) return std::vector<std::string>{};
      return Error::from_errno("listxattr " + path, errno);
    }
    if (n == 0) return std::vector<std::string>{};
    buf.resize(static_cast<size_t>(n));
    n = ::llistxattr(path.c_str(), buf.data(), buf.size());
    if (n < 0 && errno == ERANGE) continue;  // grew in between
    if (n < 0) return Error::from_errno("listxattr " + path, errno);
    buf.resize(static_cast<size_t>(n));
    break;
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < buf.size();) {
    size_t end = buf.find('\0', i);
    if (end == std::string::npos) end = buf.size();
    if (end > i) names.push_back(buf.substr(i, end - i));
    i = end + 1;
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::optional<std::string>> get_xattr(const std::string& path, const std::string& name) {
  std::string value;
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n < 0 && errno == ENODATA) return std::optional<std::string>{};
    if (n < 0) return Error::from_errno("getxattr " + path + " " + name, errno);
    value.resize(static_cast<size_t>(n));
    n = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (n < 0 && errno == ERANGE) continue;  // grew in between
    if (n < 0 && errno == ENODATA) return std::optional<std::string>{};
    if (n < 0) return Error::from_errno("getxattr " + path + " " + name, errno);
    value.resize(static_cast<size_t>(n));
    return std::optional<std::string>(std::move(value));
  }
}

bool is_overlay_xattr(std::string_view name) {
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") ||
         name.starts_with("user.fuseoverlayfs.");
}

}  // namespace ocib::fs
