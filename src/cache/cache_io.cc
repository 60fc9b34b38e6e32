#include "cache/cache_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <vector>

#include "base/fd.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "images/images.h"

namespace ocib::cache {

using nlohmann::json;

namespace {

// The index format: {"version": ..., "entries": {key: record}}, the same in a cache directory
// (ocib-cache.json), a registry cache's config blob and an image config's inline cache.
constexpr const char* kIndexVersion = "ocib-cache-v1";

json record_json(const CacheRecord& r) {
  return {{"digest", r.digest}, {"diff_id", r.diff_id}, {"media_type", r.media_type},
          {"size", r.size},     {"created", r.created}, {"name", r.name}};
}

json index_json(const CacheRecords& records) {
  json entries = json::object();
  for (const auto& [key, r] : records) entries[key] = record_json(r);
  return {{"version", kIndexVersion}, {"entries", entries}};
}

bool valid_layer_type(const std::string& mt) {
  return mt == oci::kMediaTypeLayerGzip || mt == oci::kMediaTypeLayerZstd ||
         mt == oci::kMediaTypeLayerTar;
}

// Parses an index's entries; `what` names the source in errors.
Result<CacheRecords> parse_index(const json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("entries") || !j["entries"].is_object())
    return Error(Errc::kCorrupt, what + " is not an ocib cache index (no \"entries\" object)");
  CacheRecords out;
  for (auto it = j["entries"].begin(); it != j["entries"].end(); ++it) {
    const json& e = it.value();
    const std::string& key = it.key();
    if (key.size() != 64 || key.find_first_not_of("0123456789abcdef") != std::string::npos ||
        !e.is_object())
      return Error(Errc::kCorrupt, what + ": bad cache entry \"" + key + "\"");
    CacheRecord r;
    // Every field is type-checked: a wrong type is an error naming the entry and field.
    for (auto [field, dst] : {std::pair{"digest", &r.digest}, std::pair{"diff_id", &r.diff_id},
                              std::pair{"media_type", &r.media_type}, std::pair{"name", &r.name}}) {
      auto f = e.find(field);
      if (f == e.end()) continue;
      if (!f->is_string())
        return Error(Errc::kCorrupt, what + ": cache entry " + key + ": \"" + field + "\" is not a string");
      *dst = f->get<std::string>();
    }
    r.size = -1;
    for (auto [field, dst] : {std::pair{"size", &r.size}, std::pair{"created", &r.created}}) {
      auto f = e.find(field);
      if (f == e.end()) continue;
      if (!f->is_number_integer())
        return Error(Errc::kCorrupt, what + ": cache entry " + key + ": \"" + field + "\" is not an integer");
      *dst = f->get<int64_t>();
    }
    if (!registry::valid_digest(r.digest) || !registry::valid_digest(r.diff_id) || r.size < 0 ||
        !valid_layer_type(r.media_type))
      return Error(Errc::kCorrupt, what + ": cache entry " + key +
                                       " has a bad digest, diff_id, size or media type");
    out.emplace(key, std::move(r));
  }
  return out;
}

std::string mode_of(const TypedSpec& o) { return o.attrs.count("mode") ? o.attrs.at("mode") : "min"; }

void add_all(const CacheRecords& records, const ImportedRecord& proto,
             std::map<std::string, ImportedRecord>& into) {
  for (const auto& [key, r] : records) {
    ImportedRecord ir = proto;
    ir.record = r;
    into.emplace(key, std::move(ir));
  }
}

// The inline cache of an image config (JSON), or nullopt when it has none.
Result<std::optional<CacheRecords>> inline_records(const json& config, const std::string& what) {
  auto c = config.find(kInlineCacheKey);
  if (c == config.end()) return std::optional<CacheRecords>();
  OCIB_ASSIGN_OR_RETURN(CacheRecords r, parse_index(*c, what + " (inline cache)"));
  return std::optional<CacheRecords>(std::move(r));
}

// An image of the local store (a short name `ocib import` or `ocib build -t` gave it, or the
// local copy of a registry image): its config's inline cache; the blobs are in the store.
Result<bool> import_from_store_image(const std::string& name, store::Store& st,
                                     const oci::Platform& platform,
                                     const std::function<void(const std::string&)>& note,
                                     std::map<std::string, ImportedRecord>& into) {
  auto img = images::load_image(st, name, &platform);
  if (!img.ok()) {
    if (img.error().code() == Errc::kNotFound) return false;
    return std::move(img).error();
  }
  OCIB_ASSIGN_OR_RETURN(std::string mbytes, fs::read_file(st.blob_path(img->manifest_digest)));
  const std::string mwhat = "manifest " + img->manifest_digest;
  OCIB_ASSIGN_OR_RETURN(json m, oci::parse_json(mbytes, mwhat));
  OCIB_ASSIGN_OR_RETURN(oci::ImageManifest parsed, oci::manifest_from_json(m, mwhat));
  const oci::Descriptor& cd = parsed.config;
  OCIB_ASSIGN_OR_RETURN(std::string cbytes, fs::read_file(st.blob_path(cd.digest)));
  OCIB_ASSIGN_OR_RETURN(json cfg, oci::parse_json(cbytes, "config " + cd.digest));
  if (!cfg.is_object()) return Error(Errc::kCorrupt, "config " + cd.digest + " is not a JSON object");
  OCIB_ASSIGN_OR_RETURN(auto recs, inline_records(cfg, "image " + name));
  if (!recs) {
    note("warning: the local image " + name +
         " holds no ocib cache (build it with --cache-to type=inline)");
    return true;
  }
  add_all(*recs, ImportedRecord{}, into);
  note("importing inline cache from the local image " + name + " (" + std::to_string(recs->size()) +
       " entries)");
  return true;
}

Status import_registry(const TypedSpec& from, store::Store& st, registry::Client& client,
                       const oci::Platform& platform,
                       const std::function<void(const std::string&)>& note,
                       std::map<std::string, ImportedRecord>& into) {
  const std::string& name = from.attrs.at("ref");
  OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(name));
  std::string canonical =
      ref.registry + "/" + ref.repository + (ref.tag.empty() ? "" : ":" + ref.tag);
  // A short name the store knows as written: a local image (no registry is asked).
  if (ref.digest.empty() && images::normalize_name(name) != canonical &&
      st.resolve_tag(images::normalize_name(name))) {
    OCIB_ASSIGN_OR_RETURN(bool found, import_from_store_image(name, st, platform, note, into));
    if (found) return {};
  }
  auto pulled = client.pull_manifest(ref, platform, images::store_sink(st, "cache-"));
  if (!pulled.ok()) {
    if (pulled.error().code() == Errc::kCorrupt)
      return std::move(pulled).error().wrap("importing cache from " + name);
    // As BuildKit: a cache that cannot be had is not a build failure. The local copy of the
    // image, if this store has one, still serves.
    OCIB_ASSIGN_OR_RETURN(bool found, import_from_store_image(canonical, st, platform, note, into));
    if (found) {
      note("warning: cannot import cache from " + ref.str() + " (" + pulled.error().message() +
           "); using the local copy of the image");
      return {};
    }
    note("warning: no cache imported from " + ref.str() + ": " + pulled.error().message());
    return {};
  }
  // The client verified and parsed these already; parsed again here for the fields it drops.
  auto m = oci::parse_json(pulled->manifest_bytes, "manifest of " + ref.str());
  if (!m.ok()) return std::move(m).error().wrap("importing cache from " + ref.str());
  auto parsed = oci::manifest_from_json(*m, "manifest of " + ref.str());
  if (!parsed.ok()) return std::move(parsed).error().wrap("importing cache from " + ref.str());
  const std::string cfg_type = parsed->config.media_type;
  auto cfg_r = oci::parse_json(pulled->config_bytes, "config of " + ref.str());
  if (!cfg_r.ok() || !cfg_r->is_object())
    return Error(Errc::kCorrupt, "importing cache from " + ref.str() + ": config is not a JSON object");
  const json& cfg = *cfg_r;
  ImportedRecord proto;
  proto.ref = ref.str();
  if (cfg_type == kMediaTypeCacheConfig) {
    OCIB_ASSIGN_OR_RETURN(CacheRecords recs, parse_index(cfg, "cache " + ref.str()));
    add_all(recs, proto, into);
    note("importing cache from " + ref.str() + " (" + std::to_string(recs.size()) + " entries)");
    return {};
  }
  OCIB_ASSIGN_OR_RETURN(auto recs, inline_records(cfg, ref.str()));
  if (!recs) {
    note("warning: " + ref.str() + " holds no ocib cache (config type " + cfg_type +
         "); push a cache with --cache-to type=registry,ref=... or build the image with --cache-to "
         "type=inline");
    return {};
  }
  add_all(*recs, proto, into);
  note("importing inline cache from " + ref.str() + " (" + std::to_string(recs->size()) +
       " entries)");
  return {};
}

