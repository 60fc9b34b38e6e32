#pragma once
// Store maintenance: verification (`ocib store check`), usage (`ocib du`) and garbage
// collection (`ocib prune`). Everything that adds blobs or cache entries to the store (build,
// import, pull, tag) holds the store's GC lock shared for its whole run; prune takes it
// exclusively, so it never removes what a running writer stored but has not referenced yet.
//
// In-flight temp files ("NAME.tmp-<pid>-<random>", see fs::write_file_atomic) in blobs/ and
// cache/ are never blobs or cache entries: check skips them, and prune removes one only when
// its writer is gone. With the lock held exclusively no writer that follows the protocol can be
// running, so this is a second guard (for writers outside it, e.g. an older ocib): a temp file
// is removed when the pid in its name is dead, or, when its name has no pid (older versions),
// when it is older than kTmpGraceSeconds.

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "store/store.h"

namespace ocib::store {

struct CheckReport {
  uint64_t blobs = 0, snapshots = 0, cache_entries = 0, images = 0;
  std::vector<std::string> problems;  // empty: the store is consistent
};

/// Re-hashes every blob, checks every cache entry's snapshot and blobs, and every tagged
/// image's manifest, config and layers.
Result<CheckReport> check(const Store& st);

struct Usage {
  uint64_t blob_bytes = 0, blob_count = 0;
  uint64_t snapshot_bytes = 0, snapshot_count = 0;
  uint64_t cache_entries = 0;
};
Result<Usage> disk_usage(const Store& st);

struct PruneOptions {
  /// Remove build cache entries older than this many seconds (0: all of them).
  int64_t older_than_seconds = 0;
  /// Also remove tagged images (their tags, then their unreferenced blobs).
  bool all = false;
};
struct PruneReport {
  uint64_t cache_entries = 0, snapshots = 0, blobs = 0, bytes = 0;
};
/// Removes build cache entries (per options), then every snapshot and blob that no remaining
/// cache entry or tagged image references. `remove_tree` deletes a snapshot directory (it may
/// hold subordinate-id files that need a user namespace to delete).
Result<PruneReport> prune(Store& st, const PruneOptions& opts,
                          const std::function<Status(const std::string&)>& remove_tree);

/// Age after which prune removes a temp file whose name carries no pid.
inline constexpr int64_t kTmpGraceSeconds = 24 * 3600;

/// The lock builds, imports, pulls and tags hold shared for their whole run; prune holds it
/// exclusively.
Result<fs::FileLock> gc_lock(const Store& st, bool exclusive);

}  // namespace ocib::store
