// `ocib build -`: the build context (a tar archive) or the Dockerfile itself on stdin, as
// `docker build -` and buildx take it.
#include <archive.h>
#include <archive_entry.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "base/fd.h"
#include "base/fs.h"
#include "control/control.h"

namespace ocib::control {

namespace {
struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
}  // namespace

Status stdin_context(const std::string& data, const std::string& dir, std::string* dockerfile_text) {
  std::unique_ptr<struct archive, ReadFree> in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  struct archive_entry* e = nullptr;
  if (archive_read_open_memory(in.get(), data.data(), data.size()) != ARCHIVE_OK ||
      archive_read_next_header(in.get(), &e) != ARCHIVE_OK) {
    *dockerfile_text = data;  // not an archive: the Dockerfile, with an empty context
    return {};
  }
  std::unique_ptr<struct archive, WriteFree> out(archive_write_disk_new());
  // Not as the archive's owners: the context belongs to whoever runs the build. Names are
  // untrusted: nothing may land outside `dir`.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_OVERWRITE);
  // Extracted from inside `dir` (libarchive's secure flags judge the names as written).
  UniqueFd back(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!back.valid() || chdir(dir.c_str()) != 0) return Error::from_errno("chdir " + dir, errno);
  struct Restore {
    int fd;
    ~Restore() { (void)!fchdir(fd); }
  } restore{back.get()};
  for (;;) {
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (const char* hl = archive_entry_hardlink(e)) {
      std::string h = hl;
      if (h.empty() || h[0] == '/' || h == ".." || h.rfind("../", 0) == 0 || h.find("/../") != std::string::npos)
        return Error(Errc::kSecurity, "context on stdin: " + name + ": hard link to " + h + " outside the context");
    }
    int t = archive_entry_filetype(e);
    if (t != AE_IFREG && t != AE_IFDIR && t != AE_IFLNK)
      return Error::invalid("context on stdin: " + name + ": only files, directories and symlinks are allowed");
    if (archive_write_header(out.get(), e) != ARCHIVE_OK)
      return Error(Errc::kSecurity, "context on stdin: " + name + ": " + archive_error_string(out.get()));
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t off = 0;
    int r;
    while ((r = archive_read_data_block(in.get(), &buf, &len, &off)) == ARCHIVE_OK)
      if (archive_write_data_block(out.get(), buf, len, off) != ARCHIVE_OK)
        return Error(Errc::kIo, "context on stdin: " + name + ": " + archive_error_string(out.get()));
    if (r != ARCHIVE_EOF) return Error(Errc::kIo, "context on stdin: " + name + ": " + archive_error_string(in.get()));
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
      return Error(Errc::kIo, "context on stdin: " + name + ": " + archive_error_string(out.get()));
    int n = archive_read_next_header(in.get(), &e);
    if (n == ARCHIVE_EOF) break;
    if (n != ARCHIVE_OK) return Error(Errc::kIo, std::string("context on stdin: ") + archive_error_string(in.get()));
  }
  return {};
}

}  // namespace ocib::control
