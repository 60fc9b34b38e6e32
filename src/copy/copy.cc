#include "copy/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "base/fd.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "copy/hash_cache.h"

namespace ocib::copy {

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

std::string join_parts(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out.empty() ? "." : out;
}

// BuildKit's fs.RootPath: `path` resolved beneath `root_fd` as if it were "/", symlinks
// followed (the last component only with `follow_leaf`): absolute targets start again at the
// root, ".." stops there. The result is a clean relative path ("." for the root itself) that
// names no symlink; from the first missing component on, the rest is kept as written.
// `escaped`: set when a ".." would have climbed above the root (resolution stops at it).
// A symlink in a procfs directory (a /proc/self/fd/N magic link) is left to the kernel.
Result<std::string> resolve_in_root(int root_fd, const std::string& path, bool follow_leaf,
                                    bool* escaped = nullptr) {
  std::deque<std::string> rest;
  for (auto& p : split_path(path)) rest.push_back(std::move(p));
  std::vector<std::string> done;
  int links = 0;
  bool opaque = false;  // below a kernel magic link: kept as written
  while (!rest.empty()) {
    std::string c = std::move(rest.front());
    rest.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (!opaque && done.empty()) {
        if (escaped) *escaped = true;
        continue;
      }
      if (!opaque) {
        done.pop_back();
        continue;
      }
    }
    if (opaque || (rest.empty() && !follow_leaf)) {
      done.push_back(std::move(c));
      continue;
    }
    std::string cand = done.empty() ? c : join_parts(done, done.size()) + "/" + c;
    struct stat st;
    if (lstat_beneath(root_fd, cand, &st) != 0) {
      if (errno != ENOENT && errno != ENOTDIR) return Error::from_errno("stat " + cand, errno);
      done.push_back(std::move(c));
      for (auto& r : rest) done.push_back(std::move(r));
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      done.push_back(std::move(c));
      continue;
    }
    UniqueFd parent(open_beneath(root_fd, join_parts(done, done.size()), O_PATH | O_DIRECTORY));
    struct statfs sfs;
    if (parent.valid() && fstatfs(parent.get(), &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC) {
      done.push_back(std::move(c));
      opaque = true;
      continue;
    }
    if (++links > 255) return Error::from_errno("resolve " + path, ELOOP);
    char target[4096];
    ssize_t n = parent.valid() ? readlinkat(parent.get(), c.c_str(), target, sizeof target - 1) : -1;
    if (n < 0) return Error::from_errno("readlink " + cand, errno);
    target[n] = 0;
    if (target[0] == '/') done.clear();
    auto t = split_path(target);
    rest.insert(rest.begin(), t.begin(), t.end());
  }
  return join_parts(done, done.size());
}

// A named source that is a symlink is followed (BuildKit's FollowSymlinks): the path of what
// it points to beneath the root; any other match is returned as is.
Result<std::string> follow_source(int root_fd, const std::string& m) {
  struct stat st;
  if (m == "." || lstat_beneath(root_fd, m, &st) != 0 || !S_ISLNK(st.st_mode)) return m;
  OCIB_ASSIGN_OR_RETURN(std::string r, resolve_in_root(root_fd, m, true));
  if (lstat_beneath(root_fd, r, &st) != 0) return Error(Errc::kNotFound, "\"" + m + "\": not found (a dangling symlink)");
  return r;
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
  if (part == "**") {
    // Any number of directories, zero included (BuildKit's doublestar matching).
    OCIB_TRY(glob_walk(root_fd, base, parts, idx + 1, out, filter));
    for (const auto& n : names) {
      std::string next = base.empty() ? n : base + "/" + n;
      struct stat st;
      if (lstat_beneath(root_fd, next, &st) == 0 && S_ISDIR(st.st_mode))
        OCIB_TRY(glob_walk(root_fd, next, parts, idx, out, filter));
    }
    return {};
  }
  for (const auto& n : names) {
    if (fnmatch(part.c_str(), n.c_str(), 0) != 0) continue;
    OCIB_TRY(glob_walk(root_fd, base.empty() ? n : base + "/" + n, parts, idx + 1, out, filter));
  }
  return {};
}


// The bytes the digest takes for one path after its name (and before a regular file's content
// digest): type and mode, a regular file's size, a symlink's target. The copy computes the
// same from what it copies (CopyOp::expected).
std::string fingerprint(const struct stat& st, const char* link_target, size_t link_len) {
  std::string out;
  uint64_t mode = st.st_mode;
  out.append(reinterpret_cast<const char*>(&mode), sizeof mode);
  if (S_ISREG(st.st_mode)) {
    uint64_t size = static_cast<uint64_t>(st.st_size);
    out.append(reinterpret_cast<const char*>(&size), sizeof size);
  } else if (S_ISLNK(st.st_mode)) {
    out.append(link_target, link_len);
  }
  return out;
}

// What a walk of the sources feeds into the digest, in order: fixed bytes, or the content
// digest of a regular file (computed afterwards, in parallel, unless the hash cache knows it).
struct HashItem {
  std::string bytes;  // the path, a NUL, then its fingerprint()
  size_t rel_len = 0;  // of the path and its NUL; 0 for a pattern marker
  int file = -1;  // index into the files to digest, or -1
};
struct FileToHash {
  std::string rel;  // relative to the source root
  struct stat st;
  std::string digest;
};

Status hash_walk(int parent_fd, const std::string& name, const std::string& rel,
                 const SourceFilter& filter, std::vector<HashItem>& items, std::vector<FileToHash>& files) {
  struct stat st;
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("stat " + rel, errno);
  if (filter.skip(rel, S_ISDIR(st.st_mode))) return {};
  if (!S_ISDIR(st.st_mode) && filter.drop_file(rel)) return {};
  HashItem item;
  item.bytes = rel;
  item.bytes.push_back('\0');
  item.rel_len = item.bytes.size();
  if (filter.owners) {
    // A stage's files keep their owners (and a device its number) when copied.
    uint64_t who[3] = {st.st_uid, st.st_gid, S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? st.st_rdev : 0};
    item.bytes.append(reinterpret_cast<const char*>(who), sizeof who);
  }
  if (S_ISREG(st.st_mode)) {
    item.bytes += fingerprint(st, nullptr, 0);
    item.file = static_cast<int>(files.size());
    files.push_back({rel, st, {}});
    items.push_back(std::move(item));
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(parent_fd, name.c_str(), target, sizeof target);
    if (n < 0) return Error::from_errno("readlink " + rel, errno);
    item.bytes += fingerprint(st, target, static_cast<size_t>(n));
    items.push_back(std::move(item));
  } else if (S_ISDIR(st.st_mode)) {
    item.bytes += fingerprint(st, nullptr, 0);
    items.push_back(std::move(item));
    UniqueFd dir(openat(parent_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Error::from_errno("open " + rel, errno);
    OCIB_ASSIGN_OR_RETURN(auto names, list_dir(dir.get()));
    for (const auto& n : names)
      OCIB_TRY(hash_walk(dir.get(), n, rel == "." ? n : rel + "/" + n, filter, items, files));
  } else {
    item.bytes += fingerprint(st, nullptr, 0);
    items.push_back(std::move(item));
  }
  return {};
}

Result<std::string> digest_file(int root_fd, const FileToHash& f) {
  UniqueFd fd(open_beneath(root_fd, f.rel, O_RDONLY | O_NOFOLLOW));
  if (!fd.valid()) return Error::from_errno("open " + f.rel, errno);
  Sha256 h;
  static thread_local char buf[1 << 17];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read " + f.rel, errno);
    }
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  return h.hex_final();
}

// Digests every file the cache does not know, on all cores.
Status digest_files(int root_fd, std::vector<FileToHash>& files, HashCache* cache,
                    const std::function<void(uint64_t, uint64_t)>& progress) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    if (cache)
      if (auto d = cache->get(files[i].rel, files[i].st)) {
        files[i].digest = *d;
        continue;
      }
    todo.push_back(i);
  }
  if (todo.empty()) return {};
  uint64_t total = 0;
  for (size_t i : todo) total += static_cast<uint64_t>(files[i].st.st_size);
  std::atomic<uint64_t> hashed{0};
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::optional<Error> err;
  auto work = [&] {
    for (;;) {
      size_t k = next++;
      if (k >= todo.size()) return;
      FileToHash& f = files[todo[k]];
      auto d = digest_file(root_fd, f);
      if (!d.ok()) {
        std::lock_guard<std::mutex> lk(mu);
        if (!err) err = std::move(d).error();
        return;
      }
      f.digest = *d;
      if (cache) cache->put(f.rel, f.st, f.digest);
      uint64_t now = hashed += static_cast<uint64_t>(f.st.st_size);
      if (progress) progress(now, total);
    }
  };
  size_t n = std::min<size_t>(todo.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (err) return std::move(*err);
  return {};
}

// ---- copying (runs inside the sandbox) ----

// Which in-kernel copies failed as unsupported, so later files of the same COPY skip them.
// COPY from the context into the overlay root always crosses filesystems (EXDEV: the overlay
// is its own superblock), so copy_file_range never works there, while sendfile does.
struct CopyMethods {
  std::atomic<bool> no_copy_file_range{false};
  std::atomic<bool> no_sendfile{false};
};

// Copies the regular files of a directory source on a few threads while the walk goes on:
// creating the inodes and writing the data is most of a COPY of many files (on a journal-less
// ext4 that recently deleted many files, inode allocation alone dominated the profile). The
// walk (directories, links, order, filters) stays on the calling thread, every file has its
// own destination path, and drain() ends each source, so nothing else races with a file job.
class FilePool {
 public:
  using Job = std::function<Status()>;
  explicit FilePool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) {
      try {
        threads_.emplace_back([this] { run(); });
      } catch (const std::system_error&) {
        break;  // no threads (a sandbox without clone): the jobs run inline
      }
    }
  }
  ~FilePool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  FilePool(const FilePool&) = delete;
  FilePool& operator=(const FilePool&) = delete;

  Status add(Job job) {
    if (threads_.empty()) return job();
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return queue_.size() < kMaxQueued || err_; });
    if (err_) return *err_;
    queue_.push_back(std::move(job));
    cv_.notify_all();
    return {};
  }

  /// Waits for every job added so far; the first failure, if any.
  Status drain() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return (queue_.empty() && running_ == 0) || err_; });
    if (err_) {
      cv_.wait(lk, [&] { return running_ == 0; });
      queue_.clear();
      return *err_;
    }
    return {};
  }

 private:
  static constexpr size_t kMaxQueued = 64;  // each job holds an open source fd

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (!queue_.empty() && !err_); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        ++running_;
      }
      Status st = job();
      {
        std::lock_guard<std::mutex> lk(mu_);
        --running_;
        if (!st.ok() && !err_) err_ = std::move(st).error();
      }
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t running_ = 0;
  bool stop_ = false;
  std::optional<Error> err_;
  std::vector<std::thread> threads_;
};

