#pragma once
// OCI image-spec data: descriptors, image config, manifest, index; deterministic JSON.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ocib::oci {

inline constexpr const char* kMediaTypeManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kMediaTypeIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kMediaTypeConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kMediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kMediaTypeLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* kMediaTypeLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kAnnotationRefName = "org.opencontainers.image.ref.name";

struct Platform {
  std::string os = "linux";
  std::string architecture;  // "amd64", "arm64", ...
  std::string variant;
  static Platform host();
};

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

/// One layer blob: what a layer is known by everywhere (a packed snapshot, a cache entry, a
/// cache record, a step's result).
struct LayerBlob {
  std::string digest;      // "sha256:<hex>" of the (compressed) bytes
  std::string diff_id;     // "sha256:<hex>" of the uncompressed tar
  std::string media_type;  // OCI layer media type for the compression
  int64_t size = 0;        // bytes of the blob
};

struct HistoryEntry {
  std::string created;     // RFC 3339
  std::string created_by;  // "RUN /bin/sh -c echo hi # buildkit"
  std::string comment;
  bool empty_layer = false;
};

/// The runtime part of the image config ("config" object in the JSON).
struct RunConfig {
  std::string user;
  std::vector<std::string> env;  // "K=V", in order
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> volumes;
  std::string stop_signal;
  std::vector<std::string> shell;  // docker extension, kept for SHELL
  std::optional<nlohmann::json> healthcheck;  // docker extension: "Healthcheck" as written
  std::vector<std::string> onbuild;           // docker extension: "OnBuild" triggers
};

struct ImageConfig {
  std::string created;  // RFC 3339; empty -> omitted
  std::string author;   // MAINTAINER; empty -> omitted
  Platform platform;
  RunConfig config;
  std::vector<std::string> diff_ids;  // "sha256:<hex>", bottom layer first
  std::vector<HistoryEntry> history;

  nlohmann::json to_json() const;
  static Result<ImageConfig> from_json(const nlohmann::json& j);
};

/// Serialises JSON deterministically (sorted keys, no whitespace): the bytes that get hashed.
std::string canonical(const nlohmann::json& j);

/// "sha256:<hex>" of bytes.
std::string digest_of(std::string_view bytes);

/// Image manifest JSON for a config descriptor and layer descriptors.
nlohmann::json make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers,
                             const std::map<std::string, std::string>& annotations = {});
/// Image index JSON listing `manifests` (each with its platform): a multi-platform image.
nlohmann::json make_image_index(const std::vector<Descriptor>& manifests,
                                const std::map<std::string, std::string>& annotations = {});
nlohmann::json descriptor_json(const Descriptor& d);
Result<Descriptor> descriptor_from_json(const nlohmann::json& j);

/// Deepest chain of image indexes followed (index -> index -> ... -> manifest), as in
/// containerd and BuildKit: a deeper chain is refused with an error instead of recursing
/// without bound through a hostile document.
inline constexpr int kMaxIndexDepth = 8;
/// Deepest nesting of arrays/objects accepted in a parsed document. OCI documents nest a few
/// levels; the bound keeps recursive serialisation and comparison of a hostile document (a
/// million nested arrays fit in a 4 MiB manifest) off the end of the stack.
inline constexpr int kMaxJsonDepth = 100;

/// Parses an untrusted JSON document without exceptions. Malformed text, or nesting deeper than
/// kMaxJsonDepth, is an Errc::kCorrupt error naming `what` (a file, digest or URL).
Result<nlohmann::json> parse_json(std::string_view text, const std::string& what);

/// The parts of an image manifest ocib uses, validated: a wrong-typed field is an error naming
/// `what` and the field, never an exception.
struct ImageManifest {
  std::string media_type;  // "mediaType", may be empty
  Descriptor config;
  std::vector<Descriptor> layers;
};
/// The parts of an image index (or Docker manifest list) ocib uses, validated likewise.
struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};
/// Whether j looks like an index (an object with "manifests") rather than a manifest.
bool is_index_json(const nlohmann::json& j);
Result<ImageManifest> manifest_from_json(const nlohmann::json& j, const std::string& what);
Result<ImageIndex> index_from_json(const nlohmann::json& j, const std::string& what);

/// Formats seconds since the epoch as RFC 3339 UTC ("2024-01-02T03:04:05Z").
std::string rfc3339(int64_t unix_seconds);

}  // namespace ocib::oci
