#include "oci/layout.h"


#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <random>
#include <set>

#include "base/fs.h"
#include "base/sha256.h"

namespace ocib::oci {

namespace {

using nlohmann::json;

constexpr const char* kOciLayout = "{\"imageLayoutVersion\":\"1.0.0\"}";
constexpr size_t kChunk = 1 << 20;

/// The hex part of "sha256:<64 lowercase hex>"; rejects anything else, since the hex becomes a
/// path component.
Result<std::string> blob_hex(const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || digest.compare(0, kPrefix.size(), kPrefix) != 0) {
    return Error::invalid("bad digest: " + digest);
  }
  std::string hex = digest.substr(kPrefix.size());
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Error::invalid("bad digest: " + digest);
    }
  }
  return hex;
}

// "<dest>.tmp-<pid>-<n>": the pid lets a later export tell a killed writer's leftover
// (fs::remove_stale_tmp_files) from a concurrent writer's file.
std::string tmp_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng() & 0xffffffff);
}

Result<std::string> locate_blob(const BlobLocator& locate, const std::string& digest) {
  std::string path = locate ? locate(digest) : std::string();
  if (path.empty()) return Error(Errc::kNotFound, "blob not found: " + digest);
  return path;
}

Status write_all(int fd, const char* p, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("write " + what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

std::string progress_name(const std::string& digest) { return "exporting " + digest.substr(0, 19); }

Status copy_file_to(const std::string& src, const std::string& dst, const std::string& what = {},
                    const TransferProgress& progress = {}) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(src, O_RDONLY));
  OCIB_ASSIGN_OR_RETURN(UniqueFd out, fs::open_file(dst, O_WRONLY | O_CREAT | O_EXCL, 0644));
  struct stat sst {};
  uint64_t total = ::fstat(in.get(), &sst) == 0 ? static_cast<uint64_t>(sst.st_size) : 0, done = 0;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.get(), kChunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read " + src, errno);
    }
    if (n == 0) break;
    OCIB_TRY(write_all(out.get(), buf.get(), static_cast<size_t>(n), dst));
    done += static_cast<uint64_t>(n);
    if (progress) progress(what, done, total);
  }
  if (::fsync(out.get()) != 0) return Error::from_errno("fsync " + dst, errno);
  return {};
}

/// Puts one blob into blobs/sha256/: hardlink when on the same filesystem, else copy to a temp
/// file and rename. An existing blob is kept (content-addressed, so equal).
Status install_blob(const std::string& blobs_dir, const std::string& digest,
                    const BlobLocator& locate, const TransferProgress& progress = {}) {
  OCIB_ASSIGN_OR_RETURN(std::string hex, blob_hex(digest));
  std::string dst = fs::join(blobs_dir, hex);
  if (fs::exists(dst)) return {};
  OCIB_ASSIGN_OR_RETURN(std::string src, locate_blob(locate, digest));
  if (::link(src.c_str(), dst.c_str()) == 0 || errno == EEXIST) {
    struct stat sst {};
    if (progress && ::stat(dst.c_str(), &sst) == 0)
      progress(progress_name(digest), static_cast<uint64_t>(sst.st_size), static_cast<uint64_t>(sst.st_size));
    return {};
  }
  std::string tmp = dst + tmp_suffix();
  Status st = copy_file_to(src, tmp, progress_name(digest), progress);
  if (st.ok() && ::rename(tmp.c_str(), dst.c_str()) != 0) {
    st = Error::from_errno("rename " + tmp, errno);
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

std::string ref_name(const Descriptor& d) {
  auto it = d.annotations.find(kAnnotationRefName);
  return it == d.annotations.end() ? std::string() : it->second;
}

json make_index(const std::vector<json>& manifests) {
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = kMediaTypeIndex;
  j["manifests"] = manifests;
  return j;
}

Status check_images(const std::vector<LayoutImage>& images) {
  for (const auto& img : images) {
    OCIB_TRY(blob_hex(img.manifest.digest));
    for (const auto& d : img.blob_digests) OCIB_TRY(blob_hex(d));
  }
  return {};
}

// --- tar ---------------------------------------------------------------------------------

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

Error archive_error(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  Error e(Errc::kIo, what + ": " + (msg ? msg : "libarchive error"));
  return e;
}

std::unique_ptr<archive_entry, EntryDeleter> new_entry(const std::string& name, mode_t type,
                                                       mode_t perm, int64_t size) {
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), perm);
  archive_entry_set_size(e.get(), size);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  return e;
}

