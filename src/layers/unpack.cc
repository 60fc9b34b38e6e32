#include "layers/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

#include "base/fd.h"
#include "base/log.h"
#include "base/sha256.h"

namespace ocib::layers {
namespace {

constexpr int64_t kMaxFileSize = int64_t{64} << 30;
constexpr size_t kMaxNameLen = 4096;
constexpr size_t kMaxComponentLen = 255;
constexpr size_t kBufSize = 1 << 17;
constexpr unsigned char kXzMagic[] = {0xfd, '7', 'z', 'X', 'Z', 0};

// A per-entry refusal: recorded in UnpackStats::refused, the unpack goes on.
Error refuse(std::string why) { return Error(Errc::kSecurity, std::move(why)); }

// Errors caused by what the tar contains (a name that does not resolve, a type clash) refuse the
// entry; anything else (ENOSPC, EIO) fails the unpack.
Error sys_error(const std::string& what, int err) {
  switch (err) {
    case ELOOP:
    case ENOTDIR:
    case ENOENT:
    case EXDEV:
    case ENAMETOOLONG:
    case EEXIST:
    case EISDIR:
    case EPERM:
    case EACCES:
    case EINVAL:
    case EMLINK:
      return refuse(what + ": " + std::strerror(err));
    default:
      return Error::from_errno(what, err);
  }
}

// ---- decompression: we decode ourselves so the diff_id hashes exactly the bytes the tar reader
// parses, in the same single pass.

class Source {
 public:
  enum class Kind { kPlain, kGzip, kZstd };

  ~Source() {
    if (kind_ == Kind::kGzip) inflateEnd(&z_);
    if (zd_ != nullptr) ZSTD_freeDStream(zd_);
  }

