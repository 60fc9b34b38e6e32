#include "images/images.h"
#include "oci/platform.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "base/fs.h"
#include "base/sha256.h"

namespace ocib::images {

using nlohmann::json;

std::string normalize_name(const std::string& name) {
  if (name.rfind("sha256:", 0) == 0) return name;
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (name.find('@') != std::string::npos) return name;
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return name + ":latest";
  return name;
}

static Result<json> read_json_blob(const store::Store& st, const std::string& digest) {
  if (!st.has_blob(digest)) return Error(Errc::kNotFound, "blob " + digest + " is missing from the store");
  OCIB_ASSIGN_OR_RETURN(std::string bytes, fs::read_file(st.blob_path(digest)));
  if ("sha256:" + Sha256::hex(bytes) != digest) return Error(Errc::kCorrupt, "blob " + digest + " is corrupt");
  return oci::parse_json(bytes, "blob " + digest);
}

// load_image below an index `depth` levels deep.
static Result<StoredImage> load_image_at(const store::Store& st, const std::string& name_or_digest,
                                         const oci::Platform* platform, int depth, bool allow_missing_layers) {
  std::string digest = name_or_digest;
  if (digest.rfind("sha256:", 0) != 0) {
    auto d = st.resolve_tag(normalize_name(name_or_digest));
    if (!d) return Error(Errc::kNotFound, "image \"" + name_or_digest + "\" is not in the local store");
    digest = *d;
  }
  OCIB_ASSIGN_OR_RETURN(json manifest, read_json_blob(st, digest));
  if (oci::is_index_json(manifest)) {
    // An image index: the manifest for the wanted platform.
    OCIB_ASSIGN_OR_RETURN(oci::ImageIndex index, oci::index_from_json(manifest, "image index " + digest));
    if (depth >= oci::kMaxIndexDepth)
      return Error(Errc::kCorrupt, "image index " + digest + ": indexes nested deeper than " +
                                       std::to_string(oci::kMaxIndexDepth) + " levels");
    oci::Platform want = platform ? *platform : oci::Platform::host();
    auto sel = registry::select_platform(index.manifests, want);
    if (!sel.ok()) return std::move(sel).error().wrap("image " + name_or_digest);
    if (sel->digest == digest) return Error(Errc::kCorrupt, "image index " + digest + " lists itself");
    return load_image_at(st, sel->digest, &want, depth + 1, allow_missing_layers);
  }
  if (!manifest.is_object() || !manifest.contains("layers"))
    return Error(Errc::kCorrupt, "manifest " + digest + " is not an image manifest");
  OCIB_ASSIGN_OR_RETURN(oci::ImageManifest parsed, oci::manifest_from_json(manifest, "manifest " + digest));
  const oci::Descriptor& cfg_desc = parsed.config;
  OCIB_ASSIGN_OR_RETURN(json cfg_json, read_json_blob(st, cfg_desc.digest));
  auto cfg_parsed = oci::ImageConfig::from_json(cfg_json);
  if (!cfg_parsed.ok()) return std::move(cfg_parsed).error().wrap("config " + cfg_desc.digest + " of image " + digest);
  oci::ImageConfig cfg = std::move(*cfg_parsed);
  if (platform && !cfg.platform.architecture.empty() && !oci::matches(cfg.platform, *platform))
    return Error(Errc::kNotFound, "image \"" + name_or_digest + "\" is for " + oci::str(cfg.platform) +
                                      ", not " + oci::str(*platform));
  StoredImage img;
  img.manifest_digest = digest;
  img.config = std::move(cfg);
  for (auto& d : parsed.layers) {
    if (!allow_missing_layers && !st.has_blob(d.digest))
      return Error(Errc::kNotFound, "layer " + d.digest + " of " + name_or_digest + " is missing");
    img.layers.push_back(std::move(d));
  }
  if (img.layers.size() != img.config.diff_ids.size())
    return Error(Errc::kCorrupt, "image " + digest + ": layer count differs from rootfs.diff_ids");
  return img;
}

Result<StoredImage> load_image(const store::Store& st, const std::string& name_or_digest,
                               const oci::Platform* platform, bool allow_missing_layers) {
  return load_image_at(st, name_or_digest, platform, 0, allow_missing_layers);
}

namespace {

// The entry of a layout's index.json that `selector` names: "" (the only entry), a ref.name
// (exact, or for `tag_match` its ":TAG" suffix too) or "@sha256:...". `what` names the file.
Result<std::string> choose_entry(const std::string& index_bytes, const std::string& what,
                                 const std::string& selector, bool tag_match) {
  OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(index_bytes, what));
  OCIB_ASSIGN_OR_RETURN(oci::ImageIndex index, oci::index_from_json(j, what));
  if (index.manifests.empty()) return Error(Errc::kCorrupt, what + ": no images listed");
  std::string chosen;
  for (const auto& m : index.manifests) {
    auto r = m.annotations.find(oci::kAnnotationRefName);
    std::string ref = r == m.annotations.end() ? "" : r->second;
    bool match = selector.empty() ? index.manifests.size() == 1
                 : selector[0] == '@' ? m.digest == selector.substr(1)
                                      : ref == selector || (tag_match && ref.ends_with(":" + selector));
    if (match) chosen = m.digest;
  }
  return chosen;
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

// Copies `path` into the store as a blob, returning its digest.
Result<std::string> store_file(store::Store& st, const std::string& path) {
  OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(path, O_RDONLY));
  std::string tmp = st.tmp_file_path("import-");
  OCIB_ASSIGN_OR_RETURN(UniqueFd out, fs::open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ::unlink(tmp.c_str());
      return Error::from_errno("read " + path, errno);
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    if (::write(out.get(), buf.data(), static_cast<size_t>(n)) != n) {
      ::unlink(tmp.c_str());
      return Error::from_errno("write " + tmp, errno);
    }
  }
  std::string digest = "sha256:" + h.hex_final();
  if (st.has_blob(digest)) {
    ::unlink(tmp.c_str());
    return digest;
  }
  OCIB_TRY(st.adopt_blob(tmp, digest));
  return digest;
}

// sha256 of the decompressed stream of a (possibly compressed) file, and the media type.
Result<std::pair<std::string, std::string>> diff_id_of(const std::string& path) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK)
    return Error(Errc::kIo, "open " + path + ": " + archive_error_string(a.get()));
  struct archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK)
    return Error(Errc::kCorrupt, path + ": " + std::string(archive_error_string(a.get()) ?: "empty"));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) return Error(Errc::kCorrupt, path + ": " + archive_error_string(a.get()));
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  std::string mt = oci::kMediaTypeLayerTar;
  int filter = archive_filter_code(a.get(), 0);
  if (filter == ARCHIVE_FILTER_GZIP) mt = oci::kMediaTypeLayerGzip;
  else if (filter == ARCHIVE_FILTER_ZSTD) mt = oci::kMediaTypeLayerZstd;
  else if (filter != ARCHIVE_FILTER_NONE)
    return Error::invalid(path + ": only plain, gzip or zstd tars can be imported");
  return std::make_pair("sha256:" + h.hex_final(), mt);
}