Status tar_add_bytes(struct archive* a, const std::string& name, std::string_view data) {
  auto e = new_entry(name, AE_IFREG, 0644, static_cast<int64_t>(data.size()));
  if (archive_write_header(a, e.get()) < ARCHIVE_WARN) return archive_error(a, name);
  if (!data.empty() && archive_write_data(a, data.data(), data.size()) < 0) {
    return archive_error(a, name);
  }
  if (archive_write_finish_entry(a) < ARCHIVE_WARN) return archive_error(a, name);
  return {};
}

Status tar_add_dir(struct archive* a, const std::string& name) {
  auto e = new_entry(name, AE_IFDIR, 0755, 0);
  if (archive_write_header(a, e.get()) < ARCHIVE_WARN) return archive_error(a, name);
  if (archive_write_finish_entry(a) < ARCHIVE_WARN) return archive_error(a, name);
  return {};
}

Status tar_add_file(struct archive* a, const std::string& name, const std::string& src,
                    const std::string& what = {}, const TransferProgress& progress = {}) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(src, O_RDONLY));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return Error::from_errno("stat " + src, errno);
  auto e = new_entry(name, AE_IFREG, 0644, st.st_size);
  if (archive_write_header(a, e.get()) < ARCHIVE_WARN) return archive_error(a, name);
  std::unique_ptr<char[]> buf(new char[kChunk]);
  int64_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::read(in.get(), buf.get(), static_cast<size_t>(std::min<int64_t>(left, kChunk)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read " + src, errno);
    }
    if (n == 0) return Error(Errc::kIo, "blob shrank while archiving: " + src);
    if (archive_write_data(a, buf.get(), static_cast<size_t>(n)) < 0) {
      return archive_error(a, name);
    }
    left -= n;
    if (progress) progress(what, static_cast<uint64_t>(st.st_size - left), static_cast<uint64_t>(st.st_size));
  }
  if (archive_write_finish_entry(a) < ARCHIVE_WARN) return archive_error(a, name);
  return {};
}

Status write_tar_to_fd(int fd, const std::vector<LayoutImage>& images, const BlobLocator& locate,
                       const TransferProgress& progress) {
  std::set<std::string> hexes;  // sorted, deduplicated
  std::vector<json> manifests;
  for (const auto& img : images) {
    manifests.push_back(descriptor_json(img.manifest));
    OCIB_ASSIGN_OR_RETURN(std::string mh, blob_hex(img.manifest.digest));
    hexes.insert(mh);
    for (const auto& d : img.blob_digests) {
      OCIB_ASSIGN_OR_RETURN(std::string h, blob_hex(d));
      hexes.insert(h);
    }
  }

  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_write_new());
  if (!a) return Error(Errc::kGeneric, "archive_write_new failed");
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_none(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK) {
    return archive_error(a.get(), "configure tar writer");
  }
  if (archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) return archive_error(a.get(), "open tar");

  // Sorted order: blobs/ < index.json < oci-layout.
  OCIB_TRY(tar_add_dir(a.get(), "blobs/"));
  OCIB_TRY(tar_add_dir(a.get(), "blobs/sha256/"));
  for (const auto& hex : hexes) {
    std::string digest = "sha256:" + hex;
    OCIB_ASSIGN_OR_RETURN(std::string src, locate_blob(locate, digest));
    OCIB_TRY(tar_add_file(a.get(), "blobs/sha256/" + hex, src, progress_name(digest), progress));
  }
  OCIB_TRY(tar_add_bytes(a.get(), "index.json", canonical(make_index(manifests))));
  OCIB_TRY(tar_add_bytes(a.get(), "oci-layout", kOciLayout));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return archive_error(a.get(), "close tar");
  return {};
}

}  // namespace

