#include "plan/planner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <set>

#include <nlohmann/json.hpp>

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
  static const std::set<std::string> names = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                              "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                              "ALL_PROXY",  "all_proxy"};
  return names.count(k) > 0;
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

namespace {

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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


bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }



class Planner {
 public:
  Planner(const dockerfile::Dockerfile& df, const Request& req, Sources& sources)
      : df_(&df), req_(req), sources_(sources) {
    plan_.platform = req.platform;
  }
  Status plan();
  Plan take() { return std::move(plan_); }

 private:
  Status plan_stage(size_t index);
  Status plan_base_image(StageState& st, const dockerfile::Stage& stage, const std::string& ref);
  Result<SourceImage> load_base(const std::string& ref, const dockerfile::Instruction& ins,
                                const oci::Platform& platform);
  Step* add_image_layers(const SourceImage& img, Step* top, const std::string& display,
                         const std::string& name);
  Status run_onbuild_triggers(StageState& st, const dockerfile::Stage& stage,
                              const std::vector<std::string>& triggers);
  Result<copy::InlineFile> download(const std::string& url, const std::string& checksum,
                                    const dockerfile::Instruction& ins);
  Result<size_t> stage_by_ref(const std::string& ref, const dockerfile::Instruction& at) const;
  Status plan_instruction(StageState& st, const dockerfile::Stage& stage, size_t pos,
                          const dockerfile::Instruction& ins);
  Result<RunMount> parse_mount(const std::string& spec, StageState& st, const dockerfile::Instruction& ins);
  std::map<std::string, std::string> vars_for(const StageState& st) const;
  copy::SourceFilter hash_filter(const copy::CopyOp& op) const;
  Result<std::string> word(const std::string& raw, const StageState& st, const dockerfile::Instruction& ins) const;
  Step* add_step(Step s);
  Error at(const dockerfile::Instruction& ins, const std::string& msg) const {
    return Error::at({df_->filename, ins.line, 0}, msg);
  }
  const NamedContext* named_context(const std::string& ref) const {
    std::string l = ref;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    auto it = req_.named_contexts.find(l);
    return it == req_.named_contexts.end() ? nullptr : &it->second;
  }

  const dockerfile::Dockerfile* df_;
  const Request& req_;
  Sources& sources_;
  Plan plan_;
  std::map<std::string, std::string> meta_args_;
  std::deque<dockerfile::Dockerfile> triggers_;  // parsed ONBUILD triggers, kept for their lifetime
  std::set<std::string> used_args_;
  bool host_network_warned_ = false;  // the network.host entitlement warning was given
  std::map<std::string, Step*> by_key_;
};

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
  f.name = slash == std::string::npos ? "" : fs::basename(path.substr(slash));
  if (f.name.empty() || f.name == "/" || f.name == ".") f.name = "index.html";
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

// The context filter plus COPY --exclude, for the cache key: what --exclude leaves out of a
// literal directory source does not invalidate the step. Elsewhere it keeps more than the copy
// reads (never less), so the key stays sound.
copy::SourceFilter Planner::hash_filter(const copy::CopyOp& op) const {
  if (!op.exclude.excluded) return req_.context_filter;
  std::vector<std::string> roots;
  for (const auto& src : op.sources)
    if (!has_glob(src)) roots.push_back(fs::clean("/" + src).substr(1));
  copy::SourceFilter ctx = req_.context_filter, ex = op.exclude, f = req_.context_filter;
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
    if (!found) return Error::invalid("target stage \"" + req_.target + "\" could not be found");
  }
  OCIB_TRY(plan_stage(plan_.target));
  for (const auto& [k, v] : req_.build_args)
    if (!used_args_.count(k) && !is_proxy_arg(k) && k != kHostnameArg)
      sources_.note("warning: build-arg " + k + " was not consumed by any ARG instruction");
  return {};
}