bool is_oci_archive(const std::string& path) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) return false;
  // A layout holds blobs/, index.json and oci-layout only; index.json may come after any
  // number of blobs (ocib writes it last), so read on while the entries are blobs.
  struct archive_entry* e;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    std::string name = fs::clean(archive_entry_pathname(e));
    if (name == "oci-layout" || name == "index.json") return true;
    if (name != "." && name != "blobs" && name.rfind("blobs/", 0) != 0) return false;
    archive_read_data_skip(a.get());
  }
  return false;
}

Result<std::string> import_rootfs(store::Store& st, const std::string& path, const std::string& name,
                                  const oci::Platform& platform) {
  OCIB_ASSIGN_OR_RETURN(auto diff, diff_id_of(path));
  OCIB_ASSIGN_OR_RETURN(std::string layer_digest, store_file(st, path));
  oci::ImageConfig cfg;
  cfg.platform = platform;
  cfg.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  cfg.diff_ids = {diff.first};
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) now = std::atoll(sde);
  cfg.created = oci::rfc3339(now);
  cfg.history.push_back({cfg.created, "ocib import " + fs::basename(path), "ocib", false});
  std::string cfg_bytes = oci::canonical(cfg.to_json());
  OCIB_ASSIGN_OR_RETURN(std::string cfg_digest, st.put_blob(cfg_bytes));
  struct stat sb;
  if (::stat(st.blob_path(layer_digest).c_str(), &sb) != 0) return Error::from_errno("stat blob", errno);
  oci::Descriptor cd{oci::kMediaTypeConfig, cfg_digest, static_cast<int64_t>(cfg_bytes.size()), {}, {}};
  oci::Descriptor ld{diff.second, layer_digest, static_cast<int64_t>(sb.st_size), {}, {}};
  std::string manifest = oci::canonical(oci::make_manifest(cd, {ld}));
  OCIB_ASSIGN_OR_RETURN(std::string md, st.put_blob(manifest));
  OCIB_TRY(st.tag(normalize_name(name), md));
  return md;
}

