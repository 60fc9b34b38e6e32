#include "plan/planner.h"
#include "plan/planner_internal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <set>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/duration.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/spec.h"
#include "dockerfile/dockerignore.h"
#include "oci/platform.h"

namespace ocib::plan {

using nlohmann::json;

const char* type_name(RunMount::Type t) {
  switch (t) {
    case RunMount::Type::kBind: return "bind";
    case RunMount::Type::kCache: return "cache";
    case RunMount::Type::kTmpfs: return "tmpfs";
    case RunMount::Type::kSecret: return "secret";
    case RunMount::Type::kPipe: return "pipe";
    case RunMount::Type::kSsh: return "ssh";
  }
  return "bind";
}

std::map<std::string, std::string> platform_args(const oci::Platform& target) {
  std::map<std::string, std::string> m;
  for (const char* pre : {"TARGET", "BUILD"}) {
    std::string k = pre;
    oci::Platform p = k == "TARGET" ? oci::normalize(target) : oci::host();
    m[k + "PLATFORM"] = oci::str(p);
    m[k + "OS"] = p.os;
    m[k + "ARCH"] = p.architecture;
    m[k + "VARIANT"] = p.variant;
  }
  return m;
}

bool is_proxy_arg(const std::string& k) {
  static const std::set<std::string> names = {"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"};
  return names.count(ascii_lower(k)) > 0;  // BuildKit matches them without regard to case
}

void describe(const Plan& plan, std::vector<std::string>& out) {
  static const char* kinds[] = {"run", "copy", "base", "workdir", "linked"};
  for (const auto& s : plan.steps) {
    json deps = json::array();
    for (const Step* d : s.deps) deps.push_back(d->display_id);
    json j = {{"id", s.display_id}, {"name", s.name}, {"stage", s.stage},
              {"kind", kinds[static_cast<int>(s.kind)]}, {"key", s.key}, {"deps", deps},
              {"target", &s == plan.top()}};
    out.push_back(j.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

namespace detail {

// The text a cache key is hashed from: the JSON as before for valid UTF-8 (existing keys stay);
// a key with other bytes (a Latin-1 RUN) is hashed from its CBOR encoding, which keeps every
// byte: two commands differing only in invalid bytes never share a key (a replacing dump would
// map both to U+FFFD).
std::string key_text(const json& k) {
  try {
    return k.dump();
  } catch (const json::type_error&) {
    std::vector<uint8_t> cbor = json::to_cbor(k);
    return "cbor:" + std::string(cbor.begin(), cbor.end());
  }
}

void set_key(Step& s, const json& k, std::vector<Step::KeyInput> inputs) {
  s.key = Sha256::hex(key_text(k));
  std::vector<uint8_t> cbor = json::to_cbor(k);
  s.key_def.assign(cbor.begin(), cbor.end());
  s.key_inputs = std::move(inputs);
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}


// BuildKit's isGitURL for ADD sources.
bool is_git_url(const std::string& s) {
  if (s.rfind("git://", 0) == 0 || s.rfind("git@", 0) == 0 || s.rfind("github.com/", 0) == 0) return true;
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) return false;
  std::string path = s.substr(0, s.find('#'));
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".git") == 0;
}






// An image a stage starts from or copies from, resolved by the Sources.
Result<SourceImage> Planner::load_base(const std::string& ref, const dockerfile::Instruction& ins,
                                       const oci::Platform& platform) {
  auto img = sources_.image(ref, platform);
  if (img.ok()) return img;
  if (ref.rfind("oci-layout://", 0) == 0) return at(ins, "build context " + ref + ": " + img.error().message());
  return at(ins, "base image \"" + ref + "\": " + img.error().message() +
                     (img.error().code() == Errc::kNotFound ? " (import it with 'ocib import', or pull it from a registry)" : ""));
}

// Downloads an ADD source at plan time: its content (or --checksum) is part of the cache key.
Result<copy::InlineFile> Planner::download(const std::string& url, const std::string& checksum,
                                           const dockerfile::Instruction& ins) {
  if (req_.outline) return copy::InlineFile{"url", url, 0600, -1};  // not fetched for an outline
  sources_.note("downloading " + url);
  auto got_body = sources_.fetch(url);
  if (!got_body.ok()) return at(ins, "ADD " + url + ": " + got_body.error().message());
  std::string got = "sha256:" + Sha256::hex(got_body->body);
  if (!checksum.empty() && checksum != got)
    return at(ins, "ADD " + url + ": digest mismatch: expected " + checksum + ", got " + got);
  copy::InlineFile f;
  std::string path = url.substr(0, url.find_first_of("?#"));
  auto scheme = path.find("://");
  path = path.substr(scheme + 3);
  auto slash = path.find('/');
  // As BuildKit's frontend: path.Base of the URL's path, "__unnamed__" when that is empty.
  std::string upath = slash == std::string::npos ? "" : path.substr(slash);
  while (upath.size() > 1 && upath.back() == '/') upath.pop_back();
  f.name = upath.empty() ? "" : fs::basename(upath);
  if (f.name.empty() || f.name == "/" || f.name == ".") f.name = "__unnamed__";
  f.content = std::move(got_body->body);
  f.mode = 0600;  // BuildKit's HTTP source
  f.mtime = got_body->last_modified;
  return f;
}

std::map<std::string, std::string> Planner::vars_for(const StageState& st) const {
  std::map<std::string, std::string> vars = st.args;
  for (const auto& e : st.config.env) {
    auto eq = e.find('=');
    if (eq != std::string::npos) vars[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return vars;
}

// The source's filter (its .dockerignore: op.filter) plus COPY --exclude, for the cache key: what --exclude leaves out of a
// literal directory source does not invalidate the step. Elsewhere it keeps more than the copy
// reads (never less), so the key stays sound.
copy::SourceFilter Planner::hash_filter(const copy::CopyOp& op) const {
  if (!op.exclude.excluded) return op.filter;
  std::vector<std::string> roots;
  for (const auto& src : op.sources)
    if (!has_glob(src)) roots.push_back(fs::clean("/" + src).substr(1));
  copy::SourceFilter ctx = op.filter, ex = op.exclude, f = op.filter;
  f.excluded = [ctx, ex, roots](const std::string& rel, bool is_dir) {
    if (ctx.excluded && ctx.excluded(rel, is_dir)) return true;
    for (const auto& root : roots) {
      if (root.empty()) return ex.excluded(rel, is_dir);
      if (rel.compare(0, root.size() + 1, root + "/") == 0 && ex.excluded(rel.substr(root.size() + 1), is_dir))
        return true;
    }
    return false;
  };
  f.descend = [ctx](const std::string& rel) {
    return !(ctx.excluded && ctx.excluded(rel, true)) || (ctx.descend && ctx.descend(rel));
  };
  return f;
}

Result<std::string> Planner::word(const std::string& raw, const StageState& st,
                                  const dockerfile::Instruction& ins) const {
  auto r = dockerfile::process_word(raw, vars_for(st), df_->escape);
  if (!r.ok()) return at(ins, r.error().message());
  return std::move(r).value();
}

Step* Planner::add_step(Step s) {
  if (auto it = by_key_.find(s.key); it != by_key_.end()) return it->second;  // identical vertex
  s.display_id = req_.id_base + static_cast<int>(plan_.steps.size()) + 1;
  plan_.steps.push_back(std::move(s));
  Step* p = &plan_.steps.back();
  by_key_[p->key] = p;
  return p;
}

std::string Planner::stage_name(size_t index) const {
  if (df_->stages.size() == 1) return "";
  const auto& s = df_->stages[index];
  return s.name.empty() ? "stage-" + std::to_string(index) : s.name;
}

Result<size_t> Planner::stage_by_ref(const std::string& ref, const dockerfile::Instruction& at_ins) const {
  std::string lower = ref;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  for (const auto& s : df_->stages)
    if (!s.name.empty() && s.name == lower) return static_cast<size_t>(s.index);
  if (auto id = parse_u32(ref); id && *id < df_->stages.size()) return static_cast<size_t>(*id);
  return at(at_ins, "stage or image \"" + ref + "\" not found (pulling images is not supported yet)");
}

Status Planner::plan() {
  const dockerfile::Dockerfile& df = *df_;
  if (df.stages.empty()) return Error::at({df.filename, 0, 0}, "no build stage in Dockerfile");
  if (auto h = req_.build_args.find(kHostnameArg); h != req_.build_args.end()) {
    const std::string& n = h->second;
    if (n.empty() || n.size() > 63 || n.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos)
      return Error::invalid(std::string("--build-arg ") + kHostnameArg + "=" + n + ": not a valid hostname");
  }
  // ARGs before the first FROM: defaults, overridden by --build-arg. The platform ARGs are
  // predefined: FROM lines see them, a stage's `ARG TARGETARCH` (no value) takes them.
  meta_args_ = platform_args(req_.platform);
  // TARGETSTAGE, predefined like the platform args: the --target stage, else the last
  // stage's name, else "default".
  meta_args_["TARGETSTAGE"] = !req_.target.empty()            ? ascii_lower(req_.target)
                              : !df.stages.back().name.empty() ? df.stages.back().name
                                                               : "default";
  for (const auto& ins : df.meta_args) {
    for (const auto& [k, v] : ins.raw_kvs) {
      if (auto it = req_.build_args.find(k); it != req_.build_args.end()) {
        meta_args_[k] = it->second;
        used_args_.insert(k);
      } else if (v) {
        auto r = dockerfile::process_word(*v, meta_args_, df.escape);
        if (!r.ok()) return at(ins, r.error().message());
        meta_args_[k] = *r;
      } else {
        meta_args_.erase(k);
        meta_args_[k];  // declared without value: empty, inheritable by name
      }
    }
  }
  plan_.stages.resize(df.stages.size());
  if (req_.target.empty()) {
    plan_.target = df.stages.size() - 1;
  } else {
    std::string t = req_.target;
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    bool found = false;
    for (const auto& s : df.stages)
      if (s.name == t) {
        plan_.target = static_cast<size_t>(s.index);
        found = true;
      }
    if (!found) {
      std::vector<std::string> names;
      for (const auto& s : df.stages)
        if (!s.name.empty()) names.push_back(s.name);
      return Error::invalid("target stage \"" + req_.target + "\" could not be found" + did_you_mean_bk(t, names));
    }
  }
  // As BuildKit (which resolves every stage's references before dispatching any): COPY --from
  // naming a stage defined further down fails even in a stage the target does not need.
  for (const auto& stage : df.stages)
    for (const auto& ins : stage.body) {
      const auto* f = ins.keyword == "COPY" ? ins.flag("from") : nullptr;
      if (!f || named_context(f->value)) continue;
      auto from = stage_by_ref(f->value, ins);  // not a stage: an image, resolved when planned
      if (from.ok() && *from > static_cast<size_t>(stage.index))
        return at(ins, "cannot copy from stage \"" + f->value + "\", it needs to be defined before current stage \"" +
                           stage_name(static_cast<size_t>(stage.index)) + "\"");
    }
  // An outline leaves a stage it cannot plan unplanned and goes on with the others.
  auto unplanned = [this] {
    for (auto& other : plan_.stages) other.planning = false;
  };
  Status target = plan_stage(plan_.target);
  if (!target.ok()) {
    if (!req_.outline) return target;
    unplanned();
  }
  if (req_.outline)
    for (size_t i = 0; i < plan_.stages.size(); ++i)
      if (!plan_stage(i).ok()) unplanned();
  for (const auto& [k, v] : req_.build_args)
    if (!used_args_.count(k) && !is_proxy_arg(k) && k != kHostnameArg && k != "SOURCE_DATE_EPOCH")
      sources_.note("warning: build-arg " + k + " was not consumed by any ARG instruction");
  return {};
}

Status Planner::plan_stage(size_t index) {
  StageState& st = plan_.stages[index];
  if (st.planned) return {};
  const dockerfile::Stage& stage = df_->stages[index];
  if (st.planning) return at(stage.from, "circular dependency between stages");
  st.planning = true;
  st.line = stage.from.line;
  st.display = stage.name.empty() ? "stage-" + std::to_string(index) : stage.name;
  if (req_.multi_platform) st.display = oci::str(req_.platform) + " " + st.display;

  auto base = dockerfile::process_word(stage.base, meta_args_, df_->escape);
  if (!base.ok()) return at(stage.from, base.error().message());
  if (base->empty()) return at(stage.from, "base name (" + stage.base + ") should not be blank");
  std::string b = *base;
  st.platform = req_.platform;
  if (!stage.platform.empty()) {
    auto pf = dockerfile::process_word(stage.platform, meta_args_, df_->escape);
    if (!pf.ok()) return at(stage.from, pf.error().message());
    auto p = oci::parse(*pf);
    if (!p.ok()) return at(stage.from, "FROM --platform=" + *pf + ": " + p.error().message());
    st.platform = *p;
  }
  std::string bl = b;
  std::transform(bl.begin(), bl.end(), bl.begin(), ::tolower);
  if (bl == "scratch") {
    st.base = b;
    // BuildKit's empty image: the default PATH and WorkingDir "/".
    st.config.env = {kDefaultPath};
    st.config.working_dir = "/";
  } else {
    std::optional<size_t> from;
    const NamedContext* nc = named_context(bl);
    if (nc && !nc->dir.empty())
      return at(stage.from, "FROM " + b + ": a local directory build context cannot be a base (use COPY --from=" + b + ")");
    for (const auto& s : df_->stages)
      if (!nc && static_cast<size_t>(s.index) < index && !s.name.empty() && s.name == bl) from = static_cast<size_t>(s.index);
    if (!from) st.base = b;
    if (nc) b = nc->image;
    if (from) {
      st.from_stage = *from;
      OCIB_TRY(plan_stage(*from));
      const StageState& src = plan_.stages[*from];
      if (stage.platform.empty()) st.platform = src.platform;  // as BuildKit: a stage base keeps its platform
      st.top = src.top;
      st.config = src.config;
      st.history = src.history;
      st.base_created = src.base_created;
      st.author = src.author;
      // As BuildKit (dispatchState init from its base stage): the base stage's ARGs stay in
      // scope, with their values, for expansion, RUN's environment and history.
      st.args = src.args;
      st.arg_decls = src.arg_decls;
      // As BuildKit: a stage's ONBUILD triggers fire in a stage built FROM it, as an image's do.
      std::vector<std::string> triggers = std::move(st.config.onbuild);
      st.config.onbuild.clear();
      OCIB_TRY(run_onbuild_triggers(st, stage, triggers));
    } else {
      OCIB_TRY(plan_base_image(st, stage, b));
      // As BuildKit: the base image's ONBUILD triggers run right after FROM, once.
      std::vector<std::string> triggers = std::move(st.config.onbuild);
      st.config.onbuild.clear();
      OCIB_TRY(run_onbuild_triggers(st, stage, triggers));
    }
  }
  for (size_t i = 0; i < stage.body.size(); ++i) {
    Status done = plan_instruction(st, stage, i, stage.body[i]);
    if (!done.ok() && !req_.outline) return done;
  }
  st.planning = false;
  st.planned = true;
  return {};
}


// One vertex per layer, each unpacking its blob into a snapshot named by the layer's chain id
// (so every image sharing those layers shares the snapshot). Returns the top one.
Step* Planner::add_image_layers(const SourceImage& img, Step* top, const std::string& display,
                                const std::string& name) {
  std::string chain;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    const std::string& diff_id = img.config.diff_ids[i];
    chain = i == 0 ? diff_id : "sha256:" + Sha256::hex(chain + " " + diff_id);
    Step s;
    s.kind = Step::Kind::kBase;
    s.name = name + " (layer " + std::to_string(i + 1) + "/" + std::to_string(img.layers.size()) + ")";
    s.stage = display;
    s.parent = top;
    s.key = Sha256::hex(std::string("ocib-base-v1 ") + chain);
    s.result.snapshot = s.key.substr(0, 20);
    s.result.digest = img.layers[i].digest;
    s.result.diff_id = diff_id;
    s.result.size = img.layers[i].size;
    s.result.media_type = img.layers[i].media_type;
    if (s.parent) s.deps.push_back(s.parent);
    top = add_step(std::move(s));
  }
  return top;
}

// A base image from the store.
Status Planner::plan_base_image(StageState& st, const dockerfile::Stage& stage, const std::string& ref) {
  OCIB_ASSIGN_OR_RETURN(SourceImage loaded, load_base(ref, stage.from, st.platform));
  const SourceImage* img = &loaded;
  st.top = add_image_layers(loaded, st.top, st.display,
                            "[" + st.display + " 1/" + std::to_string(stage.body.size() + 1) + "] FROM " + ref);
  st.config = img->config.config;
  if (std::none_of(st.config.env.begin(), st.config.env.end(),
                   [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }))
    st.config.env.insert(st.config.env.begin(), kDefaultPath);
  // Inherited history keeps its own times; its non-empty entries map onto the layers in order.
  std::vector<Step*> chain_steps;
  for (Step* p = st.top; p; p = p->parent) chain_steps.insert(chain_steps.begin(), p);
  size_t li = 0;
  for (const auto& h : img->config.history) {
    HistoryItem item{h.created_by, nullptr, h.created, h.empty_layer};
    if (!h.empty_layer && li < chain_steps.size()) item.step = chain_steps[li++];
    st.history.push_back(item);
  }
  st.base_created = img->config.created;
  st.author = img->config.author;
  st.base_digest = loaded.manifest_digest;
  return {};
}

Status Planner::run_onbuild_triggers(StageState& st, const dockerfile::Stage& stage,
                                     const std::vector<std::string>& triggers) {
  for (const auto& t : triggers) {
    auto parsed = dockerfile::parse("FROM scratch\n" + t + "\n", df_->filename);
    if (!parsed.ok() || parsed->stages.empty() || parsed->stages[0].body.size() != 1)
      return at(stage.from, "invalid ONBUILD trigger \"" + t + "\" in the base image" +
                                (parsed.ok() ? "" : ": " + parsed.error().message()));
    triggers_.push_back(std::move(parsed).value());
    dockerfile::Instruction& ins = triggers_.back().stages[0].body[0];
    ins.line = stage.from.line;  // errors point at the FROM that pulled the trigger in
    OCIB_TRY(plan_instruction(st, stage, std::string::npos, ins));
  }
  return {};
}

Status Planner::plan_instruction(StageState& st, const dockerfile::Stage& stage, size_t pos,
                                 const dockerfile::Instruction& ins) {
  const std::string& kw = ins.keyword;
  // pos == npos: an ONBUILD trigger of the base image, run as part of FROM.
  bool trigger = pos == std::string::npos;
  std::string label = "[" + st.display + " " + std::to_string(trigger ? 1 : pos + 2) + "/" +
                      std::to_string(stage.body.size() + 1) + "] " + (trigger ? "ONBUILD " : "") + ins.original;
  OCIB_TRY(check_flags(ins));
  if (kw == "RUN") return plan_run(st, label, ins);
  if (kw == "COPY" || kw == "ADD") return plan_copy(st, label, ins);
  return plan_config(st, stage, pos, label, ins);
}

// The flags each instruction takes: every other flag is refused at its line.
Status Planner::check_flags(const dockerfile::Instruction& ins) const {
  static const std::map<std::string, std::set<std::string>> kFlags = {
      {"RUN", {"network", "mount", "security"}},
      {"COPY", {"from", "chown", "chmod", "exclude", "parents", "link"}},
      {"ADD", {"chown", "chmod", "exclude", "link", "checksum", "keep-git-dir", "unpack"}},
      {"HEALTHCHECK", {"interval", "timeout", "start-period", "start-interval", "retries"}},
  };
  auto it = kFlags.find(ins.keyword);
  for (const auto& f : ins.flags)
    if (it == kFlags.end() || !it->second.count(f.name))
      return at(ins, "flag --" + f.name + " is not supported for " + ins.keyword + " yet");
  return {};
}


}  // namespace detail

Status effective_key(Step& s, const ContentDigest& content) {
  bool changed = false;
  for (const auto& in : s.key_inputs) changed = changed || in.content || !in.step->plan_key.empty();
  if (!changed || s.key_def.empty()) return {};
  json def = json::from_cbor(s.key_def);
  for (const auto& in : s.key_inputs) {
    std::string value;
    if (in.content) {
      auto d = content(*in.step, in.patterns);
      // Not digestible (a path that is not there): the planned key stays and the step, run,
      // reports the problem itself.
      if (!d.ok()) {
        log::debug(s.name + ": keyed as planned: " + d.error().str());
        return {};
      }
      value = in.prefix + "content:" + *d;
    } else {
      value = in.prefix + in.step->key;
    }
    def[json::json_pointer(in.pointer)] = value;
  }
  std::string key = Sha256::hex(detail::key_text(def));
  if (key == s.key) return {};
  if (s.plan_key.empty()) s.plan_key = s.key;
  s.key = std::move(key);
  return {};
}

Result<Plan> make_plan(const dockerfile::Dockerfile& df, const Request& request, Sources& sources) {
  detail::Planner p(df, request, sources);
  OCIB_TRY(p.plan());
  return p.take();
}

}  // namespace ocib::plan
