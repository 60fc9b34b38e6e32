#pragma once
// Build cache import and export (--cache-from / --cache-to): a map from step cache key to the
// layer blob the step produced, kept
//  - type=local:    in a directory (ocib-cache.json + the blobs in OCI layout form);
//  - type=registry: in a registry as an OCI artifact: an image manifest whose config (media
//                   type kMediaTypeCacheConfig) is the cache index and whose layers are the blobs;
//  - type=inline:   in the built image's config under kInlineCacheKey (the blobs are the image's
//                   own layers), read back with --cache-from type=registry,ref=IMAGE.
// Cache keys are content addresses of a step's inputs, so the map is portable between stores.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "base/spec.h"
#include "oci/image.h"
#include "registry/registry.h"
#include "store/store.h"

namespace ocib::cache {

inline constexpr const char* kMediaTypeCacheConfig = "application/vnd.ocib.cache.config.v1+json";
/// The image-config key of an inline cache (BuildKit's is "moby.buildkit.cache.v0").
inline constexpr const char* kInlineCacheKey = "ocib.cache.v0";

/// What a step with some cache key produced: its layer blob and when it was made (the image's
/// history times come from it, so an imported result gives the same image digest).
struct CacheRecord : oci::LayerBlob {
  int64_t created = 0;  // unix seconds
  std::string name;     // the step, for people reading the index
};

/// An imported record and where its blob is: a local cache directory, a registry repository,
/// or (both empty) already in the store.
struct ImportedRecord {
  CacheRecord record;
  std::string dir;
  std::string ref;  // registry reference whose repository holds the blob
};

using CacheRecords = std::map<std::string, CacheRecord>;  // cache key -> record

/// Checks the --cache-to / --cache-from specs before anything runs: a known type, its required
/// attributes, a valid mode and reference.
Status check_cache_specs(const std::vector<TypedSpec>& cache_to, const std::vector<TypedSpec>& cache_from);

/// Reads one --cache-from source into `into` (existing keys are kept: earlier sources win).
/// A source that does not exist (no directory, no such tag) is a warning through `note`, as in
/// BuildKit; a source that exists but is not a cache, or is corrupt, is an error.
Status import_cache(const TypedSpec& from, store::Store& st, registry::Client& client,
                    const oci::Platform& platform,
                    const std::function<void(const std::string&)>& note,
                    std::map<std::string, ImportedRecord>& into);

/// Brings an imported record's blob into the store, verifying its digest (a cache source is
/// trusted no more than a registry).
Status fetch_cache_blob(const ImportedRecord& r, store::Store& st, registry::Client& client);

/// Writes `records` (blobs in the store) to a --cache-to destination of type local or registry;
/// returns what to tell the user. type=inline is written by the image config, not here.
Result<std::string> export_cache_records(const TypedSpec& to, const CacheRecords& records,
                                         store::Store& st, registry::Client& client);

/// "min" (the exported image's layers) or "max" (every step), as the spec says.
std::string cache_mode(const TypedSpec& to);

/// The inline cache value to put in an image config under kInlineCacheKey.
nlohmann::json inline_cache_json(const CacheRecords& records);

}  // namespace ocib::cache
