#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "base/cancel.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "layers/layers.h"
#include "layers/pgzip.h"
#include "oci/image.h"

namespace ocib::layers {

namespace {

constexpr size_t kOutBuf = 1 << 20;       // compressed bytes are written in chunks of this size
constexpr size_t kReadChunk = 128 << 10;  // files are read in chunks of this size

// --- output: buffered file writer that also hashes the compressed bytes ---------------------

// Hashing and writing the compressed bytes run on a thread of their own, overlapped with
// reading, tarring and compressing: for zstd, whose workers are fast, the packing thread was
// the bottleneck and spent a third of its time in write(2) and sha256 of the output.
class Output {
 public:
  explicit Output(int fd) : fd_(fd) {
    cur_.reserve(kOutBuf);
    writer_ = std::thread([this] { run(); });
  }
  ~Output() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    writer_.join();
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  Status write(const void* data, size_t n) {
    size_ += static_cast<int64_t>(n);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      size_t take = std::min(n, kOutBuf - cur_.size());
      cur_.insert(cur_.end(), p, p + take);
      p += take;
      n -= take;
      if (cur_.size() == kOutBuf) OCIB_TRY(hand_off());
    }
    return {};
  }

  /// Waits until everything handed over is hashed and written.
  Status flush() {
    if (!cur_.empty()) OCIB_TRY(hand_off());
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.empty() || !status_.ok(); });
    return status_;
  }

  /// After flush().
  std::string digest() { return "sha256:" + digest_.hex_final(); }
  int64_t size() const { return size_; }

 private:
  static constexpr size_t kQueued = 2;  // full buffers waiting for the writer, at most

  Status hand_off() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.size() < kQueued || !status_.ok(); });
    if (!status_.ok()) return status_;
    queue_.push_back(std::move(cur_));
    cur_ = std::move(spare_);
    spare_ = {};
    cur_.clear();
    cur_.reserve(kOutBuf);
    cv_.notify_all();
    return {};
  }

  void run() {
    for (;;) {
      std::vector<char>* buf;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty() || !status_.ok()) return;
        buf = &queue_.front();  // stays put: only this thread pops
      }
      digest_.update(buf->data(), buf->size());
      Status st = write_all(buf->data(), buf->size());
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!st.ok()) status_ = std::move(st);
        spare_ = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_.notify_all();
    }
  }

  Status write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Error::from_errno("write layer", errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return {};
  }

  int fd_;
  std::vector<char> cur_;    // being filled by the packing thread
  std::vector<char> spare_;  // a written buffer, for reuse
  std::deque<std::vector<char>> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Status status_;  // the writer's first error
  Sha256 digest_;  // written by the writer thread only, read after flush()
  int64_t size_ = 0;
  std::thread writer_;
};

// --- compressors ------------------------------------------------------------------------------

class Compressor {
 public:
  virtual ~Compressor() = default;
  virtual Status write(const void* data, size_t n) = 0;
  virtual Status finish() = 0;
};

class NoCompressor final : public Compressor {
 public:
  explicit NoCompressor(Output* out) : out_(out) {}
  Status write(const void* data, size_t n) override { return out_->write(data, n); }
  Status finish() override { return {}; }

 private:
  Output* out_;
};

class ParallelGzipCompressor final : public Compressor {
 public:
  ParallelGzipCompressor(Output* out, int level, int threads)
      : out_(out),
        pgz_(level, threads, [this](const void* p, size_t n) { return out_->write(p, n); }) {}
  Status write(const void* data, size_t n) override { return pgz_.write(data, n); }
  Status finish() override { return pgz_.finish(); }

 private:
  Output* out_;
  ParallelGzip pgz_;
};