// Stores every blob of an OCI archive, verifying each digest while streaming.
Result<std::string> import_oci_archive(store::Store& st, const std::string& path, const std::string& name) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK)
    return Error(Errc::kIo, "open " + path + ": " + archive_error_string(a.get()));
  std::string index_bytes;
  struct archive_entry* e;
  std::vector<char> buf(1 << 20);
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    std::string entry = fs::clean(archive_entry_pathname(e));
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    if (entry == "index.json") {
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) return Error(Errc::kCorrupt, path + ": " + archive_error_string(a.get()));
        if (n == 0) break;
        index_bytes.append(buf.data(), static_cast<size_t>(n));
        if (index_bytes.size() > (4 << 20)) return Error(Errc::kCorrupt, path + ": index.json too large");
      }
      continue;
    }
    if (entry.rfind("blobs/sha256/", 0) != 0) continue;
    std::string hex = entry.substr(13);
    std::string digest = "sha256:" + hex;
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Error(Errc::kCorrupt, path + ": bad blob name " + entry);
    if (st.has_blob(digest)) continue;
    std::string tmp = st.tmp_file_path("import-");
    {
      OCIB_ASSIGN_OR_RETURN(UniqueFd out, fs::open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
      Sha256 h;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) {
          ::unlink(tmp.c_str());
          return Error(Errc::kCorrupt, path + ": " + archive_error_string(a.get()));
        }
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
        if (::write(out.get(), buf.data(), static_cast<size_t>(n)) != n) {
          ::unlink(tmp.c_str());
          return Error::from_errno("write " + tmp, errno);
        }
      }
      if ("sha256:" + h.hex_final() != digest) {
        ::unlink(tmp.c_str());
        return Error(Errc::kCorrupt, path + ": blob " + digest + " does not match its digest");
      }
    }
    OCIB_TRY(st.adopt_blob(tmp, digest));
  }
  if (index_bytes.empty()) return Error(Errc::kCorrupt, path + ": no usable index.json");
  std::string want = normalize_name(name);
  std::string want_tag = want.substr(want.rfind(':') + 1);
  std::string chosen;
  for (const std::string& sel : {std::string(), want_tag, want}) {
    auto c = choose_entry(index_bytes, path + ": index.json", sel, false);
    if (!c.ok()) return std::move(c).error();
    if (!c->empty()) chosen = *c;
  }
  if (chosen.empty()) return Error::invalid(path + ": several images; none has ref.name " + want_tag);
  auto loaded = load_image(st, chosen);  // verifies completeness
  if (!loaded.ok()) return std::move(loaded).error().wrap(path);
  StoredImage& img = *loaded;
  OCIB_TRY(st.tag(want, img.manifest_digest));
  return img.manifest_digest;
}

}  // namespace

