#pragma once
// COPY semantics over directory fds: source patterns (globs) resolved beneath a source root,
// hashed for cache keys on the host, and copied into the container root inside the sandbox.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "copy/mode.h"

namespace ocib::copy {

/// Decides whether a path of the source (relative to its root, no leading "./") is left out,
/// e.g. by .dockerignore; `descend` asks whether an excluded directory may still contain
/// re-included paths. Empty: nothing is excluded.
class HashCache;

struct SourceFilter {
  std::function<bool(const std::string& rel, bool is_dir)> excluded;
  std::function<bool(const std::string& rel)> descend;
  /// Known content digests of the source's files (the build context's hash cache), or null.
  std::shared_ptr<HashCache> hashes;
  /// Bytes of file content read for hashing so far and in all (files the cache knows are
  /// not read). Called from hashing threads; must be thread-safe.
  std::function<void(uint64_t done, uint64_t total)> progress;
  /// hash_sources also digests owners (and device numbers): for a stage's files, which keep
  /// their owners when copied (a context's are reset to 0:0).
  bool owners = false;
  bool skip(const std::string& rel, bool is_dir) const {
    return excluded && rel != "." && excluded(rel, is_dir) && !(is_dir && descend && descend(rel));
  }
  bool drop_file(const std::string& rel) const { return excluded && rel != "." && excluded(rel, false); }
};

/// A file created from inline content (a COPY heredoc).
struct InlineFile {
  std::string name;
  std::string content;
  std::optional<uint32_t> mode;  // default 0644 (--chmod wins)
  int64_t mtime = -1;            // unix seconds; -1: the time of the copy
  bool unpack = false;           // ADD --unpack of a URL: a tar archive is extracted into dest
};

/// What a COPY's cache key was computed from: for each path hash_sources visited (relative to
/// the source root, as its walk names it), the bytes it fed into the digest for that path
/// (type and mode, size, symlink target, and a regular file's content digest).
struct SourceManifest {
  std::unordered_map<std::string, std::string> entries;
};

struct CopyOp {
  std::vector<std::string> sources;  // relative to the source root, may contain * ? [..]
  std::vector<InlineFile> inline_files;  // heredoc sources, placed like regular files
  SourceFilter filter;                   // .dockerignore for the build context
  std::string dest;                  // absolute container path; a trailing '/' means a directory
  std::optional<uint32_t> uid, gid;  // --chown; default 0:0
  std::optional<ModeSpec> chmod;     // --chmod (octal or symbolic)
  /// Keep the sources' owners when no uid/gid is given (exporting a filesystem as root).
  bool preserve_owner = false;
  /// COPY --exclude: paths relative to each matched source (a directory source: relative to
  /// it; a file: its name) that are left out.
  SourceFilter exclude;
  /// COPY --parents: each match lands at dest/<its path relative to the source root>, or to
  /// the part of its pattern before a "/./" pivot.
  bool parents = false;
  /// ADD: a regular file source that is a tar archive (plain, gzip, bzip2, xz or zstd, found
  /// by content) is unpacked into dest instead of copied.
  bool extract_archives = false;
  /// The sources as the cache key saw them (hash_sources' manifest), or null: no check.
  /// The key is computed at plan time but the copy reads the live source later, so with a
  /// manifest copy_into hashes every file while copying it (one pass: the bytes hashed are the
  /// bytes written; an archive ADD unpacks is hashed as it is read) and checks each copied
  /// path's type, mode, size, link target and content against it; a path the key saw that is
  /// gone fails too. A mismatch fails the copy with "build context changed during the build:
  /// <path>" (Errc::kCorrupt), so no cache entry is ever written under a key naming other
  /// bytes; the next build hashes the context anew. Failing is chosen over re-keying: the key
  /// has already been used for the steps planned after this one.
  std::shared_ptr<const SourceManifest> expected;
};

/// WORKDIR: creates `dir` and its missing parents (0755) owned by uid:gid, like `mkdir -p`.
/// Runs inside the sandbox, after pivot_root.
Status make_workdir(const std::string& dir, uint32_t uid, uint32_t gid);

/// Matches of one source pattern beneath `root_fd`, as clean relative paths ("." for the
/// root itself), sorted. A pattern without glob characters yields itself if it exists.
/// Resolution never leaves the root: symlinks are resolved as if `root_fd` were "/".
Result<std::vector<std::string>> match_sources(int root_fd, const std::string& pattern,
                                               const SourceFilter& filter = {});

/// A digest of everything a COPY would read: paths, types, modes, sizes, symlink targets and
/// file contents (not mtimes or owners, as BuildKit), for all patterns. With `manifest`, also
/// records what went into the digest per path, for CopyOp::expected.
Result<std::string> hash_sources(int root_fd, const std::vector<std::string>& patterns,
                                 const SourceFilter& filter = {}, SourceManifest* manifest = nullptr);

/// Performs the copy with Docker's rules: a directory source copies its contents; several
/// sources or a dest ending in '/' need a directory dest; missing parents are created (0755).
/// Destination writes use ordinary paths: call it after pivot_root so they stay in the rootfs.
/// Preserves mode and mtime, sets ownership to uid:gid (default 0:0). With op.expected, the
/// sources are verified against it while they are copied (see CopyOp::expected).
Status copy_into(int src_root_fd, const CopyOp& op);

}  // namespace ocib::copy
