#pragma once
// OCI distribution-spec client over libcurl: pull, resolve and push images.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "oci/image.h"
#include "registry/reference.h"

namespace ocib::registry {

inline constexpr const char* kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest or index fetched (containerd's limit): a registry answering with more is
/// refused with an error naming this limit, before the rest is read.
inline constexpr size_t kMaxManifestBytes = 4 << 20;
/// Largest image config (or cache config) fetched; a config descriptor claiming more is refused
/// before its download starts. Configs are held in memory and parsed whole.
inline constexpr int64_t kMaxConfigBytes = 32 << 20;

struct Options {
  /// host[:port] allowed over plain HTTP / unverified TLS. Nothing else is, loopback included.
  std::vector<std::string> insecure_hosts;
  /// Credentials file override (docker config.json / podman auth.json format).
  std::string auth_file;
  int max_concurrency = 4;
  std::string user_agent = "ocib/" OCIB_VERSION;
  /// Pull mirrors per registry ("docker.io" -> {"mirror.example:5000"}), tried in order before it.
  std::map<std::string, std::vector<std::string>> mirrors;
  /// certs.d roots holding HOST[:PORT]/{*.crt,*.cert,*.key}; empty: ~/.config/containers/certs.d,
  /// /etc/containers/certs.d, /etc/docker/certs.d.
  std::vector<std::string> certs_dirs;
  /// Blobs larger than this are pushed in chunked PATCH uploads of this size.
  int64_t chunk_size = 16 << 20;
  /// Bytes moved per blob ("pushing sha256:0123abcd…", bytes so far, blob size), for progress
  /// bars. Called from transfer threads; must be thread-safe.
  std::function<void(const std::string& what, uint64_t current, uint64_t total)> progress;
  /// Download attempts per blob (dropped connections resume with a Range request).
  int max_attempts = 5;
  /// First retry delay; doubles per attempt. Blob downloads, manifest fetches and upload
  /// starts answered with a dropped connection, 429 or 5xx are retried max_attempts times.
  int backoff_ms = 200;
  /// A transfer moving fewer than low_speed_limit bytes/s for low_speed_time seconds fails
  /// (and counts as a failed attempt). The environment variables OCIB_LOW_SPEED_LIMIT and
  /// OCIB_LOW_SPEED_TIME override these when set (for tests and very slow links); 0 disables.
  long low_speed_limit = 1024;
  long low_speed_time = 60;
};

/// A blob sink so the store stays the caller's: the client streams into a temp file it gets from
/// here and calls commit once the digest verified.
struct BlobSink {
  std::function<Result<std::string>()> temp_path;
  std::function<Status(const std::string& tmp, const std::string& digest)> commit;
  std::function<bool(const std::string& digest)> has;
  /// Optional (pull_blob): the blob's bytes in order as they arrive, before its digest is
  /// checked at the end (a consumer that streams them must wait for pull_blob's verdict), and
  /// `restart` when the download starts again from byte 0 (a server that ignored Range, the
  /// next mirror): what `tee` was given so far is void.
  std::function<void(std::string_view data)> tee;
  std::function<void()> restart;
};

struct PulledImage {
  std::string manifest_digest;
  std::string manifest_bytes;
  std::string config_bytes;
  std::string config_digest;
  std::vector<oci::Descriptor> layers;
};

class Client {
 public:
  explicit Client(Options o);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Resolves ref (index -> platform manifest), verifies digests, downloads config + layers
  /// (concurrently, skipping those sink.has() already has) into the sink. On any failure nothing
  /// is committed.
  Result<PulledImage> pull(const Reference& ref, const oci::Platform& platform,
                           const BlobSink& sink);
  /// Like pull, without the layers: the manifest (an index resolved for platform) and its
  /// config, verified; the config is committed to the sink. For a cache artifact or an image
  /// config's inline cache, whose layers are fetched one by one as they are needed.
  Result<PulledImage> pull_manifest(const Reference& ref, const oci::Platform& platform,
                                    const BlobSink& sink);
  /// Downloads one blob of ref's repository into the sink (digest and size verified before
  /// commit); nothing when sink.has() it.
  Status pull_blob(const Reference& ref, const oci::Descriptor& d, const BlobSink& sink);
  /// The manifest digest the tag currently points to (HEAD; for re-resolving cached bases).
  /// This is the registry's Docker-Content-Digest, unverified.
  Result<std::string> resolve(const Reference& ref);
  /// The digest of the manifest bytes ref serves (GET, hashed here): what resolve() should have
  /// said, for when its unverified answer disagrees with what a pull stored.
  Result<std::string> resolve_verified(const Reference& ref);
  /// Pushes blobs (from local paths via locate) then the manifest bytes under ref's tag (or
  /// digest); returns the manifest digest. mount_from: other repos on the same registry that may
  /// hold blobs.
  Result<std::string> push(const Reference& ref, const std::string& manifest_bytes,
                           const std::string& manifest_media_type,
                           const std::vector<oci::Descriptor>& blobs,
                           const std::function<std::string(const std::string& digest)>& locate,
                           const std::vector<std::string>& mount_from = {});

  /// A plain HTTP(S) download (ADD <url>): redirects followed, TLS verified with the same
  /// per-host settings as registries (certs.d CAs, client certificates; unverified only for a
  /// host listed insecure), transport failures, 429 and 5xx retried with backoff. No
  /// credentials are sent. HTTP statuses >= 400 are errors.
  struct UrlContent {
    std::string body;
    int64_t last_modified = -1;  // unix seconds from Last-Modified, -1 when absent
  };
  Result<UrlContent> fetch_url(const std::string& url);

  /// A manifest or index as the registry serves it (bytes verified against a digest ref and
  /// the registry's Docker-Content-Digest), unresolved.
  struct RawManifest {
    std::string bytes;
    std::string media_type;
    std::string digest;
  };
  Result<RawManifest> get_manifest(const Reference& ref);

  /// Counters for tests.
  struct Stats {
    int uploaded = 0, skipped = 0, mounted = 0, downloaded = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Picks the manifest for `want` from an index / manifest list (variant-aware). Exposed for tests.
Result<oci::Descriptor> select_platform(const std::vector<oci::Descriptor>& manifests,
                                        const oci::Platform& want);

}  // namespace ocib::registry
