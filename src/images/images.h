#pragma once
// Images held in the local store: loading one by tag or digest, and importing a rootfs tar
// or an OCI archive as a new image (how air-gapped CI gets its bases).

#include <string>
#include <vector>

#include "base/error.h"
#include "oci/image.h"
#include "registry/registry.h"
#include "store/store.h"

namespace ocib::images {

struct StoredImage {
  std::string manifest_digest;
  oci::ImageConfig config;
  std::vector<oci::Descriptor> layers;  // bottom first; diff_ids in config.diff_ids
};

/// Normalises a local image name the way tags are stored: "app" -> "app:latest".
std::string normalize_name(const std::string& name);

/// Loads the image a tag (or "sha256:..." manifest digest) names in the store, checking that
/// every blob it needs is present. NotFound when the store has no such image. An image index
/// (a multi-platform build) yields its manifest for `platform` (default: the host's); with a
/// platform given, a plain image for another platform is an error. `allow_missing_layers`:
/// layer blobs may be absent (a lazy pull: the build fetches them).
Result<StoredImage> load_image(const store::Store& st, const std::string& name_or_digest,
                               const oci::Platform* platform = nullptr, bool allow_missing_layers = false);

/// Imports `path` and tags it `name`:
///  - an OCI image layout archive (has an `oci-layout` entry): its blobs are verified and
///    stored, the image whose ref.name matches name's tag (or the only one) is tagged;
///  - otherwise a root filesystem tar (plain, gzip or zstd) becomes a one-layer image.
/// Returns the manifest digest.
/// `platform` (rootfs tars only; an OCI archive carries its own): the image's os/architecture,
/// default the host's.
Result<std::string> import_image(store::Store& st, const std::string& path, const std::string& name,
                                 const oci::Platform* platform = nullptr);

/// Copies the image (or index) an OCI layout directory names into the store's blobs, each
/// verified against its digest, and returns its digest (untagged). `selector`: "" (the only
/// entry of index.json), a tag (org.opencontainers.image.ref.name) or "@sha256:...".
Result<std::string> import_oci_layout(store::Store& st, const std::string& dir, const std::string& selector);

/// --pull policy for base images that name a registry.
enum class PullPolicy { kDefault, kAlways, kMissing, kNever };

/// Finds or fetches the base image `ref` (as written in FROM): a local tag as written, else the
/// canonical reference ("docker.io/library/busybox:latest"), which is pulled when missing (and,
/// unless the policy says missing/never, re-resolved with a HEAD to follow a moved tag; an
/// unreachable registry then falls back to the local copy with a warning). Returns the manifest
/// digest to load_image().
/// With `lazy`, a pull stores only the manifest and config (the build fetches each layer as its
/// unpack step needs it, all side by side) and is recorded in `*lazy`: tag it once its layers
/// are in the store (tag_if_complete).
struct LazyPull {
  std::string manifest_digest;
  std::string tag;  // the canonical tag to set, "" for none (a digest reference, another platform)
};
Result<std::string> resolve_base(store::Store& st, registry::Client& client, const std::string& ref,
                                 PullPolicy policy, const oci::Platform& platform,
                                 const std::function<void(const std::string&)>& note,
                                 std::vector<LazyPull>* lazy = nullptr);

/// Pulls `ref` for `platform` into the store (blobs verified while streaming; nothing kept on
/// failure) and, for the host's platform, tags it with the canonical reference (a tag names one
/// manifest). Returns the manifest digest.
Result<std::string> pull_image(store::Store& st, registry::Client& client, const registry::Reference& ref,
                               const oci::Platform& platform);

/// Pushes the stored image `name_or_digest` to `dest` (an image index: each of its manifests by
/// digest, then the index); returns the pushed manifest (or index) digest.
Result<std::string> push_image(const store::Store& st, registry::Client& client,
                               const std::string& name_or_digest, const registry::Reference& dest);

/// `ocib manifest create` (buildx imagetools create): one image index at `dest` listing every
/// platform manifest of `sources` (single-platform manifests, or indexes whose entries are
/// taken), each with the platform its config names. Sources in another repository of the
/// same registry are copied by cross-repository mount. Returns the index digest.
Result<std::string> create_index(registry::Client& client, const registry::Reference& dest,
                                 const std::vector<registry::Reference>& sources);

/// A registry::BlobSink into the store's blobs (temp files named `prefix`...).
registry::BlobSink store_sink(store::Store& st, const std::string& prefix = "pull-");

/// Docker schema2 layer media types map onto their OCI equivalents (same bytes).
std::string oci_layer_media_type(const std::string& media_type);

}  // namespace ocib::images
