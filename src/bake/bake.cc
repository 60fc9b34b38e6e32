#include "bake/bake.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/cancel.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/spec.h"
#include "control/inspect.h"
#include "control/ssh_keys.h"
#include "exporter/daemon_load.h"
#include "exporter/exporter.h"
#include "exporter/timeline.h"
#include "oci/platform.h"
#include "registry/reference.h"

namespace ocib::bake {

using nlohmann::json;

std::vector<std::string> default_files(const std::string& dir) {
  static const char* kNames[] = {"compose.yaml",        "compose.yml",     "docker-compose.yml",
                                 "docker-compose.yaml", "docker-bake.json", "docker-bake.hcl",
                                 "docker-bake.override.json", "docker-bake.override.hcl"};
  std::vector<std::string> out;
  for (const char* n : kNames) {
    std::string p = dir == "." ? std::string(n) : fs::join(dir, n);
    if (fs::exists(p) && !fs::is_dir(p)) out.push_back(p);
  }
  return out;
}

namespace {

bool is_remote(const std::string& s) {
  return s.find("://") != std::string::npos || control::is_git_url(s);
}

std::string resolve_path(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || dir == "." || dir.empty()) return p;
  return fs::join(dir, p);
}

std::vector<std::string> strings(const Target& t, const char* key) {
  std::vector<std::string> out;
  if (auto it = t.attrs.find(key); it != t.attrs.end() && it->second.is_array())
    for (const auto& v : it->second) out.push_back(v.get<std::string>());
  return out;
}
std::optional<std::string> str(const Target& t, const char* key) {
  if (auto it = t.attrs.find(key); it != t.attrs.end() && it->second.is_string()) return it->second.get<std::string>();
  return std::nullopt;
}
std::map<std::string, std::string> smap(const Target& t, const char* key) {
  std::map<std::string, std::string> out;
  if (auto it = t.attrs.find(key); it != t.attrs.end() && it->second.is_object())
    for (const auto& [k, v] : it->second.items()) out[k] = v.get<std::string>();
  return out;
}
std::optional<bool> boolean(const Target& t, const char* key) {
  if (auto it = t.attrs.find(key); it != t.attrs.end() && it->second.is_boolean()) return it->second.get<bool>();
  return std::nullopt;
}

// One target's build options: the common ones, then the target's attributes.
Result<control::Options> build_options(const Options& opts, const Target& t) {
  control::Options o = opts.common;
  const std::string pre = "target \"" + t.name + "\": ";
  auto bad = [&](const std::string& m) { return Error::at(t.loc, pre + m); };
  std::string context = str(t, "context").value_or(".");
  // A git URL (as ocib build takes one) is checked out when the bake runs; its dockerfile
  // is a file in the checkout.
  const bool git = control::is_git_url(context);
  if (!git && is_remote(context)) return bad("context \"" + context + "\": only directories and git URLs are supported");
  o.context = git ? context : resolve_path(t.dir, context);
  if (!git && !fs::is_dir(o.context)) return bad("context \"" + context + "\" (" + o.context + ") is not a directory");
  if (auto inl = str(t, "dockerfile-inline")) {
    o.dockerfile = "-";
    o.dockerfile_text = *inl;
  } else if (auto df = str(t, "dockerfile"); df && *df != "Dockerfile") {
    // As buildx: relative to the context (a git context's: joined to the checkout in execute).
    if (git) {
      o.dockerfile = *df;
    } else {
      o.dockerfile = (*df)[0] == '/' ? *df : fs::join(o.context, *df);
      if (!fs::exists(o.dockerfile)) return bad("dockerfile \"" + *df + "\" (" + o.dockerfile + ") does not exist");
    }
  }
  o.target = str(t, "target").value_or("");
  for (auto& [k, v] : smap(t, "args")) o.build_args[k] = v;
  for (auto& [k, v] : smap(t, "labels")) o.labels[k] = v;
  for (auto& [k, v] : smap(t, "contexts")) {
    // Directories are relative to the bake file, as the context is.
    bool dir = v.find("://") == std::string::npos && !control::is_git_url(v) && v.rfind("target:", 0) != 0;
    if (v.rfind("target:", 0) == 0) return bad("contexts." + k + " = \"" + v + "\": target: contexts are not supported by ocib bake yet");
    o.build_contexts[k] = dir ? resolve_path(t.dir, v) : v;
  }
  o.tags = strings(t, "tags");
  for (const auto& tag : o.tags)  // checked now, not when the image is tagged after the build
    if (auto r = registry::Reference::parse(tag); !r.ok()) return bad("tags: " + r.error().message());
  for (const auto& p : strings(t, "platforms")) {
    auto ps = oci::parse_list(p);
    if (!ps.ok()) return bad("platforms: " + ps.error().str());
    o.platforms.insert(o.platforms.end(), ps->begin(), ps->end());
  }
  for (std::string c : strings(t, "cache-from")) {
    if (c.find('=') == std::string::npos) c = "type=registry,ref=" + c;
    auto spec = parse_typed_spec(c, "cache-from");
    if (!spec.ok()) return bad(spec.error().str());
    o.cache_from.push_back(*spec);
  }
  for (std::string c : strings(t, "cache-to")) {
    if (c.find('=') == std::string::npos) c = "type=registry,ref=" + c;
    auto spec = parse_typed_spec(c, "cache-to");
    if (!spec.ok()) return bad(spec.error().str());
    o.cache_to.push_back(*spec);
  }
  if (auto c = cache::check_cache_specs(o.cache_to, o.cache_from); !c.ok()) return bad(c.error().str());
  for (const auto& out : strings(t, "output")) {
    auto spec = exporter::parse_output(out);
    if (!spec.ok()) return bad("output: " + spec.error().str());
    o.outputs.push_back(*spec);
  }
  for (const auto& s : strings(t, "secret")) {
    control::Options::Secret sec;
    std::string id;
    for (const auto& part : split_commas(s)) {
      auto eq = part.find('=');
      std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
      if (k == "id") id = v;
      else if (k == "src" || k == "source") sec.file = resolve_path(t.dir, v);
      else if (k == "env") sec.env = v;
      else if (k != "type") return bad("secret \"" + s + "\": unknown key \"" + k + "\" (id=, src=, env=)");
    }
    if (id.empty()) return bad("secret \"" + s + "\" needs id=");
    if (sec.file.empty() && sec.env.empty()) sec.env = id;
    o.secrets[id] = sec;
  }
  for (const auto& s : strings(t, "ssh"))  // default | ID[=SOCKET] | ID=KEY[,KEY], as --ssh
    if (auto st = control::add_ssh_spec(s, o); !st.ok()) return bad("ssh: " + st.error().message());
  if (auto p = boolean(t, "pull"); p && *p) o.pull = "always";
  if (auto n = boolean(t, "no-cache"); n && *n) o.no_cache = true;
  if (auto n = str(t, "network")) {
    if (*n == "none") o.network = sandbox::Network::kNone;
    else if (*n == "host") o.network = sandbox::Network::kHost;
    else if (*n == "default") o.network = sandbox::Network::kDefault;
    else return bad("network \"" + *n + "\" (default, none, host)");
  }
  for (const auto& f : strings(t, "no-cache-filter"))
    for (auto& s : split_commas(f)) o.no_cache_filter.push_back(s);
  for (const auto& a : strings(t, "annotations")) {
    auto an = exporter::parse_annotation(a);
    if (!an.ok()) return bad("annotations: " + an.error().str());
    o.annotations.push_back(*an);
  }
  bool provenance_given = opts.provenance_given;
  for (const auto& a : strings(t, "attest")) {
    if (auto p = exporter::parse_attest(a, o.attest); !p.ok()) return bad("attest: " + p.error().str());
    if (a.find("type=provenance") != std::string::npos) provenance_given = true;
  }
  for (const auto& e : strings(t, "entitlements")) {
    if (e != "security.insecure" && e != "network.host") return bad("entitlements: unknown \"" + e + "\" (security.insecure, network.host)");
    if (std::find(o.allow.begin(), o.allow.end(), e) == o.allow.end()) o.allow.push_back(e);
  }
  if (str(t, "shm-size") || !strings(t, "ulimits").empty())
    return bad("shm-size and ulimits are not supported by ocib bake yet (ocib build --shm-size/--ulimit are)");
  if (auto c = str(t, "call"); c && *c != "build" && *c != "check") return bad("call \"" + *c + "\" (build, check)");

  for (const auto& out : o.outputs)
    if (out.type == "docker" && out.get("dest").empty())
      if (auto lt = exporter::load_target(); !lt.ok()) return bad(lt.error().str());
  // As the build command: an output that pushes (type=registry, type=image,push=true; --push
  // made them) pushes to the tags unless it names its own.
  for (auto& out : o.outputs)
    if (out.type == "registry" || (out.type == "image" && out.get("push") == "true")) {
      if (!out.attrs.count("name") && !o.tags.empty()) out.attrs["name"] = join(o.tags, ",");
      if (!out.attrs.count("name")) return bad("output " + out.type + " needs a name to push to: tags, or name=");
    }
  if (!provenance_given && !std::getenv("BUILDX_NO_DEFAULT_ATTESTATIONS"))
    for (const auto& out : o.outputs)
      if (out.type == "registry" || (out.type == "image" && out.get("push") == "true")) o.attest.provenance = true;
  if (auto e = control::source_date_epoch(o); !e.ok()) return bad(e.error().str());
  o.metadata_file.clear();
  o.timeline_file.clear();
  o.iidfile.clear();
  return o;
}

// Every step is shown with the targets it belongs to: "[app base 2/3] RUN ...", and a step
// two targets share (the same cache key: it runs once) "[app,web base 2/3] RUN ...".
void label_steps(const std::vector<std::pair<std::string, control::Build*>>& builds) {
  std::map<std::string, std::vector<std::string>> owners;  // key -> targets
  for (const auto& [name, b] : builds)
    for (auto& pl : b->plans())
      for (auto& s : pl.steps) {
        if (s.key.empty()) continue;
        auto& v = owners[s.key];
        if (std::find(v.begin(), v.end(), name) == v.end()) v.push_back(name);
      }
  for (const auto& [name, b] : builds)
    for (auto& pl : b->plans())
      for (auto& s : pl.steps) {
        std::string who = name;
        if (auto it = owners.find(s.key); !s.key.empty() && it != owners.end()) who = join(it->second, ",");
        if (!s.name.empty() && s.name[0] == '[') s.name = "[" + who + " " + s.name.substr(1);
        else s.name = "[" + who + "] " + s.name;
      }
}

Status write_outputs(const Options& opts, const std::vector<std::pair<std::string, std::string>>& metadata,
                     const std::optional<exporter::RunSummary>& sum, progress::Reporter& reporter) {
  if (opts.metadata_file.empty() && opts.timeline_file.empty()) return {};
  json doc = json::object();
  json verts = json::array();
  for (const auto& [name, path] : metadata) {
    auto text = fs::read_file(path);
    if (!text.ok()) return std::move(text).error().wrap("metadata of target " + name);
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) return Error::invalid("metadata of target " + name + ": not JSON");
    for (auto& v : j.value("ocib.vertices", json::array())) {
      v["target"] = name;
      verts.push_back(v);
    }
    doc[name] = std::move(j);
  }
  if (!opts.metadata_file.empty()) {
    auto w = fs::write_file_atomic(opts.metadata_file, doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
    if (!w.ok()) return std::move(w).error().wrap("--metadata-file " + opts.metadata_file);
  }
  if (!opts.timeline_file.empty()) {
    json all = {{"ocib.vertices", verts}, {"ocib.critical_path", sum ? json(sum->critical_ids) : json::array()}};
    OCIB_ASSIGN_OR_RETURN(std::string page, exporter::timeline_html(all));
    auto w = fs::write_file_atomic(opts.timeline_file, page);
    if (!w.ok()) return std::move(w).error().wrap("--timeline " + opts.timeline_file);
    reporter.note("timeline written to " + opts.timeline_file);
  }
  return {};
}

}  // namespace