Status import_local(const TypedSpec& from, const std::function<void(const std::string&)>& note,
                    std::map<std::string, ImportedRecord>& into) {
  const std::string& src = from.attrs.at("src");
  std::string path = fs::join(src, "ocib-cache.json");
  auto data = fs::read_file(path);
  if (!data.ok()) {
    note("warning: no cache to import from " + src);
    return {};
  }
  OCIB_ASSIGN_OR_RETURN(json j, oci::parse_json(*data, path));
  OCIB_ASSIGN_OR_RETURN(CacheRecords recs, parse_index(j, path));
  ImportedRecord proto;
  proto.dir = src;
  add_all(recs, proto, into);
  return {};
}

// Hard-links (else copies) a store blob into a layout directory's blobs/sha256/.
Status link_blob(store::Store& st, const std::string& digest, const std::string& dir) {
  std::string dst = fs::join(dir, "blobs/sha256/" + digest.substr(7));
  if (fs::exists(dst)) return {};
  std::string tmp = dst + ".tmp" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  if (::link(st.blob_path(digest).c_str(), tmp.c_str()) != 0) {
    OCIB_ASSIGN_OR_RETURN(std::string bytes, fs::read_file(st.blob_path(digest)));
    return fs::write_file_atomic(dst, bytes);
  }
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Error::from_errno("rename " + tmp, e);
  }
  return {};
}

