#pragma once
// What planning asks of the world (BuildKit's MetaResolver and source resolution): an image's
// config and layers for a reference, the digest of context sources, an ADD URL's bytes.
// control/ implements it on the store, the registry client and the context; plan tests fake it.

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "copy/copy.h"
#include "oci/image.h"

namespace ocib::plan {

/// An image a stage starts from (FROM) or copies from (COPY --from=IMAGE).
struct SourceImage {
  std::string manifest_digest;
  oci::ImageConfig config;
  std::vector<oci::Descriptor> layers;  // bottom first; diff_ids in config.diff_ids
  /// The repository ("registry/name") a layer the store lacks is fetched from; "" when every
  /// layer is in the store.
  std::string pull_from;
};

/// An ADD <url> download.
struct Download {
  std::string body;
  int64_t last_modified = -1;  // unix seconds, -1: unknown
};

class Sources {
 public:
  virtual ~Sources() = default;
  /// The image `ref` names (as written in FROM, after expansion; "oci-layout://..." for an
  /// oci-layout build context) for `platform`. Errors are worded without the reference: the
  /// planner names it and the line.
  virtual Result<SourceImage> image(const std::string& ref, const oci::Platform& platform) = 0;
  /// The digest of what a COPY of `patterns` beneath `root_fd` reads (copy::hash_sources).
  virtual Result<std::string> hash(int root_fd, const std::vector<std::string>& patterns,
                                   const copy::SourceFilter& filter, copy::SourceManifest* manifest) = 0;
  virtual Result<Download> fetch(const std::string& url) = 0;
  /// A note or warning for the user ("warning: ...").
  virtual void note(const std::string& message) = 0;
};

}  // namespace ocib::plan