class ZstdCompressor final : public Compressor {
 public:
  ZstdCompressor(Output* out, int threads)
      : out_(out),
        cctx_(ZSTD_createCCtx()),
        obuf_size_(ZSTD_CStreamOutSize()),
        obuf_(new char[obuf_size_]),
        threads_(threads) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  Status init(int level) {
    if (cctx_ == nullptr) return Error(Errc::kGeneric, "ZSTD_createCCtx failed");
    size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(rc))
      return Error::invalid(std::string("zstd level: ") + ZSTD_getErrorName(rc));
    // Output with nbWorkers >= 1 does not depend on the count. Multithreading may be compiled
    // out of libzstd; then it stays single-threaded.
    if (!ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, threads_))) {
      // Jobs of 2 MiB instead of the default 4 windows (8 MiB at level 3): the workers' input
      // and output buffers stay a few MiB each. Fixed, so the output still does not depend on
      // the thread count.
      size_t js = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_jobSize, 2 << 20);
      if (ZSTD_isError(js))
        return Error(Errc::kGeneric, std::string("zstd job size: ") + ZSTD_getErrorName(js));
    }
    return {};
  }
  Status write(const void* data, size_t n) override { return run(data, n, ZSTD_e_continue); }
  Status finish() override { return run(nullptr, 0, ZSTD_e_end); }

 private:
  Status run(const void* data, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{obuf_.get(), obuf_size_, 0};
      size_t rc = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(rc))
        return Error(Errc::kGeneric, std::string("zstd: ") + ZSTD_getErrorName(rc));
      if (out.pos > 0) OCIB_TRY(out_->write(obuf_.get(), out.pos));
      if (mode == ZSTD_e_end ? rc == 0 : in.pos == in.size) return {};
    }
  }

  Output* out_;
  ZSTD_CCtx* cctx_;
  size_t obuf_size_;
  std::unique_ptr<char[]> obuf_;
  int threads_;
};

// --- libarchive client: hash the tar stream, then compress it ------------------------------

struct Sink {
  Sha256 diff_id;
  Compressor* comp = nullptr;
  Status status;
};

