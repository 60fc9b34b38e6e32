#pragma once
// A cache entry: what a step with some cache key produced in this store, kept as
// cache/<key>.json. Written by the solver, read by the solver, fsck and prune.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "oci/image.h"

namespace ocib::store {

struct CacheEntry {
  /// One packed form of the snapshot.
  using Blob = oci::LayerBlob;
  std::string snapshot;  // id under s/
  int64_t created = 0;   // unix seconds
  std::string name;      // the step, for people reading the store
  /// By compression ("gzip", "zstd", "uncompressed"): a zstd build after a gzip one packs again.
  std::map<std::string, Blob> blobs;

  nlohmann::json to_json() const;
  /// Tolerant of fields of the wrong type (the file is on disk: treated as absent); nullopt
  /// for anything that is not an object.
  static std::optional<CacheEntry> from_json(const nlohmann::json& j);
};

}  // namespace ocib::store
