#include "exporter/exporter.h"
#include "solver/pack_snapshot.h"
#include "exporter/daemon_load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/sha256.h"
#include "cache/cache_io.h"
#include "copy/copy.h"
#include "dag/critical_path.h"
#include "exporter/timeline.h"
#include "images/images.h"
#include "layers/layers.h"
#include "oci/layout.h"
#include "oci/platform.h"
#include "solver/sandboxed.h"

namespace ocib::exporter {

using nlohmann::json;

namespace {

double epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Archive outputs are deterministic: when the file at dest is still the one this store wrote
// for the same manifest (same inode, size, mtime and ctime), rewriting it would produce the
// same bytes, so a no-op rebuild skips it.
std::string export_record_path(const store::Store& st, const std::string& dest) {
  auto real = fs::real_path(fs::dirname(dest));
  std::string abs = fs::join(real.ok() ? *real : fs::dirname(dest), fs::basename(dest));
  return fs::join(st.root(), "exports/" + Sha256::hex(abs).substr(0, 32) + ".json");
}

json stat_fingerprint(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return nullptr;
  return {{"ino", sb.st_ino}, {"size", sb.st_size},
          {"mtime", static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec},
          {"ctime", static_cast<int64_t>(sb.st_ctim.tv_sec) * 1000000000 + sb.st_ctim.tv_nsec}};
}

// The steps a build ran (or answered from the cache) with their measured durations, and the
// critical path through them by those durations, ending at the target's top step: what the
// summary prints and the metadata's "ocib.critical_path" (the timeline's highlighted bars).
struct StepTimes {
  std::map<const plan::Step*, double> dur;
  std::vector<const plan::Step*> critical;  // first step first
  double critical_length = 0;
};

StepTimes step_times(const solver::Solver& solved) {
  const dag::Report& report = solved.report();
  StepTimes out;
  for (const auto& s : solved.plan().steps) {
    if (s.vid >= report.timings.size() || !report.timings[s.vid].ran) continue;
    const auto& t = report.timings[s.vid];
    out.dur[&s] = std::chrono::duration<double>(t.completed - t.started).count();
  }
  const plan::Step* top = solved.plan().top();
  if (!top || out.dur.empty()) return out;
  // Vertex ids are the steps' positions in the plan.
  std::vector<const plan::Step*> by_vid;
  for (const auto& st : solved.plan().steps) by_vid.push_back(&st);
  auto cp = dag::critical_path(
      by_vid.size(),
      [&](size_t v) {
        std::vector<size_t> d;
        for (const plan::Step* x : by_vid[v]->deps) d.push_back(x->vid);
        return d;
      },
      [&](size_t v) {
        auto it = out.dur.find(by_vid[v]);
        return it == out.dur.end() ? 0.0 : it->second;
      },
      top->vid);
  out.critical_length = cp.length;
  for (size_t v : cp.path) out.critical.push_back(by_vid[v]);
  return out;
}

}  // namespace

// The target's config and manifest, written to the store.
Result<BuiltImage> Exporter::make_image(const solver::Solver& solved) {
  const plan::Plan& pl = solved.plan();
  const plan::StageState& st = pl.target_stage();
  std::vector<const plan::Step*> chain;
  for (const plan::Step* s = st.top; s; s = s->parent) chain.push_back(s);
  std::reverse(chain.begin(), chain.end());

  oci::ImageConfig cfg;
  cfg.platform = oci::normalize(st.platform);
  cfg.config = st.config;
  cfg.author = st.author;
  // --label: on the final image only, over the Dockerfile's LABELs (docker build's order).
  for (const auto& [k, v] : opts_.labels) cfg.config.labels[k] = v;
  std::vector<oci::Descriptor> layer_descs;
  int64_t latest = opts_.source_date_epoch.value_or(0);
  for (const plan::Step* s : chain) {
    if (s->packed.valid()) OCIB_TRY(s->packed.get());
  }
  for (const plan::Step* s : chain) {
    cfg.diff_ids.push_back(s->result.diff_id);
    oci::Descriptor d;
    d.media_type = s->result.media_type;
    d.digest = s->result.digest;
    d.size = s->result.size;
    layer_descs.push_back(d);
    if (!opts_.source_date_epoch) latest = std::max(latest, s->result.created);
  }
  // An image with no layer at all (FROM scratch and config only) is dated by the build, as
  // BuildKit dates it, not by the epoch.
  if (chain.empty() && !opts_.source_date_epoch && st.base_created.empty())
    latest = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // History times come from the layers' own (cached) creation times so a cached rebuild gives
  // the same config, hence the same digest.
  int64_t last_time = chain.empty() ? latest : chain.front()->result.created;
  bool own_layers = false;
  for (const auto& h : st.history) {
    oci::HistoryEntry e;
    e.created_by = h.created_by;
    e.empty_layer = h.empty_layer;
    if (!h.created.empty()) {
      e.created = h.created;  // inherited from the base image
    } else {
      if (h.step) last_time = h.step->result.created;
      e.created = oci::rfc3339(opts_.source_date_epoch ? *opts_.source_date_epoch : last_time);
      e.comment = "ocib";
      own_layers = own_layers || h.step;
    }
    cfg.history.push_back(e);
  }
  cfg.created = own_layers || st.base_created.empty() || opts_.source_date_epoch ? oci::rfc3339(latest) : st.base_created;
  json cfg_json = cfg.to_json();
  // --cache-to type=inline: the cache index travels in the config; its blobs are the layers.
  if (std::any_of(opts_.cache_to.begin(), opts_.cache_to.end(), [](const TypedSpec& c) { return c.type == "inline"; })) {
    OCIB_ASSIGN_OR_RETURN(cache::CacheRecords records, solved.cache_records("min"));
    cfg_json[cache::kInlineCacheKey] = cache::inline_cache_json(records);
  }
  std::string config_bytes = oci::canonical(cfg_json);
  OCIB_ASSIGN_OR_RETURN(std::string config_digest, store_.put_blob(config_bytes));
  oci::Descriptor config_desc{oci::kMediaTypeConfig, config_digest, static_cast<int64_t>(config_bytes.size()), {}, {}};
  std::string manifest_bytes =
      oci::canonical(oci::make_manifest(config_desc, layer_descs, annotations_for("manifest", &pl.platform)));
  OCIB_ASSIGN_OR_RETURN(std::string manifest_digest, store_.put_blob(manifest_bytes));
  BuiltImage out;
  out.manifest_digest = manifest_digest;
  out.manifest_size = static_cast<int64_t>(manifest_bytes.size());
  out.config_digest = config_digest;
  out.platform = oci::normalize(pl.platform);
  out.layers = layer_descs;
  out.diff_ids = cfg.diff_ids;
  return out;
}

std::map<std::string, std::string> Exporter::annotations_for(const std::string& level, const oci::Platform* p) const {
  std::map<std::string, std::string> out;
  for (const auto& a : opts_.annotations) {
    if (std::find(a.levels.begin(), a.levels.end(), level) == a.levels.end()) continue;
    if (a.platform && (!p || !oci::same(*a.platform, *p))) continue;
    out[a.key] = a.value;
  }
  return out;
}

Result<Annotation> parse_annotation(const std::string& spec) {
  static const std::vector<std::string> kLevels = {"manifest", "index", "manifest-descriptor", "index-descriptor"};
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return Error::invalid("invalid --annotation \"" + spec + "\" (KEY=VALUE)");
  Annotation a;
  std::string head = spec.substr(0, eq);
  a.value = spec.substr(eq + 1);
  // The type prefix ends at the first ':' after any [PLATFORM].
  size_t from = head.find('[') != std::string::npos && head.find('[') < head.find(':') ? head.find(']') : 0;
  size_t colon = from == std::string::npos ? std::string::npos : head.find(':', from);
  if (colon == std::string::npos) {
    a.levels = {"manifest"};
    a.key = head;
  } else {
    a.key = head.substr(colon + 1);
    std::string types = head.substr(0, colon);
    if (auto lb = types.find('['); lb != std::string::npos) {
      if (types.back() != ']') return Error::invalid("invalid --annotation \"" + spec + "\": unclosed [PLATFORM]");
      OCIB_ASSIGN_OR_RETURN(oci::Platform pl, oci::parse(types.substr(lb + 1, types.size() - lb - 2)));
      a.platform = pl;
      types = types.substr(0, lb);
    }
    for (const auto& t : split_commas(types)) {
      if (std::find(kLevels.begin(), kLevels.end(), t) == kLevels.end())
        return Error::invalid("invalid --annotation type \"" + t + "\" (manifest, index, manifest-descriptor, "
                              "index-descriptor)" + did_you_mean(t, kLevels));
      a.levels.push_back(t);
    }
  }
  if (a.key.empty()) return Error::invalid("invalid --annotation \"" + spec + "\": empty key");
  return a;
}

// Writes every -o output, the tags and --cache-to. `builds` are the per-platform Builders
// (this one first) and `images` their images: one is a plain image, several an image index
// listing each manifest with its platform.
Result<ExportResult> Exporter::export_outputs(const std::vector<const solver::Solver*>& builds, const std::vector<BuiltImage>& images) {
  // With attestations the result is an index even for one platform (BuildKit): each image
  // manifest, then its attestation manifest.
  const bool attested = opts_.attest.any();
  bool multi = images.size() > 1 || attested;
  oci::LayoutImage img;
  std::string manifest_digest = images.front().manifest_digest;  // of the result: the index when multi
  std::string config_digest = images.front().config_digest;
  auto add_blob = [&img](const std::string& d) {
    if (std::find(img.blob_digests.begin(), img.blob_digests.end(), d) == img.blob_digests.end())
      img.blob_digests.push_back(d);
  };
  if (!multi) {
    if (!annotations_for("index", nullptr).empty() || !annotations_for("index-descriptor", nullptr).empty())
      return Error::invalid("--annotation index: a single-platform image has no index (build several platforms)");
    img.manifest = {oci::kMediaTypeManifest, manifest_digest, images.front().manifest_size,
                    annotations_for("manifest-descriptor", &images.front().platform), images.front().platform};
  } else {
    std::vector<oci::Descriptor> manifests;
    for (const auto& im : images)
      manifests.push_back({oci::kMediaTypeManifest, im.manifest_digest, im.manifest_size,
                           annotations_for("manifest-descriptor", &im.platform), im.platform});
    if (attested) {
      std::string name = opts_.tags.empty() ? "_" : images::normalize_name(opts_.tags.front());
      BuildFacts facts = opts_.facts;
      facts.finished = oci::rfc3339(static_cast<int64_t>(::time(nullptr)));
      for (size_t i = 0; i < images.size(); ++i) {
        const BuiltImage& im = images[i];
        const plan::Plan& pl = builds[i]->plan();
        std::string subject = subject_name(name, im.platform);
        std::vector<json> statements;
        if (opts_.attest.provenance) {
          BuildFacts f = facts;
          for (const auto& stg : pl.stages)
            if (!stg.base.empty() && !stg.base_digest.empty())
              f.materials.push_back({images::normalize_name(stg.base), stg.base_digest, stg.platform});
          statements.push_back(provenance_statement(subject, im.manifest_digest, im.platform, f, opts_.attest.provenance_mode));
        }
        if (opts_.attest.sbom) {
          OCIB_ASSIGN_OR_RETURN(ScanReport scan, scan_built_image(*builds[i], pl.top(), reporter_));
          statements.push_back(sbom_statement(subject, im.manifest_digest, scan.packages, facts.finished, scan.notes));
        }
        std::vector<std::string> blobs;
        OCIB_ASSIGN_OR_RETURN(oci::Descriptor att, store_attestation_manifest(store_, im.manifest_digest, statements, &blobs));
        for (const auto& b : blobs) add_blob(b);
        manifests.push_back(att);
      }
    }
    std::string index_bytes = oci::canonical(oci::make_image_index(manifests, annotations_for("index", nullptr)));
    OCIB_ASSIGN_OR_RETURN(manifest_digest, store_.put_blob(index_bytes));
    config_digest.clear();
    img.manifest = {oci::kMediaTypeIndex, manifest_digest, static_cast<int64_t>(index_bytes.size()),
                    annotations_for("index-descriptor", nullptr), {}};
    add_blob(manifest_digest);
  }
  for (const auto& im : images) {
    add_blob(im.manifest_digest);
    add_blob(im.config_digest);
    for (const auto& d : im.layers) add_blob(d.digest);
  }
  if (!opts_.tags.empty()) {
    const std::string& t = opts_.tags.front();
    auto colon = t.rfind(':');
    bool has_tag = colon != std::string::npos && t.find('/', colon) == std::string::npos;
    img.manifest.annotations[oci::kAnnotationRefName] = has_tag ? t.substr(colon + 1) : "latest";
    img.manifest.annotations["io.containerd.image.name"] = has_tag ? t : t + ":latest";
  }
  Subject subject{img, manifest_digest, config_digest, multi, builds, images};
  for (const auto& out : opts_.outputs) {
    const OutputKind* kind = output_kind(out.type);
    if (!kind) return Error::invalid("output type \"" + out.type + "\" is not supported");  // parse_output checked
    OCIB_TRY((this->*kind->write)(out, subject));
  }
  for (const auto& t : opts_.tags) OCIB_TRY(store_.tag(t, manifest_digest));
  // --cache-to: one export per destination, holding every platform's records.
  for (const auto& c : opts_.cache_to) {
    if (c.type == "inline") continue;  // written into the image config by make_image
    cache::CacheRecords records;
    for (const solver::Solver* b : builds) {
      OCIB_ASSIGN_OR_RETURN(cache::CacheRecords r, b->cache_records(cache::cache_mode(c)));
      records.insert(r.begin(), r.end());
    }
    auto done = cache::export_cache_records(c, records, store_, client_);
    if (!done.ok() && c.get("ignore-error") == "true") {
      // buildx's ignore-error=true: an unreachable cache is a warning, the build stands.
      reporter_.note("warning: --cache-to type=" + c.type + " failed (ignore-error=true): " + done.error().str());
      continue;
    }
    if (!done.ok()) return std::move(done).error().wrap("--cache-to type=" + c.type);
    reporter_.note(*done);
  }
  if (multi)
    for (const auto& im : images) reporter_.note(oci::str(im.platform) + " image digest " + im.manifest_digest);
  reporter_.note((multi ? "image index digest " : "image digest ") + manifest_digest);
  if (opts_.summary)
    for (const solver::Solver* b : builds) print_summary(*b);
  ExportResult r;
  r.manifest_digest = manifest_digest;
  r.config_digest = config_digest;
  r.descriptor = img.manifest;
  r.descriptor.platform = {};
  // As buildx: a multi-platform build's image ID is its index digest.
  r.image_id = multi ? manifest_digest : config_digest;
  if (!opts_.metadata_file.empty() || !opts_.timeline_file.empty()) OCIB_TRY(write_metadata(r, builds, images));
  if (!opts_.iidfile.empty()) OCIB_TRY(fs::write_file_atomic(opts_.iidfile, r.image_id));
  return r;
}

bool Exporter::export_unchanged(const std::string& dest, const std::string& type, const std::string& manifest) {
  if (dest == "-" || dest == "/dev/stdout") return false;
  // Only a regular file can still hold what was written to it (not a FIFO or a device).
  if (struct stat st; ::stat(dest.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  auto data = fs::read_file(export_record_path(store_, dest));
  if (!data.ok()) return false;
  auto j = json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  json fp = stat_fingerprint(dest);
  return !fp.is_null() && j.value("type", "") == type && j.value("manifest", "") == manifest && j["file"] == fp;
}

void Exporter::record_export(const std::string& dest, const std::string& type, const std::string& manifest) {
  json fp = stat_fingerprint(dest);
  if (fp.is_null()) return;
  std::string p = export_record_path(store_, dest);
  if (!fs::mkdirs(fs::dirname(p)).ok()) return;
  (void)fs::write_file_atomic(p, json({{"type", type}, {"manifest", manifest}, {"file", fp}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Explains where the time went: the critical path, the parallelism achieved and cache hits.
void Exporter::print_summary(const solver::Solver& solved) {
  const dag::Report& report_ = solved.report();
  using clock = std::chrono::system_clock;
  std::optional<clock::time_point> first, last;
  double busy = 0;
  int ran = 0, cached = 0;
  StepTimes times = step_times(solved);
  for (const auto& [s, d] : times.dur) {
    const auto& t = report_.timings[s->vid];
    busy += d;
    (s->cached ? cached : ran)++;
    if (!first || t.started < *first) first = t.started;
    if (!last || t.completed > *last) last = t.completed;
  }
  if (!first || !solved.plan().top()) return;
  double wall = std::chrono::duration<double>(*last - *first).count();
  progress::BuildSummary sum;
  sum.wall = wall;
  sum.ran = ran;
  sum.cached = cached;
  sum.parallelism = wall > 0 ? busy / wall : 1.0;
  sum.critical = times.critical_length;
  for (const plan::Step* s : times.critical) sum.path.push_back({s->name, times.dur[s], s->cached});
  reporter_.summary(sum);
}

std::optional<RunSummary> summarize(const std::vector<const solver::Solver*>& solved) {
  using clock = std::chrono::system_clock;
  std::optional<clock::time_point> first, last;
  RunSummary out;
  double busy = 0, longest = -1;
  // Keys some solver executed: on another solver's path that step waited for it, so it is
  // shown as run (its time there is the wait), not as a cache hit.
  std::set<std::string> executed;
  for (const solver::Solver* b : solved)
    for (const auto& s : b->plan().steps)
      if (s.ran && !s.cached) executed.insert(s.key);
  for (const solver::Solver* b : solved) {
    StepTimes times = step_times(*b);
    for (const auto& [s, d] : times.dur) {
      const auto& t = b->report().timings[s->vid];
      // A step another solver ran (same key) waited for it and is cached here: its wait is
      // not work.
      if (!s->cached) busy += d;
      (s->cached ? out.summary.cached : out.summary.ran)++;
      if (!first || t.started < *first) first = t.started;
      if (!last || t.completed > *last) last = t.completed;
    }
    if (!b->plan().top() || times.critical_length <= longest) continue;
    longest = times.critical_length;
    out.summary.critical = times.critical_length;
    out.summary.path.clear();
    out.critical_ids.clear();
    for (const plan::Step* s : times.critical) {
      out.summary.path.push_back({s->name, times.dur[s], s->cached && !executed.count(s->key)});
      out.critical_ids.push_back(s->display_id);
    }
  }
  if (!first) return std::nullopt;
  out.summary.wall = std::chrono::duration<double>(*last - *first).count();
  out.summary.parallelism = out.summary.wall > 0 ? busy / out.summary.wall : 1.0;
  return out;
}

// The target's merged filesystem, copied out through a read-only overlay view inside the
// sandbox. As root the owners are kept; rootless, files belong to the caller.
Status Exporter::export_filesystem(const plan::Plan& pl, const std::string& dest_dir, bool keep_owners) {
  OCIB_ASSIGN_OR_RETURN(std::string upper, store_.make_tmp_dir("up-"));
  solver::Staging upper_guard(upper, ids_);
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("run-"));
  solver::Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  sandbox::ReadOnlyView view;
  view.layers = solver::lowers_of(store_, pl.top());
  spec.views = {view};
  spec.host_dirs = {dest_dir};
  bool owners = keep_owners || ::geteuid() == 0;
  auto done = solver::run_function(spec, ids_, reporter_, 0, [owners](const std::vector<int>& fds) -> Result<std::string> {
    copy::CopyOp op;
    op.sources = {"."};
    op.dest = "/proc/self/fd/" + std::to_string(fds.at(1)) + "/";
    op.preserve_owner = owners;
    OCIB_TRY(copy::copy_into(fds.at(0), op));
    return std::string();
  });
  if (!done.ok()) return std::move(done).error().wrap("exporting filesystem");
  return {};
}

// `builds`/`images`: every platform's Builder and image (this one first). The --metadata-file
// document, and the --timeline page drawn from it.
Status Exporter::write_metadata(const ExportResult& r, const std::vector<const solver::Solver*>& builds,
                               const std::vector<BuiltImage>& images) {
  json verts = json::array();
  // ocib's own keys beside buildx's: the critical path as the vertices' ids, first step
  // first (each platform's in turn); the summary prints the same path.
  json critical = json::array();
  for (const solver::Solver* b : builds) {
    std::set<int> listed;
    for (const auto& s : b->plan().steps) {
      if (s.vid >= b->report().timings.size() || !b->report().timings[s.vid].ran) continue;
      const auto& t = b->report().timings[s.vid];
      verts.push_back({{"id", s.display_id}, {"name", s.name}, {"stage", s.stage}, {"cached", s.cached},
                       {"key", s.key}, {"digest", s.result.digest},
                       {"started", epoch_seconds(t.started)}, {"completed", epoch_seconds(t.completed)}});
      listed.insert(s.display_id);
    }
    for (const plan::Step* s : step_times(*b).critical)
      if (listed.count(s->display_id)) critical.push_back(s->display_id);
  }
  json j = {{"containerimage.digest", r.manifest_digest}, {"ocib.vertices", verts}, {"ocib.critical_path", critical}};
  if (images.size() == 1) {
    j["containerimage.config.digest"] = r.config_digest;
  } else {
    // An image index: each platform's manifest and config.
    json per = json::object();
    for (const auto& im : images)
      per[oci::str(im.platform)] = {{"containerimage.digest", im.manifest_digest},
                                           {"containerimage.config.digest", im.config_digest}};
    j["ocib.platforms"] = per;
  }
  j["containerimage.descriptor"] = {{"mediaType", r.descriptor.media_type}, {"digest", r.descriptor.digest},
                                    {"size", r.descriptor.size}};
  // buildx: every name the image was given, comma-joined (the -t tags, then image/registry
  // outputs' name= lists).
  std::vector<std::string> names = opts_.tags;
  for (const auto& o : opts_.outputs)
    if (o.type == "image" || o.type == "registry")
      if (auto n = o.attrs.find("name"); n != o.attrs.end())
        for (const auto& one : split_commas(n->second))
          if (!one.empty() && std::find(names.begin(), names.end(), one) == names.end()) names.push_back(one);
  if (!names.empty()) j["image.name"] = join(names, ",");
  if (!pushed_.empty()) j["ocib.pushed"] = pushed_;
  const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (!opts_.metadata_file.empty()) OCIB_TRY(fs::write_file_atomic(opts_.metadata_file, text));
  if (opts_.timeline_file.empty()) return {};
  // Drawn from the document as written (parsed back), so `ocib timeline METADATA.json` gives
  // these same bytes.
  OCIB_ASSIGN_OR_RETURN(std::string page, timeline_html(json::parse(text)));
  auto w = fs::write_file_atomic(opts_.timeline_file, page);
  if (!w.ok()) return std::move(w).error().wrap("--timeline " + opts_.timeline_file);
  reporter_.note("timeline written to " + opts_.timeline_file);
  return {};
}

// The archive outputs: an OCI layout in a tar (type=oci) or a directory (type=oci-layout).
Status Exporter::write_oci(const TypedSpec& out, const Subject& x) {
  const std::string dest = out.get("dest");
  reporter_.note("exporting to " + out.type + " " + dest);
  auto locate = [this](const std::string& d) { return store_.blob_path(d); };
  if (out.type == "oci-layout") return oci::write_layout_dir(dest, {x.img}, locate, progress());
  if (export_unchanged(dest, "oci", x.manifest_digest)) {
    reporter_.note("output unchanged: " + dest);
    return {};
  }
  OCIB_TRY(oci::write_layout_tar(dest, {x.img}, locate, progress()));
  record_export(dest, "oci", x.manifest_digest);
  return {};
}

// type=docker: a docker-archive (`docker load`), one platform.
Status Exporter::write_docker(const TypedSpec& out, const Subject& x) {
  const std::string dest = out.get("dest");
  if (x.images.size() > 1)
    return Error::invalid("output type=docker holds one image, not " + std::to_string(x.images.size()) +
                          " platforms: use type=oci or type=oci-layout for a multi-platform image, or build one --platform");
  std::optional<LoadTarget> load;
  if (dest.empty()) {
    OCIB_ASSIGN_OR_RETURN(LoadTarget t, load_target());
    load = t;
  }
  reporter_.note(load ? "loading into " + load->where : "exporting to docker-archive " + dest);
  oci::DockerArchiveImage di;
  di.config_digest = x.config_digest;
  di.layers = x.images.front().layers;
  di.diff_ids = x.images.front().diff_ids;
  for (const auto& t : opts_.tags) di.repo_tags.push_back(images::normalize_name(t));
  auto locate = [this](const std::string& d) { return store_.blob_path(d); };
  if (load) {
    std::string tmp = store_.tmp_file_path("load-");
    Status w = oci::write_docker_archive(tmp, di, locate, fs::join(store_.root(), "tmp"), progress());
    Status l = w.ok() ? load_archive(*load, tmp) : w;
    ::unlink(tmp.c_str());
    return l;
  }
  std::string path = dest == "-" ? "/dev/stdout" : dest;
  if (path != "/dev/stdout" && export_unchanged(path, "docker", x.manifest_digest)) {
    reporter_.note("output unchanged: " + path);
    return {};
  }
  OCIB_TRY(oci::write_docker_archive(path, di, locate, fs::join(store_.root(), "tmp"), progress()));
  if (path != "/dev/stdout") record_export(path, "docker", x.manifest_digest);
  return {};
}

// buildx: type=image,name=REF[,push=true]; type=registry is image with push=true.
Status Exporter::write_image(const TypedSpec& out, const Subject& x) {
  std::vector<std::string> names;
  if (auto n = out.attrs.find("name"); n != out.attrs.end()) names = split_commas(n->second);
  if (names.empty()) names = opts_.tags;
  if (names.empty()) return Error::invalid("output type=" + out.type + " needs name= (or -t)");
  bool push = out.type == "registry" || out.get("push") == "true";
  // buildx's multi-runner recipe: push-by-digest=true pushes the manifest untagged (its digest
  // goes to the metadata file) for `ocib manifest create` to merge.
  const bool by_digest = out.get("push-by-digest") == "true";
  if (by_digest && !push) return Error::invalid("output type=" + out.type + ": push-by-digest=true needs push=true");
  for (const auto& n : names) {
    if (!by_digest) OCIB_TRY(store_.tag(images::normalize_name(n), x.manifest_digest));
    if (!push) continue;
    OCIB_ASSIGN_OR_RETURN(registry::Reference ref, registry::Reference::parse(n));
    if (by_digest) {
      ref.tag.clear();
      ref.digest = x.manifest_digest;
    }
    reporter_.note("pushing " + ref.str());
    auto pushed = images::push_image(store_, client_, x.manifest_digest, ref);
    if (!pushed.ok()) return std::move(pushed).error().wrap("pushing " + ref.str());
    auto stats = client_.stats();
    reporter_.note("pushed " + ref.str() + "@" + *pushed + " (" + std::to_string(stats.uploaded) + " uploaded, " +
                   std::to_string(stats.skipped) + " already there, " + std::to_string(stats.mounted) + " mounted)");
    pushed_.push_back(ref.str() + "@" + *pushed);
  }
  return {};
}

// type=local (a directory) and type=tar: the target's filesystem; several platforms get one
// directory each, named as buildx does (linux_arm64/).
Status Exporter::write_filesystem(const TypedSpec& out, const Subject& x) {
  const std::string dest = out.get("dest");
  reporter_.note("exporting filesystem to " + out.type + " " + dest);
  // A tar carries the image's owners in its headers, also for a rootless build (whose staging
  // copy then belongs to subordinate ids and is packed in the user namespace); a local
  // directory as a user gets the user's own files, as BuildKit's local exporter gives them.
  const bool tar = out.type != "local";
  auto export_all = [&](const std::string& dir) -> Status {
    if (x.images.size() == 1) return export_filesystem(x.builds.front()->plan(), dir, tar);
    for (size_t i = 0; i < x.builds.size(); ++i) {
      std::string sub = oci::str(x.images[i].platform);
      std::replace(sub.begin(), sub.end(), '/', '_');
      OCIB_TRY(fs::mkdirs(fs::join(dir, sub)));
      OCIB_TRY(export_filesystem(x.builds[i]->plan(), fs::join(dir, sub), tar));
    }
    return {};
  };
  if (out.type == "local") {
    OCIB_TRY(fs::mkdirs(dest));
    return export_all(dest);
  }
  OCIB_ASSIGN_OR_RETURN(std::string dir, store_.make_tmp_dir("fs-"));
  solver::Staging guard(dir, ids_);
  OCIB_TRY(export_all(dir));
  layers::PackOptions po;
  po.compression = layers::Compression::kNone;
  po.ids = &ids_;
  po.clamp_mtime = opts_.source_date_epoch;
  std::string path = dest == "-" ? "/dev/stdout" : dest;
  if (!ids_.needs_helpers) {
    auto packed = layers::pack_dir(dir, path, po);
    if (!packed.ok()) return std::move(packed).error().wrap("writing " + dest);
    return {};
  }
  // Files of subordinate ids (which the caller may not be able to read on the host): packed in
  // the user namespace into the store, then written to dest.
  OCIB_ASSIGN_OR_RETURN(std::string staging, store_.make_tmp_dir("pack-"));
  solver::Staging staging_guard(staging, ids_);
  std::string packed_path = fs::join(staging, "fs.tar");
  auto packed = solver::pack_snapshot(dir, packed_path, po, ids_, staging);
  if (!packed.ok()) return std::move(packed).error().wrap("writing " + dest);
  OCIB_ASSIGN_OR_RETURN(UniqueFd in, fs::open_file(packed_path, O_RDONLY));
  UniqueFd o;
  if (dest == "-") {
    o.reset(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));  // not reopened: it may not be ours to open
    if (!o.valid()) return Error::from_errno("dup stdout", errno);
  } else {
    OCIB_ASSIGN_OR_RETURN(o, fs::open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  }
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read " + packed_path, errno);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(o.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Error::from_errno("write " + dest, errno);
      off += w;
    }
  }
  return {};
}

oci::TransferProgress Exporter::progress() {
  return [this](const std::string& what, uint64_t cur, uint64_t total) { reporter_.transfer(what, cur, total); };
}

// The output types, their keys and what writes them. -o specs are checked against this table
// when the command line is parsed, before any work.
const std::vector<Exporter::OutputKind>& Exporter::output_kinds() {
  static const std::vector<OutputKind> kinds = {
      {"oci", {"dest", "compression", "compression-level"}, true, &Exporter::write_oci},
      {"oci-layout", {"dest", "compression", "compression-level"}, true, &Exporter::write_oci},
      // Without dest: loaded into the docker daemon, or podman (buildx --load).
      {"docker", {"dest", "compression", "compression-level"}, false, &Exporter::write_docker},
      {"image", {"name", "push", "push-by-digest", "name-canonical", "compression", "compression-level"}, false,
       &Exporter::write_image},
      {"registry", {"name", "push-by-digest", "name-canonical", "compression", "compression-level"}, false,
       &Exporter::write_image},
      {"local", {"dest"}, true, &Exporter::write_filesystem},
      {"tar", {"dest"}, true, &Exporter::write_filesystem},
  };
  return kinds;
}

const Exporter::OutputKind* Exporter::output_kind(const std::string& type) {
  for (const auto& k : output_kinds())
    if (type == k.type) return &k;
  return nullptr;
}

// buildx's annotation keys of an output: annotation.K, annotation-TYPE.K and
// annotation-TYPE[PLATFORM].K, as an --annotation spec ("TYPE[PLATFORM]:K=V"); nullopt for
// another key.
std::optional<std::string> output_annotation(const std::string& key, const std::string& value) {
  if (key.rfind("annotation", 0) != 0) return std::nullopt;
  std::string rest = key.substr(10);
  if (rest.rfind(".", 0) == 0) return rest.substr(1) + "=" + value;
  if (rest.rfind("-", 0) != 0) return std::nullopt;
  // The type ends at the first '.' after any [PLATFORM].
  size_t from = rest.find('[') != std::string::npos ? rest.find(']') : 0;
  size_t dot = from == std::string::npos ? std::string::npos : rest.find('.', from);
  if (dot == std::string::npos) return std::nullopt;
  return rest.substr(1, dot - 1) + ":" + rest.substr(dot + 1) + "=" + value;
}

std::vector<Annotation> output_annotations(const TypedSpec& out) {
  std::vector<Annotation> list;
  for (const auto& [k, v] : out.attrs)
    if (auto spec = output_annotation(k, v))
      if (auto a = parse_annotation(*spec); a.ok()) list.push_back(*a);
  return list;
}

Result<TypedSpec> parse_output(const std::string& spec) {
  OCIB_ASSIGN_OR_RETURN(TypedSpec out, parse_typed_spec(spec, "output"));
  std::string bad = "invalid output \"" + spec + "\": ";
  const Exporter::OutputKind* kind = Exporter::output_kind(out.type);
  if (!kind) {
    std::vector<std::string> names;
    for (const auto& k : Exporter::output_kinds()) names.push_back(k.type);
    return Error::invalid(bad + "type \"" + out.type + "\" is not supported (" + join(names, ", ") + ")" +
                          did_you_mean(out.type, names));
  }
  for (const auto& [k, v] : out.attrs) {
    if (auto a = output_annotation(k, v); a && out.type != "local" && out.type != "tar") {
      if (auto parsed = parse_annotation(*a); !parsed.ok()) return Error::invalid(bad + parsed.error().message());
      continue;
    }
    if (!kind->keys.count(k)) {
      std::vector<std::string> keys(kind->keys.begin(), kind->keys.end());
      return Error::invalid(bad + "unknown key \"" + k + "\" for type=" + out.type + " (" + join(keys, ", ") + ")" +
                            did_you_mean(k, keys));
    }
  }
  if (kind->needs_dest && out.get("dest").empty()) return Error::invalid(bad + "type=" + out.type + " needs dest=");
  if (auto c = out.attrs.find("compression"); c != out.attrs.end() && c->second != "gzip" &&
      c->second != "zstd" && c->second != "uncompressed")
    return Error::invalid(bad + "compression must be gzip, zstd or uncompressed");
  return out;
}

}  // namespace ocib::exporter
