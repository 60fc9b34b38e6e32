#pragma once
// Writing OCI image layouts: a directory (oci-layout, index.json, blobs/sha256/...) or the same
// as a tar archive (oci-archive), streamed with libarchive.

#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "oci/image.h"

namespace ocib::oci {

/// Maps a digest ("sha256:<hex>") to the path of a local file holding that blob.
using BlobLocator = std::function<std::string(const std::string& digest)>;
/// Bytes written per blob ("exporting sha256:0123abcd…", so far, size), for progress bars.
using TransferProgress = std::function<void(const std::string& what, uint64_t current, uint64_t total)>;

struct LayoutImage {
  Descriptor manifest;                   // descriptor of the manifest blob (with ref.name annotation)
  std::vector<std::string> blob_digests; // every blob to include: manifest, config, layers
};

/// Writes (or adds to) an OCI layout directory. Existing index.json entries are kept unless
/// they carry the same ref.name, which is replaced. Blobs are copied (hardlinked when possible)
/// and written atomically; index.json is replaced atomically.
Status write_layout_dir(const std::string& dir, const std::vector<LayoutImage>& images,
                        const BlobLocator& locate, const TransferProgress& progress = {});

/// Writes an oci-archive tarball (uncompressed tar of a layout) atomically (temp + rename).
/// Entries are in a fixed order with fixed metadata so equal inputs give equal bytes.
Status write_layout_tar(const std::string& tar_path, const std::vector<LayoutImage>& images,
                        const BlobLocator& locate, const TransferProgress& progress = {});

/// An image for a docker-archive (what `docker save` writes and `docker load`/`podman load`
/// read).
struct DockerArchiveImage {
  std::string config_digest;
  std::vector<Descriptor> layers;     // compressed blobs as stored
  std::vector<std::string> diff_ids;  // their uncompressed digests, same order
  std::vector<std::string> repo_tags; // "app:1"
};

/// Writes a docker-archive: manifest.json ([{Config, RepoTags, Layers}]), the config as
/// blobs/sha256/<hex> and every layer decompressed as blobs/sha256/<diff_id hex> (the layout of
/// Docker 25's `docker save`, which older docker load and skopeo/podman read too). Layers are
/// decompressed through a temp file under `tmp_dir` and checked against their diff_id.
Status write_docker_archive(const std::string& tar_path, const DockerArchiveImage& image,
                            const BlobLocator& locate, const std::string& tmp_dir,
                            const TransferProgress& progress = {});

}  // namespace ocib::oci