Result<std::string> create_index(registry::Client& client, const registry::Reference& dest,
                                 const std::vector<registry::Reference>& sources) {
  if (sources.empty()) return Error::invalid("manifest create: no source images");
  // Configs are read only for their platform; nothing is kept.
  registry::BlobSink scratch;
  scratch.has = [](const std::string&) { return false; };
  scratch.temp_path = []() -> Result<std::string> {
    char tmpl[] = "/tmp/ocib-manifest-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) return Error::from_errno("mkstemp", errno);
    ::close(fd);
    return std::string(tmpl);
  };
  scratch.commit = [](const std::string& tmp, const std::string&) -> Status {
    ::unlink(tmp.c_str());
    return {};
  };
  // Nothing is uploaded from here: blobs are mounted from their repository or already there.
  auto nowhere = [](const std::string&) { return std::string(); };
  // A manifest of another repository is made present in dest's by mounting its blobs, then
  // pushed there by digest (the index may only list manifests its repository has).
  auto bring = [&](const registry::Reference& src, const registry::Client::RawManifest& raw) -> Status {
    if (src.registry == dest.registry && src.repository == dest.repository) return {};
    if (src.registry != dest.registry)
      return Error(Errc::kUnsupported, "manifest create: " + src.str() + " is on another registry than " + dest.str() +
                                           " (copy it there first: ocib pull + ocib push)");
    OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(raw.bytes, "manifest " + src.str()));
    OCIB_ASSIGN_OR_RETURN(oci::ImageManifest m, oci::manifest_from_json(j, "manifest " + src.str()));
    std::vector<oci::Descriptor> blobs = {m.config};
    blobs.insert(blobs.end(), m.layers.begin(), m.layers.end());
    registry::Reference to = dest;
    to.tag.clear();
    to.digest = raw.digest;
    auto pushed = client.push(to, raw.bytes, raw.media_type, blobs, nowhere, {src.repository});
    if (!pushed.ok()) return std::move(pushed).error().wrap("copying " + src.str() + " into " + dest.repository);
    return {};
  };
  std::vector<oci::Descriptor> entries;
  auto add = [&](oci::Descriptor d) {
    for (const auto& e : entries)
      if (e.digest == d.digest) return;
    entries.push_back(std::move(d));
  };
  for (const auto& src : sources) {
    OCIB_ASSIGN_OR_RETURN(registry::Client::RawManifest raw, client.get_manifest(src));
    OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(raw.bytes, "manifest " + src.str()));
    if (oci::is_index_json(j)) {
      OCIB_ASSIGN_OR_RETURN(oci::ImageIndex index, oci::index_from_json(j, "image index " + src.str()));
      for (const auto& d : index.manifests) {
        registry::Reference child = src;
        child.tag.clear();
        child.digest = d.digest;
        if (!(src.registry == dest.registry && src.repository == dest.repository)) {
          OCIB_ASSIGN_OR_RETURN(registry::Client::RawManifest craw, client.get_manifest(child));
          OCIB_TRY(bring(child, craw));
        }
        add(d);
      }
      continue;
    }
    OCIB_ASSIGN_OR_RETURN(registry::PulledImage img, client.pull_manifest(src, oci::Platform::host(), scratch));
    json cfg = json::parse(img.config_bytes, nullptr, false);
    if (!cfg.is_object()) return Error(Errc::kCorrupt, src.str() + ": config is not a JSON object");
    oci::Platform p;
    p.os = cfg.value("os", std::string("linux"));
    p.architecture = cfg.value("architecture", std::string());
    p.variant = cfg.value("variant", std::string());
    if (p.architecture.empty()) return Error(Errc::kCorrupt, src.str() + ": config names no architecture");
    OCIB_TRY(bring(src, raw));
    add({raw.media_type, raw.digest, static_cast<int64_t>(raw.bytes.size()), {}, oci::normalize(p)});
  }
  // Attestation manifests (unknown/unknown, each naming its image) are not platforms: every
  // source's are kept, as buildx imagetools create keeps them.
  auto attestation = [](const oci::Descriptor& d) {
    auto t = d.annotations.find("vnd.docker.reference.type");
    return t != d.annotations.end() && t->second == "attestation-manifest";
  };
  for (size_t i = 0; i < entries.size(); ++i)
    for (size_t k = 0; k < i; ++k)
      if (entries[i].platform && entries[k].platform && !attestation(entries[i]) && !attestation(entries[k]) &&
          oci::same(*entries[i].platform, *entries[k].platform))
        return Error::invalid("manifest create: two sources are for " + oci::str(*entries[i].platform) + " (" +
                              entries[k].digest + ", " + entries[i].digest + ")");
  std::string index = oci::canonical(oci::make_image_index(entries));
  return client.push(dest, index, oci::kMediaTypeIndex, {}, nowhere);
}