la_ssize_t sink_write(struct archive* a, void* ctx, const void* buf, size_t n) {
  auto* sink = static_cast<Sink*>(ctx);
  sink->diff_id.update(buf, n);
  Status st = sink->comp->write(buf, n);
  if (!st.ok()) {
    archive_set_error(a, EIO, "%s", st.error().str().c_str());
    sink->status = std::move(st);
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

// --- the tree walk ---------------------------------------------------------------------------

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

struct Xattrs {
  std::vector<std::pair<std::string, std::string>> kept;  // sorted by name
  bool opaque = false;
};

Result<Xattrs> read_xattrs(const std::string& path) {
  Xattrs x;
  OCIB_ASSIGN_OR_RETURN(std::vector<std::string> names, fs::list_xattrs(path));
  for (const auto& name : names) {
    OCIB_ASSIGN_OR_RETURN(std::optional<std::string> value, fs::get_xattr(path, name));
    if (!value) continue;  // removed in between
    // The snapshot drivers' own bookkeeping is not image content; their opaque markers
    // become .wh..wh..opq.
    if (fs::is_overlay_xattr(name)) {
      if ((name == "trusted.overlay.opaque" || name == "user.overlay.opaque" ||
           name == "user.fuseoverlayfs.opaque") &&
          *value == "y") {
        x.opaque = true;
      }
      continue;
    }
    x.kept.emplace_back(name, std::move(*value));
  }
  return x;
}

class Packer {
 public:
  Packer(struct archive* a, const PackOptions& opts)
      : a_(a), opts_(opts), buf_(new char[kReadChunk]) {}

  /// Adds the children of directory `abs` (archive path prefix `rel`, "" or "dir/").
  Status add_children(const std::string& abs, const std::string& rel) {
    std::vector<std::string> names;
    {
      DIR* d = ::opendir(abs.c_str());
      if (d == nullptr) return Error::from_errno("opendir " + abs, errno);
      std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
      errno = 0;
      while (struct dirent* de = ::readdir(d)) {
        if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
          names.emplace_back(de->d_name);
        }
        errno = 0;
      }
      if (errno != 0) return Error::from_errno("readdir " + abs, errno);
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) OCIB_TRY(add(abs + "/" + name, rel, name));
    return {};
  }

 private:
  uint32_t map_uid(uid_t host) const {
    if (opts_.ids == nullptr) return host;
    auto c = opts_.ids->host_to_container_uid(host);
    if (!c && log::debug_enabled()) log::debug("pack: unmapped uid " + std::to_string(host));
    return c.value_or(0);
  }
  uint32_t map_gid(gid_t host) const {
    if (opts_.ids == nullptr) return host;
    auto c = opts_.ids->host_to_container_gid(host);
    if (!c && log::debug_enabled()) log::debug("pack: unmapped gid " + std::to_string(host));
    return c.value_or(0);
  }
  int64_t mtime(const struct stat& st) const {
    int64_t t = st.st_mtim.tv_sec;
    if (opts_.clamp_mtime && t > *opts_.clamp_mtime) t = *opts_.clamp_mtime;
    return t;
  }

  EntryPtr new_entry(const std::string& name, const struct stat& st, mode_t type) const {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_size(e.get(), 0);
    archive_entry_set_uid(e.get(), map_uid(st.st_uid));
    archive_entry_set_gid(e.get(), map_gid(st.st_gid));
    archive_entry_set_mtime(e.get(), mtime(st), 0);
    return e;
  }

  Status write_header(archive_entry* e) {
    if (archive_write_header(a_, e) < ARCHIVE_WARN) return error(archive_entry_pathname(e));
    return {};
  }
  Status finish_entry(const char* name) {
    if (archive_write_finish_entry(a_) < ARCHIVE_WARN) return error(name);
    return {};
  }
  Error error(const char* name) {
    const char* msg = archive_error_string(a_);
    return Error(Errc::kIo, std::string("pack ") + name + ": " + (msg ? msg : "libarchive error"));
  }

  /// A zero-size regular file entry (whiteouts, opaque markers), owned by root, mode 0.
  Status add_marker(const std::string& name, int64_t mt) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0);
    archive_entry_set_size(e.get(), 0);
    archive_entry_set_mtime(e.get(), mt, 0);
    OCIB_TRY(write_header(e.get()));
    return finish_entry(name.c_str());
  }

  Status add(const std::string& abs, const std::string& rel, const std::string& name) {
    // An interrupted build stops between entries and between chunks of a file (below).
    OCIB_TRY(check_cancelled("packing"));
    struct stat st {};
    if (::lstat(abs.c_str(), &st) != 0) return Error::from_errno("lstat " + abs, errno);
    std::string path = rel + name;

    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      return add_marker(rel + ".wh." + name, mtime(st));  // overlay whiteout
    }
    if (S_ISSOCK(st.st_mode)) {
      log::debug("pack: skipping socket " + abs);  // tar cannot hold sockets (docker skips too)
      return {};
    }

    OCIB_ASSIGN_OR_RETURN(Xattrs x, read_xattrs(abs));
    EntryPtr e;
    if (S_ISDIR(st.st_mode)) {
      e = new_entry(path + "/", st, AE_IFDIR);
    } else if (S_ISREG(st.st_mode)) {
      e = new_entry(path, st, AE_IFREG);
      if (st.st_nlink > 1) {
        auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, path);
        if (!inserted) archive_entry_set_hardlink(e.get(), it->second.c_str());
      }
      if (archive_entry_hardlink(e.get()) == nullptr) archive_entry_set_size(e.get(), st.st_size);
    } else if (S_ISLNK(st.st_mode)) {
      e = new_entry(path, st, AE_IFLNK);
      std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 256) + 1, '\0');
      for (;;) {
        ssize_t n = ::readlink(abs.c_str(), target.data(), target.size());
        if (n < 0) return Error::from_errno("readlink " + abs, errno);
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);
      }
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISFIFO(st.st_mode)) {
      e = new_entry(path, st, AE_IFIFO);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e = new_entry(path, st, S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    } else {
      log::debug("pack: skipping unknown file type " + abs);
      return {};
    }
    for (const auto& [k, v] : x.kept) {
      archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
    }

    if (S_ISREG(st.st_mode) && archive_entry_hardlink(e.get()) == nullptr && st.st_size > 0) {
      // Open before writing the header so an unreadable file fails cleanly.
      OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(abs, O_RDONLY | O_NOFOLLOW));
      (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
      OCIB_TRY(write_header(e.get()));
      // Exactly st_size bytes: a file that shrank is zero-padded by libarchive, one that grew
      // is truncated; the header already promised the size.
      int64_t left = st.st_size;
      while (left > 0) {
        OCIB_TRY(check_cancelled("packing"));
        ssize_t n =
            ::read(fd.get(), buf_.get(), static_cast<size_t>(std::min<int64_t>(left, kReadChunk)));
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error::from_errno("read " + abs, errno);
        }
        if (n == 0) break;
        if (archive_write_data(a_, buf_.get(), static_cast<size_t>(n)) < 0) {
          return error(path.c_str());
        }
        left -= n;
      }
      if (left > 0) log::warn("pack: " + abs + " shrank while packing; zero-padded");
      OCIB_TRY(finish_entry(path.c_str()));
      return {};
    }

    OCIB_TRY(write_header(e.get()));
    OCIB_TRY(finish_entry(path.c_str()));
    if (S_ISDIR(st.st_mode)) {
      if (x.opaque) OCIB_TRY(add_marker(path + "/.wh..wh..opq", mtime(st)));
      OCIB_TRY(add_children(abs, path + "/"));
    }
    return {};
  }

  struct archive* a_;
  const PackOptions& opts_;
  std::unique_ptr<char[]> buf_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first path of each multi-link inode
};