struct Attrs {
  std::optional<uint32_t> uid, gid;
  std::optional<ModeSpec> chmod;
  const SourceFilter* filter = nullptr;
  bool preserve_owner = false;
  const SourceFilter* exclude = nullptr;  // --exclude, relative to `base`
  std::string base;                       // the matched source the exclusions are relative to
  CopyMethods* methods = nullptr;         // what this copy learnt about in-kernel copies
  // Within a directory source: regular files go to the pool, and directories' own metadata
  // (their mtime would move as files land in them) waits in `dirs` until the pool drains.
  FilePool* pool = nullptr;
  std::vector<std::pair<std::string, struct stat>>* dirs = nullptr;
  // CopyOp::expected, and the paths of it the copy met (filled on the walking thread only).
  const SourceManifest* expected = nullptr;
  std::unordered_set<std::string>* seen = nullptr;
};

// BuildKit's MkdirAll: the missing directories of `dir` (absolute) are created 0755, owned by
// --chown's user when one is given, else by root. Existing components are followed.
Status mkdir_all(const std::string& dir, const Attrs& a) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return Error::from_errno("mkdir " + dir, ENOTDIR);
  }
  if (errno != ENOENT) return Error::from_errno("stat " + dir, errno);
  std::string parent = fs::dirname(dir);
  if (!parent.empty() && parent != dir) OCIB_TRY(mkdir_all(parent, a));
  if (mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST && stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    return Error::from_errno("mkdir " + dir, errno);
  }
  if ((a.uid || a.gid) && fs::step_lchown(dir, a.uid.value_or(0), a.gid.value_or(0)) != 0)
    return Error::from_errno("chown " + dir, errno);
  // As current BuildKit: the directories a COPY --chmod creates get the mode too.
  if (a.chmod && chmod(dir.c_str(), a.chmod->apply(0755, true)) != 0) return Error::from_errno("chmod " + dir, errno);
  return {};
}