std::string oci_layer_media_type(const std::string& mt) {
  if (mt == "application/vnd.docker.image.rootfs.diff.tar.gzip") return oci::kMediaTypeLayerGzip;
  if (mt == "application/vnd.docker.image.rootfs.diff.tar.zstd") return oci::kMediaTypeLayerZstd;
  if (mt == "application/vnd.docker.image.rootfs.diff.tar") return oci::kMediaTypeLayerTar;
  return mt;
}

registry::BlobSink store_sink(store::Store& st, const std::string& prefix) {
  registry::BlobSink sink;
  sink.temp_path = [&st, prefix]() -> Result<std::string> { return st.tmp_file_path(prefix); };
  sink.commit = [&st](const std::string& tmp, const std::string& digest) { return st.adopt_blob(tmp, digest); };
  sink.has = [&st](const std::string& digest) { return st.has_blob(digest); };
  return sink;
}

Result<std::string> pull_image(store::Store& st, registry::Client& client, const registry::Reference& ref,
                               const oci::Platform& platform) {
  registry::BlobSink sink = store_sink(st);
  OCIB_ASSIGN_OR_RETURN(registry::PulledImage img, client.pull(ref, platform, sink));
  OCIB_ASSIGN_OR_RETURN(std::string cd, st.put_blob(img.config_bytes));
  if (cd != img.config_digest) return Error(Errc::kCorrupt, "config of " + ref.str() + " does not match its digest");
  OCIB_ASSIGN_OR_RETURN(std::string md, st.put_blob(img.manifest_bytes));
  if (md != img.manifest_digest) return Error(Errc::kCorrupt, "manifest of " + ref.str() + " does not match its digest");
  if (auto check = load_image(st, md, &platform); !check.ok()) return std::move(check).error().wrap(ref.str());
  if (!ref.tag.empty() && oci::matches(platform, oci::Platform::host()))
    OCIB_TRY(st.tag(ref.registry + "/" + ref.repository + ":" + ref.tag, md));
  return md;
}

namespace {

// The manifest and config of `ref` for `platform` into the store, without the layers.
Result<std::string> pull_image_manifest(store::Store& st, registry::Client& client, const registry::Reference& ref,
                                        const oci::Platform& platform) {
  registry::BlobSink sink = store_sink(st);
  OCIB_ASSIGN_OR_RETURN(registry::PulledImage img, client.pull_manifest(ref, platform, sink));
  if (!st.has_blob(img.config_digest)) {
    OCIB_ASSIGN_OR_RETURN(std::string cd, st.put_blob(img.config_bytes));
    if (cd != img.config_digest) return Error(Errc::kCorrupt, "config of " + ref.str() + " does not match its digest");
  }
  OCIB_ASSIGN_OR_RETURN(std::string md, st.put_blob(img.manifest_bytes));
  if (md != img.manifest_digest) return Error(Errc::kCorrupt, "manifest of " + ref.str() + " does not match its digest");
  if (auto check = load_image(st, md, &platform, true); !check.ok()) return std::move(check).error().wrap(ref.str());
  return md;
}

}  // namespace