Status Planner::plan_stage(size_t index) {
  StageState& st = plan_.stages[index];
  if (st.planned) return {};
  const dockerfile::Stage& stage = df_->stages[index];
  if (st.planning) return at(stage.from, "circular dependency between stages");
  st.planning = true;
  st.display = stage.name.empty() ? "stage-" + std::to_string(index) : stage.name;
  if (req_.multi_platform) st.display = oci::str(req_.platform) + " " + st.display;

  auto base = dockerfile::process_word(stage.base, meta_args_, df_->escape);
  if (!base.ok()) return at(stage.from, base.error().message());
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
    if (nc) b = nc->image;
    if (from) {
      OCIB_TRY(plan_stage(*from));
      const StageState& src = plan_.stages[*from];
      if (stage.platform.empty()) st.platform = src.platform;  // as BuildKit: a stage base keeps its platform
      st.top = src.top;
      st.config = src.config;
      st.history = src.history;
      st.base_created = src.base_created;
    } else {
      OCIB_TRY(plan_base_image(st, stage, b));
      // As BuildKit: the base image's ONBUILD triggers run right after FROM, once.
      std::vector<std::string> triggers = std::move(st.config.onbuild);
      st.config.onbuild.clear();
      OCIB_TRY(run_onbuild_triggers(st, stage, triggers));
    }
  }
  for (size_t i = 0; i < stage.body.size(); ++i) OCIB_TRY(plan_instruction(st, stage, i, stage.body[i]));
  st.planning = false;
  st.planned = true;
  return {};
}

