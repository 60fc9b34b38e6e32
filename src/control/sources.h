#pragma once
// What the planner asks of the world, answered from the store, the registry client and the
// build context (plan::Sources), and the --build-context values opened for it.

#include <map>
#include <string>

#include "base/error.h"
#include "control/control.h"
#include "copy/copy.h"
#include "images/images.h"
#include "plan/planner.h"
#include "plan/sources.h"
#include "progress/progress.h"
#include "registry/registry.h"
#include "store/store.h"

namespace ocib::control {

// The world as planning sees it: images from the store (pulled or re-resolved through the
// registry client as --pull says), the context hashed on the host, ADD URLs downloaded through
// the registry client's HTTP transport (its TLS settings and retries).
class StoreSources : public plan::Sources {
 public:
  StoreSources(store::Store& st, registry::Client& client, progress::Reporter& reporter, images::PullPolicy pull,
               const std::map<std::string, std::string>& layout_images, int context_fd)
      : store_(st), client_(client), reporter_(reporter), pull_(pull), layout_images_(layout_images),
        context_fd_(context_fd) {}

  Result<plan::SourceImage> image(const std::string& ref, const oci::Platform& platform) override {
    std::string digest, pull_from;
    if (auto it = layout_images_.find(ref); it != layout_images_.end()) {
      digest = it->second;
    } else {
      size_t before = lazy_.size();
      OCIB_ASSIGN_OR_RETURN(digest, images::resolve_base(store_, client_, ref, pull_, platform,
                                                          [this](const std::string& m) { reporter_.note(m); }, &lazy_));
      // Pulled without its layers: the build's unpack steps fetch them, side by side.
      if (lazy_.size() > before)
        if (auto r = registry::Reference::parse(ref); r.ok()) pull_from = r->registry + "/" + r->repository;
    }
    OCIB_ASSIGN_OR_RETURN(images::StoredImage img, images::load_image(store_, digest, &platform, !pull_from.empty()));
    plan::SourceImage out{img.manifest_digest, std::move(img.config), std::move(img.layers), pull_from};
    for (auto& l : out.layers) l.media_type = images::oci_layer_media_type(l.media_type);
    return out;
  }

  /// The images pulled without their layers, to tag once the build has fetched them.
  const std::vector<images::LazyPull>& lazy_pulls() const { return lazy_; }

  Result<std::string> hash(int root_fd, const std::vector<std::string>& patterns, const copy::SourceFilter& filter,
                           copy::SourceManifest* manifest) override {
    copy::SourceFilter f = filter;
    // The context's bytes read for hashing (what a daemon's "transferring context" would be).
    if (root_fd == context_fd_) {
      progress::Reporter* rep = &reporter_;
      f.progress = [rep](uint64_t done, uint64_t total) { rep->transfer("hashing context", done, total); };
    }
    return copy::hash_sources(root_fd, patterns, f, manifest);
  }

  Result<plan::Download> fetch(const std::string& url) override {
    OCIB_ASSIGN_OR_RETURN(registry::Client::UrlContent c, client_.fetch_url(url));
    return plan::Download{std::move(c.body), c.last_modified};
  }

  void note(const std::string& message) override { reporter_.note(message); }

 private:
  store::Store& store_;
  registry::Client& client_;
  progress::Reporter& reporter_;
  images::PullPolicy pull_;
  const std::map<std::string, std::string>& layout_images_;
  int context_fd_;
  std::vector<images::LazyPull> lazy_;
};

/// Opens each --build-context NAME=VALUE: a local directory (COPY --from, RUN --mount from=) or
/// an image (FROM, COPY --from); an oci-layout:// one is imported into the store, its digest
/// recorded in `layout_images` under the value. Names are lowercased. A named context wins
/// over a stage of the same name, as in BuildKit.
Status open_named_contexts(const Options& opts, store::Store& st, std::map<std::string, plan::NamedContext>& named,
                           std::map<std::string, std::string>& layout_images);

}  // namespace ocib::control