Result<std::string> resolve_base(store::Store& st, registry::Client& client, const std::string& ref,
                                 PullPolicy policy, const oci::Platform& platform,
                                 const std::function<void(const std::string&)>& note, std::vector<LazyPull>* lazy) {
  auto parsed = registry::Reference::parse(ref);
  std::string canonical =
      parsed.ok() ? parsed->registry + "/" + parsed->repository + ":" + parsed->tag : std::string();
  // A short name the local store knows as written (ocib import, an earlier ocib build -t).
  if (normalize_name(ref) != canonical) {
    if (auto local = st.resolve_tag(normalize_name(ref))) {
      auto img = load_image(st, *local, &platform);
      if (img.ok()) return img->manifest_digest;  // of an index: the platform's manifest
      if (load_image(st, *local).ok()) return std::move(img).error();  // there, for another platform
    }
  }
  if (!parsed.ok()) return std::move(parsed).error();
  const registry::Reference& r = *parsed;
  if (!r.digest.empty()) {
    if (st.has_blob(r.digest))
      if (auto img = load_image(st, r.digest, &platform); img.ok()) return img->manifest_digest;
  } else if (auto local = st.resolve_tag(canonical); local && load_image(st, *local, &platform).ok()) {
    if (policy == PullPolicy::kMissing || policy == PullPolicy::kNever) return *local;
    auto remote = client.resolve(r);
    if (!remote.ok()) {
      note("warning: cannot re-resolve " + canonical + " (" + remote.error().message() + "); using the local copy");
      return *local;
    }
    if (*remote == *local) return *local;
    // HEAD's Docker-Content-Digest is the registry's word, unverified. When it differs from the
    // stored copy the manifest bytes decide: a registry whose HEAD disagrees with its GET body
    // would otherwise make every build pull again (and the pull would store the same bytes).
    if (auto verified = client.resolve_verified(r); verified.ok() && *verified == *local) {
      note("warning: " + canonical + ": the registry's HEAD digest " + *remote +
           " is not the digest of the manifest it serves (" + *local + "); using the local copy");
      return *local;
    }
    note("pulling " + canonical + ": the tag moved to " + *remote);
  }
  if (policy == PullPolicy::kNever)
    return Error(Errc::kNotFound, "image " + canonical + " is not in the local store and --pull=never");
  note("pulling " + r.str());
  if (!lazy) return pull_image(st, client, r, platform);
  OCIB_ASSIGN_OR_RETURN(std::string md, pull_image_manifest(st, client, r, platform));
  LazyPull l;
  l.manifest_digest = md;
  if (!r.tag.empty() && oci::matches(platform, oci::Platform::host())) l.tag = r.registry + "/" + r.repository + ":" + r.tag;
  lazy->push_back(std::move(l));
  return md;
}

Result<std::string> push_image(const store::Store& st, registry::Client& client,
                               const std::string& name_or_digest, const registry::Reference& dest) {
  std::string digest = name_or_digest;
  if (digest.rfind("sha256:", 0) != 0) {
    auto d = st.resolve_tag(normalize_name(name_or_digest));
    if (!d) return Error(Errc::kNotFound, "image \"" + name_or_digest + "\" is not in the local store");
    digest = *d;
  }
  OCIB_ASSIGN_OR_RETURN(json top, read_json_blob(st, digest));
  // Other repositories of the same registry that this store pushed to or pulled from may hold
  // the blobs already: ask the registry to mount them instead of uploading.
  std::vector<std::string> mount_from;
  for (const auto& [tag, tagged] : st.list_tags()) {
    auto r = registry::Reference::parse(tag);
    if (!r.ok() || r->registry != dest.registry || r->repository == dest.repository) continue;
    if (std::find(mount_from.begin(), mount_from.end(), r->repository) == mount_from.end())
      mount_from.push_back(r->repository);
  }
  auto locate = [&st](const std::string& d) { return st.blob_path(d); };
  // One image manifest with its config and layers, under `to`.
  auto push_one = [&](const std::string& md, const registry::Reference& to) -> Result<std::string> {
    OCIB_ASSIGN_OR_RETURN(StoredImage img, load_image(st, md));
    OCIB_ASSIGN_OR_RETURN(std::string manifest, fs::read_file(st.blob_path(img.manifest_digest)));
    OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(manifest, "manifest " + img.manifest_digest));
    OCIB_ASSIGN_OR_RETURN(oci::ImageManifest parsed, oci::manifest_from_json(j, "manifest " + img.manifest_digest));
    std::string mt = parsed.media_type.empty() ? oci::kMediaTypeManifest : parsed.media_type;
    std::vector<oci::Descriptor> blobs;
    blobs.push_back(parsed.config);
    for (const auto& l : img.layers) blobs.push_back(l);
    return client.push(to, manifest, mt, blobs, locate, mount_from);
  };
  if (!oci::is_index_json(top)) return push_one(digest, dest);
  // An image index: every manifest by digest first (the registry checks they exist), then the
  // index under the tag.
  OCIB_ASSIGN_OR_RETURN(oci::ImageIndex top_index, oci::index_from_json(top, "image index " + digest));
  for (const auto& d : top_index.manifests) {
    registry::Reference by_digest = dest;
    by_digest.tag.clear();
    by_digest.digest = d.digest;
    auto pushed = push_one(d.digest, by_digest);
    if (!pushed.ok()) return std::move(pushed).error().wrap(d.platform ? oci::str(*d.platform) : d.digest);
  }
  OCIB_ASSIGN_OR_RETURN(std::string index, fs::read_file(st.blob_path(digest)));
  return client.push(dest, index, top_index.media_type.empty() ? oci::kMediaTypeIndex : top_index.media_type, {},
                     locate, mount_from);
}