/// Runs libarchive under the C locale on this thread: its pax writer converts names using the
/// current locale, and the layer bytes (diff_id) must not depend on the caller's locale.
class CLocaleScope {
 public:
  CLocaleScope() : c_(::newlocale(LC_ALL_MASK, "C", locale_t{})) {
    if (c_ != locale_t{}) old_ = ::uselocale(c_);
  }
  ~CLocaleScope() {
    if (c_ != locale_t{}) {
      ::uselocale(old_);
      ::freelocale(c_);
    }
  }
  CLocaleScope(const CLocaleScope&) = delete;
  CLocaleScope& operator=(const CLocaleScope&) = delete;

 private:
  locale_t c_;
  locale_t old_ = LC_GLOBAL_LOCALE;
};

Status pack_stream(const std::string& upperdir, Sink* sink, const PackOptions& opts) {
  CLocaleScope c_locale;
  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_write_new());
  if (!a) return Error(Errc::kGeneric, "archive_write_new failed");
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_none(a.get()) != ARCHIVE_OK ||
      // Unblocked: data reaches the callback without an extra copy, no padding to 10 KiB.
      archive_write_set_bytes_per_block(a.get(), 0) != ARCHIVE_OK) {
    return Error(Errc::kGeneric,
                 std::string("configure tar writer: ") + archive_error_string(a.get()));
  }
  // Only SCHILY.xattr.* records (what Docker/containerd read), not LIBARCHIVE.xattr.* too.
  (void)archive_write_set_format_option(a.get(), "pax", "xattrheader", "SCHILY");
  if (archive_write_open(a.get(), sink, nullptr, sink_write, nullptr) != ARCHIVE_OK) {
    return Error(Errc::kGeneric, std::string("open tar writer: ") + archive_error_string(a.get()));
  }
  Packer packer(a.get(), opts);
  Status st = packer.add_children(upperdir, "");
  if (!sink->status.ok()) return std::move(sink->status);
  OCIB_TRY(st);
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    if (!sink->status.ok()) return std::move(sink->status);
    return Error(Errc::kIo, std::string("close tar: ") + archive_error_string(a.get()));
  }
  return {};
}

Result<LayerBlob> pack_to_fd(const std::string& upperdir, int fd, const PackOptions& opts) {
  Output out(fd);
  std::unique_ptr<Compressor> comp;
  LayerBlob blob;
  int threads = opts.threads > 0
                    ? opts.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  switch (opts.compression) {
    case Compression::kGzip: {
      int level = opts.level < 0 ? Z_DEFAULT_COMPRESSION : opts.level;
      if (level > 9) return Error::invalid("gzip level must be 0..9");
      // Always the block-parallel scheme, even with one thread, so bytes match everywhere.
      comp = std::make_unique<ParallelGzipCompressor>(&out, level, threads);
      blob.media_type = oci::kMediaTypeLayerGzip;
      break;
    }
    case Compression::kZstd: {
      auto z = std::make_unique<ZstdCompressor>(&out, threads);
      OCIB_TRY(z->init(opts.level < 0 ? ZSTD_CLEVEL_DEFAULT : opts.level));
      comp = std::move(z);
      blob.media_type = oci::kMediaTypeLayerZstd;
      break;
    }
    case Compression::kNone:
      comp = std::make_unique<NoCompressor>(&out);
      blob.media_type = oci::kMediaTypeLayerTar;
      break;
  }
  Sink sink;
  sink.comp = comp.get();
  OCIB_TRY(pack_stream(upperdir, &sink, opts));
  OCIB_TRY(comp->finish());
  OCIB_TRY(out.flush());
  blob.diff_id = "sha256:" + sink.diff_id.hex_final();
  blob.digest = out.digest();
  blob.size = out.size();
  return blob;
}

}  // namespace

Result<LayerBlob> pack_dir(const std::string& upperdir, const std::string& out_path,
                           const PackOptions& opts) {
  if (!fs::is_dir(upperdir)) return Error(Errc::kNotFound, "not a directory: " + upperdir);
  auto fd = fs::open_file(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd.ok()) return std::move(fd).error();
  auto r = pack_to_fd(upperdir, fd->get(), opts);
  if (!r.ok()) {
    ::unlink(out_path.c_str());
    r.error().wrap("packing layer from " + upperdir);
  }
  return r;
}

}  // namespace ocib::layers
