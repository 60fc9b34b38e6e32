#include "build/copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/fs.h"
#include "base/sha256.h"

namespace ocib::build {

namespace {

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// Why openat2: source paths come from the Dockerfile and symlinks in the context or another
// stage; RESOLVE_IN_ROOT keeps every lookup beneath the source root.
int open_beneath(int root_fd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p = rel.empty() ? "." : rel;
  for (;;) {
    long fd = syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

// lstat of `rel` beneath root: the parent is resolved in-root, the last component not followed.
int lstat_beneath(int root_fd, const std::string& rel, struct stat* st) {
  if (rel == "." || rel.empty()) return fstatat(root_fd, "", st, AT_EMPTY_PATH);
  UniqueFd parent(open_beneath(root_fd, fs::dirname(rel), O_PATH | O_DIRECTORY));
  if (!parent.valid()) return -1;
  return fstatat(parent.get(), fs::basename(rel).c_str(), st, AT_SYMLINK_NOFOLLOW);
}

Result<std::vector<std::string>> list_dir(int dir_fd) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("open directory", errno);
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return Error::from_errno("fdopendir", errno);
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

Status glob_walk(int root_fd, const std::string& base, const std::vector<std::string>& parts,
                 size_t idx, std::vector<std::string>& out, const SourceFilter& filter) {
  if (idx == parts.size()) {
    std::string m = base.empty() ? "." : base;
    struct stat st;
    bool is_dir = lstat_beneath(root_fd, m, &st) == 0 && S_ISDIR(st.st_mode);
    if (!filter.skip(m, is_dir)) out.push_back(m);
    return {};
  }
  const std::string& part = parts[idx];
  if (!has_glob(part)) {
    std::string next = base.empty() ? part : base + "/" + part;
    struct stat st;
    if (lstat_beneath(root_fd, next, &st) == 0) return glob_walk(root_fd, next, parts, idx + 1, out, filter);
    return {};
  }
  UniqueFd dir(open_beneath(root_fd, base.empty() ? "." : base, O_PATH | O_DIRECTORY));
  if (!dir.valid()) return {};
  OCIB_ASSIGN_OR_RETURN(auto names, list_dir(dir.get()));
  for (const auto& n : names) {
    if (fnmatch(part.c_str(), n.c_str(), 0) != 0) continue;
    OCIB_TRY(glob_walk(root_fd, base.empty() ? n : base + "/" + n, parts, idx + 1, out, filter));
  }
  return {};
}

void hash_u64(Sha256& h, uint64_t v) { h.update(&v, sizeof v); }

Status hash_tree(int parent_fd, const std::string& name, const std::string& rel, Sha256& h,
                 const SourceFilter& filter) {
  struct stat st;
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("stat " + rel, errno);
  if (filter.skip(rel, S_ISDIR(st.st_mode))) return {};
  if (!S_ISDIR(st.st_mode) && filter.drop_file(rel)) return {};
  h.update(rel);
  h.update("\0", 1);
  hash_u64(h, st.st_mode);
  if (S_ISREG(st.st_mode)) {
    hash_u64(h, static_cast<uint64_t>(st.st_size));
    UniqueFd fd(openat(parent_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return Error::from_errno("open " + rel, errno);
    static thread_local char buf[1 << 17];
    for (;;) {
      ssize_t n = read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::from_errno("read " + rel, errno);
      }
      if (n == 0) break;
      h.update(buf, static_cast<size_t>(n));
    }
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(parent_fd, name.c_str(), target, sizeof target);
    if (n < 0) return Error::from_errno("readlink " + rel, errno);
    h.update(target, static_cast<size_t>(n));
  } else if (S_ISDIR(st.st_mode)) {
    UniqueFd dir(openat(parent_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Error::from_errno("open " + rel, errno);
    OCIB_ASSIGN_OR_RETURN(auto names, list_dir(dir.get()));
    for (const auto& n : names) OCIB_TRY(hash_tree(dir.get(), n, rel == "." ? n : rel + "/" + n, h, filter));
  }
  return {};
}

// ---- copying (runs inside the sandbox) ----

struct Attrs {
  std::optional<uint32_t> uid, gid, chmod;
  const SourceFilter* filter = nullptr;
  bool preserve_owner = false;
};

Status apply_meta(const std::string& dst, const struct stat& st, const Attrs& a, bool is_link) {
  uid_t uid = a.uid.value_or(a.preserve_owner ? st.st_uid : 0);
  gid_t gid = a.gid.value_or(a.preserve_owner ? st.st_gid : 0);
  if (lchown(dst.c_str(), uid, gid) != 0) return Error::from_errno("chown " + dst, errno);
  if (!is_link) {
    mode_t mode = a.chmod ? static_cast<mode_t>(*a.chmod) : (st.st_mode & 07777);
    if (chmod(dst.c_str(), mode) != 0) return Error::from_errno("chmod " + dst, errno);
  }
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, dst.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("utimes " + dst, errno);
  return {};
}

Status copy_file_data(int src_fd, int dst_fd, const std::string& what) {
  for (;;) {
    ssize_t n = copy_file_range(src_fd, nullptr, dst_fd, nullptr, 1 << 30, 0);
    if (n == 0) return {};
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
      return Error::from_errno("copy " + what, errno);
    break;
  }
  static thread_local char buf[1 << 17];
  for (;;) {
    ssize_t n = read(src_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read " + what, errno);
    }
    if (n == 0) return {};
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = write(dst_fd, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Error::from_errno("write " + what, errno);
      }
      off += w;
    }
  }
}

// Removes whatever is at dst unless it is a directory and we are placing a directory.
void clear_dest(const std::string& dst, bool want_dir) {
  struct stat st;
  if (lstat(dst.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (!want_dir) (void)fs::remove_all(dst);
    return;
  }
  unlink(dst.c_str());
}

Status mkdir_parents(const std::string& dir, const Attrs&) {
  // Parents created by COPY are root-owned 0755, as in Docker.
  return fs::mkdirs(dir, 0755);
}

Status copy_entry(int parent_fd, const std::string& name, const std::string& rel, const std::string& dst,
                  const Attrs& a);

Status copy_dir_contents(int dir_fd, const std::string& rel, const std::string& dst, const Attrs& a) {
  OCIB_ASSIGN_OR_RETURN(auto names, list_dir(dir_fd));
  for (const auto& n : names) OCIB_TRY(copy_entry(dir_fd, n, rel == "." ? n : rel + "/" + n, fs::join(dst, n), a));
  return {};
}

Status copy_entry(int parent_fd, const std::string& name, const std::string& rel, const std::string& dst,
                  const Attrs& a) {
  struct stat st;
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("stat " + name, errno);
  if (a.filter && a.filter->skip(rel, S_ISDIR(st.st_mode))) return {};
  if (a.filter && !S_ISDIR(st.st_mode) && a.filter->drop_file(rel)) return {};
  if (S_ISDIR(st.st_mode)) {
    clear_dest(dst, true);
    if (mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) return Error::from_errno("mkdir " + dst, errno);
    UniqueFd dir(openat(parent_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Error::from_errno("open " + name, errno);
    OCIB_TRY(copy_dir_contents(dir.get(), rel, dst, a));
    return apply_meta(dst, st, a, false);
  }
  clear_dest(dst, false);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(parent_fd, name.c_str(), target, sizeof target - 1);
    if (n < 0) return Error::from_errno("readlink " + name, errno);
    target[n] = 0;
    if (symlink(target, dst.c_str()) != 0) return Error::from_errno("symlink " + dst, errno);
    return apply_meta(dst, st, a, true);
  }
  if (S_ISREG(st.st_mode)) {
    UniqueFd in(openat(parent_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) return Error::from_errno("open " + name, errno);
    UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return Error::from_errno("create " + dst, errno);
    OCIB_TRY(copy_file_data(in.get(), out.get(), dst));
    out.reset();
    return apply_meta(dst, st, a, false);
  }
  // Sockets, fifos and devices from a context are skipped, as BuildKit does for sockets.
  if (S_ISFIFO(st.st_mode)) {
    if (mkfifo(dst.c_str(), 0600) != 0) return Error::from_errno("mkfifo " + dst, errno);
    return apply_meta(dst, st, a, false);
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> match_sources(int root_fd, const std::string& pattern,
                                               const SourceFilter& filter) {
  std::string clean = fs::clean("/" + pattern);
  std::vector<std::string> out;
  OCIB_TRY(glob_walk(root_fd, "", split_path(clean), 0, out, filter));
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> hash_sources(int root_fd, const std::vector<std::string>& patterns,
                                 const SourceFilter& filter) {
  Sha256 h;
  for (const auto& p : patterns) {
    OCIB_ASSIGN_OR_RETURN(auto matches, match_sources(root_fd, p, filter));
    if (matches.empty()) return Error(Errc::kNotFound, "\"" + p + "\": not found");
    h.update("pattern:" + p);
    for (const auto& m : matches) {
      if (m == ".") {
        OCIB_TRY(hash_tree(root_fd, ".", ".", h, filter));
        continue;
      }
      UniqueFd parent(open_beneath(root_fd, fs::dirname(m), O_PATH | O_DIRECTORY));
      if (!parent.valid()) return Error::from_errno("open " + fs::dirname(m), errno);
      OCIB_TRY(hash_tree(parent.get(), fs::basename(m), m, h, filter));
    }
  }
  return h.hex_final();
}

Status copy_into(int src_root_fd, const CopyOp& op) {
  Attrs a{op.uid, op.gid, op.chmod, &op.filter, op.preserve_owner};
  std::vector<std::string> matches;
  for (const auto& p : op.sources) {
    OCIB_ASSIGN_OR_RETURN(auto m, match_sources(src_root_fd, p, op.filter));
    if (m.empty()) return Error(Errc::kNotFound, "\"" + p + "\": not found");
    matches.insert(matches.end(), m.begin(), m.end());
  }
  bool dest_dir_syntax = !op.dest.empty() && op.dest.back() == '/';
  std::string dest = fs::clean(op.dest);
  size_t total = matches.size() + op.inline_files.size();
  if (total > 1 && !dest_dir_syntax) {
    struct stat st;
    if (stat(dest.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Error::invalid("When using COPY with more than one source file, the destination must "
                            "be a directory and end with a /");
  }
  for (const auto& f : op.inline_files) {
    // Heredoc sources: a file with the given content, placed like a regular source file.
    std::string target = dest;
    struct stat dst_st;
    bool dest_is_dir = stat(dest.c_str(), &dst_st) == 0 && S_ISDIR(dst_st.st_mode);
    if (dest_dir_syntax || dest_is_dir || total > 1) {
      OCIB_TRY(fs::mkdirs(dest, 0755));
      target = fs::join(dest, f.name);
    } else {
      OCIB_TRY(fs::mkdirs(fs::dirname(dest), 0755));
    }
    clear_dest(target, false);
    UniqueFd out(open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return Error::from_errno("create " + target, errno);
    if (write(out.get(), f.content.data(), f.content.size()) != static_cast<ssize_t>(f.content.size()))
      return Error::from_errno("write " + target, errno);
    out.reset();
    if (lchown(target.c_str(), op.uid.value_or(0), op.gid.value_or(0)) != 0)
      return Error::from_errno("chown " + target, errno);
    if (chmod(target.c_str(), op.chmod ? static_cast<mode_t>(*op.chmod) : 0644) != 0)
      return Error::from_errno("chmod " + target, errno);
  }
  for (const auto& m : matches) {
    UniqueFd parent(open_beneath(src_root_fd, m == "." ? "." : fs::dirname(m), O_PATH | O_DIRECTORY));
    if (!parent.valid()) return Error::from_errno("open source " + m, errno);
    std::string name = m == "." ? "." : fs::basename(m);
    struct stat st;
    if (fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::from_errno("stat source " + m, errno);
    if (S_ISDIR(st.st_mode)) {
      // A directory source copies its contents into dest.
      OCIB_TRY(mkdir_parents(dest, a));
      UniqueFd dir(openat(parent.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) return Error::from_errno("open source " + m, errno);
      OCIB_TRY(copy_dir_contents(dir.get(), m, dest, a));
      continue;
    }
    std::string target = dest;
    struct stat dst_st;
    bool dest_is_dir = stat(dest.c_str(), &dst_st) == 0 && S_ISDIR(dst_st.st_mode);
    if (dest_dir_syntax || dest_is_dir || total > 1) {
      OCIB_TRY(mkdir_parents(dest, a));
      target = fs::join(dest, fs::basename(m));
    } else {
      OCIB_TRY(mkdir_parents(fs::dirname(dest), a));
    }
    OCIB_TRY(copy_entry(parent.get(), name, m, target, a));
  }
  return {};
}

}  // namespace ocib::build