Result<std::string> import_oci_layout(store::Store& st, const std::string& dir, const std::string& selector) {
  const std::string index_path = fs::join(dir, "index.json");
  OCIB_ASSIGN_OR_RETURN(std::string index_bytes, fs::read_file(index_path));
  OCIB_ASSIGN_OR_RETURN(std::string chosen, choose_entry(index_bytes, index_path, selector, true));
  if (chosen.empty())
    return Error::invalid(dir + ": " + (selector.empty() ? "several images in index.json; name one with :TAG or @DIGEST"
                                                         : "no image " + selector + " in index.json"));
  // Blob paths come from validated digests only, so nothing outside DIR/blobs is read.
  // Manifests and indexes are parsed to find their children; layers and configs are only copied.
  // depth: how many indexes lead to this blob.
  std::function<Status(const std::string&, bool, int)> adopt = [&](const std::string& digest, bool parse,
                                                                    int depth) -> Status {
    std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : "";
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Error(Errc::kUnsupported, dir + ": unsupported digest \"" + digest + "\"");
    if (!st.has_blob(digest)) {
      OCIB_ASSIGN_OR_RETURN(std::string got, store_file(st, fs::join(dir, "blobs/sha256/" + hex)));
      if (got != digest) return Error(Errc::kCorrupt, dir + ": blob " + digest + " does not match its digest");
    }
    if (!parse) return {};
    OCIB_ASSIGN_OR_RETURN(std::string bytes, fs::read_file(st.blob_path(digest)));
    const std::string what = dir + ": blob " + digest;
    OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(bytes, what));
    if (!j.is_object()) return Error(Errc::kCorrupt, what + " is not a manifest or index");
    if (oci::is_index_json(j)) {
      OCIB_ASSIGN_OR_RETURN(oci::ImageIndex index, oci::index_from_json(j, what));
      if (depth >= oci::kMaxIndexDepth)
        return Error(Errc::kCorrupt, what + ": image indexes nested deeper than " +
                                         std::to_string(oci::kMaxIndexDepth) + " levels");
      for (const auto& m : index.manifests) OCIB_TRY(adopt(m.digest, true, depth + 1));
    } else {
      OCIB_ASSIGN_OR_RETURN(oci::ImageManifest m, oci::manifest_from_json(j, what));
      OCIB_TRY(adopt(m.config.digest, false, depth));
      for (const auto& l : m.layers) OCIB_TRY(adopt(l.digest, false, depth));
    }
    return {};
  };
  OCIB_TRY(adopt(chosen, true, 0));
  return chosen;
}

Result<std::string> import_image(store::Store& st, const std::string& path, const std::string& name,
                                 const oci::Platform* platform) {
  if (!fs::exists(path)) return Error(Errc::kNotFound, "import: " + path + ": no such file");
  if (is_oci_archive(path)) {
    if (platform) return Error::invalid("import: --platform applies to a rootfs tar; " + path + " is an OCI archive, which names its own");
    return import_oci_archive(st, path, name);
  }
  return import_rootfs(st, path, name, platform ? *platform : oci::Platform::host());
}

}  // namespace ocib::images
