#pragma once
// Images held in the local store: loading one by tag or digest, and importing a rootfs tar
// or an OCI archive as a new image (how air-gapped CI gets its bases).

#include <string>
#include <vector>

#include "base/error.h"
#include "oci/image.h"
#include "store/store.h"

namespace ocib::build {

struct StoredImage {
  std::string manifest_digest;
  oci::ImageConfig config;
  std::vector<oci::Descriptor> layers;  // bottom first; diff_ids in config.diff_ids
};

/// Normalises a local image name the way tags are stored: "app" -> "app:latest".
std::string normalize_name(const std::string& name);

/// Loads the image a tag (or "sha256:..." manifest digest) names in the store, checking that
/// every blob it needs is present. NotFound when the store has no such image.
Result<StoredImage> load_image(const store::Store& st, const std::string& name_or_digest);

/// Imports `path` and tags it `name`:
///  - an OCI image layout archive (has an `oci-layout` entry): its blobs are verified and
///    stored, the image whose ref.name matches name's tag (or the only one) is tagged;
///  - otherwise a root filesystem tar (plain, gzip or zstd) becomes a one-layer image.
/// Returns the manifest digest.
Result<std::string> import_image(store::Store& st, const std::string& path, const std::string& name);

}  // namespace ocib::build