Status write_layout_dir(const std::string& dir, const std::vector<LayoutImage>& images,
                        const BlobLocator& locate, const TransferProgress& progress) {
  OCIB_TRY(check_images(images));
  std::string blobs_dir = fs::join(dir, "blobs/sha256");
  OCIB_TRY(fs::mkdirs(blobs_dir));
  // Leftovers of an export that was killed (SIGKILL runs no cleanup).
  fs::remove_stale_tmp_files(blobs_dir, "");
  fs::remove_stale_tmp_files(dir, "index.json");
  fs::remove_stale_tmp_files(dir, "oci-layout");

  std::string layout_file = fs::join(dir, "oci-layout");
  if (!fs::exists(layout_file)) OCIB_TRY(fs::write_file_atomic(layout_file, kOciLayout));

  for (const auto& img : images) {
    for (const auto& d : img.blob_digests) OCIB_TRY(install_blob(blobs_dir, d, locate, progress));
    OCIB_TRY(install_blob(blobs_dir, img.manifest.digest, locate));
  }

  std::string index_path = fs::join(dir, "index.json");
  std::vector<json> manifests;
  std::set<std::string> new_refs;
  for (const auto& img : images) {
    std::string ref = ref_name(img.manifest);
    if (!ref.empty()) new_refs.insert(ref);
  }
  json old_index;
  bool have_old = fs::exists(index_path);
  if (have_old) {
    OCIB_ASSIGN_OR_RETURN(std::string text, fs::read_file(index_path));
    old_index = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (old_index.is_discarded() || !old_index.is_object()) {
      return Error(Errc::kCorrupt, index_path + ": not a JSON object");
    }
    auto m = old_index.find("manifests");
    if (m != old_index.end() && m->is_array()) {
      for (const auto& entry : *m) {
        std::string ref;
        if (entry.is_object()) {
          auto an = entry.find("annotations");
          if (an != entry.end() && an->is_object()) {
            auto r = an->find(kAnnotationRefName);
            if (r != an->end() && r->is_string()) ref = r->get<std::string>();
          }
        }
        if (!ref.empty() && new_refs.count(ref)) continue;
        manifests.push_back(entry);
      }
    }
  }
  for (const auto& img : images) {
    json d = descriptor_json(img.manifest);
    // An unnamed manifest that is already listed is not listed twice.
    if (ref_name(img.manifest).empty() &&
        std::find(manifests.begin(), manifests.end(), d) != manifests.end()) {
      continue;
    }
    manifests.push_back(std::move(d));
  }
  json index = have_old ? old_index : json::object();
  json fresh = make_index(manifests);
  for (auto it = fresh.begin(); it != fresh.end(); ++it) index[it.key()] = it.value();
  return fs::write_file_atomic(index_path, canonical(index));
}

namespace {

// A destination written in place, not through a temp file renamed over it: stdout, or what
// already exists and is not a regular file (a FIFO, /dev/null, a terminal). Renaming over
// /dev/null would replace the device with a file.
bool streamed_dest(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") return true;
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

Result<UniqueFd> open_streamed(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") {
    UniqueFd fd(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!fd.valid()) return Error::from_errno("dup stdout", errno);
    return fd;
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return Error::from_errno("open " + path, errno);
  return fd;
}

}  // namespace

Status write_layout_tar(const std::string& tar_path, const std::vector<LayoutImage>& images,
                        const BlobLocator& locate, const TransferProgress& progress) {
  OCIB_TRY(check_images(images));
  if (streamed_dest(tar_path)) {
    // Streamed: no temp file and rename for stdout, a FIFO or a device.
    OCIB_ASSIGN_OR_RETURN(UniqueFd fd, open_streamed(tar_path));
    Status out = write_tar_to_fd(fd.get(), images, locate, progress);
    if (!out.ok()) out.error().wrap(tar_path == "-" ? std::string("writing oci-archive to stdout") : "writing oci-archive " + tar_path);
    return out;
  }
  fs::remove_stale_tmp_files(fs::dirname(tar_path), fs::basename(tar_path));  // of killed exports
  std::string tmp = tar_path + tmp_suffix();
  Status st;
  {
    auto fd = fs::open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (!fd.ok()) return std::move(fd).error();
    st = write_tar_to_fd(fd->get(), images, locate, progress);
    if (st.ok() && ::fsync(fd->get()) != 0) st = Error::from_errno("fsync " + tmp, errno);
  }
  if (st.ok() && ::rename(tmp.c_str(), tar_path.c_str()) != 0) {
    st = Error::from_errno("rename " + tmp + " -> " + tar_path, errno);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    st.error().wrap("writing oci-archive " + tar_path);
  }
  return st;
}

namespace {

// Decompresses a layer blob into `out` (plain tar), returning sha256 of what was written.
Result<std::string> decompress_to(const std::string& src, const std::string& out) {
  struct ReadDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
  };
  std::unique_ptr<struct archive, ReadDeleter> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), src.c_str(), kChunk) != ARCHIVE_OK)
    return Error(Errc::kIo, "open " + src + ": " + (archive_error_string(a.get()) ?: "?"));
  struct archive_entry* e;
  int r = archive_read_next_header(a.get(), &e);
  OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(out, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  Sha256 h;
  if (r == ARCHIVE_EOF) return h.hex_final();  // an empty blob
  if (r != ARCHIVE_OK) return Error(Errc::kCorrupt, src + ": " + (archive_error_string(a.get()) ?: "?"));
  std::unique_ptr<char[]> buf(new char[kChunk]);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.get(), kChunk);
    if (n < 0) return Error(Errc::kCorrupt, src + ": " + (archive_error_string(a.get()) ?: "?"));
    if (n == 0) break;
    h.update(buf.get(), static_cast<size_t>(n));
    OCIB_TRY(write_all(fd.get(), buf.get(), static_cast<size_t>(n), out));
  }
  return h.hex_final();
}

}  // namespace