Result<RunMount> Planner::parse_mount(const std::string& spec, StageState& st,
                                            const dockerfile::Instruction& ins) {
  RunMount m;
  std::string type = "bind";
  std::map<std::string, std::string> kv;
  for (const std::string& part : split_commas(spec)) {
    auto eq = part.find('=');
    std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (eq == std::string::npos && (k == "rw" || k == "readwrite" || k == "ro" || k == "readonly" || k == "required"))
      v = "true";
    kv[k] = v;
  }
  for (const auto& [k, v] : kv) {
    if (k == "type") type = v;
    else if (k == "target" || k == "dst" || k == "destination") m.target = v;
    else if (k == "source" || k == "src") m.source = v;
    else if (k == "id") m.id = v;
    else if (k == "rw" || k == "readwrite") m.rw = v != "false";
    else if (k == "ro" || k == "readonly") m.rw = v == "false";
    else if (k == "required") m.required = v != "false";
    else if (k == "env") m.env = v;
    else if (k == "sharing") {
      if (v != "shared" && v != "private" && v != "locked") return at(ins, "invalid sharing=" + v + " (shared, private, locked)");
      m.locked = v == "locked" || v == "private";
    } else if (k == "mode") {
      char* end = nullptr;
      unsigned long mode = std::strtoul(v.c_str(), &end, 8);
      if (v.empty() || *end || mode > 07777) return at(ins, "invalid mount mode \"" + v + "\"");
      m.mode = static_cast<uint32_t>(mode);
    } else if (k == "size") {
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      std::string unit = end ? end : "";
      uint64_t mult = unit.empty() || unit == "b" ? 1 : unit == "k" || unit == "kb" ? 1024 :
                      unit == "m" || unit == "mb" ? 1 << 20 : unit == "g" || unit == "gb" ? 1ull << 30 : 0;
      if (!mult) return at(ins, "invalid tmpfs size \"" + v + "\"");
      m.size = n * mult;
    } else if (k == "from" && named_context(v) && !named_context(v)->dir.empty()) {
      m.context_dir = named_context(v)->dir;
      m.context_fd = named_context(v)->fd->get();
    } else if (k == "from" && named_context(v)) {
      return at(ins, "RUN --mount from=" + v + ": an image build context cannot be mounted yet (use a stage FROM it)");
    } else if (k == "from") {
      OCIB_ASSIGN_OR_RETURN(size_t from, stage_by_ref(v, ins));
      if (&plan_.stages[from] == &st) return at(ins, "RUN --mount from= cannot refer to its own stage");
      OCIB_TRY(plan_stage(from));
      m.from_stage = true;
      m.from_context = false;
      m.from_top = plan_.stages[from].top;
    } else if (k == "uid" || k == "gid") {
      char* end = nullptr;
      errno = 0;
      unsigned long id = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || errno || id > 0xfffffffeUL || v[0] == '-')
        return at(ins, "--mount " + k + "=" + v + ": not a numeric id");
      (k == "uid" ? m.uid : m.gid) = static_cast<uint32_t>(id);
    } else {
      return at(ins, "unknown --mount option \"" + k + "\"");
    }
  }
  if (type == "ssh") return at(ins, "RUN --mount=type=ssh is not supported yet");
  if (type == "bind") m.type = RunMount::Type::kBind;
  else if (type == "cache") m.type = RunMount::Type::kCache;
  else if (type == "tmpfs") m.type = RunMount::Type::kTmpfs;
  else if (type == "secret") m.type = RunMount::Type::kSecret;
  else return at(ins, "unknown mount type \"" + type + "\" (bind, cache, tmpfs, secret)");
  if (m.type == RunMount::Type::kSecret) {
    if (m.id.empty()) m.id = m.target.empty() ? "" : fs::basename(m.target);
    if (m.id.empty()) return at(ins, "RUN --mount=type=secret needs id= or target=");
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
    return m;
  }
  if (m.target.empty()) return at(ins, "RUN --mount=type=" + type + " needs target=");
  std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  if (m.target.front() != '/') m.target = fs::join(wd, m.target);
  m.target = fs::clean(m.target);
  if (m.type == RunMount::Type::kCache && m.id.empty()) m.id = m.target;
  if (m.type == RunMount::Type::kBind) m.source = fs::clean("/" + m.source).substr(1);
  return m;
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
  auto check_flags = [&](std::initializer_list<const char*> allowed) -> Status {
    for (const auto& f : ins.flags) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || f.name == a;
      if (!ok) return at(ins, "flag --" + f.name + " is not supported for " + kw + " yet");
    }
    return {};
  };

  if (kw == "RUN") {
    OCIB_TRY(check_flags({"network", "mount", "security"}));
    bool insecure = false;
    if (const auto* f = ins.flag("security")) {
      if (f->value == "insecure") {
        if (!std::count(req_.allow.begin(), req_.allow.end(), "security.insecure"))
          return at(ins, "RUN --security=insecure needs the entitlement: ocib build --allow security.insecure");
        insecure = true;
      } else if (f->value != "sandbox") {
        return at(ins, "RUN --security=" + f->value + ": unknown mode (sandbox or insecure)");
      }
    }
    Step s;
    s.kind = Step::Kind::kRun;
    s.insecure = insecure;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    s.network = req_.network;
    if (const auto* f = ins.flag("network")) {
      if (f->value == "none") s.network = Network::kNone;
      else if (f->value == "host") s.network = Network::kHost;
      else if (f->value != "default") return at(ins, "unsupported network mode \"" + f->value + "\"");
      // "default": the build's mode (--network), as in BuildKit.
    }
    if (s.network == Network::kHost && !host_network_warned_ &&
        !std::count(req_.allow.begin(), req_.allow.end(), "network.host")) {
      // BuildKit refuses host network without the entitlement; we still allow it, for now.
      host_network_warned_ = true;
      sources_.note("warning: host network for RUN without the entitlement: add --allow network.host "
                     "(it will be required in a later version)");
    }
    std::vector<std::string> shell =
        st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
    json mount_key = json::array();
    for (const auto& f : ins.flags) {
      if (f.name != "mount") continue;
      OCIB_ASSIGN_OR_RETURN(std::string spec, word(f.value, st, ins));
      OCIB_ASSIGN_OR_RETURN(RunMount m, parse_mount(spec, st, ins));
      json mk = {{"type", type_name(m.type)}, {"target", m.target}, {"id", m.id}, {"source", m.source}, {"rw", m.rw},
                 {"env", m.env}, {"size", m.size}, {"mode", m.mode}};
      if (m.type == RunMount::Type::kBind) {
        if (m.from_stage) {
          mk["from"] = m.from_top ? m.from_top->key : "empty";
          if (m.from_top) s.deps.push_back(m.from_top);
        } else {
          // Bind mounts of the context: their content is an input of the step.
          auto h = m.context_fd >= 0 ? sources_.hash(m.context_fd, {m.source.empty() ? "." : m.source}, copy::SourceFilter{}, nullptr)
                                     : sources_.hash(req_.context_fd, {m.source.empty() ? "." : m.source}, req_.context_filter, nullptr);
          if (!h.ok()) return at(ins, "RUN --mount=type=bind: " + h.error().message() + " in build context");
          mk["context"] = *h;
        }
      }
      mount_key.push_back(mk);
      s.mounts.push_back(std::move(m));
    }
    if (ins.json) {
      s.argv = *ins.json;
    } else if (!ins.heredocs.empty() && dockerfile::parse_heredoc_word(ins.rest)) {
      // The whole command is one heredoc: its body is the script.
      std::string script = ins.heredocs.front().data();
      if (script.rfind("#!", 0) == 0) {
        // As BuildKit: the script becomes an executable file under /dev/pipes and runs directly.
        RunMount pipe;
        pipe.type = RunMount::Type::kPipe;
        pipe.target = "/dev/pipes/" + ins.heredocs.front().name;
        pipe.source = script;
        s.mounts.push_back(pipe);
        s.argv = {pipe.target};
      } else {
        s.argv = shell;
        s.argv.push_back(script);
      }
    } else {
      // Heredocs after command text reach the shell as written; it does the redirection.
      std::string cmd = ins.rest;
      for (const auto& h : ins.heredocs) cmd += "\n" + h.content + h.name;
      s.argv = shell;
      s.argv.push_back(cmd);
    }
    if (s.argv.empty()) return at(ins, "RUN needs a command");
    // Build args in scope reach the command's environment (not the image config); ENV wins.
    std::map<std::string, std::string> env_map;
    std::vector<std::string> env = st.config.env;
    for (const auto& e : env) env_map[e.substr(0, e.find('='))] = e;
    for (const auto& [k, v] : st.args)
      if (!env_map.count(k)) env.push_back(k + "=" + v);
    s.env = env;
    for (const auto& [k, v] : req_.build_args)
      if (is_proxy_arg(k) && !st.args.count(k) && !env_map.count(k)) {
        s.proxy_env.push_back(k + "=" + v);
        used_args_.insert(k);
      }
    s.user = st.config.user;
    s.cwd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    json k = {{"v", kKeyVersion}, {"op", "run"}, {"parent", s.parent ? s.parent->key : ""},
              {"argv", s.argv}, {"env", s.env}, {"user", s.user}, {"cwd", s.cwd},
              // The network mode is an input, as in BuildKit's ExecOp: the (new) default mode
              // keys apart from none, whose results keep their keys. A default step run on the
              // host's network (no slirp4netns here) keys as default: same request, same key.
              {"net", s.network == Network::kHost      ? "host"
                      : s.network == Network::kDefault ? "default"
                                                                 : "none"}};
    if (auto h = req_.build_args.find(kHostnameArg); h != req_.build_args.end()) {
      k["hostname"] = h->second;
      s.hostname = h->second;
    }
    if (insecure) k["security"] = "insecure";
    // The same command on the same (e.g. scratch) parent differs per architecture; host
    // builds keep their keys.
    if (!oci::runs_natively(st.platform)) {
      s.emulated = oci::normalize(st.platform);
      k["platform"] = oci::str(*s.emulated);
    } else if (!oci::same(st.platform, oci::host())) {
      k["platform"] = oci::str(oci::normalize(st.platform));
    }
    if (!mount_key.empty()) k["mounts"] = mount_key;  // secrets by id only, never by value
    for (const auto& m : s.mounts)
      if (m.type == RunMount::Type::kPipe) k["pipe"] = Sha256::hex(m.source);
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    Step* p = add_step(std::move(s));
    st.top = p;
    std::string shown = ins.json ? json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : shell_join(p->argv);
    st.history.push_back({"RUN " + shown, p, "", false});
    return {};
  }
  if (kw == "COPY" || kw == "ADD") {
    if (kw == "COPY") OCIB_TRY(check_flags({"from", "chown", "chmod", "exclude", "parents", "link"}));
    else OCIB_TRY(check_flags({"chown", "chmod", "exclude", "link", "checksum", "keep-git-dir"}));
    auto bool_flag = [&](const char* name) {
      const auto* f = ins.flag(name);
      return f && f->value != "false";
    };
    std::vector<std::string> words;
    if (ins.json) {
      for (const auto& w : *ins.json) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        words.push_back(e);
      }
    } else {
      for (const auto& w : ins.raw_words) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        words.push_back(e);
      }
    }
    // Heredoc sources (`COPY <<EOF /dest`) become inline files, in order.
    std::vector<copy::InlineFile> inline_files;
    if (!ins.heredocs.empty() && !ins.json) {
      std::vector<std::string> kept;
      size_t next = 0;
      for (size_t i = 0; i < ins.raw_words.size(); ++i) {
        if (i + 1 < ins.raw_words.size() && dockerfile::parse_heredoc_word(ins.raw_words[i]) &&
            next < ins.heredocs.size()) {
          const auto& h = ins.heredocs[next++];
          std::string content = h.data();
          if (h.expand) {
            auto e = dockerfile::expand(content, vars_for(st), df_->escape);
            if (!e.ok()) return at(ins, e.error().message());
            content = *e;
          }
          inline_files.push_back({h.name, content, std::nullopt, -1});
        } else {
          kept.push_back(words[i]);
        }
      }
      words = kept;
      words.insert(words.begin(), "");  // placeholder so the dest logic below still sees >= 2 words
    }
    if (words.size() < 2) return at(ins, kw + " requires at least two arguments");
    Step s;
    s.kind = Step::Kind::kCopy;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    std::string dest = words.back();
    words.pop_back();
    if (!inline_files.empty()) words.erase(words.begin());  // the placeholder
    s.copy.inline_files = inline_files;
    if (kw == "ADD") {
      std::string checksum;
      if (const auto* f = ins.flag("checksum")) {
        OCIB_ASSIGN_OR_RETURN(checksum, word(f->value, st, ins));
        if (checksum.rfind("sha256:", 0) != 0 || checksum.size() != 71 ||
            checksum.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
          return at(ins, "invalid --checksum \"" + checksum + "\" (sha256:<64 hex digits>)");
      }
      if (ins.flag("keep-git-dir")) return at(ins, "ADD --keep-git-dir: ADD of git repositories is not supported yet");
      std::vector<std::string> local;
      size_t urls = 0;
      for (const auto& w : words) {
        if (is_git_url(w)) return at(ins, "ADD of git repositories is not supported yet");
        if (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0) {
          OCIB_ASSIGN_OR_RETURN(copy::InlineFile f, download(w, checksum, ins));
          s.copy.inline_files.push_back(std::move(f));
          ++urls;
          continue;
        }
        if (w.find("://") != std::string::npos) return at(ins, "ADD " + w + ": unsupported URL scheme (http, https)");
        local.push_back(w);
      }
      if (!checksum.empty() && urls == 0) return at(ins, "ADD --checksum can only be used with an HTTP(S) source");
      words = std::move(local);
      s.copy.extract_archives = true;
    }
    std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    bool dir_syntax = !dest.empty() && dest.back() == '/';
    std::string abs = dest.front() == '/' ? dest : fs::join(wd, dest);
    s.copy.dest = fs::clean(abs) + (dir_syntax && fs::clean(abs) != "/" ? "/" : "");
    if (dest == "." || dest == "./") s.copy.dest = fs::clean(wd) == "/" ? "/" : fs::clean(wd) + "/";
    s.copy.sources = words;
    std::string excludes;
    for (const auto& f : ins.flags) {
      if (f.name != "exclude") continue;
      OCIB_ASSIGN_OR_RETURN(std::string e, word(f.value, st, ins));
      excludes += e + "\n";
    }
    if (!excludes.empty()) {
      auto m = dockerfile::parse_dockerignore(excludes);
      if (!m.ok()) return at(ins, "invalid --exclude: " + m.error().message());
      auto mp = std::make_shared<dockerfile::Matcher>(std::move(m).value());
      s.copy.exclude.excluded = [mp](const std::string& rel, bool is_dir) { return mp->excluded(rel, is_dir); };
      s.copy.exclude.descend = [mp](const std::string& rel) { return mp->may_contain_included(rel); };
    }
    s.copy.parents = bool_flag("parents");
    bool link = bool_flag("link");
    if (const auto* f = ins.flag("chmod")) {
      char* end = nullptr;
      unsigned long m = std::strtoul(f->value.c_str(), &end, 8);
      if (f->value.empty() || *end != 0 || m > 07777) return at(ins, "invalid --chmod value \"" + f->value + "\"");
      s.copy.chmod = static_cast<uint32_t>(m);
    }
    if (const auto* f = ins.flag("chown")) {
      OCIB_ASSIGN_OR_RETURN(s.chown_spec, word(f->value, st, ins));
    }
    std::string src_key;
    if (const auto* f = ins.flag("from")) {
      OCIB_ASSIGN_OR_RETURN(std::string ref, word(f->value, st, ins));
      s.from_context = false;
      const NamedContext* nc = named_context(ref);
      if (nc && !nc->dir.empty()) {
        // A named local directory: copied like the main context (its own files, no .dockerignore).
        s.from_context = true;
        s.context_dir = nc->dir;
        auto expected = std::make_shared<copy::SourceManifest>();  // checked by copy_into
        auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                        : sources_.hash(nc->fd->get(), s.copy.sources, copy::SourceFilter{}, expected.get());
        s.copy.expected = std::move(expected);
        if (!h.ok()) {
          return at(ins, kw + " failed: " + h.error().message() + " in build context \"" + ref + "\"" +
                             (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
        }
        src_key = "named-context:" + *h;
      } else if (nc) {
        OCIB_ASSIGN_OR_RETURN(SourceImage img, load_base(nc->image, ins, st.platform));
        s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
        src_key = "image:" + img.manifest_digest;
      } else if (auto from = stage_by_ref(ref, ins); from.ok()) {
        if (&plan_.stages[*from] == &st) return at(ins, "COPY --from cannot refer to its own stage");
        OCIB_TRY(plan_stage(*from));
        s.from_top = plan_.stages[*from].top;
        src_key = "stage:" + (s.from_top ? s.from_top->key : std::string("empty"));
      } else {
        // Not a stage: an image, resolved like a FROM base; its layers are the source view.
        OCIB_ASSIGN_OR_RETURN(SourceImage img, load_base(ref, ins, st.platform));
        s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
        src_key = "image:" + img.manifest_digest;
      }
      if (s.from_top) s.deps.push_back(s.from_top);
    } else {
      s.copy.filter = req_.context_filter;
      auto expected = std::make_shared<copy::SourceManifest>();  // checked by copy_into
      auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                      : sources_.hash(req_.context_fd, s.copy.sources, hash_filter(s.copy),
                                                     expected.get());
      s.copy.expected = std::move(expected);
      if (!h.ok()) {
        return at(ins, kw + " failed: " + h.error().message() + " in build context" +
                           (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
      }
      src_key = "context:" + *h;
    }
    for (const auto& f : s.copy.inline_files)
      src_key += " inline:" + f.name + ":" + Sha256::hex(f.content) +
                 (f.mode ? ":" + std::to_string(*f.mode) : "") + (f.mtime >= 0 ? "@" + std::to_string(f.mtime) : "");
    // --link: the layer is made on an empty root and keyed without the parent, unless --chown
    // names a user the parent's /etc/passwd must resolve.
    bool named_owner = s.chown_spec.find_first_not_of("0123456789:") != std::string::npos;
    if (link && named_owner) s.user_from = s.parent;
    if (link) s.parent = nullptr;
    json k = {{"v", kKeyVersion}, {"op", "copy"}, {"parent", s.parent ? s.parent->key : ""},
              {"src", src_key}, {"sources", s.copy.sources}, {"dest", s.copy.dest},
              {"chown", s.chown_spec}, {"chmod", s.copy.chmod ? static_cast<int>(*s.copy.chmod) : -1}};
    if (kw == "ADD") k["add"] = true;
    if (!excludes.empty()) k["exclude"] = excludes;
    if (s.copy.parents) k["parents"] = true;
    if (link) k["link"] = s.user_from ? s.user_from->key : "";
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    if (s.user_from) s.deps.push_back(s.user_from);
    Step* p = add_step(std::move(s));
    if (link) {
      Step l;
      l.kind = Step::Kind::kLinked;
      l.name = label + " (link)";
      l.stage = st.display;
      l.parent = st.top;
      l.link_src = p;
      l.key = Sha256::hex(std::string(kKeyVersion) + " linked " + (st.top ? st.top->key : "") + " " + p->key);
      if (l.parent) l.deps.push_back(l.parent);
      l.deps.push_back(p);
      l.copy.sources = p->copy.sources;
      p = add_step(std::move(l));
    }
    st.top = p;
    std::string created_by = kw + " ";
    for (const auto& f : ins.flags) created_by += "--" + f.name + (f.value.empty() ? "" : "=" + f.value) + " ";
    created_by += shell_join(p->copy.sources) + " " + dest;
    st.history.push_back({created_by, p, "", false});
    return {};
  }

  // Instructions that change only the image config (and WORKDIR's mkdir).
  if (kw == "HEALTHCHECK") OCIB_TRY(check_flags({"interval", "timeout", "start-period", "start-interval", "retries"}));
  else OCIB_TRY(check_flags({}));
  auto hist = [&](const std::string& text) { st.history.push_back({text, nullptr, "", true}); };
  auto set_env = [&](std::vector<std::string>& list, const std::string& k, const std::string& v) {
    for (auto& e : list)
      if (e.compare(0, k.size() + 1, k + "=") == 0) {
        e = k + "=" + v;
        return;
      }
    list.push_back(k + "=" + v);
  };
  // ENV, ARG and LABEL expand every pair with the environment from before the instruction, as
  // BuildKit: `ENV A=1 B=${A:-x}` gives B=x unless A was already set.
  if (kw == "ENV") {
    std::string text = "ENV";
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
      vals.emplace_back(k, std::move(val));
    }
    for (const auto& [k, val] : vals) {
      set_env(st.config.env, k, val);
      text += " " + k + "=" + val;
    }
    hist(text);
  } else if (kw == "ARG") {
    std::vector<std::pair<std::string, std::string>> vals;
    for (const auto& [k, v] : ins.raw_kvs) {
      std::string val;
      if (auto it = req_.build_args.find(k); it != req_.build_args.end()) {
        val = it->second;
        used_args_.insert(k);
      } else if (v) {
        OCIB_ASSIGN_OR_RETURN(val, word(*v, st, ins));
      } else if (auto m = meta_args_.find(k); m != meta_args_.end()) {
        val = m->second;
      } else {
        continue;  // declared without value and none given: unset
      }
      vals.emplace_back(k, std::move(val));
    }
    for (auto& [k, val] : vals) st.args[k] = std::move(val);
  } else if (kw == "LABEL" || kw == "MAINTAINER") {
    if (kw == "MAINTAINER") {
      st.config.labels["maintainer"] = ins.rest;
      hist("MAINTAINER " + ins.rest);
    } else {
      std::string text = "LABEL";
      for (const auto& [k, v] : ins.raw_kvs) {
        OCIB_ASSIGN_OR_RETURN(std::string key, word(k, st, ins));
        OCIB_ASSIGN_OR_RETURN(std::string val, word(v.value_or(""), st, ins));
        st.config.labels[key] = val;  // labels are not in the environment: order does not matter
        text += " " + key + "=" + val;
      }
      hist(text);
    }
  } else if (kw == "WORKDIR") {
    if (ins.raw_words.empty()) return at(ins, "WORKDIR requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(std::string dir, word(ins.raw_words.front(), st, ins));
    std::string cur = st.config.working_dir.empty() ? "/" : st.config.working_dir;
    st.config.working_dir = fs::clean(dir.front() == '/' ? dir : fs::join(cur, dir));
    if (st.config.working_dir == "/") {
      hist("WORKDIR /");
      return {};
    }
    // As BuildKit: the directory is created (owned by the current USER) in a layer.
    Step s;
    s.kind = Step::Kind::kWorkdir;
    s.name = label;
    s.stage = st.display;
    s.parent = st.top;
    s.workdir = st.config.working_dir;
    s.user = st.config.user;
    json k = {{"v", kKeyVersion}, {"op", "workdir"}, {"parent", s.parent ? s.parent->key : ""},
              {"path", s.workdir}, {"user", s.user}};
    s.key = Sha256::hex(key_text(k));
    if (s.parent) s.deps.push_back(s.parent);
    Step* p = add_step(std::move(s));
    st.top = p;
    st.history.push_back({"WORKDIR " + st.config.working_dir, p, "", false});
  } else if (kw == "USER") {
    if (ins.raw_words.empty()) return at(ins, "USER requires exactly one argument");
    OCIB_ASSIGN_OR_RETURN(st.config.user, word(ins.raw_words.front(), st, ins));
    hist("USER " + st.config.user);
  } else if (kw == "EXPOSE") {
    for (const auto& w : ins.raw_words) {
      OCIB_ASSIGN_OR_RETURN(std::string p, word(w, st, ins));
      // "80", "80/udp", "8000-8002/tcp" (a range expands to each port, as Docker does).
      std::string proto = "tcp";
      if (auto slash = p.find('/'); slash != std::string::npos) {
        proto = p.substr(slash + 1);
        p = p.substr(0, slash);
      }
      std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
      if (proto != "tcp" && proto != "udp" && proto != "sctp") return at(ins, "invalid EXPOSE protocol \"" + proto + "\"");
      auto dash = p.find('-');
      auto lo = parse_u32(p.substr(0, dash));
      auto hi = dash == std::string::npos ? lo : parse_u32(p.substr(dash + 1));
      if (!lo || !hi || *lo > 65535 || *hi > 65535 || *hi < *lo) return at(ins, "invalid EXPOSE port \"" + p + "\"");
      for (uint32_t port = *lo; port <= *hi; ++port) {
        std::string e = std::to_string(port) + "/" + proto;
        if (std::find(st.config.exposed_ports.begin(), st.config.exposed_ports.end(), e) ==
            st.config.exposed_ports.end())
          st.config.exposed_ports.push_back(e);
      }
    }
    hist("EXPOSE " + ins.rest);
  } else if (kw == "CMD" || kw == "ENTRYPOINT") {
    std::vector<std::string> v;
    if (ins.json) {
      v = *ins.json;
    } else {
      v = st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
      v.push_back(ins.rest);
    }
    if (kw == "CMD") {
      st.config.cmd = v;
    } else {
      st.config.entrypoint = v;
      // Docker: an ENTRYPOINT resets a CMD inherited from the base.
      bool cmd_here = false;
      for (size_t i = 0; !trigger && i < pos; ++i) cmd_here = cmd_here || stage.body[i].keyword == "CMD";
      if (!cmd_here) st.config.cmd.reset();
    }
    hist(kw + " " + (ins.json ? json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  } else if (kw == "SHELL") {
    if (!ins.json || ins.json->empty()) return at(ins, "SHELL requires the arguments to be in JSON form");
    st.config.shell = *ins.json;
    hist("SHELL " + json(*ins.json).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "VOLUME") {
    std::vector<std::string> vols = ins.json ? *ins.json : std::vector<std::string>{};
    if (!ins.json)
      for (const auto& w : ins.raw_words) {
        OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
        vols.push_back(e);
      }
    for (const auto& v : vols)
      if (std::find(st.config.volumes.begin(), st.config.volumes.end(), v) == st.config.volumes.end())
        st.config.volumes.push_back(v);
    hist("VOLUME " + json(vols).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "HEALTHCHECK") {
    json hc = json::object();
    if (!ins.words.empty() && ins.words[0] == "NONE") {
      hc["Test"] = {"NONE"};
    } else {
      std::vector<std::string> test;
      if (ins.json) {
        test = {"CMD"};
        test.insert(test.end(), ins.json->begin(), ins.json->end());
      } else {
        test = {"CMD-SHELL", ins.words.size() > 1 ? ins.words[1] : ins.rest};
      }
      hc["Test"] = test;
      for (auto [flag, key] : {std::pair{"interval", "Interval"}, {"timeout", "Timeout"},
                               {"start-period", "StartPeriod"}, {"start-interval", "StartInterval"}}) {
        const auto* f = ins.flag(flag);
        if (!f) continue;
        auto d = parse_go_duration(f->value);
        if (!d) return at(ins, "HEALTHCHECK --" + std::string(flag) + ": invalid duration \"" + f->value + "\"");
        if (*d != 0 && *d < 1000000)
          return at(ins, "HEALTHCHECK --" + std::string(flag) + " \"" + f->value + "\" cannot be less than 1ms");
        if (*d) hc[key] = *d;
      }
      if (const auto* f = ins.flag("retries")) {
        char* end = nullptr;
        long n = std::strtol(f->value.c_str(), &end, 10);
        if (f->value.empty() || *end) return at(ins, "HEALTHCHECK --retries: invalid number \"" + f->value + "\"");
        if (n < 0) return at(ins, "--retries cannot be negative (" + f->value + ")");
        if (n) hc["Retries"] = n;
      }
    }
    st.config.healthcheck = hc;
    hist("HEALTHCHECK " + hc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (kw == "ONBUILD") {
    std::string t = ins.rest;
    for (const auto& h : ins.heredocs) t += "\n" + h.content + h.name;
    st.config.onbuild.push_back(t);
    hist("ONBUILD " + t);
  } else if (kw == "STOPSIGNAL") {
    OCIB_ASSIGN_OR_RETURN(st.config.stop_signal, word(ins.rest, st, ins));
    hist("STOPSIGNAL " + st.config.stop_signal);
  } else {
    return at(ins, kw + " is not supported yet");
  }
  return {};
}


}  // namespace

Result<Plan> make_plan(const dockerfile::Dockerfile& df, const Request& request, Sources& sources) {
  Planner p(df, request, sources);
  OCIB_TRY(p.plan());
  return p.take();
}

}  // namespace ocib::plan