Error context_changed(const std::string& rel) {
  return Error(Errc::kCorrupt, "build context changed during the build: " + rel);
}

// With an expected manifest: `rel` must be in it with the fingerprint `fp`; for a regular file
// (`content_follows`) the recorded entry continues with the content digest, which the copy
// checks once it has read the data. Returns the recorded entry (null without a manifest).
Result<const std::string*> expect_entry(const Attrs& a, const std::string& rel, const std::string& fp,
                                        bool content_follows = false) {
  if (!a.expected) return static_cast<const std::string*>(nullptr);
  a.seen->insert(rel);
  auto it = a.expected->entries.find(rel);
  if (it == a.expected->entries.end()) return context_changed(rel);
  const std::string& want = it->second;
  bool same = content_follows ? want.size() > fp.size() && want.compare(0, fp.size(), fp) == 0 : want == fp;
  if (!same) return context_changed(rel);
  return &want;
}

// --exclude patterns apply to paths relative to the matched source.
bool excluded_by(const Attrs& a, const std::string& rel, bool is_dir) {
  if (!a.exclude || !a.exclude->excluded) return false;
  std::string r = rel;
  if (!a.base.empty() && a.base != ".") {
    if (rel == a.base) return false;
    if (rel.compare(0, a.base.size() + 1, a.base + "/") != 0) return false;
    r = rel.substr(a.base.size() + 1);
  }
  return a.exclude->skip(r, is_dir) || (!is_dir && a.exclude->drop_file(r));
}