Status write_docker_archive(const std::string& tar_path, const DockerArchiveImage& image,
                            const BlobLocator& locate, const std::string& tmp_dir,
                            const TransferProgress& progress) {
  if (image.layers.size() != image.diff_ids.size())
    return Error::invalid("docker-archive: layers and diff_ids differ in count");
  OCIB_ASSIGN_OR_RETURN(std::string cfg_hex, blob_hex(image.config_digest));
  OCIB_ASSIGN_OR_RETURN(std::string cfg_path, locate_blob(locate, image.config_digest));
  const bool to_stdout = streamed_dest(tar_path);  // or a FIFO, a device: written in place
  if (!to_stdout) fs::remove_stale_tmp_files(fs::dirname(tar_path), fs::basename(tar_path));  // of killed exports
  fs::remove_stale_tmp_files(tmp_dir, "docker-layer");
  std::string tmp = tar_path + tmp_suffix();
  std::string layer_tmp = fs::join(tmp_dir, "docker-layer" + tmp_suffix());
  Status st = [&]() -> Status {
    UniqueFd fd;
    if (to_stdout) {
      OCIB_ASSIGN_OR_RETURN(fd, open_streamed(tar_path));
    } else {
      OCIB_ASSIGN_OR_RETURN(fd, fs::open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    }
    std::unique_ptr<struct archive, ArchiveDeleter> a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    if (archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK) return archive_error(a.get(), tmp);
    json layers = json::array();
    std::set<std::string> written;
    OCIB_TRY(tar_add_dir(a.get(), "blobs/"));
    OCIB_TRY(tar_add_dir(a.get(), "blobs/sha256/"));
    OCIB_TRY(tar_add_file(a.get(), "blobs/sha256/" + cfg_hex, cfg_path));
    for (size_t i = 0; i < image.layers.size(); ++i) {
      OCIB_ASSIGN_OR_RETURN(std::string diff_hex, blob_hex(image.diff_ids[i]));
      std::string name = "blobs/sha256/" + diff_hex;
      layers.push_back(name);
      if (!written.insert(diff_hex).second) continue;
      OCIB_ASSIGN_OR_RETURN(std::string src, locate_blob(locate, image.layers[i].digest));
      OCIB_ASSIGN_OR_RETURN(std::string got, decompress_to(src, layer_tmp));
      if (got != diff_hex) {
        ::unlink(layer_tmp.c_str());
        return Error(Errc::kCorrupt, "layer " + image.layers[i].digest + " does not match its diff_id");
      }
      Status added = tar_add_file(a.get(), name, layer_tmp, progress_name(image.diff_ids[i]), progress);
      ::unlink(layer_tmp.c_str());
      OCIB_TRY(added);
    }
    json manifest = json::array({{{"Config", "blobs/sha256/" + cfg_hex},
                                  {"RepoTags", image.repo_tags},
                                  {"Layers", layers}}});
    OCIB_TRY(tar_add_bytes(a.get(), "manifest.json", manifest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    if (archive_write_close(a.get()) != ARCHIVE_OK) return archive_error(a.get(), tmp);
    if (!to_stdout && ::fsync(fd.get()) != 0) return Error::from_errno("fsync " + tmp, errno);
    return {};
  }();
  if (to_stdout) {
    if (!st.ok()) st.error().wrap("writing docker-archive to stdout");
    return st;
  }
  if (st.ok() && ::rename(tmp.c_str(), tar_path.c_str()) != 0)
    st = Error::from_errno("rename " + tmp + " -> " + tar_path, errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    st.error().wrap("writing docker-archive " + tar_path);
  }
  return st;
}

}  // namespace ocib::oci