Result<std::string> export_local(const TypedSpec& to, const CacheRecords& records, store::Store& st) {
  const std::string& dest = to.attrs.at("dest");
  OCIB_TRY(fs::mkdirs(fs::join(dest, "blobs/sha256")));
  // Entries of earlier exports to the same directory stay (their blobs are there).
  CacheRecords all = records;
  if (auto old = fs::read_file(fs::join(dest, "ocib-cache.json")); old.ok()) {
    if (auto j = oci::parse_json(*old, dest); j.ok())
      if (auto prev = parse_index(*j, dest); prev.ok()) all.insert(prev->begin(), prev->end());
  }
  for (const auto& [key, r] : records) OCIB_TRY(link_blob(st, r.digest, dest));
  json index = {
      {"schemaVersion", 2}, {"mediaType", oci::kMediaTypeIndex}, {"manifests", json::array()}};
  OCIB_TRY(fs::write_file_atomic(fs::join(dest, "index.json"), index.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  OCIB_TRY(
      fs::write_file_atomic(fs::join(dest, "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})"));
  OCIB_TRY(fs::write_file_atomic(fs::join(dest, "ocib-cache.json"), index_json(all).dump(1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return "exported cache (mode=" + mode_of(to) + ", " + std::to_string(records.size()) +
         " steps) to " + dest;
}

Result<std::string> export_registry(const TypedSpec& to, const CacheRecords& records, store::Store& st,
                                    registry::Client& client) {
  OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(to.attrs.at("ref")));
  std::string config = oci::canonical(index_json(records));
  OCIB_ASSIGN_OR_RETURN(std::string config_digest, st.put_blob(config));
  oci::Descriptor cd{
      kMediaTypeCacheConfig, config_digest, static_cast<int64_t>(config.size()), {}, {}};
  std::vector<oci::Descriptor> layers;
  std::set<std::string> seen;
  for (const auto& [key, r] : records) {
    if (!seen.insert(r.digest).second) continue;
    if (!st.has_blob(r.digest))
      return Error(Errc::kNotFound,
                   "cache blob " + r.digest + " of " + r.name + " is not in the store");
    layers.push_back({r.media_type, r.digest, r.size, {}, {}});
  }
  json manifest = oci::make_manifest(cd, layers);
  manifest["artifactType"] = kMediaTypeCacheConfig;
  std::string manifest_bytes = oci::canonical(manifest);
  std::vector<oci::Descriptor> blobs = {cd};
  blobs.insert(blobs.end(), layers.begin(), layers.end());
  // As an image push: other repositories of that registry this store knows may hold the blobs.
  std::vector<std::string> mount_from;
  for (const auto& [tag, digest] : st.list_tags()) {
    auto r = registry::Reference::parse(tag);
    if (!r.ok() || r->registry != ref.registry || r->repository == ref.repository) continue;
    if (std::find(mount_from.begin(), mount_from.end(), r->repository) == mount_from.end())
      mount_from.push_back(r->repository);
  }
  auto before = client.stats();
  auto pushed = client.push(
      ref, manifest_bytes, oci::kMediaTypeManifest, blobs,
      [&st](const std::string& d) { return st.blob_path(d); }, mount_from);
  if (!pushed.ok()) return std::move(pushed).error().wrap("exporting cache to " + ref.str());
  auto after = client.stats();
  return "exported cache (mode=" + mode_of(to) + ", " + std::to_string(records.size()) +
         " steps) to " + ref.str() + "@" + *pushed + " (" +
         std::to_string(after.uploaded - before.uploaded) + " uploaded, " +
         std::to_string(after.skipped - before.skipped) + " already there, " +
         std::to_string(after.mounted - before.mounted) + " mounted)";
}

}  // namespace

std::string cache_mode(const TypedSpec& to) { return mode_of(to); }

Status check_cache_specs(const std::vector<TypedSpec>& cache_to, const std::vector<TypedSpec>& cache_from) {
  // The keys each kind takes (buildx's, as far as ocib implements them): any other is an error,
  // not silently dropped.
  auto check_keys = [](const char* flag, const TypedSpec& sp, std::vector<std::string> keys) -> Status {
    keys.push_back("ignore-error");
    for (const auto& [k, v] : sp.attrs)
      if (std::find(keys.begin(), keys.end(), k) == keys.end())
        return Error::invalid(std::string(flag) + " type=" + sp.type + ": unknown key \"" + k + "\" (" +
                              join(keys, ", ") + ")" + did_you_mean(k, keys));
    if (auto ie = sp.get("ignore-error"); !ie.empty() && ie != "true" && ie != "false")
      return Error::invalid(std::string(flag) + ": ignore-error must be true or false, not \"" + ie + "\"");
    return {};
  };
  for (const auto& to : cache_to) {
    if (to.type == "local") OCIB_TRY(check_keys("--cache-to", to, {"dest", "mode"}));
    else if (to.type == "registry") OCIB_TRY(check_keys("--cache-to", to, {"ref", "mode"}));
    else if (to.type == "inline") OCIB_TRY(check_keys("--cache-to", to, {"mode"}));
  }
  for (const auto& from : cache_from) {
    if (from.type == "local") OCIB_TRY(check_keys("--cache-from", from, {"src"}));
    else if (from.type == "registry") OCIB_TRY(check_keys("--cache-from", from, {"ref"}));
  }
  for (const auto& to : cache_to) {
    if (to.type == "local") {
      if (!to.attrs.count("dest") || to.attrs.at("dest").empty())
        return Error::invalid("--cache-to type=local needs dest=DIR");
    } else if (to.type == "registry") {
      if (!to.attrs.count("ref") || to.attrs.at("ref").empty())
        return Error::invalid("--cache-to type=registry needs ref=HOST/REPOSITORY:TAG");
      auto r = registry::Reference::parse(to.attrs.at("ref"));
      if (!r.ok()) return std::move(r).error().wrap("--cache-to ref=" + to.attrs.at("ref"));
      if (!r->digest.empty())
        return Error::invalid("--cache-to ref=" + to.attrs.at("ref") +
                              ": a cache is pushed to a tag, not a digest");
    } else if (to.type == "inline") {
      if (mode_of(to) != "min")
        return Error::invalid(
            "--cache-to type=inline holds the image's own layers only (mode=min); "
            "use type=registry or type=local for mode=max");
    } else {
      return Error::invalid("--cache-to type=" + to.type +
                            " is not supported (local, registry, inline)");
    }
    std::string mode = mode_of(to);
    if (mode != "min" && mode != "max")
      return Error::invalid("--cache-to mode must be min or max, not \"" + mode + "\"");
  }
  for (const auto& from : cache_from) {
    if (from.type == "local") {
      if (!from.attrs.count("src") || from.attrs.at("src").empty())
        return Error::invalid("--cache-from type=local needs src=DIR");
    } else if (from.type == "registry") {
      if (!from.attrs.count("ref") || from.attrs.at("ref").empty())
        return Error::invalid("--cache-from type=registry needs ref=HOST/REPOSITORY:TAG");
      if (auto r = registry::Reference::parse(from.attrs.at("ref")); !r.ok())
        return std::move(r).error().wrap("--cache-from ref=" + from.attrs.at("ref"));
    } else {
      return Error::invalid("--cache-from type=" + from.type +
                            " is not supported (local, registry)");
    }
  }
  return {};
}

Status import_cache(const TypedSpec& from, store::Store& st, registry::Client& client,
                    const oci::Platform& platform,
                    const std::function<void(const std::string&)>& note,
                    std::map<std::string, ImportedRecord>& into) {
  if (from.type == "local") return import_local(from, note, into);
  if (from.type == "registry") return import_registry(from, st, client, platform, note, into);
  return Error::invalid("--cache-from type=" + from.type + " is not supported (local, registry)");
}

Status fetch_cache_blob(const ImportedRecord& r, store::Store& st, registry::Client& client) {
  const std::string& digest = r.record.digest;
  if (st.has_blob(digest)) return {};
  if (!r.ref.empty()) {
    OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(r.ref));
    return client.pull_blob(ref, {r.record.media_type, digest, r.record.size, {}, {}},
                            images::store_sink(st, "cache-"));
  }
  if (r.dir.empty()) return Error(Errc::kNotFound, "cache blob " + digest + " is not in the store");
  std::string src = fs::join(r.dir, "blobs/sha256/" + digest.substr(7));
  if (!fs::exists(src))
    return Error(Errc::kNotFound, "cache blob " + digest + " is missing from " + r.dir);
  // Copy, hashing as we go; only a verified copy gets its name in the store.
  std::string tmp = st.tmp_file_path("cache-");
  Status copied = [&]() -> Status {
    OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(src, O_RDONLY));
    OCIB_ASSIGN_OR_RETURN(UniqueFd out, fs::open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::from_errno("read " + src, errno);
      if (n == 0) break;
      h.update(buf.data(), static_cast<size_t>(n));
      if (::write(out.get(), buf.data(), static_cast<size_t>(n)) != n)
        return Error::from_errno("write " + tmp, errno);
    }
    if ("sha256:" + h.hex_final() != digest)
      return Error(Errc::kCorrupt,
                   "imported cache blob " + src + " does not match its digest " + digest);
    return st.adopt_blob(tmp, digest);
  }();
  if (!copied.ok()) ::unlink(tmp.c_str());
  return copied;
}

Result<std::string> export_cache_records(const TypedSpec& to, const CacheRecords& records,
                                         store::Store& st, registry::Client& client) {
  if (to.type == "local") return export_local(to, records, st);
  if (to.type == "registry") return export_registry(to, records, st, client);
  return Error::invalid("--cache-to type=" + to.type + " is not exported here");
}

json inline_cache_json(const CacheRecords& records) { return index_json(records); }

}  // namespace ocib::cache