  static Result<std::unique_ptr<Source>> open(const std::string& path) {
    auto s = std::make_unique<Source>();
    s->fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!s->fd_.valid()) return Error::from_errno("open " + path, errno);
    s->in_.resize(kBufSize);
    OCIB_TRY(s->fill());
    const auto* m = reinterpret_cast<const unsigned char*>(s->in_.data());
    size_t n = s->in_len_;
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
      s->kind_ = Kind::kGzip;
      if (inflateInit2(&s->z_, 15 + 16) != Z_OK) return Error(Errc::kGeneric, "inflateInit failed");
    } else if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
      s->kind_ = Kind::kZstd;
      s->zd_ = ZSTD_createDStream();
      if (s->zd_ == nullptr) return Error(Errc::kGeneric, "ZSTD_createDStream failed");
    } else if ((n >= 6 && std::memcmp(m, kXzMagic, 6) == 0) ||
               (n >= 3 && std::memcmp(m, "BZh", 3) == 0)) {
      return Error(Errc::kUnsupported, path + ": xz/bzip2 layers are not OCI media types");
    }
    return s;
  }

  /// Up to `cap` uncompressed bytes into `out`; 0 at the end of the stream.
  Result<size_t> read(char* out, size_t cap) {
    switch (kind_) {
      case Kind::kPlain: {
        if (in_pos_ == in_len_) OCIB_TRY(fill());
        size_t n = std::min(cap, in_len_ - in_pos_);
        std::memcpy(out, in_.data() + in_pos_, n);
        in_pos_ += n;
        return n;
      }
      case Kind::kGzip:
        return read_gzip(out, cap);
      case Kind::kZstd:
        return read_zstd(out, cap);
    }
    return size_t{0};
  }

 private:
  Status fill() {
    in_pos_ = in_len_ = 0;
    if (eof_) return {};
    for (;;) {
      ssize_t n = ::read(fd_.get(), in_.data(), in_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("read layer", errno);
      if (n == 0) eof_ = true;
      in_len_ = static_cast<size_t>(n);
      return {};
    }
  }

  Result<size_t> read_gzip(char* out, size_t cap) {
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(cap);
    while (z_.avail_out == cap) {
      if (in_pos_ == in_len_) {
        OCIB_TRY(fill());
        if (in_len_ == 0) {
          if (member_started_) return Error(Errc::kCorrupt, "truncated gzip stream");
          break;
        }
      }
      z_.next_in = reinterpret_cast<Bytef*>(in_.data() + in_pos_);
      z_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      member_started_ = true;
      int rc = inflate(&z_, Z_NO_FLUSH);
      in_pos_ = in_len_ - z_.avail_in;
      if (rc == Z_STREAM_END) {
        member_started_ = false;  // a following member (concatenated gzip) starts afresh
        inflateReset(&z_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Error(Errc::kCorrupt, std::string("gzip: ") + (z_.msg ? z_.msg : "data error"));
      }
    }
    return cap - z_.avail_out;
  }

  Result<size_t> read_zstd(char* out, size_t cap) {
    ZSTD_outBuffer ob{out, cap, 0};
    while (ob.pos == 0) {
      if (in_pos_ == in_len_) {
        OCIB_TRY(fill());
        if (in_len_ == 0) {
          if (zstd_pending_ != 0) return Error(Errc::kCorrupt, "truncated zstd stream");
          break;
        }
      }
      ZSTD_inBuffer ib{in_.data(), in_len_, in_pos_};
      size_t rc = ZSTD_decompressStream(zd_, &ob, &ib);
      in_pos_ = ib.pos;
      if (ZSTD_isError(rc)) {
        return Error(Errc::kCorrupt, std::string("zstd: ") + ZSTD_getErrorName(rc));
      }
      zstd_pending_ = rc;
    }
    return ob.pos;
  }

  UniqueFd fd_;
  Kind kind_ = Kind::kPlain;
  std::vector<char> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool eof_ = false;
  z_stream z_{};
  bool member_started_ = false;
  ZSTD_DStream* zd_ = nullptr;
  size_t zstd_pending_ = 0;
};

struct ReadCtx {
  Source* src = nullptr;
  Sha256 hash;
  std::vector<char> buf = std::vector<char>(kBufSize);
  std::optional<Error> error;
};

la_ssize_t read_cb(struct archive* a, void* client, const void** buf) {
  auto* ctx = static_cast<ReadCtx*>(client);
  auto n = ctx->src->read(ctx->buf.data(), ctx->buf.size());
  if (!n.ok()) {
    ctx->error = n.error();
    archive_set_error(a, EIO, "%s", n.error().str().c_str());
    return -1;
  }
  ctx->hash.update(ctx->buf.data(), *n);
  *buf = ctx->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// ---- path handling

// Splits a tar name into components: leading '/' dropped (as Docker does), "" and "." skipped,
// ".." refused rather than resolved, so a name means the same thing whatever already exists.
Result<std::vector<std::string>> split_name(std::string_view name) {
  if (name.size() > kMaxNameLen) return refuse("name longer than " + std::to_string(kMaxNameLen));
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view c = name.substr(i, j - i);
    if (c == "..") return refuse("'..' component");
    if (c.size() > kMaxComponentLen) return refuse("component longer than 255 bytes");
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

std::string join_comps(const std::vector<std::string>& c, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += c[i];
  }
  return s;
}

// Names in notes are capped: a hostile 4 KiB name should not flood logs.
std::string short_name(const std::string& name) {
  return name.size() <= 160 ? name : name.substr(0, 160) + "...";
}

void add_refused(UnpackStats& stats, const std::string& path, const std::string& why) {
  ++stats.refused_total;
  if (stats.refused.size() < kMaxRefusedListed) stats.refused.push_back(short_name(path) + ": " + why);
}

int openat2_fd(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

// Removes `name` beneath `dirfd`, recursing into directories without following symlinks.
Status remove_at(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Status{} : sys_error("stat " + name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0) return sys_error("unlink " + name, errno);
    return {};
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return sys_error("open " + name, errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return Error::from_errno("fdopendir", errno);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  for (const auto& n : names) OCIB_TRY(remove_at(::dirfd(d), n));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) return sys_error("rmdir " + name, errno);
  return {};
}

bool is_reserved_xattr(std::string_view name) {
  return name.starts_with("user.overlay.") || name.starts_with("trusted.overlay.") ||
         name.starts_with("user.ocib.");
}

struct DirMeta {
  std::vector<std::string> comps;
  mode_t mode = 0755;
  struct timespec mtime {};
  bool has_mtime = false;
};

class Unpacker {
 public:
  Unpacker(int root, const UnpackOptions& opts, UnpackStats& stats)
      : root_(root), opts_(opts), stats_(stats), privileged_(::geteuid() == 0) {}

  Status entry(struct archive* a, struct archive_entry* e);
  void finish_dirs();

 private:
  Result<UniqueFd> open_dir(const std::vector<std::string>& comps, size_t n, bool create);
  Status clear_leaf(int pfd, const std::string& leaf, bool keep_dir, bool* is_dir);
  Status whiteout(const std::vector<std::string>& comps);
  Status regular(struct archive* a, struct archive_entry* e, int pfd, const std::string& leaf);
  Status directory(struct archive_entry* e, const std::vector<std::string>& comps, int pfd);
  Status hardlink(struct archive_entry* e, const std::vector<std::string>& comps, int pfd);
  Status special(struct archive_entry* e, int pfd, const std::string& leaf, mode_t type);
  void set_owner_fd(int fd, struct archive_entry* e);
  void set_owner_at(int pfd, const std::string& leaf, struct archive_entry* e);
  void set_xattrs(int fd, struct archive_entry* e);
  void note(const std::string& path, const std::string& why) { add_refused(stats_, path, why); }

  int root_;
  const UnpackOptions& opts_;
  UnpackStats& stats_;
  bool privileged_;   // euid 0: chown and mknod; cleared when chown turns out not to work
  std::string path_;  // the current entry's cleaned name, for notes
  std::vector<DirMeta> dirs_;
  std::map<std::string, size_t> dir_index_;
};

// Opens the first n components as a directory, creating missing ones when asked.
Result<UniqueFd> Unpacker::open_dir(const std::vector<std::string>& comps, size_t n, bool create) {
  UniqueFd cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return Error::from_errno("dup", errno);
  for (size_t i = 0; i < n; ++i) {
    const char* c = comps[i].c_str();
    // Untrusted names: RESOLVE_BENEATH + NO_SYMLINKS makes a symlink planted by an earlier entry
    // (a -> /etc, then a/passwd) an error instead of a way out of dest.
    constexpr uint64_t kResolve =
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = openat2_fd(cur.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolve);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c, 0755) != 0 && errno != EEXIST) {
        return sys_error("mkdir " + join_comps(comps, i + 1), errno);
      }
      fd = openat2_fd(cur.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolve);
    }
    if (fd < 0) {
      int err = errno;
      if (err == ELOOP || err == ENOTDIR) {
        struct stat st;
        bool link = ::fstatat(cur.get(), c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        return refuse("parent " + join_comps(comps, i + 1) +
                      (link ? " is a symlink (not followed)" : " is not a directory"));
      }
      return sys_error("open " + join_comps(comps, i + 1), err);
    }
    cur.reset(fd);
  }
  return cur;
}

// Makes room for a new entry named `leaf`: a later entry replaces an earlier one (Docker
// semantics), except that a directory over a directory merges.
Status Unpacker::clear_leaf(int pfd, const std::string& leaf, bool keep_dir, bool* is_dir) {
  struct stat st;
  if (is_dir) *is_dir = false;
  if (::fstatat(pfd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Status{} : sys_error("stat " + leaf, errno);
  }
  if (keep_dir && S_ISDIR(st.st_mode)) {
    if (is_dir) *is_dir = true;
    return {};
  }
  return remove_at(pfd, leaf);
}

void Unpacker::set_owner_fd(int fd, struct archive_entry* e) {
  auto uid = static_cast<uint32_t>(archive_entry_uid(e));
  auto gid = static_cast<uint32_t>(archive_entry_gid(e));
  if (privileged_) {
    auto hu = opts_.ids ? opts_.ids->container_to_host_uid(uid) : std::optional<uint32_t>(uid);
    auto hg = opts_.ids ? opts_.ids->container_to_host_gid(gid) : std::optional<uint32_t>(gid);
    if (!hu || !hg) {
      note(path_, "owner " + std::to_string(uid) + ":" + std::to_string(gid) + " unmapped");
      return;
    }
    if (::fchown(fd, *hu, *hg) == 0) return;
    int err = errno;
    if (err != EINVAL && err != EPERM) {
      note(path_, std::string("chown: ") + std::strerror(err));
      return;
    }
    // Root in a user namespace without these ids: record owners like an unprivileged caller.
    privileged_ = false;
    note(path_, "chown not permitted; owners recorded in " + std::string(kOwnerXattr));
  }
  if (uid == 0 && gid == 0) return;
  std::string v = std::to_string(uid) + ":" + std::to_string(gid);
  if (::fsetxattr(fd, kOwnerXattr, v.data(), v.size(), 0) != 0) {
    note(path_, std::string("cannot record owner: ") + std::strerror(errno));
  }
}

// For symlinks, fifos and devices: chown when root; unprivileged, the owner is lost (user.*
// xattrs are only allowed on regular files and directories).
void Unpacker::set_owner_at(int pfd, const std::string& leaf, struct archive_entry* e) {
  if (!privileged_) return;
  auto uid = static_cast<uint32_t>(archive_entry_uid(e));
  auto gid = static_cast<uint32_t>(archive_entry_gid(e));
  auto hu = opts_.ids ? opts_.ids->container_to_host_uid(uid) : std::optional<uint32_t>(uid);
  auto hg = opts_.ids ? opts_.ids->container_to_host_gid(gid) : std::optional<uint32_t>(gid);
  if (!hu || !hg) {
    note(path_, "owner " + std::to_string(uid) + ":" + std::to_string(gid) + " unmapped");
    return;
  }
  if (::fchownat(pfd, leaf.c_str(), *hu, *hg, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (err == EINVAL || err == EPERM) privileged_ = false;
    note(path_, std::string("chown: ") + std::strerror(err));
  }
}

void Unpacker::set_xattrs(int fd, struct archive_entry* e) {
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  std::vector<std::string> seen;  // pax may carry each xattr twice (LIBARCHIVE. and SCHILY.)
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n(name);
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.emplace_back(n);
    if (is_reserved_xattr(n)) {
      note(path_, "xattr " + std::string(n) + " dropped (reserved)");
      continue;
    }
    if (::fsetxattr(fd, name, value, size, 0) == 0) continue;
    int err = errno;
    // trusted.* / security.* need privileges we may not have: trying is enough.
    bool privileged_ns = n.starts_with("trusted.") || n.starts_with("security.");
    if (privileged_ns && (err == EPERM || err == EACCES || err == ENOTSUP)) continue;
    note(path_, "xattr " + std::string(n) + ": " + std::strerror(err));
  }
}

void set_mtime_fd(int fd, struct archive_entry* e) {
  if (!archive_entry_mtime_is_set(e)) return;
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
  ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  (void)::futimens(fd, ts);
}

void set_mtime_at(int pfd, const std::string& leaf, struct archive_entry* e) {
  if (!archive_entry_mtime_is_set(e)) return;
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
  ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  (void)::utimensat(pfd, leaf.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

Status Unpacker::whiteout(const std::vector<std::string>& comps) {
  const std::string& leaf = comps.back();
  size_t nparent = comps.size() - 1;
  if (leaf == ".wh..wh..opq") {
    if (nparent == 0) return refuse("opaque marker in the root");
    OCIB_ASSIGN_OR_RETURN(UniqueFd dir, open_dir(comps, nparent, /*create=*/true));
    if (::fsetxattr(dir.get(), "user.overlay.opaque", "y", 1, 0) != 0) {
      // Without the marker lower layers would show through: fail rather than mis-unpack.
      return Error::from_errno("set user.overlay.opaque on " + join_comps(comps, nparent), errno);
    }
    return {};
  }
  if (leaf.starts_with(".wh..wh.")) return refuse("aufs metadata ignored");
  std::string name = leaf.substr(4);
  if (name.empty() || name == "." || name == "..") return refuse("whiteout of '" + name + "'");
  OCIB_ASSIGN_OR_RETURN(UniqueFd dir, open_dir(comps, nparent, /*create=*/true));
  OCIB_TRY(clear_leaf(dir.get(), name, false, nullptr));
  if (::mknodat(dir.get(), name.c_str(), S_IFCHR, makedev(0, 0)) == 0) return {};
  int err = errno;
  if (err != EPERM) return sys_error("mknod whiteout " + name, err);
  // Fallback (see kWhiteoutXattr): an empty file marked as a whiteout.
  int fd =
      ::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) return sys_error("create whiteout " + name, errno);
  UniqueFd f(fd);
  if (::fsetxattr(fd, kWhiteoutXattr, "y", 1, 0) != 0) {
    return Error::from_errno("set " + std::string(kWhiteoutXattr), errno);
  }
  note(path_, "whiteout stored as an xattr (mknod 0:0 not permitted)");
  return {};
}

Status Unpacker::regular(struct archive* a, struct archive_entry* e, int pfd,
                         const std::string& leaf) {
  OCIB_TRY(clear_leaf(pfd, leaf, false, nullptr));
  // O_EXCL|O_NOFOLLOW: the name was just cleared, so nothing pre-existing is ever written to.
  int raw = ::openat(pfd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return sys_error("create " + leaf, errno);
  UniqueFd fd(raw);
  const void* buf;
  size_t size;
  la_int64_t offset;
  for (;;) {
    int rc = archive_read_data_block(a, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      return Error(Errc::kCorrupt, path_ + ": " + archive_error_string(a));
    }
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t n = ::pwrite(fd.get(), p, size, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("write " + path_, errno);
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
      stats_.bytes += static_cast<uint64_t>(n);
    }
  }
  // Sparse files may end in a hole.
  if (archive_entry_size_is_set(e) && ::ftruncate(fd.get(), archive_entry_size(e)) != 0) {
    return Error::from_errno("truncate " + path_, errno);
  }
  set_owner_fd(fd.get(), e);
  set_xattrs(fd.get(), e);
  // After chown, which clears setuid/setgid.
  if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0) {
    return Error::from_errno("chmod " + path_, errno);
  }
  set_mtime_fd(fd.get(), e);
  return {};
}

Status Unpacker::directory(struct archive_entry* e, const std::vector<std::string>& comps,
                           int pfd) {
  const std::string& leaf = comps.back();
  bool exists = false;
  OCIB_TRY(clear_leaf(pfd, leaf, true, &exists));
  mode_t perm = archive_entry_perm(e) & 07777;
  // Owner rwx while unpacking so children can be created; the real mode is applied at the end.
  if (!exists && ::mkdirat(pfd, leaf.c_str(), 0700) != 0) return sys_error("mkdir " + leaf, errno);
  int raw = openat2_fd(pfd, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
  if (raw < 0) return sys_error("open " + leaf, errno);
  UniqueFd fd(raw);
  (void)::fchmod(fd.get(), 0700 | (perm & 0777));
  set_owner_fd(fd.get(), e);
  set_xattrs(fd.get(), e);
  DirMeta m;
  m.comps = comps;
  m.mode = perm;
  if (archive_entry_mtime_is_set(e)) {
    m.has_mtime = true;
    m.mtime.tv_sec = archive_entry_mtime(e);
    m.mtime.tv_nsec = archive_entry_mtime_nsec(e);
  }
  auto [it, inserted] = dir_index_.emplace(path_, dirs_.size());
  if (inserted) {
    dirs_.push_back(std::move(m));
  } else {
    dirs_[it->second] = std::move(m);
  }
  return {};
}

Status Unpacker::hardlink(struct archive_entry* e, const std::vector<std::string>& comps, int pfd) {
  auto target = split_name(archive_entry_hardlink(e));
  if (!target.ok()) return refuse("hardlink target: " + target.error().message());
  const auto& tc = *target;
  if (tc.empty()) return refuse("hardlink to the root");
  if (tc == comps) return {};  // a link to itself: nothing to do
  // The target must already exist inside dest; resolving it like any other name means it can
  // neither be outside nor reached through a symlink. linkat without AT_SYMLINK_FOLLOW links a
  // symlink itself, never what it points to.
  OCIB_ASSIGN_OR_RETURN(UniqueFd tdir, open_dir(tc, tc.size() - 1, /*create=*/false));
  struct stat st;
  if (::fstatat(tdir.get(), tc.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys_error("hardlink target " + join_comps(tc, tc.size()), errno);
  }
  if (S_ISDIR(st.st_mode)) return refuse("hardlink to a directory");
  const std::string& leaf = comps.back();
  OCIB_TRY(clear_leaf(pfd, leaf, false, nullptr));
  if (::linkat(tdir.get(), tc.back().c_str(), pfd, leaf.c_str(), 0) != 0) {
    return sys_error("link " + path_, errno);
  }
  return {};
}

Status Unpacker::special(struct archive_entry* e, int pfd, const std::string& leaf, mode_t type) {
  mode_t perm = archive_entry_perm(e) & 07777;
  if (type == AE_IFSOCK) return refuse("socket skipped");
  bool whiteout_dev = type == AE_IFCHR && archive_entry_rdevmajor(e) == 0 &&
                      archive_entry_rdevminor(e) == 0;  // allowed unprivileged since Linux 5.8
  if ((type == AE_IFCHR || type == AE_IFBLK) && !privileged_ && !whiteout_dev) {
    return refuse("device node skipped (not root)");
  }
  OCIB_TRY(clear_leaf(pfd, leaf, false, nullptr));
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr || *target == '\0') return refuse("symlink without a target");
    // The target is stored as data; it is never followed while unpacking.
    if (::symlinkat(target, pfd, leaf.c_str()) != 0) return sys_error("symlink " + path_, errno);
  } else if (type == AE_IFIFO) {
    if (::mkfifoat(pfd, leaf.c_str(), 0600) != 0) return sys_error("mkfifo " + path_, errno);
  } else {
    dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (::mknodat(pfd, leaf.c_str(), type | 0600, dev) != 0) {
      if (errno == EPERM) return refuse("device node: mknod not permitted");
      return sys_error("mknod " + path_, errno);
    }
  }
  set_owner_at(pfd, leaf, e);
  if (type != AE_IFLNK) {
    if (::fchmodat(pfd, leaf.c_str(), perm, AT_SYMLINK_NOFOLLOW) != 0) {
      // glibc needs /proc for the NOFOLLOW variant; the leaf was just created by us and is not
      // a symlink, so the plain call is equivalent.
      if (::fchmodat(pfd, leaf.c_str(), perm, 0) != 0) return sys_error("chmod " + path_, errno);
    }
  }
  set_mtime_at(pfd, leaf, e);
  return {};
}

Status Unpacker::entry(struct archive* a, struct archive_entry* e) {
  const char* raw_name = archive_entry_pathname(e);
  path_ = raw_name ? raw_name : "";
  if (raw_name == nullptr) return refuse("unreadable name");
  OCIB_ASSIGN_OR_RETURN(auto comps, split_name(path_));
  mode_t type = archive_entry_filetype(e);
  bool is_link = archive_entry_hardlink(e) != nullptr;
  if (comps.empty()) {
    if (type == AE_IFDIR && !is_link) return {};  // "./": dest's own metadata is the caller's
    return refuse("entry replaces the root");
  }
  path_ = join_comps(comps, comps.size());
  if (comps.back().starts_with(".wh.")) return whiteout(comps);
  OCIB_ASSIGN_OR_RETURN(UniqueFd parent, open_dir(comps, comps.size() - 1, /*create=*/true));
  if (is_link) return hardlink(e, comps, parent.get());
  switch (type) {
    case AE_IFREG:
      return regular(a, e, parent.get(), comps.back());
    case AE_IFDIR:
      return directory(e, comps, parent.get());
    case AE_IFLNK:
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFSOCK:
      return special(e, parent.get(), comps.back(), type);
    default:
      return refuse("unknown entry type " + std::to_string(type));
  }
}

// Directory modes and mtimes last: children change the mtime, and a read-only mode would block
// them. Deepest first, so a parent's mode never blocks reaching a child.
void Unpacker::finish_dirs() {
  std::vector<const DirMeta*> order;
  for (const auto& d : dirs_) order.push_back(&d);
  std::stable_sort(order.begin(), order.end(), [](const DirMeta* x, const DirMeta* y) {
    return x->comps.size() > y->comps.size();
  });
  for (const DirMeta* d : order) {
    auto parent = open_dir(d->comps, d->comps.size() - 1, false);
    if (!parent.ok()) continue;  // replaced by a later entry
    int raw =
        openat2_fd(parent->get(), d->comps.back().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
    if (raw < 0) continue;
    UniqueFd fd(raw);
    (void)::fchmod(fd.get(), d->mode);
    if (d->has_mtime) {
      struct timespec ts[2] = {d->mtime, d->mtime};
      (void)::futimens(fd.get(), ts);
    }
  }
}

}  // namespace

std::string refused_summary(const UnpackStats& stats, const std::string& layer, size_t shown) {
  uint64_t total = std::max<uint64_t>(stats.refused_total, stats.refused.size());
  if (total == 0) return "";
  std::string out = "layer " + layer + ": " + std::to_string(total) +
                    (total == 1 ? " entry" : " entries") + " refused or changed: ";
  size_t n = std::min(shown, stats.refused.size());
  for (size_t i = 0; i < n; ++i) out += (i ? "; " : "") + log::printable(stats.refused[i], 240);
  if (total > n) out += "; and " + std::to_string(total - n) + " more";
  return out;
}

Result<UnpackStats> unpack_layer(const std::string& blob_path, const std::string& dest,
                                 const UnpackOptions& opts) {
  OCIB_ASSIGN_OR_RETURN(auto src, Source::open(blob_path));
  UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Error::from_errno("open " + dest, errno);

  UnpackStats stats;
  ReadCtx ctx;
  ctx.src = src.get();
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  if (!a) return Error(Errc::kGeneric, "archive_read_new failed");
  // Decompression happened in Source; tar covers ustar, pax and GNU.
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &ctx, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
    if (ctx.error) return std::move(*ctx.error).wrap("unpack " + blob_path);
    return Error(Errc::kCorrupt, blob_path + ": not a tar: " + archive_error_string(a.get()));
  }
  Unpacker u(root.get(), opts, stats);
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      if (ctx.error) return std::move(*ctx.error).wrap("unpack " + blob_path);
      return Error(Errc::kCorrupt, blob_path + ": bad tar: " + archive_error_string(a.get()));
    }
    ++stats.entries;
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > kMaxFileSize) {
      const char* n = archive_entry_pathname(e);
      return Error(Errc::kSecurity, std::string(n ? n : "?") + ": declared size " +
                                        std::to_string(archive_entry_size(e)) + " exceeds 64 GiB")
          .wrap("unpack " + blob_path);
    }
    Status s = u.entry(a.get(), e);
    if (!s.ok()) {
      if (ctx.error) return std::move(*ctx.error).wrap("unpack " + blob_path);
      const char* n = archive_entry_pathname(e);
      if (s.error().code() != Errc::kSecurity)
        return std::move(s).error().wrap("unpack " + blob_path);
      add_refused(stats, n ? n : "?", s.error().message());
    }
  }
  // The tar reader stops at the end-of-archive blocks; the diff_id covers every byte.
  for (;;) {
    auto n = src->read(ctx.buf.data(), ctx.buf.size());
    if (!n.ok()) return std::move(n).error().wrap("unpack " + blob_path);
    if (*n == 0) break;
    ctx.hash.update(ctx.buf.data(), *n);
  }
  u.finish_dirs();
  stats.diff_id = "sha256:" + ctx.hash.hex_final();
  if (opts.verify_diff_id && !opts.expected_diff_id.empty() &&
      opts.expected_diff_id != stats.diff_id) {
    return Error(Errc::kCorrupt, "diff_id mismatch for " + blob_path + ": expected " +
                                     opts.expected_diff_id + ", actual " + stats.diff_id);
  }
  return stats;
}

}  // namespace ocib::layers