struct ArchiveReadFree {
  void operator()(struct archive* p) const { archive_read_free(p); }
};
struct ArchiveWriteFree {
  void operator()(struct archive* p) const { archive_write_free(p); }
};

// Feeds libarchive from a file descriptor, hashing every byte it hands over.
struct HashingReader {
  int fd = -1;
  Sha256* hash = nullptr;
  char buf[1 << 16];

  static la_ssize_t read(struct archive* a, void* self, const void** out) {
    auto* r = static_cast<HashingReader*>(self);
    for (;;) {
      ssize_t n = ::read(r->fd, r->buf, sizeof r->buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (a) archive_set_error(a, errno, "read: %s", strerror(errno));
        return -1;
      }
      r->hash->update(r->buf, static_cast<size_t>(n));
      *out = r->buf;
      return n;
    }
  }
};

// Hashes the rest of `fd` from its offset to its end.
Status hash_rest(int fd, Sha256& hash, const std::string& what) {
  static thread_local char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read " + what, errno);
    if (n == 0) return {};
    hash.update(buf, static_cast<size_t>(n));
  }
}

// `hashing`: read through it (it holds the fd) rather than from `fd` directly.
std::unique_ptr<struct archive, ArchiveReadFree> open_tar(int fd, HashingReader* hashing = nullptr) {
  std::unique_ptr<struct archive, ArchiveReadFree> a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  int rc = hashing ? archive_read_open(a.get(), hashing, nullptr, &HashingReader::read, nullptr)
                   : archive_read_open_fd(a.get(), fd, 1 << 16);
  if (rc != ARCHIVE_OK) return nullptr;
  return a;
}

// Docker's rule: a local ADD source is unpacked when its content is a (compressed) tar.
bool is_tar_archive(int fd) {
  bool yes = false;
  {
    auto a = open_tar(fd);
    struct archive_entry* e = nullptr;
    if (a) {
      int rc = archive_read_next_header(a.get(), &e);
      yes = rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
    }
  }
  lseek(fd, 0, SEEK_SET);
  return yes;
}