Result<Loaded> load(const Options& opts, const Env& env) {
  std::vector<std::string> files = opts.files;
  if (files.empty()) {
    files = default_files(".");
    if (files.empty())
      return Error::invalid("no bake file here: looked for compose.yaml, compose.yml, docker-compose.yml, "
                            "docker-compose.yaml, docker-bake.json, docker-bake.hcl (give one with -f FILE)");
  }
  // Read every file: HCL and JSON evaluate together (their variables are shared), compose
  // on its own; all merge in the order given.
  std::vector<Document> docs;
  std::vector<std::optional<Config>> composed(files.size());
  std::vector<int> doc_of(files.size(), -1);
  bool read_stdin = false;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& f = files[i];
    Result<std::string> text = std::string();
    if (f == "-") {
      // As buildx: standard input holds the definition (its paths relative to the current
      // directory; the format is told by its contents).
      if (read_stdin) return Error::invalid("-f - is given twice");
      read_stdin = true;
      text = std::string((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    } else {
      if (fs::is_dir(f)) return Error::invalid("bake file " + f + " is a directory");
      text = fs::read_file(f);
      if (!text.ok()) return Error::invalid("cannot read bake file " + f + ": " + text.error().message());
    }
    switch (format_of(f, *text)) {
      case Format::kCompose: {
        OCIB_ASSIGN_OR_RETURN(Config c, read_compose(*text, f, env));
        composed[i] = std::move(c);
        break;
      }
      case Format::kJson: {
        OCIB_ASSIGN_OR_RETURN(Document d, parse_json(*text, f));
        doc_of[i] = static_cast<int>(docs.size());
        docs.push_back(std::move(d));
        break;
      }
      case Format::kHcl: {
        OCIB_ASSIGN_OR_RETURN(Document d, parse_hcl(*text, f));
        doc_of[i] = static_cast<int>(docs.size());
        docs.push_back(std::move(d));
        break;
      }
    }
  }
  // buildx's built-in variable: the platform of this machine.
  OCIB_ASSIGN_OR_RETURN(std::vector<Config> evaluated,
                        evaluate(docs, env, {{"BAKE_LOCAL_PLATFORM", json(oci::str(oci::host()))}}));
  Loaded l;
  for (size_t i = 0; i < files.size(); ++i)
    merge_config(l.config, composed[i] ? *composed[i] : evaluated[static_cast<size_t>(doc_of[i])]);
  std::vector<Override> overrides;
  for (const auto& s : opts.set) {
    OCIB_ASSIGN_OR_RETURN(Override o, parse_override(s));
    overrides.push_back(std::move(o));
  }
  // As buildx: --push and --load are the overrides *.push=true and *.load=true, after --set.
  if (opts.push) overrides.push_back({"*", "push", "true", false});
  if (opts.load) overrides.push_back({"*", "load", "true", false});
  if (opts.list_targets) return l;
  OCIB_ASSIGN_OR_RETURN(l.resolved, resolve(l.config, opts.targets, overrides));
  if (opts.print) return l;
  for (const auto& n : l.resolved.order) {
    OCIB_ASSIGN_OR_RETURN(control::Options o, build_options(opts, l.resolved.targets.at(n)));
    l.builds.push_back({n, std::move(o)});
  }
  return l;
}

Status execute(const Options& opts, const Loaded& l, std::string* out) {
  if (opts.list_targets) {
    // buildx's --list=targets: a table of the targets (and groups) with their descriptions.
    size_t w = 6;
    for (const auto& [n, t] : l.config.targets) w = std::max(w, n.size());
    for (const auto& [n, g] : l.config.groups) w = std::max(w, n.size());
    std::string s = "TARGET" + std::string(w - 6 + 2, ' ') + "DESCRIPTION\n";
    for (const auto& [n, g] : l.config.groups) s += n + std::string(w - n.size() + 2, ' ') + "(group: " + join(g.targets, ", ") + ")\n";
    for (const auto& [n, t] : l.config.targets) {
      std::string d;
      if (auto it = t.attrs.find("description"); it != t.attrs.end() && it->second.is_string()) d = it->second.get<std::string>();
      s += n + std::string(w - n.size() + 2, ' ') + d + "\n";
    }
    *out += s;
    return {};
  }
  if (opts.print) {
    *out += print_json(l.resolved);
    return {};
  }
  // --call=check (or a target's call = "check"): the lint instead of the build.
  std::vector<const std::pair<std::string, control::Options>*> lint, build;
  for (const auto& b : l.builds) {
    const Target& t = l.resolved.targets.at(b.first);
    (opts.check || str(t, "call").value_or("") == "check" ? lint : build).push_back(&b);
  }
  size_t warnings = 0;
  for (const auto* b : lint) {
    OCIB_ASSIGN_OR_RETURN(std::string text, control::print_plan(b->second, "lint"));
    size_t start = 0;
    while (start < text.size()) {
      size_t e = text.find('\n', start);
      if (e == std::string::npos) e = text.size();
      *out += "[" + b->first + "] " + text.substr(start, e - start) + "\n";
      ++warnings;
      start = e + 1;
    }
  }
  if (!lint.empty()) {
    if (warnings == 0) *out += "Check complete, no warnings found.\n";
    else *out += "Check complete, " + std::to_string(warnings) + (warnings == 1 ? " warning has been found!\n" : " warnings have been found!\n");
  }
  Status checked = warnings ? Status(Error(Errc::kFailedStep, kCheckWarnings).with_exit_code(1)) : Status();
  if (build.empty()) return checked;

  // One session (reporter, store, ids, registry client) and one pool of -j slots for every
  // target; each target plans into its own Build with display ids after the previous one's.
  control::Options common = opts.common;
  control::Session session(common);
  std::vector<std::unique_ptr<control::Build>> builds;
  std::vector<std::pair<std::string, control::Build*>> named;
  std::string tmp;
  std::vector<std::pair<std::string, std::string>> metadata;  // target -> its metadata file
  struct TmpGuard {
    std::string* dir;
    ~TmpGuard() {
      if (!dir->empty()) (void)fs::remove_all(*dir);
    }
  } guard{&tmp};
  if (!opts.metadata_file.empty() || !opts.timeline_file.empty()) {
    const char* t = std::getenv("TMPDIR");
    OCIB_ASSIGN_OR_RETURN(tmp, fs::make_temp_dir(t && *t ? t : "/tmp", "ocib-bake-"));
  }
  std::vector<std::string> checkouts;  // git contexts' temp dirs
  struct CheckoutGuard {
    std::vector<std::string>* dirs;
    ~CheckoutGuard() {
      for (const auto& d : *dirs) (void)fs::remove_all(d);
    }
  } checkout_guard{&checkouts};
  for (const auto* nb : build) {
    const std::string& name = nb->first;
    control::Options bo = nb->second;
    if (control::is_git_url(bo.context)) {
      const char* t = std::getenv("TMPDIR");
      OCIB_ASSIGN_OR_RETURN(std::string dir, fs::make_temp_dir(t && *t ? t : "/tmp", "ocib-git-"));
      checkouts.push_back(dir);
      auto ctx = control::git_context(bo.context, dir);
      if (!ctx.ok()) return std::move(ctx).error().wrap("target " + name);
      bo.context = *ctx;
      if (!bo.dockerfile.empty() && bo.dockerfile != "-" && bo.dockerfile[0] != '/') bo.dockerfile = fs::join(*ctx, bo.dockerfile);
    }
    if (!tmp.empty()) {
      bo.metadata_file = fs::join(tmp, name + ".json");
      metadata.push_back({name, bo.metadata_file});
    }
    auto b = control::Build::read(bo, session);
    if (!b.ok()) return std::move(b).error().wrap("target " + name);
    named.push_back({name, b->get()});
    builds.push_back(std::move(*b));
  }
  OCIB_TRY(session.open(common));
  int id_base = 0;
  for (auto& [name, b] : named) {
    auto p = b->plan(id_base);
    if (!p.ok()) return std::move(p).error().wrap("target " + name);
    id_base += b->steps();
  }
  label_steps(named);
  // -j bounds the whole bake, not each target.
  auto slots = std::make_shared<dag::JobSlots>(common.jobs > 0 ? common.jobs
                                                               : std::max(4, static_cast<int>(std::thread::hardware_concurrency())));
  std::vector<control::Build*> all;
  for (auto& [name, b] : named) {
    auto s = b->make_solvers(slots);
    if (!s.ok()) return std::move(s).error().wrap("target " + name);
    all.push_back(b);
  }
  OCIB_TRY(control::solve(all));
  std::vector<const solver::Solver*> solved;
  for (auto& [name, b] : named) {
    auto r = b->export_images(false);
    if (!r.ok()) return std::move(r).error().wrap("target " + name);
    for (const solver::Solver* s : b->solvers()) solved.push_back(s);
  }
  // One summary for the whole bake: its critical path runs through whichever target was longest.
  auto sum = exporter::summarize(solved);
  if (sum) session.reporter().summary(sum->summary);
  OCIB_TRY(write_outputs(opts, metadata, sum, session.reporter()));
  return checked;
}

Status run(const Options& opts, std::string* out) {
  OCIB_ASSIGN_OR_RETURN(Loaded l, load(opts));
  return execute(opts, l, out);
}

}  // namespace ocib::bake
