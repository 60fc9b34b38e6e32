#pragma once
// Remembers the sha256 of build-context files by (path, size, mtime, ctime, inode, mode), so a
// rebuild of an unchanged context reads no file contents: only a stat per file.

#include <sys/stat.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/error.h"

namespace ocib::copy {

class HashCache {
 public:
  /// Loads the cache kept at `path` (a missing or unreadable file is an empty cache).
  static std::shared_ptr<HashCache> load(const std::string& path);

  /// The digest recorded for `rel` if its metadata still matches `st`.
  std::optional<std::string> get(const std::string& rel, const struct stat& st) const;
  void put(const std::string& rel, const struct stat& st, const std::string& digest);
  /// Writes the cache atomically when something changed; entries not looked up in this run
  /// are dropped (files that left the context).
  Status save();

 private:
  struct Entry {
    uint64_t size = 0, ino = 0, mode = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    std::string digest;
    bool used = false;
  };
  static Entry key_of(const struct stat& st);
  std::string path_;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Entry> entries_;
  bool dirty_ = false;
};

}  // namespace ocib::copy