// Unpacks the archive into dest (created, with missing parents, as mkdir_all does). Entry
// names are untrusted: "..", absolute names and writes through symlinks are refused by
// libarchive's SECURE flags, and we extract chdir'ed into dest. As BuildKit, each name is first
// resolved beneath dest as the tree stands (symlinks in its parents followed, and the last
// component too for a directory entry; absolute targets taken from dest): an archive's
// var/run/ lands in the run directory an existing var/run -> /run names instead of replacing
// the symlink. A symlink that leads above dest fails the copy.
// `hash`: the bytes of the file libarchive reads are hashed as they are read; the caller
// hashes the rest (hash_rest), so the digest covers the file even if unpacking stopped early.
Status extract_tar(int fd, const std::string& what, const std::string& dest, const Attrs& at,
                   Sha256* hash = nullptr) {
  OCIB_TRY(mkdir_all(dest, at));
  UniqueFd cwd(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (chdir(dest.c_str()) != 0) return Error::from_errno("chdir " + dest, errno);
  struct Back {
    int fd;
    ~Back() { (void)!fchdir(fd); }
  } back{cwd.get()};
  UniqueFd dest_fd(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dest_fd.valid()) return Error::from_errno("open " + dest, errno);
  std::unique_ptr<HashingReader> reader;
  if (hash) {
    reader = std::make_unique<HashingReader>();
    reader->fd = fd;
    reader->hash = hash;
  }
  auto a = open_tar(fd, reader.get());
  if (!a) return Error(Errc::kIo, "open archive " + what);
  std::unique_ptr<struct archive, ArchiveWriteFree> w(archive_write_disk_new());
  archive_write_disk_set_options(
      w.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                   ARCHIVE_EXTRACT_UNLINK | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                   ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return Error(Errc::kCorrupt, "reading archive " + what + ": " + archive_error_string(a.get()));
    // As moby: an entry that would land outside dest fails the copy (libarchive's SECURE
    // flags would only skip it).
    for (const char* n : {archive_entry_pathname(e), archive_entry_hardlink(e)}) {
      if (!n) continue;
      std::string name = n;
      if (("/" + name + "/").find("/../") != std::string::npos)
        return Error(Errc::kSecurity, "archive " + what + ": entry \"" + name + "\" is outside the destination");
    }
    // Absolute names are taken relative to dest, as moby does.
    if (const char* n = archive_entry_pathname(e); n && *n == '/') {
      std::string rel = n;
      rel.erase(0, rel.find_first_not_of('/'));
      archive_entry_copy_pathname(e, rel.empty() ? "." : rel.c_str());
    }
    if (const char* n = archive_entry_hardlink(e); n && *n == '/') {
      std::string rel = n;
      rel.erase(0, rel.find_first_not_of('/'));
      archive_entry_copy_hardlink(e, rel.c_str());
    }
    for (bool link : {false, true}) {
      const char* n = link ? archive_entry_hardlink(e) : archive_entry_pathname(e);
      if (!n) continue;
      bool escaped = false;
      bool dir = !link && archive_entry_filetype(e) == AE_IFDIR;
      OCIB_ASSIGN_OR_RETURN(std::string r, resolve_in_root(dest_fd.get(), n, dir, &escaped));
      if (escaped)
        return Error(Errc::kSecurity, "archive " + what + ": entry \"" + n + "\" leads outside the destination through a symlink");
      if (r != n) link ? archive_entry_copy_hardlink(e, r.c_str()) : archive_entry_copy_pathname(e, r.c_str());
    }
    if (at.uid) archive_entry_set_uid(e, *at.uid);
    if (at.gid) archive_entry_set_gid(e, *at.gid);
    rc = archive_read_extract2(a.get(), e, w.get());
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return Error(Errc::kIo, "extracting " + std::string(archive_entry_pathname(e)) + " from " + what +
                                  ": " + archive_error_string(a.get()));
  }
  return {};
}

Status apply_meta(const std::string& dst, const struct stat& st, const Attrs& a, bool is_link) {
  uid_t uid = a.uid.value_or(a.preserve_owner ? st.st_uid : 0);
  gid_t gid = a.gid.value_or(a.preserve_owner ? st.st_gid : 0);
  if (fs::step_lchown(dst, uid, gid) != 0) {
    // A kept owner the sandbox's user namespace does not map (shown as the overflow id, with
    // a single-id mapping) cannot be set: the file stays root's, as everything else there.
    if (errno != EINVAL || !a.preserve_owner || a.uid || lchown(dst.c_str(), 0, 0) != 0)
      return Error::from_errno("chown " + dst, errno);
  }
  if (!is_link) {
    mode_t mode = a.chmod ? a.chmod->apply(st.st_mode, S_ISDIR(st.st_mode)) : (st.st_mode & 07777);
    if (chmod(dst.c_str(), mode) != 0) return Error::from_errno("chmod " + dst, errno);
  }
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, dst.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::from_errno("utimes " + dst, errno);
  return {};
}

bool unsupported(int e) { return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP; }

// `hash`: the data is hashed as it is copied, so only read/write (the bytes hashed are the
// bytes written).
Status copy_file_data(int src_fd, int dst_fd, const std::string& what, CopyMethods& m, Sha256* hash = nullptr) {
  // In-kernel copies first (a reflink or a server-side copy where the filesystem has one;
  // else no trip through user memory), read/write last. Each starts where the previous one
  // stopped: only a call that copied nothing fails as unsupported.
  while (!hash && !m.no_copy_file_range) {
    ssize_t n = copy_file_range(src_fd, nullptr, dst_fd, nullptr, 1 << 30, 0);
    if (n == 0) return {};
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (!unsupported(errno)) return Error::from_errno("copy " + what, errno);
    if (errno == EXDEV) m.no_copy_file_range = true;  // cross-filesystem: it stays so
    break;
  }
  while (!hash && !m.no_sendfile) {
    ssize_t n = sendfile(dst_fd, src_fd, nullptr, 1 << 30);
    if (n == 0) return {};
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (!unsupported(errno)) return Error::from_errno("copy " + what, errno);
    m.no_sendfile = true;
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
    if (hash) hash->update(buf, static_cast<size_t>(n));
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
  if (excluded_by(a, rel, S_ISDIR(st.st_mode))) return {};
  if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) OCIB_TRY(expect_entry(a, rel, fingerprint(st, nullptr, 0)));
  if (S_ISDIR(st.st_mode)) {
    clear_dest(dst, true);
    if (mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) return Error::from_errno("mkdir " + dst, errno);
    UniqueFd dir(openat(parent_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Error::from_errno("open " + name, errno);
    OCIB_TRY(copy_dir_contents(dir.get(), rel, dst, a));
    if (a.pool) {
      a.dirs->emplace_back(dst, st);
      return {};
    }
    return apply_meta(dst, st, a, false);
  }
  clear_dest(dst, false);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(parent_fd, name.c_str(), target, sizeof target - 1);
    if (n < 0) return Error::from_errno("readlink " + name, errno);
    target[n] = 0;
    OCIB_TRY(expect_entry(a, rel, fingerprint(st, target, static_cast<size_t>(n))));
    if (symlink(target, dst.c_str()) != 0) return Error::from_errno("symlink " + dst, errno);
    return apply_meta(dst, st, a, true);
  }
  if (S_ISREG(st.st_mode)) {
    std::string fp = fingerprint(st, nullptr, 0);
    OCIB_ASSIGN_OR_RETURN(const std::string* want, expect_entry(a, rel, fp, true));
    UniqueFd in(openat(parent_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) return Error::from_errno("open " + name, errno);
    auto job = [in = std::make_shared<UniqueFd>(std::move(in)), dst, st, &a, want, fp, rel]() -> Status {
      UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return Error::from_errno("create " + dst, errno);
      std::optional<Sha256> hash;
      if (want) hash.emplace();
      OCIB_TRY(copy_file_data(in->get(), out.get(), dst, *a.methods, hash ? &*hash : nullptr));
      if (hash && *want != fp + hash->hex_final()) return context_changed(rel);
      out.reset();
      in->reset();
      return apply_meta(dst, st, a, false);
    };
    if (a.pool) return a.pool->add(std::move(job));
    return job();
  }
  // A socket becomes an empty regular file (BuildKit's context transfer sends it so); a fifo
  // stays a fifo; devices from a context are skipped.
  if (S_ISSOCK(st.st_mode)) {
    UniqueFd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return Error::from_errno("create " + dst, errno);
    out.reset();
    struct stat as_file = st;
    as_file.st_mode = (st.st_mode & 07777) | S_IFREG;
    return apply_meta(dst, as_file, a, false);
  }
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
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<std::string> hash_sources(int root_fd, const std::vector<std::string>& patterns,
                                 const SourceFilter& filter, SourceManifest* manifest) {
  std::vector<HashItem> items;
  std::vector<FileToHash> files;
  for (const auto& p : patterns) {
    OCIB_ASSIGN_OR_RETURN(auto matches, match_sources(root_fd, p, filter));
    // A wildcard may match nothing (BuildKit's AllowEmptyWildcard); a plain path must exist.
    if (matches.empty() && !has_glob(p)) return Error(Errc::kNotFound, "\"" + p + "\": not found");
    items.push_back({"pattern:" + p, 0, -1});
    for (const auto& match : matches) {
      OCIB_ASSIGN_OR_RETURN(std::string m, follow_source(root_fd, match));
      if (m == ".") {
        OCIB_TRY(hash_walk(root_fd, ".", ".", filter, items, files));
        continue;
      }
      UniqueFd parent(open_beneath(root_fd, fs::dirname(m), O_PATH | O_DIRECTORY));
      if (!parent.valid()) return Error::from_errno("open " + fs::dirname(m), errno);
      OCIB_TRY(hash_walk(parent.get(), fs::basename(m), m, filter, items, files));
    }
  }
  OCIB_TRY(digest_files(root_fd, files, filter.hashes.get(), filter.progress));
  Sha256 h;
  for (const auto& it : items) {
    h.update(it.bytes);
    if (it.file >= 0) h.update(files[static_cast<size_t>(it.file)].digest);
    if (manifest && it.rel_len > 0) {
      std::string fp = it.bytes.substr(it.rel_len);
      if (it.file >= 0) fp += files[static_cast<size_t>(it.file)].digest;
      manifest->entries[it.bytes.substr(0, it.rel_len - 1)] = std::move(fp);
    }
  }
  return h.hex_final();
}

namespace {

// BuildKit's prepareTargetDir, for one source (in order: each one sees what the ones before it
// left): dest (already resolved, no symlinks) and its missing parents are created as needed;
// a directory source is copied into dest itself, anything else into dest when dest is a
// directory now, else becomes dest. Several sources into a dest that is neither a directory
// nor written with a trailing '/' therefore replace one another, as in BuildKit, which does
// not refuse them.
Result<std::string> place(const std::string& dest, bool dir_syntax, bool src_is_dir, const std::string& name,
                          const Attrs& a) {
  OCIB_TRY(mkdir_all(dir_syntax ? dest : fs::dirname(dest), a));
  struct stat st;
  bool exists = stat(dest.c_str(), &st) == 0;
  bool is_dir = exists && S_ISDIR(st.st_mode);
  if (src_is_dir) {
    if (exists && !is_dir) return Error::invalid("cannot copy a directory to non-directory: " + dest);
    OCIB_TRY(mkdir_all(dest, a));
    return dest;
  }
  return is_dir ? fs::join(dest, name) : dest;
}

}  // namespace

Status copy_into(int src_root_fd, const CopyOp& op) {
  CopyMethods methods;
  Attrs a{op.uid, op.gid, op.chmod, &op.filter, op.preserve_owner, &op.exclude, {}, &methods};
  std::unordered_set<std::string> seen;
  if (op.expected) {
    a.expected = op.expected.get();
    a.seen = &seen;
  }
  std::vector<std::string> matches;
  std::vector<std::string> pivots;  // --parents: the part of each match's pattern kept out of dest
  for (const auto& p : op.sources) {
    OCIB_ASSIGN_OR_RETURN(auto m, match_sources(src_root_fd, p, op.filter));
    // A wildcard may match nothing (BuildKit's AllowEmptyWildcard); a plain path must exist.
    if (m.empty() && !has_glob(p)) return Error(Errc::kNotFound, "\"" + p + "\": not found");
    matches.insert(matches.end(), m.begin(), m.end());
    std::string pivot, q = p;
    while (q.rfind("./", 0) == 0 || q.rfind("/", 0) == 0) q.erase(0, q[0] == '/' ? 1 : 2);
    if (auto d = q.find("/./"); d != std::string::npos) pivot = fs::clean("/" + q.substr(0, d)).substr(1);
    pivots.insert(pivots.end(), m.size(), pivot);
  }
  bool dest_dir_syntax = !op.dest.empty() && op.dest.back() == '/';
  // The destination is resolved in the root as BuildKit's fs.RootPath does: symlinks on the
  // way (and a symlink dest itself) lead to what they name inside the image.
  std::string dest;
  if (op.dest.rfind("/proc/self/fd/", 0) == 0) {
    // A host directory handed in as a descriptor (an export's destination): not in the root.
    dest = fs::clean(op.dest);
  } else {
    UniqueFd root(open(fs::step_root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return Error::from_errno("open /", errno);
    OCIB_ASSIGN_OR_RETURN(std::string r, resolve_in_root(root.get(), fs::clean("/" + op.dest), true));
    dest = fs::in_step_root(r == "." ? "/" : "/" + r);
  }
  for (const auto& f : op.inline_files) {
    if (f.unpack) {
      // ADD --unpack=true <url>: an archive is extracted into dest as a local one would be.
      UniqueFd mem(memfd_create("ocib-add-unpack", MFD_CLOEXEC));
      if (!mem.valid()) return Error::from_errno("memfd_create", errno);
      if (write(mem.get(), f.content.data(), f.content.size()) != static_cast<ssize_t>(f.content.size()))
        return Error::from_errno("write " + f.name, errno);
      lseek(mem.get(), 0, SEEK_SET);
      if (is_tar_archive(mem.get())) {
        OCIB_TRY(extract_tar(mem.get(), f.name, dest, a));
        continue;
      }
    }
    // Heredoc sources: a file with the given content, placed like a regular source file.
    OCIB_ASSIGN_OR_RETURN(std::string target, place(dest, dest_dir_syntax, false, f.name, a));
    clear_dest(target, false);
    UniqueFd out(open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return Error::from_errno("create " + target, errno);
    if (write(out.get(), f.content.data(), f.content.size()) != static_cast<ssize_t>(f.content.size()))
      return Error::from_errno("write " + target, errno);
    out.reset();
    if (fs::step_lchown(target, op.uid.value_or(0), op.gid.value_or(0)) != 0)
      return Error::from_errno("chown " + target, errno);
    mode_t fmode = f.mode.value_or(0644);
    if (op.chmod) fmode = op.chmod->apply(fmode, false);
    if (chmod(target.c_str(), fmode) != 0) return Error::from_errno("chmod " + target, errno);
    if (f.mtime >= 0) {
      struct timespec ts[2] = {{f.mtime, 0}, {f.mtime, 0}};
      if (utimensat(AT_FDCWD, target.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::from_errno("utimes " + target, errno);
    }
  }
  for (size_t mi = 0; mi < matches.size(); ++mi) {
    const std::string& match = matches[mi];
    // A symlink source is copied as what it points to, under its own name (BuildKit's
    // FollowSymlinks); `m` is the path read, `match` the name it was matched by.
    OCIB_ASSIGN_OR_RETURN(std::string m, follow_source(src_root_fd, match));
    UniqueFd parent(open_beneath(src_root_fd, m == "." ? "." : fs::dirname(m), O_PATH | O_DIRECTORY));
    if (!parent.valid()) return Error::from_errno("open source " + m, errno);
    std::string name = m == "." ? "." : fs::basename(m);
    struct stat st;
    if (fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::from_errno("stat source " + m, errno);
    // --parents: the match keeps its path (below the pattern's pivot) under dest.
    std::string kept;
    if (op.parents && match != ".") {
      const std::string& pv = pivots[mi];
      if (!pv.empty() && has_glob(pv) && pv.find("**") == std::string::npos) {
        // A wildcard before the pivot (BuildKit: the part before "/./" is the source, matched
        // like any wildcard source): it matched as many components as it has.
        size_t n = static_cast<size_t>(std::count(pv.begin(), pv.end(), '/')) + 1, pos = 0;
        for (size_t c = 0; c < n && pos != std::string::npos; ++c) pos = match.find('/', pos + (c ? 1 : 0));
        kept = pos == std::string::npos ? "" : match.substr(pos + 1);
      } else {
        kept = pv.empty() ? match
               : match.compare(0, pv.size() + 1, pv + "/") == 0 ? match.substr(pv.size() + 1)
               : match == pv ? "" : match;
      }
    }
    if (S_ISDIR(st.st_mode)) {
      // A directory source copies its contents into dest (its own metadata is not copied).
      if (a.seen) a.seen->insert(m);
      std::string d;
      if (kept.empty()) {
        OCIB_ASSIGN_OR_RETURN(d, place(dest, dest_dir_syntax, true, name, a));
      } else {
        d = fs::join(dest, kept);
        OCIB_TRY(mkdir_all(d, a));
      }
      UniqueFd dir(openat(parent.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) return Error::from_errno("open source " + m, errno);
      a.base = m;
      std::vector<std::pair<std::string, struct stat>> dirs;
      FilePool pool(std::max(1u, std::thread::hardware_concurrency()));
      a.pool = &pool;
      a.dirs = &dirs;
      Status walked = copy_dir_contents(dir.get(), m, d, a);
      Status copied = pool.drain();
      a.pool = nullptr;
      a.dirs = nullptr;
      OCIB_TRY(walked);
      OCIB_TRY(copied);
      for (const auto& [path, dst_st] : dirs) OCIB_TRY(apply_meta(path, dst_st, a, false));
      continue;
    }
    a.base = match.find('/') == std::string::npos ? "" : fs::dirname(match);
    if (excluded_by(a, match, false)) continue;
    if (op.extract_archives && S_ISREG(st.st_mode)) {
      UniqueFd in(openat(parent.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in.valid()) return Error::from_errno("open source " + m, errno);
      if (is_tar_archive(in.get())) {
        std::string fp = fingerprint(st, nullptr, 0);
        OCIB_ASSIGN_OR_RETURN(const std::string* want, expect_entry(a, m, fp, true));
        std::optional<Sha256> hash;
        if (want) hash.emplace();
        Status unpacked = extract_tar(in.get(), m, dest, a, hash ? &*hash : nullptr);
        if (want) {
          OCIB_TRY(hash_rest(in.get(), *hash, m));
          // A changed archive can fail to unpack: name the change rather than the damage.
          if (*want != fp + hash->hex_final()) return context_changed(m);
        }
        OCIB_TRY(unpacked);
        continue;
      }
    }
    std::string target;
    if (!kept.empty()) {
      target = fs::join(dest, kept);
      OCIB_TRY(mkdir_all(fs::dirname(target), a));
    } else {
      OCIB_ASSIGN_OR_RETURN(target, place(dest, dest_dir_syntax, false, fs::basename(match), a));
    }
    OCIB_TRY(copy_entry(parent.get(), name, m, target, a));
  }
  if (a.expected) {
    // A path the key saw and the copy did not: left out by a filter (it is still there), or
    // gone since, and then the result lacks what the key names.
    for (const auto& [rel, fp] : a.expected->entries) {
      if (seen.count(rel)) continue;
      struct stat st;
      if (lstat_beneath(src_root_fd, rel, &st) != 0) return context_changed(rel);
    }
  }
  return {};
}

Status make_workdir(const std::string& dir, uint32_t uid, uint32_t gid) {
  // Symlinks on the way resolve inside the step's root (where it is not the process's "/").
  UniqueFd root(open(fs::step_root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Error::from_errno("open /", errno);
  OCIB_ASSIGN_OR_RETURN(std::string resolved, resolve_in_root(root.get(), fs::clean("/" + dir), true));
  std::string cur = fs::step_root() == "/" ? "" : fs::step_root();
  for (const auto& part : split_path(resolved)) {
    cur += "/" + part;
    struct stat st;
    if (stat(cur.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Error::invalid("WORKDIR: " + cur + " is not a directory");
      continue;
    }
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return Error::from_errno("mkdir " + cur, errno);
    if (fs::step_lchown(cur, uid, gid) != 0) return Error::from_errno("chown " + cur, errno);
  }
  return {};
}

}  // namespace ocib::copy
