#pragma once
// The local content store under $OCIB_ROOT:
//   blobs/sha256/<hex>     content-addressed blobs (layers, configs, manifests)
//   s/<id>/                snapshots: the overlay upperdir a step produced (short paths keep
//                          overlay mount options small)
//   f/<id>/, f/<id>.chain  flattened lowers: the merged view of the bottom of a snapshot chain
//                          (one directory that stands for many snapshots in a deep stack),
//                          keyed by the chain it merges; .chain lists its snapshot ids
//   cache/<key>.json       cache index: vertex cache key -> result (snapshot + layer blob)
//   locks/<key>.lock       per-vertex flock so concurrent ocib processes compute a vertex once
//   images.json            tag -> manifest digest
//   tmp/                   staging; everything reaches its final name by rename(2)

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "store/cache_entry.h"
#include "base/fs.h"

namespace ocib::store {

class Store {
 public:
  /// Opens (creating if needed) the store at `root`.
  static Result<Store> open(const std::string& root);
  /// $OCIB_ROOT, else $XDG_DATA_HOME/ocib, else $HOME/.local/share/ocib.
  static std::string default_root();

  const std::string& root() const { return root_; }

  /// Path of a blob ("sha256:<hex>"); it may not exist.
  std::string blob_path(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  /// Stores bytes as a blob and returns its digest.
  Result<std::string> put_blob(std::string_view bytes);
  /// Moves a finished temp file (in tmp/) into place as blob `digest`.
  Status adopt_blob(const std::string& tmp_path, std::string_view digest);

  /// A fresh staging directory under tmp/ (mode 0755).
  Result<std::string> make_tmp_dir(const std::string& prefix);
  /// A path for a staging file under tmp/ (not created).
  std::string tmp_file_path(const std::string& prefix);

  std::string snapshot_path(std::string_view id) const;
  bool has_snapshot(std::string_view id) const;
  /// Renames a staged upperdir into place as snapshot `id` (a no-op if it already exists).
  Status commit_snapshot(const std::string& staged_dir, std::string_view id);

  /// Flattened lowers (solver/flatten.h): `id` names the snapshot chain the directory merges,
  /// `chain` its snapshot ids, bottom first. Written before the directory appears (rename), so a
  /// flat that exists always has its chain file, which prune reads to collect it with its chain.
  std::string flat_path(std::string_view id) const;
  bool has_flat(std::string_view id) const;
  Status commit_flat(const std::string& staged_dir, std::string_view id, const std::vector<std::string>& chain);

  /// Looks up a cache entry; nullopt on miss. A corrupt entry is treated as a miss.
  std::optional<CacheEntry> cache_get(std::string_view key) const;
  /// Writes the entry atomically (a reader sees the old one or the new one).
  Status cache_put(std::string_view key, const CacheEntry& entry);
  /// Exclusive lock for computing `key`; held by one process at a time.
  Result<fs::FileLock> lock_key(std::string_view key);

  Status tag(const std::string& name, const std::string& manifest_digest);
  std::optional<std::string> resolve_tag(const std::string& name) const;
  /// Removes a tag; NotFound when it does not exist. Blobs stay until `ocib prune`.
  Status untag(const std::string& name);
  /// All tags, sorted by name.
  std::vector<std::pair<std::string, std::string>> list_tags() const;

  /// Removes leftover staging entries of dead builds (tmp/ entries not locked by a live one).
  /// `remove` deletes one entry; the default is fs::remove_all (a rootless caller passes one
  /// that can delete files of its subordinate ids).
  void clean_tmp(const std::function<Status(const std::string&)>& remove = {});

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace ocib::store
